"""Package version and the provenance every run directory records."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("lsalsa")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def git_dirty() -> bool | None:
    """Whether the source tree has uncommitted changes (None outside a checkout): a commit
    alone does not say what ran when the tree differs from it."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=here, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def provenance() -> dict:
    """What a run directory records beside its config and seed."""
    import platform

    import torch

    return {"lsalsa_version": __version__, "git_commit": git_commit(),
            "git_dirty": git_dirty(), "torch_version": torch.__version__,
            "python_version": platform.python_version()}
