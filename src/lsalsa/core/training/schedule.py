"""How big each training step is: every learned tensor's scale (step scaling, see
:mod:`.trainer`) and the step size over the run (``TrainSettings.schedule``)."""

from __future__ import annotations

import math

import torch

from ..encoders import UnrolledEncoder
from .settings import DEFAULTS, PLATEAU_WAIT


def step_size(hyper: dict, step: int, epoch: int, total_steps: int, halvings: int = 0) -> float:
    """The step size at ``step`` (of ``total_steps``), in ``epoch``: ``lr`` times the
    schedule's factor, over ``1 + lr_decay * epoch``. The plateau schedule's factor is
    ``1 / 2^halvings``, which :func:`epoch_halvings` gives once per epoch."""
    factor = 1.0
    if hyper["schedule"] == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    elif hyper["schedule"] == "plateau":
        factor = 0.5 ** halvings
    return hyper["lr"] * factor / (1.0 + hyper["lr_decay"] * epoch)


def epoch_halvings(hyper: dict, history: list[dict], epoch: int) -> int:
    """The plateau schedule's halvings for ``epoch``, from the validation RMSE of the epochs
    before it (``history``, epoch 0 first); 0 for the other schedules."""
    if hyper["schedule"] != "plateau":
        return 0
    return plateau_halvings(*_validation(hyper, history[:epoch + 1]))


def epochs_without_improvement(hyper: dict, history: list[dict]) -> int:
    """How many epochs of ``history`` (epoch 0 first) came after the last that improved
    validation (:func:`improving_epochs`): what ``patience`` is compared with."""
    val_rmse, min_improvement = _validation(hyper, history)
    return len(val_rmse) - 1 - improving_epochs(val_rmse, min_improvement)[-1]


def _validation(hyper: dict, history: list[dict]) -> tuple[list, float]:
    # min_improvement is recorded only when set (so earlier runs' records still match)
    return ([e["val_rmse"] for e in history],
            hyper.get("min_improvement", DEFAULTS["min_improvement"]))


def improving_epochs(val_rmse: list[float], min_improvement: float = 0.0) -> list[int]:
    """The epochs (epoch 0 first, and counted) whose validation RMSE ``val_rmse[e]`` is below
    ``1 - min_improvement`` times that of the improving epoch before them: where patience and
    the plateau schedule count from. Drawn from the history alone, so a resumed run decides
    as the first one did."""
    best, improving = val_rmse[0], [0]
    for epoch, val in enumerate(val_rmse[1:], 1):
        if val is not None and val < best * (1.0 - min_improvement):
            best = val
            improving.append(epoch)
    return improving


def plateau_halvings(val_rmse: list[float], min_improvement: float = 0.0) -> int:
    """How often the plateau schedule has halved the step after the epochs whose validation
    RMSE is ``val_rmse`` (epoch 0 first): once per ``PLATEAU_WAIT`` epochs in a row that do
    not improve (:func:`improving_epochs`)."""
    improving = set(improving_epochs(val_rmse, min_improvement))
    waited = halvings = 0
    for epoch in range(1, len(val_rmse)):
        if epoch in improving:
            waited = 0
            continue
        waited += 1
        if waited == PLATEAU_WAIT:
            halvings, waited = halvings + 1, 0
    return halvings


def step_scales(encoder: UnrolledEncoder) -> dict[str, float]:
    """The size ``s`` of each learned tensor (see the module docstring), by parameter name.

    Matrices: ``||P||_2 / sqrt(rows * cols)`` (an untied stack: of its first layer);
    thresholds: their RMS. A tensor of size 0 (all-zero thresholds, alpha = 0) borrows the
    size of the encoder's output, ``||S W||_2 / sqrt(N M)``, the scale of a code.
    """
    scales = {}
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            P = param.detach().to(torch.float64)
            if P.ndim >= 2:
                P = P.reshape(-1, *P.shape[-2:])[0]
                scales[name] = float(torch.linalg.matrix_norm(P, ord=2)) / math.sqrt(P.numel())
            else:
                scales[name] = float(P.pow(2).mean().sqrt())
        fallback = None
        for name, value in scales.items():
            if not (value > 0 and math.isfinite(value)):
                if fallback is None:
                    S = encoder._layer_S(0).detach().to(torch.float64)
                    W = encoder.W.detach().to(torch.float64)
                    fallback = float(torch.linalg.matrix_norm(S @ W, ord=2)) / math.sqrt(
                        W.numel()) or 1.0
                scales[name] = fallback
    return scales
