"""Prepared data sets on disk: ``.npy`` arrays per split beside a ``meta.json`` sidecar.

Layout of ``<root>/<name>/``::

    meta.json                      name, kind ("sc" | "mca"), source, stand_in, label,
                                   patch_shape, M, counts, images, patches_per_image, seed,
                                   split_by_source (rule and counts), unreadable,
                                   array_sha256 (file name -> SHA-256 of every array),
                                   natural_sources (package names), ...
    {split}_signals.npy            (P, M) float32; for MCA the mixtures
    {split}_image_index.npy        (P,) int64 image of each patch (image-major, contiguous)
    {split}_labels.npy             (n_images,) int64 class per image, when the source has them
    {split}_source_ids.npy         (n_images,) int64 id of each image in its source
    {split}_component0.npy         MCA: (P, M) clean digits
    {split}_component1.npy         MCA: (P, M) clean natural patches (mixture = c0 + c1)
    {split}_labels_component1.npy  MCA, optional: class of each natural patch's image
    {split}_natural_source_ids.npy MCA: source id of each natural patch's image
    {split}_natural_source.npy     offline photographs: (P,) int64 package of each row's
                                   photograph, an index into meta.json natural_sources

``{split}`` is ``train``, ``val`` or ``test``. Arrays are loaded memory-mapped, so a data set
larger than RAM still works. A data set is written into a hidden temporary folder and renamed
into place at the end, so an interrupted ``prepare`` never leaves a half-written data set under
its final name. Every array's SHA-256 is recorded in ``meta.json`` and checked the first time
a :class:`PreparedDataset` reads the file, so a damaged array is refused, not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import checks
from ...checks import Settings, non_negative_int, positive_int, rule
from ...core._arrays import sorted_subset
from ...errors import InputError
from ...io import (
    Temporary,
    load_npy,
    read_json_object,
    remove_stale_temporaries,
    replace_folder,
    save_npy,
    write_json,
)
from .download import sha256_file
from .sources import cache_dir

# Every split is disjoint from the others by source image (splits.py). Data sets prepared
# before the validation split existed hold only train and test, and still load.
SPLITS = ("train", "val", "test")
KINDS = ("sc", "mca")  # sparse coding patches, or MCA mixtures with their two components


@dataclass(frozen=True)
class TrainingSignalsSettings(Settings):
    """Which training signals a dictionary (or its alpha) is fitted to
    (:meth:`PreparedDataset.training_signals`)."""

    component: int | None = rule(non_negative_int, None, none=True,
                                 help="MCA: the clean component (0 or 1), one dictionary each "
                                      "(paper Eq. 8)")
    max_signals: int | None = rule(positive_int, None, none=True,
                                   help="a seeded subset of this many training signals "
                                        "('none': all)")


def default_root() -> Path:
    """Where prepared data sets live by default: ``<cache>/prepared``."""
    return cache_dir() / "prepared"


def read_meta(meta_file: Path) -> dict:
    """A data set's ``meta.json``: a JSON object with the fields every reader relies on (a
    non-empty ``name``, ``kind`` "sc" or "mca", ``counts`` an object when present); anything
    else is an InputError, not a KeyError or AttributeError later."""
    meta = read_json_object(meta_file, "a data set description")
    problems = [fault for fault in (checks.fault(checks.text, meta.get("name"), "name"),
                                    checks.fault(checks.one_of, meta.get("kind"), "kind",
                                                 choices=KINDS)) if fault]
    if not isinstance(meta.get("counts", {}), dict):
        problems.append(f"counts must be an object, got {meta['counts']!r}")
    hashes = meta.get("array_sha256", {})
    if not (isinstance(hashes, dict) and all(isinstance(v, str) for v in hashes.values())):
        problems.append("array_sha256 must map file names to SHA-256 strings")
    if problems:
        raise InputError(f"{meta_file} is not a valid data set description: "
                         f"{'; '.join(problems)}")
    return meta


class PreparedDataset:
    """A prepared data set: ``meta`` (dict), ``path``, and memory-mapped arrays per split."""

    def __init__(self, path):
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.is_file():
            raise InputError(f"{self.path} is not a prepared data set (no meta.json)")
        self.meta = read_meta(meta_file)
        self._verified: set[str] = set()

    def _array(self, file: Path) -> np.ndarray:
        """One array, memory-mapped, checked against its recorded SHA-256 on first use (data
        sets prepared before hashes were recorded have none and are read unchecked)."""
        recorded = self.meta.get("array_sha256")
        if recorded is not None and file.name not in self._verified:
            if file.name not in recorded:
                raise InputError(f"{file} is not one of the arrays recorded in "
                                 f"{self.path / 'meta.json'}; prepare the data set again")
            try:
                actual = sha256_file(file)
            except OSError as exc:
                raise InputError(f"cannot read {file}: {exc.strerror or exc}") from exc
            if actual != recorded[file.name]:
                raise InputError(f"{file} does not match the SHA-256 recorded in its meta.json "
                                 "(damaged or edited); prepare the data set again")
            self._verified.add(file.name)
        return load_npy(file, mmap=True)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if (self.path / f"{s}_signals.npy").is_file())

    def split(self, name: str) -> dict[str, np.ndarray]:
        """All arrays of one split, memory-mapped, keyed by file name without the split prefix.

        Keys: ``signals``, ``image_index``, ``labels`` (when present), ``source_ids``, and for
        MCA ``component0``, ``component1`` (and ``labels_component1``,
        ``natural_source_ids``).
        """
        if name not in SPLITS:
            raise InputError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        files = sorted(self.path.glob(f"{name}_*.npy"))
        if not files:
            raise InputError(f"{self.path} has no {name} split")
        prefix = len(name) + 1
        return {f.stem[prefix:]: self._array(f) for f in files}

    def signals(self, split: str) -> np.ndarray:
        """The ``(P, M)`` signals of a split (for MCA the mixtures), memory-mapped."""
        file = self.path / f"{split}_signals.npy"
        if not file.is_file():
            raise InputError(f"{self.path} has no {split} split")
        return self._array(file)

    def training_signals(self, component: int | None = None, max_signals: int | None = None,
                         seed: int = 0) -> tuple[str, np.ndarray]:
        """The training signals a dictionary learns from, and their array's key: the signals
        (SC) or the clean ``component`` (MCA), all or a subset of ``max_signals`` drawn with
        ``seed`` (each component its own draw), rows in order."""
        settings = TrainingSignalsSettings(component, max_signals)
        seed = non_negative_int(seed, "seed")
        kind = self.meta["kind"]
        if kind == "mca" and settings.component not in (0, 1):
            raise InputError(f"{self.name} is an MCA data set: give `component` 0 or 1 (one "
                             "dictionary per clean component, paper Eq. 8)")
        if kind != "mca" and settings.component is not None:
            raise InputError(f"`component` applies to MCA data sets; {self.name} is {kind}")
        key = "signals" if settings.component is None else f"component{settings.component}"
        file = self.path / f"train_{key}.npy"
        if not file.is_file():
            raise InputError(f"{self.path} has no train {key}")
        signals = self._array(file)
        rows = sorted_subset(len(signals), settings.max_signals,
                             np.random.default_rng([seed, 21, settings.component or 0]))
        return key, signals if len(rows) == len(signals) else np.asarray(signals[rows])

    def row_sources(self, split: str) -> tuple[tuple[str, ...], np.ndarray]:
        """Where each row's image came from, for results reported per source.

        Returns ``(names, index)``: ``names[index[r]]`` is the source of row ``r`` of the
        split's signals. For the offline photographs (and MCA mixtures made with them) a
        source is the package that shipped the photograph; any other data set has one source,
        the key of its (natural) image source, e.g. ``("asirra",)``.
        """
        n_rows = len(self.signals(split))
        file = self.path / f"{split}_natural_source.npy"
        if not file.is_file():
            key = (self.meta.get("sources") or [{}])[-1].get("key", self.name)
            return (str(key),), np.zeros(n_rows, dtype=np.int64)
        names = self.meta.get("natural_sources")
        index = self._array(file)
        if (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
                or index.shape != (n_rows,)
                or (n_rows and not 0 <= int(index.min()) <= int(index.max()) < len(names))):
            raise InputError(f"{file} does not match the natural_sources of "
                             f"{self.path / 'meta.json'}")
        return tuple(names), index

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.meta.get("counts", {}).items())
        return f"PreparedDataset({self.name!r}, {self.meta.get('kind')}, {counts}, {self.path})"


def load_prepared(path_or_name, root=None) -> PreparedDataset:
    """Open a prepared data set by folder path or by name under ``root``.

    Parameters
    ----------
    path_or_name : str or path-like
        A folder holding ``meta.json``, or a data set name such as ``"fashion-mnist-10"``.
    root : path-like, optional
        Folder of prepared data sets; default ``<cache>/prepared``.
    """
    candidate = Path(path_or_name).expanduser()
    if (candidate / "meta.json").is_file():
        return PreparedDataset(candidate)
    folder = Path(root).expanduser() if root is not None else default_root()
    if (folder / str(path_or_name) / "meta.json").is_file():
        return PreparedDataset(folder / str(path_or_name))
    raise InputError(f"no prepared data set {path_or_name!r} (looked in {candidate} and "
                     f"{folder}); run `lsalsa data prepare {path_or_name}`")


class DatasetWriter:
    """Write a data set into a temporary folder, then rename it to ``<root>/<name>``."""

    def __init__(self, root, name: str):
        self.root = Path(root).expanduser()
        self.name = name
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.root)  # what killed runs left behind
        self.staging = Temporary(self.root, name, directory=True)
        self.tmp = self.staging.path
        self.hashes: dict[str, str] = {}

    def save(self, split: str, key: str, array: np.ndarray) -> None:
        file = self.tmp / f"{split}_{key}.npy"
        save_npy(file, array)
        self.hashes[file.name] = sha256_file(file)

    def commit(self, meta: dict) -> Path:
        write_json(self.tmp / "meta.json",
                   {**meta, "array_sha256": dict(sorted(self.hashes.items()))})
        final = self.root / self.name
        replace_folder(self.tmp, final)
        self.staging.close()
        return final

    def abort(self) -> None:
        self.staging.close()
