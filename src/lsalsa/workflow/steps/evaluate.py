"""The evaluate step: every method on the test split, into ``eval/*.npy`` and ``results.json``.

For FISTA and SALSA (at the settings chosen on validation) and every trained encoder, at every
depth: the per-sample code RMSE against the exact codes and the sparsity (stored as arrays),
the encode time (same device, dtype, batch and thread count for every method), the error of the
expert classifiers, and for MCA the PSNR of each component and a few separations. Then the
iterations and time FISTA and SALSA need to match LSALSA at the reference depths, and the
exact codes' own sparsity, duality gap and PSNR with MCA's separation baselines. Two options,
off by default: ``evaluation.baseline_code_rmse`` (the baselines' code RMSE) and
``evaluation.time_exact_codes`` (SPAMS's time to compute the exact codes of the test split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...core import metrics
from ...core.encoders import components, load_encoder
from ...core.solvers.exact import spams_available, spams_lasso
from ...io import save_npy, write_json
from ...version import provenance
from ..config import CLASSIC, PSNR_BASELINES
from ..targets import evaluate_targets
from . import classic
from .classifiers import Task, fit_classifiers
from .context import Run
from .train import model_path, training_record

TIMING_NOTE = {"statistic": "median after one warm-up, whole test set",
               "classic_timing": "SALSA: an untrained LSALSA (identical to SALSA(T), same "
                                 "code path); FISTA: lsalsa's FISTA loop run in place; "
                                 "operators formed once outside the timed region"}


@dataclass
class TestSet:
    """The test split as every part of the evaluation reads it."""

    arrays: dict              # every array of the split (signals, labels, components, ...)
    signals: np.ndarray       # the signals, float32
    Y: torch.Tensor           # the same on the run's device
    optimal: np.ndarray       # the exact codes (P, N) float32
    truth: list | None        # MCA: the true components; None for sparse coding
    shown: int                # how many mixtures the separation arrays keep
    sources: np.ndarray | None = None  # MCA: the source of each mixture's photograph

    def separation(self, parts: list) -> dict:
        """:func:`~lsalsa.core.metrics.separation_quality` of ``parts``, per source too."""
        return metrics.separation_quality(parts, self.truth, self.sources)


@dataclass
class Timer:
    """Every method is timed with the same thread count (``evaluation.threads``, e.g. 1 on a
    shared CPU, where a descheduled OpenMP worker would stall a parallel product)."""

    threads: int | None
    repeats: int
    sync: object = None

    def __call__(self, encode) -> float:
        with metrics.torch_threads(self.threads):
            return metrics.time_encode(encode, self.repeats, self.sync)


@dataclass
class ClassicEncoders:
    """FISTA(T) and SALSA(T) encoders of the test signals, each setting built once (SALSA's is
    an untrained LSALSA, whose operators cost an inverse)."""

    blocks: list
    Y: torch.Tensor
    batch: int
    built: dict = field(default_factory=dict)

    def get(self, method: str, setting: dict, T: int):
        key = (method, T, tuple(np.atleast_1d(setting["alpha"]).tolist()), setting.get("mu"))
        if key not in self.built:
            self.built[key] = metrics.classic_encoder(method, self.blocks, setting, T, self.Y,
                                                      self.batch)
        return self.built[key]


def run(run: Run) -> dict:
    c, e = run.config, run.config.evaluation
    depths, learned, kind = c.depths, c.search.learned, c.kind
    stored = classic.read(run.dir)
    test = load_test_set(run, c.n_components if kind == "mca" else 0, e.separation_samples)
    if test.truth is not None:
        save_npy(run.dir / "eval" / "separation_mixture.npy", test.signals[:test.shown])
        save_npy(run.dir / "eval" / "separation_truth.npy",
                 np.stack([t[:test.shown] for t in test.truth], 1))
    timer = Timer(e.threads, e.time_repeats,
                  torch.cuda.synchronize if run.device.type == "cuda" else None)
    encoders = ClassicEncoders(run.blocks(), test.Y, e.batch_size)
    problem = run.problem(c.alphas)  # the components A_i x_i of any codes
    sizes = [b.shape[1] for b in encoders.blocks]
    k = c.classification
    tasks = fit_classifiers(test.arrays, test.optimal, kind, sizes[0],
                            projection_dim=k.projection_dim, C=k.C, max_iter=k.max_iter,
                            seed=c.seed)
    evaluated = {}
    for method in [*CLASSIC, *learned]:
        evaluated[method] = {}
        for T in depths:
            if method in CLASSIC:
                hyper = stored[method]["hyper"][stored["dense_depths"].index(T)]
                encode = encoders.get(method, hyper, T)
            else:
                hyper = training_record(run.dir, method, T)["hyper"]
                encode = learned_encoder(run, method, T, test.Y, e.batch_size)
            evaluated[method][T] = evaluate_method(
                run, test, problem, tasks, method, T, encode, hyper, timer,
                separation=T in e.separation_T)
    match = match_lsalsa(stored, evaluated, e.match_reference_T, encoders, timer)
    optimal = evaluate_optimal(run, test, problem, stored, encoders, timer,
                               baseline_rmse=e.baseline_code_rmse,
                               time_exact=e.time_exact_codes)
    results = assemble(run, test, sizes, evaluated, tasks, match, optimal, stored)
    write_json(run.dir / "results.json", results)
    return {"file": "results.json"}


def load_test_set(run: Run, n_components: int, separation_samples: int) -> TestSet:
    """The test split; ``n_components``: how many true components it holds (0: none)."""
    arrays = run.split_arrays("test")
    signals = arrays["signals"].astype(np.float32)
    truth = [arrays[f"component{i}"] for i in range(n_components)] or None
    return TestSet(arrays, signals, torch.from_numpy(signals).to(run.device),
                   np.array(run.codeset.codes("test"), dtype=np.float32), truth,
                   min(separation_samples, signals.shape[0]),
                   _source_names(run.dataset) if truth is not None else None)


def _source_names(dataset) -> np.ndarray:
    """The source (package) of each test mixture's photograph, by name."""
    names, index = dataset.row_sources("test")
    return np.asarray(names)[np.asarray(index)]


def learned_encoder(run: Run, method: str, T: int, Y: torch.Tensor, batch: int):
    encoder = load_encoder(model_path(run.dir, method, T), device=run.device)
    return lambda: encoder.encode(Y, batch_size=batch)


# -- one method at one depth ---------------------------------------------------------------------

def evaluate_method(run: Run, test: TestSet, problem, tasks: dict[str, Task], method: str,
                    T: int, encode, hyper: dict, timer: Timer, *, separation: bool) -> dict:
    """Code RMSE and sparsity (stored per sample), time, classification errors and PSNR of
    ``method`` at depth ``T``; returns its row of ``results["methods"]`` plus ``psnr``."""
    codes = encode()
    X = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else codes
    rmse = metrics.rmse_per_sample(X, test.optimal)
    sparsity = metrics.sparsity_per_sample(X)
    eval_dir = run.dir / "eval"
    save_npy(eval_dir / f"rmse_{method}_T{T}.npy", rmse)
    save_npy(eval_dir / f"sparsity_{method}_T{T}.npy", sparsity)
    seconds = timer(encode)
    row = {"rmse_mean": float(rmse.mean()), "rmse_median": float(np.median(rmse)),
           "sparsity_mean": float(sparsity.mean()), "seconds": seconds, "hyper": hyper}
    for task in tasks.values():
        task.record["errors"].setdefault(method, {})[str(T)] = task.error(X)
    psnr = quality = None
    if test.truth is not None:
        parts = components(problem, X)
        quality = test.separation(parts)
        psnr = quality["psnr"]
        if separation:
            save_npy(eval_dir / f"separation_{method}_T{T}.npy",
                     np.stack([p[:test.shown] for p in parts], 1))
    run.log(f"evaluated {method} T={T}: RMSE {rmse.mean():.4g}, sparsity "
            f"{sparsity.mean():.3f}, {seconds * 1e3:.3g} ms")
    return {"row": row, "psnr": psnr, "separation": quality}


# -- iterations to match, the exact codes and the baselines --------------------------------------

def match_lsalsa(stored: dict, evaluated: dict, references, encoders: ClassicEncoders,
                 timer: Timer) -> dict:
    """Iterations and time each classic method needs to match LSALSA at the reference depths
    (on its dense test curve, at the settings chosen on validation for each count)."""
    dense = stored["dense_depths"]
    seconds = {(m, T): v["row"]["seconds"] for m in CLASSIC for T, v in evaluated[m].items()}
    match = {}
    for ref in references:
        if ref not in evaluated["lsalsa"]:
            continue
        target = evaluated["lsalsa"][ref]["row"]
        entry = {"lsalsa_rmse": target["rmse_mean"], "lsalsa_seconds": target["seconds"]}
        for method in CLASSIC:
            T = metrics.iterations_to_match(dense, stored[method]["rmse_mean"],
                                            target["rmse_mean"])
            # Not reached: timed at the last count evaluated, a lower bound on the time.
            timed_at = max(dense) if T is None else T
            if (method, timed_at) not in seconds:
                hyper = stored[method]["hyper"][dense.index(timed_at)]
                seconds[(method, timed_at)] = timer(encoders.get(method, hyper, timed_at))
            entry[method] = {"iterations": T, "timed_at": timed_at,
                             "seconds": seconds[(method, timed_at)],
                             "time_ratio": seconds[(method, timed_at)] / target["seconds"]}
        match[str(ref)] = entry
    return match


def evaluate_optimal(run: Run, test: TestSet, problem, stored: dict,
                     encoders: ClassicEncoders, timer: Timer, *, baseline_rmse: bool,
                     time_exact: bool) -> dict:
    """The exact codes' sparsity and duality gap, and for MCA their PSNR and the separation
    baselines (SALSA at the settings of best validation PSNR); with the options, the
    baselines' code RMSE and SPAMS's time to compute the exact codes."""
    X_opt = test.optimal
    optimal = {"sparsity_mean": float(metrics.sparsity_per_sample(X_opt).mean()),
               "gap": run.codeset.meta["gap"]}
    if test.truth is not None:
        optimal["separation"] = test.separation(components(problem, X_opt))
        optimal["psnr"] = optimal["separation"]["psnr"]
        save_npy(run.dir / "eval" / "separation_optimal.npy",
                 np.stack([p[:test.shown] for p in components(problem, X_opt[:test.shown])], 1))
        for key in PSNR_BASELINES.values():
            optimal[key] = {T: psnr_baseline(test, problem, encoders, setting, int(T),
                                             baseline_rmse, run.dir / "eval" /
                                             f"separation_{key}_T{T}.npy")
                            for T, setting in stored.get(key, {}).items()}
    if time_exact:
        optimal["seconds"] = exact_seconds(problem, test, timer.threads)
        optimal["timed_with"] = "SPAMS LARS (float64, CPU), one run after a warm-up"
    return optimal


def psnr_baseline(test: TestSet, problem, encoders: ClassicEncoders, setting: dict, T: int,
                  with_rmse: bool, shown: Path) -> dict:
    """SALSA(T) at a separation baseline's ``setting``: its PSNRs (and code RMSE), and the
    first separations in ``shown`` (for the pictures)."""
    codes = encoders.get("salsa", setting, T)().cpu().numpy()
    parts = components(problem, codes)
    save_npy(shown, np.stack([p[:test.shown] for p in parts], 1))
    quality = test.separation(parts)
    psnr = quality["psnr"]
    row = {**setting, "psnr": psnr, "psnr_mean": float(np.mean(psnr)), "separation": quality}
    if with_rmse:
        row["rmse_mean"] = float(metrics.rmse_per_sample(codes, test.optimal).mean())
    return row


def exact_seconds(problem, test: TestSet, threads: int | None) -> float | None:
    """SPAMS's time to compute the exact codes of the test signals (None: not installed)."""
    if not spams_available():
        return None
    threads = threads or torch.get_num_threads()
    Y64 = test.Y.cpu().to(torch.float64)
    return metrics.time_encode(lambda: spams_lasso(problem, Y64, threads=threads), repeats=1)


# -- results.json --------------------------------------------------------------------------------

def assemble(run: Run, test: TestSet, sizes: list[int], evaluated: dict,
             tasks: dict[str, Task], match: dict, optimal: dict, stored: dict) -> dict:
    c, e = run.config, run.config.evaluation
    settings = c.to_dict()  # as config.json holds it
    learned = list(c.search.learned)
    methods = {m: {str(T): v["row"] for T, v in by_T.items()} for m, by_T in evaluated.items()}
    meta = run.dataset.meta
    signals = test.signals
    results = {
        "name": c.name, "scale": c.scale, "dataset": c.dataset, "kind": c.kind,
        "description": c.description,
        "stand_in": meta.get("stand_in"), "data_label": meta.get("label"),
        "counts": meta.get("counts"), "P_test": int(signals.shape[0]),
        "M": int(signals.shape[1]), "N": int(sum(sizes)), "block_sizes": sizes,
        "alphas": list(c.alphas), "mu": c.mu, "depths": list(c.depths),
        "dense_max": c.dense_max, "seed": c.seed,
        "methods": methods,
        "dense": {m: {k: stored[m][k] for k in ("T", "rmse_mean", "sparsity_mean", "hyper")}
                  for m in CLASSIC},
        "learned": learned,
        "optimal": optimal, "match": match,
        "classification": ({"tasks": {name: task.record for name, task in tasks.items()}}
                           if tasks else None),
        "psnr": ({**{m: {str(T): v["psnr"] for T, v in by_T.items()}
                     for m, by_T in evaluated.items()}, "optimal": optimal["psnr"]}
                 if test.truth is not None else None),
        # Per component and per source of the test photographs: both PSNRs (the set's and
        # the mean over mixtures) with the spread (docs/DESIGN.md section 6).
        "separation": ({m: {str(T): v["separation"] for T, v in by_T.items()}
                        for m, by_T in evaluated.items()} if test.truth is not None else None),
        "timing": {"device": str(run.device), "dtype": "float32", "batch_size": e.batch_size,
                   "threads": e.threads or torch.get_num_threads(),
                   "repeats": e.time_repeats, **TIMING_NOTE},
        "arrays": {"rmse": "eval/rmse_{method}_T{T}.npy",
                   "sparsity": "eval/sparsity_{method}_T{T}.npy"},
        "config": settings, "provenance": provenance(),
    }
    results["training"] = {f"{m}_T{T}": training_record(run.dir, m, T)
                           for m in learned for T in c.depths}
    results["targets"] = evaluate_targets(settings["targets"], results)
    return results
