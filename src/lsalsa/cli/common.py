"""Helpers shared by the CLI commands: argparse types, model paths and devices with clear
errors, and the exit rule of a run whose training diverged (``.npy`` inputs are read with
:func:`lsalsa.io.read_array`)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, TrainingDiverged


def check_model_path(path: str) -> str:
    """A model path that is a folder gets its own message (not "model file not found")."""
    if Path(path).is_dir():
        raise InputError(f"model path {path} is a folder, not a model file")
    return path


def check_training(run_dir) -> None:
    """Raise :class:`TrainingDiverged` (exit 1) when a training of a finished experiment run
    diverged: the run is complete, each model holding its best epoch before the divergence."""
    from ..workflow.pipeline import diverged_models

    diverged = diverged_models(run_dir)
    if diverged:
        raise TrainingDiverged(f"training diverged for {', '.join(diverged)}; each model holds "
                               "its best epoch before the divergence (see the report)")


def with_flags(error: InputError, flags: dict[str, str]) -> InputError:
    """``error`` with each parameter the library names in backquotes (`` `val_signals` ``)
    written as the command's flag (``flags``: parameter -> flag; others stay as they are):
    the library names parameters, the CLI alone knows its flags."""
    return InputError(re.sub(r"`(\w+)`", lambda m: flags.get(m[1], m[0]), str(error)))
