"""Supervised training of LISTA / LSALSA on (signal, optimal code) pairs.

The loss per sample is :func:`.batches.sample_loss` (Eq. 15, plus each component's
reconstruction error for MCA by default), averaged over each mini-batch.

The defaults train both encoders, on any data, without hand-tuning:

- **Step scaling.** Each learned tensor ``P`` is optimised as ``P / s`` with ``s`` its size at
  the start (``||P||_2 / sqrt(rows * cols)`` for a matrix: a typical entry of a matrix of unit
  spectral norm; the RMS for thresholds). So ``lr`` is a relative step: with Adam every entry
  moves by about ``lr * s`` per step and every operator's spectrum by about ``lr`` of its
  size, whatever ``N``, ``mu`` or the data's scale. (Without it Adam moves each entry by
  ``lr``: the spectrum of an N x N matrix with entries ~1/N moves by ~``N * lr`` per step.)
  The thresholds' step is ``threshold_lr`` times that (default 1).
- **Adam, lr 0.1, cosine decay** of the step over ``max_epochs`` (per step, to 0), optionally
  times the paper's inverse-time decay ``1 / (1 + lr_decay * epoch)``.
- **Gradient clipping** of the (scaled) gradient's norm, so that SGD, the paper's optimiser,
  cannot blow up on an unlucky batch.
- **The best validation epoch wins**, the starting point (epoch 0) included: training never
  returns an encoder worse on validation than the classic algorithm it began as. Training
  stops early when validation has not improved for ``patience`` epochs.
- Optionally ``anchor_decay`` pulls the weights back towards where they started (a decoupled
  weight decay on ``P - P_0``), for scarce data.

Exact resume (:class:`TrainState`, :mod:`.state`): the run hands its whole state to an optional
per-epoch callback and continues exactly from such a state. The options and their checks are
:mod:`.settings`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ...errors import InputError
from ..encoders import UnrolledEncoder
from ..metrics import validation_rmse
from .batches import Batches, placed_validation, sample_loss
from .distributed import Distributed
from .schedule import epoch_halvings, epochs_without_improvement, step_scales, step_size
from .settings import DEFAULTS, TrainSettings, check_pair
from .state import TrainResult, TrainState

FINAL_STOPS = ("rel_tol", "patience", "diverged")


def train(encoder: UnrolledEncoder, signals, references, *, val_signals=None, val_references=None,
          start: TrainState | None = None, callback: Callable[[TrainState], None] | None = None,
          **options) -> TrainResult:
    """Train ``encoder`` in place to map ``signals`` to their optimal codes (or, with
    ``objective="separation"``, to codes whose components are the true ones).

    Parameters
    ----------
    encoder : LISTA or LSALSA; its dtype and device are used for training.
    signals : array (P, M), NumPy (memory-mapped is fine: rows are read per mini-batch) or torch.
    references : array (P, N), the optimal codes of ``signals``; with
        ``objective="separation"`` the true components of each mixture side by side,
        (P, D * M).
    val_signals, val_references : optional validation pair (whole images or photographs held out
        of training); RMSE is measured every epoch and selects the epoch returned.
    start : continue exactly from this state (of a run with the same options and data) rather
        than from the encoder as it is.
    callback : called on every rank with the run's :class:`TrainState` after each epoch.
    **options : the fields of :class:`TrainSettings` (see there for each option).

    Returns
    -------
    TrainResult
    """
    with Trainer(encoder, signals, references, val_signals=val_signals,
                 val_references=val_references, **options) as trainer:
        trainer.begin(start)
        return trainer.run(callback)


class Trainer:
    """One training run: checked options and data, the optimizer, the schedule and the best
    epoch. :meth:`begin` sets up a fresh or a resumed run, :meth:`run` trains; use it in a
    ``with`` block, which leaves the DDP process group it may have joined."""

    def __init__(self, encoder: UnrolledEncoder, signals, references, *, val_signals=None,
                 val_references=None, **options):
        if not isinstance(encoder, UnrolledEncoder):
            raise InputError("train() needs a LISTA or LSALSA encoder")
        settings = TrainSettings(**options)
        M, width = encoder.W.shape[1], settings.reference_width(encoder)
        self.P = check_pair(signals, references, M, width, "signals", "references")
        has_val = val_signals is not None or val_references is not None
        if has_val:
            if val_signals is None or val_references is None:
                raise InputError("give both val_signals and val_references, or neither")
            check_pair(val_signals, val_references, M, width, "val_signals", "val_references")
        elif settings.schedule == "plateau":
            raise InputError("the plateau schedule follows the validation RMSE: give "
                             "val_signals and val_references")
        self.encoder = encoder
        self.objective = settings.objective
        self.weights = settings.weights(encoder)
        self.hyper = settings.config(encoder, has_val)  # the training hyperparameters
        self.max_epochs = settings.max_epochs
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.batches = Batches(signals, references, M=M, augment=settings.augment_component,
                               zoom=settings.augment_zoom, place=settings.place_component,
                               generator=self.generator)
        self.val = (val_signals, val_references) if has_val else None
        if settings.place_component is not None and has_val:
            self.val = placed_validation(val_references, settings.place_component, M,
                                         settings.seed, encoder.W)
        self.steps_per_epoch = math.ceil(self.P / settings.batch_size)
        self.names = [n for n, p in encoder.named_parameters() if p.requires_grad]
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.result = TrainResult(encoder=encoder)
        self.opt = None
        self.dist = Distributed.from_env(encoder.W.device)  # last: nothing fails after it

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.dist.close()

    # -- set-up ----------------------------------------------------------------------------
    def _optimizer(self, scales: dict[str, float]) -> torch.optim.Optimizer:
        h = self.hyper
        # Optimising P / s: Adam's step scales with s, SGD's with s^2 (its gradient is s dL/dP).
        power = 0 if not h["step_scaling"] else (1 if h["optimizer"] == "adam" else 2)
        # The thresholds' step is threshold_lr times the others' (recorded away from 1 only).
        steps = {"thresholds": h.get("threshold_lr", DEFAULTS["threshold_lr"])}
        groups = [{"params": [p], "lr": h["lr"], "name": n,
                   "scale": scales[n] ** power * steps.get(n, 1.0)}
                  for n, p in zip(self.names, self.params, strict=True)]
        if h["optimizer"] == "sgd":
            return torch.optim.SGD(groups, lr=h["lr"], momentum=h["momentum"])
        return torch.optim.Adam(groups, lr=h["lr"])

    def begin(self, start: TrainState | None = None, source: str = "the start state") -> None:
        """A fresh run, or the run ``start`` left (``source`` names it in errors): optimizer,
        scales, anchor, best weights, history, and epoch 0's validation for a fresh one."""
        h, result = self.hyper, self.result
        if start is not None:
            try:
                self.encoder.load_state_dict(start.model)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise InputError(f"{source} does not fit this encoder: {exc}") from exc
        self.scales = start.scales if start is not None else step_scales(self.encoder)
        self.opt = self._optimizer(self.scales)
        anchor, best = None, None
        if start is not None:
            try:
                self.opt.load_state_dict(start.optimizer)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise InputError(f"{source} does not fit this optimizer: {exc}") from exc
            self.generator.set_state(start.generator)
            result.history = start.history
            result.resumed_from = start.epoch
            result.best_epoch = start.best_epoch
            if start.stopped in FINAL_STOPS:  # finished for good; max_epochs may grow
                result.stopped = start.stopped
            anchor, best = start.anchor, start.best
        if anchor is None and h["anchor_decay"] > 0:
            anchor = {n: p.detach().clone() for n, p in zip(self.names, self.params,
                                                            strict=True)}
        self.anchor = anchor
        if not result.history:  # epoch 0: the untrained encoder
            first = self._val()
            if first is not None and not math.isfinite(first):
                raise InputError("the untrained encoder's codes of the validation data are "
                                 "not finite; rescale the signals or check the dictionary")
            result.history.append({"epoch": 0, "loss": None, "val_rmse": first,
                                   "lr": None, "seconds": 0.0})
        self.best = best if best is not None else _state_copy(self.encoder)
        result.initial_val_rmse = result.history[0]["val_rmse"]

    def state(self) -> TrainState:
        """The run's state now; it refers to the live tensors (see :class:`TrainState`)."""
        result = self.result
        return TrainState(epoch=result.history[-1]["epoch"], history=result.history,
                          best_epoch=result.best_epoch, stopped=result.stopped,
                          scales=self.scales, generator=self.generator.get_state(),
                          model=self.encoder.state_dict(), optimizer=self.opt.state_dict(),
                          best=self.best, anchor=self.anchor)

    # -- the loop ----------------------------------------------------------------------------
    def _lr(self, step: int, epoch: int, halvings: int) -> float:
        return step_size(self.hyper, step, epoch, self.max_epochs * self.steps_per_epoch,
                         halvings)

    def _clip(self) -> None:
        # The norm of the gradient with respect to P / s is sqrt(sum_P (s ||dL/dP||)^2).
        h = self.hyper
        if h["grad_clip"] is None:
            return
        sizes = [self.scales[n] if h["step_scaling"] else 1.0 for n in self.names]
        norms = [s * p.grad.norm() for s, p in zip(sizes, self.params, strict=True)
                 if p.grad is not None]
        if not norms:
            return
        total = torch.linalg.vector_norm(torch.stack(norms))
        factor = torch.clamp(h["grad_clip"] / (total + 1e-12), max=1.0)
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(factor)

    def _epoch(self, model, epoch: int, halvings: int) -> float:
        h, dist = self.hyper, self.dist
        param = self.encoder.W
        order = torch.randperm(self.P, generator=self.generator)
        loss_sum = torch.zeros((), dtype=param.dtype, device=param.device)
        model.train()
        for k, start in enumerate(range(0, self.P, h["batch_size"])):
            lr_t = self._lr(epoch * self.steps_per_epoch + k, epoch, halvings)
            for group in self.opt.param_groups:
                group["lr"] = lr_t * group["scale"]
            batch = order[start:start + h["batch_size"]]
            Y, X = self.batches(batch, param, dist)
            half_sq = sample_loss(self.encoder.problem, model(Y), X, objective=self.objective,
                                  weights=self.weights,
                                  reconstruction_weight=h["reconstruction_weight"])
            # Scaled so DDP's gradient average over ranks is the global batch mean.
            loss = half_sq.sum() * (dist.world_size / len(batch))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self._clip()
            self.opt.step()
            if self.anchor is not None:
                with torch.no_grad():
                    for name, p in zip(self.names, self.params, strict=True):
                        p.sub_(p - self.anchor[name], alpha=lr_t * h["anchor_decay"])
            loss_sum += half_sq.detach().sum()
        return float(dist.all_reduce_sum(loss_sum)) / self.P

    def run(self, callback: Callable[[TrainState], None] | None = None) -> TrainResult:
        """Train until a stop (a fresh run unless :meth:`begin` set one up); ``callback``
        gets the :class:`TrainState` after every epoch."""
        if self.opt is None:
            self.begin()
        result, dist = self.result, self.dist
        epoch = result.history[-1]["epoch"]
        model = dist.wrap(self.encoder)
        prev_loss = result.history[-1]["loss"]
        while epoch < self.max_epochs and not result.stopped:
            began = time.perf_counter()
            halvings = epoch_halvings(self.hyper, result.history, epoch)  # once an epoch
            lr_first = self._lr(epoch * self.steps_per_epoch, epoch, halvings)
            epoch_loss = self._epoch(model, epoch, halvings)
            epoch += 1
            loss_ok = math.isfinite(epoch_loss) and _finite_weights(self.encoder)
            val = self._val() if loss_ok else None
            # Finite weights whose codes overflow on the validation data diverged too.
            finite = loss_ok and (val is None or math.isfinite(val))
            # A diverged epoch is recorded with None (strict JSON has no NaN).
            entry = {"epoch": epoch, "loss": epoch_loss if loss_ok else None,
                     "val_rmse": val if finite else None, "lr": lr_first,
                     "seconds": time.perf_counter() - began}
            result.history.append(entry)
            if finite:
                self._keep_if_best(epoch, val)
                result.stopped = self._stop_reason(epoch, epoch_loss, prev_loss)
            else:
                # Training ends here; the state handed on holds the best epoch, not NaN weights.
                result.stopped = "diverged"
                self.encoder.load_state_dict(self.best)
            prev_loss = epoch_loss
            if callback is not None:
                callback(self.state())
        return self._finish()

    def _val(self) -> float | None:
        # Every rank measures it (the weights are identical), so all take the same decisions.
        if self.val is None:
            return None
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            return validation_rmse(self.encoder, *self.val, objective=self.objective)
        finally:
            self.encoder.train(was_training)

    def _keep_if_best(self, epoch: int, val: float | None) -> None:
        """Keep this (finite) epoch's weights if they are the best so far on validation."""
        result = self.result
        if self.val is None:  # nothing to select by: the last finite epoch
            better = True
        else:
            best_val = result.history[result.best_epoch]["val_rmse"]
            better = val is not None and math.isfinite(val) and val < best_val
        if better:
            result.best_epoch = epoch
            self.best = _state_copy(self.encoder)

    def _stop_reason(self, epoch: int, loss: float, prev_loss: float | None) -> str:
        h = self.hyper
        if prev_loss is not None and abs(loss - prev_loss) < h["rel_tol"] * abs(prev_loss):
            return "rel_tol"
        if self.val is not None and h["patience"] is not None \
                and epochs_without_improvement(h, self.result.history) >= h["patience"]:
            return "patience"
        if epoch >= self.max_epochs:
            return "max_epochs"
        return ""

    def _finish(self) -> TrainResult:
        result = self.result
        self.encoder.load_state_dict(self.best)
        last = result.history[-1]
        result.epochs = last["epoch"]
        result.loss = last["loss"]
        result.val_rmse = result.history[result.best_epoch]["val_rmse"]
        result.stopped = result.stopped or "max_epochs"
        return result


def _finite_weights(encoder: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in encoder.parameters())


def _state_copy(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}
