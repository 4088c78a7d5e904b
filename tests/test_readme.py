"""The README's front door: its Python snippets run as written, ``import lsalsa`` reaches every
subpackage, and its data-parallel command line works with the argument forms it shows."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import lsalsa
from readme_snippets import fenced, run_python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def commands(prefix: str) -> list[list[str]]:
    """Every command line of the README's bash blocks that starts with ``prefix``, with
    backslash continuations joined and the trailing comment dropped, split like a shell."""
    found = []
    for block in fenced(README, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(prefix):
                found.append(shlex.split(line, comments=True))
    return found


def test_python_snippets_run_as_written(tmp_path, monkeypatch):
    """Every ```python block, in order and in one namespace, as a reader would type them into
    one session; in a scratch folder, since they may write files. The wheel check runs the
    same blocks against the installed wheel."""
    monkeypatch.chdir(tmp_path)
    run_python_blocks(README)  # raises at the first block that fails


def test_subpackages_are_reachable_from_a_plain_import():
    """A fresh interpreter: ``import lsalsa`` loads the numerical core but no layer above it (no
    files, figures or scikit-learn), and each layer is there on first use (the README calls
    ``lsalsa.core.training.train`` after ``import lsalsa``)."""
    script = (
        "import sys, lsalsa\n"
        f"names = {sorted(lsalsa.SUBMODULES)!r}\n"
        "eager = [n for n in names if n != 'core' and 'lsalsa.' + n in sys.modules]\n"
        "assert not {'matplotlib', 'sklearn'} & set(sys.modules), 'heavy import'\n"
        "assert not eager, eager\n"
        "for n in names:\n"
        "    assert getattr(lsalsa, n).__name__ == 'lsalsa.' + n\n"
        "    assert n in dir(lsalsa)\n"
        "assert callable(lsalsa.core.training.train)\n"
        "assert callable(lsalsa.workflow.data.load_prepared)\n"
        "try:\n"
        "    lsalsa.no_such_thing\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('unknown attribute did not raise')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"apps", "cli", "core", "workflow"} == lsalsa.SUBMODULES


def _lsalsa_script(tmp_path: Path) -> str:
    """The ``lsalsa`` console script of this environment (the README's ``.venv/bin/lsalsa``),
    or a stand-in with the same entry point where it is not installed."""
    installed = Path(sys.executable).parent / "lsalsa"
    if installed.is_file():
        return str(installed)
    stand_in = tmp_path / "lsalsa"
    stand_in.write_text("import sys\nfrom lsalsa.cli import main\nsys.exit(main())\n")
    return str(stand_in)


@pytest.mark.slow
def test_torchrun_line_runs_with_the_readme_arguments(tmp_path):
    """The README's data-parallel line, with the train arguments its other example shows
    (``--signals``, which torchrun's own parser mistakes for ``--signals-to-handle`` unless
    ``--`` ends its options), on tiny files of the same names."""
    (launcher,) = commands("torchrun ")
    train_args = next(c for c in commands("lsalsa train ") if "--signals" in c)[2:]
    rng = np.random.default_rng(0)
    dictionaries = [rng.standard_normal((8, 6)) for _ in range(2)]
    dictionaries = [d / np.linalg.norm(d, axis=0) for d in dictionaries]
    signals = rng.standard_normal((40, 8))
    alphas = [float(a) for flag, a in pairwise(train_args)
              if flag == "--alpha"]
    references = lsalsa.solve(signals, dictionaries, alphas, method="exact").codes
    files = {"--signals": signals, "--references": references}
    dicts = iter(dictionaries)
    for flag, value in pairwise(train_args):
        if flag in files:
            np.save(tmp_path / value, files[flag])
        elif flag == "--dict":
            np.save(tmp_path / value, next(dicts))
    run_dir = tmp_path / "ddp-run"
    argv = []
    for token in launcher:
        if token == "torchrun":
            argv += [sys.executable, "-m", "torch.distributed.run"]
        elif token.endswith("bin/lsalsa"):
            argv.append(_lsalsa_script(tmp_path))
        elif token == "...":
            # The README's arguments, but a short run in a scratch folder.
            args = list(train_args)
            args[args.index("--run-dir") + 1] = str(run_dir)
            argv += [*args, "--epochs", "2", "--quiet"]
        else:
            argv.append(token)
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(Path(lsalsa.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (argv, done.stderr[-3000:])
    assert (run_dir / "model.safetensors").is_file()
    assert json.loads((run_dir / "config.json").read_text())["world_size"] == 2
