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

from ..errors import InputError
from .problem import Problem
from .prox import soft_threshold

#: The low precisions of the inference path (``dtype=``): the products run in them.
LOW_PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def inference_dtype(dtype, device, model_dtype: torch.dtype = torch.float32,
                    what: str = "`dtype`") -> torch.dtype | None:
    """The low precision asked for by ``dtype`` (a name or torch dtype), or None for the
    model's own precision (``None`` or the model's dtype). float16 only on CUDA: CPUs have
    no fast float16 GEMM, and its range (65504) is narrower than bfloat16's."""
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
    own = str(model_dtype).removeprefix("torch.")
    if name == own:
        return None
    if name not in LOW_PRECISIONS:
        raise InputError(f"{what} must be {own} (unchanged), bfloat16 or float16 (CUDA), "
                         f"got {dtype!r}")
    device = torch.device(device)
    if name == "float16" and device.type != "cuda":
        raise InputError(f"{what} float16 needs a CUDA device; on CPU use bfloat16")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(f"{what} bfloat16: this CUDA device has no bfloat16; use float16")
    return LOW_PRECISIONS[name]


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


def affine(b: torch.Tensor, v: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``b + v S^T``: the product of every unrolled step, in the operands' precision."""
    return torch.addmm(b, v, S.T)


def encode_input(Y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``b = W y`` for a batch: computed once, reused by every iteration."""
    return Y @ W.T


def ista_step(x: torch.Tensor | None, b: torch.Tensor, S: torch.Tensor,
              tau: torch.Tensor, *, inplace: bool = False,
              out: torch.Tensor | None = None, product=affine) -> torch.Tensor:
    """``soft(b + S x; tau)``; ``x = None`` stands for the zero start (no product needed).

    ISTA: ``b = A^T y / L``, ``S = I - A^T A / L``; LISTA: learned ``b = W y`` and ``S``.
    With ``inplace`` (only where autograd is off) the new ``x`` is written into the given one
    (from the zero start into ``out``, or a new buffer), so an unrolled loop keeps its codes in
    one buffer; the operations, their order and so the rounding are the same as without.
    ``product`` forms ``b + x S^T`` (:func:`affine`; :class:`LowPrecisionAffine` for low
    precision, ``S`` then being its cast ``S^T``).
    """
    if not inplace:
        z = b if x is None else product(b, x, S)
        return soft_threshold(z, tau)
    if x is None:
        z, clip = b, torch.empty_like(b) if out is None else out  # b stays intact
    else:
        z, clip = product(b, x, S), x  # x is no longer needed once z exists
    # soft_threshold(z, tau) = z - min(max(z, -tau), tau), written into existing buffers.
    _clip(z, tau, clip)
    return torch.sub(z, clip, out=clip)


def salsa_step(u: torch.Tensor | None, d: torch.Tensor | None, b: torch.Tensor,
               S: torch.Tensor, tau: torch.Tensor, *, inplace: bool = False,
               out: torch.Tensor | None = None, final: bool = False, product=affine
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One SALSA (ADMM) iteration, returning ``(x, u, d)``; ``None`` stands for zero state.

    ``x = b + S (u - d)`` (the splitting step), ``u = soft(x + d; tau)``, ``d = d + x - u``.
    SALSA: ``b = W y`` with the scaled operators of :func:`salsa_operators`; LSALSA: learned
    ``W`` and ``S``. From the zero state ``x = b``: the first iteration needs no product.
    With ``inplace`` (only where autograd is off) the new ``u`` and ``d`` are written into the
    given ones (from the zero state, ``u`` into ``out`` or a new buffer); the operations, their
    order and so the rounding are the same as without. ``final`` (inplace only): the last
    iteration of an unrolled loop, whose ``d`` nobody reads; it is not formed (``None``).
    ``product``: as for :func:`ista_step`.
    """
    if not inplace:
        if u is None:
            x = z = b
        else:
            x = product(b, u - d, S)
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
        x = product(b, v, S)
        z, clip = torch.add(x, d, out=d), v  # v is dead after the product
    _clip(z, tau, clip)
    u_next = torch.sub(z, clip, out=clip)
    return x, u_next, None if final else torch.sub(z, u_next, out=d)


class LowPrecisionAffine:
    """``b + v S_t``, the product in a low precision (bfloat16, float16): the step's
    ``affine`` for inference. ``S_t`` is ``S^T`` already cast (``UnrolledEncoder`` keeps it);
    ``v`` is rounded into a reused low-precision buffer, the GEMM runs there (the kernel
    accumulates in float32) and its result is widened into the sum with ``b``, which stays in
    ``b``'s dtype (float32). So the dual ``d``, the threshold's comparison with ``tau`` and the
    codes are never rounded to the low precision: a bfloat16 ``d`` or ``tau`` would shift every
    threshold by up to 2^-8 relative in one direction, a bias rather than noise, and cancel in
    ``z - clip(z)`` near the threshold; kept in float32 they cost nothing (the elementwise work
    is the same, and a bfloat16 state was not faster).

    Its buffers are reused by every call, the result's included (a fresh float32 result per
    layer costs 1.5x here): each result is dead once the next product is formed, as in an
    unrolled loop, where the steps consume it at once."""

    def __init__(self, low: torch.dtype):
        self.low = low
        self._buffers: tuple[torch.Tensor, ...] = ()

    def __call__(self, b: torch.Tensor, v: torch.Tensor, S_t: torch.Tensor) -> torch.Tensor:
        if not self._buffers or self._buffers[0].shape != v.shape:
            shape = (v.shape[0], S_t.shape[1])
            self._buffers = (torch.empty(v.shape, dtype=self.low, device=v.device),
                             torch.empty(shape, dtype=self.low, device=v.device),
                             torch.empty(shape, dtype=b.dtype, device=v.device))
        v_low, product, result = self._buffers
        torch.mm(v_low.copy_(v), S_t, out=product)
        # Widened, then summed: faster than one mixed-precision add (a slower path).
        return result.copy_(product).add_(b)


def low_precision_affine(b: torch.Tensor, v: torch.Tensor, S_t: torch.Tensor) -> torch.Tensor:
    """``b + v S_t`` rounded as :class:`LowPrecisionAffine` rounds it (``v`` to ``S_t``'s low
    precision, the GEMM there, its result widened and added to ``b``), without its reused
    buffers: the form a compiler traces and fuses (:func:`lsalsa.core.encoders.fused_unroll`)."""
    return torch.mm(v.to(S_t.dtype), S_t).to(b.dtype).add(b)


def low_precision_input(Y: torch.Tensor, W_t: torch.Tensor) -> torch.Tensor:
    """``b = W y`` with the product in ``W_t``'s low precision (``W_t`` is ``W^T`` cast
    once), widened back to ``Y``'s dtype: the input of every layer, see
    :class:`LowPrecisionAffine`."""
    return torch.mm(Y.to(W_t.dtype), W_t).to(Y.dtype)


def low_precision_operands(Y: torch.Tensor, W: torch.Tensor, S: torch.Tensor, low: torch.dtype
                           ) -> tuple[torch.Tensor, torch.Tensor, LowPrecisionAffine]:
    """What a classic solver's loop needs to run its products in ``low``: ``b = W y``
    (:func:`low_precision_input`), ``S^T`` cast once and the step's ``product``."""
    W_t = W.T.to(low).contiguous()
    return low_precision_input(Y, W_t), S.T.to(low).contiguous(), LowPrecisionAffine(low)


def _clip(z: torch.Tensor, tau: torch.Tensor | float, out: torch.Tensor) -> None:
    """``out = min(max(z, -tau), tau)``: the clip inside ``soft_threshold``, into ``out``."""
    if isinstance(tau, torch.Tensor):
        torch.minimum(torch.maximum(z, -tau, out=out), tau, out=out)
    else:
        torch.clamp(z, -tau, tau, out=out)
