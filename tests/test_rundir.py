"""The one comparison of a stored configuration with a new one (workflow.rundir)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lsalsa import InputError
from lsalsa.workflow.rundir import FREE, RunDir, Section, differing_keys


def _more_only(saved, new, config):
    return None if (saved or 0) <= new else "n (may only grow)"


@dataclass(frozen=True)
class Stored:
    """A stored configuration's model: each field's rule for a continued run."""

    s: dict = field(metadata={"resume": Section(free=("w", "z"))})
    origin: str = field(metadata={"resume": FREE})
    n: int = field(metadata={"resume": _more_only})
    a: int = 0  # no rule: equal


def test_differing_keys_follows_the_rules_declared_on_the_fields():
    saved = {"a": 1, "b": [1, 2], "s": {"x": 1, "y": 2, "z": 3}, "gone": 0, "origin": "a",
             "n": 3}
    new = {"a": 1, "b": (1, 2), "s": {"x": 1, "y": 5, "w": 4}, "added": 0, "origin": "b",
           "n": 4}
    # Without a model every key of either must be equal, compared as read back from JSON
    # (a tuple equals its list).
    assert differing_keys(saved, new) == ["added", "gone", "n", "origin", "s"]
    # With one: a section key by key but its free keys, a free key never, a rule of its own;
    # keys the model does not declare must still be equal.
    assert differing_keys(saved, new, Stored) == ["added", "gone", "s.y"]
    assert differing_keys({**saved, "n": 5}, new, Stored) == [
        "added", "gone", "n (may only grow)", "s.y"]
    # A section missing on one side is compared key by key against an empty one.
    assert differing_keys({"n": 0}, {"s": {"x": 1}, "n": 0}, Stored) == ["s.x"]
    assert differing_keys({"s": 3, "n": 0}, {"s": {"x": 1}, "n": 0}, Stored) == ["s"]


def test_a_run_directory_with_another_configuration_is_refused_by_name(tmp_path):
    RunDir(tmp_path / "run", {"alpha": 0.1, "mu": 2.0, "origin": "a.json"}).open()
    # Reopening with the same configuration, or one differing only where allowed, works.
    RunDir(tmp_path / "run", {"alpha": 0.1, "mu": 2.0, "origin": "b.json"},
           model=Stored).open()
    with pytest.raises(InputError, match=r"differs in alpha, origin\)"):
        RunDir(tmp_path / "run", {"alpha": 0.2, "mu": 2.0, "origin": "b.json"}).open()
