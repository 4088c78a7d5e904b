"""An encoder's model file, declared once: safetensors holding the weights, the dictionary
and a JSON config (:data:`CONFIG_KEYS`, each field's constraint in :data:`CONFIG_FIELDS`) in
the header's metadata, sealed by a sha256 of every tensor and of the header. Reading verifies
them and checks the config (all faults in one line); nothing is ever unpickled.
:func:`~lsalsa.core.encoders.load_encoder` builds the encoder from what it reads."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from ... import checks
from ...errors import InputError
from ...io import read_safetensors, verify_header, verify_tensors, write_safetensors
from ...version import __version__
from .settings import KINDS

FORMAT = "lsalsa-encoder"
# 2: LSALSA stores the scaled operators W, S (version 1 stored W_e, S_p); 3: checksums of every
# tensor and of the header
FORMAT_VERSION = 3

# Run time is linear in T, and the paper's encoders (and this project's grids) have at most
# hundreds of layers: a depth beyond this can only come from a damaged or edited file, and one
# of 1e9 would make ``encode`` run for days.
MAX_DEPTH = 10_000
CONFIG_KEYS = ("format", "format_version", "kind", "depth", "mu", "alphas", "block_sizes", "M",
               "N", "untied", "learn_thresholds", "dtype", "dictionary_hash", "lsalsa_version")
DTYPES = ("float32", "float64")


def _block_sizes(value, name: str) -> list:
    if not isinstance(value, list) or not value \
            or not all(checks.is_integer(b, 1) for b in value):
        raise InputError(f"{name} must be a list of integers >= 1, got {value!r}")
    return value


def _alpha_list(value, name: str) -> list:
    if not isinstance(value, list) or not all(checks.is_number(a) and a >= 0 for a in value):
        raise InputError(f"{name} must be a list of finite numbers >= 0, got {value!r}")
    return value


#: The constraint on each field of a model config (a bool is not a number here).
CONFIG_FIELDS = {
    "depth": partial(checks.integer, low=1, high=MAX_DEPTH),
    "M": checks.positive_int,
    "N": checks.positive_int,
    "block_sizes": _block_sizes,
    "alphas": _alpha_list,
    "untied": checks.flag,
    "learn_thresholds": checks.flag,
    "dtype": partial(checks.one_of, choices=DTYPES),
    "dictionary_hash": checks.text,
    "lsalsa_version": checks.text,
}


def check_config(path, config: dict) -> None:
    """Every field's constraint, then what ties them together; all faults in one line."""
    missing, unknown = set(CONFIG_KEYS) - set(config), set(config) - set(CONFIG_KEYS)
    if missing or unknown:
        parts = [f"{what} {', '.join(sorted(keys))}" for what, keys in
                 (("missing", missing), ("unknown", unknown)) if keys]
        raise InputError(f"{path}: the model config has the wrong fields ({'; '.join(parts)})")
    if config["kind"] not in KINDS:
        raise InputError(f"{path}: unknown encoder kind {config['kind']!r}")
    faults = {name: checks.fault(check, config[name], name)
              for name, check in CONFIG_FIELDS.items()}
    problems = [message for message in faults.values() if message]
    blocks, alphas = config["block_sizes"], config["alphas"]
    if not faults["block_sizes"] and not faults["N"] and sum(blocks) != config["N"]:
        problems.append(f"block sizes {blocks} do not add up to N = {config['N']}")
    if not faults["block_sizes"] and not faults["alphas"] and len(alphas) != len(blocks):
        problems.append(f"{len(alphas)} alphas for {len(blocks)} dictionaries")
    mu = config["mu"]
    if config["kind"] == "lsalsa" and not (checks.is_number(mu) and mu > 0):
        problems.append(f"an LSALSA config needs a finite numeric mu > 0, got {mu!r}")
    if config["kind"] == "lista" and mu is not None:
        problems.append(f"a LISTA config has no mu, got {mu!r}")
    if problems:
        raise InputError(f"{path} has an invalid model config: {'; '.join(problems)}")


def write_model(path, state: dict, config: dict, extra: dict | None = None) -> Path:
    """Write the tensors ``state`` with ``config`` (and ``extra``, a JSON object) in the
    header to one safetensors file, atomically, sealed by its checksums."""
    try:
        metadata = {"lsalsa_config": json.dumps(config, sort_keys=True, allow_nan=False)}
        if extra:
            metadata["lsalsa_extra"] = json.dumps(extra, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise InputError(f"the model's header for {path} holds NaN or Inf; nothing was "
                         "written") from exc
    write_safetensors(path, state, metadata)
    return Path(path)


def read_model(path, tensors: bool) -> tuple[dict, dict, dict]:
    """``(config, extra, tensors)`` of a model file, its header verified and checked."""
    file = Path(path)
    if file.is_dir():
        raise InputError(f"model path {path} is a folder, not a model file")
    if not file.is_file():
        raise InputError(f"model file not found: {path}")
    loaded, metadata = read_safetensors(file, "model file", tensors=tensors)
    if "lsalsa_config" not in metadata:
        raise InputError(f"{path} is a safetensors file but not an lsalsa model")
    try:
        config = json.loads(metadata["lsalsa_config"])
        extra = json.loads(metadata.get("lsalsa_extra", "{}"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path} has a corrupt model config: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(extra, dict):
        raise InputError(f"{path} has a corrupt model config: not a JSON object")
    if config.get("format") != FORMAT:
        raise InputError(f"{path} is not an lsalsa encoder (format {config.get('format')!r})")
    version = config.get("format_version")
    if not checks.is_integer(version, FORMAT_VERSION, FORMAT_VERSION):
        raise InputError(f"{path} has model format version {version!r}; this lsalsa "
                         f"({__version__}) reads version {FORMAT_VERSION} (retrain older "
                         "models)")
    verify_header(path, "model file", metadata)
    check_config(path, config)
    if tensors:
        verify_tensors(path, "model file", loaded, metadata)
    return config, extra, loaded


def read_model_header(path: str | os.PathLike) -> tuple[dict, dict]:
    """The ``(config, extra)`` stored in a model file, verified, without loading the weights."""
    config, extra, _ = read_model(path, tensors=False)
    return config, extra

