"""A picture of a dictionary: every atom (column) as a small image in one grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...checks import Settings, image_shape, positive_int, rule, text
from ...core._arrays import as_real
from ...errors import InputError
from .figures import new_figure, save_png


@dataclass(frozen=True)
class AtomsSettings(Settings):
    """How :func:`plot_atoms` draws a dictionary (``lsalsa dictionary show``'s flags)."""

    patch_shape: tuple[int, int] | None = rule(
        image_shape, None, none=True,
        help="each atom's image, rows x cols such as 10x10 ('none': square)")
    title: str | None = rule(text, None, none=True, help="the figure's title")
    max_atoms: int | None = rule(positive_int, None, none=True,
                                 help="draw at most this many atoms ('none': all)")


def plot_atoms(dictionary, path: str | Path, patch_shape: tuple[int, int] | None = None, *,
               title: str | None = None, max_atoms: int | None = None) -> Path:
    """A grid PNG of the atoms (columns) of ``dictionary`` (M, N).

    Each atom is shown as a ``patch_shape`` image (default square, ``sqrt(M)``), scaled to its
    own symmetric range so that zero is mid-grey.
    """
    settings = AtomsSettings(patch_shape, title, max_atoms)
    A = as_real(dictionary, np.float64, "dictionary")
    if A.ndim != 2 or A.size == 0:
        raise InputError(f"dictionary must be a non-empty 2-D (M, N) array, got shape {A.shape}")
    M, N = A.shape
    patch_shape = settings.patch_shape
    if patch_shape is None:
        side = math.isqrt(M)
        if side * side != M:
            raise InputError(f"M = {M} is not a square; give `patch_shape` (rows, cols)")
        patch_shape = (side, side)
    h, w = patch_shape
    if h * w != M:
        raise InputError(f"`patch_shape` {patch_shape} does not hold M = {M} pixels")
    if settings.max_atoms is not None:
        N = min(N, settings.max_atoms)
    cols = math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    pad = 1
    # One mosaic image, background at the top of the range (white gaps between atoms).
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad))
    for j in range(N):
        atom = A[:, j]
        peak = np.abs(atom).max()
        tile = 0.5 + 0.5 * atom / peak if peak > 0 else np.full(M, 0.5)
        r, c = divmod(j, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = tile.reshape(h, w)

    inches = max(3.0, min(16.0, canvas.shape[1] / 40))
    fig = new_figure(inches, inches * canvas.shape[0] / canvas.shape[1] + 0.3)
    ax = fig.add_axes((0, 0, 1, 0.95 if title else 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path, 100)
