"""Training in a run directory: checkpoints after every epoch, exact resume, the final model.

:func:`train_in_dir` runs :func:`lsalsa.core.training.train`'s loop (through
:class:`~lsalsa.core.training.Trainer`) and keeps in ``run_dir``:

- ``config.json``: the encoder's config, the training hyperparameters, a description of the
  data (shapes, dtypes, a fingerprint, and ``data_info``), ``max_epochs`` and the world size;
  ``provenance.json``;
- ``checkpoint.safetensors`` (:mod:`lsalsa.workflow.checkpoint`) and ``history.json`` after
  every epoch, written atomically, so that ``resume=True`` continues a killed run to exactly
  the result of an uninterrupted one;
- ``model.safetensors``, the returned encoder, with the run's summary and config.

A resume compares the saved config with this call's (the hyperparameters must match;
``max_epochs`` may only grow, and not with the cosine schedule, which depends on it). Under
``torchrun`` every rank trains and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.training.trainer import Trainer, TrainResult, TrainState
from ..errors import InputError
from ..io import write_json
from .checkpoint import generator_state, load_checkpoint, read_generator_state, save_checkpoint
from .progress import Progress, as_progress
from .rundir import FREE, RunDir, Section, differing_keys

CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"


def _epochs_may_grow(saved, new, config: dict) -> str | None:
    if saved != new and (config["training"]["schedule"] == "cosine" or (saved or 0) > new):
        return "max_epochs (the cosine schedule depends on it; the others let it only grow)"
    return None


@dataclass(frozen=True)
class TrainingRunConfig:
    """A training run's ``config.json``, and what a resume may change in it (each field's
    ``resume``; the rest must be equal): descriptions, whose wording may change between
    versions, and the start's validation RMSE, recomputed on every call (its last bits follow
    the thread count; the start itself is in the encoder's config)."""

    encoder: dict = field(metadata={"resume": Section(free=("lsalsa_version",))})
    training: dict = field(metadata={"resume": Section(free=("lr_schedule", "loss",
                                                                "selection"))})
    data: dict = field(metadata={"resume": Section(free=("start",))})
    max_epochs: int = field(metadata={"resume": _epochs_may_grow})
    world_size: int = field(metadata={"resume": FREE})


def train_in_dir(run_dir, encoder, signals, references, *, val_signals=None, val_references=None,
                 resume: bool = False, progress: bool | Progress = True,
                 data_info: dict | None = None, callback: Callable[[dict], None] | None = None,
                 **options) -> TrainResult:
    """:func:`lsalsa.core.training.train` with its files in ``run_dir``.

    Parameters
    ----------
    run_dir : write config.json, provenance.json, history.json, checkpoint.safetensors after
        every epoch and the final model.safetensors there (see the module docstring). Only
        rank 0 writes. None: no files (a progress bar only).
    encoder, signals, references, val_signals, val_references, **options : as for
        :func:`lsalsa.core.training.train`.
    resume : continue from the checkpoint in ``run_dir`` (the hyperparameters must match;
        ``max_epochs`` may only grow, and not with the cosine schedule). Without a
        checkpoint yet, starts afresh.
    progress : a bar over the epochs with the current loss (a :class:`Progress`, or whether
        to draw one; drawn on a terminal only, by rank 0 only).
    data_info : extra description of the data recorded in config.json (e.g. dataset name).
    callback : called on every rank with each epoch's history entry after its checkpoint.

    Returns
    -------
    TrainResult
    """
    with Trainer(encoder, signals, references, val_signals=val_signals,
                 val_references=val_references, **options) as trainer:
        main = trainer.dist.is_main
        files = None if run_dir is None else _TrainingFiles(Path(run_dir), trainer, data_info)
        if files is None:
            trainer.begin()
        else:
            trainer.begin(*files.start(resume))
            if main:  # once the start passed its checks: a refused start leaves nothing
                files.open()
        sink = as_progress(progress)
        if not main:
            sink = Progress(quiet=True)
        with sink.bar(trainer.max_epochs, f"train {encoder.kind}", "epoch",
                      initial=trainer.result.history[-1]["epoch"]) as bar:
            def on_epoch(state: TrainState) -> None:
                if files is not None and main:
                    files.save(state)
                entry = state.history[-1]
                bar.update(1)
                bar.set_postfix(loss=_short(entry["loss"]), **(
                    {"val_rmse": _short(entry["val_rmse"])} if entry["val_rmse"] is not None
                    else {}))
                if callback is not None:
                    callback(entry)

            result = trainer.run(on_epoch)
        if files is not None and main:
            encoder.save(files.dir / MODEL, extra={
                "training": result.summary(), "training_config": trainer.hyper,
                "data": files.data})
        trainer.dist.barrier()  # every rank returns once the model is written
    return result


class _TrainingFiles:
    """The files of one training run in ``path``."""

    def __init__(self, path: Path, trainer: Trainer, data_info: dict | None):
        self.dir = path
        self.data = {"train": _describe_data(trainer.batches.signals, trainer.batches.references),
                     **(data_info or {})}
        if trainer.val is not None:
            self.data["validation"] = _describe_data(*trainer.val)
        self.config = dataclasses.asdict(TrainingRunConfig(
            encoder=trainer.encoder.config(), training=trainer.hyper, data=self.data,
            max_epochs=trainer.max_epochs, world_size=trainer.dist.world_size))
        self.rundir = RunDir(path, self.config, model=TrainingRunConfig)

    def start(self, resume: bool) -> tuple[TrainState | None, str]:
        """The state to continue from (None: a fresh run) and how errors name it."""
        checkpoint = self.dir / CHECKPOINT
        if resume and checkpoint.is_file():
            _check_same_config(self.dir, self.config)
            model, optimizer, state, extra = load_checkpoint(checkpoint)
            return TrainState(
                epoch=state["epoch"], history=state["history"], best_epoch=state["best_epoch"],
                stopped=state["stopped"], scales=state["scales"],
                generator=read_generator_state(state["generator"]), model=model,
                optimizer=optimizer, best=extra.get("best"), anchor=extra.get("anchor"),
            ), f"checkpoint {checkpoint}"
        if not resume and (checkpoint.exists() or (self.dir / MODEL).exists()):
            raise InputError(f"run directory {self.dir} already holds a run; resume it or "
                             "choose another directory")
        return None, ""

    def open(self) -> None:
        """Sweep what killed runs left behind; record this run's config and provenance."""
        self.rundir.sweep()
        self.rundir.record()

    def save(self, state: TrainState) -> None:
        """The checkpoint of an epoch, and the history so far."""
        fields = {"epoch": state.epoch, "history": state.history,
                  "best_epoch": state.best_epoch, "generator": generator_state(state.generator),
                  "stopped": state.stopped, "scales": state.scales}
        extra = {"best": state.best}
        if state.anchor is not None:
            extra["anchor"] = state.anchor
        save_checkpoint(self.dir / CHECKPOINT, state.model, state.optimizer, fields, extra)
        write_json(self.dir / "history.json", state.history)


def _describe_data(signals, references) -> dict:
    """Shapes, dtypes and a fingerprint of the data (hashing up to 256 evenly spaced rows)."""
    digest = hashlib.sha256()
    for array in (signals, references):
        rows = np.unique(np.linspace(0, array.shape[0] - 1, min(256, array.shape[0])).astype(
            np.int64))
        part = array[torch.from_numpy(rows)] if isinstance(array, torch.Tensor) else array[rows]
        part = part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else part
        digest.update(repr((tuple(array.shape), str(part.dtype))).encode())
        digest.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    return {"P": int(signals.shape[0]), "M": int(signals.shape[1]),
            "N": int(references.shape[1]), "dtype": str(signals.dtype).removeprefix("torch."),
            "fingerprint": digest.hexdigest()[:16]}


def _short(value) -> str:
    return "diverged" if value is None else f"{value:.4g}"


def _check_same_config(run: Path, config: dict) -> None:
    try:
        saved = json.loads((run / RunDir.CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot resume {run}: config.json is missing or corrupt ({exc})") \
            from exc
    differ = differing_keys(saved, config, TrainingRunConfig)
    if differ:
        raise InputError(f"cannot resume {run}: {', '.join(differ)} differ from the saved run")
