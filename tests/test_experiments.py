"""Experiments: configs, metrics, target checks, and the whole pipeline on a tiny data set."""

from __future__ import annotations

import gzip
import json
import math
import re
import struct

import numpy as np
import pytest
import torch

from _numerics import gamma, iteration_error
from lsalsa.cli import main
from lsalsa.core import metrics
from lsalsa.errors import InputError
from lsalsa.workflow.config import (
    TARGET_KINDS,
    alpha_grid,
    dense_depths,
    load_config,
    load_experiment,
    shipped,
)
from lsalsa.workflow.data import load_prepared
from lsalsa.workflow.pipeline import STEPS, run_experiment
from lsalsa.workflow.report import document as report_module
from lsalsa.workflow.report import tables as report_tables
from lsalsa.workflow.report.document import fmt
from lsalsa.workflow.results_table import read_tidy, tidy_records
from lsalsa.workflow.results_view import ResultsView
from lsalsa.workflow.targets import (
    CHECKS,
    count_verdict,
    describe_count,
    evaluate_targets,
    first_unevaluated,
    grid_step,
    ratio_verdict,
)

# -- configs ----------------------------------------------------------------------------------


def test_shipped_configs_load_at_both_scales():
    names = shipped()
    assert {"fashion-mnist", "asirra", "mca-mnist-asirra", "natural-16",
            "mca-mnist-natural"} <= set(names)
    for name in names:
        small, full = (load_config(name, s) for s in ("small", "full"))
        assert full["depths"] == [1, 2, 5, 10, 20, 50, 100]
        assert set(small["depths"]) <= set(full["depths"])
        assert small["scale"] == "small" and "scales" not in small
        blocks = 2 if full["kind"] == "mca" else 1
        assert len(full["alphas"]) == len(full["dictionary"]["atoms"]) == blocks


def test_alpha_grid_scales_each_component():
    config = load_experiment("mca-mnist-natural", "full")
    grid = alpha_grid(config)
    assert [0.0625, 0.1] in grid  # factor 0.5 on both
    assert [0.0625, 0.2] in grid  # factor [0.5, 1]: alpha_1 alone halved
    # Every count is evaluated: iterations to match are exact counts, not upper bounds.
    assert dense_depths(config) == list(range(1, config.dense_max + 1))


def _write_config(tmp_path, **changes) -> str:
    base = {"name": "bad", "dataset": "fashion-mnist-10", "alphas": [0.15],
            "dictionary": {"atoms": [100]}}
    base.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base))
    return str(path)


@pytest.mark.parametrize("changes, message", [
    ({"alphas": [0.1, 0.2]}, "alphas needs 1"),
    ({"colour": 1}, "unknown key 'colour'"),
    ({"search": {"lr": [0.1]}}, "search: unknown key 'lr'"),
    ({"dataset": "nope"}, "dataset must be one of"),
    ({"depths": [1, 1]}, "must not repeat"),
    ({"depths": [1, 300]}, "dense_max"),
    ({"search": {"val_fraction": 1.5}}, "val_fraction"),
    ({"search": {"lrs": {"ista": [0.1]}}}, "search.lrs"),
    ({"search": {"lrs": [0.1, 1e300]}}, "search.lrs must be a number in (0, 1e+06]"),
    ({"search": {"learned": ["lista"]}}, "search.learned"),
    ({"search": {"learned": ["lsalsa"]}, "targets": [
        {"kind": "rmse_ratio", "method": "lsalsa", "other": "lista", "T": [1], "at_most": 1.0,
         "text": "t"}]}, "targets[0].other"),
    ({"search": {"max_train": 0}}, "search.max_train"),
    ({"search": {"threshold_lrs": [0.1, 0.0]}}, "search.threshold_lrs"),
    ({"search": {"threshold_lrs": []}}, "search.threshold_lrs"),
    ({"targets": [{"kind": "time_ratio", "text": "x"}]}, "missing"),
    ({"targets": [{"kind": "psnr_mean_at_least", "text": "x", "method": "lsalsa", "T": [1],
                   "baseline": None}]}, "targets[0] (psnr_mean_at_least): baseline must not be"),
    ({"scales": {"huge": {}}}, "scales"),
    ({"name": "../../../x"}, "plain name"),  # the run folder is named after it
    ({"name": "a/b"}, "plain name"),
    ({"name": ".hidden"}, "plain name"),
    ({"evaluation": {"time_exact_codes": 1}}, "evaluation.time_exact_codes must be true or false"),
    ({"evaluation": {"time_exact": True}}, "evaluation: unknown key 'time_exact'"),
])
def test_bad_configs_are_refused_with_the_field_named(tmp_path, changes, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(_write_config(tmp_path, **changes), "small")


def test_optional_evaluation_keys_stay_out_of_configs_that_do_not_set_them(tmp_path):
    """config.json and results.json of the shipped experiments keep their keys: an optional
    key appears only where a config sets it, and reads as its default elsewhere."""
    from lsalsa.workflow.config import OPTIONAL, ExperimentConfig

    plain = load_config("mca-mnist-natural", "small")
    assert not set(OPTIONAL["evaluation"]) & set(plain["evaluation"])
    assert ExperimentConfig.from_dict(plain).evaluation.time_exact_codes is False
    mine = load_config(_write_config(tmp_path, evaluation={"time_exact_codes": True}), "small")
    assert mine["evaluation"]["time_exact_codes"] is True
    assert ExperimentConfig.from_dict(mine).evaluation.baseline_code_rmse is False


def test_bad_config_files_and_names(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_config(str(broken))
    with pytest.raises(InputError, match="unknown experiment"):
        load_config("no-such-experiment")
    with pytest.raises(InputError, match="scale"):
        load_config("fashion-mnist", "medium")
    assert main(["experiment", "run", str(broken), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_a_run_whose_training_diverged_exits_1_as_lsalsa_train_does(tmp_path, capsys,
                                                                    monkeypatch):
    """One rule for every command that trains: it finishes, each model keeping its best epoch,
    and exits 1 with one warning line (cli's error mapping, TrainingDiverged)."""
    from lsalsa.workflow import pipeline

    def finished_run(config_name, run_dir, **options):
        training = {"lista_T1": {"stopped": "max_epochs"}, "lsalsa_T1": {"stopped": "diverged"}}
        (tmp_path / "results.json").write_text(json.dumps({"training": training}))
        return tmp_path

    monkeypatch.setattr(pipeline, "run_experiment", finished_run)
    assert main(["experiment", "run", "fashion-mnist", "--scale", "small",
                 "--run-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "report.md")
    err = captured.err.strip()
    assert err.startswith("lsalsa: warning: training diverged for lsalsa_T1;") and "\n" not in err


def test_experiment_list(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in shipped())


def test_report_of_a_folder_without_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


@pytest.mark.parametrize("results, message", [
    ([1], "not a JSON object"),
    ({"kind": "sc"}, "missing name, scale, dataset, description"),
    ("{}", "not a JSON object"),
])
def test_report_refuses_a_malformed_results_json(tmp_path, capsys, results, message):
    # [1] and {"kind": "sc"} were TypeError and KeyError tracebacks.
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # nothing written


def test_report_names_a_results_field_of_the_wrong_type(tmp_path, capsys):
    from lsalsa.workflow.report.document import REQUIRED

    results = {key: {} if kind is dict else [] if kind is list else 1
               for key, kind in REQUIRED.items()}
    results["methods"] = [1]
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["report", str(tmp_path)]) == 2
    assert "(methods is not a JSON object)" in capsys.readouterr().err


# -- metrics ----------------------------------------------------------------------------------


def test_rmse_and_sparsity_per_sample():
    optimal = np.array([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    estimate = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    np.testing.assert_allclose(metrics.rmse_per_sample(estimate, optimal),
                               [math.sqrt(5 / 4), math.sqrt(9 / 4)])
    np.testing.assert_allclose(metrics.sparsity_per_sample(estimate), [0.5, 0.75])


def test_psnr_iterations_to_match_and_features():
    truth = np.zeros((2, 4))
    assert metrics.psnr(truth + 0.1, truth) == pytest.approx(20.0)
    assert metrics.iterations_to_match([1, 2, 5, 10], [0.5, 0.3, 0.2, 0.1], 0.2) == 5
    assert metrics.iterations_to_match([1, 2], [0.5, 0.3], 0.2) is None
    codes = np.arange(12).reshape(6, 2)
    features = metrics.image_features(codes, np.array([0, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(features[1], [6, 7, 8, 9, 10, 11])
    for index, message in [([0, 0, 1, 1, 1, 1], "same number of patches"),
                           ([0, 0, 0, 1, 1], r"\(P, N\) and \(P,\)"),
                           ([1, 1, 1, 0, 0, 0], "never decrease")]:
        with pytest.raises(InputError, match=message):
            metrics.image_features(codes, np.array(index))


def test_expert_classifier_projects_long_features(rng):
    labels = np.repeat([0, 1], 30)
    features = rng.standard_normal((60, 800)) + 3.0 * labels[:, None]
    clf = metrics.ExpertClassifier(projection_dim=50, seed=1)
    assert clf.fit(features, labels) == 0.0
    assert clf.projection.shape == (50, 800)
    # Codes with the class signal removed are recognised no better than chance-ish.
    assert clf.error(features - 3.0 * labels[:, None], labels) >= 0.3


def _fake_results(lsalsa_rmse, salsa_rmse, match_iterations):
    methods = {m: {} for m in ("fista", "salsa", "lista", "lsalsa")}
    for T, (a, b) in enumerate(zip(lsalsa_rmse, salsa_rmse, strict=True), start=1):
        for m in methods:
            methods[m][str(T)] = {"rmse_mean": a if m == "lsalsa" else b, "seconds": 0.1}
    return {"methods": methods, "dense_max": 200, "classification": None, "psnr": None,
            "match": {"1": {"lsalsa_seconds": 0.1,
                            "fista": {"iterations": match_iterations, "seconds": 2.0,
                                      "time_ratio": 20.0},
                            "salsa": {"iterations": None}}}}


def test_every_target_kind_has_its_check():
    assert list(CHECKS) == list(TARGET_KINDS)


def test_targets_met_and_missed():
    results = _fake_results([0.1, 0.05], [0.2, 0.04], 12)
    targets = [
        {"kind": "iterations_to_match", "method": "fista", "reference_T": 1, "more_than": 15,
         "text": "a"},
        {"kind": "iterations_to_match", "method": "salsa", "reference_T": 1, "more_than": 5,
         "text": "b"},
        {"kind": "rmse_below", "method": "lsalsa", "other": "salsa", "below_T": 50,
         "text": "c"},
        {"kind": "lowest_classification_error", "method": "lsalsa", "text": "d"},
        {"kind": "time_ratio", "method": "fista", "reference_T": 1, "at_least": 10,
         "text": "e"},
        {"kind": "time_ratio", "method": "fista", "reference_T": 1, "at_least": 30,
         "text": "f"},
    ]
    out = evaluate_targets(targets, results)
    assert [t["status"] for t in out] == ["missed", "met", "missed", "n/a", "met", "missed"]
    assert out[4]["values"] == {"ratio": 20.0, "seconds": 2.0, "lsalsa_seconds": 0.1}
    assert "missed by 4" in out[0]["measured"]
    assert "T = 2" in out[2]["measured"]


def test_a_method_that_never_matches_decides_only_what_its_horizon_can():
    """Not reached within dense_max = 200 iterations: it needs at least 201, so "more than 50"
    is met but "more than 500" is not decided; the time at 200 iterations is a lower bound,
    which shows a ratio target met or leaves it open, never missed."""
    results = _fake_results([0.1], [0.2], 12)
    results["match"]["1"]["salsa"] = {"iterations": None, "timed_at": 200, "seconds": 0.8,
                                      "time_ratio": 8.0}
    targets = [
        {"kind": "iterations_to_match", "method": "salsa", "reference_T": 1, "more_than": m,
         "text": str(m)} for m in (50, 200, 500)] + [
        {"kind": "time_ratio", "method": "salsa", "reference_T": 1, "at_least": r,
         "text": str(r)} for r in (5, 100)]
    out = evaluate_targets(targets, results)
    assert [t["status"] for t in out] == ["met", "met", "n/a", "met", "n/a"]
    assert "8x or more" in out[3]["measured"]
    assert count_verdict(None, 200, 500) is None
    assert count_verdict(12, 200, 15) is False
    assert ratio_verdict(3.0, True, 5) is False
    assert ratio_verdict(3.0, False, 5) is None
    # A results.json from before the horizon was timed: nothing to decide the ratio on.
    results["match"]["1"]["salsa"] = {"iterations": None}
    assert evaluate_targets(targets[3:4], results)[0]["status"] == "n/a"


def test_salsa_by_psnr_takes_the_grid_setting_of_best_mean_psnr(rng):
    """Against a brute force over the grid with lsalsa.solve: per depth, the (alpha, mu) whose
    SALSA(T) components have the best mean PSNR."""
    import lsalsa

    A1, A2 = rng.standard_normal((16, 10)), rng.standard_normal((16, 10))
    A1 /= np.linalg.norm(A1, axis=0)
    A2 /= np.linalg.norm(A2, axis=0)
    X1 = rng.standard_normal((40, 10)) * (rng.random((40, 10)) < 0.2)
    X2 = rng.standard_normal((40, 10)) * (rng.random((40, 10)) < 0.2)
    truth = [X1 @ A1.T, X2 @ A2.T]
    Y = truth[0] + truth[1]
    settings = [{"alpha": [a, b], "mu": mu} for a, b in ((0.05, 0.05), (0.2, 0.4), (0.4, 0.1))
                for mu in (0.5, 2.0)]
    chosen = metrics.salsa_by_psnr(Y, truth, [A1, A2], settings, [1, 4])
    for T in (1, 4):
        scores = []
        for s in settings:
            X = lsalsa.solve(Y, [A1, A2], s["alpha"], method="salsa", n_iter=T,
                             mu=s["mu"]).codes
            scores.append(np.mean([metrics.psnr(X[:, :10] @ A1.T, truth[0]),
                                   metrics.psnr(X[:, 10:] @ A2.T, truth[1])]))
        best = settings[int(np.argmax(scores))]
        assert (chosen[T]["alpha"], chosen[T]["mu"]) == (best["alpha"], best["mu"])
        assert chosen[T]["val_psnr_mean"] == pytest.approx(max(scores), rel=1e-9)


def test_the_psnr_target_reads_the_baseline_it_names():
    results = _fake_results([0.1], [0.2], 12)
    results["psnr"] = {"lsalsa": {"1": [20.0, 21.0]}}
    results["optimal"] = {"salsa_best_psnr": {"1": {"alpha": [0.1, 0.2], "mu": 2.0,
                                                   "psnr_mean": 20.0}},
                          "salsa_best_psnr_any_alpha": {"1": {"alpha": [0.05, 0.2], "mu": 1.0,
                                                             "psnr_mean": 21.0}}}
    targets = [{"kind": "psnr_mean_at_least", "method": "lsalsa", "T": [1], "baseline": b,
                "text": b} for b in ("codes_alphas", "any_alpha")]
    out = evaluate_targets(targets, results)
    assert [t["status"] for t in out] == ["met", "missed"]
    assert "by 0.50 dB" in out[1]["measured"] and "alpha 0.05/0.2" in out[1]["measured"]


def test_counts_read_from_a_grid_with_gaps_are_upper_bounds():
    """Runs made before the dense grid was dense stepped by 5 above T = 20: a count read
    there is an upper bound, and the targets and tables say so."""
    old_grid = [*range(1, 21), 25, 30, 35, 40, 50]
    assert grid_step(old_grid, 12) is None
    assert grid_step(old_grid, 40) == 5
    assert grid_step(list(range(1, 51)), 40) is None
    assert first_unevaluated(old_grid) == 21
    assert describe_count(40, 5) == "40 (upper bound: grid step 5)"
    results = _fake_results([0.1], [0.2], 40)
    results["dense"] = {m: {"T": old_grid, "rmse_mean": [0.3] * len(old_grid)}
                        for m in ("fista", "salsa")}
    targets = [
        *({"kind": "iterations_to_match", "method": "fista", "reference_T": 1, "more_than": m,
           "text": str(m)} for m in (15, 30, 45)),
        *({"kind": "time_ratio", "method": "fista", "reference_T": 1, "at_least": r,
           "text": str(r)} for r in (10, 30)),
    ]
    out = evaluate_targets(targets, results)
    # needs 21..40: more than 15 for sure, more than 30 undecided, more than 45 missed; the
    # time at 40 iterations only bounds the ratio from above.
    assert [t["status"] for t in out] == ["met", "n/a", "missed", "n/a", "missed"]
    assert "upper bound: grid step 5" in out[0]["measured"]
    assert "upper bound: grid step 5" in out[3]["measured"]
    view = ResultsView.of(results)
    assert report_tables._grid_note(view, "fista", 40) == "upper bound (grid step 5)"
    assert report_tables._grid_note(view, "fista", 12) == "exact"
    assert "upper bound" in report_module._grid_text({**results, "dense_max": 50})[1]
    results["dense"] = {m: {"T": list(range(1, 51)), "rmse_mean": [0.3] * 50}
                        for m in ("fista", "salsa")}
    assert report_tables._grid_note(ResultsView.of(results), "fista", 40) == "exact"
    assert [t["status"] for t in evaluate_targets(targets, results)] == [
        "met", "met", "missed", "met", "missed"]


def test_report_states_no_unmeasured_optimizer_claim():
    search = {"epochs": 2, "final_epochs": 8, "batch_size": 64, "val_fraction": 0.1,
              "lrs": [0.1], "reconstruction_weight": None, "max_train": None}
    for optimizer in ("sgd", "adam"):
        text = report_module.training_text({**search, "optimizer": optimizer})
        assert "diverged" not in text and "because" not in text


def test_the_thresholds_step_comes_from_the_search_and_shows_in_the_report(tmp_path):
    """The search's best row sets a learned method's thresholds' step; a method with fixed
    thresholds and a search from before the knob (no such column) record none, and the
    report's table gains the column only when some model was trained with another step."""
    from lsalsa.workflow.steps.train import learned_setting

    (tmp_path / "search" / "lsalsa").mkdir(parents=True)
    (tmp_path / "search" / "lista").mkdir(parents=True)
    row = {"T": 2, "lr": 0.1, "lr_decay": 0.0, "val_rmse": 0.5}
    (tmp_path / "search" / "lsalsa" / "best.json").write_text(json.dumps(
        [{**row, "threshold_lr": 0.01}]))
    (tmp_path / "search" / "lista" / "best.json").write_text(json.dumps([row]))  # an old one
    start = {"alpha": 0.2, "mu": 2.0, "val_rmse": 0.6}
    hyper = {m: learned_setting(tmp_path, m, 2, start, 0.1, 0.0, 0.3)
             for m in ("lsalsa", "lista", "lsalsa-fixed")}
    assert hyper["lsalsa"]["threshold_lr"] == 0.01
    assert "threshold_lr" not in hyper["lista"]  # the old search trained with step 1
    assert "threshold_lr" not in hyper["lsalsa-fixed"]  # no search there: nothing learned
    assert hyper["lsalsa-fixed"]["lr"] == 0.1

    def table(hypers):
        results = {"depths": [2], "methods": {m: {"2": {"hyper": h}} for m, h in hypers.items()}}
        return report_tables._hyperparameters(results)

    both = table({"salsa": {"alpha": 0.2, "mu": 2.0}, **hyper})
    assert both.header[-1] == "thresholds' step (x lr)"
    assert {r[0]: r[-1] for r in both.rows} == {
        "SALSA": None, "LISTA": 1.0, "LSALSA": 0.01, "LSALSA (fixed thresholds)": None}
    assert "thresholds' step (x lr)" not in table({"lista": hyper["lista"]}).header
    search = {"epochs": 3, "final_epochs": 8, "batch_size": 64, "lrs": [0.1],
              "optimizer": "adam", "threshold_lrs": [0.01, 1.0]}
    assert ("searched: learning rate 0.1, the learned thresholds' step (x the learning rate) "
            "over [0.01, 1.0], with 3 epochs per trial") in report_module.training_text(
                search, searched=True)
    assert "untied" not in report_module.training_text(search)
    assert ("untied layers (one S per layer) for every learned method but the paper's "
            "fixed-threshold LSALSA") in report_module.training_text({**search, "untied": True})


# -- the pipeline on a tiny synthetic IDX data set ------------------------------------------------


def _write_idx(folder, rng):
    folder.mkdir(parents=True)
    for split, n in (("train", 40), ("t10k", 40)):
        labels = np.arange(n) % 2
        # Two classes of smooth blobs: left-heavy or right-heavy images.
        yy, xx = np.mgrid[:28, :28]
        images = np.zeros((n, 28, 28))
        for i, label in enumerate(labels):
            cx = (9 if label == 0 else 19) + rng.integers(-3, 4)
            cy = 14 + rng.integers(-5, 6)
            images[i] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0)
        pixels = (255 * images / images.max()).astype(np.uint8)
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">IIII", 0x803, n, 28, 28) + pixels.tobytes())
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


TINY = {
    "name": "tiny", "description": "pipeline smoke test", "dataset": "fashion-mnist-10",
    "alphas": [0.15], "device": "cpu", "threads": 1, "prepare": {"limit_images": 12},
    "dictionary": {"atoms": [100], "epochs": 1, "n_iter_codes": 5},
    "depths": [1, 2], "dense_max": 8,
    "search": {"alpha_factors": [1.0], "mus": [1.0, 10.0],
               "lrs": {"lista": [0.1], "lsalsa": [0.03, 0.1]}, "epochs": 1,
               "final_epochs": 1, "val_fraction": 0.2},
    "evaluation": {"time_repeats": 1, "threads": 1, "analysis_samples": 10,
                   "sparsity_T": [1, 2], "separation_T": [1], "match_reference_T": [1]},
    "classification": {"max_iter": 100, "projection_dim": 50},
    "targets": [{"kind": "iterations_to_match", "method": "salsa", "reference_T": 1,
                 "more_than": 5, "text": "SALSA needs more than 5"},
                {"kind": "training_never_hurts", "text": "training never hurts"}],
}


def _table(markdown: str, title_start: str) -> dict[str, list[str]]:
    """Rows (first cell -> other cells) of the report table whose title starts so."""
    block = markdown.split(f"**{title_start}")[1].split("\n\n")[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]
    return {" ".join(r[:1] + r[2:3]) if r[0].isdigit() else r[0]: r[1:] for r in rows}


@pytest.mark.slow
def test_pipeline_end_to_end_and_resume(tmp_path, rng, monkeypatch):
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    _write_idx(tmp_path / "raw" / "fashion-mnist", rng)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run_dir = tmp_path / "run"
    lines: list[str] = []
    torch.manual_seed(0)
    # The run sets its own thread count (1) and seed; the caller's must come back unchanged.
    threads, rng_state = torch.get_num_threads(), torch.get_rng_state()
    torch.set_num_threads(2)
    try:
        run_experiment(str(config), run_dir, scale="small", data_dir=tmp_path / "raw",
                       progress=False, log=lines.append)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.get_rng_state(), rng_state)
    finally:
        torch.set_num_threads(threads)

    for name in ("config.json", "provenance.json", "seed.json", "results.json", "report.md",
                 "report.html", "classic.json", "figures/rmse_vs_T.png",
                 "figures/rmse_vs_time.png", "figures/sparsity_vs_rmse.png",
                 "figures/atoms_0.png", "tables/rmse.csv", "tables/rmse.md",
                 "tables/iterations_to_match.csv", "tables/time_to_match.md",
                 "tables/classification_classes.csv", "search/lsalsa/best.json",
                 "analysis/lsalsa_T1/analysis.json", "analysis/lsalsa_T2/analysis.md",
                 "eval/rmse_lsalsa_T1.npy", "eval/sparsity_fista_T2.npy"):
        assert (run_dir / name).is_file(), name
    for step in STEPS:
        assert (run_dir / "steps" / f"{step}.json").is_file(), step
    for method in ("lista", "lsalsa", "lsalsa-fixed"):
        for T in (1, 2):
            assert (run_dir / "models" / f"{method}_T{T}" / "run" / "model.safetensors").is_file()
    # One learning rate: no search for LISTA (nor for LSALSA with fixed thresholds).
    assert not (run_dir / "search" / "lista").exists()
    # Each learned encoder started from its classic algorithm's best setting at its depth.
    classic = json.loads((run_dir / "classic.json").read_text())
    prepared = load_prepared("fashion-mnist-10", run_dir / "data")
    Y_val = prepared.signals("val")
    blocks = [np.load(run_dir / "dictionaries" / "dictionary_0.npy")]
    for T in (1, 2):
        start = classic["starts"]["salsa"][str(T)]
        done = json.loads((run_dir / "models" / f"lsalsa_T{T}" / "done.json").read_text())
        assert (done["hyper"]["alpha"], done["hyper"]["mu"]) == (start["alpha"], start["mu"])
        # Epoch 0 is SALSA(T) at that setting, computed in other batches: codes within twice
        # iteration_error, the mean RMSE within that / sqrt(N) and its own float32 sums.
        codes = 2 * iteration_error("salsa", Y_val, blocks, start["alpha"], T, mu=start["mu"],
                                    dtype=np.float32)
        N = blocks[0].shape[1]
        bound = (float(codes.mean()) / np.sqrt(N)
                 + 2 * gamma(N + len(Y_val) + 2, np.float32) * start["val_rmse"])
        assert abs(done["initial_val_rmse"] - start["val_rmse"]) <= bound
        assert done["val_rmse"] <= done["initial_val_rmse"]

    results = json.loads((run_dir / "results.json").read_text())
    # The stored per-sample arrays are what the means were computed from.
    rmse = np.load(run_dir / "eval" / "rmse_lsalsa_T1.npy")
    assert rmse.shape == (results["P_test"],)
    assert results["methods"]["lsalsa"]["1"]["rmse_mean"] == pytest.approx(rmse.mean())
    # SALSA's T-curve at the main depths agrees with its dense curve: the same iterations on
    # the same float32 data, in other batches and code paths, so codes within twice
    # iteration_error each (per sample, ||.||_2), RMSEs within that / sqrt(N) plus their own
    # float32 rounding (sums of N and P non-negative terms).
    dense = results["dense"]["salsa"]
    blocks = [np.load(run_dir / "dictionaries" / f"dictionary_{i}.npy")
              for i in range(len(results["block_sizes"]))]
    Y_test = load_prepared("fashion-mnist-10", run_dir / "data").signals("test")
    assert Y_test.shape[0] == results["P_test"]
    for T in (1, 2):
        hyper = results["methods"]["salsa"][str(T)]["hyper"]
        codes = 2 * iteration_error("salsa", Y_test, blocks, hyper["alpha"], T, mu=hyper["mu"],
                                    dtype=np.float32)
        main = results["methods"]["salsa"][str(T)]["rmse_mean"]
        bound = (float(codes.mean()) / np.sqrt(results["N"])
                 + 2 * gamma(results["N"] + results["P_test"] + 2, np.float32) * main)
        assert abs(main - dense["rmse_mean"][dense["T"].index(T)]) <= bound
    # Iterations to match really is the first dense T at or below LSALSA's T = 1 error.
    ref = results["match"]["1"]["lsalsa_rmse"]
    first = next((T for T, v in zip(dense["T"], dense["rmse_mean"], strict=True) if v <= ref),
                 None)
    assert results["match"]["1"]["salsa"]["iterations"] == first

    # The report's numbers are the stored ones.
    report = (run_dir / "report.md").read_text()
    table = _table(report, "Mean code RMSE")
    for method, label in (("fista", "FISTA"), ("salsa", "SALSA"), ("lista", "LISTA"),
                          ("lsalsa", "LSALSA")):
        assert table[label] == [fmt(results["methods"][method][str(T)]["rmse_mean"])
                                for T in (1, 2)]
    errors = _table(report, "Classification error")
    task = results["classification"]["tasks"]["classes"]
    assert errors["LSALSA"] == [fmt(task["errors"]["lsalsa"][str(T)]) for T in (1, 2)]
    match = {row[1]: row[-1] for row in _table(report, "Iterations each").values()}
    assert match["FISTA"] == fmt(results["match"]["1"]["fista"]["iterations"])
    assert match["SALSA"] == fmt(results["match"]["1"]["salsa"]["iterations"])
    target = results["targets"][0]
    assert f"**{target['status'].upper()}** — {target['text']}: {target['measured']}" in report
    assert "offline stand-in" not in report  # synthetic canonical-format files
    assert '<img src="figures/rmse_vs_T.png"' in (run_dir / "report.html").read_text()
    # The same numbers as a tidy table beside results.json, one record a line.
    records = read_tidy(run_dir / "results.jsonl")
    assert records == tidy_records(results, "tiny")
    assert {(r["method"], r["T"]): r["value"] for r in records
            if r["metric"] == "code_rmse"}[("lsalsa", 1)] == results["methods"]["lsalsa"]["1"][
                "rmse_mean"]

    # A second run reuses every step: no marker or result is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in (run_dir / "steps").glob("*.json")
              if p.stem != "report"}
    stamps[run_dir / "results.json"] = (run_dir / "results.json").stat().st_mtime_ns
    lines.clear()
    run_experiment(str(config), run_dir, scale="small", data_dir=tmp_path / "raw",
                   progress=False, log=lines.append)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert sum("reused" in line for line in lines) == len(STEPS) - 1

    # A removed marker reruns that step (and the report) only.
    (run_dir / "steps" / "evaluate.json").unlink()
    lines.clear()
    run_experiment(str(config), run_dir, scale="small", data_dir=tmp_path / "raw",
                   progress=False, log=lines.append)
    assert (run_dir / "results.json").stat().st_mtime_ns > stamps[run_dir / "results.json"]
    assert sum("reused" in line for line in lines) == len(STEPS) - 2

    # The same directory with another configuration is refused.
    changed = dict(TINY, seed=1)
    config.write_text(json.dumps(changed))
    with pytest.raises(InputError, match="another configuration"):
        run_experiment(str(config), run_dir, scale="small", data_dir=tmp_path / "raw",
                       progress=False, log=lines.append)


def test_the_default_schedule_is_not_recorded_among_a_search_s_training_options():
    """A search folder records train_options and refuses a resume whose options differ: the
    default schedule stays out of them, so a search begun before the schedule was an option
    resumes; another schedule is recorded."""
    import dataclasses

    from lsalsa.workflow.config import load_experiment
    from lsalsa.workflow.steps.train import train_options

    config = load_experiment("natural-16", "small")
    assert "schedule" not in train_options(config)
    plateau = dataclasses.replace(config, search=dataclasses.replace(config.search,
                                                                     schedule="plateau"))
    assert train_options(plateau)["schedule"] == "plateau"
    assert "min_improvement" not in train_options(plateau)  # recorded only when set
    stricter = dataclasses.replace(config, search=dataclasses.replace(config.search,
                                                                      min_improvement=1e-3))
    assert train_options(stricter)["min_improvement"] == 1e-3



def test_the_train_step_unties_every_learned_method_but_the_paper_s_model(tmp_path):
    """search.untied reaches the train step's encoders: one S per layer for LISTA and LSALSA,
    the paper's fixed-threshold LSALSA tied; the models' files say so."""
    import dataclasses
    import types

    from lsalsa.core.encoders import load_encoder
    from lsalsa.core.solvers import solve
    from lsalsa.workflow.config import load_experiment
    from lsalsa.workflow.steps.train import model_path, train_one

    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 12)).astype(np.float32)
    A /= np.linalg.norm(A, axis=0)
    Y = rng.standard_normal((60, 8)).astype(np.float32)
    X = solve(Y, A, 0.2, method="exact").codes.astype(np.float32)
    split = types.SimpleNamespace(signals=Y[:40], references=X[:40], val_signals=Y[40:],
                                  val_references=X[40:])
    hyper = {"alpha": 0.2, "mu": 2.0, "lr": 0.1, "lr_decay": 0.0}
    methods = ("lista", "lsalsa", "lsalsa-fixed")
    for tying in (False, True):
        config = load_experiment("natural-16", "small")
        config = dataclasses.replace(config, search=dataclasses.replace(config.search,
                                                                         untied=tying))
        run = types.SimpleNamespace(config=config, dir=tmp_path / str(tying),
                                    device=torch.device("cpu"), sink=False,
                                    log=lambda line: None, blocks=lambda: [A],
                                    fit_val=lambda objective="codes": split)
        for method in methods:
            train_one(run, method, 3, {**hyper, "mu": None} if method == "lista" else hyper,
                      epochs=1, seed=0, options={"batch_size": 16}, data_info={})
        untied = {m: load_encoder(model_path(run.dir, m, 3)).untied for m in methods}
        assert untied == {"lista": tying, "lsalsa": tying, "lsalsa-fixed": False}


def _fields_without_help(model) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(model) if not f.metadata.get("help", "").strip()]


def _properties_without_description(node, where: str = "") -> list[str]:
    """Where a schema (anywhere in it: sections, scales, targets, alternatives) has a
    property without a description."""
    missing = []
    if isinstance(node, dict):
        missing += [f"{where}/properties/{key}" for key, value in node.get("properties", {}).items()
                    if not value.get("description")]
        for key, value in node.items():
            missing += _properties_without_description(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += _properties_without_description(value, f"{where}/{i}")
    return missing


def test_every_config_field_has_help_and_every_schema_property_a_description():
    import dataclasses

    from lsalsa import checks
    from lsalsa.workflow.config import SECTIONS, ExperimentConfig, Target
    from lsalsa.workflow.config.schema import config_schema

    missing = {model.__name__: _fields_without_help(model)
               for model in (*SECTIONS.values(), ExperimentConfig, Target)}
    assert not any(missing.values()), f"fields without help: {missing}"
    schema = config_schema()
    assert _properties_without_description(schema) == []
    assert set(ExperimentConfig.__dataclass_fields__) - {"scale", "origin"} \
        <= set(schema["properties"])

    # Both checks can fail: a field declared without help, a property without a description.
    @dataclasses.dataclass(frozen=True)
    class Undescribed:
        described: int = checks.rule(checks.positive_int, 1, help="what it is")
        bare: int = checks.rule(checks.positive_int, 1)
    assert _fields_without_help(Undescribed) == ["bare"]
    nested = {"properties": {"a": {"description": "a", "anyOf": [
        {"properties": {"b": {"type": "integer"}}}]}}}
    assert _properties_without_description(nested) == ["/properties/a/anyOf/0/properties/b"]
