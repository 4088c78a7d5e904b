"""The package's layer order (docs/DESIGN.md, "Layers") holds: the import-linter contracts in
pyproject.toml are kept, and they do catch a violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess:
    # A fresh interpreter with ``root/src`` first, so the copy below is the one analysed.
    script = ("import sys; from importlinter.cli import lint_imports; "
              "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")
    return subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"})


def test_contracts_are_kept():
    done = _lint(ROOT)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Contracts: " in done.stdout and " broken" in done.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    core = copy / "src" / "lsalsa" / "core" / "prox.py"
    core.write_text(core.read_text() + "\nfrom ..workflow import progress  # noqa\n")
    done = _lint(copy)
    assert done.returncode != 0
    assert "lsalsa.core.prox -> lsalsa.workflow.progress" in done.stdout


# docs/DESIGN.md, "Layers": sizes a reader can hold in mind.
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 80


def _oversized(source: Path) -> list[str]:
    import ast

    found = []
    for path in sorted(source.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(source).as_posix()
        if text.count("\n") > MAX_MODULE_LINES:
            found.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}: {node.name} has {length} lines")
    return found


def test_no_module_or_function_is_too_long(tmp_path):
    assert _oversized(ROOT / "src" / "lsalsa") == []
    # The check itself finds a long module and a long function.
    (tmp_path / "long.py").write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
                                      + "\n" * (MAX_MODULE_LINES - MAX_FUNCTION_LINES))
    assert _oversized(tmp_path) == ["long.py: 351 lines", "long.py: f has 81 lines"]
