"""Experiment configurations: JSON files with a base setting and per-scale overrides.

A configuration names a prepared data set (:mod:`lsalsa.workflow.data`), how to learn the
dictionaries, the optimal codes, the depths ``T`` and the search grid of Section 6 of the paper.
The shipped ones live in ``lsalsa/workflow/configs/*.json``; ``scales.small`` / ``scales.full``
hold overrides merged (recursively, leaf by leaf) over the base for ``--scale small|full``.

A loaded configuration is an :class:`ExperimentConfig`: frozen dataclasses, one per section,
each field declared once with its default and its constraint (:mod:`lsalsa.checks`). What ties
fields together (one value per component, the largest depth, the methods a target reads) is a
small named check. Values stay as the JSON wrote them (``10`` stays 10, not 10.0), lists become
tuples; :meth:`ExperimentConfig.to_dict` gives the JSON back, resolved: what a run directory
records in ``config.json`` and what the pipeline reads.

The search grid gives alphas as *factors* of the optimal-code penalties ``alphas``: a factor is
one number (all components scaled alike) or one number per component (``[f1, f2]``: MCA's
separate alpha_1, alpha_2 search).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import ClassVar

from .. import checks
from ..checks import rule
from ..core.metrics import PSNR_BASELINES
from ..core.training.search import ALPHA_FACTORS, LEARNED_METHODS, MUS, alpha_candidates
from ..core.training.trainer import DEFAULTS as TRAIN_DEFAULTS
from ..core.training.trainer import MAX_LR
from ..errors import InputError
from .data import SPECS

SCALES = ("small", "full")
DEFAULT_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
DEVICES = ("auto", "cpu", "cuda")
CLASSIC = ("fista", "salsa")
# "lsalsa" learns its thresholds (the default); "lsalsa-fixed" is the paper's exact model.
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
def _plain_name(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"config needs a '{name}' (text)")
    if not PLAIN_NAME.fullmatch(value):
        raise InputError(f"{name} must be a plain name (letters, digits, '.', '_', '-'; not "
                         f"starting with '.' or '-'), got {value!r}")
    return value


def _per_component(value, name: str, *, each, none: bool = False) -> list | None:
    """One value for every component, or a list of one per component (counted against the
    data set in :meth:`ExperimentConfig._check_components`)."""
    if value is None and none:
        return None
    if value is None:
        raise InputError(f"{name} is required (one value per component)")
    return checks.non_empty_list(value if isinstance(value, list | tuple) else [value], name,
                                 each=each)


def _distinct(value, name: str, *, each) -> list:
    values = checks.non_empty_list(value, name, each=each)
    if len(set(values)) != len(values):
        raise InputError(f"{name} must not repeat")
    return values


def _alpha_factor(value, name: str):
    """One factor for every component, or one per component."""
    if isinstance(value, list | tuple):
        return checks.non_empty_list(value, name, each=checks.positive_number)
    return checks.positive_number(value, name)


_learning_rate = partial(checks.number, low=0, low_open=True, high=MAX_LR)


def _learning_rates(value, name: str):
    """A grid of learning rates, or one grid per learned method (an object)."""
    if not isinstance(value, dict):
        return checks.non_empty_list(value, name, each=_learning_rate)
    if any(method not in LEARNED for method in value):
        raise InputError(f"{name} as an object takes keys among {LEARNED}")
    return {method: checks.non_empty_list(grid, f"{name}.{method}", each=_learning_rate)
            for method, grid in value.items()}


def _learned_methods(value, name: str) -> list:
    methods = value if isinstance(value, list | tuple) else None
    if not methods or any(m not in LEARNED for m in methods) \
            or len(set(methods)) != len(methods) or "lsalsa" not in methods:
        raise InputError(f"{name} must list distinct methods among {LEARNED}, 'lsalsa' "
                         f"included, got {value!r}")
    return list(methods)


# -- the sections -------------------------------------------------------------------------------
def _frozen(value):
    """JSON lists as tuples, all the way down (an object stays a dict)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _plain(value):
    """The JSON form of a config value: tuples as lists, sections and targets as objects."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _set(instance, name: str, value) -> None:
    object.__setattr__(instance, name, value)  # a frozen dataclass, in __post_init__


class _Section:
    """A config section: its fields checked on creation, kept as written, lists frozen."""

    PREFIX: ClassVar[str] = ""

    def __post_init__(self):
        checks.check_fields(self, self.PREFIX, keep=True)
        for f in dataclasses.fields(self):
            _set(self, f.name, _frozen(getattr(self, f.name)))

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class PrepareSection(_Section):
    PREFIX: ClassVar[str] = "prepare."
    limit_images: int | None = rule(checks.positive_int, None, none=True)


@dataclass(frozen=True, kw_only=True)
class DictionarySection(_Section):
    PREFIX: ClassVar[str] = "dictionary."
    atoms: tuple[int, ...] = rule(_per_component, None, each=checks.positive_int)
    # None: the optimal codes' alphas (ExperimentConfig fills them in)
    alpha: tuple[float, ...] | None = rule(_per_component, None, each=checks.positive_number,
                                           none=True)
    epochs: int = rule(checks.positive_int, 10)
    batch_size: int = rule(checks.positive_int, 256)
    lr: float = rule(checks.positive_number, 1.0)
    n_iter_codes: int = rule(checks.positive_int, 50)
    max_signals: int | None = rule(checks.positive_int, None, none=True)

    def __post_init__(self):
        super().__post_init__()
        _set(self, "atoms", _components(self.atoms))
        if self.alpha is not None:
            _set(self, "alpha", tuple(float(a) for a in _components(self.alpha)))


def _components(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


@dataclass(frozen=True, kw_only=True)
class CodesSection(_Section):
    PREFIX: ClassVar[str] = "codes."
    mode: str = rule(checks.one_of, "exact", choices=("exact", "paper"))
    tol: float = rule(checks.positive_number, 1e-6)


@dataclass(frozen=True, kw_only=True)
class SearchSection(_Section):
    """The (alpha, mu) grid and the training of the learned encoders; the training knobs
    default to lsalsa.core.training.DEFAULTS (one recipe for every data set), and a
    learning-rate grid of one value skips the search step."""

    PREFIX: ClassVar[str] = "search."
    alpha_factors: tuple = rule(checks.non_empty_list, ALPHA_FACTORS, each=_alpha_factor)
    mus: tuple[float, ...] = rule(checks.non_empty_list, MUS, each=checks.positive_number)
    # one grid, or one per learned method
    lrs: tuple[float, ...] | Mapping[str, tuple[float, ...]] = rule(
        _learning_rates, (TRAIN_DEFAULTS["lr"],))
    lr_decays: tuple[float, ...] = rule(checks.non_empty_list, (TRAIN_DEFAULTS["lr_decay"],),
                                        each=checks.non_negative_number)
    epochs: int = rule(checks.positive_int, 10)
    final_epochs: int = rule(checks.positive_int, 100)
    val_fraction: float = rule(checks.number, 0.1, low=0, high=1, low_open=True,
                               high_open=True)
    optimizer: str = rule(checks.one_of, TRAIN_DEFAULTS["optimizer"], choices=("sgd", "adam"))
    batch_size: int = rule(checks.positive_int, TRAIN_DEFAULTS["batch_size"])
    rel_tol: float = rule(checks.non_negative_number, TRAIN_DEFAULTS["rel_tol"])
    patience: int | None = rule(checks.positive_int, TRAIN_DEFAULTS["patience"], none=True)
    reconstruction_weight: float | None = rule(
        checks.non_negative_number, TRAIN_DEFAULTS["reconstruction_weight"], none=True)
    anchor_decay: float = rule(checks.non_negative_number, TRAIN_DEFAULTS["anchor_decay"])
    learned: tuple[str, ...] = rule(_learned_methods, LEARNED)
    max_train: int | None = rule(checks.positive_int, None, none=True)


@dataclass(frozen=True, kw_only=True)
class EvaluationSection(_Section):
    PREFIX: ClassVar[str] = "evaluation."
    batch_size: int = rule(checks.positive_int, 4096)
    time_repeats: int = rule(checks.positive_int, 5)
    sparsity_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5, 20),
                                       each=checks.positive_int)
    separation_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5, 20),
                                         each=checks.positive_int)
    separation_samples: int = rule(checks.positive_int, 4)
    analysis_samples: int = rule(checks.positive_int, 500)
    match_reference_T: tuple[int, ...] = rule(checks.non_empty_list, (1, 5),
                                              each=checks.positive_int)
    threads: int | None = rule(checks.positive_int, None, none=True)


@dataclass(frozen=True, kw_only=True)
class ClassificationSection(_Section):
    PREFIX: ClassVar[str] = "classification."
    projection_dim: int = rule(checks.positive_int, 500)
    C: float = rule(checks.positive_number, 10.0)
    max_iter: int = rule(checks.positive_int, 2000)


@dataclass(frozen=True, kw_only=True)
class Target:
    """One of the paper's claims, checked on the results (:func:`lsalsa.core.metrics.
    evaluate_targets`); a kind holds the keys of :data:`TARGET_KINDS`, the others stay None.
    Thresholds stay as written: the report quotes them."""

    kind: str = rule(checks.one_of, None, choices=TARGET_KINDS)
    text: str = rule(checks.text, None)
    method: str | None = rule(checks.text, None, none=True)
    other: str | None = rule(checks.text, None, none=True)
    T: tuple[int, ...] | None = rule(checks.non_empty_list, None, each=checks.positive_int,
                                     none=True)
    reference_T: int | None = rule(checks.positive_int, None, none=True)
    below_T: int | None = rule(checks.positive_int, None, none=True)
    more_than: int | None = rule(checks.non_negative_int, None, none=True)
    at_most: float | None = rule(checks.positive_number, None, none=True)
    at_least: float | None = rule(checks.positive_number, None, none=True)
    baseline: str | None = rule(checks.one_of, None, choices=PSNR_BASELINES, none=True)
    where: InitVar[str] = "target"  # how errors name it: targets[i]

    def __post_init__(self, where: str):
        checks.check_fields(self, f"{where}.", keep=True)
        _set(self, "T", _frozen(self.T))

    @classmethod
    def from_dict(cls, raw, where: str) -> Target:
        if not isinstance(raw, dict) or raw.get("kind") not in TARGET_KINDS:
            raise InputError(f"{where} needs a kind among {', '.join(TARGET_KINDS)}")
        need = ("kind", "text", *TARGET_KINDS[raw["kind"]])
        missing = [key for key in need if key not in raw]
        extra = [key for key in raw if key not in need]
        if missing or extra:
            raise InputError(f"{where} ({raw['kind']}): missing {missing}, unknown {extra}")
        return cls(**raw, where=where)

    def to_dict(self) -> dict:
        return {key: _plain(getattr(self, key)) for key in
                ("kind", "text", *TARGET_KINDS[self.kind])}


#: The sections of a config, by key.
SECTIONS = {"prepare": PrepareSection, "dictionary": DictionarySection, "codes": CodesSection,
            "search": SearchSection, "evaluation": EvaluationSection,
            "classification": ClassificationSection}


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A validated experiment configuration at one scale (see the module docstring)."""

    name: str = rule(_plain_name, None)
    description: str = rule(checks.text, "", empty=True)
    dataset: str = rule(checks.one_of, None, choices=SPECS)
    seed: int = rule(checks.non_negative_int, 0)
    device: str = rule(checks.one_of, "auto", choices=DEVICES)
    threads: int | None = rule(checks.positive_int, None, none=True)
    prepare: PrepareSection = field(default_factory=PrepareSection)
    dictionary: DictionarySection = field(default_factory=DictionarySection)
    codes: CodesSection = field(default_factory=CodesSection)
    # the optimal codes' penalties, one per component (floats)
    alphas: tuple[float, ...] = rule(_per_component, None, each=checks.positive_number)
    mu: float = rule(checks.positive_number, 10.0)
    depths: tuple[int, ...] = rule(_distinct, DEFAULT_DEPTHS, each=checks.positive_int)
    dense_max: int = rule(checks.positive_int, 200)
    search: SearchSection = field(default_factory=SearchSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    classification: ClassificationSection = field(default_factory=ClassificationSection)
    targets: tuple[Target, ...] = ()
    # Set by load_experiment: the scale chosen and where the JSON came from.
    scale: str = rule(checks.one_of, "full", choices=SCALES)
    origin: str = rule(checks.text, "", empty=True)

    def __post_init__(self):
        checks.check_fields(self, keep=True)
        _set(self, "alphas", tuple(float(a) for a in _components(_frozen(self.alphas))))
        _set(self, "depths", tuple(sorted(self.depths)))
        _set(self, "targets", tuple(self.targets))
        if self.dictionary.alpha is None:
            _set(self, "dictionary", dataclasses.replace(self.dictionary, alpha=self.alphas))
        self._check_components()
        self._check_dense_max()
        self._check_target_methods()

    @property
    def kind(self) -> str:
        """"sc" (sparse coding) or "mca" (separation), from the data set."""
        return SPECS[self.dataset].kind

    @property
    def n_components(self) -> int:
        return 2 if self.kind == "mca" else 1

    # -- what ties fields together --------------------------------------------------------
    def _check_components(self) -> None:
        n, kind = self.n_components, self.kind
        if len(self.alphas) != n:
            raise InputError(f"alphas needs {n} value(s) for a {kind} data set, got "
                             f"{len(self.alphas)}")
        if len(self.dictionary.atoms) != n or len(self.dictionary.alpha) != n:
            raise InputError(f"dictionary.atoms and dictionary.alpha need {n} value(s) "
                             f"(one per component)")
        for factor in self.search.alpha_factors:
            if isinstance(factor, tuple) and len(factor) != n:
                raise InputError(f"search.alpha_factors entry {list(factor)} needs {n} values")

    def _check_dense_max(self) -> None:
        if self.dense_max < max(self.depths):
            raise InputError(f"dense_max ({self.dense_max}) must be at least the largest "
                             f"depth ({max(self.depths)})")

    def _check_target_methods(self) -> None:
        run_methods = (*CLASSIC, *self.search.learned)  # a target reads what the run evaluates
        for i, target in enumerate(self.targets):
            for key in ("method", "other"):
                value = getattr(target, key)
                if value is not None and value not in run_methods:
                    raise InputError(f"targets[{i}].{key} must be one of the methods this "
                                     f"config runs ({', '.join(run_methods)}), got {value!r}")

    # -- JSON ------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict) -> ExperimentConfig:
        """The config of a merged JSON object (a file's base with a scale's overrides, plus
        ``scale`` and ``origin``; or :meth:`to_dict`'s output, whose ``kind`` must agree)."""
        if not isinstance(raw, dict):
            raise InputError("config must be a JSON object")
        _check_keys(raw, "config", [*(f.name for f in dataclasses.fields(cls)), "kind"])
        values = {key: value for key, value in raw.items() if key != "kind"}
        for key, section in SECTIONS.items():
            if key in values:
                values[key] = section(**values[key])
        if "targets" in values:
            if not isinstance(values["targets"], list | tuple):
                raise InputError("targets must be a list")
            values["targets"] = tuple(Target.from_dict(target, f"targets[{i}]")
                                      for i, target in enumerate(values["targets"]))
        config = cls(**values)
        if raw.get("kind", config.kind) != config.kind:
            raise InputError(f"kind {raw['kind']!r} does not match data set {config.dataset} "
                             f"(kind {config.kind})")
        return config

    def to_dict(self) -> dict:
        """The resolved JSON: every key with its value as written (defaults filled in, lists
        for tuples), plus ``kind``."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["kind"] = self.kind
        return out


#: The keys a config file may hold ("scale" and "origin" are set on loading).
FILE_KEYS = (*(f.name for f in dataclasses.fields(ExperimentConfig)
               if f.name not in ("scale", "origin")), "scales")


def _check_keys(section: dict, where: str, allowed) -> None:
    """Refuse keys a config (or one of its sections) does not know."""
    for key, value in section.items():
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})")
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise InputError(f"{where}.{key} must be an object")
            _check_keys(value, f"{where}.{key}",
                        [f.name for f in dataclasses.fields(SECTIONS[key])])


# -- files --------------------------------------------------------------------------------------
def shipped() -> list[str]:
    """Names of the configurations shipped with the package."""
    folder = resources.files("lsalsa.workflow") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def read_config(name_or_path: str | Path) -> tuple[dict, str]:
    """The raw JSON of a shipped configuration name or a file path, and where it came from."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise InputError(f"config file not found: {name_or_path}")
        text, origin = _read(path), str(path)
    else:
        if str(name_or_path) not in shipped():
            raise InputError(f"unknown experiment {name_or_path!r}; shipped: "
                             f"{', '.join(shipped())} (or give a .json file)")
        res = resources.files("lsalsa.workflow") / "configs" / f"{name_or_path}.json"
        text, origin = res.read_text(), f"shipped:{name_or_path}"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"config {origin} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"config {origin} must be a JSON object")
    return raw, origin


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config {path}: {exc}") from exc


def merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``, recursively for nested objects (lists are replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_experiment(name_or_path: str | Path, scale: str = "full") -> ExperimentConfig:
    """The validated configuration of a shipped name or a JSON file at ``scale``."""
    checks.one_of(scale, "scale", choices=SCALES)
    raw, origin = read_config(name_or_path)
    _check_keys(raw, "config", FILE_KEYS)
    scales = raw.get("scales", {})
    if not isinstance(scales, dict) or any(k not in SCALES for k in scales):
        raise InputError(f"config {origin}: 'scales' may only hold {', '.join(SCALES)}")
    for name, override in scales.items():
        if not isinstance(override, dict):
            raise InputError(f"config {origin}: scales.{name} must be an object")
        _check_keys(override, f"scales.{name}", FILE_KEYS)
    base = {k: v for k, v in raw.items() if k != "scales"}
    merged = {k: v for k, v in merge(base, scales.get(scale, {})).items() if k != "scales"}
    return ExperimentConfig.from_dict({**merged, "scale": scale, "origin": origin})


def load_config(name_or_path: str | Path, scale: str = "full") -> dict:
    """The validated configuration at ``scale`` as JSON, defaults filled in.

    The result has ``scale``, ``origin`` and ``kind`` keys added and ``scales`` removed; it is
    what a run directory records in ``config.json``.
    """
    return load_experiment(name_or_path, scale).to_dict()


# -- derived values (of the resolved JSON) ------------------------------------------------------
def config_hash(config: dict, keys) -> str:
    """A short hash of the parts of ``config`` one step depends on (for resuming)."""
    part = {k: config[k] for k in keys}
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def methods_in(results: dict) -> list[str]:
    """The methods a stored ``results.json`` holds, in report order (older runs lack some)."""
    return [m for m in METHODS if m in results["methods"]]


def alpha_grid(config: dict) -> list[list[float]]:
    """The search's alpha vectors: each factor times the optimal-code alphas."""
    return alpha_candidates(config["alphas"], config["search"]["alpha_factors"])


def dense_depths(config: dict) -> list[int]:
    """Iteration counts at which FISTA and SALSA are evaluated (for iterations to match): every
    count up to ``dense_max``, so the iterations to match are exact, not upper bounds. One
    trajectory per setting gives all of them; the RMSE per count costs less than the
    iteration (measured: trajectories at most 2x slower at N = 100, unchanged at N = 256)."""
    return list(range(1, config["dense_max"] + 1))
