"""Helpers shared by the CLI commands: argparse types, model paths and devices with clear
errors, and the exit rule of a run whose training diverged (``.npy`` inputs are read with
:func:`lsalsa.io.read_array`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import checks
from ..errors import InputError, TrainingDiverged


def non_negative_int(text: str) -> int:
    """argparse type of ``--seed``: NumPy's generators refuse a negative seed with a
    traceback, so it is refused here, with argparse's usage error."""
    return _int_argument(text, checks.non_negative_int)


def _int_argument(text: str, check) -> int:
    """``text`` as an integer that passes ``check`` (of :mod:`lsalsa.checks`); its fault
    becomes argparse's usage error: "argument --seed: expected an integer >= 0, got -1"."""
    try:
        value = int(text)
    except ValueError:
        value = text  # not an integer: the check refuses it, quoted as typed
    try:
        return check(value, "")
    except InputError as exc:
        raise argparse.ArgumentTypeError(
            f"expected {str(exc).removeprefix(' must be ')}") from None


def check_model_path(path: str) -> str:
    """A model path that is a folder gets its own message (not "model file not found")."""
    if Path(path).is_dir():
        raise InputError(f"model path {path} is a folder, not a model file")
    return path


def resolve_device(name: str):
    """A torch device from a name: ``cpu`` or ``cuda[:N]``, refusing a CUDA device that is not
    here. torch also names devices (meta, mps, xla, ...) whose tensors fail later with a
    traceback, or hold no values at all (meta)."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}") from exc
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but no CUDA device is available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {name}: there is no such CUDA device "
                             f"({count} available, cuda:0 to cuda:{count - 1})")
    return device


def check_training(run_dir) -> None:
    """Raise :class:`TrainingDiverged` (exit 1) when a training of a finished experiment run
    diverged: the run is complete, each model holding its best epoch before the divergence."""
    from ..workflow.pipeline import diverged_models

    diverged = diverged_models(run_dir)
    if diverged:
        raise TrainingDiverged(f"training diverged for {', '.join(diverged)}; each model holds "
                               "its best epoch before the divergence (see the report)")
