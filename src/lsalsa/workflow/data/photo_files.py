"""Image files and photo folders: listing cat and dog folders (ASIRRA and its mirrors) and
decoding any photograph to grayscale in [0, 1] at the paper's size. A file that is not an
image, or does not decode, is one :class:`~lsalsa.errors.InputError` line naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError
from .sources import check_directory

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Files an operating system drops into photo folders; skipped rather than called non-images.
_OS_JUNK = {"thumbs.db", ".ds_store", "desktop.ini"}


@dataclass(frozen=True)
class PhotoList:
    """Image files, optional class labels and display names; decoded by :func:`load_photo`.

    ``names`` are what ``meta.json`` and warnings show: the path inside the photo folder, or
    ``package/file`` for the offline photographs, whose ``curated`` holds each one's row of
    photographs.csv and whose ``packages`` and ``missing`` say where they came from
    (:func:`lsalsa.workflow.data.photo_pool.natural_photo_list`).
    """

    files: tuple[Path, ...]
    labels: tuple[int, ...] | None
    classes: tuple[str, ...] | None
    names: tuple[str, ...]
    packages: tuple[dict, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())
    curated: tuple = field(default=())  # photo_pool.CuratedPhoto rows (the pool imports this)


_CAT_DOG = re.compile(r"^(cat|dog)s?$", re.IGNORECASE)


def list_photo_folder(folder) -> PhotoList:
    """List a folder of cat and dog photographs (ASIRRA / Microsoft PetImages / Kaggle).

    Accepted layouts: class sub-folders named ``Cat``/``Dog`` (also plural, any case, possibly
    under ``PetImages/``), or flat files named ``cat.*``/``dog.*``. Labels: cat 0, dog 1.
    A file that is not an image (by suffix) raises :class:`InputError`; hidden files and
    ``Thumbs.db``-style OS files are skipped. Whether each image decodes is found out later,
    when it is read (:func:`load_photo`).
    """
    folder = check_directory(folder, "image folder")
    if (folder / "PetImages").is_dir():
        folder = folder / "PetImages"
    subdirs = {m.group(1).lower(): d for d in folder.iterdir()
               if d.is_dir() and (m := _CAT_DOG.match(d.name))}
    entries = []
    if subdirs:
        for label, cls in enumerate(("cat", "dog")):
            if cls in subdirs:
                entries += [(f, label) for f in sorted(subdirs[cls].iterdir()) if f.is_file()]
    else:
        for f in sorted(folder.iterdir()):
            if f.is_file():
                low = f.name.lower()
                label = 0 if low.startswith("cat") else 1 if low.startswith("dog") else -1
                entries.append((f, label))
    entries = [(f, lab) for f, lab in entries
               if not f.name.startswith(".") and f.name.lower() not in _OS_JUNK]
    bad = [f for f, _ in entries if f.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:
        raise InputError(f"image folder {folder} contains {len(bad)} non-image file(s), "
                         f"e.g. {bad[0].name}")
    unlabelled = [f for f, lab in entries if lab < 0]
    if unlabelled:
        raise InputError(f"image folder {folder}: cannot tell cat from dog for "
                         f"{unlabelled[0].name} (use Cat/ and Dog/ sub-folders or cat.*/dog.*)")
    if not entries:
        raise InputError(f"image folder {folder} has no cat or dog photographs")
    return PhotoList(tuple(f for f, _ in entries), tuple(lab for _, lab in entries),
                     ("cat", "dog"), tuple(f.relative_to(folder).as_posix() for f, _ in entries))


def looks_like_photo_folder(folder: Path) -> bool:
    """Whether ``folder`` seems to hold cat and dog photographs (:func:`list_photo_folder`)."""
    if (folder / "PetImages").is_dir():
        return True
    try:
        return any(_CAT_DOG.match(p.name) and p.is_dir() for p in folder.iterdir()) or any(
            p.name.lower().startswith(("cat.", "dog.")) for p in folder.iterdir())
    except OSError:
        return False



def load_photo(path: Path, size: int | None) -> np.ndarray:
    """Decode one photograph as grayscale float32 in [0, 1], bilinear-resized to size x size.

    Image files are read with Pillow whatever their suffix says (a PNG named ``.jpg`` is a
    PNG; a CMYK JPEG is converted with the other modes); ``.npz`` holds one 2-D uint8 array
    (PyWavelets' photographs). One that does not decode raises :class:`InputError`.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.suffix.lower() == ".npz":
        data = _read_npz_photo(path)
    else:
        try:
            with warnings.catch_warnings():
                # Damaged EXIF blocks are common in photo collections and harmless to pixels.
                warnings.filterwarnings("ignore", message="(?i).*(exif|metadata)",
                                        category=UserWarning)
                with Image.open(path) as image:
                    image.seek(0)
                    gray = image.convert("L")  # ITU-R 601-2 luma; drops alpha
                    data = np.asarray(gray, dtype=np.float32)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
                SyntaxError) as exc:
            raise InputError(f"{path} is not a readable image: {exc}") from exc
    if size is not None and data.shape != (size, size):
        resized = Image.fromarray(data).resize((size, size), Image.BILINEAR)
        data = np.asarray(resized, dtype=np.float32)
    return np.clip(data / 255.0, 0.0, 1.0)


def _read_npz_photo(path: Path) -> np.ndarray:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = [archive[key] for key in archive.files]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} is not a readable image: {exc}") from exc
    if len(arrays) != 1 or arrays[0].ndim != 2 or arrays[0].dtype != np.uint8:
        raise InputError(f"{path} is not a readable image: expected one 2-D uint8 array")
    return arrays[0].astype(np.float32)
