"""MCA mixtures: a digit plus a natural-image patch, both true components kept (DESIGN.md 3)."""

from __future__ import annotations

import math

import numpy as np
import torch

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


# Augmentation of a component in [0, 1] (issue 19, "fresh data every epoch"): with a zoom
# above 1, a window of the patch at a random offset and scale (its side a fraction in
# [1 / zoom, 1] of the patch's, log-uniform), resampled bilinearly to the patch's size; the
# eight symmetries of the square; a gamma in [1/GAMMA_RANGE, GAMMA_RANGE] (log-uniform) and a
# gain in [MIN_GAIN, 1]. Bilinear weights are convex and the gamma and gain keep [0, 1] in
# [0, 1], so a mixture of augmented components stays a sum of images. Only zooming in is
# possible from a stored patch (zooming out would need the photograph around it). Natural
# photographs have no preferred orientation; digits do (6 and 9), so only the natural
# component is augmented.
GAMMA_RANGE = 2.0
MIN_GAIN = 0.5


def patch_side(M: int, what: str) -> int:
    """The side of a square patch of ``M`` pixels; ``what`` (the option that needs it) names
    the refusal when ``M`` is not a square."""
    side = math.isqrt(M)
    if side * side != M:
        raise InputError(f"{what} needs square patches; {M} pixels are not a square")
    return side


def augment_draws(n: int, generator: torch.Generator,
                  zoom: float = 1.0) -> dict[str, torch.Tensor]:
    """The random choices of :func:`augment_patches` for ``n`` patches, from ``generator``;
    windows only with ``zoom`` > 1 (at 1 the draws are those of a run without windows)."""
    windows = {}
    if zoom > 1:
        windows = {"window": torch.exp(-torch.rand(n, generator=generator, dtype=torch.float64)
                                       * math.log(zoom)),  # log-uniform in [1 / zoom, 1]
                   "corner": torch.rand(n, 2, generator=generator, dtype=torch.float64)}
    return {**windows,
            "symmetry": torch.randint(8, (n,), generator=generator),
            "gamma": torch.exp((2 * torch.rand(n, generator=generator, dtype=torch.float64)
                                - 1) * math.log(GAMMA_RANGE)),
            "gain": MIN_GAIN + (1 - MIN_GAIN) * torch.rand(n, generator=generator,
                                                            dtype=torch.float64)}


def augment_patches(patches: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
    """Square patches (B, s * s) with values in [0, 1], each cropped to a window
    (:func:`zoom_patches`; where ``draws`` holds windows), turned by one of the square's eight
    symmetries (``draws["symmetry"]``: k quarter turns, transposed when >= 4), raised to
    ``draws["gamma"]`` and scaled by ``draws["gain"]``; values stay in [0, 1]."""
    B, M = patches.shape
    side = patch_side(M, "augmentation")
    images = patches.reshape(B, side, side)
    if "window" in draws:
        images = zoom_patches(images, draws["window"], draws["corner"])
    symmetry = draws["symmetry"].to(patches.device)
    out = torch.empty_like(images)
    for k in range(8):
        rows = symmetry == k
        if bool(rows.any()):
            turned = torch.rot90(images[rows], k % 4, dims=(1, 2))
            out[rows] = turned.transpose(1, 2) if k >= 4 else turned
    gamma = draws["gamma"].to(device=patches.device, dtype=patches.dtype)[:, None, None]
    gain = draws["gain"].to(device=patches.device, dtype=patches.dtype)[:, None, None]
    # clamp: float rounding may leave a value a hair outside [0, 1]; the power needs >= 0.
    return (gain * out.clamp(0, 1).pow(gamma)).clamp(0, 1).reshape(B, M)


def zoom_patches(images: torch.Tensor, window: torch.Tensor,
                 corner: torch.Tensor) -> torch.Tensor:
    """Images (B, s, s), each resampled (bilinear) from a square window of side ``window``
    (B,) times theirs, placed ``corner`` (B, 2) of the way along the free space (rows,
    columns; 0: top or left, 1: bottom or right). A window of side 1 is the image itself."""
    B = len(images)
    f = window.to(device=images.device, dtype=images.dtype)
    # affine_grid's coordinates run over [-1, 1] across the image, so a window of fraction f
    # is x -> f x + t with |t| <= 1 - f.
    shift = (2 * corner.to(device=images.device, dtype=images.dtype) - 1) * (1 - f)[:, None]
    theta = torch.zeros(B, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = f
    theta[:, 0, 2], theta[:, 1, 2] = shift[:, 1], shift[:, 0]  # x is the column, y the row
    grid = torch.nn.functional.affine_grid(theta, [B, 1, *images.shape[1:]],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(images[:, None], grid, mode="bilinear",
                                           padding_mode="border", align_corners=False)[:, 0]


# Placement of a component as in a whole picture (``lsalsa separate`` on a user's image): a
# window of the picture holds a digit at any offset, partly outside it, or none at all, and the
# picture is clipped to [0, 1] where a bright digit meets a bright photograph. The stored
# mixtures always hold a whole digit in the centre of the patch, unclipped; a model trained on
# those alone expects a digit in every window. An offset of up to half the side keeps at least
# a quarter of the digit's box inside.
EMPTY_FRACTION = 0.25


def place_draws(n: int, side: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random choices of :func:`place_patches` for ``n`` patches of ``side`` x ``side``:
    offsets (n, 2) in [-side // 2, side // 2] and whether each is left empty."""
    half = side // 2
    return {"offset": torch.randint(-half, half + 1, (n, 2), generator=generator),
            "empty": torch.rand(n, generator=generator) < EMPTY_FRACTION}


def place_patches(patches: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
    """Square patches (B, s * s), each moved by ``draws["offset"]`` (rows, columns) with the
    uncovered pixels zero, and all zero where ``draws["empty"]``."""
    B, M = patches.shape
    side = patch_side(M, "placement")
    padded = torch.nn.functional.pad(patches.reshape(B, 1, side, side),
                                     (side, side, side, side))
    offset = draws["offset"].to(patches.device)
    # Window i starts at (side - dr, side - dc) of the padded patch: the content moves by +d.
    rows = side - offset[:, 0, None] + torch.arange(side, device=patches.device)
    cols = side - offset[:, 1, None] + torch.arange(side, device=patches.device)
    batch = torch.arange(B, device=patches.device)[:, None, None]
    out = padded[:, 0][batch, rows[:, :, None], cols[:, None, :]]
    out[draws["empty"].to(patches.device)] = 0
    return out.reshape(B, M)


def place_in_mixtures(parts: list[torch.Tensor], index: int,
                      draws: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The components ``parts`` (each (B, s * s)) with ``parts[index]`` placed
    (:func:`place_patches`) then saturated over the sum of the others (:func:`saturate`)."""
    rest = sum(p for i, p in enumerate(parts) if i != index)
    placed = saturate(place_patches(parts[index], draws), rest)
    return [placed if i == index else p for i, p in enumerate(parts)]


def saturate(part: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """``part`` as a clipped picture shows it over ``rest`` (both >= 0): the increment
    ``min(rest + part, 1) - rest = min(part, 1 - rest)`` (none where ``rest`` >= 1), so the
    picture, the sum, is clipped at 1."""
    return torch.minimum(part, (1 - rest).clamp_min(0))
