"""Training of the learned encoders (Eq. 15), checkpoints, hyperparameter search and DDP.

- :func:`train`: SGD (the paper) or Adam on (signal, optimal code) pairs, with validation RMSE,
  atomic per-epoch checkpoints in a run directory and exact resume; under ``torchrun`` it runs
  data-parallel (:mod:`lsalsa.training.distributed`).
- :func:`search`: the paper's grid search per depth T, selecting by validation RMSE.
"""

from .search import SearchResult, search
from .trainer import OPTIMIZERS, TrainResult, code_rmse, train, validation_rmse

__all__ = ["OPTIMIZERS", "SearchResult", "TrainResult", "code_rmse", "search", "train",
           "validation_rmse"]
