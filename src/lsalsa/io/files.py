"""Arrays, text and JSON, read with one-line errors and written atomically (every array
checked finite first)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path


def check_finite_output(array: np.ndarray, what: str) -> None:
    """Every output is checked before it is written: NaN or Inf is refused with one line."""
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


def read_array(path: str | os.PathLike, name: str, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` file the user named as ``name`` (``signals``, ``dictionary``, ...): as
    :func:`load_npy`, with that name in every message."""
    if not Path(path).is_file():
        raise InputError(f"{name} file not found: {path}")
    try:
        return load_npy(path, mmap=mmap)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """The JSON object stored in ``path``; a file that cannot be read or parsed, or that holds
    anything but an object, is one InputError naming ``what`` it should have been."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise InputError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path} is not {what} (not a JSON object)")
    return value


def write_json(path: str | os.PathLike, data) -> None:
    """Strict JSON (no NaN or Infinity, which other parsers refuse), written atomically."""
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise InputError(f"the result for {path} holds NaN or Inf; nothing was written") from exc
    write_text(path, text + "\n")
