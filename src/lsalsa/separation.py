"""Separating whole images with a trained MCA encoder (one dictionary per component).

An image of any size is padded so a patch grid covers it, cut into patches of the model's size
(non-overlapping by default; with ``stride < patch`` overlapping, averaged on the way back),
encoded in batches, and each component ``A_i x_i`` is put back together and cropped.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .data.patches import assemble_patches, extract_patches, pad_to_multiple
from .encoders import UnrolledEncoder, components
from .errors import InputError


def patch_side(encoder: UnrolledEncoder) -> int:
    M = int(encoder.dictionary.shape[0])
    side = math.isqrt(M)
    if side * side != M:
        raise InputError(f"the model's signals have M = {M} pixels, not a square patch")
    return side


def separate_image(encoder: UnrolledEncoder, image, *, stride: int | None = None,
                   batch_size: int = 8192) -> list[np.ndarray]:
    """Split a grayscale image (H, W) with values in [0, 1] into the model's components.

    Returns one (H, W) float32 array per dictionary; they add up to the model's
    reconstruction of the image.
    """
    if encoder.problem.D < 2:
        raise InputError("separation needs an MCA model (two or more dictionaries); this "
                         "model has one")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"image must be a non-empty 2-D grayscale array, got {image.shape}")
    if not np.isfinite(image).all():
        raise InputError("image contains NaN or Inf")
    side = patch_side(encoder)
    padded, (height, width) = pad_to_multiple(image[None], side, stride)
    patches = extract_patches(padded, side, stride)
    codes = encoder.encode(patches, batch_size=batch_size)  # cast to the model's dtype there
    return [assemble_patches(part, padded.shape[1:], side, stride)[0, :height, :width]
            .astype(np.float32) for part in components(encoder, codes)]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Any image Pillow reads, as grayscale float32 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    file = Path(path)
    if not file.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with Image.open(file) as handle:
            gray = handle.convert("L")
            return np.asarray(gray, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from exc


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def side_by_side(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels (H, W) in [0, 1] next to each other with white gaps, as uint8."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap), 255, dtype=np.uint8)
    row = []
    for k, panel in enumerate(panels):
        if k:
            row.append(spacer)
        row.append(_to_uint8(panel))
    return np.concatenate(row, axis=1)


def separate_files(encoder: UnrolledEncoder, images: list[str], out_dir: str | os.PathLike,
                   *, stride: int | None = None, batch_size: int = 8192) -> list[Path]:
    """Separate image files and write, per image, ``<stem>_component<i>.png`` and ``.npy``
    and ``<stem>_separation.png`` (input, then each component).

    Every image is separated before anything is written, and files are written into a
    temporary folder first, so a failure leaves no partial output in ``out_dir``.
    """
    from PIL import Image

    results = []
    stems = set()
    for path in images:
        stem = Path(path).stem
        if stem in stems:
            raise InputError(f"two input images share the name {stem!r}")
        stems.add(stem)
        image = read_image(path)
        results.append((stem, image, separate_image(encoder, image, stride=stride,
                                                     batch_size=batch_size)))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out_dir}: {exc}") from exc
    written = []
    staging = Path(tempfile.mkdtemp(prefix=".separate-", dir=out))
    try:
        for stem, image, parts in results:
            for i, part in enumerate(parts):
                Image.fromarray(_to_uint8(part)).save(staging / f"{stem}_component{i}.png")
                np.save(staging / f"{stem}_component{i}.npy", part, allow_pickle=False)
            Image.fromarray(side_by_side([image, *parts])).save(
                staging / f"{stem}_separation.png")
        for file in sorted(staging.iterdir()):
            os.replace(file, out / file.name)
            written.append(out / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
