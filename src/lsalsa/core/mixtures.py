"""MCA mixtures: a digit plus a natural-image patch, both true components kept (DESIGN.md 3)."""

from __future__ import annotations

import numpy as np

from .. import checks
from ..errors import InputError


def balanced_draw(rng: np.random.Generator, pool: int, n: int) -> np.ndarray:
    """``n`` random indices into ``range(pool)`` using every index as evenly as possible.

    Concatenated random permutations, cut to ``n``: when ``n <= pool`` no index repeats, and
    otherwise each index appears ``floor(n / pool)`` or one more times.
    """
    reps = -(-n // pool)
    return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n].astype(np.int64)


def make_mixtures(digits, naturals, n_mixtures: int | None = None, seed: int = 0) -> dict:
    """Additive mixtures ``y = y_1 + y_2`` of a digit and a randomly drawn natural patch.

    Parameters
    ----------
    digits : array (n, M)
        Clean first components (MNIST digits, vectorised 32x32).
    naturals : array (m, M)
        Clean second components (natural-image patches).
    n_mixtures : int, optional
        Number of mixtures; default ``max(n, m)``. Both components are drawn with
        :func:`balanced_draw`, so each digit and each patch is used as evenly as possible.
    seed : int
        Seed of the draw; the same seed gives identical mixtures.

    Returns
    -------
    dict with ``mixtures`` (P, M), ``component0`` (P, M), ``component1`` (P, M) as float32
    with ``mixtures == component0 + component1`` exactly, and ``digit_index``,
    ``natural_index`` (P,) int64: the rows of ``digits`` and ``naturals`` used.
    """
    digits = np.asarray(digits)
    naturals = np.asarray(naturals)
    if digits.ndim != 2 or naturals.ndim != 2 or digits.shape[1] != naturals.shape[1] \
            or len(digits) == 0 or len(naturals) == 0:
        raise InputError(f"digits {digits.shape} and naturals {naturals.shape} must be "
                         "non-empty (n, M) and (m, M) arrays with the same M")
    n_mixtures = checks.positive_int(n_mixtures, "n_mixtures", none=True)
    if n_mixtures is None:
        n_mixtures = max(len(digits), len(naturals))
    rng = np.random.default_rng(seed)
    digit_index = balanced_draw(rng, len(digits), n_mixtures)
    natural_index = balanced_draw(rng, len(naturals), n_mixtures)
    component0 = digits[digit_index].astype(np.float32)
    component1 = naturals[natural_index].astype(np.float32)
    # Summed in float32, so the stored mixture equals component0 + component1 bit for bit.
    return {"mixtures": component0 + component1, "component0": component0,
            "component1": component1, "digit_index": digit_index,
            "natural_index": natural_index}
