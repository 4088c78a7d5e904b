"""Helpers shared by the CLI commands: loading arrays and dictionaries with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import load_npy


def read_array(path: str, name: str, mmap: bool = False) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{name} file not found: {path}")
    try:
        return load_npy(file, mmap=mmap)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc


def check_model_path(path: str) -> str:
    """A model path that is a folder gets its own message (not "model file not found")."""
    if Path(path).is_dir():
        raise InputError(f"model path {path} is a folder, not a model file")
    return path


def resolve_device(name: str):
    """A torch device from a name, refusing CUDA where there is none."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no CUDA device is available")
    return device
