"""benchmarks/time_to_accuracy.py on a toy problem: the FISTA / SALSA settings are chosen on
the validation split alone, and the timed runs reproduce the curves they were chosen from.
Nothing here looks at a time."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_dictionary
from lsalsa import LSALSA
from lsalsa.core.codes import compute_codes
from lsalsa.core.metrics import iterations_to_match
from lsalsa.workflow.code_sets import save_codes
from lsalsa.workflow.data.prepared import DatasetWriter

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_accuracy.py"
ALPHA = 0.1


def load_script():
    spec = importlib.util.spec_from_file_location("time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy(tmp_path, rng):
    """A prepared data set (train/val/test), its exact codes, a code set whose test codes are
    perturbed (same val codes), and an untrained LSALSA T=2 model file."""
    M, N, P = 12, 16, 120
    A = random_dictionary(rng, M, N).astype(np.float32)
    writer = DatasetWriter(tmp_path, "toy")
    codes, stats = {}, {}
    for split in ("train", "val", "test"):
        X = rng.standard_normal((P, N)) * (rng.random((P, N)) < 0.2)
        Y = (X @ A.T + 0.05 * rng.standard_normal((P, M))).astype(np.float32)
        writer.save(split, "signals", Y)
        codes[split], stats[split] = compute_codes(Y, [A], [ALPHA])
    data = writer.commit({"name": "toy", "kind": "sc"})
    exact = save_codes(tmp_path / "codes", codes, [A], [ALPHA], stats=stats)
    moved = {**codes, "test": codes["test"] + 0.05 * rng.standard_normal(codes["test"].shape)}
    perturbed = save_codes(tmp_path / "perturbed", moved, [A], [ALPHA], stats=stats)
    only_test = save_codes(tmp_path / "only-test", {"test": codes["test"]}, [A], [ALPHA],
                           stats=stats)
    model = tmp_path / "model.safetensors"
    LSALSA(A, ALPHA, 2, mu=1.0).save(model)
    return {"data": data, "codes": exact, "perturbed": perturbed, "only_test": only_test,
            "model": model, "tmp": tmp_path}


def run(script, toy, codes, name) -> dict:
    out = toy["tmp"] / f"{name}.json"
    assert script.main(["--data", str(toy["data"]), "--codes", str(codes), "--model",
                        str(toy["model"]), "--exact", "lasso_cd", "--exact-limit", "10",
                        "--max-iter", "40", "--repeats", "1", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_selection_uses_validation_only_and_timed_runs_match_the_curves(toy):
    script = load_script()
    first = run(script, toy, toy["codes"], "exact")
    second = run(script, toy, toy["perturbed"], "perturbed")
    for method in ("fista", "salsa"):
        a, b = first["curves"][method], second["curves"][method]
        # Other test codes change the test curve but not one choice: the test split selects
        # nothing.
        assert a["test_rmse"] != b["test_rmse"]
        assert a["choice"] == b["choice"] and a["val_rmse"] == b["val_rmse"]

    model = first["models"][0]
    for method in ("fista", "salsa"):
        curve, row = first["curves"][method], model["methods"][method]
        assert row["T"] == iterations_to_match(curve["T"], curve["test_rmse"],
                                               model["target_rmse"])
        assert row["setting"] == curve["grid"][curve["choice"][row["T_timed"] - 1]]
        # The timed call (SALSA as an untrained LSALSA, FISTA with prebuilt operators) runs the
        # same float32 iterations as the curve, in another order of operations: each step
        # rounds at ~1e-7 relative and the iterations are nonexpansive, so at most ~T * 1e-7.
        float32 = row["precisions"]["float32"]
        assert float32["test_rmse"] == pytest.approx(row["curve_test_rmse"], rel=1e-4)
        # Every precision was timed; the one ranked keeps the accuracy, and is the fastest.
        assert set(row["precisions"]) == {"float32", "bfloat16"}
        chosen = row["precisions"][row["precision"]]
        assert chosen["keeps_accuracy"] and row["seconds"] == min(
            p["seconds"] for p in row["precisions"].values() if p["keeps_accuracy"])
    assert model["target_rmse"] == model["precisions"]["float32"]["test_rmse"]
    # scikit-learn's alpha is on the same objective as the stored codes: lasso_cd stops at a
    # duality gap of 1e-4 ||y||^2, a few 1e-4 of the objective; an alpha off by its internal
    # 1/n_features (12 here) would move the objective by far more.
    assert abs(model["exact"][0]["objective_vs_optimum"]) < 1e-3
    assert model["targets"] == []  # a toy data set has no issue targets


def test_code_set_without_validation_codes_is_refused(toy):
    with pytest.raises(SystemExit, match="no codes for \\['val'\\]"):
        load_script().main(["--data", str(toy["data"]), "--codes", str(toy["only_test"]),
                            "--model", str(toy["model"])])


def test_the_fastest_precision_that_keeps_the_accuracy_is_ranked():
    fastest = load_script().fastest

    def measured(seconds, rmse, psnr=None):
        return {"seconds": seconds, "times": [seconds], "test_rmse": rmse,
                **({} if psnr is None else {"psnr": psnr})}

    within = fastest({"float32": measured(1.0, 0.100), "bfloat16": measured(0.5, 0.1019)})
    assert within["precision"] == "bfloat16" and within["seconds"] == 0.5
    beyond = fastest({"float32": measured(1.0, 0.100), "bfloat16": measured(0.5, 0.1021)})
    assert beyond["precision"] == "float32" and beyond["test_rmse"] == 0.100
    assert not beyond["precisions"]["bfloat16"]["keeps_accuracy"]
    slower = fastest({"float32": measured(1.0, 0.100), "bfloat16": measured(2.0, 0.100)})
    assert slower["precision"] == "float32"
    # MCA: no component's PSNR may drop by more than 0.1 dB; a rise is no loss.
    psnr = fastest({"float32": measured(1.0, 0.1, [25.0, 24.0]),
                    "bfloat16": measured(0.5, 0.1, [25.05, 23.85])})
    assert psnr["precision"] == "float32" and psnr["psnr"] == [25.0, 24.0]
    better = fastest({"float32": measured(1.0, 0.1, [25.0, 24.0]),
                      "bfloat16": measured(0.5, 0.1, [25.3, 23.95])})
    assert better["precision"] == "bfloat16"


def test_plot_points_are_timed_at_each_T_in_each_precision(toy):
    out, png = toy["tmp"] / "plot.json", toy["tmp"] / "plot.png"
    assert load_script().main([
        "--data", str(toy["data"]), "--codes", str(toy["codes"]), "--model", str(toy["model"]),
        "--exact", "lasso_cd", "--exact-limit", "10", "--max-iter", "16", "--repeats", "1",
        "--json", str(out), "--plot", str(png), "--curve-T", "1", "3", "1000"]) == 0
    result = json.loads(out.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # T = 1000 lies beyond every curve's horizon: no setting was chosen for it, so no point.
    assert sorted((p["method"], p["T"], p["precision"]) for p in result["curve_points"]) == [
        (m, T, d) for m in ("fista", "salsa") for T in (1, 3) for d in ("bfloat16", "float32")]
    # A point at T is the curve's T (same setting, same iterations) in float32.
    for p in result["curve_points"]:
        if p["precision"] == "float32":
            curve = result["curves"][p["method"]]
            assert p["test_rmse"] == pytest.approx(curve["test_rmse"][p["T"] - 1], rel=1e-4)


def test_variant_names_round_trip():
    script = load_script()  # its names come from benchmarks/_common.py
    for dtype in ("float32", torch.bfloat16):
        for fused in (False, True):
            name = script.variant_name(dtype, fused)
            assert script.split_variant(name) == (str(dtype).removeprefix("torch."), fused)
    assert script.variant_name(torch.bfloat16, True) == "bfloat16 fused"


def test_iterations_per_source_reads_each_sources_rows_alone(tmp_path, rng, capsys):
    """benchmarks/iterations_per_source.py on a toy run directory with two test sources: each
    source's SALSA curve, at the run's settings chosen per T, is the curve of its rows alone,
    and the iterations to match read from it."""
    from lsalsa.core.training.search import chosen_curves

    spec = importlib.util.spec_from_file_location(
        "iterations_per_source", SCRIPT.parent / "iterations_per_source.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    M, N, P = 12, 16, 60
    A = random_dictionary(rng, M, N).astype(np.float32)
    X = rng.standard_normal((P, N)) * (rng.random((P, N)) < 0.2)
    Y = (X @ A.T + 0.05 * rng.standard_normal((P, M))).astype(np.float32)
    run = tmp_path / "run"
    writer = DatasetWriter(run / "data", "toy")
    writer.save("test", "signals", Y)
    source = np.repeat([1, 0], P // 2)  # rows of "b" first: the index, not the order, counts
    writer.save("test", "natural_source", source)
    writer.commit({"name": "toy", "kind": "sc", "natural_sources": ["a", "b", "unused"]})
    codes, stats = compute_codes(Y, [A], [ALPHA])
    save_codes(run / "codes", {"test": codes}, [A], [ALPHA], stats={"test": stats},
               data={"name": "toy"})
    grid = [{"alpha": [ALPHA], "mu": mu} for mu in (0.5, 2.0)]
    depths = list(range(1, 9))
    choice = [0, 1, 1, 0, 0, 1, 0, 0]  # as if chosen on validation, per T
    (run / "classic.json").write_text(json.dumps({"salsa": {
        "grid": grid, "T": depths, "hyper": [grid[c] for c in choice]}}))
    model = np.linspace(0.05, 0.3, P)  # a per-row RMSE, as eval/ holds it
    (run / "eval").mkdir()
    np.save(run / "eval" / "rmse_m.npy", model)
    assert script.main([str(run), "m", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for s, name in enumerate(["a", "b"]):
        rows = np.flatnonzero(source == s)
        curve = chosen_curves(torch.from_numpy(Y[rows]), torch.from_numpy(codes[rows]),
                              [torch.from_numpy(A)], "salsa", depths, grid, choice)["rmse"]
        target = float(model[rows].mean())
        assert result[f"{name} m"]["iterations_to_match"] == \
            iterations_to_match(depths, curve, target)
        assert result[f"{name} m"]["rows"] == P // 2
    # Matched within the horizon on both sources (the comparison is of numbers, not Nones).
    assert all(row["iterations_to_match"] for row in result.values())
    assert not any(key.startswith("unused") for key in result)


def test_separate_images_reads_each_folder_as_one_source(tmp_path, monkeypatch):
    """benchmarks/separate_images.py --photos: every image of a folder, the folder's name as
    its source, pixels as load_photo gives them; an empty folder is one line."""
    from PIL import Image

    from lsalsa.errors import InputError
    from lsalsa.workflow.data.photo_files import load_photo

    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the script imports its _common
    spec = importlib.util.spec_from_file_location(
        "separate_images", SCRIPT.parent / "separate_images.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    for folder, names in (("garden", ["b.png", "a.jpg"]), ("trip", ["c.png"])):
        (tmp_path / folder).mkdir()
        for name in names:
            pixels = rng.integers(0, 256, (40, 50), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / name)
    (tmp_path / "trip" / "notes.txt").write_text("not a photograph")
    photos = script.folder_photographs([str(tmp_path / "garden"), str(tmp_path / "trip")])
    assert [(s, n) for s, n, _ in photos] == [("garden", "a.jpg"), ("garden", "b.png"),
                                              ("trip", "c.png")]
    np.testing.assert_array_equal(photos[2][2], load_photo(tmp_path / "trip" / "c.png", None))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image file"):
        script.folder_photographs([str(tmp_path / "empty")])


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fresh_patches_come_from_the_rebuilt_photographs(rng):
    """benchmarks/fresh_data.py: the photographs rebuilt from a stride-8 grid of 16 x 16
    patches give those patches back; a fresh patch is one of the eight symmetries of a window
    of its own photograph, with every pixel in [0, 1]."""
    fresh = _bench("fresh_data")
    from lsalsa.core.patches import extract_patches

    images = torch.from_numpy(rng.random((3, 40, 40)).astype(np.float32))
    which = torch.arange(3).repeat_interleave(16)
    stored = extract_patches(images.numpy(), 16, 8)
    rebuilt = fresh.photographs(stored, which.numpy())
    assert torch.equal(rebuilt, images)
    with pytest.raises(SystemExit, match="tile"):
        broken = stored.copy()
        broken[5, 0] += 1.0
        fresh.photographs(broken, which.numpy())
    drawn = fresh.draw(images, which, torch.Generator().manual_seed(0))
    assert drawn.shape == stored.shape and drawn.flags.c_contiguous
    assert drawn.min() >= 0 and drawn.max() <= 1
    for row, k in zip(drawn, which.tolist(), strict=True):
        patch = torch.from_numpy(row).reshape(16, 16)
        turns = [torch.rot90(patch, q) for q in range(4)]
        windows = images[k].unfold(0, 16, 1).unfold(1, 16, 1).reshape(-1, 16, 16)
        assert any(bool((windows == t).all((1, 2)).any() or (windows == t.T).all((1, 2)).any())
                   for t in turns)


def test_a_low_rank_update_of_s_starts_at_salsa_and_trains_only_its_factors(rng):
    """benchmarks/capacity.py's low-rank variant: S_0 + c U V^T with U = 0 is the start
    exactly; S_0 is frozen, and one Adam step moves S (through U) by about lr s_S per entry,
    the step of a full S."""
    capacity = _bench("capacity")
    A = random_dictionary(rng, 12, 16)
    Y = torch.from_numpy(rng.standard_normal((30, 12)))
    plain = LSALSA(A, ALPHA, 3, mu=1.0)
    model = capacity.low_rank(LSALSA(A, ALPHA, 3, mu=1.0), rank=4, seed=0)
    with torch.no_grad():
        assert torch.equal(model(Y), plain(Y))
    learned = {n for n, p in model.named_parameters() if p.requires_grad}
    assert learned == {"W", "thresholds", "parametrizations.S.0.U",
                       "parametrizations.S.0.V"}
    X = torch.from_numpy(compute_codes(Y.numpy(), [A], [ALPHA])[0])
    from lsalsa.core.training import train
    from lsalsa.core.training.schedule import step_scales

    s_S = step_scales(plain)["S"]
    S0 = model.S.detach().clone()
    train(model, Y, X, max_epochs=1, batch_size=30, lr=0.01, grad_clip=None, patience=None,
          schedule="constant")
    moved = (model.S.detach() - S0).abs()
    # U's entries move by lr s_U each (Adam's first step), V is about 1 per entry: S's
    # entries move by about lr s_S, within the spread of sums of 4 Gaussians.
    assert 0.1 * 0.01 * s_S < float(moved.mean()) < 10 * 0.01 * s_S


def test_the_weight_count_leaves_out_the_first_s_of_an_untied_model(rng):
    """benchmarks/capacity.py counts the weights training moves: an untied model's first S
    multiplies the zero start, gets no gradient, and is not counted."""
    capacity = _bench("capacity")
    A = random_dictionary(rng, 12, 16)
    tied, untied = (LSALSA(A, ALPHA, 3, mu=1.0, untied=u) for u in (False, True))
    assert capacity.learned_weights(tied) == 16 * 12 + 16 * 16 + 16
    assert capacity.learned_weights(untied) == 16 * 12 + 2 * 16 * 16 + 16
    Y = torch.from_numpy(rng.standard_normal((30, 12)))
    untied(Y).square().sum().backward()
    assert untied.S.grad[0].abs().max() == 0 and untied.S.grad[1:].abs().max() > 0


def test_per_sample_rmse_is_each_row_s_code_rmse(rng):
    """capacity.py's score: the RMSE of each row's codes, of an untrained (SALSA) encoder."""
    capacity = _bench("capacity")
    A = random_dictionary(rng, 12, 16)
    encoder = LSALSA(A, ALPHA, 3, mu=1.0)
    Y = rng.standard_normal((50, 12)).astype(np.float32)
    X = compute_codes(Y, [A], [ALPHA])[0]
    got = capacity.per_sample_rmse(encoder.float(), Y, X, batch=16)
    with torch.no_grad():
        codes = encoder(torch.from_numpy(Y)).numpy()
    # The same float32 products in other batches: equal up to their rounding.
    np.testing.assert_allclose(got, np.sqrt(((codes - X) ** 2).mean(1)), rtol=1e-5)
