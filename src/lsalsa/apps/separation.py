"""Separating image files with a trained MCA encoder (one dictionary per component).

The numerics (patches in, components out, bounded memory) are
:func:`lsalsa.core.separation.separate_image`; this module reads and writes the image files.

Images are read at their native depth (8-bit, 16-bit, float) and scaled to [0, 1] by the
range of their type.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import checks
from ..checks import rule
from ..core.encoders import UnrolledEncoder
from ..core.separation import SeparateSettings, separate_image
from ..errors import InputError
from ..io import (
    check_output_path,
    remove_stale_temporaries,
    staging_folder,
)

# Pillow's own default limit against decompression bombs (about 89 million pixels).
DEFAULT_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class SeparateFilesSettings(SeparateSettings):
    """The options of :func:`separate_files`: those of each image's separation, and the
    files' own, declared once (``lsalsa separate`` makes its flags from them)."""

    max_pixels: int | None = rule(checks.positive_int, DEFAULT_MAX_PIXELS, none=True,
                                  help="refuse larger images, a guard against decompression "
                                       "bombs (Pillow's limit; 'none': no limit)")
# ITU-R 601-2 luma, the weights of Pillow's convert("L"), applied here without rounding to 8 bits.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _scaled(handle, path) -> np.ndarray:
    """The pixels of an open Pillow image as float32 gray in [0, 1], at native depth."""
    mode = handle.mode
    if mode.startswith("I;16"):  # 16-bit grayscale (PNG, TIFF)
        return np.asarray(handle).astype(np.float32) / 65535.0
    if mode == "I":
        # 32-bit integers: older Pillows open 16-bit PNGs so; other sources give no range.
        if handle.format == "PNG":
            return np.asarray(handle).astype(np.float32) / 65535.0
        raise InputError(f"{path}: 32-bit integer images are not supported; save it as 8- "
                         "or 16-bit or float")
    if mode == "F":  # float (TIFF): taken as is, so it must already be in [0, 1]
        values = np.asarray(handle, dtype=np.float32)
        if not np.isfinite(values).all():
            raise InputError(f"{path}: the float image contains NaN or Inf")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            raise InputError(f"{path}: float image values span [{low:.4g}, {high:.4g}]; float "
                             "images must lie in [0, 1]")
        return values
    if mode in ("1", "L", "LA", "La"):
        return np.asarray(handle.getchannel(0), dtype=np.float32) / (1.0 if mode == "1"
                                                                      else 255.0)
    # Colour (and palette, CMYK, ...) at 8 bits per channel; alpha is ignored as before.
    rgb = np.asarray(handle.convert("RGB"), dtype=np.float32)
    return (rgb @ LUMA) / 255.0


@contextlib.contextmanager
def _pixel_limit_off():
    """Pillow's own bomb check warns or raises at open; the caller checks the size instead."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def read_image(path: str | os.PathLike,
               max_pixels: int | None = SeparateFilesSettings.max_pixels) -> np.ndarray:
    """Any image Pillow reads, as grayscale float32 in [0, 1].

    8-bit images are divided by 255, 16-bit ones by 65535, float images are taken as they are
    (and must lie in [0, 1]); colour becomes luminance (ITU-R 601-2). Images of more than
    ``max_pixels`` pixels (a guard against decompression bombs; None: no limit) are refused
    before they are decoded.
    """
    from PIL import Image, UnidentifiedImageError

    checks.positive_int(max_pixels, "max_pixels", none=True)
    file = Path(path)
    if not file.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with _pixel_limit_off(), Image.open(file) as handle:
            width, height = handle.size
            if max_pixels is not None and width * height > max_pixels:
                raise InputError(f"image {path} has {width}x{height} = {width * height} "
                                 f"pixels, more than the limit {max_pixels} (a guard against "
                                 "decompression bombs); raise it with `max_pixels` if you "
                                 "trust the file")
            handle.load()
            gray = _scaled(handle, path)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from exc
    if gray.ndim != 2:
        raise InputError(f"image {path} has an unsupported layout {gray.shape}")
    return gray


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


def _component_name(stem: str, i: int, suffix: str) -> str:
    return f"{stem}_component{i}{suffix}"


def _separation_name(stem: str) -> str:
    return f"{stem}_separation.png"


def _output_names(stem: str, count: int) -> list[str]:
    """The files ``separate_files`` writes for one image of an MCA model with ``count``
    dictionaries."""
    parts = [_component_name(stem, i, suffix) for i in range(count) for suffix in (".png", ".npy")]
    return [*parts, _separation_name(stem)]


def _check_destinations(out: Path, stems: set[str], count: int, inputs: list) -> None:
    """Refuse a destination that is a folder or an input (under any name), or an output folder
    we cannot write to, before anything is moved: a move failing halfway would leave some
    outputs in place and others not, and an input replaced would be lost."""
    if not out.is_dir():
        return  # created by this run: it holds nothing yet
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"output folder {out} is not writable")
    # The inputs' identities once, so a rerun over many images is not quadratic in stat
    # calls; check_output_path gives the verdict (and its message) where one may fail.
    identities = {_identity(p) for p in inputs} - {None}
    for stem in sorted(stems):
        for name in _output_names(stem, count):
            target = out / name
            if target.is_dir() or _identity(target) in identities:
                check_output_path(target, inputs)


def _identity(path) -> tuple[int, int] | None:
    """What makes two names the same file (device and inode), None for a missing one."""
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return status.st_dev, status.st_ino


def separate_files(encoder: UnrolledEncoder, images: list[str], out_dir: str | os.PathLike,
                   *, stride: int | None = SeparateSettings.stride,
                   batch_size: int = SeparateSettings.batch_size,
                   max_pixels: int | None = SeparateFilesSettings.max_pixels,
                   inputs: Sequence[str | os.PathLike] = (),
                   residual: int | None = SeparateSettings.residual, dtype=None,
                   fused: bool = SeparateSettings.fused) -> list[Path]:
    """Separate image files and write, per image, ``<stem>_component<i>.png`` and ``.npy``
    and ``<stem>_separation.png`` (input, then each component).

    Files are written into a temporary folder first and moved into ``out_dir`` only when
    every image succeeded, so a failure leaves no partial output there; one image is held in
    memory at a time. Staging folders that killed runs left in ``out_dir`` are removed first.
    An output that would replace an input image (or one of ``inputs``, e.g. the model file)
    or an existing folder is refused before anything is written. ``residual``, ``dtype`` and
    ``fused``: as for :func:`~lsalsa.core.separation.separate_image`.
    """
    from PIL import Image

    SeparateFilesSettings(stride=stride, batch_size=batch_size, residual=residual,
                          fused=fused, max_pixels=max_pixels)  # before any file is read
    stems = set()
    for path in images:
        stem = Path(path).stem
        if stem in stems:
            raise InputError(f"two input images share the name {stem!r}")
        stems.add(stem)
    protected = [*images, *inputs]
    out = Path(out_dir)
    _check_destinations(out, stems, encoder.problem.D, protected)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out_dir}: {exc}") from exc
    written = []
    remove_stale_temporaries(out)  # what killed runs left behind
    try:
        with staging_folder(out, "separate") as staging:
            for path in images:
                stem = Path(path).stem
                image = read_image(path, max_pixels)
                parts = separate_image(encoder, image, stride=stride, batch_size=batch_size,
                                       residual=residual, dtype=dtype, fused=fused)
                for i, part in enumerate(parts):
                    Image.fromarray(_to_uint8(part)).save(
                        staging / _component_name(stem, i, ".png"))
                    np.save(staging / _component_name(stem, i, ".npy"), part, allow_pickle=False)
                Image.fromarray(side_by_side([image, *parts])).save(
                    staging / _separation_name(stem))
            # Again: the folder may have changed during a long run.
            _check_destinations(out, stems, encoder.problem.D, protected)
            for file in sorted(staging.iterdir()):
                target = out / file.name
                try:
                    os.replace(file, target)
                except OSError as exc:  # name the destination, not the staging file
                    raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
                written.append(target)
    except BaseException:
        if created:  # a failed run leaves no trace, not even an empty folder
            shutil.rmtree(out, ignore_errors=True)
        raise
    return written
