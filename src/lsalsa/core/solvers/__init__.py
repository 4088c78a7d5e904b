"""Classic solvers: the public :func:`solve` and the loops behind it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import checks
from ...checks import Settings, rule
from ...errors import InputError
from .._arrays import as_signals, check_same_kind, to_output
from ..operators import inference_dtype
from ..problem import DEFAULT_MU, make_problem
from .classic import SolveResult, as_history_arrays, run_iterations
from .exact import DEFAULT_MAX_ITER, DEFAULT_TOL, exact_codes

METHODS = ("ista", "fista", "salsa", "exact")
ITERATIONS = 100  # ista, fista, salsa: the default T

__all__ = ["METHODS", "SolveResult", "SolveSettings", "solve"]


@dataclass(frozen=True)
class SolveSettings(Settings):
    """The options of :func:`solve`, declared once (``lsalsa solve`` makes its flags from
    them), checked when made; ``dtype``, which depends on the signals, is checked by
    :func:`~lsalsa.core.operators.inference_dtype`."""

    method: str = rule(checks.one_of, "fista", choices=METHODS,
                       help="the solver: ista, fista, salsa, or exact (to a duality gap)")
    n_iter: int | None = rule(checks.positive_int, None, none=True,
                              help=f"iterations T ('none': {ITERATIONS}); exact: the most "
                                   f"refinement iterations ('none': {DEFAULT_MAX_ITER})")
    mu: float = rule(checks.positive_number, DEFAULT_MU, help="SALSA's ADMM penalty")
    tol: float | None = rule(checks.non_negative_number, None, none=True,
                             help="stop a sample once its relative duality gap is at most "
                                  f"this ('none': never; exact: {DEFAULT_TOL:g})")
    check_every: int = rule(checks.positive_int, 10,
                            help="iterations between two checks of tol")
    output: str = rule(checks.one_of, "u", choices=("u", "x"),
                       help="SALSA: the sparse iterate u or the splitting step's x")
    backend: str = rule(checks.one_of, "auto", choices=("auto", "spams", "own"),
                        help="exact: SPAMS where installed (auto), or the package's own")


def solve(Y, dictionaries, alphas, method: str = SolveSettings.method,
          n_iter: int | None = SolveSettings.n_iter, mu: float = SolveSettings.mu,
          tol: float | None = SolveSettings.tol, *, history: bool = False,
          check_every: int = SolveSettings.check_every, output: str = SolveSettings.output,
          backend: str = SolveSettings.backend, dtype=None) -> SolveResult:
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
    SolveSettings(method=method, n_iter=n_iter, mu=mu, tol=tol, check_every=check_every,
                  output=output, backend=backend)
    if n_iter is None:
        n_iter = DEFAULT_MAX_ITER if method == "exact" else ITERATIONS
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

