"""Optimal codes of fixed dictionaries and the alpha search.

Every method is scored against these codes (paper Section 3, Remark 1, Section 6), so they are
by default truly optimal: :func:`compute_codes` with ``mode="exact"`` runs the exact solver
until every sample's relative duality gap is below ``tol``. ``mode="paper"`` is the paper's
recipe (FISTA 200 iterations for SC, SALSA 100 iterations with ``mu = 10`` for MCA), kept for
comparison; its gaps are recorded just as honestly.

Arrays in, arrays and stats out: the stored code sets are :mod:`lsalsa.workflow.code_sets`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import (
    Settings,
    as_items,
    non_empty_list,
    non_negative_int,
    number,
    one_of,
    positive_int,
    positive_number,
    rule,
)
from ..errors import InputError
from ._arrays import check_signal_array, sorted_subset
from .objective import _duality_gap, _objective
from .problem import DEFAULT_MU, Problem, as_alphas, make_problem
from .solvers import solve
from .solvers.classic import run_iterations
from .solvers.exact import DEFAULT_TOL, exact_codes

MODES = ("exact", "paper")
# The paper's recipe: FISTA iterations for one dictionary, SALSA's for several.
PAPER_ITERATIONS = {"fista": 200, "salsa": 100}


@dataclass(frozen=True)
class CodesSettings(Settings):
    """The options of :func:`compute_codes`, declared once (``lsalsa codes compute`` makes its
    flags from them, the experiments' codes section shares them), checked when made."""

    mode: str = rule(one_of, "exact", choices=MODES,
                     help="exact: solved to a relative duality gap of tol; paper: the "
                          "paper's recipe (FISTA for one dictionary, SALSA with mu for "
                          "several)")
    tol: float = rule(positive_number, DEFAULT_TOL,
                      help="exact mode: bound on each sample's relative duality gap")
    n_iter: int | None = rule(positive_int, None, none=True,
                              help="paper mode: iterations ('none': "
                                   f"{PAPER_ITERATIONS['fista']} FISTA, "
                                   f"{PAPER_ITERATIONS['salsa']} SALSA); exact mode: most "
                                   "refinement iterations")
    mu: float = rule(positive_number, DEFAULT_MU, help="paper mode, MCA: SALSA's mu")
    batch_size: int = rule(positive_int, 1024, help="signals per solver call")


def as_dictionaries(dictionaries) -> list[np.ndarray]:
    """One (M, N) array or a list of them (NumPy or torch) as a list of float32 arrays."""
    if isinstance(dictionaries, np.ndarray | torch.Tensor):
        dictionaries = [dictionaries]
    if not isinstance(dictionaries, Sequence) or not dictionaries:
        raise InputError("dictionaries must be an (M, N) array or a non-empty list of them")
    out = []
    for i, block in enumerate(dictionaries):
        if isinstance(block, torch.Tensor):
            block = block.detach().cpu().numpy()
        array = np.asarray(block)
        if array.dtype.kind not in "fiu":
            raise InputError(f"dictionary {i} must be numeric, got dtype {array.dtype}")
        out.append(array.astype(np.float32))
    return out


def stored_problem(dictionaries: list[np.ndarray], alphas, M: int) -> Problem:
    """The float64 problem of the float32 dictionaries (what is stored is what is solved)."""
    problem, _ = make_problem([torch.from_numpy(d.astype(np.float64)) for d in dictionaries],
                              alphas)
    if problem.M != M:
        shapes = ", ".join(str(tuple(d.shape)) for d in dictionaries)
        raise InputError(f"dictionary shape {shapes} does not fit the data: signals have "
                         f"M = {M} features, the dictionary has {problem.M} rows")
    return problem


def _worst_relative_gap(problem: Problem, Y: torch.Tensor, result) -> float:
    cost = _objective(problem, Y, result.codes).clamp_min(torch.finfo(torch.float64).tiny)
    return float((result.gap / cost).max())


def _signals64(signals, first: int, last: int) -> torch.Tensor:
    batch = np.asarray(signals[first:last], dtype=np.float64)
    if not np.isfinite(batch).all():
        raise InputError("signals contain NaN or Inf")
    return torch.from_numpy(batch)


def gap_stats(problem: Problem, signals, codes: np.ndarray, batch_size: int = 4096) -> dict:
    """Duality-gap summary of ``codes`` (P, N), computed in float64 as stored.

    Returns ``{"median", "max", "relative_median", "relative_max"}`` with the relative gap
    ``gap / E(x)`` per sample.
    """
    problem64 = problem.to(dtype=torch.float64)
    gaps, relative = [], []
    for first in range(0, codes.shape[0], batch_size):
        Y = _signals64(signals, first, first + batch_size)
        X = torch.from_numpy(np.asarray(codes[first:first + batch_size], dtype=np.float64))
        gap = _duality_gap(problem64, Y, X)
        cost = _objective(problem64, Y, X).clamp_min(torch.finfo(torch.float64).tiny)
        gaps.append(gap.numpy())
        relative.append((gap / cost).numpy())
    gaps_all, relative_all = np.concatenate(gaps), np.concatenate(relative)
    return {"median": float(np.median(gaps_all)), "max": float(gaps_all.max()),
            "relative_median": float(np.median(relative_all)),
            "relative_max": float(relative_all.max())}


def compute_codes(signals, dictionaries, alphas, *, mode: str = CodesSettings.mode,
                  tol: float = CodesSettings.tol, batch_size: int = CodesSettings.batch_size,
                  device=None, mu: float = CodesSettings.mu,
                  n_iter: int | None = CodesSettings.n_iter,
                  callback: Callable[[int, int], None] | None = None
                  ) -> tuple[np.ndarray, dict]:
    """Codes of every signal for fixed dictionaries, with their achieved duality gaps.

    Parameters
    ----------
    signals : array (P, M), NumPy array or memmap (read a batch at a time).
    dictionaries : array (M, N) or list of arrays (M, N_i); used as float32 (as stored) and
        solved in float64.
    alphas : one positive alpha, or one per dictionary.
    mode : "exact" (``lsalsa.solve(..., method="exact")`` to the relative gap ``tol``; SPAMS
        on CPU) or "paper" (FISTA ``n_iter`` iterations, default 200, for one dictionary;
        SALSA ``n_iter``, default 100, with ``mu`` for several).
    tol : exact mode: bound on each sample's relative duality gap ``gap / E(x)``.
    batch_size : samples per solver call.
    device : torch device for "paper" mode (exact mode runs where the exact solver is fastest:
        SPAMS on CPU).
    n_iter : exact mode: most refinement iterations; paper mode: iterations.
    callback : called as ``callback(done, total)`` after every batch (e.g. a progress bar).

    Returns
    -------
    codes : ndarray (P, N) float32.
    stats : dict with ``mode``, ``solver``, ``n_iter``, ``tol``, ``mu`` and ``gap`` (see
        :func:`gap_stats`; computed on the float32 codes as returned; exact mode adds
        ``solver_relative_max``, the worst relative gap of the float64 solution).
    """
    CodesSettings(mode=mode, tol=tol, n_iter=n_iter, mu=mu, batch_size=batch_size)
    P, M = check_signal_array(signals)
    blocks = as_dictionaries(dictionaries)
    alphas = as_alphas(alphas, len(blocks), positive=True)
    problem = stored_problem(blocks, alphas, M)
    # Checked once: each batch goes to the solvers' loops (solve() would check it all again).
    if mode == "paper":
        method = "fista" if problem.D == 1 else "salsa"
        n_iter = PAPER_ITERATIONS[method] if n_iter is None else n_iter
        paper = problem.to(dtype=torch.float32, device=device or "cpu")  # like Torch7
    else:
        method = "exact"
    codes = np.empty((P, problem.N), dtype=np.float32)
    solver_name, iterations = method, 0
    solver_worst = 0.0  # exact mode: worst relative gap before rounding to float32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        starts = range(0, P, batch_size)
        for done, first in enumerate(starts, 1):
            Y = _signals64(signals, first, first + batch_size)
            if mode == "paper":
                Y = Y.to(dtype=torch.float32, device=paper.A.device)
                result = run_iterations(paper, Y, method, n_iter, mu=mu)
            else:
                result = exact_codes(problem, Y, tol=tol, max_iter=n_iter)
                solver_worst = max(solver_worst, _worst_relative_gap(problem, Y, result))
            batch = result.codes.detach().cpu().numpy()
            if not np.isfinite(batch).all():  # float32 overflows where float64 did not
                raise InputError(f"the {mode} codes are not finite: the signals are too large "
                                 "for their precision; rescale them")
            codes[first:first + len(batch)] = batch
            solver_name = result.method or method
            iterations = max(iterations, result.n_iter)
            if callback is not None:
                callback(done, len(starts))
    unconverged = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    stats = {"mode": mode, "solver": solver_name,
             "n_iter": n_iter if mode == "paper" else iterations,
             "tol": tol if mode == "exact" else None,
             "mu": mu if method == "salsa" else None,
             "gap": gap_stats(problem, signals, codes)}
    if mode == "exact":
        # Rounding to float32 moves the residual by ~1e-7 relative, so the stored codes' gap
        # can sit slightly above tol even though the float64 solution met it.
        stats["gap"]["solver_relative_max"] = solver_worst
    if unconverged:
        stats["warnings"] = unconverged[:5]
        warnings.warn(unconverged[0], RuntimeWarning, stacklevel=2)
    return codes, stats


@dataclass(frozen=True)
class TuneSettings(Settings):
    """The options of :func:`tune_alpha`, declared once (``lsalsa codes tune-alpha`` makes its
    flags from them), checked when made."""

    target_sparsity: float = rule(number, 0.89, low=0, high=1, low_open=True, high_open=True,
                                  help="the codes' mean fraction of zeros to reach")
    n_samples: int = rule(positive_int, 1000, help="signals drawn to measure it on")
    seed: int = rule(non_negative_int, 0, help="seed of the draw")
    steps: int = rule(positive_int, 12, help="bisection steps in log-alpha")
    tol: float = rule(positive_number, 1e-6,
                      help="the exact codes' bound on each relative duality gap")
    alphas: tuple[float, ...] | None = rule(non_empty_list, None, each=positive_number,
                                            none=True,
                                            help="alphas to try in place of the bisection "
                                                 "(none given: bisect)")


def tune_alpha(signals, dictionary, target_sparsity: float = TuneSettings.target_sparsity,
               alphas=None, *, n_samples: int = TuneSettings.n_samples,
               seed: int = TuneSettings.seed, steps: int = TuneSettings.steps,
               tol: float = TuneSettings.tol) -> tuple[float, list[dict]]:
    """The smallest alpha whose exact codes reach a mean sparsity of ``target_sparsity``.

    Sparsity is the fraction of code entries exactly zero, averaged over a seeded subsample of
    ``n_samples`` signals. With ``alphas`` (a grid) every value is tried; otherwise a bisection
    in log-alpha over ``steps`` steps between ``alpha_max * 1e-4`` and ``alpha_max``, the
    smallest alpha giving all-zero codes (``max |A^T y|``).

    Returns
    -------
    alpha : float
        The smallest alpha searched whose sparsity is at least the target.
    curve : list of dict
        One row per alpha tried, sorted by alpha: ``alpha``, ``sparsity``,
        ``relative_error`` (mean ``||y - A x|| / ||y||``), ``mean_nonzeros``.
    """
    settings = TuneSettings(target_sparsity=target_sparsity, n_samples=n_samples, seed=seed,
                            steps=steps, tol=tol,
                            alphas=as_items(alphas))
    P, M = check_signal_array(signals)
    A = as_dictionaries(dictionary)
    if len(A) != 1:
        raise InputError("tune_alpha takes one dictionary (tune each MCA component on its own)")
    A = A[0]
    stored_problem([A], 1.0, M)
    picks = sorted_subset(P, n_samples, np.random.default_rng([seed, 3]))
    Y = np.asarray(signals[picks], dtype=np.float64)
    if not np.isfinite(Y).all():
        raise InputError("signals contain NaN or Inf")
    A64 = A.astype(np.float64)
    norms = np.maximum(np.linalg.norm(Y, axis=1), 1e-300)

    def evaluate(alpha: float) -> dict:
        result = solve(Y, A64, alpha, method="exact", tol=tol)
        X = result.codes
        error = np.linalg.norm(Y - X @ A64.T, axis=1) / norms
        return {"alpha": float(alpha), "sparsity": float((X == 0).mean()),
                "relative_error": float(error.mean()),
                "mean_nonzeros": float((X != 0).sum(axis=1).mean())}

    curve: list[dict] = []
    if settings.alphas is not None:
        curve = [evaluate(a) for a in sorted(settings.alphas)]
    else:
        hi = float(np.abs(Y @ A64).max())
        if hi <= 0:
            raise InputError("every signal is zero: no alpha to tune")
        lo = hi * 1e-4
        curve.append(evaluate(lo))
        if curve[0]["sparsity"] < target_sparsity:
            for _ in range(steps):
                mid = math.sqrt(lo * hi)
                row = evaluate(mid)
                curve.append(row)
                if row["sparsity"] >= target_sparsity:
                    hi = mid
                else:
                    lo = mid
            if not any(r["sparsity"] >= target_sparsity for r in curve):
                curve.append(evaluate(hi))
        curve.sort(key=lambda r: r["alpha"])
    good = [r for r in curve if r["sparsity"] >= target_sparsity]
    if not good:
        best = max(curve, key=lambda r: r["sparsity"])
        raise InputError(f"no alpha searched reaches sparsity {target_sparsity}; the highest "
                         f"was {best['sparsity']:.3f} at alpha {best['alpha']:g}")
    return min(r["alpha"] for r in good), curve
