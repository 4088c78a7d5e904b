"""Training of the learned encoders (Eq. 15, plus each component's reconstruction for MCA),
checkpoints, the classic selection and the hyperparameter search, and DDP.

- :func:`train`: Adam (default, with per-tensor step scaling) or SGD (the paper) on (signal,
  optimal code) pairs, keeping the best validation epoch, with atomic per-epoch checkpoints in
  a run directory and exact resume; under ``torchrun`` it runs data-parallel
  (:mod:`lsalsa.core.training.distributed`).
- :func:`search`: the paper's grid search per depth T, selecting by validation RMSE; the
  classic methods' settings (:func:`best_classic`) are the learned encoders' starting points.
"""

from .search import SearchResult, best_classic, classic_curves, search
from .trainer import DEFAULTS, OPTIMIZERS, TrainResult, code_rmse, train, validation_rmse

__all__ = ["DEFAULTS", "OPTIMIZERS", "SearchResult", "TrainResult", "best_classic",
           "classic_curves", "code_rmse", "search", "train", "validation_rmse"]
