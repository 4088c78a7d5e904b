"""The train step: every learned method at every depth, from its classic start, with the
learning rate the search chose (or the one of the grid), resumably (``models/<method>_T<T>/``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from ...core.encoders import build_encoder
from ...core.training import DEFAULTS as TRAIN_DEFAULTS
from ...core.training.search import (
    LEARNED_METHODS,
    SearchGrid,
    threshold_step,
    untied_layers,
)
from ...io import write_json
from ..config import PSNR_BASELINES, ExperimentConfig
from ..training_run import train_in_dir
from . import classic
from .context import Run


def lr_grid(config: ExperimentConfig, method: str) -> list[float]:
    """``search.lrs``: one list for every learned method, or one list per method."""
    lrs = config.search.lrs
    return list(lrs.get(method, SearchGrid.lrs) if isinstance(lrs, Mapping) else lrs)


def train_options(config: ExperimentConfig) -> dict:
    """The options of :func:`lsalsa.core.training.train` an experiment sets (search and final),
    as its keywords."""
    s = config.search
    options = {key: getattr(s, key) for key in ("optimizer", "schedule", "batch_size",
                                                "rel_tol", "patience",
                                                "reconstruction_weight", "anchor_decay")}
    if options["schedule"] == TRAIN_DEFAULTS["schedule"]:  # so a search from before resumes
        del options["schedule"]
    if s.min_improvement:  # likewise
        options["min_improvement"] = s.min_improvement
    return options


def model_folder(run_dir: Path, method: str, T: int) -> Path:
    return Path(run_dir) / "models" / f"{method}_T{T}"


def model_path(run_dir: Path, method: str, T: int) -> Path:
    """The trained model: the training run's own file (written atomically by the trainer)."""
    return model_folder(run_dir, method, T) / "run" / "model.safetensors"


def training_record(run_dir: Path, method: str, T: int) -> dict:
    """What the training of ``method`` at depth ``T`` recorded (``done.json``)."""
    return json.loads((model_folder(run_dir, method, T) / "done.json").read_text())


def run(run: Run) -> dict:
    c = run.config
    s = c.search
    learned, depths, seed, epochs = s.learned, c.depths, c.seed, s.final_epochs
    options, data_info = train_options(c), {"experiment": c.name, "scale": c.scale}
    starts = classic.starts(run.dir)
    trained = []
    for method in learned:
        for T in depths:
            done = model_folder(run.dir, method, T) / "done.json"
            if not done.is_file():
                hyper = learned_setting(run.dir, method, T, start_of(run, method, T, starts),
                                        lr_grid(c, method)[0], s.lr_decays[0],
                                        unsearched_step(s.threshold_lrs))
                write_json(done, train_one(run, method, T, hyper, epochs=epochs, seed=seed,
                                           options=options, data_info=data_info))
            trained.append(f"{method}_T{T}")
    return {"models": sorted(trained)}


def start_of(run: Run, method: str, T: int, starts: dict) -> dict:
    """Where ``method`` starts at depth ``T``: its classic algorithm at the setting of best
    validation code RMSE, or, trained on the components, SALSA at the (alpha, mu) of best
    validation PSNR over the whole grid (the separation baseline)."""
    learned = LEARNED_METHODS[method]
    if learned.objective == "codes":
        return starts[(learned.start, T)]
    best = classic.read(run.dir)[PSNR_BASELINES["any_alpha"]][str(T)]
    return {"alpha": best["alpha"], "mu": best["mu"], "val_rmse": None,
            "val_psnr_mean": best["val_psnr_mean"]}


def unsearched_step(grid) -> float:
    """The thresholds' step of a method that is not searched (one trained on the
    components): the grid's one value, else the library's default, not a grid's extreme."""
    return grid[0] if len(grid) == 1 else TRAIN_DEFAULTS["threshold_lr"]


def learned_setting(run_dir: Path, method: str, T: int, start: dict, lr: float,
                    lr_decay: float, threshold_lr: float) -> dict:
    """Start (alpha, mu) and training knobs (lr, decay, the thresholds' step) of a learned
    method at depth T: the search's best row when there was a search, else the grid's first
    setting."""
    row = {"lr": lr, "lr_decay": lr_decay, "threshold_lr": threshold_lr, "val_rmse": None}
    best = Path(run_dir) / "search" / method / "best.json"
    if best.is_file():
        row = next(r for r in json.loads(best.read_text()) if int(r["T"]) == T)
    step = threshold_step(method, row)
    return {"alpha": start["alpha"],
            "mu": start["mu"] if LEARNED_METHODS[method].kind == "lsalsa" else None,
            "lr": row["lr"], "lr_decay": row["lr_decay"],
            **({"threshold_lr": step}
               if step not in (None, TRAIN_DEFAULTS["threshold_lr"]) else {}),
            "search_val_rmse": row["val_rmse"],
            "start_val_rmse": start["val_rmse"],
            **({"start_val_psnr_mean": start["val_psnr_mean"]} if "val_psnr_mean" in start
               else {})}


def train_one(run: Run, method: str, T: int, hyper: dict, *, epochs: int, seed: int,
              options: dict, data_info: dict) -> dict:
    """Train ``method`` at depth ``T`` from ``hyper`` and return its ``done.json`` record."""
    kind, learn_thresholds, _, objective, placed = LEARNED_METHODS[method]
    fv = run.fit_val(objective)
    if objective == "separation" and run.config.search.augment:
        options = {**options, "augment_component": run.config.n_components - 1,
                   "augment_zoom": run.config.search.augment_zoom}
    if placed:
        options = {**options, "place_component": 0}
    encoder = build_encoder(kind, run.blocks(), hyper["alpha"], T, hyper["mu"],
                            learn_thresholds=learn_thresholds,
                            untied=untied_layers(method, run.config.search.untied)
                            ).to(run.device)
    began = time.perf_counter()
    result = train_in_dir(model_folder(run.dir, method, T) / "run", encoder, fv.signals,
                          fv.references, val_signals=fv.val_signals,
                          val_references=fv.val_references, lr=hyper["lr"],
                          lr_decay=hyper["lr_decay"],
                          threshold_lr=hyper.get("threshold_lr", TRAIN_DEFAULTS["threshold_lr"]),
                          max_epochs=epochs, seed=seed,
                          resume=True, progress=run.sink, **options, objective=objective,
                          data_info=data_info)
    error = "RMSE" if objective == "codes" else "component RMSE"
    run.log(f"trained {method} T={T}: val {error} {result.initial_val_rmse:.4g} -> "
            f"{result.val_rmse:.4g} ({result.epochs} epochs, best {result.best_epoch}, "
            f"{result.stopped})")
    # Training keeps the best validation epoch, so even a diverged run holds a model no worse
    # than its start; its stop reason is recorded (and the command exits 1, see lsalsa.cli).
    return {**result.summary(), "hyper": hyper, "seconds": time.perf_counter() - began}
