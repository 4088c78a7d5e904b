"""The named data sets of the paper and their offline stand-ins: find, cut, mix and store.

``prepare(name)`` resolves each source of a :class:`Spec` (user folder, ``LSALSA_DATA``,
cache, offline stand-in, or a verified download when asked: :mod:`lsalsa.workflow.data.registry`),
splits it into train, validation and test by image with a seed
(:mod:`lsalsa.workflow.data.splits`), cuts patches exactly as docs/DESIGN.md section 5 says, and
writes a prepared data set (see :mod:`lsalsa.workflow.data.prepared`).

Natural patches of the offline photographs overlap (``Spec.stride``); canonical ASIRRA keeps
the paper's non-overlapping patches. An MCA split mixes digits and photographs of that split
only, so validation and test never see a training digit or photograph.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import checks
from ...core.mixtures import make_mixtures
from ...core.patches import extract_patches
from ...errors import InputError
from ...version import __version__, git_commit
from ..progress import as_progress
from . import photo_pool
from . import sources as src
from .prepared import SPLITS, DatasetWriter, default_root, read_meta
from .registry import Source, can_download, load_source, resolve_source, verify_cached
from .splits import SplitImages

MCA_TRAIN_REUSE = 3          # paper: 196k natural train patches -> 588k train mixtures


@dataclass(frozen=True)
class Spec:
    """One named data set."""

    name: str
    kind: str                 # "sc" or "mca"
    description: str
    sources: tuple[str, ...]  # source keys: images (sc) or (digits, natural) (mca)
    patch: int                # patch side; M = patch ** 2
    # Grid step of the (natural) patches: None is the paper's non-overlapping grid. The
    # offline photographs are few, so their patches overlap (more, correlated patches).
    stride: int | None = None


_OFFLINE = "offline photographs (curated from pip and Debian packages, split by package)"
SPECS = {s.name: s for s in (
    Spec("fashion-mnist-10", "sc", "Fashion-MNIST padded to 32x32, nine 10x10 patches per image",
         ("fashion-mnist",), 10),
    Spec("asirra-16", "sc", "ASIRRA cats and dogs, gray 224x224, 196 16x16 patches per image",
         ("asirra",), 16),
    Spec("mnist-32", "sc", "MNIST digits resized to 32x32, one signal per image",
         ("mnist",), 32),
    Spec("cifar10-32", "sc", "CIFAR-10 in grayscale, one 32x32 signal per image",
         ("cifar10",), 32),
    # Stride 8: 27 x 27 = 729 overlapping patches per photograph, so the 290 training
    # photographs give ~210k training patches (the paper's 196k train patches, ASIRRA-16).
    Spec("natural-16", "sc", f"{_OFFLINE}, gray 224x224, 16x16 patches at stride 8 (729 "
         "per photograph; offline stand-in for asirra-16)", ("natural",), 16, stride=8),
    Spec("natural-32", "sc", f"{_OFFLINE}, gray 224x224, 32x32 patches at stride 8 (625 per "
         "photograph)", ("natural",), 32, stride=8),
    Spec("mca-mnist-asirra", "mca", "MNIST 32x32 digit + ASIRRA 32x32 patch mixtures",
         ("mnist", "asirra"), 32),
    # Stride 16: 13 x 13 = 169 patches per photograph, ~49k from the 290 training
    # photographs, each used MCA_TRAIN_REUSE times: ~147k training mixtures.
    Spec("mca-mnist-natural", "mca", "MNIST 32x32 digit + 32x32 patch (stride 16, 169 per "
         f"photograph) mixtures of the {_OFFLINE} (offline stand-in for mca-mnist-asirra)",
         ("mnist", "natural"), 32, stride=16),
    Spec("mca-mnist-cifar10", "mca", "MNIST 32x32 digit + CIFAR-10 gray image mixtures",
         ("mnist", "cifar10"), 32),
)}


def get_spec(name: str) -> Spec:
    if name not in SPECS:
        raise InputError(f"unknown data set {name!r}; known: {', '.join(SPECS)}")
    return SPECS[name]


# --------------------------------------------------------------------------------------------
# prepare / available

@dataclass(frozen=True)
class PrepareSettings(checks.Settings):
    """The options of :func:`prepare`, declared once (``lsalsa data prepare`` makes its flags
    from them, the experiments' prepare section shares them), checked when made."""

    seed: int = checks.rule(checks.non_negative_int, 0,
                            help="seed of every random choice (splits, subsets, mixtures)")
    limit_images: int | None = checks.rule(
        checks.positive_int, None, none=True,
        help="at most this many images per split and source ('none': all)")
    stride: int | None = checks.rule(
        checks.positive_int, None, none=True,
        help="step of the natural patch grid, at most the patch side ('none': the data "
             "set's own)")


def prepare(name: str, root=None, data_dir=None, seed: int = PrepareSettings.seed,
            limit_images: int | None = PrepareSettings.limit_images, progress: bool = True,
            download: bool = False, stride: int | None = PrepareSettings.stride) -> Path:
    """Build a prepared data set and return its folder ``<root>/<name>``.

    Parameters
    ----------
    name : str
        One of :data:`SPECS` (``lsalsa data list``).
    root : path-like, optional
        Folder of prepared data sets; default ``<cache>/prepared``.
    data_dir : path-like, optional
        Folder with canonical raw files (else ``$LSALSA_DATA``, the cache, the stand-ins).
    seed : int
        Seed of every random choice (train / val / test splits, subsets, mixtures).
    limit_images : int, optional
        At most this many images per split and per source (small experiments, tests).
    progress : bool
        tqdm progress bars on a terminal.
    download : bool
        Fetch canonical files (SHA-256 verified) when not found locally.
    stride : int, optional
        Step of the (natural) patch grid in place of the data set's own (its patch side:
        non-overlapping); fewer, less correlated patches per photograph.
    """
    PrepareSettings(seed=seed, limit_images=limit_images, stride=stride)
    spec = get_spec(name)
    if stride is not None:
        stride = checks.integer(stride, "stride", low=1, high=spec.patch)
        spec = dataclasses.replace(spec, stride=stride, description=(
            f"{spec.description}; patch stride {stride} in place of {spec.stride or spec.patch}"))
    root = Path(root).expanduser() if root is not None else default_root()
    found = [resolve_source(key, data_dir, download, progress) for key in spec.sources]
    for source in found:
        verify_cached(source, download, progress)
    # One bar step per source loaded, one for writing the arrays, one for the commit.
    with as_progress(progress).bar(len(found) + 2, f"prepare {name}") as bar:
        loaded, infos = [], {}
        for source in found:
            splits, infos[source.key] = load_source(source, seed, limit_images, progress)
            loaded.append(splits)
            bar.update(1)
        writer = DatasetWriter(root, name)
        try:
            if spec.kind == "sc":
                meta = _write_sc(writer, spec, loaded[0])
            else:
                meta = _write_mca(writer, spec, loaded[0], loaded[1], seed)
            bar.update(1)
            meta.update(_provenance(spec, found, infos, seed, limit_images))
            path = writer.commit(meta)
        except BaseException:
            writer.abort()
            raise
        bar.update(1)
    return path


def _provenance(spec: Spec, found: list[Source], infos: dict, seed: int,
                limit_images: int | None) -> dict:
    """What a prepared set records of where it came from: the spec, the sources and how each
    was split, the unreadable files skipped, the seed and the version that prepared it."""
    unreadable = [f for info in infos.values() for f in info.get("unreadable", {}).get("files", ())]
    sources = {"natural_sources": list(photo_pool.PHOTO_SOURCES)} if "natural" in infos else {}
    return {**sources,
        "splits": list(SPLITS), "split_by_source": infos,
        "unreadable": {"count": len(unreadable), "files": unreadable},
        "name": spec.name, "kind": spec.kind, "description": spec.description,
        "source": " + ".join(s.label for s in found),
        "sources": [{"key": s.key, "location": str(s.location), "stand_in": s.stand_in,
                     "label": s.label} for s in found],
        "stand_in": any(s.stand_in for s in found),
        "label": _label(spec, found), "patch_shape": [spec.patch, spec.patch],
        "M": spec.patch ** 2, "seed": int(seed), "limit_images": limit_images,
        "lsalsa_version": __version__, "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _label(spec: Spec, found: list[Source]) -> str:
    stand = [s.label for s in found if s.stand_in]
    if not stand:
        return f"{spec.name}: canonical data"
    return "; ".join(stand)


def _write_sc(writer: DatasetWriter, spec: Spec, splits: dict[str, SplitImages]) -> dict:
    counts, images, per_image = {}, {}, None
    for split in SPLITS:
        data = splits[split]
        patches = extract_patches(data.images, spec.patch, spec.stride)
        per_image = patches.shape[0] // len(data.images)
        writer.save(split, "signals", patches.astype(np.float32, copy=False))
        writer.save(split, "image_index", np.repeat(np.arange(len(data.images)), per_image))
        writer.save(split, "source_ids", data.source_ids.astype(np.int64))
        if data.origin is not None:  # the package of each patch's photograph, per row
            writer.save(split, "natural_source", np.repeat(data.origin, per_image))
        if data.labels is not None:
            writer.save(split, "labels", data.labels.astype(np.int64))
        counts[split], images[split] = int(patches.shape[0]), len(data.images)
    return {"counts": counts, "images": images, "patches_per_image": per_image,
            "stride": spec.stride or spec.patch, "overlapping": bool(spec.stride),
            "image_shape": list(splits["train"].images.shape[1:]), "pixel_range": [0.0, 1.0]}


def _write_mca(writer: DatasetWriter, spec: Spec, digits: dict[str, SplitImages],
               natural: dict[str, SplitImages], seed: int) -> dict:
    counts, n_digits, n_photos, n_patches, per_photo = {}, {}, {}, {}, None
    for i, split in enumerate(SPLITS):
        # A split mixes its own digits with patches of its own photographs only.
        d, nat = digits[split], natural[split]
        patches = extract_patches(nat.images, spec.patch, spec.stride)
        per_photo = patches.shape[0] // len(nat.images)
        patch_photo = np.repeat(np.arange(len(nat.images)), per_photo)
        reuse = MCA_TRAIN_REUSE if split == "train" else 1
        n_mix = max(len(d.images), reuse * len(patches))
        mix_seed = int(np.random.SeedSequence([int(seed), 7, i]).generate_state(1)[0])
        mix = make_mixtures(d.images.reshape(len(d.images), -1), patches, n_mix, mix_seed)
        writer.save(split, "signals", mix["mixtures"])
        writer.save(split, "component0", mix["component0"])
        writer.save(split, "component1", mix["component1"])
        # Each mixture is one signal and one "image": the index is the identity.
        writer.save(split, "image_index", np.arange(n_mix, dtype=np.int64))
        writer.save(split, "labels", d.labels[mix["digit_index"]].astype(np.int64))
        writer.save(split, "source_ids", d.source_ids[mix["digit_index"]].astype(np.int64))
        photo = patch_photo[mix["natural_index"]]
        writer.save(split, "natural_source_ids", nat.source_ids[photo].astype(np.int64))
        if nat.origin is not None:
            writer.save(split, "natural_source", nat.origin[photo])
        if nat.labels is not None:
            writer.save(split, "labels_component1", nat.labels[photo].astype(np.int64))
        counts[split], n_digits[split], n_photos[split] = n_mix, len(d.images), len(nat.images)
        n_patches[split] = len(patches)
    return {"counts": counts, "images": dict(counts), "patches_per_image": 1,
            "component_images": {"digits": n_digits, "natural": n_photos},
            "natural_patches_per_image": per_photo, "natural_patches": n_patches,
            "natural_stride": spec.stride or spec.patch, "overlapping": bool(spec.stride),
            "image_shape": [spec.patch, spec.patch], "pixel_range": [0.0, 2.0],
            "mixture_rule": "mixture = component0 (digit) + component1 (natural patch); "
                            f"train mixtures = max(digits, {MCA_TRAIN_REUSE} x natural "
                            "patches), val and test = max(digits, natural patches); each split "
                            "mixes its own digits and photographs only"}


def available(root=None, data_dir=None) -> list[dict]:
    """One row per named data set: whether it is prepared, and where its sources would come from.

    Each row has ``name``, ``kind``, ``status`` (``prepared`` | ``ready`` | ``download`` |
    ``missing``), ``stand_in`` (bool or None), ``source`` (text), ``prepared`` (path or
    None) and ``counts`` (signals per split of the prepared set, or None).
    """
    root = Path(root).expanduser() if root is not None else default_root()
    src.search_dirs(data_dir)  # a named folder that is missing or unreadable is an error
    cache: dict[str, Source | str] = {}
    for spec in SPECS.values():
        for key in spec.sources:
            if key not in cache:
                try:
                    cache[key] = resolve_source(key, data_dir)
                except InputError:
                    cache[key] = "download" if can_download(key) else "missing"
    rows = []
    for spec in SPECS.values():
        found = [cache[k] for k in spec.sources]
        prepared = root / spec.name / "meta.json"
        if all(isinstance(f, Source) for f in found):
            status = "ready"
            source = " + ".join(f.label for f in found)
            stand_in = any(f.stand_in for f in found)
        else:
            lacking = [k for k, f in zip(spec.sources, found, strict=True)
                       if not isinstance(f, Source)]
            status = "download" if all(cache[k] == "download" for k in lacking) else "missing"
            source = f"{', '.join(lacking)} not found" + (
                " (prepare --download fetches it)" if status == "download" else "")
            stand_in = None
        counts = None
        if prepared.is_file():
            status = "prepared"
            try:
                counts = read_meta(prepared).get("counts")
            except InputError:
                counts = None  # listed as prepared; loading it will say what is wrong
        rows.append({"name": spec.name, "kind": spec.kind, "status": status,
                     "stand_in": stand_in, "source": source,
                     "prepared": str(prepared.parent) if prepared.is_file() else None,
                     "counts": counts, "description": spec.description})
    return rows
