"""Classic solvers: the public :func:`solve` and the loops behind it."""

from __future__ import annotations

import torch

from ... import checks
from ...errors import InputError
from .._arrays import as_signals, check_same_kind, to_output
from ..operators import inference_dtype
from ..problem import DEFAULT_MU, check_mu, make_problem
from .classic import SolveResult, as_history_arrays, run_iterations
from .exact import DEFAULT_MAX_ITER, exact_codes

METHODS = ("ista", "fista", "salsa", "exact")

__all__ = ["METHODS", "SolveResult", "solve"]


def solve(Y, dictionaries, alphas, method: str = "fista", n_iter: int | None = None,
          mu: float = DEFAULT_MU, tol: float | None = None, *, history: bool = False,
          check_every: int = 10, output: str = "u", backend: str = "auto",
          dtype=None) -> SolveResult:
    """Sparse codes of ``Y`` for ``E(x; y) = 1/2 ||y - A x||^2 + sum_i alpha_i ||x_i||_1``.

    Parameters
    ----------
    Y : array (B, M), NumPy or torch; results follow its kind, device and dtype.
    dictionaries : array (M, N) or list of arrays (M, N_i), one per component.
    alphas : float, or one float >= 0 per dictionary.
    method : "ista", "fista", "salsa" or "exact" (docs/DESIGN.md section 2).
    n_iter : iterations T (default 100); for "exact", the most refinement iterations
        allowed (default 20000).
    mu : SALSA's ADMM penalty (> 0).
    tol : stop each sample once its relative duality gap ``gap / E(x)`` is at most ``tol``
        (checked every ``check_every`` iterations). For "exact" the bound (default 1e-7).
    history : record the batch-mean objective and elapsed time after every iteration.
    output : SALSA only: "u" (sparse, the default) or "x" (the splitting-step iterate).
    backend : "exact" only: "auto", "spams" or "own".
    dtype : ista, fista and salsa: "bfloat16" (or "float16" on CUDA) runs every product in
        that precision, as the learned encoders' ``dtype=`` does; the iterates, the dual and
        the thresholds stay in ``Y``'s precision, and so do the codes. None: ``Y``'s own.

    Returns
    -------
    SolveResult with ``.codes`` (B, N), ``.n_iter``, ``.gap``, ``.converged``, ``.history``.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if n_iter is None:
        n_iter = DEFAULT_MAX_ITER if method == "exact" else 100
    n_iter = checks.positive_int(n_iter, "n_iter")
    mu = check_mu(mu)
    tol = checks.non_negative_number(tol, "tol", none=True)
    check_every = checks.positive_int(check_every, "check_every")
    if output not in ("u", "x"):
        raise InputError(f"output must be 'u' or 'x', got {output!r}")
    if backend not in ("auto", "spams", "own"):
        raise InputError(f"backend must be 'auto', 'spams' or 'own', got {backend!r}")
    problem, _ = make_problem(dictionaries, alphas)
    Y_t, as_numpy = as_signals(Y, "Y")
    check_same_kind({"Y": Y_t, "dictionary": problem.A})
    # The objective at x = 0 is ||y||^2 / 2: when that overflows, no gap or step is meaningful
    # (the codes would come back NaN, or zero with a NaN gap).
    if not bool(torch.isfinite((Y_t * Y_t).sum(dim=1)).all()):
        raise InputError(f"Y holds values too large for {str(Y_t.dtype).removeprefix('torch.')}:"
                         " the squared norm of a sample overflows; rescale the signals")
    low = inference_dtype(dtype, Y_t.device, Y_t.dtype)
    if low is not None and method == "exact":
        raise InputError("dtype: the exact codes are solved in the signals' precision; a low "
                         "precision is for ista, fista and salsa")
    if Y_t.shape[1] != problem.M:
        raise InputError(f"Y has {Y_t.shape[1]} features per sample but the dictionary has "
                         f"M = {problem.M} rows")
    if method == "exact":
        result = exact_codes(problem, Y_t, tol=tol, max_iter=n_iter,
                             backend=backend)
    else:
        result = run_iterations(problem, Y_t, method, n_iter, mu=mu, tol=tol,
                                check_every=check_every, history=history, output=output,
                                low=low)
    result.codes = to_output(result.codes, as_numpy)
    if result.gap is not None:
        result.gap = to_output(result.gap, as_numpy)
    result.history = as_history_arrays(result.history)
    return result

