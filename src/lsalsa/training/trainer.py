"""Supervised training of LISTA / LSALSA on (signal, optimal code) pairs (Eq. 15).

The loss is ``1/(2P) sum_p ||x*_p - f_e(y_p)||^2``: per mini-batch, the mean over its samples
of half the squared error summed over the N code entries. Vanilla SGD (the paper) or Adam; the
learning rate of epoch ``e`` (counting from 0) is ``lr / (1 + lr_decay * e)`` (inverse-time
decay; ``lr_decay = 0`` keeps it constant). Training stops when the relative change of the
epoch loss falls below ``rel_tol`` or after ``max_epochs``.

With a run directory every epoch ends with an atomic checkpoint, and ``resume=True`` continues
a killed run to exactly the result of an uninterrupted one (same weights, bit for bit, on the
same hardware and thread count): shuffling uses a seeded ``torch.Generator`` whose state is
saved with the model and optimizer.
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

from ..encoders import UnrolledEncoder
from ..errors import InputError
from ..io import write_json
from ..version import provenance
from .checkpoint import generator_state, load_checkpoint, save_checkpoint, set_generator_state
from .distributed import Distributed

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULE = "lr / (1 + lr_decay * epoch)"
CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    encoder : the trained encoder (the same object that was passed in)
    history : one dict per epoch: ``epoch``, ``loss`` (Eq. 15 over the epoch's mini-batches),
        ``val_rmse``, ``lr``, ``seconds``; entry 0 is the untrained encoder (``loss`` None)
    epochs : epochs trained in total (including those before a resume)
    stopped : "rel_tol", "max_epochs" or "diverged" (non-finite loss)
    initial_val_rmse, val_rmse : validation RMSE before and after training (None without
        validation data)
    loss : the last epoch loss
    run_dir : the run directory, if any
    resumed_from : the epoch a resumed run continued from (0 for a fresh run)
    """

    encoder: UnrolledEncoder
    history: list[dict] = field(default_factory=list)
    epochs: int = 0
    stopped: str = ""
    initial_val_rmse: float | None = None
    val_rmse: float | None = None
    loss: float | None = None
    run_dir: Path | None = None
    resumed_from: int = 0

    def summary(self) -> dict:
        return {"epochs": self.epochs, "stopped": self.stopped, "loss": self.loss,
                "initial_val_rmse": self.initial_val_rmse, "val_rmse": self.val_rmse}


def code_rmse(estimate: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sqrt(mean_j (x_hat_j - x*_j)^2)`` (DESIGN.md section 4), shape (B,)."""
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


def train(encoder: UnrolledEncoder, signals, targets, *, val_signals=None, val_targets=None,
          optimizer: str = "sgd", lr: float = 0.01, lr_decay: float = 0.0,
          momentum: float = 0.0, batch_size: int = 64, max_epochs: int = 100,
          rel_tol: float = 1e-6, seed: int = 0, run_dir=None, resume: bool = False,
          progress: bool = True, data_info: dict | None = None,
          callback: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``encoder`` in place to map ``signals`` to their optimal ``targets`` (Eq. 15).

    Parameters
    ----------
    encoder : LISTA or LSALSA; its dtype and device are used for training.
    signals : array (P, M), NumPy (memory-mapped is fine: rows are read per mini-batch) or torch.
    targets : array (P, N), the optimal codes of ``signals``.
    val_signals, val_targets : optional validation pair; RMSE is measured every epoch.
    optimizer : "sgd" (vanilla SGD, the paper; ``momentum`` optional) or "adam".
    lr, lr_decay : learning rate of epoch e is ``lr / (1 + lr_decay * e)``.
    batch_size : the GLOBAL mini-batch size (split across DDP processes under torchrun).
    max_epochs, rel_tol : stop after ``max_epochs`` or when ``|L_e - L_{e-1}| / L_{e-1} <
        rel_tol`` for the epoch loss ``L``.
    seed : seeds the mini-batch shuffling (a private ``torch.Generator``).
    run_dir : write config.json, provenance.json, history.json, checkpoint.safetensors after
        every epoch and the final model.safetensors there. Only rank 0 writes.
    resume : continue from the checkpoint in ``run_dir`` (the hyperparameters must match;
        ``max_epochs`` may grow). Without a checkpoint yet, starts afresh.
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
        raise InputError(f"unknown optimizer {optimizer!r}; choose 'sgd' or 'adam'")
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(max_epochs, "max_epochs")
    for name, value, lowest in (("lr", lr, 0.0), ("lr_decay", lr_decay, 0.0),
                                ("momentum", momentum, 0.0), ("rel_tol", rel_tol, 0.0)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < lowest:
            raise InputError(f"{name} must be a finite number >= {lowest}, got {value!r}")
    if lr <= 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer, got {seed!r}")
    M, N = encoder.W_e.shape[1], encoder.W_e.shape[0]
    P = _check_pair(signals, targets, M, N, "signals", "targets")
    has_val = val_signals is not None or val_targets is not None
    if has_val:
        if val_signals is None or val_targets is None:
            raise InputError("give both val_signals and val_targets, or neither")
        _check_pair(val_signals, val_targets, M, N, "val_signals", "val_targets")

    param = encoder.W_e
    dist = Distributed.from_env(param.device)
    try:
        return _train(encoder, dist, signals, targets, val_signals, val_targets, has_val, P,
                      optimizer=optimizer, lr=float(lr), lr_decay=float(lr_decay),
                      momentum=float(momentum), batch_size=batch_size, max_epochs=max_epochs,
                      rel_tol=float(rel_tol), seed=int(seed), run_dir=run_dir, resume=resume,
                      progress=progress, data_info=data_info, callback=callback)
    finally:
        dist.close()


def _train(encoder, dist, signals, targets, val_signals, val_targets, has_val, P, *,
           optimizer, lr, lr_decay, momentum, batch_size, max_epochs, rel_tol, seed,
           run_dir, resume, progress, data_info, callback) -> TrainResult:
    hyper = {"optimizer": optimizer, "lr": lr, "lr_decay": lr_decay, "lr_schedule": LR_SCHEDULE,
             "momentum": momentum, "batch_size": batch_size, "rel_tol": rel_tol, "seed": seed,
             "loss": "Eq. 15: mean over samples of 1/2 ||x* - f(y)||^2"}
    data = {"train": _describe(signals, targets), **(data_info or {})}
    if has_val:
        data["validation"] = _describe(val_signals, val_targets)
    config = {"encoder": encoder.config(), "training": hyper, "data": data,
              "max_epochs": max_epochs, "world_size": dist.world_size}

    params = [p for p in encoder.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    result = TrainResult(encoder=encoder, run_dir=Path(run_dir) if run_dir else None)
    start_epoch, prev_loss = 0, None

    run = Path(run_dir) if run_dir is not None else None
    if run is not None:
        checkpoint = run / CHECKPOINT
        if resume and checkpoint.is_file():
            _check_same_config(run, config)
            model_state, optim_state, state = load_checkpoint(checkpoint)
            try:
                encoder.load_state_dict(model_state)
                opt.load_state_dict(optim_state)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise InputError(f"checkpoint {checkpoint} does not fit this encoder: "
                                 f"{exc}") from exc
            set_generator_state(generator, state["generator"])
            start_epoch, prev_loss = state["epoch"], state["prev_loss"]
            result.history = state["history"]
            result.resumed_from = start_epoch
            if state.get("stopped") in ("rel_tol", "diverged"):  # finished for good
                max_epochs = start_epoch
                result.stopped = state["stopped"]
        elif not resume and (checkpoint.exists() or (run / MODEL).exists()):
            raise InputError(f"run directory {run} already holds a run; resume it or choose "
                             "another directory")
        if dist.is_main:
            write_json(run / "config.json", config)
            write_json(run / "provenance.json", provenance())

    if not result.history:  # epoch 0: the untrained encoder
        initial = _val(encoder, dist, val_signals, val_targets) if has_val else None
        result.history.append({"epoch": 0, "loss": None, "val_rmse": initial, "lr": None,
                               "seconds": 0.0})
    result.initial_val_rmse = result.history[0]["val_rmse"]

    model = dist.wrap(encoder)
    param = encoder.W_e
    bar = tqdm(total=max_epochs, initial=start_epoch, desc=f"train {encoder.kind}",
               unit="epoch", disable=True if not (progress and dist.is_main) else None,
               dynamic_ncols=True)
    epoch = start_epoch
    try:
        while epoch < max_epochs and not result.stopped:
            began = time.perf_counter()
            epoch_lr = lr / (1.0 + lr_decay * epoch)
            for group in opt.param_groups:
                group["lr"] = epoch_lr
            order = torch.randperm(P, generator=generator)
            loss_sum = torch.zeros((), dtype=param.dtype, device=param.device)
            model.train()
            for start in range(0, P, batch_size):
                batch = order[start:start + batch_size]
                mine = dist.shard(batch)
                Y = _rows(signals, mine, param)
                X = _rows(targets, mine, param)
                half_sq = 0.5 * (model(Y) - X).pow(2).sum(dim=1)
                # Scaled so DDP's gradient average over ranks is the global batch mean.
                loss = half_sq.sum() * (dist.world_size / len(batch))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += half_sq.detach().sum()
            epoch_loss = float(dist.all_reduce_sum(loss_sum)) / P
            epoch += 1
            val = _val(encoder, dist, val_signals, val_targets) if has_val else None
            entry = {"epoch": epoch, "loss": epoch_loss, "val_rmse": val, "lr": epoch_lr,
                     "seconds": time.perf_counter() - began}
            result.history.append(entry)
            if not math.isfinite(epoch_loss):
                result.stopped = "diverged"
            elif prev_loss is not None and abs(epoch_loss - prev_loss) < rel_tol * abs(
                    prev_loss):
                result.stopped = "rel_tol"
            elif epoch >= max_epochs:
                result.stopped = "max_epochs"
            prev_loss = epoch_loss
            if run is not None and dist.is_main:
                state = {"epoch": epoch, "prev_loss": prev_loss, "history": result.history,
                         "generator": generator_state(generator), "stopped": result.stopped}
                save_checkpoint(run / CHECKPOINT, encoder, opt, state)
                write_json(run / "history.json", result.history)
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_loss:.4g}",
                            **({"val_rmse": f"{val:.4g}"} if val is not None else {}))
            if callback is not None:
                callback(entry)
    finally:
        bar.close()

    last = result.history[-1]
    result.epochs = last["epoch"]
    result.loss = last["loss"]
    result.val_rmse = last["val_rmse"]
    result.stopped = result.stopped or "max_epochs"
    if run is not None and dist.is_main:
        encoder.save(run / MODEL, extra={"training": result.summary(), "training_config": hyper,
                                         "data": data})
    dist.barrier()
    return result


# -- helpers ------------------------------------------------------------------------------------

def _val(encoder, dist, val_signals, val_targets) -> float | None:
    """Validation RMSE, measured on rank 0 only (the others get None and never write)."""
    if not dist.is_main:
        return None
    was_training = encoder.training
    encoder.eval()
    try:
        return validation_rmse(encoder, val_signals, val_targets)
    finally:
        encoder.train(was_training)


def _as_batch(rows, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(rows, torch.Tensor):
        rows = np.asarray(rows)
        # Read-only memory maps: copy the (small) batch instead of aliasing the file.
        rows = torch.from_numpy(rows if rows.flags.writeable else np.array(rows))
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
    if saved.get("max_epochs", 0) > config["max_epochs"]:
        differ.append("max_epochs (may only grow)")
    if differ:
        raise InputError(f"cannot resume {run}: {', '.join(differ)} differ from the saved run")


def _comparable(section, key: str):
    if key == "encoder" and isinstance(section, dict):
        return {k: v for k, v in section.items() if k != "lsalsa_version"}
    return section
