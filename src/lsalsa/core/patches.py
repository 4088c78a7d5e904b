"""Cutting images into square patches and putting them back (docs/DESIGN.md section 5).

Patches are taken on a regular grid from the top-left corner: positions ``0, s, 2s, ...`` while
the patch still fits, so pixels past the last full patch are dropped (Fashion-MNIST: 32 -> three
10x10 patches per row, the last 2 rows/columns ignored). Within one image the patches are in
row-major grid order, each flattened row-major; images follow one another (image-major).
With ``stride < patch`` the patches overlap and :func:`assemble_patches` averages the overlaps,
which is what patch-wise image separation needs; :func:`pad_to_multiple` first pads an image so
that the grid covers every pixel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import checks
from ..errors import InputError


def _check_images(images, name: str = "images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.size == 0:
        raise InputError(f"{name} must be a non-empty array of shape (n, H, W), "
                         f"got shape {images.shape}")
    return images


def _check_grid(patch: int, stride: int | None) -> tuple[int, int]:
    patch = checks.positive_int(patch, "patch size")
    stride = patch if stride is None else checks.integer(stride, "stride", low=1, high=patch)
    return patch, stride


def grid_shape(height: int, width: int, patch: int, stride: int | None = None) -> tuple[int, int]:
    """Number of patch positions ``(rows, cols)`` on an ``height x width`` image."""
    patch, stride = _check_grid(patch, stride)
    if height < patch or width < patch:
        raise InputError(f"a {patch}x{patch} patch does not fit in a {height}x{width} image")
    return (height - patch) // stride + 1, (width - patch) // stride + 1


def covered_shape(height: int, width: int, patch: int,
                  stride: int | None = None) -> tuple[int, int]:
    """The top-left ``(h, w)`` region the patch grid covers (the rest is dropped)."""
    patch, stride = _check_grid(patch, stride)
    rows, cols = grid_shape(height, width, patch, stride)
    return (rows - 1) * stride + patch, (cols - 1) * stride + patch


def patch_grid(images, patch: int, stride: int | None = None) -> np.ndarray:
    """Every patch of every image as a read-only strided view, nothing copied.

    Returns an array (n, rows, cols, patch, patch): ``[k, i, j]`` is the patch of image ``k``
    at grid position ``(i, j)``, top-left pixel ``(i * stride, j * stride)``.
    """
    images = _check_images(images)
    patch, stride = _check_grid(patch, stride)
    _, height, width = images.shape
    rows, cols = grid_shape(height, width, patch, stride)
    windows = sliding_window_view(images, (patch, patch), axis=(1, 2))
    return windows[:, : (rows - 1) * stride + 1 : stride, : (cols - 1) * stride + 1 : stride]


def extract_patches(images, patch: int, stride: int | None = None) -> np.ndarray:
    """Cut every image into ``patch x patch`` patches on a grid with step ``stride``.

    Parameters
    ----------
    images : array (n, H, W)
    patch : int
        Side of the square patches.
    stride : int, optional
        Grid step, ``1 <= stride <= patch``; default ``patch`` (non-overlapping).

    Returns
    -------
    patches : array (n * k, patch * patch)
        ``k = rows * cols`` patches per image (see :func:`grid_shape`), image-major, grid
        row-major, each patch flattened row-major. Same dtype as ``images``.
    """
    grid = patch_grid(images, patch, stride)
    n, rows, cols, side, _ = grid.shape
    return grid.reshape(n * rows * cols, side * side)  # the only copy


def add_patches(total: np.ndarray, grid: np.ndarray, origin: tuple[int, int],
                stride: int) -> None:
    """Add patches into images in place: ``grid`` (n, r, c, patch, patch) holds the patches
    at grid positions ``origin + (0..r-1, 0..c-1)`` of the images ``total`` (n, H, W).

    One strided addition per pixel offset within a patch (patch**2 of them), whatever the
    number of patches; within one addition every patch hits a different pixel.
    """
    _, r, c, patch, _ = grid.shape
    top, left = origin[0] * stride, origin[1] * stride
    for di in range(patch):
        for dj in range(patch):
            total[:, top + di : top + di + (r - 1) * stride + 1 : stride,
                  left + dj : left + dj + (c - 1) * stride + 1 : stride] += grid[..., di, dj]


def average_overlaps(total: np.ndarray, patch: int, stride: int | None = None) -> np.ndarray:
    """Divide sums of patches (n, H, W), as :func:`add_patches` makes them over the whole grid,
    by the number of patches covering each pixel, in place; uncovered pixels stay 0."""
    patch, stride = _check_grid(patch, stride)
    height, width = total.shape[1:]
    rows, cols = grid_shape(height, width, patch, stride)

    def cover(length: int, positions: int) -> np.ndarray:
        count = np.zeros(length, dtype=total.dtype)
        for k in range(positions):
            count[k * stride : k * stride + patch] += 1
        return count

    # A pixel is covered by (grid rows over it) x (grid columns over it) patches.
    count = np.outer(cover(height, rows), cover(width, cols))
    covered = count > 0
    total[:, covered] /= count[covered]
    return total


def assemble_patches(patches, image_shape: tuple[int, int], patch: int,
                     stride: int | None = None) -> np.ndarray:
    """Put patches back into images, averaging where they overlap (inverse of extraction).

    Parameters
    ----------
    patches : array (n * k, patch * patch)
        As returned by :func:`extract_patches` for images of shape ``image_shape``.
    image_shape : (H, W)
    patch, stride : int
        The grid used for extraction.

    Returns
    -------
    images : float array (n, H, W)
        Each covered pixel is the mean of the patch values that contain it; pixels outside
        :func:`covered_shape` (dropped by extraction) are 0.
    """
    patches = np.asarray(patches)
    patch, stride = _check_grid(patch, stride)
    height, width = (int(v) for v in image_shape)
    rows, cols = grid_shape(height, width, patch, stride)
    per_image = rows * cols
    if patches.ndim != 2 or patches.shape[1] != patch * patch or patches.shape[0] == 0 \
            or patches.shape[0] % per_image:
        raise InputError(f"patches of shape {patches.shape} do not fit {per_image} patches of "
                         f"{patch}x{patch} per {height}x{width} image")
    n = patches.shape[0] // per_image
    total = np.zeros((n, height, width), dtype=np.result_type(patches.dtype, np.float32))
    add_patches(total, patches.reshape(n, rows, cols, patch, patch), (0, 0), stride)
    return average_overlaps(total, patch, stride)


def pad_to_multiple(images, patch: int, stride: int | None = None,
                    mode: str = "reflect") -> tuple[np.ndarray, tuple[int, int]]:
    """Pad images at the bottom and right so the patch grid covers every original pixel.

    Parameters
    ----------
    images : array (n, H, W)
    patch, stride : int
        The grid to be used (``stride`` defaults to ``patch``).
    mode : str
        ``numpy.pad`` mode: ``"reflect"`` (default, avoids artificial edges), ``"edge"`` or
        ``"constant"`` (zeros).

    Returns
    -------
    padded : array (n, H', W')
        ``H' >= max(H, patch)`` with ``(H' - patch) % stride == 0``; likewise ``W'``.
    original : (H, W)
        Crop ``padded[:, :H, :W]`` after assembly to get back the original size.
    """
    images = _check_images(images)
    patch, stride = _check_grid(patch, stride)
    _, height, width = images.shape

    def target(size: int) -> int:
        size = max(size, patch)
        return size + (-(size - patch)) % stride

    pad_h, pad_w = target(height) - height, target(width) - width
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        mode = "symmetric"  # reflect cannot pad more than the image size minus one
    padded = np.pad(images, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    return padded, (height, width)


def resize_images(images, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear resize of grayscale images with Pillow, as float32.

    Parameters
    ----------
    images : array (n, H, W)
        Any real dtype; values are kept on their scale (no rescaling).
    size : int or (H', W')

    Returns
    -------
    array (n, H', W') float32
    """
    from PIL import Image

    images = _check_images(images)
    out_h, out_w = (size, size) if np.isscalar(size) else size
    out = np.empty((images.shape[0], out_h, out_w), dtype=np.float32)
    for k, image in enumerate(images.astype(np.float32, copy=False)):
        # Mode "F" keeps full float precision through the interpolation.
        resized = Image.fromarray(image).resize((out_w, out_h), Image.BILINEAR)
        out[k] = np.asarray(resized, dtype=np.float32)
    return out
