"""One iteration of each algorithm, written once.

The classic solvers (:mod:`lsalsa.solvers.classic`) loop over these steps with fixed operators;
the learned encoders (:mod:`lsalsa.encoders`) unroll the same steps with learned ``W`` and ``S``.
Both start from the same operators (``ista_operators``, ``salsa_operators``), stored in the same
layout, so an encoder at initialisation returns exactly what its classic algorithm returns.

Every step costs one ``(B, N) x (N, N)`` product: that is what one iteration ``T`` means.
"""

from __future__ import annotations

import torch

from ..problem import Problem
from ..prox import soft_threshold


def ista_operators(problem: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``W = A^T / L`` (N, M), ``S = I - A^T A / L`` (N, N), ``tau = alpha / L`` (N,).

    Formed in float64, returned in the problem's dtype and device.
    """
    L = problem.lipschitz
    A = problem.A64
    W = A.T / L
    S = torch.eye(problem.N, dtype=A.dtype, device=A.device) - problem.gram64() / L
    return _cast(problem, W, S, problem.alpha_vector(1.0 / L))


def salsa_operators(problem: Problem, mu: float) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor]:
    """``W = A^T`` (N, M), ``S = (mu I + A^T A)^{-1}`` (N, N), ``tau = alpha / mu`` (N,)."""
    return _cast(problem, problem.A64.T, problem.salsa_operator64(mu),
                 problem.alpha_vector(1.0 / mu))


def _cast(problem, W, S, tau):
    to = {"dtype": problem.dtype, "device": problem.device}
    return W.to(**to).contiguous(), S.to(**to).contiguous(), tau.to(**to)


def encode_input(Y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``b = W y`` for a batch: computed once, reused by every iteration."""
    return Y @ W.T


def ista_step(x: torch.Tensor | None, b: torch.Tensor, S: torch.Tensor,
              tau: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    """``soft(b + S x; tau)``; ``x = None`` stands for the zero start (no product needed).

    ISTA: ``b = A^T y / L``, ``S = I - A^T A / L``; LISTA: learned ``b = W_e y`` and ``S``.
    With ``inplace`` (only where autograd is off) ``x`` is overwritten and no temporaries are
    allocated; the operations, their order and so the rounding are the same as without.
    """
    if not inplace:
        z = b if x is None else torch.addmm(b, x, S.T)
        return soft_threshold(z, tau)
    if x is None:
        z, clip = b, torch.empty_like(b)
    else:
        z, clip = torch.addmm(b, x, S.T), x  # x is no longer needed once z exists
    # soft_threshold(z, tau) = z - min(max(z, -tau), tau), written into existing buffers.
    _clip(z, tau, clip)
    return torch.sub(z, clip, out=clip) if x is None else z.sub_(clip)  # b stays intact


def salsa_step(u: torch.Tensor | None, d: torch.Tensor | None, b: torch.Tensor,
               S: torch.Tensor, mu: float, tau: torch.Tensor, *, inplace: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SALSA (ADMM) iteration, returning ``(x, u, d)``; ``None`` stands for zero state.

    ``x = S (b + mu (u - d))`` (the splitting step), ``u = soft(x + d; alpha/mu)``,
    ``d = d + x - u``. SALSA: ``b = A^T y``, ``S = (mu I + A^T A)^{-1}``; LSALSA: learned.
    With ``inplace`` (only where autograd is off) the new ``u`` and ``d`` are written into the
    given ones, so an iteration allocates only ``x``; the operations, their order and so the
    rounding are the same as without (elementwise passes dominate at N <= 256).
    """
    if not inplace:
        v = b if u is None else b + mu * (u - d)
        x = v @ S.T
        z = x if d is None else x + d
        u_next = soft_threshold(z, tau)
        d_next = z - u_next  # = d + x - u
        return x, u_next, d_next
    if u is None:
        x = b @ S.T
        z, clip, d = x, torch.empty_like(x), torch.empty_like(x)
    else:
        v = torch.sub(u, d, out=u).mul_(mu).add_(b)  # b + mu (u - d): addition commutes
        x = v @ S.T
        z, clip = torch.add(x, d, out=d), v  # v is dead after the product
    _clip(z, tau, clip)
    u_next = torch.sub(z, clip, out=clip)
    d_next = torch.sub(z, u_next, out=d)
    return x, u_next, d_next


def _clip(z: torch.Tensor, tau: torch.Tensor | float, out: torch.Tensor) -> None:
    """``out = min(max(z, -tau), tau)``: the clip inside ``soft_threshold``, into ``out``."""
    if isinstance(tau, torch.Tensor):
        torch.minimum(torch.maximum(z, -tau, out=out), tau, out=out)
    else:
        torch.clamp(z, -tau, tau, out=out)
