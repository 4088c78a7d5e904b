"""The sections of an experiment configuration, and its targets: typed, frozen, each field
declared once with its default and its constraint (:mod:`lsalsa.checks`).

A section checks its fields on creation, keeps them as written (a JSON ``10`` stays 10) and
freezes JSON lists into tuples; ``to_dict`` gives the JSON back.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import InitVar, dataclass
from typing import ClassVar

from ... import checks
from ...checks import declared, rule
from ...core.codes import CodesSettings
from ...core.dictionary_settings import DictionarySettings
from ...core.training.search import ALPHA_FACTORS, LEARNED_METHODS, PAPER_METHODS, SearchGrid
from ...core.training.settings import SplitSettings, TrainSettings, check_lr
from ...errors import InputError
from ..data.catalog import PrepareSettings
from ..data.prepared import TrainingSignalsSettings

# full is a config's base, and small too where it defines none; converged it must define.
SCALES = ("small", "full", "converged")
DEFAULT_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
DEVICES = ("auto", "cpu", "cuda")
# The MCA separation baselines, by a target's ``baseline``: SALSA at the mu of best validation
# PSNR with the optimal codes' alphas (the problem LSALSA is trained on), or at the best
# (alpha, mu) of the whole grid; the values are their keys in ``results["optimal"]``.
PSNR_BASELINES = {"codes_alphas": "salsa_best_psnr", "any_alpha": "salsa_best_psnr_any_alpha"}
CLASSIC = ("fista", "salsa")
# "lsalsa" learns its thresholds (the default); "lsalsa-fixed" is the paper's exact model;
# "lsalsa-sep" (MCA only, never a default) is trained on the true components, "lsalsa-pic" on
# those of mixtures made like the windows of whole pictures.
LEARNED = tuple(LEARNED_METHODS)
METHODS = CLASSIC + LEARNED

# The keys each kind of target holds besides "kind" and "text".
TARGET_KINDS = {
    "iterations_to_match": ("method", "reference_T", "more_than"),
    "rmse_ratio": ("method", "other", "T", "at_most"),
    "psnr_mean_at_least": ("method", "T", "baseline"),
    "training_never_hurts": (),
    "rmse_below": ("method", "other", "below_T"),
    "lowest_classification_error": ("method",),
    "time_ratio": ("method", "reference_T", "at_least"),
    "psnr_above": ("method", "other", "T"),
}

# The name becomes a folder (runs/<name>-<scale>): no separators, no "..", no hidden name.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# -- constraints particular to configs ----------------------------------------------------------
def plain_name(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"config needs a '{name}' (text)")
    if not PLAIN_NAME.fullmatch(value):
        raise InputError(f"{name} must be a plain name (letters, digits, '.', '_', '-'; not "
                         f"starting with '.' or '-'), got {value!r}")
    return value


def per_component(value, name: str, *, each, none: bool = False) -> list | None:
    """One value for every component, or a list of one per component (counted against the
    data set in :meth:`ExperimentConfig._check_components`)."""
    if value is None and none:
        return None
    if value is None:
        raise InputError(f"{name} is required (one value per component)")
    return checks.non_empty_list(value if isinstance(value, list | tuple) else [value], name,
                                 each=each)


def as_components(value) -> tuple:
    """A value that :func:`per_component` passed, frozen, as a tuple of one per component."""
    return value if isinstance(value, tuple) else (value,)


def distinct(value, name: str, *, each) -> list:
    values = checks.non_empty_list(value, name, each=each)
    if len(set(values)) != len(values):
        raise InputError(f"{name} must not repeat")
    return values


def _alpha_factor(value, name: str):
    """One factor for every component, or one per component."""
    if isinstance(value, list | tuple):
        return checks.non_empty_list(value, name, each=checks.positive_number)
    return checks.positive_number(value, name)


def _learning_rates(value, name: str):
    """A grid of learning rates, or one grid per learned method (an object)."""
    if not isinstance(value, dict):
        return checks.non_empty_list(value, name, each=check_lr)
    if any(method not in LEARNED for method in value):
        raise InputError(f"{name} as an object takes keys among {LEARNED}")
    return {method: checks.non_empty_list(grid, f"{name}.{method}", each=check_lr)
            for method, grid in value.items()}


def _learned_methods(value, name: str) -> list:
    methods = value if isinstance(value, list | tuple) else None
    if not methods or any(m not in LEARNED for m in methods) \
            or len(set(methods)) != len(methods) or "lsalsa" not in methods:
        raise InputError(f"{name} must list distinct methods among {LEARNED}, 'lsalsa' "
                         f"included, got {value!r}")
    return list(methods)


# -- the sections -------------------------------------------------------------------------------
def freeze(value):
    """JSON lists as tuples, all the way down (an object stays a dict)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: freeze(v) for k, v in value.items()}
    return value


def to_json(value):
    """The JSON form of a config value: tuples as lists, sections and targets as objects."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def set_field(instance, name: str, value) -> None:
    object.__setattr__(instance, name, value)  # a frozen dataclass, in __post_init__


class _Section:
    """A config section: its fields checked on creation, kept as written, lists frozen."""

    PREFIX: ClassVar[str] = ""

    def __post_init__(self):
        checks.check_fields(self, self.PREFIX, keep=True)
        for f in dataclasses.fields(self):
            set_field(self, f.name, freeze(getattr(self, f.name)))

    def to_dict(self) -> dict:
        # An optional field at its default is left out: the config.json of the configs that
        # never set it stays as it was.
        return {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not (f.name in OPTIONAL.get(self.PREFIX[:-1], ())
                        and getattr(self, f.name) == f.default)}


@dataclass(frozen=True, kw_only=True)
class PrepareSection(_Section):
    PREFIX: ClassVar[str] = "prepare."
    # the data's options, declared by PrepareSettings (the seed is the config's own)
    limit_images: int | None = declared(PrepareSettings, "limit_images")
    stride: int | None = declared(PrepareSettings, "stride")


@dataclass(frozen=True, kw_only=True)
class DictionarySection(_Section):
    PREFIX: ClassVar[str] = "dictionary."
    atoms: tuple[int, ...] = rule(per_component, None, each=checks.positive_int,
                                  help="number of atoms of each dictionary, one per component")
    alpha: tuple[float, ...] | None = rule(per_component, None, each=checks.positive_number,
                                           none=True,
                                           help="the codes' l1 penalty while learning, one per "
                                                "component ('none': the optimal codes' alphas)")
    # dictionary learning's options, declared by DictionarySettings
    epochs: int = declared(DictionarySettings, "epochs")
    batch_size: int = declared(DictionarySettings, "batch_size")
    lr: float = declared(DictionarySettings, "lr")
    n_iter_codes: int = declared(DictionarySettings, "n_iter_codes")
    max_signals: int | None = declared(TrainingSignalsSettings, "max_signals")

    def __post_init__(self):
        super().__post_init__()
        set_field(self, "atoms", as_components(self.atoms))
        if self.alpha is not None:
            set_field(self, "alpha", tuple(float(a) for a in as_components(self.alpha)))


@dataclass(frozen=True, kw_only=True)
class CodesSection(_Section):
    PREFIX: ClassVar[str] = "codes."
    # the codes' options, declared by CodesSettings; an experiment's codes stop at a 1e-6
    # relative gap (the library's 1e-7 would cost more on its hundreds of thousands of rows)
    mode: str = declared(CodesSettings, "mode")
    tol: float = declared(CodesSettings, "tol", default=1e-6)


@dataclass(frozen=True, kw_only=True)
class SearchSection(_Section):
    """The (alpha, mu) grid and the training of the learned encoders; the training knobs
    default to lsalsa.core.training.DEFAULTS (one recipe for every data set), and a
    learning-rate grid of one value skips the search step."""

    PREFIX: ClassVar[str] = "search."
    alpha_factors: tuple = rule(checks.non_empty_list, ALPHA_FACTORS, each=_alpha_factor,
                                help="the grid's alphas as factors of alphas, each one number "
                                     "or one per component")
    mus: tuple[float, ...] = declared(SearchGrid, "mus")
    lrs: tuple[float, ...] | Mapping[str, tuple[float, ...]] = rule(
        _learning_rates, SearchGrid.lrs,
        help="grid of learning rates, one for every learned method or one per method")
    lr_decays: tuple[float, ...] = declared(SearchGrid, "lr_decays")
    threshold_lrs: tuple[float, ...] = declared(SearchGrid, "threshold_lrs")
    epochs: int = declared(SearchGrid, "epochs")
    final_epochs: int = rule(checks.positive_int, 100,
                             help="most epochs of each final training (the train step)")
    val_fraction: float = declared(SplitSettings, "val_fraction")
    # Options of every training run, declared by TrainSettings. The plateau schedule trains
    # until validation stops improving (epochs and final_epochs are then caps).
    optimizer: str = declared(TrainSettings, "optimizer")
    schedule: str = declared(TrainSettings, "schedule")
    batch_size: int = declared(TrainSettings, "batch_size")
    rel_tol: float = declared(TrainSettings, "rel_tol")
    patience: int | None = declared(TrainSettings, "patience")
    min_improvement: float = declared(TrainSettings, "min_improvement")
    reconstruction_weight: float | None = declared(TrainSettings, "reconstruction_weight")
    anchor_decay: float = declared(TrainSettings, "anchor_decay")
    learned: tuple[str, ...] = rule(_learned_methods, PAPER_METHODS,
                                    help="the learned methods trained and evaluated (lsalsa "
                                         "among them)")
    untied: bool = declared(SearchGrid, "untied")
    augment: bool = rule(checks.flag, False,
                         help="lsalsa-sep and lsalsa-pic: fresh mixtures in every batch, the "
                              "natural component augmented")
    # With augment, a zoom above 1 also crops the natural component to a random window.
    augment_zoom: float = declared(TrainSettings, "augment_zoom")
    max_train: int | None = declared(SplitSettings, "max_train")


@dataclass(frozen=True, kw_only=True)
class EvaluationSection(_Section):
    PREFIX: ClassVar[str] = "evaluation."
    batch_size: int = rule(checks.positive_int, 4096,
                           help="test signals per encoder call, the same for every method")
    time_repeats: int = rule(checks.positive_int, 5,
                             help="timed runs of each encoding after a warm-up (the median "
                                  "is kept)")
    sparsity_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5, 20),
                                       each=checks.positive_int,
                                       help="depths of the sparsity vs error figure")
    separation_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5, 20),
                                         each=checks.positive_int,
                                         help="MCA: depths whose separations are kept and drawn")
    separation_samples: int = rule(checks.positive_int, 4,
                                   help="MCA: test mixtures whose separations are kept and "
                                        "drawn")
    analysis_samples: int = rule(checks.positive_int, 500,
                                 help="Theorem 1 analysis: at most this many test signals, "
                                      "drawn with the seed")
    match_reference_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5),
                                              each=checks.positive_int,
                                              help="depths of LSALSA whose error FISTA and "
                                                   "SALSA must match (iterations and time)")
    threads: int | None = rule(checks.positive_int, None, none=True,
                               help="threads every method is timed with ('none': the run's)")
    # Extras the demo reports (see OPTIONAL).
    baseline_code_rmse: bool = rule(checks.flag, False,
                                    help="MCA: also the code RMSE of the PSNR baselines")
    time_exact_codes: bool = rule(checks.flag, False,
                                  help="also SPAMS's time to compute the test split's exact "
                                       "codes")


#: Fields left out of the resolved config while at their default, per section.
OPTIONAL: dict = {"evaluation": ("baseline_code_rmse", "time_exact_codes"),
                  "search": ("augment", "augment_zoom", "threshold_lrs", "schedule",
                             "untied", "min_improvement"),
                  "prepare": ("stride",)}


@dataclass(frozen=True, kw_only=True)
class ClassificationSection(_Section):
    PREFIX: ClassVar[str] = "classification."
    projection_dim: int = rule(checks.positive_int, 500,
                               help="longer features are first projected to this size (a "
                                    "seeded Gaussian projection)")
    C: float = rule(checks.positive_number, 10.0,
                    help="the logistic regression's inverse regularisation strength")
    max_iter: int = rule(checks.positive_int, 2000,
                         help="most iterations of the logistic regression's solver")


@dataclass(frozen=True, kw_only=True)
class Target:
    """One of the paper's claims, checked on the results (:func:`lsalsa.workflow.targets.
    evaluate_targets`); a kind holds the keys of :data:`TARGET_KINDS`, the others stay None.
    Thresholds stay as written: the report quotes them."""

    kind: str = rule(checks.one_of, None, choices=TARGET_KINDS,
                     help="the kind of claim, which names the keys the target holds")
    text: str = rule(checks.text, None, help="the claim in words, as the report quotes it")
    method: str | None = rule(checks.text, None, none=True, help="the method the claim is about")
    other: str | None = rule(checks.text, None, none=True,
                             help="the method it is compared with")
    T: tuple[int, ...] | None = rule(checks.non_empty_list, None, each=checks.positive_int,
                                     none=True, help="the depths at which it must hold")
    reference_T: int | None = rule(checks.positive_int, None, none=True,
                                   help="the depth of LSALSA that the method is to match")
    below_T: int | None = rule(checks.positive_int, None, none=True,
                               help="it must hold at every depth below this that both ran")
    more_than: int | None = rule(checks.non_negative_int, None, none=True,
                                 help="the method needs more than this many iterations")
    at_most: float | None = rule(checks.positive_number, None, none=True,
                                 help="the largest ratio of the method's test RMSE to other's")
    at_least: float | None = rule(checks.positive_number, None, none=True,
                                  help="the smallest ratio of the method's time to match "
                                       "LSALSA to LSALSA's time")
    baseline: str | None = rule(checks.one_of, None, choices=PSNR_BASELINES, none=True,
                                help="SALSA's separation baseline: codes_alphas (at the "
                                     "optimal codes' alphas) or any_alpha (the whole grid)")
    where: InitVar[str] = "target"  # how errors name it: targets[i]

    def __post_init__(self, where: str):
        checks.check_fields(self, f"{where}.", keep=True)
        set_field(self, "T", freeze(self.T))

    @classmethod
    def from_dict(cls, raw, where: str) -> Target:
        if not isinstance(raw, dict) \
                or checks.fault(checks.one_of, raw.get("kind"), "kind", choices=TARGET_KINDS):
            raise InputError(f"{where} needs a kind among {', '.join(TARGET_KINDS)}")
        need = ("kind", "text", *TARGET_KINDS[raw["kind"]])
        missing = [key for key in need if key not in raw]
        extra = [key for key in raw if key not in need]
        if missing or extra:
            raise InputError(f"{where} ({raw['kind']}): missing {missing}, unknown {extra}")
        empty = [key for key in need if raw[key] is None]
        if empty:
            raise InputError(f"{where} ({raw['kind']}): {', '.join(empty)} must not be null")
        return cls(**raw, where=where)

    def to_dict(self) -> dict:
        return {key: to_json(getattr(self, key)) for key in
                ("kind", "text", *TARGET_KINDS[self.kind])}

