"""Configuration files: the shipped ones, a JSON file's base merged with one scale's
overrides, loaded into an :class:`~lsalsa.workflow.config.experiment.ExperimentConfig`."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

from ... import checks
from ...errors import InputError
from .experiment import FILE_KEYS, ExperimentConfig, check_keys
from .sections import SCALES


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
    check_keys(raw, "config", FILE_KEYS)
    scales = raw.get("scales", {})
    if not isinstance(scales, dict) or any(k not in SCALES for k in scales):
        raise InputError(f"config {origin}: 'scales' may only hold {', '.join(SCALES)}")
    for name, override in scales.items():
        if not isinstance(override, dict):
            raise InputError(f"config {origin}: scales.{name} must be an object")
        check_keys(override, f"scales.{name}", FILE_KEYS)
    # A config without its own small scale is already small; one that never says how to
    # train until convergence must not run as if it did.
    if scale not in ("small", "full") and scale not in scales:
        raise InputError(f"config {origin} has no scale {scale} (it has full"
                         f"{''.join(', ' + name for name in scales if name != 'full')})")
    base = {k: v for k, v in raw.items() if k != "scales"}
    merged = {k: v for k, v in merge(base, scales.get(scale, {})).items() if k != "scales"}
    return ExperimentConfig.from_dict({**merged, "scale": scale, "origin": origin})


def load_config(name_or_path: str | Path, scale: str = "full") -> dict:
    """The validated configuration at ``scale`` as JSON, defaults filled in.

    The result has ``scale``, ``origin`` and ``kind`` keys added and ``scales`` removed; it is
    what a run directory records in ``config.json``.
    """
    return load_experiment(name_or_path, scale).to_dict()

