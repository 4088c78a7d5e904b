"""The paper's hyperparameter search, per depth T, selecting by validation RMSE.

For every method and every ``T`` a grid is tried (Section 6 of the paper):

- ``fista``: alpha (the classic solver run for exactly T iterations; nothing is trained);
- ``salsa``: alpha x mu;
- ``lista``: alpha x learning rate x decay (trained for ``epochs`` epochs, 10 by default);
- ``lsalsa``: alpha x mu x learning rate x decay.

Each trial is scored by the mean per-sample RMSE of its codes against the optimal codes of the
validation signals. The table goes to ``results.csv`` and ``results.json`` in the run
directory after every trial (so an interrupted search skips finished trials when run again),
and the winners per (method, T) to ``best.json``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..encoders import build_encoder
from ..errors import InputError
from ..io import write_json, write_text
from ..problem import make_problem
from ..solvers import solve
from ..version import provenance
from .trainer import _check_pair, code_rmse, train

SEARCH_METHODS = ("fista", "salsa", "lista", "lsalsa")
COLUMNS = ("method", "T", "alpha", "mu", "lr", "lr_decay", "val_rmse", "epochs", "stopped",
           "seconds")


@dataclass
class SearchResult:
    """All trials (``rows``, one dict per trial, columns :data:`COLUMNS`) and the winners.

    ``best[(method, T)]`` is the row with the lowest validation RMSE for that method and depth.
    """

    rows: list[dict] = field(default_factory=list)
    best: dict[tuple[str, int], dict] = field(default_factory=dict)
    run_dir: Path | None = None


def search(signals, targets, val_signals, val_targets, dictionaries, *, depths,
           alphas, methods=SEARCH_METHODS, mus=(10.0,), lrs=(0.01,), lr_decays=(0.0,),
           epochs: int = 10, optimizer: str = "sgd", batch_size: int = 64, seed: int = 0,
           device=None, run_dir=None, progress: bool = True) -> SearchResult:
    """Grid search per depth; see the module docstring for which knobs each method has.

    Parameters
    ----------
    signals, targets : training pairs (P, M) and optimal codes (P, N) (learned methods only).
    val_signals, val_targets : validation pairs, the selection criterion for every method.
    dictionaries : array (M, N) or list of arrays (M, N_i); their dtype is the compute dtype.
    depths : iterable of T (layers for the learned encoders, iterations for the classic ones).
    alphas : grid of alphas; each entry a float or one float per dictionary.
    methods : subset of ("fista", "salsa", "lista", "lsalsa").
    mus, lrs, lr_decays : grids for mu (SALSA, LSALSA) and for the learning rate and its
        inverse-time decay (LISTA, LSALSA).
    epochs, optimizer, batch_size, seed : training of each learned trial (see :func:`train`).
    device : where to compute (default CPU).
    run_dir : write config.json, provenance.json, results.csv/.json and best.json there; a
        rerun with the same grid skips trials already in results.json.

    Returns
    -------
    SearchResult
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise InputError("run the search in one process (not under torchrun); train the "
                         "selected configuration with DDP afterwards")
    methods = tuple(methods)
    unknown = [m for m in methods if m not in SEARCH_METHODS]
    if unknown or not methods:
        raise InputError(f"unknown search methods {unknown}; choose from {SEARCH_METHODS}")
    depths = [_positive_int(T, "depth") for T in depths]
    if not depths:
        raise InputError("give at least one depth T")
    for name, grid in (("alphas", alphas), ("mus", mus), ("lrs", lrs), ("lr_decays", lr_decays)):
        if len(list(grid)) == 0:
            raise InputError(f"the {name} grid is empty")
    problem, _ = make_problem(dictionaries, 0.0)
    device = torch.device(device or "cpu")
    problem = problem.to(device=device)
    _check_pair(val_signals, val_targets, problem.M, problem.N, "val_signals", "val_targets")
    if any(m in ("lista", "lsalsa") for m in methods):
        _check_pair(signals, targets, problem.M, problem.N, "signals", "targets")
    blocks = problem.blocks
    like = problem.A
    Y_val = _tensor(val_signals, like)
    X_val = _tensor(val_targets, like)

    trials = list(_trials(methods, depths, list(alphas), list(mus), list(lrs),
                          list(lr_decays)))
    run = Path(run_dir) if run_dir is not None else None
    config = {"methods": list(methods), "depths": depths, "alphas": [_jsonable(a) for a in alphas],
              "mus": list(mus), "lrs": list(lrs), "lr_decays": list(lr_decays),
              "epochs": epochs, "optimizer": optimizer, "batch_size": batch_size, "seed": seed,
              "selection": "mean per-sample validation RMSE against the optimal codes",
              "dictionary_hash": problem.fingerprint(), "dtype": str(like.dtype),
              "P_train": int(signals.shape[0]) if signals is not None else 0,
              "P_val": int(Y_val.shape[0])}
    done: dict[str, dict] = {}
    if run is not None:
        done = _previous_rows(run, config)
        write_json(run / "config.json", config)
        write_json(run / "provenance.json", provenance())

    result = SearchResult(run_dir=run)
    for trial in tqdm(trials, desc="search", unit="trial",
                      disable=True if not progress else None):
        key = _key(trial)
        if key in done:
            result.rows.append(done[key])
            continue
        began = time.perf_counter()
        method, T, alpha = trial["method"], trial["T"], trial["alpha"]
        row = {**trial, "alpha": _jsonable(alpha), "epochs": 0, "stopped": ""}
        if method in ("fista", "salsa"):
            codes = solve(Y_val, blocks, alpha, method=method, n_iter=T,
                          mu=trial["mu"] or 10.0).codes
            row["val_rmse"] = float(code_rmse(codes, X_val).mean())
        else:
            encoder = build_encoder(method, blocks, alpha, T, trial["mu"])
            trained = train(encoder, signals, targets, val_signals=Y_val, val_targets=X_val,
                            optimizer=optimizer, lr=trial["lr"], lr_decay=trial["lr_decay"],
                            batch_size=batch_size, max_epochs=epochs, seed=seed,
                            progress=False)
            row.update(val_rmse=trained.val_rmse, epochs=trained.epochs,
                       stopped=trained.stopped)
        if row["val_rmse"] is None or not math.isfinite(row["val_rmse"]):
            row["val_rmse"] = None  # diverged: recorded, never selected
        row["seconds"] = time.perf_counter() - began
        result.rows.append(row)
        if run is not None:
            _write_tables(run, result.rows)
    result.best = best_rows(result.rows)
    if run is not None:
        _write_tables(run, result.rows)
        write_json(run / "best.json", [result.best[k] for k in sorted(result.best)])
    return result


def best_rows(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """The lowest-RMSE row per (method, T); ties keep the first tried; diverged rows lose."""
    def score(row):
        return math.inf if row["val_rmse"] is None else row["val_rmse"]

    best: dict[tuple[str, int], dict] = {}
    for row in rows:
        key = (row["method"], row["T"])
        if key not in best or score(row) < score(best[key]):
            best[key] = row
    return best


def _trials(methods, depths, alphas, mus, lrs, decays):
    for method, T in itertools.product(methods, depths):
        mu_grid = mus if method in ("salsa", "lsalsa") else [None]
        lr_grid = lrs if method in ("lista", "lsalsa") else [None]
        decay_grid = decays if method in ("lista", "lsalsa") else [None]
        for alpha, mu, lr, decay in itertools.product(alphas, mu_grid, lr_grid, decay_grid):
            yield {"method": method, "T": T, "alpha": alpha, "mu": mu, "lr": lr,
                   "lr_decay": decay}


def _key(trial: dict) -> str:
    return json.dumps([trial[k] if k != "alpha" else _jsonable(trial[k])
                       for k in ("method", "T", "alpha", "mu", "lr", "lr_decay")])


def _jsonable(alpha):
    if isinstance(alpha, list | tuple | np.ndarray):
        return [float(a) for a in alpha]
    return float(alpha)


def _tensor(array, like: torch.Tensor) -> torch.Tensor:
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.array(array))
    return tensor.to(dtype=like.dtype, device=like.device)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _previous_rows(run: Path, config: dict) -> dict[str, dict]:
    """Finished trials of an earlier run of the same search in ``run`` (to skip them)."""
    try:
        saved = json.loads((run / "config.json").read_text())
        rows = json.loads((run / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if saved != json.loads(json.dumps(config)):
        if rows:
            raise InputError(f"{run} holds a different search; choose another run directory")
        return {}
    return {_key(row): row for row in rows}


def _write_tables(run: Path, rows: list[dict]) -> None:
    write_json(run / "results.json", rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (";".join(map(str, row[k])) if isinstance(row[k], list) else row[k])
                         for k in COLUMNS})
    write_text(run / "results.csv", buffer.getvalue())
