"""The project's exceptions, each of which the CLI prints as one line with its exit code.

- :class:`InputError`: bad input (exit 2);
- :class:`TrainingDiverged`: a training run that diverged; its outputs are written, the model
  holding the best epoch before the divergence (exit 1).
"""


class InputError(ValueError):
    """Raised when an argument, array or file given to lsalsa is unusable."""


class TrainingDiverged(Exception):
    """Raised after a command's outputs are written when a training run in it diverged."""
