"""Atomic file writes: write a temporary file beside the target, then rename over it.

A crash, a full disk or a bad input never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def check_finite_output(array: np.ndarray, what: str) -> None:
    """Every output is checked before it is written: NaN or Inf is refused with one line."""
    from .errors import InputError

    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise InputError(f"{what} would hold NaN or Inf (an overflow: are the input values or "
                         "the model's weights too large?); nothing was written")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    array = np.asarray(array)
    check_finite_output(array, f"the result for {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def load_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` file; never unpickles. A missing, corrupt, truncated or pickled file
    is an :class:`InputError` naming it."""
    from .errors import InputError

    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(np.lib.format.MAGIC_PREFIX))
        # Without the magic np.load falls back to unpickling: a text file would be reported
        # as "pickled data".
        if magic != np.lib.format.MAGIC_PREFIX:
            raise InputError(f"{path} is not a .npy file (no NumPy header)")
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder, not a .npy file") from exc
    except ValueError as exc:  # pickled object arrays, bad headers, short data
        raise InputError(f"{path} is not a plain .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"{path} cannot be read: {exc}") from exc


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
