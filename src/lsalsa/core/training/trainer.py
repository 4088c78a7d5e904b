"""Supervised training of LISTA / LSALSA on (signal, optimal code) pairs.

The loss is Eq. 15, ``1/(2P) sum_p ||x*_p - f_e(y_p)||^2`` (per mini-batch, the mean over its
samples of half the squared error summed over the N code entries), plus, for MCA by default,
each component's reconstruction error ``w/2 sum_i ||A_i (x*_p - f_e(y_p))_i||^2``: separation is
judged in signal space, where Eq. 15 alone lets the code errors fall on the atoms that matter
most (measured on held-out photographs: code RMSE 0.13 but natural PSNR 18.6 dB, against 21.0
dB for SALSA; with ``w = 1`` code RMSE 0.148 and PSNR 21.7 dB).

The defaults train both encoders, on any data, without hand-tuning:

- **Step scaling.** Each learned tensor ``P`` is optimised as ``P / s`` with ``s`` its size at
  the start (``||P||_2 / sqrt(rows * cols)`` for a matrix: a typical entry of a matrix of unit
  spectral norm; the RMS for thresholds). So ``lr`` is a relative step: with Adam every entry
  moves by about ``lr * s`` per step and every operator's spectrum by about ``lr`` of its
  size, whatever ``N``, ``mu`` or the data's scale. (Without it Adam moves each entry by
  ``lr``: the spectrum of an N x N matrix with entries ~1/N moves by ~``N * lr`` per step.)
- **Adam, lr 0.1, cosine decay** of the step over ``max_epochs`` (per step, to 0), optionally
  times the paper's inverse-time decay ``1 / (1 + lr_decay * epoch)``.
- **Gradient clipping** of the (scaled) gradient's norm, so that SGD, the paper's optimiser,
  cannot blow up on an unlucky batch.
- **The best validation epoch wins**, the starting point (epoch 0) included: training never
  returns an encoder worse on validation than the classic algorithm it began as. Training
  stops early when validation has not improved for ``patience`` epochs.
- Optionally ``anchor_decay`` pulls the weights back towards where they started (a decoupled
  weight decay on ``P - P_0``), for scarce data.

Exact resume: after every epoch the run's whole state (:class:`TrainState`: weights, optimizer,
the shuffling ``torch.Generator``, the best epoch's weights, the step scales, the history) goes
to an optional callback, and a run started from such a state continues to exactly the result
of an uninterrupted one (same weights, bit for bit, on the same hardware and thread count).
:mod:`lsalsa.workflow.training` keeps it in a run directory; this module touches no files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ...checks import (
    check_fields,
    integer,
    non_negative_number,
    number,
    one_of,
    positive_int,
    positive_number,
    rule,
)
from ...errors import InputError
from .._arrays import as_batch
from ..encoders import UnrolledEncoder
from ..metrics import validation_rmse
from .distributed import Distributed

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
LR_SCHEDULE = ("step t of n: lr * c(t / n) / (1 + lr_decay * epoch), c = (1 + cos(pi x)) / 2 "
               "(cosine) or 1 (constant); per tensor times s (Adam) or s^2 (SGD)")
FINAL_STOPS = ("rel_tol", "patience", "diverged")
# The defaults of train(), shared with the command line and the experiments.
DEFAULTS = {"optimizer": "adam", "lr": 0.1, "schedule": "cosine", "lr_decay": 0.0,
            "momentum": 0.0, "step_scaling": True, "grad_clip": 1.0, "anchor_decay": 0.0,
            "reconstruction_weight": None,
            "batch_size": 64, "patience": 5, "rel_tol": 1e-6}

# With step scaling (the default) lr is each step's size relative to the tensor's own size, so
# lr = 1 can already move a tensor by its whole size in one step. 1e6 leaves room for vanilla
# SGD's absolute steps on small gradients (and for forcing a divergence in tests); far above
# it training can only diverge, and near float32's range (lr times a tensor's scale) the
# optimizer itself fails with a traceback.
MAX_LR = 1e6


def check_lr(value, name: str = "lr") -> float:
    """A learning rate in (0, MAX_LR], else an InputError naming ``name``."""
    return number(value, name, low=0, low_open=True, high=MAX_LR)


@dataclass(frozen=True)
class TrainSettings:
    """The training options of :func:`train`, checked when made (see its docstring)."""

    optimizer: str = rule(one_of, DEFAULTS["optimizer"], choices=OPTIMIZERS)
    schedule: str = rule(one_of, DEFAULTS["schedule"], choices=SCHEDULES)
    batch_size: int = rule(positive_int, DEFAULTS["batch_size"])
    max_epochs: int = rule(positive_int, 100)
    patience: int | None = rule(positive_int, DEFAULTS["patience"], none=True)
    lr: float = rule(check_lr, DEFAULTS["lr"])
    lr_decay: float = rule(non_negative_number, DEFAULTS["lr_decay"])
    momentum: float = rule(non_negative_number, DEFAULTS["momentum"])
    rel_tol: float = rule(non_negative_number, DEFAULTS["rel_tol"])
    anchor_decay: float = rule(non_negative_number, DEFAULTS["anchor_decay"])
    grad_clip: float | None = rule(positive_number, DEFAULTS["grad_clip"], none=True)
    reconstruction_weight: float | None = rule(non_negative_number,
                                               DEFAULTS["reconstruction_weight"], none=True)
    step_scaling: bool = DEFAULTS["step_scaling"]
    seed: int = rule(integer, 0)

    def __post_init__(self):
        check_fields(self)
        object.__setattr__(self, "step_scaling", bool(self.step_scaling))

    def config(self, encoder: UnrolledEncoder, validation: bool) -> dict:
        """The hyperparameters as recorded with a run (all but ``max_epochs``), with the
        defaults that depend on the encoder resolved and the loss and selection described."""
        weight = self.reconstruction_weight
        if weight is None:  # see train(): Eq. 15 for SC, each component's error too for MCA
            weight = 0.0 if len(encoder.block_sizes) == 1 else 1.0
        return {"optimizer": self.optimizer, "lr": self.lr, "schedule": self.schedule,
                "lr_decay": self.lr_decay, "lr_schedule": LR_SCHEDULE,
                "momentum": self.momentum, "step_scaling": self.step_scaling,
                "grad_clip": self.grad_clip, "anchor_decay": self.anchor_decay,
                "reconstruction_weight": float(weight), "batch_size": self.batch_size,
                "patience": self.patience, "rel_tol": self.rel_tol, "seed": self.seed,
                "loss": "mean over samples of 1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2, "
                        "e = f(y) - x* (w = reconstruction_weight; w = 0 is Eq. 15)",
                "selection": "best validation RMSE, epoch 0 included" if validation
                else "last epoch (no validation data)"}


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it was (see the module docstring).

    Attributes
    ----------
    epoch, history, best_epoch : as in :class:`TrainResult` (``epoch``: epochs done)
    stopped : the stop reason so far ("" while training goes on)
    scales : :func:`step_scales` of the encoder as it started
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
    """What :func:`train` returns.

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


def train(encoder: UnrolledEncoder, signals, targets, *, val_signals=None, val_targets=None,
          start: TrainState | None = None, callback: Callable[[TrainState], None] | None = None,
          **options) -> TrainResult:
    """Train ``encoder`` in place to map ``signals`` to their optimal ``targets``.

    Parameters
    ----------
    encoder : LISTA or LSALSA; its dtype and device are used for training.
    signals : array (P, M), NumPy (memory-mapped is fine: rows are read per mini-batch) or torch.
    targets : array (P, N), the optimal codes of ``signals``.
    val_signals, val_targets : optional validation pair (whole images or photographs held out
        of training); RMSE is measured every epoch and selects the epoch returned.
    start : continue exactly from this state (of a run with the same options and data) rather
        than from the encoder as it is.
    callback : called on every rank with the run's :class:`TrainState` after each epoch.
    **options : the fields of :class:`TrainSettings`:

        optimizer : "adam" (default) or "sgd" (vanilla SGD, the paper; ``momentum`` optional).
        lr : the (relative, with ``step_scaling``) step size, in (0, ``MAX_LR`` = 1e6].
        schedule : "cosine" (decay to 0 over ``max_epochs``, per step) or "constant".
        lr_decay : epoch e additionally divides the step by ``1 + lr_decay * e`` (the paper).
        step_scaling : optimise each tensor divided by its starting size (:func:`step_scales`).
        grad_clip : clip the norm of the (scaled) gradient to this; None: no clipping.
        anchor_decay : per step, ``P -= lr_t * anchor_decay * (P - P_0)`` (0: off).
        reconstruction_weight : ``w`` in the loss ``1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2`` per
            sample (``e = f(y) - x*``, ``e_i`` its part on dictionary ``i``): ``w = 0`` is
            Eq. 15 exactly. None (default): 0 for one dictionary (SC, where codes are the
            product) and 1 for MCA, where the codes exist to rebuild each component, so each
            component's error in signal space counts too (atoms have unit norm: both terms
            have the same scale).
        batch_size : the GLOBAL mini-batch size (split across DDP processes under torchrun).
        max_epochs, patience, rel_tol : stop after ``max_epochs``, after ``patience`` epochs
            without a better validation RMSE (None: never), or when
            ``|L_e - L_{e-1}| / L_{e-1} < rel_tol`` for the epoch loss ``L``.
        seed : seeds the mini-batch shuffling (a private ``torch.Generator``).

    Returns
    -------
    TrainResult
    """
    with Trainer(encoder, signals, targets, val_signals=val_signals, val_targets=val_targets,
                 **options) as trainer:
        trainer.begin(start)
        return trainer.run(callback)


class Trainer:
    """One training run: checked options and data, the optimizer, the schedule and the best
    epoch. :meth:`begin` sets up a fresh or a resumed run, :meth:`run` trains; use it in a
    ``with`` block, which leaves the DDP process group it may have joined."""

    def __init__(self, encoder: UnrolledEncoder, signals, targets, *, val_signals=None,
                 val_targets=None, **options):
        if not isinstance(encoder, UnrolledEncoder):
            raise InputError("train() needs a LISTA or LSALSA encoder")
        settings = TrainSettings(**options)
        M, N = encoder.W.shape[1], encoder.W.shape[0]
        check_pair(signals, targets, M, N, "signals", "targets")
        has_val = val_signals is not None or val_targets is not None
        if has_val:
            if val_signals is None or val_targets is None:
                raise InputError("give both val_signals and val_targets, or neither")
            check_pair(val_signals, val_targets, M, N, "val_signals", "val_targets")
        self.encoder = encoder
        self.settings = settings
        self.hyper = settings.config(encoder, has_val)  # the training hyperparameters
        self.max_epochs = settings.max_epochs
        self.signals, self.targets = signals, targets
        self.val = (val_signals, val_targets) if has_val else None
        self.P = int(signals.shape[0])
        self.steps_per_epoch = math.ceil(self.P / settings.batch_size)
        self.names = [n for n, p in encoder.named_parameters() if p.requires_grad]
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.generator = torch.Generator().manual_seed(settings.seed)
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
        groups = [{"params": [p], "lr": h["lr"], "scale": scales[n] ** power, "name": n}
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
    def _lr(self, step: int, epoch: int) -> float:
        h = self.hyper
        factor = 1.0
        if h["schedule"] == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * step / (self.max_epochs
                                                           * self.steps_per_epoch)))
        return h["lr"] * factor / (1.0 + h["lr_decay"] * epoch)

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

    def _epoch(self, model, epoch: int) -> float:
        h, dist = self.hyper, self.dist
        param = self.encoder.W
        order = torch.randperm(self.P, generator=self.generator)
        loss_sum = torch.zeros((), dtype=param.dtype, device=param.device)
        model.train()
        for k, start in enumerate(range(0, self.P, h["batch_size"])):
            lr_t = self._lr(epoch * self.steps_per_epoch + k, epoch)
            for group in self.opt.param_groups:
                group["lr"] = lr_t * group["scale"]
            batch = order[start:start + h["batch_size"]]
            mine = dist.shard(batch)
            Y = _rows(self.signals, mine, param)
            X = _rows(self.targets, mine, param)
            half_sq = self._loss(model(Y), X)
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

    def _loss(self, estimate: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
        """Per sample: ``1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2`` with ``e = f(y) - x*``."""
        err = estimate - optimal
        loss = 0.5 * err.pow(2).sum(dim=1)
        weight = self.hyper["reconstruction_weight"]
        if weight:
            for e_i, A_i in zip(self.encoder.problem.split(err), self.encoder.problem.blocks,
                                strict=True):
                loss = loss + (0.5 * weight) * (e_i @ A_i.T).pow(2).sum(dim=1)
        return loss

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
            lr_first = self._lr(epoch * self.steps_per_epoch, epoch)
            epoch_loss = self._epoch(model, epoch)
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
            return validation_rmse(self.encoder, *self.val)
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
                and epoch - self.result.best_epoch >= h["patience"]:
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


# -- helpers ------------------------------------------------------------------------------------

def _finite_weights(encoder: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in encoder.parameters())


def _state_copy(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _rows(array, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a NumPy (possibly memory-mapped) array or tensor, as ``like``."""
    if isinstance(array, torch.Tensor):
        return array[index.to(array.device)].to(dtype=like.dtype, device=like.device)
    return as_batch(array[index.numpy()], like)


def check_pair(signals, targets, M: int, N: int, s_name: str, t_name: str) -> int:
    """Check a pair of signals (P, M) and their codes (P, N): 2-D, non-empty, floating point,
    finite, with as many rows; returns P. NumPy (memory-mapped: read in chunks) or torch."""
    for name, array, width in ((s_name, signals, M), (t_name, targets, N)):
        if not isinstance(array, np.ndarray | torch.Tensor):
            raise InputError(f"{name} must be a NumPy array or torch tensor, got "
                             f"{type(array).__name__}")
        if array.ndim != 2 or array.shape[0] == 0:
            raise InputError(f"{name} must be a non-empty 2-D array, got shape "
                             f"{tuple(array.shape)}")
        if array.shape[1] != width:
            raise InputError(f"{name} has {array.shape[1]} columns but the encoder expects "
                             f"{width}")
        kind = array.dtype.kind if isinstance(array, np.ndarray) else (
            "f" if array.is_floating_point() else "i")
        if kind != "f":
            raise InputError(f"{name} must hold floating-point values, got {array.dtype}")
        _check_finite(array, name)
    if signals.shape[0] != targets.shape[0]:
        raise InputError(f"{s_name} has {signals.shape[0]} rows but {t_name} has "
                         f"{targets.shape[0]}")
    return int(signals.shape[0])


def _check_finite(array, name: str, chunk: int = 65536) -> None:
    # In chunks, so a memory-mapped array is never read into memory at once.
    for start in range(0, array.shape[0], chunk):
        part = array[start:start + chunk]
        ok = bool(torch.isfinite(part).all()) if isinstance(part, torch.Tensor) else bool(
            np.isfinite(part).all())
        if not ok:
            raise InputError(f"{name} contains NaN or Inf")
