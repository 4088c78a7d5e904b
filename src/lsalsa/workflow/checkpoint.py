"""Checkpoints without pickle, one format for every resumable loop: one safetensors file,
its tensors in the body and the loop's state as JSON in its header, tagged with its ``kind``
(:func:`write_checkpoint`, :func:`read_checkpoint`).

Everything sits in ONE file written atomically (:func:`lsalsa.io.write_safetensors`), so a
process killed at any moment leaves either the previous checkpoint or the new one, never a mix.
The file stores the sha256 of every tensor and of its header: a damaged checkpoint is refused,
never resumed into a different run.

- ``training`` (:func:`save_checkpoint`, :func:`load_checkpoint`): the model's state dict,
  the optimizer's state (its tensors flattened into the body, everything else - step counts,
  the hyperparameters of the param groups - as JSON), further named tensor sets (the
  trainer's best-epoch weights and its anchor), the shuffling generator's state (base64 of its
  bytes), the epoch and the history.
- ``dictionary`` (:mod:`lsalsa.workflow.dictionaries`): the dictionary, the Lipschitz
  tracker's vector and the code cache, with the run's config, epoch, step and history.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import torch

from ..checks import is_integer, is_number
from ..errors import InputError
from ..io import read_safetensors, verify_header, verify_tensors, write_safetensors

FORMAT = "lsalsa-checkpoint"
# 2: named tensor sets (best epoch, anchor); 3: checksums; 4: a kind (dictionary checkpoints).
# Version 3 is read too: it held only training checkpoints, in the same layout.
FORMAT_VERSION = 4
READ_VERSIONS = ("3", "4")
KINDS = {"training": "training", "dictionary": "dictionary-learning"}  # kind -> its name


def write_checkpoint(path: str | os.PathLike, kind: str, tensors: dict[str, torch.Tensor],
                     state: dict, meta: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (any device: :func:`lsalsa.io.write_safetensors` takes CPU copies)
    and ``state`` (strict JSON; ``meta``: further header strings) as a checkpoint of ``kind``
    to ``path``, atomically and sealed."""
    try:
        text = json.dumps(state, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise InputError(f"the checkpoint state for {path} holds NaN or Inf; nothing was "
                         "written") from exc
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind,
                "state": text, **(meta or {})}
    write_safetensors(path, tensors, metadata)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, kind: str
                    ) -> tuple[dict[str, torch.Tensor], dict, dict[str, str]]:
    """``(tensors, state, header)`` of a checkpoint of ``kind``, its checksums verified; the
    state is a JSON object, for the caller to check field by field."""
    what = f"{KINDS[kind]} checkpoint"
    tensors, metadata = read_safetensors(path, what)
    if metadata.get("format") != FORMAT:
        raise InputError(f"{path} is not an lsalsa {what}")
    version = metadata.get("format_version")
    if version not in READ_VERSIONS:
        raise InputError(f"{what} {path} has format version {version!r}; this lsalsa reads "
                         f"{' and '.join(READ_VERSIONS)} (start the run afresh)")
    if metadata.get("kind", "training" if version == "3" else None) != kind:
        raise InputError(f"{path} is a {KINDS.get(metadata.get('kind'), 'foreign')} "
                         f"checkpoint, not a {what}")
    verify_header(path, what, metadata)
    verify_tensors(path, what, tensors, metadata)
    try:
        state = json.loads(metadata["state"])
    except (KeyError, ValueError, RecursionError) as exc:
        raise InputError(f"{what} {path} has a malformed header: {exc!r}") from exc
    if not isinstance(state, dict):
        raise InputError(f"{what} {path} has a malformed header: its state is not an object")
    return tensors, state, metadata


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``optim.<param>.<key>``) and JSON."""
    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
              for group in state_dict["param_groups"]]
    return tensors, {"scalars": scalars, "param_groups": groups}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`flatten_optimizer`: a dict ``optimizer.load_state_dict`` accepts."""
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if "betas" in group:  # Adam's betas are a tuple; JSON gave a list back
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def generator_state(generator: torch.Generator | torch.Tensor) -> str:
    """A generator's state (or the state tensor ``get_state()`` gave) as base64 text."""
    state = generator.get_state() if isinstance(generator, torch.Generator) else generator
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def read_generator_state(text: str) -> torch.Tensor:
    """The state tensor (for ``torch.Generator.set_state``) of :func:`generator_state`'s text."""
    raw = base64.b64decode(text.encode("ascii"))
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def _check_state(state) -> None:
    """The trainer's fields of ``state``, so that even a consistent file (its checksums match)
    that lsalsa did not write fails here in one line, not half-way through a resume."""
    if not isinstance(state, dict):
        raise TypeError("the state is not a JSON object")
    history, scales, generator = (state.get(k) for k in ("history", "scales", "generator"))
    problems = [
        ("epoch", is_integer(state.get("epoch"), 0)),
        ("best_epoch", is_integer(state.get("best_epoch"), 0)
         and state["best_epoch"] <= state.get("epoch", -1)),
        # One entry per epoch, from epoch 0 (the untrained encoder) on.
        ("history", isinstance(history, list) and all(isinstance(e, dict) for e in history)
         and [e.get("epoch") for e in history] == list(range(len(history)))
         and len(history) == (state.get("epoch") if is_integer(state.get("epoch"), 0) else -1) + 1),
        ("stopped", isinstance(state.get("stopped"), str)),
        ("scales", isinstance(scales, dict) and all(is_number(v) and v > 0
                                                    for v in scales.values())),
        ("generator", isinstance(generator, str)),
    ]
    bad = [name for name, ok in problems if not ok]
    if not bad:
        try:
            raw = base64.b64decode(generator.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != torch.Generator().get_state().numel():
            bad.append("generator")
    if bad:
        raise ValueError(f"bad or missing state fields: {', '.join(bad)}")


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module | dict,
                    optimizer: torch.optim.Optimizer | dict, state: dict,
                    extra: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write model + optimizer (the objects or their ``state_dict()``) + ``state``
    (JSON-serialisable scalars) + ``extra`` (named sets of tensors, e.g.
    ``{"best": state_dict}``) atomically."""
    if isinstance(model, torch.nn.Module):
        model = model.state_dict()
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.items()}
    for group, named in (extra or {}).items():
        if "." in group or group in ("model", "optim"):
            raise ValueError(f"bad tensor set name {group!r}")
        tensors.update({f"{group}.{k}": v for k, v in named.items()})
    optim_tensors, optim_meta = flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    return write_checkpoint(path, "training", tensors, state,
                            {"optimizer": json.dumps(optim_meta, sort_keys=True)})


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict, dict, dict]:
    """Read a checkpoint, verified: ``(model_state_dict, optimizer_state_dict, state, extra)``."""
    tensors, state, metadata = read_checkpoint(path, "training")
    try:
        optim_meta = json.loads(metadata["optimizer"])
        _check_state(state)
        sets: dict[str, dict[str, torch.Tensor]] = {}
        for name, tensor in tensors.items():
            group, _, key = name.partition(".")
            sets.setdefault(group, {})[key] = tensor
        model = sets.pop("model", {})
        optim = unflatten_optimizer(
            {f"optim.{k}": v for k, v in sets.pop("optim", {}).items()}, optim_meta)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # A consistent file (its checksums match) that this lsalsa did not write.
        raise InputError(f"checkpoint {path} has a malformed header: {exc!r}") from exc
    return model, optim, state, sets
