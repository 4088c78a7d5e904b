"""The paper's hyperparameter search, per depth T, selecting by validation RMSE.

The classic methods are tuned first, on the validation pairs, as hard as the learned ones:

- ``ista`` and ``fista``: alpha, ``salsa``: alpha x mu (mu down to 0.5 and below), each run
  for exactly T iterations; one trajectory per setting gives every T at once
  (:func:`classic_curves`).

Each learned encoder then starts from its classic algorithm at its best setting for that T
(:func:`best_classic`): LISTA from the best ISTA alpha, LSALSA from the best SALSA (alpha, mu),
so at epoch 0 it is already as good as that algorithm can be made, and training (which never
returns something worse on validation) can only improve on it. Only the training knobs are
searched for the learned methods:

- ``lista``, ``lsalsa`` (learned thresholds, the default) and ``lsalsa-fixed`` (the paper's
  exact model, thresholds ``alpha / mu`` fixed): learning rate x decay, trained for ``epochs``.

Each trial is scored by the mean per-sample RMSE of its codes against the optimal codes of the
validation signals. The table goes to ``results.csv`` and ``results.json`` in the run
directory after every trial (an interrupted search skips finished trials when run again), and
the winners per (method, T) to ``best.json``.
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

from ...errors import InputError
from ...io import write_json, write_text
from ...version import provenance
from ..encoders import build_encoder
from ..problem import check_mu, make_problem
from ..solvers.classic import iterates
from .trainer import DEFAULTS, _check_pair, check_lr, code_rmse, train

CLASSIC_METHODS = ("ista", "fista", "salsa")
# Learned method -> (encoder kind, learned thresholds, the classic algorithm it starts as).
LEARNED_METHODS = {"lista": ("lista", True, "ista"), "lsalsa": ("lsalsa", True, "salsa"),
                   "lsalsa-fixed": ("lsalsa", False, "salsa")}
SEARCH_METHODS = ("fista", "salsa", "lista", "lsalsa")
MUS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Alphas are searched as factors of the optimal codes' alphas: one number scales every
# component alike, one per component ([f1, f2]) scales them apart (MCA).
ALPHA_FACTORS = (0.5, 1.0, 2.0)
MCA_ALPHA_FACTORS = ((0.5, 1.0), (1.0, 0.5), (1.0, 2.0), (2.0, 1.0))
COLUMNS = ("method", "T", "alpha", "mu", "lr", "lr_decay", "val_rmse", "epochs", "best_epoch",
           "stopped", "seconds")


@dataclass
class SearchResult:
    """All trials (``rows``, one dict per trial, columns :data:`COLUMNS`) and the winners.

    ``best[(method, T)]`` is the row with the lowest validation RMSE for that method and depth.
    """

    rows: list[dict] = field(default_factory=list)
    best: dict[tuple[str, int], dict] = field(default_factory=dict)
    run_dir: Path | None = None


def classic_curves(signals, targets, dictionaries, method: str, depths, settings, *,
                   batch_size: int = 16384) -> np.ndarray:
    """Validation RMSE of ISTA, FISTA or SALSA for every setting at every depth.

    Parameters
    ----------
    signals, targets : validation signals (P, M) and their optimal codes (P, N).
    dictionaries : array (M, N) or list of arrays (M, N_i); their dtype and device are used.
    method : "ista", "fista" or "salsa".
    depths : the iteration counts T to record.
    settings : list of ``{"alpha": ..., "mu": ...}`` (mu ignored but for SALSA).

    Returns
    -------
    array (len(settings), len(depths)) of mean per-sample code RMSE (inf where not finite).
    One trajectory per setting to ``max(depths)`` iterations gives every depth at once.
    """
    return _curves(signals, targets, dictionaries, method, depths, settings, batch_size)[0]


def chosen_curves(signals, targets, dictionaries, method: str, depths, settings,
                  choice) -> dict[str, np.ndarray]:
    """Mean code RMSE and sparsity on ``signals`` of the setting chosen for each depth
    (``settings[choice[j]]`` at ``depths[j]``, e.g. chosen on validation by
    :func:`classic_curves`): one trajectory per distinct chosen setting. Arrays (len(depths),)
    under "rmse" and "sparsity"."""
    out = {"rmse": np.full(len(depths), np.inf), "sparsity": np.full(len(depths), np.nan)}
    choice = np.asarray(choice)
    for k in np.unique(choice):
        at = np.flatnonzero(choice == k)
        rmse, sparsity = _curves(signals, targets, dictionaries, method,
                                 [depths[j] for j in at], [settings[int(k)]])
        out["rmse"][at], out["sparsity"][at] = rmse[0], sparsity[0]
    return out


def selected_curves(val, other, dictionaries, method: str, depths, settings) -> dict:
    """Per depth T, the setting with the lowest validation RMSE, and how that choice does on
    other signals (e.g. the test split: nothing is selected on them).

    ``val`` and ``other`` are ``(signals, optimal codes)`` pairs. Returns ``choice`` (index into
    ``settings`` per depth), ``val_rmse`` (its validation RMSE), and ``rmse`` and ``sparsity``
    on ``other``: arrays of len(depths).
    """
    val_curves = classic_curves(*val, dictionaries, method, depths, settings)
    choice = _choose(val_curves, method, depths)
    return {"choice": choice, "val_rmse": val_curves.min(axis=0),
            **chosen_curves(*other, dictionaries, method, depths, settings, choice)}


def _choose(curves: np.ndarray, method: str, depths) -> np.ndarray:
    """Per depth (column of ``curves``, settings x depths), the setting with the lowest
    validation RMSE, ties keeping the first; a depth where every setting diverges is refused,
    since nothing there is a baseline or a start."""
    choice = curves.argmin(axis=0)
    for j, T in enumerate(depths):
        if not np.isfinite(curves[choice[j], j]):
            raise InputError(f"every {method.upper()} setting diverges at T = {T} on the "
                             "validation data; nothing to start from")
    return choice


def _curves(signals, targets, dictionaries, method, depths, settings, batch_size=16384):
    """Mean per-sample code RMSE (inf where not finite) and sparsity, (settings, depths)."""
    if method not in CLASSIC_METHODS:
        raise InputError(f"unknown classic method {method!r}; choose from {CLASSIC_METHODS}")
    depths = [_positive_int(T, "depth") for T in depths]
    column = {T: j for j, T in enumerate(depths)}
    like = make_problem(dictionaries, 0.0)[0].A
    _check_pair(signals, targets, like.shape[0], like.shape[1], "signals", "targets")
    rmse = np.zeros((len(settings), len(depths)))
    zeros = np.zeros_like(rmse)
    with torch.inference_mode():
        for k, setting in enumerate(settings):
            problem = make_problem(dictionaries, setting["alpha"])[0]
            for first in range(0, len(signals), batch_size):
                Y = _tensor(signals[first:first + batch_size], like)
                X = _tensor(targets[first:first + batch_size], like)
                mu = setting.get("mu")  # only SALSA's settings have one
                for T, codes in iterates(problem, Y, method, max(depths),
                                         mu=10.0 if mu is None else mu):
                    if T in column:
                        rmse[k, column[T]] += float(code_rmse(codes, X).sum())
                        zeros[k, column[T]] += float((codes == 0).double().mean(dim=1).sum())
    rmse /= len(signals)
    rmse[~np.isfinite(rmse)] = np.inf
    return rmse, zeros / len(signals)


def alpha_candidates(alphas, factors=None) -> list[list[float]]:
    """Each factor times ``alphas`` (default :data:`ALPHA_FACTORS`, and for two components
    also :data:`MCA_ALPHA_FACTORS`)."""
    alphas = [float(a) for a in alphas]
    if factors is None:
        factors = [*ALPHA_FACTORS, *(MCA_ALPHA_FACTORS if len(alphas) == 2 else ())]
    out = []
    for factor in factors:
        values = list(factor) if isinstance(factor, list | tuple) else [factor] * len(alphas)
        if len(values) != len(alphas):
            raise InputError(f"alpha factor {factor} needs {len(alphas)} values")
        out.append([round(float(f) * a, 12) for f, a in zip(values, alphas, strict=True)])
    return out


def classic_settings(method: str, alphas, mus=MUS) -> list[dict]:
    """The grid of a classic method: alpha for ISTA and FISTA, alpha x mu for SALSA."""
    return [{"alpha": _jsonable(a), "mu": check_mu(m) if method == "salsa" else None}
            for a in alphas for m in (mus if method == "salsa" else [None])]


def best_classic(signals, targets, dictionaries, method: str, depths, alphas,
                 mus=MUS) -> dict[int, dict]:
    """Per depth T, the classic setting with the lowest validation RMSE:
    ``{T: {"alpha", "mu", "val_rmse"}}`` (ties keep the first setting of the grid)."""
    settings = classic_settings(method, alphas, mus)
    curves = classic_curves(signals, targets, dictionaries, method, depths, settings)
    choice = _choose(curves, method, depths)
    return {int(T): {**settings[k], "val_rmse": float(curves[k, j])}
            for j, (T, k) in enumerate(zip(depths, choice.tolist(), strict=True))}


def search(signals, targets, val_signals, val_targets, dictionaries, *, depths,
           alphas, methods=SEARCH_METHODS, mus=MUS, lrs=(DEFAULTS["lr"],),
           lr_decays=(0.0,), epochs: int = 10, train_options: dict | None = None,
           starts: dict | None = None, seed: int = 0, device=None, run_dir=None,
           progress: bool = True) -> SearchResult:
    """Grid search per depth; see the module docstring for which knobs each method has.

    Parameters
    ----------
    signals, targets : training pairs (P, M) and optimal codes (P, N) (learned methods only).
    val_signals, val_targets : validation pairs, the selection criterion for every method.
    dictionaries : array (M, N) or list of arrays (M, N_i); their dtype is the compute dtype.
    depths : iterable of T (layers for the learned encoders, iterations for the classic ones).
    alphas : grid of alphas; each entry a float or one float per dictionary.
    methods : subset of ("ista", "fista", "salsa", "lista", "lsalsa", "lsalsa-fixed").
    mus : SALSA's grid of mu (the learned LSALSA takes the best SALSA's).
    lrs, lr_decays : grids for the learning rate and its inverse-time decay (learned methods).
    epochs : training epochs of each learned trial.
    train_options : further options of :func:`lsalsa.core.training.train` for every trial
        (optimizer, batch_size, schedule, ...; the defaults otherwise).
    starts : ``{(classic method, T): {"alpha", "mu"}}``, the learned encoders' starting points
        when already selected (e.g. by the experiment runner on the same validation data);
        those not given are selected here.
    seed : the seed of every trial's training.
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
    known = CLASSIC_METHODS + tuple(LEARNED_METHODS)
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise InputError(f"unknown search methods {unknown}; choose from {known}")
    depths = [_positive_int(T, "depth") for T in depths]
    if not depths:
        raise InputError("give at least one depth T")
    for name, grid in (("alphas", alphas), ("mus", mus), ("lrs", lrs), ("lr_decays", lr_decays)):
        if len(list(grid)) == 0:
            raise InputError(f"the {name} grid is empty")
    mus = [check_mu(m) for m in mus]
    lrs = [check_lr(v, "every lr") for v in lrs]  # before any trial, not in the middle
    train_options = dict(train_options or {})
    clash = set(train_options) & {"lr", "lr_decay", "max_epochs", "seed", "val_signals",
                                  "val_targets", "run_dir", "progress"}
    if clash:
        raise InputError(f"train_options may not set {sorted(clash)}: the search sets them")
    problem, _ = make_problem(dictionaries, 0.0)
    device = torch.device(device or "cpu")
    problem = problem.to(device=device)
    blocks = problem.blocks
    _check_pair(val_signals, val_targets, problem.M, problem.N, "val_signals", "val_targets")
    learned = [m for m in methods if m in LEARNED_METHODS]
    if learned:
        _check_pair(signals, targets, problem.M, problem.N, "signals", "targets")
    Y_val = _tensor(val_signals, problem.A)
    X_val = _tensor(val_targets, problem.A)
    alphas = [_jsonable(a) for a in alphas]

    run = Path(run_dir) if run_dir is not None else None
    config = {"methods": list(methods), "depths": depths, "alphas": alphas,
              "starts": [{"method": m, "T": T, "alpha": _jsonable(v["alpha"]), "mu": v["mu"]}
                         for (m, T), v in sorted((starts or {}).items())],
              "mus": [float(m) for m in mus], "lrs": list(lrs), "lr_decays": list(lr_decays),
              "epochs": epochs, "train_options": train_options, "seed": seed,
              "selection": "mean per-sample validation RMSE against the optimal codes",
              "learned_start": "the classic algorithm's best (alpha, mu) at the same T",
              "dictionary_hash": problem.fingerprint(), "dtype": str(problem.dtype),
              "P_train": int(signals.shape[0]) if learned else 0,
              "P_val": int(Y_val.shape[0])}
    done: dict[str, dict] = {}
    if run is not None:
        done = _previous_rows(run, config)
        write_json(run / "config.json", config)
        write_json(run / "provenance.json", provenance())

    result = SearchResult(run_dir=run)

    def record(row: dict) -> None:
        result.rows.append(row)
        if run is not None:
            _write_tables(run, result.rows)

    # The classic methods, and the starts of the learned ones.
    given = dict(starts or {})
    classic_needed = {m for m in methods if m in CLASSIC_METHODS} | {
        LEARNED_METHODS[m][2] for m in learned
        if any((LEARNED_METHODS[m][2], T) not in given for T in depths)}
    starts = {}
    for method in CLASSIC_METHODS:
        if method not in classic_needed:
            continue
        settings = classic_settings(method, alphas, mus)
        keys = [_key({"method": method, "T": T, **s, "lr": None, "lr_decay": None})
                for T in depths for s in settings]
        if all(k in done for k in keys):
            rows = [done[k] for k in keys]
        else:
            began = time.perf_counter()
            curves = classic_curves(Y_val, X_val, blocks, method, depths, settings)
            seconds = (time.perf_counter() - began) / max(1, curves.size)
            rows = [{"method": method, "T": T, **s, "lr": None, "lr_decay": None,
                     "val_rmse": _finite(curves[k, j]), "epochs": 0, "best_epoch": None,
                     "stopped": "", "seconds": seconds}
                    for j, T in enumerate(depths) for k, s in enumerate(settings)]
        for row in rows:
            if method in methods:
                record(row)
        for (_, T), row in best_rows(rows).items():
            if row["val_rmse"] is None:  # as _choose: no start where every setting diverges
                raise InputError(f"every {method.upper()} setting diverges at T = {T} on the "
                                 "validation data; nothing to start from")
            starts[(method, T)] = row
    starts.update(given)

    trials = [(m, T, lr, decay) for m, T in itertools.product(learned, depths)
              for lr, decay in itertools.product(lrs, lr_decays)]
    for method, T, lr, decay in tqdm(trials, desc="search", unit="trial",
                                     disable=True if not progress else None):
        kind, learn_thresholds, classic = LEARNED_METHODS[method]
        start = starts[(classic, T)]
        trial = {"method": method, "T": T, "alpha": start["alpha"], "mu": start["mu"],
                 "lr": lr, "lr_decay": decay}
        key = _key(trial)
        if key in done:
            record(done[key])
            continue
        began = time.perf_counter()
        encoder = build_encoder(kind, blocks, start["alpha"], T, start["mu"],
                                learn_thresholds=learn_thresholds)
        trained = train(encoder, signals, targets, val_signals=Y_val, val_targets=X_val,
                        lr=lr, lr_decay=decay, max_epochs=epochs, seed=seed,
                        progress=False, **train_options)
        record({**trial, "val_rmse": _finite(trained.val_rmse), "epochs": trained.epochs,
                "best_epoch": trained.best_epoch, "stopped": trained.stopped,
                "seconds": time.perf_counter() - began})
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


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


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
