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

With a run directory every epoch ends with an atomic checkpoint, and ``resume=True`` continues
a killed run to exactly the result of an uninterrupted one (same weights, bit for bit, on the
same hardware and thread count): shuffling uses a seeded ``torch.Generator`` whose state is
saved with the model, the optimizer, the best epoch's weights and the step scales.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import InputError
from ...io import remove_stale_temporaries, write_json
from ...version import provenance
from ...workflow.checkpoint import (
    generator_state,
    load_checkpoint,
    save_checkpoint,
    set_generator_state,
)
from ..encoders import UnrolledEncoder
from .distributed import Distributed

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
LR_SCHEDULE = ("step t of n: lr * c(t / n) / (1 + lr_decay * epoch), c = (1 + cos(pi x)) / 2 "
               "(cosine) or 1 (constant); per tensor times s (Adam) or s^2 (SGD)")
FINAL_STOPS = ("rel_tol", "patience", "diverged")
CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
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
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 < value <= MAX_LR:
        raise InputError(f"{name} must be a number in (0, {MAX_LR:g}], got {value!r}")
    return float(value)


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
    run_dir : the run directory, if any
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
    run_dir: Path | None = None
    resumed_from: int = 0

    def summary(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "stopped": self.stopped,
                "loss": self.loss, "initial_val_rmse": self.initial_val_rmse,
                "val_rmse": self.val_rmse}


def code_rmse(estimate: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sqrt(mean_j (x_hat_j - x*_j)^2)`` (docs/DESIGN.md section 6), shape (B,)."""
    return (estimate - optimal).pow(2).mean(dim=1).sqrt()


@torch.no_grad()
def validation_rmse(encoder: torch.nn.Module, signals, targets, batch_size: int = 4096) -> float:
    """Mean over samples of :func:`code_rmse` of ``encoder(signals)`` against ``targets``."""
    param = next(encoder.parameters())
    total, count = 0.0, 0
    for start in range(0, len(signals), batch_size):
        rows = slice(start, start + batch_size)
        Y = _as_batch(signals[rows], param)
        X = _as_batch(targets[rows], param)
        total += float(code_rmse(encoder(Y), X).sum())
        count += Y.shape[0]
    return total / count


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
          optimizer: str = DEFAULTS["optimizer"], lr: float = DEFAULTS["lr"],
          schedule: str = DEFAULTS["schedule"], lr_decay: float = DEFAULTS["lr_decay"],
          momentum: float = DEFAULTS["momentum"], step_scaling: bool = DEFAULTS["step_scaling"],
          grad_clip: float | None = DEFAULTS["grad_clip"],
          anchor_decay: float = DEFAULTS["anchor_decay"],
          reconstruction_weight: float | None = DEFAULTS["reconstruction_weight"],
          batch_size: int = DEFAULTS["batch_size"], max_epochs: int = 100,
          patience: int | None = DEFAULTS["patience"], rel_tol: float = DEFAULTS["rel_tol"],
          seed: int = 0, run_dir=None, resume: bool = False, progress: bool = True,
          data_info: dict | None = None,
          callback: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``encoder`` in place to map ``signals`` to their optimal ``targets``.

    Parameters
    ----------
    encoder : LISTA or LSALSA; its dtype and device are used for training.
    signals : array (P, M), NumPy (memory-mapped is fine: rows are read per mini-batch) or torch.
    targets : array (P, N), the optimal codes of ``signals``.
    val_signals, val_targets : optional validation pair (whole images or photographs held out
        of training); RMSE is measured every epoch and selects the epoch returned.
    optimizer : "adam" (default) or "sgd" (vanilla SGD, the paper; ``momentum`` optional).
    lr : the (relative, with ``step_scaling``) step size, in (0, ``MAX_LR`` = 1e6].
    schedule : "cosine" (decay to 0 over ``max_epochs``, per step) or "constant".
    lr_decay : epoch e additionally divides the step by ``1 + lr_decay * e`` (the paper's grid).
    step_scaling : optimise each tensor divided by its starting size (:func:`step_scales`).
    grad_clip : clip the norm of the (scaled) gradient to this; None: no clipping.
    anchor_decay : per step, ``P -= lr_t * anchor_decay * (P - P_0)`` (0: off).
    reconstruction_weight : ``w`` in the loss ``1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2`` per
        sample (``e = f(y) - x*``, ``e_i`` its part on dictionary ``i``): ``w = 0`` is Eq. 15
        exactly. None (default): 0 for one dictionary (SC, where codes are the product) and 1
        for MCA, where the codes exist to rebuild each component, so each component's error
        in signal space counts too (atoms have unit norm: both terms have the same scale).
    batch_size : the GLOBAL mini-batch size (split across DDP processes under torchrun).
    max_epochs, patience, rel_tol : stop after ``max_epochs``, after ``patience`` epochs without
        a better validation RMSE (None: never), or when ``|L_e - L_{e-1}| / L_{e-1} < rel_tol``
        for the epoch loss ``L``.
    seed : seeds the mini-batch shuffling (a private ``torch.Generator``).
    run_dir : write config.json, provenance.json, history.json, checkpoint.safetensors after
        every epoch and the final model.safetensors there. Only rank 0 writes.
    resume : continue from the checkpoint in ``run_dir`` (the hyperparameters must match;
        ``max_epochs`` may only grow, and only with the constant schedule: the cosine one
        depends on it). Without a checkpoint yet, starts afresh.
    progress : a tqdm bar with the current loss (hidden when stderr is not a terminal).
    data_info : extra description of the data recorded in config.json (e.g. dataset name).
    callback : called on every rank with each epoch's history entry after its checkpoint.

    Returns
    -------
    TrainResult
    """
    if not isinstance(encoder, UnrolledEncoder):
        raise InputError("train() needs a LISTA or LSALSA encoder")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")
    if schedule not in SCHEDULES:
        raise InputError(f"unknown schedule {schedule!r}; choose 'cosine' or 'constant'")
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(max_epochs, "max_epochs")
    if patience is not None:
        _check_positive_int(patience, "patience")
    check_lr(lr)
    for name, value in (("lr_decay", lr_decay), ("momentum", momentum),
                        ("rel_tol", rel_tol), ("anchor_decay", anchor_decay),
                        ("grad_clip", 1.0 if grad_clip is None else grad_clip)):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0:
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    if reconstruction_weight is None:
        reconstruction_weight = 0.0 if len(encoder.block_sizes) == 1 else 1.0
    if isinstance(reconstruction_weight, bool) or not isinstance(
            reconstruction_weight, int | float) or not math.isfinite(reconstruction_weight) \
            or reconstruction_weight < 0:
        raise InputError("reconstruction_weight must be a finite number >= 0, got "
                         f"{reconstruction_weight!r}")
    if grad_clip is not None and grad_clip <= 0:
        raise InputError(f"grad_clip must be > 0 (or None), got {grad_clip}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer, got {seed!r}")
    M, N = encoder.W.shape[1], encoder.W.shape[0]
    _check_pair(signals, targets, M, N, "signals", "targets")
    has_val = val_signals is not None or val_targets is not None
    if has_val:
        if val_signals is None or val_targets is None:
            raise InputError("give both val_signals and val_targets, or neither")
        _check_pair(val_signals, val_targets, M, N, "val_signals", "val_targets")

    hyper = {"optimizer": optimizer, "lr": float(lr), "schedule": schedule,
             "lr_decay": float(lr_decay), "lr_schedule": LR_SCHEDULE,
             "momentum": float(momentum), "step_scaling": bool(step_scaling),
             "grad_clip": None if grad_clip is None else float(grad_clip),
             "anchor_decay": float(anchor_decay),
             "reconstruction_weight": float(reconstruction_weight),
             "batch_size": int(batch_size),
             "patience": patience, "rel_tol": float(rel_tol), "seed": int(seed),
             "loss": "mean over samples of 1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2, e = f(y) - x*"
                     " (w = reconstruction_weight; w = 0 is Eq. 15)",
             "selection": "best validation RMSE, epoch 0 included" if has_val
             else "last epoch (no validation data)"}
    dist = Distributed.from_env(encoder.W.device)
    try:
        return _Trainer(encoder, dist, hyper, max_epochs, signals, targets,
                        (val_signals, val_targets) if has_val else None, run_dir, resume,
                        progress, data_info, callback).run()
    finally:
        dist.close()


class _Trainer:
    """One training run: the optimizer, the schedule, the best epoch and the checkpoints."""

    def __init__(self, encoder, dist, hyper, max_epochs, signals, targets, val, run_dir,
                 resume, progress, data_info, callback):
        self.encoder, self.dist, self.hyper = encoder, dist, hyper
        self.max_epochs = max_epochs
        self.signals, self.targets, self.val = signals, targets, val
        self.P = int(signals.shape[0])
        self.steps_per_epoch = math.ceil(self.P / hyper["batch_size"])
        self.progress, self.callback = progress, callback
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        data = {"train": _describe(signals, targets), **(data_info or {})}
        if val is not None:
            data["validation"] = _describe(*val)
        self.data = data
        self.config = {"encoder": encoder.config(), "training": hyper, "data": data,
                       "max_epochs": max_epochs, "world_size": dist.world_size}
        self.names = [n for n, p in encoder.named_parameters() if p.requires_grad]
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.generator = torch.Generator().manual_seed(hyper["seed"])
        self.result = TrainResult(encoder=encoder, run_dir=self.run_dir)

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

    def _start(self):
        """Fresh or resumed state: optimizer, scales, anchor, best weights, history."""
        h, result = self.hyper, self.result
        state, best, anchor = None, None, None
        checkpoint = self.run_dir / CHECKPOINT if self.run_dir is not None else None
        if checkpoint is not None:
            if self.resume and checkpoint.is_file():
                _check_same_config(self.run_dir, self.config)
                model_state, optim_state, state, extra = load_checkpoint(checkpoint)
                try:
                    self.encoder.load_state_dict(model_state)
                except (RuntimeError, KeyError, ValueError) as exc:
                    raise InputError(f"checkpoint {checkpoint} does not fit this encoder: "
                                     f"{exc}") from exc
                best, anchor = extra.get("best"), extra.get("anchor")
            elif not self.resume and (checkpoint.exists() or (self.run_dir / MODEL).exists()):
                raise InputError(f"run directory {self.run_dir} already holds a run; resume it or "
                                 "choose another directory")
        scales = state["scales"] if state else step_scales(self.encoder)
        self.scales = scales
        self.opt = self._optimizer(scales)
        if state:
            try:
                self.opt.load_state_dict(optim_state)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise InputError(f"checkpoint {checkpoint} does not fit this optimizer: "
                                 f"{exc}") from exc
            set_generator_state(self.generator, state["generator"])
            result.history = state["history"]
            result.resumed_from = state["epoch"]
            result.best_epoch = state["best_epoch"]
            if state.get("stopped") in FINAL_STOPS:  # finished for good; max_epochs may grow
                result.stopped = state["stopped"]
        if anchor is None and h["anchor_decay"] > 0:
            anchor = {n: p.detach().clone() for n, p in zip(self.names, self.params,
                                                            strict=True)}
        self.anchor = anchor
        if not result.history:  # epoch 0: the untrained encoder
            start = self._val()
            if start is not None and not math.isfinite(start):
                raise InputError("the untrained encoder's codes of the validation data are "
                                 "not finite; rescale the signals or check the dictionary")
            result.history.append({"epoch": 0, "loss": None, "val_rmse": start,
                                   "lr": None, "seconds": 0.0})
        self.best = best if best is not None else _state_copy(self.encoder)
        result.initial_val_rmse = result.history[0]["val_rmse"]
        # Written once everything above passed its checks: a refused start leaves nothing.
        if checkpoint is not None and self.dist.is_main:
            remove_stale_temporaries(self.run_dir)  # what killed runs left behind
            write_json(self.run_dir / "config.json", self.config)
            write_json(self.run_dir / "provenance.json", provenance())

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

    def run(self) -> TrainResult:
        self._start()
        result, dist = self.result, self.dist
        epoch = result.history[-1]["epoch"]
        model = dist.wrap(self.encoder)
        bar = tqdm(total=self.max_epochs, initial=epoch, desc=f"train {self.encoder.kind}",
                   unit="epoch", disable=True if not (self.progress and dist.is_main) else None,
                   dynamic_ncols=True)
        prev_loss = result.history[-1]["loss"]
        try:
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
                    # Training ends here; the checkpoint holds the best epoch, not NaN weights.
                    result.stopped = "diverged"
                    self.encoder.load_state_dict(self.best)
                prev_loss = epoch_loss
                self._checkpoint(epoch)
                bar.update(1)
                bar.set_postfix(loss=f"{epoch_loss:.4g}", **(
                    {"val_rmse": f"{entry['val_rmse']:.4g}"} if entry["val_rmse"] is not None
                    else {}))
                if self.callback is not None:
                    self.callback(entry)
        finally:
            bar.close()
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

    def _checkpoint(self, epoch: int) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        result = self.result
        state = {"epoch": epoch, "history": result.history, "best_epoch": result.best_epoch,
                 "generator": generator_state(self.generator), "stopped": result.stopped,
                 "scales": self.scales}
        extra = {"best": self.best}
        if self.anchor is not None:
            extra["anchor"] = self.anchor
        save_checkpoint(self.run_dir / CHECKPOINT, self.encoder, self.opt, state, extra)
        write_json(self.run_dir / "history.json", result.history)

    def _finish(self) -> TrainResult:
        result = self.result
        self.encoder.load_state_dict(self.best)
        last = result.history[-1]
        result.epochs = last["epoch"]
        result.loss = last["loss"]
        result.val_rmse = result.history[result.best_epoch]["val_rmse"]
        result.stopped = result.stopped or "max_epochs"
        if self.run_dir is not None and self.dist.is_main:
            self.encoder.save(self.run_dir / MODEL, extra={
                "training": result.summary(), "training_config": self.hyper,
                "data": self.data})
        self.dist.barrier()
        return result


# -- helpers ------------------------------------------------------------------------------------

def _finite_weights(encoder: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in encoder.parameters())


def _state_copy(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _as_batch(rows, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(rows, torch.Tensor):
        # Always a copy in torch's own (aligned) memory: MKL's products may round differently
        # for buffers of another alignment, which would break bit-exact resume and make
        # NumPy and torch inputs train differently. The batch is small.
        rows = torch.tensor(np.asarray(rows))
    return rows.to(dtype=like.dtype, device=like.device)


def _rows(array, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a NumPy (possibly memory-mapped) array or tensor, as ``like``."""
    if isinstance(array, torch.Tensor):
        return array[index.to(array.device)].to(dtype=like.dtype, device=like.device)
    return _as_batch(array[index.numpy()], like)


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")


def _check_pair(signals, targets, M: int, N: int, s_name: str, t_name: str) -> int:
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


def _describe(signals, targets) -> dict:
    """Shapes, dtypes and a fingerprint of the data (hashing up to 256 evenly spaced rows)."""
    digest = hashlib.sha256()
    for array in (signals, targets):
        rows = np.unique(np.linspace(0, array.shape[0] - 1, min(256, array.shape[0])).astype(
            np.int64))
        part = array[torch.from_numpy(rows)] if isinstance(array, torch.Tensor) else array[rows]
        part = part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else part
        digest.update(repr((tuple(array.shape), str(part.dtype))).encode())
        digest.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    return {"P": int(signals.shape[0]), "M": int(signals.shape[1]),
            "N": int(targets.shape[1]), "dtype": str(signals.dtype).removeprefix("torch."),
            "fingerprint": digest.hexdigest()[:16]}


def _check_same_config(run: Path, config: dict) -> None:
    import json

    try:
        saved = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot resume {run}: config.json is missing or corrupt ({exc})") \
            from exc
    differ = []
    for key in ("encoder", "training", "data"):
        old, new = _comparable(saved.get(key), key), _comparable(config[key], key)
        if old != new:
            names = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k) != new.get(k))
            differ.extend(f"{key}.{name}" for name in names)
    if saved.get("max_epochs") != config["max_epochs"] and (
            config["training"]["schedule"] != "constant"
            or saved.get("max_epochs", 0) > config["max_epochs"]):
        differ.append("max_epochs (the cosine schedule depends on it; a constant one lets it "
                      "only grow)")
    if differ:
        raise InputError(f"cannot resume {run}: {', '.join(differ)} differ from the saved run")


# What a resume does not compare: descriptions (their wording may change between versions) and
# the start's validation RMSE, recomputed on every call (its last bits follow the thread count;
# the start itself is in the encoder's config).
_NOT_COMPARED = {"encoder": ("lsalsa_version",), "training": ("lr_schedule", "loss", "selection"),
                 "data": ("start",)}


def _comparable(section, key: str):
    if isinstance(section, dict):
        return {k: v for k, v in section.items() if k not in _NOT_COMPARED.get(key, ())}
    return section
