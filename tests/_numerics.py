"""Tolerances of the test suite, derived from floating-point error bounds.

Notation (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3): ``u = eps / 2`` is
the unit roundoff of a dtype. A sum or dot product of ``n`` terms, computed in *any* order (any
BLAS kernel, blocking, vector width or thread split), is within ``gamma(n) = n u / (1 - n u)``
of the exact value relative to the sum of the absolute values of its terms. So two kernels may
disagree by ``2 gamma(n)`` times that magnitude, never by a fixed number of digits of the
result: a small result of large terms (a duality gap, a residual) is only accurate to ``eps``
times the terms. Each bound below is worst case (no "typical" sqrt(n) factor), so it holds on
any CPU, BLAS or thread count; each says which magnitudes it multiplies.

Every function returns a bound on ONE computed value against exact arithmetic; a test that
compares two computed values adds the bounds of both.
"""

from __future__ import annotations

import numpy as np
import torch


def unit_roundoff(dtype) -> float:
    """``u = eps / 2`` of a NumPy or torch floating dtype."""
    if isinstance(dtype, torch.dtype):
        return torch.finfo(dtype).eps / 2
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype=np.float64) -> float:
    """Higham's ``gamma_n``: relative error bound of an n-term sum or dot product."""
    nu = n * unit_roundoff(dtype)
    assert nu < 0.5, "bound meaningless: n u >= 1/2"
    return nu / (1 - nu)


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def gap_rounding(Y, X, dictionaries, cost, dtype=np.float64) -> np.ndarray:
    """Bound on the rounding error of a computed ``E(x)`` or duality gap, per sample (B,).

    ``gap = [1/2 ||r||^2 + l1(x)] - [1/2 ||y||^2 - 1/2 ||y - s r||^2]`` with ``r = y - A x``.
    With unit-norm columns (``|| |A| |x| || <= ||x||_1``), ``r`` is computed within
    ``gamma(N+1) (||y|| + ||x||_1)``; each of the four terms is within ``gamma(n)`` of a
    quantity at most ``2 (E + 1/2 ||y||^2)`` (``||y - s r||^2 / 2 <= ||y||^2 + ||r||^2``), and
    the scale ``s`` (from ``A^T r``, relative error ``gamma(M)``) moves the dual term by at
    most ``gamma(M) ||y - s r|| ||r||``. Summing: ``10 gamma(n) (E + 1/2 ||y||^2 + ||r|| ||x||_1)``
    with ``n = max(M, N) + 1`` bounds every contribution with room for the second-order ones.
    It is NOT relative to the gap: at the optimum the gap is a difference of O(E) terms.
    Also bounds the error of ``E(x)`` alone (a subset of the same terms).
    """
    Y, X = _np(Y).astype(np.float64), _np(X).astype(np.float64)
    cost = _np(cost).astype(np.float64)
    if isinstance(dictionaries, list | tuple):
        N = sum(_np(d).shape[1] for d in dictionaries)
    else:
        N = _np(dictionaries).shape[1]
    n = max(Y.shape[1], N) + 1
    residual = np.sqrt(2 * np.maximum(cost, 0))  # ||r|| <= sqrt(2 E)
    magnitude = cost + 0.5 * (Y**2).sum(axis=1) + residual * np.abs(X).sum(axis=1)
    return 10 * gamma(n, dtype) * magnitude


def iteration_error(method: str, Y, dictionaries, alphas, T: int, *, mu: float = 10.0,
                    dtype=np.float64, operator_cond: float = 0.0,
                    operators=None, growth: float = 1.0,
                    low_precision=None) -> np.ndarray:
    """Bound on the rounding error of T iterations of ISTA, FISTA or SALSA (or LISTA/LSALSA),
    per sample, in the 2-norm (so also entrywise), as a (B, 1) array to broadcast over codes.

    Each iteration forms ``S v + b`` (ISTA, FISTA: ``v`` the previous iterate; SALSA in the
    scaled form of :func:`lsalsa.core.operators.salsa_operators`: ``v = u - d``), within
    ``gamma(N + 2) || |S| |v| + |b| ||`` of exact; SALSA's other steps (forming ``v``,
    ``x + d``, the threshold, the dual update) add ``u`` times the norms of their operands.
    ``operator_cond`` > 0 adds the error of operators formed from rounded data (float32
    inputs): ``S`` is then off by ``operator_cond * 2 u`` relative (ISTA: 1; SALSA's inverse:
    the condition number of ``mu I + A^T A``).
    The iterations do not amplify an error: ISTA's map is ``||S||_2 <= 1`` followed by the
    1-Lipschitz soft threshold; SALSA (ADMM) is the Douglas-Rachford iteration on
    ``z = x + d``, firmly nonexpansive since both reflections are (the linear one is
    ``2 S - I`` with ``S = mu (mu I + A^T A)^{-1}``, of norm <= 1), and ``u = soft(z)`` is
    1-Lipschitz in ``z``. So the T per-step errors add. FISTA's momentum is not
    nonexpansive: linearised on a fixed support, its response to an error made at step k
    grows at most linearly in the remaining steps, so errors add up with weights 1..T,
    T (T + 1) / 2 in all.
    The norms are taken from a float64 run of the same iterations (NumPy, DESIGN.md
    section 2).

    ``operators``: ``(W, S, tau)`` of a learned encoder (``S`` (N, N) or one per layer
    (T, N, N); ``b = W y``) instead of the classic ones built from ``dictionaries``. A trained
    ``S`` may break the norm conditions; ``growth`` > 1 is then the per-layer Lipschitz bound
    (see :func:`encoder_error`) and an error made at layer t is amplified by at most
    ``growth^(T - t)``.

    ``low_precision`` (a torch dtype, e.g. bfloat16): the products run in it as in
    :class:`lsalsa.core.operators.LowPrecisionAffine`: the operand and the operator are each
    rounded to it (``u_low`` relative, entrywise), the GEMM accumulates in ``dtype`` (``gamma(n)``)
    and its result is rounded to it once more (``u_low``). So a product is within
    ``(3 u_low + gamma(n) + O(u_low^2)) |S| |v|``; ``4 u_low`` covers the second-order terms.
    The input product ``W y`` is made the same way, so its error, ``4 u_low || |W| |y| ||``,
    is added to every step's magnitude (it enters every layer; ``|W| |y|`` may be much larger
    than ``|W y|``). Everything else runs in ``dtype`` as before.
    """
    Y = _np(Y).astype(np.float64)
    if operators is None:
        blocks = [_np(d).astype(np.float64) for d in (
            dictionaries if isinstance(dictionaries, list | tuple) else [dictionaries])]
        A = np.hstack(blocks)
        alphas = np.broadcast_to(np.asarray(alphas, dtype=np.float64), (len(blocks),))
        penalty = np.repeat(alphas, [b.shape[1] for b in blocks])
        gram = A.T @ A
        if method in ("ista", "fista"):
            L = np.linalg.eigvalsh(gram).max()
            W, S, tau = A.T / L, np.eye(A.shape[1]) - gram / L, penalty / L
        elif method == "salsa":
            S_p = np.linalg.inv(mu * np.eye(A.shape[1]) + gram)
            W, S, tau = S_p @ A.T, mu * S_p, penalty / mu
        else:
            raise ValueError(method)
    else:
        W, S, tau = (_np(o).astype(np.float64) for o in operators)
    layers = list(S) if S.ndim == 3 else [S] * T
    N = layers[0].shape[0]
    b = Y @ W.T
    input_magnitude = 0.0
    if low_precision is not None:
        input_magnitude = np.linalg.norm(np.abs(Y) @ np.abs(W).T, axis=1)

    def soft(z, tau):
        return np.sign(z) * np.maximum(np.abs(z) - tau, 0.0)

    def norm(a):
        return np.linalg.norm(a, axis=1)

    largest = np.zeros(Y.shape[0])  # the largest per-step magnitude
    if method in ("ista", "fista"):
        x = x_prev = z = np.zeros((Y.shape[0], N))
        t = 1.0
        for S_t in layers:
            largest = np.maximum(largest, norm(np.abs(z) @ np.abs(S_t).T + np.abs(b)))
            x = soft(b + z @ S_t.T, tau)
            if method == "fista":
                t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
                z = x + (t - 1) / t_next * (x - x_prev)
                x_prev, t = x, t_next
            else:
                z = x
    elif method == "salsa":
        u = d = np.zeros((Y.shape[0], N))
        for S_t in layers:
            v = u - d
            x = b + v @ S_t.T
            largest = np.maximum(largest, norm(np.abs(v) @ np.abs(S_t).T + np.abs(b))
                                 + norm(u) + norm(d) + 2 * (norm(x) + norm(d)))
            u = soft(x + d, tau)
            d = d + x - u
    else:
        raise ValueError(method)
    if method == "fista":
        steps = T * (T + 1) / 2
    else:
        excess = max(growth - 1, 0.0)  # sum_t growth^t, stable near growth = 1
        steps = T if excess == 0 else float(np.expm1(T * np.log1p(excess)) / excess)
    per_step = gamma(N + 2, dtype) + 2 * operator_cond * unit_roundoff(dtype)
    if low_precision is not None:
        per_step = 4 * unit_roundoff(low_precision) + gamma(max(N, Y.shape[1]) + 2, dtype) \
            + 2 * operator_cond * unit_roundoff(dtype)
        largest = largest + input_magnitude
    return (steps * per_step * largest)[:, None]


def encoder_error(encoder, Y, dtype=None, low_precision=None) -> np.ndarray:
    """:func:`iteration_error` for a LISTA or LSALSA module with its current weights.

    A layer amplifies an error by at most its Lipschitz constant: LISTA ``||S||_2`` (the
    threshold is 1-Lipschitz); LSALSA ``(1 + ||2 S - I||_2) / 2`` (the Douglas-Rachford
    map, one reflection of norm ``||2 S - I||``, the other nonexpansive; ``S`` is the scaled
    splitting operator). Both are 1 at initialisation and may exceed 1 after training.
    ``low_precision``: the products in that torch dtype (``encode(Y, dtype=...)``); see
    :func:`iteration_error`.
    """
    S = encoder.S.detach().cpu().double().numpy()
    N = S.shape[-1]
    lsalsa_kind = encoder.kind == "lsalsa"
    growth = 1.0
    for s in (S if S.ndim == 3 else S[None]):
        if lsalsa_kind:
            lipschitz = (1 + np.linalg.norm(2 * s - np.eye(N), 2)) / 2
        else:
            lipschitz = np.linalg.norm(s, 2)
        growth = max(growth, lipschitz)
    return iteration_error("salsa" if lsalsa_kind else "ista", Y, None, None, encoder.depth,
                           mu=float(encoder.mu) if lsalsa_kind else 1.0,
                           operators=(encoder.W, encoder.S, encoder._tau()), growth=growth,
                           dtype=encoder.W.dtype if dtype is None else dtype,
                           low_precision=low_precision)


def salsa_condition(dictionaries, mu: float) -> float:
    """Condition number of ``mu I + A^T A``: how much rounding of A is amplified in ``S``."""
    blocks = dictionaries if isinstance(dictionaries, list | tuple) else [dictionaries]
    A = np.hstack([_np(b).astype(np.float64) for b in blocks])
    eigs = np.linalg.eigvalsh(A.T @ A)
    return float((mu + eigs[-1]) / (mu + max(eigs[0], 0.0)))


def code_error_bound(Y, X, reference, dictionaries, alphas) -> np.ndarray:
    """Per-sample bound on ``||X - reference||_2`` for two near-minimisers of ``E``, from
    their excess cost over the optimum (bounded by their duality gaps); ``reference`` must be
    essentially exact (its own gap is included).

    ``E`` need not be strongly convex (N > M), so a small gap alone does not bound the codes.
    But with ``g* = A^T (A x* - y)``, for any x,
    ``E(x) - E(x*) = 1/2 ||A (x - x*)||^2 + sum_j [alpha_j (|x_j| - |x*_j|) + g*_j (x_j - x*_j)]``
    and every bracket is >= 0; off the support U of x* it is ``>= (alpha_j - |g*_j|) |x_j|``.
    So with the margin ``m = min_{j not in U} (alpha_j - |g*_j|) > 0`` (strict complementarity)
    and ``sigma = sigma_min(A_U) > 0``, for ``e >= E(x) - E(x*)``: ``||x_off||_1 <= e / m`` and
    ``||x_U - x*_U|| <= (sqrt(2 e) + c ||x_off||_1) / sigma`` (``c`` the largest column norm).
    ``x*`` is stood in for by the reference: U is its support, ``g*`` its gradient, the margin
    lowered by ``c sqrt(2 gap_ref)`` (how far its gradient can be from the optimum's).
    Asserts the two conditions: without them no code bound follows from a gap.
    """
    from lsalsa import duality_gap, objective

    blocks = [_np(d).astype(np.float64) for d in (
        dictionaries if isinstance(dictionaries, list | tuple) else [dictionaries])]
    A = np.hstack(blocks)
    Y, X, R = (_np(a).astype(np.float64) for a in (Y, X, reference))
    alphas = np.broadcast_to(np.asarray(alphas, dtype=np.float64), (len(blocks),))
    penalty = np.repeat(alphas, [b.shape[1] for b in blocks])
    c = np.linalg.norm(A, axis=0).max()

    def excess(codes):
        """Upper bound on ``E(codes) - E(x*)``: the duality gap, and its cost, with rounding."""
        cost = objective(Y, codes, blocks, list(alphas))
        gap = np.maximum(duality_gap(Y, codes, blocks, list(alphas)), 0.0)
        return gap + gap_rounding(Y, codes, blocks, cost), cost

    gap_ref, cost_ref = excess(R)
    gap_x, cost_x = excess(X)
    # E(x) - E* <= E(x) - E(ref) + gap(ref): much smaller than x's own gap when x is an
    # exact solution rounded (its dual point, scaled by s, moves to first order; E only to
    # second order).
    # (Rounding: of both costs, and of the reference's gap, which gap_ref already holds.)
    gap_x = np.minimum(gap_x, np.maximum(cost_x - cost_ref, 0.0) + gap_ref
                       + gap_rounding(Y, X, blocks, cost_x) + gap_rounding(Y, R, blocks, cost_ref))
    bounds = []
    for y, r, gx, gr in zip(Y, R, gap_x, gap_ref, strict=True):
        support = r != 0
        g = A.T @ (A @ r - y)
        off = ~support
        margin = (penalty[off] - np.abs(g[off])).min() - c * np.sqrt(2 * gr) if off.any() \
            else np.inf
        assert margin > 0, "no strict complementarity: a gap does not bound the codes"
        sigma = np.linalg.svd(A[:, support], compute_uv=False).min() if support.any() else c
        assert sigma > 0, "the reference's atoms are dependent: codes are not unique"

        def bound(e, margin=margin, sigma=sigma):
            mass_off = e / margin
            return mass_off + (np.sqrt(2 * e) + c * mass_off) / sigma

        bounds.append(bound(gx) + bound(gr))
    return np.array(bounds)


def kkt_bound(Y, X, dictionaries, alphas) -> np.ndarray:
    """Per-sample bound on the KKT violation of a near-minimiser X whose non-zeros have the
    signs of the optimum's (the caller checks that against a reference).

    ``g - g* = A^T A (x - x*)`` is at most ``c ||A (x - x*)|| <= c sqrt(2 gap)`` per entry
    (``c`` the largest column norm; see :func:`code_error_bound`). Where ``x_j != 0`` with the
    optimum's sign the violation is ``|g_j - g*_j|``; where ``x_j = 0`` it is
    ``|g_j| - alpha_j <= |g*_j| - alpha_j + |g_j - g*_j| <= |g_j - g*_j|``. The gradient
    itself is computed within ``gamma(n) c (||y|| + c ||x||_1)``.
    """
    from lsalsa import duality_gap, objective

    blocks = [_np(d).astype(np.float64) for d in (
        dictionaries if isinstance(dictionaries, list | tuple) else [dictionaries])]
    Y, X = _np(Y).astype(np.float64), _np(X).astype(np.float64)
    c = max(np.linalg.norm(b, axis=0).max() for b in blocks)
    cost = objective(Y, X, blocks, list(np.broadcast_to(alphas, (len(blocks),))))
    gap = np.maximum(duality_gap(Y, X, blocks, list(np.broadcast_to(alphas, (len(blocks),)))),
                     0.0) + gap_rounding(Y, X, blocks, cost)
    n = max(Y.shape[1], X.shape[1]) + 1
    rounding = gamma(n) * c * (np.linalg.norm(Y, axis=1) + c * np.abs(X).sum(axis=1))
    return c * np.sqrt(2 * gap) + rounding


def assert_within(actual, expected, bound) -> None:
    """``|actual - expected| <= bound`` elementwise (``bound`` broadcasts, e.g. per sample)."""
    actual, expected = _np(actual).astype(np.float64), _np(expected).astype(np.float64)
    error = np.abs(actual - expected)
    bound = np.broadcast_to(_np(bound).astype(np.float64), error.shape)
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else ()
    assert np.all(error <= bound), (
        f"|difference| {error[worst]:.3g} exceeds its bound {bound[worst]:.3g} at {worst}")
