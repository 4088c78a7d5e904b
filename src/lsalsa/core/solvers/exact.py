"""Exact codes: the fastest exact solver for the device, run to a duality-gap bound.

On CPU with SPAMS installed, its LARS-Lasso (homotopy, exact up to rounding); per-block alphas
are reduced to one penalty by rescaling each block's columns. Otherwise (GPU, no SPAMS, or an
alpha of 0) this project's FISTA with adaptive restart. Either way the result is checked with
the duality gap in float64, refined where needed, and a warning names any sample left above
the bound.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import torch

from ...errors import InputError
from ..objective import _duality_gap, _objective
from ..problem import Problem
from .classic import SolveResult, run_iterations

DEFAULT_TOL = 1e-7
DEFAULT_MAX_ITER = 20000


def spams_available() -> bool:
    return importlib.util.find_spec("spams") is not None


def spams_lasso(problem: Problem, Y: torch.Tensor, threads: int = -1) -> torch.Tensor:
    """Exact codes by SPAMS's LARS (float64, on the CPU), on ``threads`` threads (-1: all).

    Per-block alphas: with ``x_i = (lam / alpha_i) z_i`` every block has penalty ``lam``.
    """
    import spams  # optional dependency, imported only when used

    lam = max(problem.alphas)
    scales = np.concatenate([np.full(n, lam / a) for n, a in zip(
        problem.block_sizes, problem.alphas, strict=True)])
    A = problem.A64.cpu().numpy() * scales[None, :]
    signals = np.asfortranarray(Y.to(torch.float64).cpu().numpy().T)
    # cholesky=True: SPAMS's default Gram-update LARS loses the path on ill-conditioned
    # dictionaries (measured on the demo's MCA pair, cond ~4e7: 132 of 200 samples left with
    # relative gaps up to 1.0); the Cholesky variant reaches ~1e-9 on every sample.
    z = spams.lasso(signals, D=np.asfortranarray(A), lambda1=lam, mode=2, cholesky=True,
                    numThreads=threads)
    X = np.asarray(z.todense()).T * scales[None, :]
    return torch.from_numpy(np.ascontiguousarray(X))


def exact_codes(problem: Problem, Y: torch.Tensor, *, tol: float | None = None,
                max_iter: int | None = None, backend: str = "auto") -> SolveResult:
    """Codes whose per-sample relative duality gap ``gap / E(x)`` is at most ``tol``.

    Computed in float64 and returned in ``Y``'s dtype. ``backend``: "auto", "spams" or "own".
    """
    tol = DEFAULT_TOL if tol is None else tol
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    problem64 = problem.to(dtype=torch.float64)
    Y64 = Y.to(torch.float64)
    use_spams = backend == "spams" or (
        backend == "auto" and Y.device.type == "cpu" and spams_available()
        and min(problem.alphas) > 0)
    if backend == "spams" and not spams_available():
        raise InputError("backend='spams' asked for but SPAMS is not installed "
                           "(pip install spams-bin)")
    if backend == "spams" and min(problem.alphas) <= 0:
        # The column rescaling lam / alpha_i needs every alpha > 0.
        raise InputError("backend='spams' needs every alpha > 0; use backend='own' or 'auto'")
    if use_spams:
        X = spams_lasso(problem64, Y64).to(Y64.device)
        name = "exact (spams lars)"
    else:
        X = torch.zeros(Y.shape[0], problem.N, dtype=torch.float64, device=Y.device)
        name = "exact (fista restart)"
    gap = _duality_gap(problem64, Y64, X)
    cost = _objective(problem64, Y64, X).clamp_min(torch.finfo(torch.float64).tiny)
    todo = gap > tol * cost
    n_iter = 0
    if bool(todo.any()):
        refined = run_iterations(problem64, Y64[todo], "fista", max_iter, tol=tol,
                                 x0=X[todo] if use_spams else None, restart=True)
        X[todo] = refined.codes
        n_iter = refined.n_iter
        # Only the refined samples changed.
        gap[todo] = _duality_gap(problem64, Y64[todo], refined.codes)
        cost[todo] = _objective(problem64, Y64[todo], refined.codes).clamp_min(
            torch.finfo(torch.float64).tiny)
    relative = gap / cost
    converged = bool((relative <= tol).all())
    if not converged:
        bad = int((~(relative <= tol)).sum())  # a NaN gap did not reach tol either
        warnings.warn(f"exact codes: {bad} of {Y.shape[0]} samples did not reach the relative "
                      f"duality gap {tol:g} (worst {float(relative.max()):.3g}); raise max_iter",
                      RuntimeWarning, stacklevel=3)
    return SolveResult(codes=X.to(Y.dtype), n_iter=n_iter, gap=gap.to(Y.dtype),
                       converged=converged, method=name)
