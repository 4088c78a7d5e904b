"""One iteration of each algorithm, written once.

The classic solvers (:mod:`lsalsa.core.solvers.classic`) loop over these steps with fixed
operators; the learned encoders (:mod:`lsalsa.core.encoders`) unroll the same steps with learned
``W`` and ``S``.
Both start from the same operators (``ista_operators``; ``salsa_operators``, built on SALSA's
inverse ``salsa_inverse64``), stored in the same layout, so an encoder at initialisation returns
exactly what its classic algorithm returns.

Every step costs at most one ``(B, N) x (N, N)`` product: that is what one iteration ``T`` means.
"""

from __future__ import annotations

import torch

from .problem import Problem
from .prox import soft_threshold


def ista_operators(problem: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``W = A^T / L`` (N, M), ``S = I - A^T A / L`` (N, N), ``tau = alpha / L`` (N,).

    Formed in float64, returned in the problem's dtype and device.
    """
    L = problem.lipschitz
    A = problem.A64
    W = A.T / L
    S = torch.eye(problem.N, dtype=A.dtype, device=A.device) - problem.gram64() / L
    return _cast(problem, W, S, problem.alpha_vector(1.0 / L))


def salsa_inverse64(problem: Problem, mu: float) -> torch.Tensor:
    """SALSA's splitting operator ``S_p = (mu I + A^T A)^{-1}`` (N, N) in float64 (Woodbury
    when M < N)."""
    return _salsa_inverse64(problem, mu)[0]


def _salsa_inverse64(problem: Problem, mu: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``S_p`` and, when M < N, the solve ``(mu I + A A^T)^{-1} A`` it came from (which also
    gives ``S_p A^T`` by the push-through identity), else None."""
    A = problem.A64
    M, N = A.shape
    solved = None
    if M < N:
        inner = mu * torch.eye(M, dtype=A.dtype, device=A.device) + A @ A.T
        solved = torch.linalg.solve(inner, A)
        S = (torch.eye(N, dtype=A.dtype, device=A.device) - A.T @ solved) / mu
    else:
        S = torch.linalg.inv(mu * torch.eye(N, dtype=A.dtype, device=A.device) + A.T @ A)
    return (S + S.T) / 2, solved  # symmetric by construction; remove rounding asymmetry


def salsa_operators(problem: Problem, mu: float) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor]:
    """SALSA's splitting step in scaled form: ``W = (mu I + A^T A)^{-1} A^T`` (N, M),
    ``S = mu (mu I + A^T A)^{-1}`` (N, N), ``tau = alpha / mu`` (N,).

    The paper writes the step as ``x = S_p (A^T y + mu (u - d))`` with
    ``S_p = (mu I + A^T A)^{-1}``; here it is ``x = W y + S (u - d)``, the same map. Both
    operators are O(1) whatever ``mu`` (``S``'s eigenvalues lie in (0, 1]), and each enters the
    output linearly, which is what makes them easy to learn (see :mod:`lsalsa.core.encoders`).
    """
    S_p, solved = _salsa_inverse64(problem, mu)
    # (mu I + A^T A)^{-1} A^T = A^T (mu I + A A^T)^{-1}: from the solve when M < N.
    W = S_p @ problem.A64.T if solved is None else solved.T  # mu I + A A^T is symmetric
    return _cast(problem, W, mu * S_p, problem.alpha_vector(1.0 / mu))


def _cast(problem, W, S, tau):
    to = {"dtype": problem.dtype, "device": problem.device}
    return W.to(**to).contiguous(), S.to(**to).contiguous(), tau.to(**to)


def encode_input(Y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``b = W y`` for a batch: computed once, reused by every iteration."""
    return Y @ W.T


def ista_step(x: torch.Tensor | None, b: torch.Tensor, S: torch.Tensor,
              tau: torch.Tensor, *, inplace: bool = False,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """``soft(b + S x; tau)``; ``x = None`` stands for the zero start (no product needed).

    ISTA: ``b = A^T y / L``, ``S = I - A^T A / L``; LISTA: learned ``b = W y`` and ``S``.
    With ``inplace`` (only where autograd is off) the new ``x`` is written into the given one
    (from the zero start into ``out``, or a new buffer), so an unrolled loop keeps its codes in
    one buffer; the operations, their order and so the rounding are the same as without.
    """
    if not inplace:
        z = b if x is None else torch.addmm(b, x, S.T)
        return soft_threshold(z, tau)
    if x is None:
        z, clip = b, torch.empty_like(b) if out is None else out  # b stays intact
    else:
        z, clip = torch.addmm(b, x, S.T), x  # x is no longer needed once z exists
    # soft_threshold(z, tau) = z - min(max(z, -tau), tau), written into existing buffers.
    _clip(z, tau, clip)
    return torch.sub(z, clip, out=clip)


def salsa_step(u: torch.Tensor | None, d: torch.Tensor | None, b: torch.Tensor,
               S: torch.Tensor, tau: torch.Tensor, *, inplace: bool = False,
               out: torch.Tensor | None = None, final: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One SALSA (ADMM) iteration, returning ``(x, u, d)``; ``None`` stands for zero state.

    ``x = b + S (u - d)`` (the splitting step), ``u = soft(x + d; tau)``, ``d = d + x - u``.
    SALSA: ``b = W y`` with the scaled operators of :func:`salsa_operators`; LSALSA: learned
    ``W`` and ``S``. From the zero state ``x = b``: the first iteration needs no product.
    With ``inplace`` (only where autograd is off) the new ``u`` and ``d`` are written into the
    given ones (from the zero state, ``u`` into ``out`` or a new buffer); the operations, their
    order and so the rounding are the same as without. ``final`` (inplace only): the last
    iteration of an unrolled loop, whose ``d`` nobody reads; it is not formed (``None``).
    """
    if not inplace:
        if u is None:
            x = z = b
        else:
            x = torch.addmm(b, u - d, S.T)
            z = x + d
        u_next = soft_threshold(z, tau)
        d_next = z - u_next  # = d + x - u_next
        return x, u_next, d_next
    if u is None:
        x = z = b  # b itself stays intact
        clip = torch.empty_like(b) if out is None else out
        d = None if final else torch.empty_like(b)
    else:
        v = torch.sub(u, d, out=u)
        x = torch.addmm(b, v, S.T)
        z, clip = torch.add(x, d, out=d), v  # v is dead after the product
    _clip(z, tau, clip)
    u_next = torch.sub(z, clip, out=clip)
    return x, u_next, None if final else torch.sub(z, u_next, out=d)


def unrolled_low(kind: str, Y: torch.Tensor, W_low: torch.Tensor, S_low: list[torch.Tensor],
                 tau: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """T unrolled ISTA/LISTA (``kind="lista"``) or SALSA/LSALSA (``"lsalsa"``) steps in place,
    with every product in the low precision of ``W_low`` (bfloat16, float16); inference only.

    ``W_low`` is ``W^T`` (M, N) and ``S_low`` holds ``S^T`` (N, N) of layers 2..T, all already
    cast. Each product rounds its operand to the low precision, runs the GEMM there (the
    kernel accumulates in float32) and widens its result into the iterates, which stay in
    ``Y``'s dtype (float32): the sum with ``b`` and the dual ``d``, the threshold's comparison
    with ``tau`` and the codes are never rounded to the low precision. A bfloat16 ``d`` or
    ``tau`` would shift every threshold by up to 2^-8 relative in one direction, a bias rather
    than noise, and cancel in ``z - clip(z)`` near the threshold; kept in float32 they cost
    nothing (the elementwise work is the same, and a bfloat16 state was not faster). The
    operations are those of :func:`ista_step` and :func:`salsa_step` (clip, then subtract),
    in buffers of their own, so the float32 path is untouched.
    """
    low = W_low.dtype
    widened = torch.mm(Y.to(low), W_low)
    b = torch.empty(widened.shape, dtype=Y.dtype, device=Y.device).copy_(widened)
    neg = -tau
    clip = torch.empty_like(b) if out is None else out
    torch.clamp(b, neg, tau, out=clip)
    first = torch.sub(b, clip, out=clip)  # the first layer: soft(b), no product
    if not S_low:
        return first
    v_low = torch.empty(b.shape, dtype=low, device=b.device)
    p_low = torch.empty_like(v_low)

    def product(v, S_t, into):  # into = v S, the product in low precision
        v_low.copy_(v)
        torch.mm(v_low, S_t, out=p_low)
        return into.copy_(p_low)

    if kind == "lista":
        x, z = first, torch.empty_like(b)
        for S_t in S_low:
            product(x, S_t, z).add_(b)  # z = b + S x
            torch.clamp(z, neg, tau, out=x)  # x is dead once rounded into v_low
            torch.sub(z, x, out=x)
        return x
    u, d = first, torch.sub(b, first)  # d = z - u with z = b
    for t, S_t in enumerate(S_low):
        v = torch.sub(u, d, out=u)
        x = product(v, S_t, v).add_(b)  # x = b + S (u - d), in v's buffer
        z = d.add_(x)  # z = x + d
        torch.clamp(z, neg, tau, out=x)  # x is dead once in z
        u = torch.sub(z, x, out=x)
        if t < len(S_low) - 1:  # the last d is read by nobody
            d = torch.sub(z, u, out=z)
    return u


def _clip(z: torch.Tensor, tau: torch.Tensor | float, out: torch.Tensor) -> None:
    """``out = min(max(z, -tau), tau)``: the clip inside ``soft_threshold``, into ``out``."""
    if isinstance(tau, torch.Tensor):
        torch.minimum(torch.maximum(z, -tau, out=out), tau, out=out)
    else:
        torch.clamp(z, -tau, tau, out=out)
