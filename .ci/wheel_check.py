"""The wheel check (README, Development; ``.ci/run`` runs it after the test suite).

Builds the sdist and the wheel from a copy of this tree as a fresh clone holds it (the wheel
from the sdist, as ``python -m build`` does), checks their metadata with ``twine check
--strict``, installs the wheel alone into a new virtual environment outside the tree, checks
that the installed package holds every file of ``src/lsalsa`` (modules, the JSON configs it
reads at run time, ``py.typed``), and then, from an empty folder, runs ``lsalsa --help``,
``lsalsa experiment list`` and the README's Python blocks with the wheel's required
dependencies only, then ``lsalsa demo --quick`` with its ``spams`` extra added (on the offline
data that ``bash run.sh setup`` installs).

    .venv/bin/python .ci/wheel_check.py [--keep]

Run it with the project's environment: build and twine are installed there. Prints one line
per step with its time; on a failure it names the step, shows the tail of its output and exits
1. The temporary folder (build, environment, demo) is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The CPU build available offline; a plain "torch" would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"


class StepFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"[wheel-check] {message}", flush=True)


def run_step(title: str, argv: list[str], *, cwd: Path, log: Path, timeout: float,
             env: dict | None = None) -> str:
    """Run one step with its output captured into ``log``; return the output, or raise
    StepFailed with its tail."""
    began = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n=== {title}: {' '.join(argv)}\n")
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        output, failed = done.stdout, (f"exit status {done.returncode}"
                                       if done.returncode else None)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (
            exc.stdout or "")
        failed = f"no result after {timeout:.0f} s"
    with log.open("a") as out:
        out.write(output)
    if failed:
        tail = "\n".join(output.splitlines()[-40:])
        raise StepFailed(f"{title}: {failed}\n{tail}")
    say(f"{title}: ok ({time.perf_counter() - began:.0f} s)")
    return output


def clean_env(**extra: str) -> dict:
    """This process's environment without anything that could put the source tree on the
    installed package's import path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    return {**env, **extra}


def clean_copy(dest: Path) -> None:
    """Copy the files git does not ignore (committed or not) to ``dest``: the tree as a fresh
    clone holds it, with this checkout's edits. A build in the tree itself reads a stale
    ``src/lsalsa.egg-info/SOURCES.txt`` from an earlier build, which put a config left out of
    the package data back into the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode:
        raise StepFailed(f"git ls-files in {ROOT}: {listed.stderr.decode(errors='replace')}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the checkout is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def check(work: Path) -> None:
    log, dist, venv, empty = work / "log.txt", work / "dist", work / "venv", work / "run"
    tree = work / "tree"
    empty.mkdir()
    clean_copy(tree)
    py = sys.executable
    run_step("build and twine in the project environment",
             [py, "-m", "pip", "install", "-q", "build", "twine"],
             cwd=ROOT, log=log, timeout=600)
    built = run_step("build the sdist and the wheel", [py, "-m", "build", "--outdir",
                                                       str(dist), str(tree)],
                     cwd=tree, log=log, timeout=600)
    # The build keeps working only while setuptools has nothing to retire in our metadata.
    warned = [line for line in built.splitlines() if "deprecat" in line.lower()]
    if warned:
        raise StepFailed("the build warns of a deprecation:\n" + "\n".join(warned[:20]))
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise StepFailed(f"expected one wheel and one sdist in {dist}, found "
                         f"{sorted(p.name for p in dist.iterdir())}")
    run_step("twine check --strict", [py, "-m", "twine", "check", "--strict",
                                      str(wheels[0]), str(sdists[0])],
             cwd=ROOT, log=log, timeout=300)
    run_step("a new environment outside the tree", [py, "-m", "venv", str(venv)],
             cwd=work, log=log, timeout=300)
    vpy, cli = str(venv / "bin" / "python"), str(venv / "bin" / "lsalsa")
    env = clean_env()
    run_step(f"{TORCH} into it", [vpy, "-m", "pip", "install", "-q", TORCH],
             cwd=empty, log=log, timeout=1200, env=env)
    run_step(f"{wheels[0].name} into it", [vpy, "-m", "pip", "install", "-q", str(wheels[0])],
             cwd=empty, log=log, timeout=1200, env=env)
    # -P: the script's folder (.ci) is not put on the import path, so lsalsa comes from the
    # environment or nowhere.
    say(run_step("the installed package holds every file of src/lsalsa",
                 [vpy, "-P", str(Path(__file__).resolve()), "--installed", str(tree)],
                 cwd=empty, log=log, timeout=300, env=env).strip().splitlines()[-1])
    run_step("lsalsa --help", [cli, "--help"], cwd=empty, log=log, timeout=300, env=env)
    run_step("lsalsa experiment list", [cli, "experiment", "list"], cwd=empty, log=log,
             timeout=300, env=env)
    say(run_step("the README's Python blocks",
                 [vpy, "-P", str(tree / "tests" / "readme_snippets.py"), str(tree / "README.md")],
                 cwd=empty, log=log, timeout=600, env=env).strip().splitlines()[-1])
    # The demo times SPAMS (the optional extra run.sh installs); without it the exact codes
    # fall back to FISTA at a 1e-7 gap, over 10 minutes for the quick demo on 2 cores.
    run_step("the spams extra into it", [vpy, "-m", "pip", "install", "-q",
                                         f"{wheels[0]}[spams]"],
             cwd=empty, log=log, timeout=600, env=env)
    demo = work / "demo"
    # Idle OpenMP threads sleep instead of spinning, as in run.sh (8-13x on 2 shared cores).
    run_step("lsalsa demo --quick", [cli, "demo", "--quick", "--out", str(demo)], cwd=empty,
             log=log, timeout=1200, env=clean_env(OMP_WAIT_POLICY="PASSIVE"))
    absent = [name for name in ("summary.json", "separation.png", "lsalsa.safetensors")
            if not (demo / name).is_file()]
    if absent:
        raise StepFailed(f"lsalsa demo --quick exited 0 but did not write {absent}")


def check_installed(tree: Path) -> int:
    """Run inside the new environment: the package imported is the installed wheel, it holds
    every file of the source package (``tree/src/lsalsa``), and its metadata carries the version
    and the license."""
    import tomllib
    from importlib import metadata

    import lsalsa

    installed_at = Path(lsalsa.__file__).resolve().parent
    if not installed_at.is_relative_to(Path(sys.prefix).resolve()):
        sys.exit(f"lsalsa was imported from {installed_at}, not from the environment {sys.prefix}")
    package = tree / "src" / "lsalsa"
    wanted = {p.relative_to(package) for p in package.rglob("*") if p.is_file()}
    have = {p.relative_to(installed_at) for p in installed_at.rglob("*") if p.is_file()}
    missing = sorted(str(p) for p in wanted - have)
    if missing:
        sys.exit("the wheel lacks files of src/lsalsa (package data in pyproject.toml?): "
                 + ", ".join(missing))
    version = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["version"]
    if not lsalsa.__version__ == metadata.version("lsalsa") == version:
        sys.exit(f"lsalsa.__version__ {lsalsa.__version__}, metadata "
                 f"{metadata.version('lsalsa')}, pyproject.toml {version}: not one version")
    meta = metadata.metadata("lsalsa")
    licenses = [f for f in metadata.files("lsalsa") or () if f.name == "LICENSE"]
    if meta["License-Expression"] != "MIT" or not licenses:
        sys.exit(f"license metadata: {meta['License-Expression']!r}, files {licenses}")
    data = sorted(str(p) for p in wanted if p.suffix != ".py")
    print(f"{len(wanted)} files present, data: {', '.join(data)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--installed", metavar="TREE", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.installed:
        return check_installed(args.installed)
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="lsalsa-wheel-check-"))
    try:
        check(work)
    except StepFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    say(f"passed in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
