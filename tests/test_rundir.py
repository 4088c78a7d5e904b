"""The one comparison of a stored configuration with a new one (workflow.rundir)."""

from __future__ import annotations

import pytest

from lsalsa import InputError
from lsalsa.workflow.rundir import RunDir, differing_keys


def test_differing_keys_names_top_level_keys_and_sections_key_by_key():
    saved = {"a": 1, "b": [1, 2], "s": {"x": 1, "y": 2, "z": 3}, "gone": 0}
    new = {"a": 1, "b": (1, 2), "s": {"x": 1, "y": 5, "w": 4}, "added": 0}
    # Compared as read back from JSON: a tuple equals its list.
    assert differing_keys(saved, new) == ["added", "gone", "s"]
    assert differing_keys(saved, new, within=("s",)) == ["added", "gone", "s.w", "s.y", "s.z"]
    assert differing_keys(saved, new, only=("a", "b", "s"), within=("s",),
                          ignore=("s.w", "s.z")) == ["s.y"]
    assert differing_keys(saved, new, ignore=("added", "gone", "s")) == []
    # A section missing on one side is compared key by key against an empty one.
    assert differing_keys({}, {"s": {"x": 1}}, within=("s",)) == ["s.x"]
    assert differing_keys({"s": 3}, {"s": {"x": 1}}, within=("s",)) == ["s"]


def test_a_run_directory_with_another_configuration_is_refused_by_name(tmp_path):
    RunDir(tmp_path / "run", {"alpha": 0.1, "mu": 2.0, "origin": "a.json"}).open()
    # Reopening with the same configuration, or one differing only where allowed, works.
    RunDir(tmp_path / "run", {"alpha": 0.1, "mu": 2.0, "origin": "b.json"},
           ignore=("origin",)).open()
    with pytest.raises(InputError, match=r"differs in alpha, origin\)"):
        RunDir(tmp_path / "run", {"alpha": 0.2, "mu": 2.0, "origin": "b.json"}).open()
