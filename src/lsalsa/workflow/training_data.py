"""What the learned encoders train on: training and validation pairs (signals and their optimal
codes), and the one rule that holds the validation pairs out.

- :func:`hold_out`, the rule: the last ``val_fraction`` of the training images, by the image
  index (patches are stored image by image, so no image is cut in two), or of the rows when
  there is no image index.
- :func:`split_prepared`: the pairs of a prepared data set and its codes: the data set's ``val``
  split when the code set has its codes (whole images or photographs held out), else
  :func:`hold_out` by images; optionally a seeded subset of the training rows. The experiment
  pipeline (:meth:`lsalsa.workflow.steps.context.Run.fit_val`) and ``lsalsa train`` /
  ``lsalsa search`` split through it.
- :func:`load_training_set`: what ``lsalsa train`` and ``lsalsa search`` name (a prepared data
  set and its codes, or ``.npy`` files), with the dictionaries, the code set's alphas and a
  description of the data for the run's ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from .. import checks
from ..core._arrays import sorted_subset
from ..core.training.settings import OBJECTIVES, SplitSettings
from ..errors import InputError
from ..io import read_array
from .code_sets import CodeSet, load_codes
from .data import load_prepared

PREPARED_VAL = "the prepared val split (held-out images)"
GIVEN_VAL = "the given validation pairs (val_signals, val_references)"


@dataclass(frozen=True)
class TrainingSplit:
    """Training pairs ``signals`` (P, M) and ``references`` (P, N), validation pairs, and how the
    validation pairs were chosen (``validation``, recorded in a training run's config.json)."""

    signals: np.ndarray
    references: np.ndarray
    val_signals: np.ndarray
    val_references: np.ndarray
    validation: str

    def astype(self, dtype) -> TrainingSplit:
        """Every array read into memory as ``dtype``."""
        return replace(self, **{f.name: np.array(getattr(self, f.name), dtype=dtype)
                                for f in fields(self) if f.name != "validation"})


def hold_out(signals, references, *, val_fraction: float, image_index=None) -> TrainingSplit:
    """The last ``val_fraction`` of the training images (of the rows, without ``image_index``)
    as the validation pairs: at least one, never all. The arrays are sliced, so memory maps
    stay memory maps.

    ``image_index`` gives each row's image, image by image (non-decreasing), as prepared data
    sets store it."""
    SplitSettings(val_fraction=val_fraction)
    if image_index is None:
        n, unit = signals.shape[0], "rows"
    else:
        image = np.asarray(image_index)
        if image.shape != (signals.shape[0],) or np.any(np.diff(image) < 0):
            raise InputError(f"the image index {image.shape} must give each of the "
                             f"{signals.shape[0]} rows its image, image by image")
        n, unit = (int(image.max()) + 1 if image.size else 0), "training images"
    n_val = max(1, round(val_fraction * n))
    if n_val >= n:
        raise InputError(f"{n} {unit} are too few to hold out a fraction {val_fraction} for "
                         "validation")
    cut = n - n_val if image_index is None else int(np.searchsorted(image, n - n_val))
    return TrainingSplit(signals[:cut], references[:cut], signals[cut:], references[cut:],
                         f"last {n_val} of {n} {unit}")


def true_components(dataset, split: str) -> np.ndarray:
    """The true components of an MCA split's mixtures side by side, (P, D * M) float32: the
    references of the separation objective."""
    arrays = dataset.split(split)
    index = sorted(int(key.removeprefix("component")) for key in arrays
                   if key.startswith("component") and key.removeprefix("component").isdigit())
    parts = [np.asarray(arrays[f"component{i}"], dtype=np.float32) for i in index]
    if len(parts) < 2:
        raise InputError(f"the {split} split of {dataset.path} holds no components of "
                         "mixtures; the separation objective needs an MCA data set")
    return np.hstack(parts)


def split_prepared(dataset, codes, *, val_fraction: float = SplitSettings.val_fraction,
                   max_train: int | None = SplitSettings.max_train, seed: int = 0, dtype=None,
                   objective: str = "codes") -> TrainingSplit:
    """The training and validation pairs of a prepared data set.

    Parameters
    ----------
    dataset : a :class:`~lsalsa.workflow.data.PreparedDataset`.
    codes : its optimal codes: a :class:`~lsalsa.workflow.code_sets.CodeSet`, or the training
        codes (P, N) alone; unused with ``objective="separation"``.
    val_fraction : without a ``val`` split in both, hold out this last fraction of the
        training images (:func:`hold_out`).
    max_train : keep a seeded subset of this many training rows (in their stored order); None:
        all.
    seed : the subset's seed.
    dtype : read every array into memory as this dtype; None: as stored (memory-mapped).
    objective : "codes" (the references are the optimal codes) or "separation" (the true
        components of each mixture, :func:`true_components`).
    """
    SplitSettings(val_fraction=val_fraction, max_train=max_train)
    code_set = codes if isinstance(codes, CodeSet) else None
    signals = dataset.signals("train")
    references = code_set.codes("train") if code_set is not None else codes
    if objective == "separation":
        references = true_components(dataset, "train")
    if objective == "separation" and "val" in dataset.splits:
        split = TrainingSplit(signals, references, dataset.signals("val"),
                              true_components(dataset, "val"), PREPARED_VAL)
    elif code_set is not None and "val" in dataset.splits and "val" in code_set.splits:
        split = TrainingSplit(signals, references, dataset.signals("val"), code_set.codes("val"),
                              PREPARED_VAL)
    else:
        split = hold_out(signals, references, val_fraction=val_fraction,
                         image_index=dataset.split("train")["image_index"])
    if max_train is not None and max_train < split.signals.shape[0]:
        rows = sorted_subset(split.signals.shape[0], max_train, np.random.default_rng([seed, 31]))
        split = replace(split, signals=split.signals[rows], references=split.references[rows])
    return split if dtype is None else split.astype(dtype)


@dataclass(frozen=True)
class TrainingSet:
    """What ``lsalsa train`` and ``lsalsa search`` train on: the pairs, the dictionaries
    (M, N_i), the code set's alphas (None without a code set) and a description of the data
    (``info``, for config.json)."""

    split: TrainingSplit
    dictionaries: list[np.ndarray]
    code_alphas: list[float] | None
    info: dict

    def dictionary_tensors(self, dtype: torch.dtype, device=None) -> list[torch.Tensor]:
        """The dictionaries as tensors of the encoder's dtype, on its device."""
        return [torch.as_tensor(np.asarray(d), dtype=dtype, device=device)
                for d in self.dictionaries]

    def dictionary_arrays(self, dtype) -> list[np.ndarray]:
        """The dictionaries as arrays of ``dtype`` (the search computes in their dtype)."""
        return [np.asarray(d, dtype=dtype) for d in self.dictionaries]


def _check_sources(dataset, codes, signals, references, val_signals, val_references,
                   objective: str) -> None:
    """The sources of the training data go together: a data set with its codes (for the
    separation objective the codes are optional), or signals with their references; validation
    pairs both or neither."""
    if dataset or codes:
        if not (dataset and (codes or objective == "separation")):
            raise InputError("`dataset` and `codes` go together")
        if signals or references:
            raise InputError("give either `dataset` and `codes` or `signals` and `references`, "
                             "not both")
    elif not (signals and references):
        raise InputError("give `dataset` and `codes`, or `signals`, `references` and "
                         "`dictionaries`")
    if bool(val_signals) != bool(val_references):
        raise InputError("`val_signals` and `val_references` go together")


def load_training_set(*, dataset=None, root=None, codes=None, signals=None, references=None,
                      dictionaries=(), val_signals=None, val_references=None,
                      val_fraction: float = SplitSettings.val_fraction,
                      objective: str = "codes") -> TrainingSet:
    """Read the training data a command names: ``dataset`` and ``codes``, or ``signals`` and
    ``references``.

    Parameters
    ----------
    dataset, root : a prepared data set: a folder, or a name under ``root``
        (:func:`~lsalsa.workflow.data.load_prepared`).
    codes : its optimal codes: a code set folder (``lsalsa codes compute``; its dictionaries
        and alphas come along) or a ``.npy`` of the training codes.
    signals, references : without a data set, ``.npy`` files of training signals (P, M) and their
        optimal codes (P, N).
    dictionaries : ``.npy`` files (M, N_i), in place of the code set's.
    val_signals, val_references : ``.npy`` files of validation pairs; without them
        :func:`split_prepared` (a data set) or :func:`hold_out` by rows (``.npy`` files)
        holds them out, a ``val_fraction``.
    objective : "codes", or "separation": the references are the true components side by side
        (:func:`true_components` of an MCA data set, whose codes are then optional; or
        ``references`` and ``val_references`` files of shape (P, D * M)).

    Errors name the parameters in backquotes (`` `dataset` ``), for a caller to map to its own
    names (:func:`lsalsa.cli.common.with_flags`).
    """
    checks.one_of(objective, "`objective`", choices=OBJECTIVES)
    _check_sources(dataset, codes, signals, references, val_signals, val_references, objective)
    SplitSettings(val_fraction=val_fraction)
    prepared, code_dictionaries, code_alphas = None, None, None
    if dataset is not None:
        prepared = load_prepared(dataset, root=root)
        train_signals = prepared.signals("train")
        codes_info = None
        if codes is not None:
            codes, code_dictionaries, code_alphas, codes_info = _open_codes(codes)
        if objective == "separation":
            train_references = true_components(prepared, "train")
        else:
            train_references = codes.codes("train") if isinstance(codes, CodeSet) else codes
        info = {"dataset": prepared.meta.get("name"), "dataset_path": str(prepared.path),
                "codes": codes_info}
    else:
        train_signals = read_array(signals, "signals", mmap=True)
        train_references = read_array(references, "references", mmap=True)
        info = {"signals": str(signals), "references": str(references)}
    blocks = code_dictionaries
    if dictionaries:
        blocks = [read_array(p, "dictionary") for p in dictionaries]
        info["dictionaries"] = [str(p) for p in dictionaries]
    if not blocks:
        raise InputError("no dictionary: give `dictionaries` (one .npy file per component)")
    if train_signals.ndim != 2 or train_references.ndim != 2 \
            or train_signals.shape[0] != train_references.shape[0]:
        raise InputError(f"signals {train_signals.shape} and references "
                         f"{train_references.shape} must be 2-D with the same number of rows")
    if val_signals is not None:
        split = TrainingSplit(train_signals, train_references,
                              read_array(val_signals, "validation signals", mmap=True),
                              read_array(val_references, "validation references", mmap=True),
                              GIVEN_VAL)
    elif prepared is not None:
        split = split_prepared(prepared, codes, val_fraction=val_fraction,
                               objective=objective)
    else:
        split = hold_out(train_signals, train_references, val_fraction=val_fraction)
    info["validation_split"] = split.validation
    info["reference_kind"] = "true components" if objective == "separation" else "optimal codes"
    return TrainingSet(split, blocks, code_alphas, info)


def _open_codes(path):
    """``(code set or training codes, dictionaries or None, alphas or None, description)``
    from a code set folder (checked by :func:`load_codes`) or a ``.npy`` of training codes."""
    where = Path(path)
    if where.is_file():
        return read_array(str(where), "codes", mmap=True), None, None, {"file": str(where)}
    if not where.is_dir():
        raise InputError(f"codes directory not found: {path}")
    code_set = load_codes(where)
    alphas = list(code_set.alphas)
    return code_set, code_set.dictionaries, alphas, {
        "dir": str(where), "solver": code_set.meta.get("solver"), "alphas": alphas}
