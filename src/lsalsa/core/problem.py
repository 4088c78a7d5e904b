"""The sparse coding problem: a dictionary made of D blocks and one l1 penalty per block.

``E(x; y) = 1/2 ||y - A x||^2 + sum_i alpha_i ||x_i||_1`` with ``A = [A_1, ..., A_D]``.
D = 1 is sparse coding (SC), D >= 2 morphological component analysis (MCA); every solver and
encoder takes a :class:`Problem`, so one code path serves both.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from .. import checks
from ..errors import InputError
from ._arrays import as_tensor, check_finite, check_same_kind


@dataclass(frozen=True, eq=False)
class Problem:
    """A validated dictionary ``A`` of shape (M, N), its block sizes and per-block alphas."""

    A: torch.Tensor
    block_sizes: tuple[int, ...]
    alphas: tuple[float, ...]
    # A known value (or upper bound) of ||A||_2^2, e.g. tracked by dictionary learning,
    # which then skips the SVD.
    lipschitz_bound: float | None = None

    @property
    def M(self) -> int:
        return self.A.shape[0]

    @property
    def N(self) -> int:
        return self.A.shape[1]

    @property
    def D(self) -> int:
        return len(self.block_sizes)

    @property
    def dtype(self) -> torch.dtype:
        return self.A.dtype

    @property
    def device(self) -> torch.device:
        return self.A.device

    @property
    def blocks(self) -> list[torch.Tensor]:
        return list(torch.split(self.A, self.block_sizes, dim=1))

    def split(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Cut codes (B, N) into the D components (B, N_i)."""
        return list(torch.split(X, self.block_sizes, dim=-1))

    def alpha_vector(self, scale: float = 1.0) -> torch.Tensor:
        """Per-coordinate penalties ``alpha_i * scale`` on block i, shape (N,)."""
        values = torch.cat(
            [torch.full((n,), a * scale, dtype=torch.float64) for n, a in zip(
                self.block_sizes, self.alphas, strict=True)]
        )
        return values.to(dtype=self.dtype, device=self.device)

    def to(self, dtype: torch.dtype | None = None, device=None) -> Problem:
        A = self.A.to(dtype=dtype, device=device)
        if A is self.A:
            return self
        known = self.lipschitz_bound
        if known is None and A.dtype in (self.A.dtype, torch.float64):
            # Same values (or an exact upcast): an L already computed still holds exactly.
            known = self.__dict__.get("lipschitz")
        return Problem(A, self.block_sizes, self.alphas, known)

    @cached_property
    def A64(self) -> torch.Tensor:
        return self.A.to(torch.float64)

    @cached_property
    def lipschitz(self) -> float:
        """Largest eigenvalue of ``A^T A``, computed in float64 (unless given as a bound)."""
        if self.lipschitz_bound is not None:
            return float(self.lipschitz_bound)
        L = float(torch.linalg.matrix_norm(self.A64, ord=2) ** 2)
        # ISTA's step is 1/L: an all-zero dictionary (L = 0) or one whose norm overflows has
        # none.
        if L == 0:
            raise InputError("the dictionary is all zeros: there is nothing to code with")
        if not math.isfinite(L):
            raise InputError("the dictionary's values are too large: ||A||_2^2 overflows "
                             "float64; rescale it")
        return L

    def gram64(self) -> torch.Tensor:
        return self.A64.T @ self.A64

    def fingerprint(self) -> str:
        """A short hash of the dictionary, block sizes and alphas (stored with models, codes)."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.A64.cpu().numpy()).tobytes())
        digest.update(repr((self.block_sizes, self.alphas)).encode())
        return digest.hexdigest()[:16]


def make_problem(dictionaries, alphas) -> tuple[Problem, bool]:
    """Validate ``dictionaries`` (one (M, N) array or a list of (M, N_i)) and ``alphas``.

    Returns the problem and whether the dictionaries came as NumPy arrays.
    """
    if isinstance(dictionaries, np.ndarray | torch.Tensor):
        dictionaries = [dictionaries]
    if not isinstance(dictionaries, Sequence) or len(dictionaries) == 0:
        raise InputError("dictionaries must be an (M, N) array or a non-empty list of them")
    tensors, kinds = [], []
    for i, block in enumerate(dictionaries):
        name = f"dictionaries[{i}]" if len(dictionaries) > 1 else "dictionary"
        tensor, from_numpy = as_tensor(block, name)
        if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
            raise InputError(f"{name} must be a non-empty 2-D (M, N_i) array, "
                             f"got shape {tuple(tensor.shape)}")
        check_finite(tensor, name)
        tensors.append(tensor)
        kinds.append(from_numpy)
    check_same_kind({f"dictionaries[{i}]": t for i, t in enumerate(tensors)})
    rows = {t.shape[0] for t in tensors}
    if len(rows) != 1:
        raise InputError(f"all dictionaries need the same number of rows M, got {sorted(rows)}")
    alpha_values = as_alphas(alphas, len(tensors))
    A = torch.cat(tensors, dim=1) if len(tensors) > 1 else tensors[0]
    return Problem(A, tuple(t.shape[1] for t in tensors), alpha_values), all(kinds)


def as_alphas(alphas, n_blocks: int, positive: bool = False) -> tuple[float, ...]:
    """One alpha per block from a number or a sequence; ``positive`` refuses 0 too."""
    if isinstance(alphas, torch.Tensor):
        alphas = alphas.detach().cpu().numpy()
    try:
        # A bool, a text or None is a mistake, not a number to coerce (the float64 cast
        # would: to 1.0, to the text's value, to NaN).
        if any(a is None or isinstance(a, bool | np.bool_ | str | bytes)
               for a in np.asarray(alphas, dtype=object).ravel()):
            raise TypeError
        values = np.atleast_1d(np.asarray(alphas, dtype=np.float64)).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"alphas must be a number or one number per dictionary, "
                         f"got {alphas!r}") from exc
    if values.size == 1:
        values = np.repeat(values, n_blocks)
    if values.size != n_blocks:
        raise InputError(f"got {values.size} alphas for {n_blocks} dictionaries; "
                         "give one alpha, or one per dictionary")
    for value in values:
        if not math.isfinite(value):
            raise InputError("alpha must be finite")
        if value < 0 or (positive and value == 0):
            raise InputError(f"alpha must be {'> 0' if positive else '>= 0'}, got {value}")
    return tuple(float(v) for v in values)


# SALSA's ADMM penalty where none is given (the paper's); the experiments search it.
DEFAULT_MU = 10.0


def check_mu(mu: float) -> float:
    """SALSA's ADMM penalty, a positive number (a bool or a JSON "10" is a mistake)."""
    return checks.positive_number(mu, "mu")
