"""Experiment configurations: JSON files with a base setting and per-scale overrides.

A configuration names a prepared data set (:mod:`lsalsa.workflow.data`), how to learn the
dictionaries, the optimal codes, the depths ``T`` and the search grid of Section 6 of the paper.
The shipped ones live in ``lsalsa/workflow/configs/*.json``; ``scales.small`` / ``scales.full`` hold
overrides merged (recursively, leaf by leaf) over the base for ``--scale small|full``.

The search grid gives alphas as *factors* of the optimal-code penalties ``alphas``: a factor is
one number (all components scaled alike) or one number per component (``[f1, f2]``: MCA's
separate alpha_1, alpha_2 search).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path

from ..core.training.search import ALPHA_FACTORS, LEARNED_METHODS, MUS, alpha_candidates
from ..core.training.trainer import DEFAULTS as TRAIN_DEFAULTS
from ..core.training.trainer import check_lr
from ..errors import InputError

SCALES = ("small", "full")
DEFAULT_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
CLASSIC = ("fista", "salsa")
# "lsalsa" learns its thresholds (the default); "lsalsa-fixed" is the paper's exact model.
LEARNED = tuple(LEARNED_METHODS)
METHODS = CLASSIC + LEARNED

#: Every key a configuration may hold, with its default (None: required or "not set").
DEFAULTS: dict = {
    "name": None,
    "description": "",
    "dataset": None,
    "seed": 0,
    "device": "auto",
    "threads": None,
    "prepare": {"limit_images": None},
    "dictionary": {"atoms": None, "alpha": None, "epochs": 10, "batch_size": 256, "lr": 1.0,
                   "n_iter_codes": 50, "max_signals": None},
    "codes": {"mode": "exact", "tol": 1e-6},
    "alphas": None,
    "mu": 10.0,
    "depths": list(DEFAULT_DEPTHS),
    "dense_max": 200,
    # The training knobs default to lsalsa.core.training.DEFAULTS (one recipe for every data set);
    # a learning-rate grid of one value skips the search step.
    "search": {"alpha_factors": list(ALPHA_FACTORS), "mus": list(MUS),
               "lrs": [TRAIN_DEFAULTS["lr"]], "lr_decays": [TRAIN_DEFAULTS["lr_decay"]],
               "epochs": 10, "final_epochs": 100, "val_fraction": 0.1,
               **{k: TRAIN_DEFAULTS[k] for k in ("optimizer", "batch_size", "rel_tol",
                                                 "patience", "reconstruction_weight",
                                                 "anchor_decay")},
               "learned": list(LEARNED), "max_train": None},
    "evaluation": {"batch_size": 4096, "time_repeats": 5, "sparsity_T": [1, 5, 20],
                   "separation_T": [1, 5, 20], "separation_samples": 4,
                   "analysis_samples": 500, "match_reference_T": [1, 5],
                   "threads": None},
    "classification": {"projection_dim": 500, "C": 10.0, "max_iter": 2000},
    "targets": [],
    "scales": {},
}

#: Keys a configuration may set that are left out of the resolved config unless set (so the
#: config.json and results.json of the configs without them stay as they were), with their
#: defaults: evaluation extras the demo reports.
OPTIONAL: dict = {
    "evaluation": {"baseline_code_rmse": False,  # the PSNR baselines' code RMSE
                   "time_exact_codes": False},   # SPAMS's time to compute the exact codes
}

# The MCA separation baselines: SALSA at the mu of best validation PSNR with the optimal codes'
# alphas (the problem LSALSA is trained on), or at the best (alpha, mu) of the whole grid.
PSNR_BASELINES = {"codes_alphas": "salsa_best_psnr", "any_alpha": "salsa_best_psnr_any_alpha"}

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


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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


def load_config(name_or_path: str | Path, scale: str = "full") -> dict:
    """The validated configuration at ``scale``, defaults filled in.

    The result has ``scale`` and ``origin`` keys added and ``scales`` removed; it is what a run
    directory records in ``config.json``.
    """
    if scale not in SCALES:
        raise InputError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    raw, origin = read_config(name_or_path)
    _check_keys(raw, DEFAULTS, "config")
    scales = raw.get("scales", {})
    if not isinstance(scales, dict) or any(k not in SCALES for k in scales):
        raise InputError(f"config {origin}: 'scales' may only hold {', '.join(SCALES)}")
    for name, override in scales.items():
        if not isinstance(override, dict):
            raise InputError(f"config {origin}: scales.{name} must be an object")
        _check_keys(override, DEFAULTS, f"scales.{name}")
    config = merge(merge(DEFAULTS, {k: v for k, v in raw.items() if k != "scales"}),
                   scales.get(scale, {}))
    config.pop("scales")
    config["scale"] = scale
    config["origin"] = origin
    return validate(config)


def _check_keys(section: dict, allowed: dict, where: str, optional: dict = OPTIONAL) -> None:
    for key, value in section.items():
        if key not in allowed and key not in optional:
            names = ", ".join(dict.fromkeys([*allowed, *optional]))
            raise InputError(f"{where}: unknown key {key!r} (allowed: {names})")
        if key in allowed and isinstance(allowed[key], dict) and key != "scales":
            if not isinstance(value, dict):
                raise InputError(f"{where}.{key} must be an object")
            _check_keys(value, allowed[key], f"{where}.{key}", optional.get(key, {}))


def _positive(value, where: str, integer: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{where} must be an integer >= 1, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value <= 0:
        raise InputError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def _nonneg(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0:
        raise InputError(f"{where} must be a number >= 0, got {value!r}")
    return float(value)


def _list(value, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where} must be a non-empty list")
    return value


def validate(config: dict) -> dict:
    """Check every field; raise :class:`InputError` with the field's name on the first fault."""
    from .data import SPECS

    c = config
    if not isinstance(c["name"], str) or not c["name"]:
        raise InputError("config needs a 'name' (text)")
    # The name becomes a folder (runs/<name>-<scale>): no separators, no "..", no hidden name.
    if not PLAIN_NAME.fullmatch(c["name"]):
        raise InputError(f"name must be a plain name (letters, digits, '.', '_', '-'; not "
                         f"starting with '.' or '-'), got {c['name']!r}")
    if c["dataset"] not in SPECS:
        raise InputError(f"dataset must be one of {', '.join(SPECS)}, got {c['dataset']!r}")
    kind = SPECS[c["dataset"]].kind
    n_blocks = 2 if kind == "mca" else 1
    if isinstance(c["seed"], bool) or not isinstance(c["seed"], int) or c["seed"] < 0:
        raise InputError(f"seed must be an integer >= 0, got {c['seed']!r}")
    if c["device"] not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {c['device']!r}")
    _positive(c["threads"], "threads", integer=True, allow_none=True)
    _positive(c["prepare"]["limit_images"], "prepare.limit_images", integer=True,
              allow_none=True)
    alphas = c["alphas"]
    if isinstance(alphas, int | float) and not isinstance(alphas, bool):
        alphas = [alphas]
    alphas = [_positive(a, "alphas") for a in _list(alphas, "alphas")]
    if len(alphas) != n_blocks:
        raise InputError(f"alphas needs {n_blocks} value(s) for a {kind} data set, got "
                         f"{len(alphas)}")
    c["alphas"] = alphas
    d = c["dictionary"]
    atoms = d["atoms"]
    if atoms is None:
        raise InputError("dictionary.atoms is required (one atom count per component)")
    atoms = [atoms] if isinstance(atoms, int) and not isinstance(atoms, bool) else atoms
    d["atoms"] = [_positive(a, "dictionary.atoms", integer=True)
                  for a in _list(atoms, "dictionary.atoms")]
    d["alpha"] = list(alphas) if d["alpha"] is None else d["alpha"]
    d["alpha"] = [d["alpha"]] if isinstance(d["alpha"], int | float) else d["alpha"]
    d["alpha"] = [_positive(a, "dictionary.alpha") for a in _list(d["alpha"],
                                                                   "dictionary.alpha")]
    if len(d["atoms"]) != n_blocks or len(d["alpha"]) != n_blocks:
        raise InputError(f"dictionary.atoms and dictionary.alpha need {n_blocks} value(s) "
                         f"(one per component)")
    for key in ("epochs", "batch_size", "n_iter_codes"):
        _positive(d[key], f"dictionary.{key}", integer=True)
    _positive(d["lr"], "dictionary.lr")
    _positive(d["max_signals"], "dictionary.max_signals", integer=True, allow_none=True)
    if c["codes"]["mode"] not in ("exact", "paper"):
        raise InputError(f"codes.mode must be exact or paper, got {c['codes']['mode']!r}")
    _positive(c["codes"]["tol"], "codes.tol")
    _positive(c["mu"], "mu")
    depths = [_positive(t, "depths", integer=True) for t in _list(c["depths"], "depths")]
    if len(set(depths)) != len(depths):
        raise InputError("depths must not repeat")
    c["depths"] = sorted(depths)
    _positive(c["dense_max"], "dense_max", integer=True)
    if c["dense_max"] < max(depths):
        raise InputError(f"dense_max ({c['dense_max']}) must be at least the largest depth "
                         f"({max(depths)})")
    s = c["search"]
    for factor in _list(s["alpha_factors"], "search.alpha_factors"):
        values = factor if isinstance(factor, list) else [factor]
        if isinstance(factor, list) and len(factor) != n_blocks:
            raise InputError(f"search.alpha_factors entry {factor} needs {n_blocks} values")
        for v in values:
            _positive(v, "search.alpha_factors")
    for v in _list(s["mus"], "search.mus"):
        _positive(v, "search.mus")
    learned = _list(s["learned"], "search.learned")
    if any(m not in LEARNED for m in learned) or len(set(learned)) != len(learned) \
            or "lsalsa" not in learned:
        raise InputError(f"search.learned must list distinct methods among {LEARNED}, "
                         f"'lsalsa' included, got {learned!r}")
    lrs = s["lrs"]
    if isinstance(lrs, dict):
        if any(m not in LEARNED for m in lrs):
            raise InputError(f"search.lrs as an object takes keys among {LEARNED}")
        for method, grid in lrs.items():
            for v in _list(grid, f"search.lrs.{method}"):
                check_lr(v, f"search.lrs.{method}")
    else:
        for v in _list(lrs, "search.lrs"):
            check_lr(v, "search.lrs")
    for v in _list(s["lr_decays"], "search.lr_decays"):
        _nonneg(v, "search.lr_decays")
    for key in ("epochs", "final_epochs", "batch_size"):
        _positive(s[key], f"search.{key}", integer=True)
    if s["optimizer"] not in ("sgd", "adam"):
        raise InputError(f"search.optimizer must be sgd or adam, got {s['optimizer']!r}")
    _positive(s["patience"], "search.patience", integer=True, allow_none=True)
    if s["reconstruction_weight"] is not None:
        _nonneg(s["reconstruction_weight"], "search.reconstruction_weight")
    _nonneg(s["anchor_decay"], "search.anchor_decay")
    _positive(s["max_train"], "search.max_train", integer=True, allow_none=True)
    if not isinstance(s["val_fraction"], int | float) or not 0 < s["val_fraction"] < 1:
        raise InputError(f"search.val_fraction must lie in (0, 1), got {s['val_fraction']!r}")
    _nonneg(s["rel_tol"], "search.rel_tol")
    e = c["evaluation"]
    for key in ("batch_size", "time_repeats", "separation_samples", "analysis_samples"):
        _positive(e[key], f"evaluation.{key}", integer=True)
    _positive(e["threads"], "evaluation.threads", integer=True, allow_none=True)
    for key in ("sparsity_T", "separation_T", "match_reference_T"):
        for t in _list(e[key], f"evaluation.{key}"):
            _positive(t, f"evaluation.{key}", integer=True)
    for key in OPTIONAL["evaluation"]:
        if not isinstance(e.get(key, False), bool):
            raise InputError(f"evaluation.{key} must be true or false, got {e[key]!r}")
    k = c["classification"]
    _positive(k["projection_dim"], "classification.projection_dim", integer=True)
    _positive(k["C"], "classification.C")
    _positive(k["max_iter"], "classification.max_iter", integer=True)
    if not isinstance(c["targets"], list):
        raise InputError("targets must be a list")
    for i, target in enumerate(c["targets"]):
        if not isinstance(target, dict) or target.get("kind") not in TARGET_KINDS:
            raise InputError(f"targets[{i}] needs a kind among {', '.join(TARGET_KINDS)}")
        need = ("kind", "text", *TARGET_KINDS[target["kind"]])
        missing = [key for key in need if key not in target]
        extra = [key for key in target if key not in need]
        if missing or extra:
            raise InputError(f"targets[{i}] ({target['kind']}): missing {missing}, "
                             f"unknown {extra}")
        if target["kind"] == "psnr_mean_at_least" and target["baseline"] not in PSNR_BASELINES:
            raise InputError(f"targets[{i}].baseline must be one of "
                             f"{', '.join(PSNR_BASELINES)}, got {target['baseline']!r}")
        run_methods = (*CLASSIC, *learned)  # a target can only read what the run evaluates
        for key in ("method", "other"):
            if key in target and target[key] not in run_methods:
                raise InputError(f"targets[{i}].{key} must be one of the methods this config "
                                 f"runs ({', '.join(run_methods)}), got {target[key]!r}")
    c["kind"] = kind
    return c


def config_hash(config: dict, keys) -> str:
    """A short hash of the parts of ``config`` one step depends on (for resuming)."""
    part = {k: config[k] for k in keys}
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def evaluation_option(config: dict, key: str):
    """An optional evaluation setting (:data:`OPTIONAL`): the config's, else its default."""
    return config["evaluation"].get(key, OPTIONAL["evaluation"][key])


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
