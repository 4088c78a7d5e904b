"""One run-directory object for every resumable workflow.

A :class:`RunDir` holds:

- ``config.json``: the configuration the directory was made with. Opening it with another
  configuration is refused, naming the keys that differ (:func:`differing_keys`: which keys
  may change is declared on the fields of the configuration's model, such as where a config
  file came from);
- ``provenance.json`` (package version, git commit, torch, Python) and ``seed.json``;
- step markers ``steps/<step>.json``, each keyed by a hash of the part of the configuration the
  step depends on: a marker whose key no longer matches counts as not done;
- atomic files (:mod:`lsalsa.io`): every write goes to a temporary beside its target, and
  temporaries left by killed runs are swept when the directory is opened.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..io import read_json_object, remove_stale_temporaries, write_json
from ..version import provenance


def config_key(part) -> str:
    """A short hash of a JSON-able configuration (or part of one), for step markers."""
    text = json.dumps(part, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value):
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def as_json(value):
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value, default=_jsonable))


# How a stored configuration may differ in one key when its run continues: declared on the
# field of the configuration's model as ``metadata["resume"]``. Without a rule, equal.
FREE = "free"  # a description, or where a file came from: never compared


@dataclasses.dataclass(frozen=True)
class Section:
    """A section compared key by key (``"section.key"``); its ``free`` keys never."""

    free: tuple[str, ...] = ()


#: A rule of its own: ``(saved value, new value, new configuration) -> what differs or None``.
Rule = Callable[[object, object, dict], str | None]


def differing_keys(saved: dict, new: dict, model=None) -> list[str]:
    """Where a stored configuration and a new one differ, compared as they read back from
    JSON: every key of either, each by the rule its field of the dataclass ``model`` declares
    (``metadata["resume"]``: :data:`FREE`, a :class:`Section`, a :data:`Rule`; equal
    otherwise, and for every key without a model). The one comparison behind every
    resumable folder: a run directory, a training run, a search and a dictionary-learning
    checkpoint."""
    saved, new = as_json(saved), as_json(new)
    rules = {} if model is None else {f.name: f.metadata.get("resume")
                                      for f in dataclasses.fields(model)}
    differ = []
    for key in sorted(set(saved) | set(new)):
        rule, old, mine = rules.get(key), saved.get(key), new.get(key)
        if rule == FREE:
            continue
        if isinstance(rule, Section) and isinstance(old or {}, dict) \
                and isinstance(mine or {}, dict):
            old, mine = old or {}, mine or {}
            differ.extend(f"{key}.{name}" for name in sorted(set(old) | set(mine))
                          if name not in rule.free and old.get(name) != mine.get(name))
        elif callable(rule):
            reason = rule(old, mine, new)
            if reason:
                differ.append(reason)
        elif old != mine:
            differ.append(key)
    return differ


class RunDir:
    """A run directory made with one configuration; see the module docstring."""

    CONFIG = "config.json"

    def __init__(self, path: str | os.PathLike, config: dict, *, seed: int | None = None,
                 model=None, what: str = "run directory",
                 hint: str = "choose another directory"):
        self.path = Path(path)
        self.config = config
        self.seed = seed
        self.model = model  # the dataclass config is made from: its fields' resume rules
        self.what = what
        self.hint = hint

    # -- opening -------------------------------------------------------------------------------
    def differences(self) -> list[str] | None:
        """Where the stored config differs from this one (:func:`differing_keys`); None when
        the directory holds no config yet."""
        stored = self.path / self.CONFIG
        if not stored.is_file():
            return None
        saved = read_json_object(stored, f"{self.what} config")
        return differing_keys(saved, self.config, self.model)

    def open(self) -> RunDir:
        """Create the directory (or check it holds this configuration), sweep stale
        temporaries and record config, provenance and seed on first use."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.what} {self.path} exists and is not a directory")
        differ = self.differences()
        if differ:
            raise InputError(f"{self.what} {self.path} holds another configuration "
                             f"(differs in {', '.join(differ)}); {self.hint}")
        self.path.mkdir(parents=True, exist_ok=True)
        self.sweep()
        if differ is None:
            self.record()
        return self

    def record(self) -> None:
        """Write ``config.json``, ``provenance.json`` and (with a seed) ``seed.json``. Runs
        whose own rules allow a changed config (a training run's longer schedule, a search
        before its first trial) call this after their own check instead of :meth:`open`."""
        write_json(self.path / self.CONFIG, self.config)
        write_json(self.path / "provenance.json", provenance())
        if self.seed is not None:
            write_json(self.path / "seed.json", {"seed": self.seed})

    def sweep(self, *folders: str) -> None:
        """Remove temporaries that killed runs left (in the directory and ``folders``)."""
        for folder in (self.path, *(self.path / f for f in folders)):
            if folder.is_dir():
                remove_stale_temporaries(folder)

    # -- step markers --------------------------------------------------------------------------
    def marker(self, step: str) -> Path:
        return self.path / "steps" / f"{step}.json"

    def done(self, step: str, depends_on=None) -> bool:
        """Whether ``step`` finished, with the same ``depends_on`` part of the config."""
        marker = self.marker(step)
        if not marker.is_file():
            return False
        if depends_on is None:
            return True
        return self.read_marker(step).get("key") == config_key(depends_on)

    def read_marker(self, step: str) -> dict:
        return read_json_object(self.marker(step), f"step marker {step}")

    def mark(self, step: str, seconds: float, depends_on=None, **info) -> None:
        record = {"step": step, "seconds": seconds,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        if depends_on is not None:
            record["key"] = config_key(depends_on)
        write_json(self.marker(step), record)
