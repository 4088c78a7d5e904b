"""The whole experiment configuration: :class:`ExperimentConfig`, its sections, what ties their
fields together (small named checks), and its JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ... import checks
from ...checks import declared, rule
from ...core.codes import CodesSettings
from ...core.training.search import LEARNED_METHODS, alpha_candidates
from ...errors import InputError
from ..data import SPECS
from ..rundir import FREE
from .sections import (
    CLASSIC,
    DEFAULT_DEPTHS,
    DEVICES,
    METHODS,
    SCALES,
    ClassificationSection,
    CodesSection,
    DictionarySection,
    EvaluationSection,
    PrepareSection,
    SearchSection,
    Target,
    as_components,
    distinct,
    freeze,
    per_component,
    plain_name,
    set_field,
    to_json,
)

#: The sections of a config, by key.
SECTIONS = {"prepare": PrepareSection, "dictionary": DictionarySection, "codes": CodesSection,
            "search": SearchSection, "evaluation": EvaluationSection,
            "classification": ClassificationSection}


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A validated experiment configuration at one scale (see :mod:`lsalsa.workflow.config`)."""

    name: str = rule(plain_name, None,
                     help="the experiment's name; its run folder is runs/<name>-<scale>")
    description: str = rule(checks.text, "", empty=True,
                            help="what the experiment is, for the report and lsalsa "
                                 "experiment list")
    dataset: str = rule(checks.one_of, None, choices=SPECS,
                        help="the data set it prepares and runs on (lsalsa data list)")
    seed: int = rule(checks.non_negative_int, 0,
                     help="seed of every random choice (data, dictionaries, training, ...)")
    device: str = rule(checks.one_of, "auto", choices=DEVICES,
                       help="where to compute (auto: cuda when there is one)")
    threads: int | None = rule(checks.positive_int, None, none=True,
                               help="torch's threads during the run ('none': left as they are)")
    # A section checks its own fields; the field that holds it has a help only.
    prepare: PrepareSection = field(default_factory=PrepareSection,
                                    metadata={"help": "the data set's preparation"})
    dictionary: DictionarySection = field(
        default_factory=DictionarySection,
        metadata={"help": "the dictionaries, one per component"})
    codes: CodesSection = field(default_factory=CodesSection,
                                metadata={"help": "the optimal codes of every split"})
    alphas: tuple[float, ...] = rule(per_component, None, each=checks.positive_number,
                                     help="the optimal codes' l1 penalties, one per component")
    mu: float = declared(CodesSettings, "mu")  # of the paper-mode codes
    depths: tuple[int, ...] = rule(distinct, DEFAULT_DEPTHS, each=checks.positive_int,
                                   help="the depths T: layers of the learned encoders, "
                                        "iterations of the classic ones")
    dense_max: int = rule(checks.positive_int, 200,
                          help="FISTA's and SALSA's curves run to this many iterations (the "
                               "iterations they need to match the learned encoders)")
    search: SearchSection = field(
        default_factory=SearchSection,
        metadata={"help": "the (alpha, mu) grid and the training of the learned encoders"})
    evaluation: EvaluationSection = field(
        default_factory=EvaluationSection,
        metadata={"help": "the evaluation on the test split"})
    classification: ClassificationSection = field(
        default_factory=ClassificationSection,
        metadata={"help": "the expert classifiers, trained on the optimal codes"})
    targets: tuple[Target, ...] = field(default=(), metadata={
        "help": "the paper's claims, checked on the results (met or missed in the report)"})
    scale: str = rule(checks.one_of, "full", choices=SCALES,
                      help="small: minutes on a CPU; full: the paper's sizes, for a GPU; "
                           "converged: trained until held-out validation stops improving")
    origin: str = rule(checks.text, "", empty=True, resume=FREE,
                       help="where the JSON came from (set by load_experiment)")

    def __post_init__(self):
        checks.check_fields(self, keep=True)
        set_field(self, "alphas", tuple(float(a) for a in as_components(freeze(self.alphas))))
        set_field(self, "depths", tuple(sorted(self.depths)))
        set_field(self, "targets", tuple(self.targets))
        if self.dictionary.alpha is None:
            set_field(self, "dictionary", dataclasses.replace(self.dictionary, alpha=self.alphas))
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
        separating = [m for m in self.search.learned
                      if LEARNED_METHODS[m].objective == "separation"]
        if separating and kind != "mca":
            raise InputError(f"search.learned: {', '.join(separating)} is trained on the "
                             f"components of mixtures; a {kind} data set has none")

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
        check_keys(raw, "config", [*(f.name for f in dataclasses.fields(cls)), "kind"])
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
        out = {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["kind"] = self.kind
        return out


#: The keys a config file may hold ("scale" and "origin" are set on loading).
FILE_KEYS = (*(f.name for f in dataclasses.fields(ExperimentConfig)
               if f.name not in ("scale", "origin")), "scales")


def check_keys(section: dict, where: str, allowed) -> None:
    """Refuse keys a config (or one of its sections) does not know."""
    for key, value in section.items():
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})")
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise InputError(f"{where}.{key} must be an object")
            check_keys(value, f"{where}.{key}",
                       [f.name for f in dataclasses.fields(SECTIONS[key])])


# -- derived values -----------------------------------------------------------------------------
def methods_in(results: dict) -> list[str]:
    """The methods a stored ``results.json`` holds, in report order (older runs lack some)."""
    return [m for m in METHODS if m in results["methods"]]


def alpha_grid(config: ExperimentConfig) -> list[list[float]]:
    """The search's alpha vectors: each factor times the optimal-code alphas."""
    return alpha_candidates(config.alphas, config.search.alpha_factors)


def dense_depths(config: ExperimentConfig) -> list[int]:
    """Iteration counts at which FISTA and SALSA are evaluated (for iterations to match): every
    count up to ``dense_max``, so the iterations to match are exact, not upper bounds. One
    trajectory per setting gives all of them; the RMSE per count costs less than the
    iteration (measured: trajectories at most 2x slower at N = 100, unchanged at N = 256)."""
    return list(range(1, config.dense_max + 1))
