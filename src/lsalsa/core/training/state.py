"""What a training run carries from epoch to epoch and what it returns.

Exact resume: after every epoch the run's whole state (:class:`TrainState`: weights, optimizer,
the shuffling ``torch.Generator``, the best epoch's weights, the step scales, the history) goes
to an optional callback, and a run started from such a state continues to exactly the result
of an uninterrupted one (same weights, bit for bit, on the same hardware and thread count).
:mod:`lsalsa.workflow.training_run` keeps it in a run directory; this package touches no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..encoders import UnrolledEncoder


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it was (see the module docstring).

    Attributes
    ----------
    epoch, history, best_epoch : as in :class:`TrainResult` (``epoch``: epochs done)
    stopped : the stop reason so far ("" while training goes on)
    scales : :func:`~lsalsa.core.training.schedule.step_scales` of the encoder as it started
    generator : the shuffling generator's state (``torch.Generator.get_state()``)
    model, optimizer : the encoder's and the optimizer's ``state_dict()``
    best : the best epoch's weights (a state dict; None: the model's)
    anchor : the weights ``anchor_decay`` pulls towards (None when it is off)

    A state handed to a callback refers to the live tensors: store or copy it before the
    callback returns.
    """

    epoch: int
    history: list[dict]
    best_epoch: int
    stopped: str
    scales: dict[str, float]
    generator: torch.Tensor
    model: dict[str, torch.Tensor]
    optimizer: dict
    best: dict[str, torch.Tensor] | None = None
    anchor: dict[str, torch.Tensor] | None = None


@dataclass
class TrainResult:
    """What :func:`~lsalsa.core.training.trainer.train` returns.

    Attributes
    ----------
    encoder : the trained encoder (the same object that was passed in), holding the weights
        of the best validation epoch (the last epoch without validation data)
    history : one dict per epoch: ``epoch``, ``loss`` (the training loss over the epoch's
        mini-batches; None for an epoch that diverged), ``val_rmse``, ``lr`` (at the epoch's
        first step), ``seconds``; entry 0 is the untrained encoder (``loss`` None)
    epochs : epochs trained in total (including those before a resume)
    best_epoch : the epoch whose weights the encoder holds (0: training never helped)
    stopped : "rel_tol", "max_epochs", "patience" (validation stopped improving) or
        "diverged" (non-finite loss; the encoder holds the best epoch before it)
    initial_val_rmse, val_rmse : validation RMSE before training and of the returned encoder
        (None without validation data)
    loss : the last epoch loss
    resumed_from : the epoch a resumed run continued from (0 for a fresh run)
    """

    encoder: UnrolledEncoder
    history: list[dict] = field(default_factory=list)
    epochs: int = 0
    best_epoch: int = 0
    stopped: str = ""
    initial_val_rmse: float | None = None
    val_rmse: float | None = None
    loss: float | None = None
    resumed_from: int = 0

    def summary(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "stopped": self.stopped,
                "loss": self.loss, "initial_val_rmse": self.initial_val_rmse,
                "val_rmse": self.val_rmse}
