"""One run-directory object for every resumable workflow.

A :class:`RunDir` holds:

- ``config.json``: the configuration the directory was made with. Opening it with another
  configuration is refused, naming the keys that differ (``ignore`` lists keys that may change,
  such as where a config file came from);
- ``provenance.json`` (package version, git commit, torch, Python) and ``seed.json``;
- step markers ``steps/<step>.json``, each keyed by a hash of the part of the configuration the
  step depends on: a marker whose key no longer matches counts as not done;
- atomic files (:mod:`lsalsa.io`): every write goes to a temporary beside its target, and
  temporaries left by killed runs are swept when the directory is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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


def differing_keys(saved: dict, new: dict, *, only=None, within=(), ignore=()) -> list[str]:
    """Where a stored configuration and a new one differ, compared as they read back from
    JSON: the top-level keys (``only`` of them, or all of either), each section named in
    ``within`` key by key (``"section.key"``); names in ``ignore`` (either form) are never
    compared. The one comparison behind every resumable folder: a run directory, a training
    run, a search and a dictionary-learning checkpoint, each with its own ``only``,
    ``within`` and ``ignore``."""
    saved, new = as_json(saved), as_json(new)
    keys = set(saved) | set(new) if only is None else set(only)
    differ = []
    for key in sorted(keys - set(ignore)):
        old, mine = saved.get(key), new.get(key)
        if key in within and isinstance(old or {}, dict) and isinstance(mine or {}, dict):
            old, mine = old or {}, mine or {}
            differ.extend(f"{key}.{name}" for name in sorted(set(old) | set(mine))
                          if f"{key}.{name}" not in ignore and old.get(name) != mine.get(name))
        elif old != mine:
            differ.append(key)
    return differ


class RunDir:
    """A run directory made with one configuration; see the module docstring."""

    CONFIG = "config.json"

    def __init__(self, path: str | os.PathLike, config: dict, *, seed: int | None = None,
                 ignore: tuple[str, ...] = (), what: str = "run directory",
                 hint: str = "choose another directory"):
        self.path = Path(path)
        self.config = config
        self.seed = seed
        self.ignore = frozenset(ignore)
        self.what = what
        self.hint = hint

    # -- opening -------------------------------------------------------------------------------
    def differences(self) -> list[str] | None:
        """The top-level keys where the stored config differs from this one; None when the
        directory holds no config yet."""
        stored = self.path / self.CONFIG
        if not stored.is_file():
            return None
        saved = read_json_object(stored, f"{self.what} config")
        return differing_keys(saved, self.config, ignore=self.ignore)

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
