"""Training of the learned encoders (Eq. 15, plus each component's reconstruction for MCA),
the classic selection that gives them their start, and DDP. No files: what a training run or
a search keeps on disk is :mod:`lsalsa.workflow.training_run` and :mod:`lsalsa.workflow.search`.

- :func:`train`: Adam (default, with per-tensor step scaling) or SGD (the paper) on (signal,
  optimal code) pairs, keeping the best validation epoch; it hands its whole state to a
  per-epoch callback and continues exactly from such a state (:class:`TrainState`); under
  ``torchrun`` it runs data-parallel (:mod:`lsalsa.core.training.distributed`). Its options and
  their checks are :mod:`.settings` (:class:`TrainSettings`, :data:`DEFAULTS`), what a run
  carries and returns :mod:`.state`, the loop :mod:`.trainer`.
- :func:`best_classic` and :func:`classic_curves`: the classic methods' settings per depth T,
  selected by validation RMSE, which are the learned encoders' starting points.
"""

from .search import SearchResult, best_classic, classic_curves
from .settings import DEFAULTS, OPTIMIZERS, TrainSettings
from .state import TrainResult, TrainState
from .trainer import Trainer, train

__all__ = ["DEFAULTS", "OPTIMIZERS", "SearchResult", "TrainResult", "TrainSettings",
           "TrainState", "Trainer", "best_classic", "classic_curves", "train"]
