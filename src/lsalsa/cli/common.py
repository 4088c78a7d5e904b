"""Helpers shared by the CLI commands: the library's parameter names in an error written as
the command's flags, and the exit rule of a run whose training diverged (``.npy`` inputs are
read with :func:`lsalsa.io.read_array`)."""

from __future__ import annotations

import re

from ..errors import InputError, TrainingDiverged


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
