"""Separating an image with an MCA encoder: patches in, one image per component out.

An image of any size is padded so a patch grid covers it, cut into patches of the model's size
(non-overlapping by default; with ``stride < patch`` overlapping, averaged on the way back),
and encoded a batch of patches at a time: each batch's components ``A_i x_i`` are added into
the component images at once, so memory is bounded by the batch and the image, not by the
number of patches. The components are then averaged over the overlaps and cropped. Reading and
writing image files is :mod:`lsalsa.apps.separation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import checks
from ..checks import Settings, rule
from ..errors import InputError
from ..io import check_finite_output
from ._arrays import numpy_dtype
from .encoders import UnrolledEncoder, components
from .encoders.settings import EncodeSettings
from .operators import inference_dtype
from .patches import add_patches, average_overlaps, pad_to_multiple, patch_grid


@dataclass(frozen=True)
class SeparateSettings(Settings):
    """The options of :func:`separate_image`, declared once (``lsalsa separate`` makes its
    flags from them), checked when made (the residual's component against the model in
    :func:`separate_image`)."""

    stride: int | None = rule(checks.positive_int, None, none=True,
                              help="patch step; smaller than the patch for overlapping "
                                   "patches averaged together ('none': non-overlapping)")
    batch_size: int = rule(checks.positive_int, 8192,
                           help="patches encoded at once; bounds the memory")
    residual: int | None = rule(checks.non_negative_int, None, none=True,
                                help="residual form: this component (e.g. 1, the photograph) "
                                     "is the image minus the others, so detail its dictionary "
                                     "cannot carry stays in it ('none': off)")
    fused: bool = checks.declared(EncodeSettings, "fused")


def patch_side(encoder: UnrolledEncoder) -> int:
    M = int(encoder.dictionary.shape[0])
    side = math.isqrt(M)
    if side * side != M:
        raise InputError(f"the model's signals have M = {M} pixels, not a square patch")
    return side


def _tiles(rows: int, cols: int, batch: int):
    """Rectangles ``(i0, i1, j0, j1)`` of grid positions, row-major, at most ``batch`` each."""
    width = min(cols, batch)
    height = max(1, batch // width)
    for i0 in range(0, rows, height):
        for j0 in range(0, cols, width):
            yield i0, min(i0 + height, rows), j0, min(j0 + width, cols)


def separate_image(encoder: UnrolledEncoder, image, *,
                   stride: int | None = SeparateSettings.stride,
                   batch_size: int = SeparateSettings.batch_size,
                   residual: int | None = SeparateSettings.residual,
                   dtype=None, fused: bool = SeparateSettings.fused) -> list[np.ndarray]:
    """Split a grayscale image (H, W) with values in [0, 1] into the model's components.

    Patches go through the encoder ``batch_size`` at a time. Returns one (H, W) float32 array
    per dictionary; they add up to the model's reconstruction of the image. With
    ``residual=i`` component ``i`` is instead the image minus the other components (the
    residual form: what the other dictionaries do not explain, detail that the dictionary of
    component ``i`` cannot carry included), so the components add up to the image.
    ``dtype`` ("bfloat16"; "float16" on CUDA) runs the encoder's products and the
    dictionaries' synthesis in that precision; the patches' sums and the returned images stay
    float32. None: the model's own precision. ``fused``: the encoder's layers through
    torch.compile (:meth:`~lsalsa.core.encoders.UnrolledEncoder.encode`).
    """
    if encoder.problem.D < 2:
        raise InputError("separation needs an MCA model (two or more dictionaries); this "
                         "model has one")
    SeparateSettings(stride=stride, batch_size=batch_size, residual=residual, fused=fused)
    low = inference_dtype(dtype, encoder.dictionary.device, encoder.dictionary.dtype)
    if residual is not None:
        residual = checks.integer(residual, "residual", low=0, high=encoder.problem.D - 1)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"image must be a non-empty 2-D grayscale array, got {image.shape}")
    if not np.isfinite(image).all():
        raise InputError("image contains NaN or Inf")
    side = patch_side(encoder)
    padded, (height, width) = pad_to_multiple(image[None], side, stride)
    grid = patch_grid(padded, side, stride)[0]  # a view (rows, cols, side, side)
    stride = side if stride is None else int(stride)
    totals = np.zeros((encoder.problem.D, *padded.shape[1:]),
                      dtype=np.result_type(numpy_dtype(encoder.dictionary.dtype), np.float32))
    for i0, i1, j0, j1 in _tiles(*grid.shape[:2], batch_size):
        patches = grid[i0:i1, j0:j1].reshape(-1, side * side)  # copies this batch only
        codes = encoder.encode(patches, batch_size=batch_size, dtype=low, fused=fused)
        for k, part in enumerate(components(encoder, codes, dtype=low)):
            add_patches(totals[k:k + 1], part.reshape(1, i1 - i0, j1 - j0, side, side),
                        (i0, j0), stride)
    average_overlaps(totals, side, stride)
    with np.errstate(over="ignore"):  # an overflow is reported just below, in one line
        parts = [total[:height, :width].astype(np.float32) for total in totals]
        if residual is not None:
            others = sum(p for k, p in enumerate(parts) if k != residual)
            parts[residual] = (image - others).astype(np.float32)
    for part in parts:
        check_finite_output(part, "the separated components")
    return parts
