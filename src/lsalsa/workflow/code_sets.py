"""Stored code sets: optimal codes on disk, with the dictionaries and alphas they solve.

Layout (read by the encoder trainer; keep it): a directory with ``codes_<split>.npy``
(P, N) float32 per split, ``dictionary_<i>.npy`` (M, N_i) float32 and ``codes.json``
(alphas, block sizes, solver, achieved duality gaps, the problem's fingerprint, provenance).
A set is written in a hidden sibling folder and swapped in whole.

The codes themselves come from :func:`lsalsa.core.codes.compute_codes`;
:func:`compute_codes_with_progress` draws its bar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..checks import Settings, as_items, non_empty_list, one_of, rule
from ..core.codes import as_dictionaries, compute_codes, stored_problem
from ..core.problem import Problem, as_alphas, make_problem
from ..errors import InputError
from ..io import Temporary, load_npy, replace_folder, save_npy, write_json
from ..version import provenance
from .data.prepared import SPLITS
from .progress import Progress, as_progress

FORMAT_VERSION = 1
CODES_META = "codes.json"


def compute_codes_with_progress(signals, dictionaries, alphas, *, progress: bool | Progress = True,
                                **options) -> tuple[np.ndarray, dict]:
    """:func:`lsalsa.core.codes.compute_codes` with a bar of its batches on ``progress``."""
    desc = f"codes ({options.get('mode', 'exact')})"
    with as_progress(progress).callback(desc, "batch") as callback:
        return compute_codes(signals, dictionaries, alphas, callback=callback, **options)


@dataclass(frozen=True)
class CodeSetSettings(Settings):
    """Which splits of a prepared data set a code set holds (:func:`compute_split_codes`)."""

    splits: tuple[str, ...] | None = rule(
        non_empty_list, None, each=partial(one_of, choices=SPLITS), none=True,
        help="the splits encoded (none given: every split the data set has)")


def compute_split_codes(dataset, splits, dictionaries, alphas, *,
                        progress: bool | Progress = True, **options) -> tuple[dict, dict]:
    """The codes and solver statistics of each of ``splits`` of a prepared data set (None:
    all it has), by split (what :func:`save_codes` stores)."""
    splits = CodeSetSettings(as_items(splits)).splits or dataset.splits
    if not splits:
        raise InputError(f"{dataset.path} has no splits to encode")
    missing = [split for split in splits if split not in dataset.splits]
    if missing:
        raise InputError(f"`splits`: {dataset.path} has no split {', '.join(missing)} (has "
                         f"{', '.join(dataset.splits)})")
    codes, stats = {}, {}
    for split in splits:
        codes[split], stats[split] = compute_codes_with_progress(
            dataset.signals(split), dictionaries, alphas, progress=progress, **options)
    return codes, stats


@dataclass
class CodeSet:
    """Stored optimal codes, as :func:`load_codes` gives them back.

    Attributes
    ----------
    path : Path of the directory.
    dictionaries : list of ndarray (M, N_i) float32.
    alphas : tuple of float, one per dictionary.
    meta : dict, the contents of ``codes.json``.
    """

    path: Path
    dictionaries: list[np.ndarray]
    alphas: tuple[float, ...]
    meta: dict

    @property
    def splits(self) -> list[str]:
        return sorted(self.meta["counts"])

    @property
    def problem(self) -> Problem:
        return make_problem([torch.from_numpy(d) for d in self.dictionaries], self.alphas)[0]

    def codes(self, split: str, mmap: bool = True) -> np.ndarray:
        """Codes (P, N) float32 of ``split``, memory-mapped by default."""
        if split not in self.meta["counts"]:
            raise InputError(f"no codes for split {split!r} in {self.path}; have "
                             f"{', '.join(self.splits)}")
        return load_npy(self.path / f"codes_{split}.npy", mmap=mmap)


def check_codes_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite`` is given and it is a code set: it is
    replaced as a whole, and any other folder (a data set, ``.``) would be deleted with it."""
    if out.name in ("", ".", ".."):  # a folder is swapped in under its name: it needs one
        raise InputError(f"output {out} must name a folder, not . or ..")
    if out.exists() and not overwrite:
        raise InputError(f"output {out} already exists (pass `overwrite` to replace it)")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a directory")
    if out.exists() and not (out / CODES_META).is_file():
        raise InputError(f"output {out} is not a code set (no {CODES_META}); only a code set "
                         "is replaced, choose another output")
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist")


def save_codes(out_dir: str | Path, codes: dict[str, np.ndarray], dictionaries, alphas, *,
               stats: dict[str, dict], data: dict | None = None, seed: int | None = None,
               extra: dict | None = None, overwrite: bool = False) -> Path:
    """Write a code set directory atomically (all files appear at once, or none).

    Parameters
    ----------
    out_dir : the directory to create.
    codes : ``{split: (P_split, N) array}``, e.g. "train" and "test".
    dictionaries : list of (M, N_i) arrays (stored as float32).
    alphas : one positive alpha per dictionary.
    stats : ``{split: stats}`` as returned by :func:`compute_codes` (mode, solver, n_iter, tol,
        mu, gap).
    data : where the signals came from, e.g. ``{"path": ..., "name": ..., "stand_in": ...}``.
    seed : the seed of the run, recorded.
    overwrite : replace an existing code set (never any other folder).
    """
    out = Path(out_dir)
    blocks = as_dictionaries(dictionaries)
    alphas = as_alphas(alphas, len(blocks), positive=True)
    if not codes:
        raise InputError("no codes to save")
    M = blocks[0].shape[0] if blocks[0].ndim == 2 else -1
    problem = stored_problem(blocks, alphas, M)
    arrays = _checked_codes(codes, stats, problem.N)
    check_codes_output(out, overwrite)
    first = next(iter(stats.values()))
    meta = {
        "format": FORMAT_VERSION,
        "alphas": list(alphas), "block_sizes": list(problem.block_sizes),
        "M": problem.M, "N": problem.N,
        "mode": first.get("mode"), "solver": first.get("solver"),
        "n_iter": first.get("n_iter"), "tol": first.get("tol"), "mu": first.get("mu"),
        "gap": {split: stats[split]["gap"] for split in arrays},
        "counts": {split: int(a.shape[0]) for split, a in arrays.items()},
        "fingerprint": problem.fingerprint(),
        "data": data or {}, "seed": seed, "provenance": provenance(),
        "gap_note": "duality gaps in float64 of the stored float32 codes and dictionaries; "
                    "relative = gap / E(x) per sample",
        **(extra or {}),
    }
    # Build everything in a hidden sibling directory, then rename it into place.
    with Temporary(out.parent, out.name, directory=True) as tmp:
        for split, array in arrays.items():
            save_npy(tmp.path / f"codes_{split}.npy", array)
        for i, block in enumerate(blocks):
            save_npy(tmp.path / f"dictionary_{i}.npy", block)
        write_json(tmp.path / CODES_META, meta)
        replace_folder(tmp.path, out)
    return out


def _checked_codes(codes: dict, stats: dict, N: int) -> dict[str, np.ndarray]:
    """Each split's codes as float32 (P, N), once its name, shape, values and stats pass."""
    arrays = {}
    for split, array in codes.items():
        if not isinstance(split, str) or not split.isidentifier():
            raise InputError(f"split names must be plain words, got {split!r}")
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[1] != N or array.shape[0] == 0:
            raise InputError(f"codes for {split} must have shape (P, {N}), got {array.shape}")
        if not np.isfinite(array).all():
            raise InputError(f"codes for {split} contain NaN or Inf")
        if split not in stats:
            raise InputError(f"no stats given for split {split!r}")
        arrays[split] = array.astype(np.float32, copy=False)
    return arrays


def load_codes(path: str | Path) -> CodeSet:
    """Open a code set written by :func:`save_codes`; checks shapes and the fingerprint."""
    root = Path(path)
    meta_file = root / CODES_META
    if not meta_file.is_file():
        raise InputError(f"{root} is not a code set (no {CODES_META})")
    try:
        meta = json.loads(meta_file.read_text())
        block_sizes, alphas, M = meta["block_sizes"], tuple(meta["alphas"]), meta["M"]
        counts, fingerprint = meta["counts"], meta["fingerprint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{meta_file} is not a valid code set description: {exc}") from exc
    dictionaries = []
    for i, width in enumerate(block_sizes):
        file = root / f"dictionary_{i}.npy"
        if not file.is_file():
            raise InputError(f"code set {root} lacks {file.name}")
        block = load_npy(file)
        if block.shape != (M, width) or block.dtype != np.float32:
            raise InputError(f"{file} has shape {block.shape} ({block.dtype}), expected "
                             f"{(M, width)} float32")
        dictionaries.append(block)
    problem, _ = make_problem([torch.from_numpy(d) for d in dictionaries], alphas)
    if problem.fingerprint() != fingerprint:
        raise InputError(f"dictionaries in {root} do not match the fingerprint in "
                         f"{CODES_META} (files changed after the codes were computed)")
    for split, count in counts.items():
        file = root / f"codes_{split}.npy"
        if not file.is_file():
            raise InputError(f"code set {root} lacks {file.name}")
        codes = load_npy(file, mmap=True)
        if codes.shape != (count, problem.N) or codes.dtype != np.float32:
            raise InputError(f"{file} has shape {codes.shape} ({codes.dtype}), expected "
                             f"{(count, problem.N)} float32")
    return CodeSet(root, dictionaries, alphas, meta)
