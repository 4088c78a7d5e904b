"""Cutting images into square patches and putting them back (DESIGN.md section 3).

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

from ..errors import InputError


def _check_images(images, name: str = "images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.size == 0:
        raise InputError(f"{name} must be a non-empty array of shape (n, H, W), "
                         f"got shape {images.shape}")
    return images


def _check_grid(patch: int, stride: int | None) -> tuple[int, int]:
    patch = int(patch)
    stride = patch if stride is None else int(stride)
    if patch < 1:
        raise InputError(f"patch size must be positive, got {patch}")
    if not 1 <= stride <= patch:
        raise InputError(f"stride must be in [1, patch={patch}], got {stride}")
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
    images = _check_images(images)
    patch, stride = _check_grid(patch, stride)
    n, height, width = images.shape
    rows, cols = grid_shape(height, width, patch, stride)
    # A strided view, so only the final reshape copies.
    windows = sliding_window_view(images, (patch, patch), axis=(1, 2))
    windows = windows[:, : (rows - 1) * stride + 1 : stride, : (cols - 1) * stride + 1 : stride]
    return windows.reshape(n * rows * cols, patch * patch)


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
    dtype = np.result_type(patches.dtype, np.float32)
    grid = patches.reshape(n, rows, cols, patch, patch)
    total = np.zeros((n, height, width), dtype=dtype)
    count = np.zeros((height, width), dtype=dtype)
    # Loop over grid positions only (vectorised over images and pixels).
    for i in range(rows):
        for j in range(cols):
            r, c = i * stride, j * stride
            total[:, r : r + patch, c : c + patch] += grid[:, i, j]
            count[r : r + patch, c : c + patch] += 1
    covered = count > 0
    total[:, covered] /= count[covered]
    return total


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
