"""The paper's hyperparameter search per depth T, with its tables in a run directory.

The grid and its selection are described in :mod:`lsalsa.core.training.search`, which holds the
numerics (the classic curves, the starts of the learned encoders, the winners). Here the grid
is run: every learned trial is trained (:func:`lsalsa.core.training.train`), and with a run
directory the table goes to ``results.csv`` and ``results.json`` after every trial (an
interrupted search skips finished trials when run again), the winners per (method, T) to
``best.json``, beside ``config.json`` and ``provenance.json``. :func:`encoder_start` chooses
the start of one learned encoder the same way (``lsalsa train``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..core.encoders import build_encoder
from ..core.metrics import salsa_by_psnr
from ..core.problem import make_problem
from ..core.training.search import (
    CLASSIC_METHODS,
    COLUMNS,
    LEARNED_METHODS,
    MUS,
    SearchGrid,
    SearchResult,
    StartSettings,
    alpha_candidates,
    as_tensor_like,
    best_classic,
    best_rows,
    classic_curves,
    classic_settings,
    plain_alpha,
    threshold_steps,
    untied_layers,
)
from ..core.training.settings import DEFAULTS, check_pair
from ..core.training.trainer import train
from ..errors import InputError
from ..io import write_json, write_text
from .progress import Progress, as_progress
from .rundir import RunDir, differing_keys


def search(signals, references, val_signals, val_references, dictionaries, *, depths,
           alphas, methods=SearchGrid.methods, mus=SearchGrid.mus, lrs=SearchGrid.lrs,
           lr_decays=SearchGrid.lr_decays, threshold_lrs=SearchGrid.threshold_lrs,
           epochs: int = SearchGrid.epochs, untied: bool = SearchGrid.untied,
           train_options: dict | None = None,
           starts: dict | None = None, seed: int = 0, device=None, run_dir=None,
           progress: bool | Progress = True) -> SearchResult:
    """Grid search per depth; see :mod:`lsalsa.core.training.search` for which knobs each
    method has.

    Parameters
    ----------
    signals, references : training pairs (P, M) and optimal codes (P, N) (learned methods only).
    val_signals, val_references : validation pairs, the selection criterion for every method.
    dictionaries : array (M, N) or list of arrays (M, N_i); their dtype is the compute dtype.
    depths : iterable of T (layers for the learned encoders, iterations for the classic ones).
    alphas : grid of alphas; each entry a float or one float per dictionary.
    methods : subset of ("ista", "fista", "salsa", "lista", "lsalsa", "lsalsa-fixed").
    mus : SALSA's grid of mu (the learned LSALSA takes the best SALSA's).
    lrs, lr_decays : grids for the learning rate and its inverse-time decay (learned methods).
    threshold_lrs : grid for the learned thresholds' step relative to ``lr`` (the methods that
        learn their thresholds; ``lsalsa-fixed`` has none).
    epochs : training epochs of each learned trial.
    untied : one S per layer for every learned method but ``lsalsa-fixed``, the paper's
        exact model (:func:`~lsalsa.core.training.search.untied_layers`).
    train_options : further options of :func:`lsalsa.core.training.train` for every trial
        (optimizer, batch_size, schedule, ...; the defaults otherwise).
    starts : ``{(classic method, T): {"alpha", "mu"}}``, the learned encoders' starting points
        when already selected (e.g. by the experiment pipeline on the same validation data);
        those not given are selected here.
    seed : the seed of every trial's training.
    device : where to compute (default CPU).
    run_dir : write config.json, provenance.json, results.csv/.json and best.json there; a
        rerun with the same grid skips trials already in results.json.
    progress : a bar over the trials (a :class:`Progress`, or whether to draw one).

    Returns
    -------
    SearchResult
    """
    grid = _checked_grid(methods, depths, alphas, mus, lrs, lr_decays, threshold_lrs, epochs,
                         untied)
    train_options = _checked_options(train_options)
    problem, _ = make_problem(dictionaries, 0.0)
    problem = problem.to(device=torch.device(device or "cpu"))
    _check_alpha_sizes(grid.alphas, len(problem.blocks))
    learned = [m for m in grid.methods if m in LEARNED_METHODS]
    val = _checked_data(problem, signals, references, val_signals, val_references, learned)
    alphas = [plain_alpha(a) for a in grid.alphas]
    config = _search_config(grid, alphas, starts, train_options, seed, problem,
                            int(signals.shape[0]) if learned else 0, int(val[0].shape[0]))
    run = Path(run_dir) if run_dir is not None else None
    done = {} if run is None else _open_run(run, config)
    result = SearchResult()

    def record(row: dict) -> None:
        result.rows.append(row)
        if run is not None:
            _write_tables(run, result.rows)

    starts = _classic_rows(problem.blocks, val, grid.methods, grid.depths, alphas, grid.mus,
                           dict(starts or {}), done, record)
    trials = [(m, T, lr, decay, step) for m, T in itertools.product(learned, grid.depths)
              for lr, decay, step in itertools.product(
                  grid.lrs, grid.lr_decays, threshold_steps(m, grid.threshold_lrs))]
    sink = as_progress(progress)
    for method, T, lr, decay, step in sink.iterate(trials, "search", "trial"):
        start = starts[(LEARNED_METHODS[method].start, T)]
        trial = {"method": method, "T": T, "alpha": start["alpha"], "mu": start["mu"],
                 "lr": lr, "lr_decay": decay, "threshold_lr": step}
        finished = done.get(_key(trial))  # an earlier run of the same search trained it
        record(finished if finished is not None else _train_trial(
            trial, problem, signals, references, val, epochs=grid.epochs, seed=seed,
            untied=untied_layers(method, grid.untied), train_options=train_options))
    result.best = best_rows(result.rows)
    if run is not None:
        _write_tables(run, result.rows)
        write_json(run / "best.json", [result.best[k] for k in sorted(result.best)])
    return result


def _search_config(grid: SearchGrid, alphas, starts, train_options, seed, problem,
                   P_train: int, P_val: int) -> dict:
    """The search's recorded config: its grid, its starts, its selection rule and its data."""
    return {"methods": list(grid.methods), "depths": grid.depths, "alphas": alphas,
            "starts": [{"method": m, "T": T, "alpha": plain_alpha(v["alpha"]), "mu": v["mu"]}
                       for (m, T), v in sorted((starts or {}).items())],
            "mus": grid.mus, "lrs": grid.lrs, "lr_decays": grid.lr_decays,
            # only away from its default, so earlier searches' records still match
            **({"threshold_lrs": grid.threshold_lrs}
               if grid.threshold_lrs != [DEFAULTS["threshold_lr"]] else {}),
            "epochs": grid.epochs,
            # only where a method is untied, so a search of lsalsa-fixed alone ignores it
            **({"untied": True} if any(untied_layers(m, grid.untied) for m in grid.methods)
               else {}),
            "train_options": train_options, "seed": seed,
            "selection": "mean per-sample validation RMSE against the optimal codes",
            "learned_start": "the classic algorithm's best (alpha, mu) at the same T",
            "dictionary_hash": problem.fingerprint(), "dtype": str(problem.dtype),
            "P_train": P_train, "P_val": P_val}


def _checked_grid(methods, depths, alphas, mus, lrs, lr_decays, threshold_lrs, epochs,
                  untied) -> SearchGrid:
    """The grid checked before any trial runs (one process, the declared grid, some alphas),
    as lists."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise InputError("run the search in one process (not under torchrun); train the "
                         "selected configuration with DDP afterwards")
    # any iterable (a range, an array) as a list; a text stays itself, for the check to refuse
    as_list = {name: value if isinstance(value, str) or not hasattr(value, "__iter__")
               else list(value)
               for name, value in (("methods", methods), ("depths", depths), ("mus", mus),
                                   ("lrs", lrs), ("lr_decays", lr_decays),
                                   ("threshold_lrs", threshold_lrs), ("alphas", alphas))}
    return SearchGrid(**as_list, epochs=epochs, untied=untied)  # lists of checked values


def _check_alpha_sizes(alphas, n_blocks: int) -> None:
    """Each alpha of the grid is one number, or one per dictionary."""
    for alpha in alphas:
        if isinstance(alpha, list) and len(alpha) not in (1, n_blocks):
            raise InputError(f"`alphas`: {alpha} has {len(alpha)} values for {n_blocks} "
                             "dictionaries; give one, or one per dictionary")


def _checked_options(train_options) -> dict:
    """train_options, none of which the search sets itself."""
    train_options = dict(train_options or {})
    clash = set(train_options) & {"lr", "lr_decay", "threshold_lr", "max_epochs", "seed",
                                  "val_signals", "val_references", "start", "callback"}
    if clash:
        raise InputError(f"train_options may not set {sorted(clash)}: the search sets them")
    return train_options


def _checked_data(problem, signals, references, val_signals, val_references, learned) -> tuple:
    """The validation pairs as tensors like the problem's, once they (and the training pairs,
    when a learned method is searched) fit the dictionaries."""
    check_pair(val_signals, val_references, problem.M, problem.N, "val_signals", "val_references")
    if learned:
        check_pair(signals, references, problem.M, problem.N, "signals", "references")
    return as_tensor_like(val_signals, problem.A), as_tensor_like(val_references, problem.A)


def _train_trial(trial: dict, problem, signals, references, val, *, epochs: int, seed: int,
                 untied: bool, train_options: dict) -> dict:
    """Train one learned encoder from its start (``trial``); its row of the table."""
    kind, learn_thresholds = LEARNED_METHODS[trial["method"]][:2]
    began = time.perf_counter()
    encoder = build_encoder(kind, problem.blocks, trial["alpha"], trial["T"], trial["mu"],
                            learn_thresholds=learn_thresholds, untied=untied)
    step = {} if trial["threshold_lr"] is None else {"threshold_lr": trial["threshold_lr"]}
    trained = train(encoder, signals, references, val_signals=val[0], val_references=val[1],
                    lr=trial["lr"], lr_decay=trial["lr_decay"], max_epochs=epochs, seed=seed,
                    **step, **train_options)
    return {**trial, "val_rmse": _finite(trained.val_rmse), "epochs": trained.epochs,
            "best_epoch": trained.best_epoch, "stopped": trained.stopped,
            "seconds": time.perf_counter() - began}


def encoder_start(kind: str, depth: int, val_signals, val_references, dictionaries, *,
                  alpha=None, mu: float | None = None, code_alphas=None,
                  objective: str = "codes") -> dict:
    """Where a learned encoder (``kind`` "lista" or "lsalsa") of depth ``T`` starts: ``alpha``
    and LSALSA's ``mu`` as given, and what is not given the best setting of its classic
    algorithm (ISTA, SALSA) at ``T`` iterations on the validation pairs, alpha among the
    multiples of ``code_alphas`` (``alpha_candidates``), mu among :data:`MUS`.

    With ``objective="separation"`` (``val_references`` the true components side by side) SALSA's
    setting is the one of best mean validation PSNR of the components instead.

    Returns ``{"alpha", "mu"}``, and after a choice also how it was made (``chosen_by``) and the
    start's ``val_rmse`` (or ``val_psnr_mean``).
    """
    mu = StartSettings(mu=mu).mu
    if alpha is not None and (kind != "lsalsa" or mu is not None):
        return {"alpha": alpha, "mu": mu}
    if alpha is None and code_alphas is None:
        raise InputError("give alpha, or the alphas of the optimal codes to choose it among")
    classic = LEARNED_METHODS[kind].start
    alphas = [alpha] if alpha is not None else alpha_candidates(code_alphas)
    mus = [mu] if mu is not None else MUS
    if objective == "separation":
        if classic != "salsa":
            raise InputError("the separation objective trains LSALSA")
        width = len(dictionaries) * val_signals.shape[1]
        if val_references.ndim != 2 or val_references.shape[1] != width:
            raise InputError(f"the validation references have shape {tuple(val_references.shape)}; "
                             f"the separation objective needs the {len(dictionaries)} true "
                             f"components side by side, {width} columns")
        truth = np.split(np.asarray(val_references), len(dictionaries), axis=1)
        best = salsa_by_psnr(val_signals, truth, dictionaries,
                             classic_settings("salsa", alphas, mus), [depth])[depth]
        return {"alpha": best["alpha"], "mu": best["mu"], "chosen_by": f"SALSA at T = {depth}"
                f", best mean PSNR of the components on the validation data",
                "val_psnr_mean": best["val_psnr_mean"]}
    best = best_classic(val_signals, val_references, dictionaries, classic, [depth], alphas,
                        mus)[depth]
    return {"alpha": best["alpha"], "mu": best["mu"], "chosen_by": f"{classic.upper()} at "
            f"T = {depth} on the validation data", "val_rmse": best["val_rmse"]}


def _classic_rows(blocks, val, methods, depths, alphas, mus, given: dict, done: dict,
                  record) -> dict:
    """Record the classic methods' rows (from ``done`` when all are there), and return the
    learned encoders' starts: ``given``, else the best classic setting per (method, T)."""
    learned = [m for m in methods if m in LEARNED_METHODS]
    needed = {m for m in methods if m in CLASSIC_METHODS} | {
        LEARNED_METHODS[m].start for m in learned
        if any((LEARNED_METHODS[m].start, T) not in given for T in depths)}
    starts = {}
    for method in CLASSIC_METHODS:
        if method not in needed:
            continue
        settings = classic_settings(method, alphas, mus)
        keys = [_key({"method": method, "T": T, **s, "lr": None, "lr_decay": None})
                for T in depths for s in settings]
        if all(k in done for k in keys):
            rows = [done[k] for k in keys]
        else:
            began = time.perf_counter()
            curves = classic_curves(*val, blocks, method, depths, settings)
            seconds = (time.perf_counter() - began) / max(1, curves.size)
            rows = [{"method": method, "T": T, **s, "lr": None, "lr_decay": None,
                     "threshold_lr": None, "val_rmse": _finite(curves[k, j]), "epochs": 0,
                     "best_epoch": None, "stopped": "", "seconds": seconds}
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
    return starts


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _key(trial: dict) -> str:
    # Rows of searches before the thresholds' step was a knob have no such column: their
    # step was the default, which the key writes as absent. Numbers as floats: a grid given
    # as [0] trained the same trial as [0.0].
    step = trial.get("threshold_lr")
    return json.dumps([trial["method"], trial["T"], plain_alpha(trial["alpha"]),
                       *(_float(trial[k]) for k in ("mu", "lr", "lr_decay")),
                       None if step == DEFAULTS["threshold_lr"] else _float(step)])


def _float(value) -> float | None:
    return None if value is None else float(value)


def _open_run(run: Path, config: dict) -> dict[str, dict]:
    """Record the search's config and provenance in ``run``; return the finished trials of an
    earlier run of the same search there (to skip them), keyed by :func:`_key`."""
    files = RunDir(run, config)
    files.sweep()  # what a killed search left behind
    done = _previous_rows(run, config)
    files.record()
    return done


def _previous_rows(run: Path, config: dict) -> dict[str, dict]:
    """Finished trials of an earlier run of the same search in ``run`` (to skip them)."""
    try:
        saved = json.loads((run / RunDir.CONFIG).read_text())
        rows = json.loads((run / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    differ = differing_keys(saved, config)
    if differ:
        if rows:
            raise InputError(f"{run} holds a different search (differs in "
                             f"{', '.join(differ)}); choose another run directory")
        return {}
    return {_key(row): row for row in rows}


def _write_tables(run: Path, rows: list[dict]) -> None:
    write_json(run / "results.json", rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (";".join(map(str, v)) if isinstance(v, list) else v)
                         for k in COLUMNS for v in [row.get(k)]})
    write_text(run / "results.csv", buffer.getvalue())
