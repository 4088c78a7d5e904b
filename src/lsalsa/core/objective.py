"""The cost ``E(x; y)``, its duality gap and KKT violation, one value per sample.

The underscore functions work on validated tensors and are what solvers call inside loops;
the public functions validate their inputs once and accept NumPy arrays or torch tensors.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ._arrays import as_signals, check_same_kind, to_output
from .problem import Problem, make_problem


def _l1(problem: Problem, X: torch.Tensor) -> torch.Tensor:
    return sum(a * b.abs().sum(dim=1) for a, b in zip(problem.alphas, problem.split(X),
                                                      strict=True))


def _objective(problem: Problem, Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    residual = Y - X @ problem.A.T
    return 0.5 * (residual * residual).sum(dim=1) + _l1(problem, X)


def _duality_gap(problem: Problem, Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``E(x) - D(s r)`` with the residual scaled into the dual feasible set (>= 0)."""
    residual = Y - X @ problem.A.T
    correlation = residual @ problem.A  # A^T r, (B, N)
    scale = torch.ones(Y.shape[0], dtype=Y.dtype, device=Y.device)
    for alpha, block in zip(problem.alphas, problem.split(correlation), strict=True):
        peak = block.abs().amax(dim=1)
        ratio = torch.where(peak > 0, alpha / peak.clamp_min(torch.finfo(Y.dtype).tiny),
                            torch.ones_like(peak))
        scale = torch.minimum(scale, ratio)
    primal = 0.5 * (residual * residual).sum(dim=1) + _l1(problem, X)
    dual_gap_part = Y - scale[:, None] * residual
    dual = 0.5 * (Y * Y).sum(dim=1) - 0.5 * (dual_gap_part * dual_gap_part).sum(dim=1)
    return primal - dual


def _kkt_violation(problem: Problem, Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Largest violation of the optimality conditions of ``E``, per sample."""
    gradient = (X @ problem.A.T - Y) @ problem.A
    tau = problem.alpha_vector().to(dtype=X.dtype, device=X.device)
    active = (gradient + tau * torch.sign(X)).abs()
    inactive = (gradient.abs() - tau).clamp_min(0)
    return torch.where(X != 0, active, inactive).amax(dim=1)


def _validate(Y, X, dictionaries, alphas):
    problem, _ = make_problem(dictionaries, alphas)
    Y_t, y_numpy = as_signals(Y, "Y")
    X_t, _ = as_signals(X, "X")
    check_same_kind({"Y": Y_t, "X": X_t, "dictionary": problem.A})
    if Y_t.shape[1] != problem.M:
        raise InputError(f"Y has {Y_t.shape[1]} features but the dictionary has M = {problem.M} "
                         "rows")
    if X_t.shape != (Y_t.shape[0], problem.N):
        raise InputError(f"X must have shape ({Y_t.shape[0]}, {problem.N}), got "
                         f"{tuple(X_t.shape)}")
    return problem, Y_t, X_t, y_numpy


def objective(Y, X, dictionaries, alphas):
    """Per-sample cost ``1/2 ||y - A x||^2 + sum_i alpha_i ||x_i||_1``.

    Parameters
    ----------
    Y : array (B, M)
    X : array (B, N), N = sum of the dictionaries' widths
    dictionaries : array (M, N) or list of arrays (M, N_i)
    alphas : float or one float per dictionary

    Returns
    -------
    array (B,), the same kind (NumPy or torch) as ``Y``.
    """
    problem, Y_t, X_t, as_numpy = _validate(Y, X, dictionaries, alphas)
    return to_output(_objective(problem, Y_t, X_t), as_numpy)


def duality_gap(Y, X, dictionaries, alphas):
    """Per-sample duality gap of ``X`` (>= 0; 0 exactly at the minimiser). See :func:`objective`."""
    problem, Y_t, X_t, as_numpy = _validate(Y, X, dictionaries, alphas)
    return to_output(_duality_gap(problem, Y_t, X_t), as_numpy)


def kkt_violation(Y, X, dictionaries, alphas):
    """Per-sample largest violation of the optimality conditions. See :func:`objective`."""
    problem, Y_t, X_t, as_numpy = _validate(Y, X, dictionaries, alphas)
    return to_output(_kkt_violation(problem, Y_t, X_t), as_numpy)


def lipschitz_constant(dictionaries) -> float:
    """Largest eigenvalue of ``A^T A`` (the gradient's Lipschitz constant), in float64."""
    problem, _ = make_problem(dictionaries, 0.0)
    return problem.lipschitz
