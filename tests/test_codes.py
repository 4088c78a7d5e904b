"""Optimal codes: exact vs paper mode, stored code sets, the alpha search and the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from _numerics import code_error_bound, gap_rounding, unit_roundoff
from lsalsa import InputError, duality_gap, objective, solve
from lsalsa.cli import main
from lsalsa.core.codes import compute_codes, tune_alpha
from lsalsa.workflow.code_sets import load_codes, save_codes
from test_dictionary import make_prepared, planted


@pytest.fixture
def sc():
    A, Y = planted(seed=7, P=300)
    return A.astype(np.float32), Y


@pytest.fixture
def mca(rng):
    """Two dictionaries sharing the space: an ill-conditioned MCA problem."""
    A, Y = planted(seed=8, P=200)
    B = rng.standard_normal((16, 20))
    B /= np.linalg.norm(B, axis=0)
    Y = Y + (rng.standard_normal((200, 16)) * 0.3).astype(np.float32)
    return [A.astype(np.float32), B.astype(np.float32)], Y


def recompute_gap(Y, X, dictionaries, alphas):
    """Gaps and relative gaps in float64, and a bound on the rounding of the relative gaps.

    ``gap / E`` with each within ``rho`` (gap_rounding): off by ``(1 + gap / E) rho / E``.
    """
    as64 = [np.asarray(d, dtype=np.float64) for d in dictionaries]
    Y64, X64 = np.asarray(Y, np.float64), np.asarray(X, np.float64)
    gap = duality_gap(Y64, X64, as64, alphas)
    cost = objective(Y64, X64, as64, alphas)
    relative = gap / cost
    rounding = gap_rounding(Y64, X64, as64, cost)
    return gap, relative, rounding, (1 + relative) * rounding / cost


def storage_gap_bound(Y, X, dictionaries, alphas, tol):
    """Bound on the relative gap of codes solved to ``tol`` and then rounded to float32.

    Rounding moves x by ``dx``, ``|dx| <= u |x|``, so ``A^T r`` by at most
    ``c ||A dx|| <= c^2 u ||x||_1`` (``c`` the largest column norm). E moves only to second
    order (x is optimal), but the dual scale ``s = alpha / max |A_i^T r|`` drops by up to
    ``c^2 u ||x||_1 / alpha`` and the dual value ``1/2 ||y||^2 - 1/2 ||y - s r||^2`` with it,
    by at most that times ``||r|| (||y|| + ||r||)``: first order in u, relative to E.
    """
    as64 = [np.asarray(d, dtype=np.float64) for d in dictionaries]
    Y64, X64 = np.asarray(Y, np.float64), np.asarray(X, np.float64)
    c = max(np.linalg.norm(d, axis=0).max() for d in as64)
    cost = objective(Y64, X64, as64, alphas)
    residual = np.sqrt(2 * cost)  # ||r|| <= sqrt(2 E)
    shift = c**2 * unit_roundoff(np.float32) * np.abs(X64).sum(axis=1) / min(alphas)
    moved = shift * residual * (np.linalg.norm(Y64, axis=1) + residual)
    return tol + (moved + 0.5 * (c * shift * min(alphas)) ** 2) / cost


def test_exact_codes_meet_the_bound_and_beat_the_paper_recipe(mca):
    dictionaries, Y = mca
    exact, s_exact = compute_codes(Y, dictionaries, [0.1, 0.2])
    paper, s_paper = compute_codes(Y, dictionaries, [0.1, 0.2], mode="paper")
    assert exact.dtype == np.float32 and exact.shape == (200, 44)
    assert s_paper["solver"] == "salsa" and s_paper["n_iter"] == 100 and s_paper["mu"] == 10
    gap_exact, rel_exact, rounding, rel_rounding = recompute_gap(Y, exact, dictionaries,
                                                                 [0.1, 0.2])
    # The solver met 1e-7 by its own computation of the same float64 relative gaps.
    assert s_exact["gap"]["solver_relative_max"] <= 1e-7 + 2 * rel_rounding.max()
    # float32 storage costs at most a little; SALSA(100) here is orders of magnitude worse.
    bound = storage_gap_bound(Y, exact, dictionaries, [0.1, 0.2], 1e-7) + rel_rounding
    assert np.all(rel_exact <= bound)
    assert s_exact["gap"]["relative_max"] <= bound.max() + rel_rounding.max()
    assert s_exact["gap"]["relative_max"] < s_paper["gap"]["relative_max"] / 100
    _, rel_paper, _, rel_paper_rounding = recompute_gap(Y, paper, dictionaries, [0.1, 0.2])
    # A median moves by at most the largest change of its values.
    assert abs(float(np.median(rel_paper)) - s_paper["gap"]["relative_median"]) <= (
        2 * rel_paper_rounding.max())
    as64 = [d.astype(np.float64) for d in dictionaries]
    e_exact = objective(Y.astype(np.float64), exact.astype(np.float64), as64, [0.1, 0.2])
    e_paper = objective(Y.astype(np.float64), paper.astype(np.float64), as64, [0.1, 0.2])
    # E(exact) <= E* + gap(exact) <= E(paper) + gap(exact), up to the rounding of each.
    paper_rounding = gap_rounding(Y, paper, as64, e_paper)
    assert np.all(e_exact <= e_paper + gap_exact + 2 * rounding + paper_rounding)


def test_paper_mode_for_one_dictionary_is_fista(sc):
    A, Y = sc
    _, stats = compute_codes(Y, A, 0.1, mode="paper", n_iter=7)
    assert stats["solver"] == "fista" and stats["n_iter"] == 7 and stats["mu"] is None


def test_batches_do_not_change_the_codes(sc):
    A, Y = sc
    whole, _ = compute_codes(Y, A, 0.1, batch_size=1000)
    pieces, _ = compute_codes(Y, A, 0.1, batch_size=64)
    # Batches change only rounding: both are within what their cost excess allows of the
    # minimiser (a sharp float64 solve; tests/_numerics.py).
    A64, Y64 = A.astype(np.float64), Y.astype(np.float64)
    sharp = solve(Y64, A64, 0.1, method="exact", tol=1e-13).codes
    bound = sum(code_error_bound(Y64, c, sharp, A64, 0.1) for c in (whole, pieces))
    assert np.all(np.linalg.norm(pieces.astype(np.float64) - whole, axis=1) <= bound)


def test_stored_codes_reload_bit_identical_with_the_gap_recomputed(tmp_path, mca):
    dictionaries, Y = mca
    train, s_train = compute_codes(Y[:150], dictionaries, [0.1, 0.2])
    test, s_test = compute_codes(Y[150:], dictionaries, [0.1, 0.2])
    out = save_codes(tmp_path / "codes", {"train": train, "test": test}, dictionaries,
                     [0.1, 0.2], stats={"train": s_train, "test": s_test},
                     data={"name": "toy"}, seed=3)
    assert sorted(p.name for p in out.iterdir()) == [
        "codes.json", "codes_test.npy", "codes_train.npy", "dictionary_0.npy",
        "dictionary_1.npy"]
    loaded = load_codes(out)
    np.testing.assert_array_equal(loaded.codes("train"), train)
    np.testing.assert_array_equal(loaded.codes("test"), test)
    assert isinstance(loaded.codes("train"), np.memmap)
    for stored, given in zip(loaded.dictionaries, dictionaries, strict=True):
        np.testing.assert_array_equal(stored, given)
    assert loaded.alphas == (0.1, 0.2) and loaded.splits == ["test", "train"]
    meta = loaded.meta
    assert meta["block_sizes"] == [24, 20] and meta["M"] == 16 and meta["N"] == 44
    assert meta["mode"] == "exact" and meta["seed"] == 3
    assert meta["fingerprint"] == loaded.problem.fingerprint()
    for split, signals in (("train", Y[:150]), ("test", Y[150:])):
        gap, relative, rounding, rel_rounding = recompute_gap(
            signals, loaded.codes(split), loaded.dictionaries, loaded.alphas)
        stored = meta["gap"][split]
        # Recomputed gaps (maybe in other batches): each within its rounding, which is
        # relative to E + ||y||^2 / 2, not to the gap; a median or max moves by at most the
        # largest change.
        assert abs(stored["median"] - float(np.median(gap))) <= 2 * rounding.max()
        assert abs(stored["max"] - float(gap.max())) <= 2 * rounding.max()
        assert abs(stored["relative_max"] - float(relative.max())) <= 2 * rel_rounding.max()


def test_load_codes_refuses_changed_dictionaries_and_shapes(tmp_path, sc):
    A, Y = sc
    codes, stats = compute_codes(Y[:20], A, 0.1)
    out = save_codes(tmp_path / "c", {"train": codes}, [A], 0.1, stats={"train": stats})
    np.save(out / "dictionary_0.npy", A * 1.001)
    with pytest.raises(InputError, match="fingerprint"):
        load_codes(out)
    np.save(out / "dictionary_0.npy", A)
    np.save(out / "codes_train.npy", codes[:10])
    with pytest.raises(InputError, match="shape"):
        load_codes(out)
    with pytest.raises(InputError, match="not a code set"):
        load_codes(tmp_path)


def test_save_codes_refuses_bad_input_and_writes_nothing(tmp_path, sc):
    A, Y = sc
    codes, stats = compute_codes(Y[:20], A, 0.1)
    cases = [
        ({"train": codes[:, :5]}, [A], 0.1, "shape"),
        ({"train": codes}, [A[:, :10]], 0.1, "shape"),
        ({"train": codes}, [A], 0.0, "alpha"),
        ({}, [A], 0.1, "no codes"),
    ]
    for arrays, dicts, alpha, message in cases:
        with pytest.raises(InputError, match=message):
            save_codes(tmp_path / "out", arrays, dicts, alpha, stats={"train": stats})
    assert list(tmp_path.iterdir()) == []
    save_codes(tmp_path / "out", {"train": codes}, [A], 0.1, stats={"train": stats})
    with pytest.raises(InputError, match="exists"):
        save_codes(tmp_path / "out", {"train": codes}, [A], 0.1, stats={"train": stats})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left behind


@pytest.mark.parametrize("signals, dictionary, alpha, message", [
    (np.zeros((10, 16), np.float32), np.eye(12, 24, dtype=np.float32), 0.1, "does not fit"),
    (np.zeros((10, 16), np.float32), np.eye(16, 24, dtype=np.float32), 0.0, "alpha"),
    (np.zeros((10, 16), np.float32), np.eye(16, 24, dtype=np.float32), -0.5, "alpha"),
    (np.zeros((0, 16), np.float32), np.eye(16, 24, dtype=np.float32), 0.1, "empty"),
])
def test_compute_codes_bad_input(signals, dictionary, alpha, message):
    with pytest.raises(InputError, match=message):
        compute_codes(signals, dictionary, alpha)


def test_tune_alpha_finds_the_smallest_alpha_reaching_the_target(sc):
    A, Y = sc
    alpha, curve = tune_alpha(Y, A, target_sparsity=0.9, n_samples=200, seed=0, steps=10)
    chosen = next(r for r in curve if r["alpha"] == alpha)
    assert chosen["sparsity"] >= 0.9
    assert all(r["sparsity"] < 0.9 for r in curve if r["alpha"] < alpha)
    assert [r["alpha"] for r in curve] == sorted(r["alpha"] for r in curve)
    # Sparsity of the exact codes grows with alpha along the curve searched (up to ties).
    sparsity = [r["sparsity"] for r in curve]
    assert all(b >= a - 1e-3 for a, b in itertools.pairwise(sparsity))
    grid_alpha, grid = tune_alpha(Y, A, 0.9, alphas=[0.05, alpha, 10 * alpha], n_samples=200)
    assert grid_alpha == alpha and len(grid) == 3
    with pytest.raises(InputError, match="no alpha"):
        tune_alpha(Y, A, 0.9, alphas=[1e-4], n_samples=50)


def test_cli_codes_compute(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="mca", P=(60, 30))
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate((24, 20)):
        D = rng.standard_normal((16, n)).astype(np.float32)
        D /= np.linalg.norm(D, axis=0)
        np.save(tmp_path / f"d{i}.npy", D)
        paths += ["--dict", str(tmp_path / f"d{i}.npy")]
    out = tmp_path / "codes"
    assert main(["codes", "compute", "--data", str(data), *paths, "--alpha", "0.1", "--alpha",
                 "0.2", "--out", str(out), "--quiet"]) == 0
    loaded = load_codes(out)
    assert loaded.codes("train").shape == (60, 44) and loaded.codes("test").shape == (30, 44)
    assert loaded.meta["data"]["name"] == "toy" and loaded.meta["mode"] == "exact"
    assert "relative duality gap" in capsys.readouterr().out
    # The same command again refuses to overwrite.
    before = (out / "codes.json").read_text()
    assert main(["codes", "compute", "--data", str(data), *paths, "--alpha", "0.1", "--alpha",
                 "0.2", "--out", str(out)]) == 2
    assert (out / "codes.json").read_text() == before


def test_cli_codes_compute_every_split_with_val(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="sc", P=(40, 12, 20))
    A, _ = planted(seed=0)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    out = tmp_path / "codes"
    assert main(["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--alpha", "0.1", "--out", str(out), "--quiet"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()[:3]] == [
        "train", "val", "test"]
    loaded = load_codes(out)
    assert sorted(loaded.splits) == ["test", "train", "val"]
    assert loaded.codes("val").shape == (12, A.shape[1])
    assert main(["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--alpha", "0.1", "--out", str(tmp_path / "v"), "--splits", "val",
                 "--quiet"]) == 0
    np.testing.assert_array_equal(load_codes(tmp_path / "v").codes("val"), loaded.codes("val"))


@pytest.mark.parametrize("bad", ["shape", "alpha", "empty"])
def test_cli_codes_errors_write_nothing(tmp_path, capsys, bad):
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    D = np.eye(16 if bad != "shape" else 12, 24, dtype=np.float32)
    np.save(tmp_path / "d.npy", D)
    if bad == "empty":
        np.save(data / "train_signals.npy", np.zeros((0, 16), np.float32))
    alpha = "0" if bad == "alpha" else "0.1"
    out = tmp_path / "codes"
    assert main(["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--alpha", alpha, "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("lsalsa: error:")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".codes")]


@pytest.mark.parametrize("dictionary, message", [
    (np.eye(16, 24) + 1j, "must hold real numbers"),  # the imaginary part was dropped
    (np.full((16, 24), "a"), "must hold real numbers"),  # a ValueError traceback
    (np.eye(16, 24) * 1e200, "beyond the float32 range"),  # was "contains NaN or Inf"
])
def test_cli_codes_compute_refuses_dictionaries_it_cannot_cast(tmp_path, capsys, dictionary,
                                                                message):
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    np.save(tmp_path / "d.npy", dictionary)
    out = tmp_path / "codes"
    assert main(["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--alpha", "0.1", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err and message in err
    assert not out.exists()


def test_cli_codes_compute_refuses_a_device_other_than_cpu_or_cuda(tmp_path, capsys):
    # "meta" tensors hold no values: paper mode failed in .item() with a traceback.
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    np.save(tmp_path / "d.npy", np.eye(16, 24, dtype=np.float32))
    out = tmp_path / "codes"
    assert main(["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--alpha", "0.1", "--mode", "paper", "--device", "meta", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lsalsa: error: --device must be cpu, cuda or cuda:N, got 'meta'"
    assert not out.exists()


def test_cli_tune_alpha(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="sc", P=(100, 20))
    A, _ = planted(seed=0)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    assert main(["codes", "tune-alpha", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--target", "0.85", "--samples", "100"]) == 0
    text = capsys.readouterr().out
    assert "alpha =" in text and "sparsity" in text
    json.dumps(text)  # plain text output


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("where", ["data folder", "above the data", "holds the dict",
                                   "not a code set", "dot"])
def test_cli_codes_overwrite_replaces_only_a_code_set(tmp_path, capsys, monkeypatch, where):
    # --overwrite swaps the whole --out folder: never the data set, a --dict or another folder.
    prep = tmp_path / "prep"
    data = make_prepared(prep, kind="sc", P=(20, 10))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    A, _ = planted(seed=0)
    np.save(other / "d.npy", A.astype(np.float32))
    monkeypatch.chdir(other)
    out = {"data folder": data, "above the data": prep, "holds the dict": other,
           "not a code set": other, "dot": "."}[where]
    dictionary = str(other / "d.npy") if where != "not a code set" else str(tmp_path / "d.npy")
    if where == "not a code set":
        (other / "d.npy").rename(dictionary)
    before = _tree(tmp_path)
    assert main(["codes", "compute", "--data", str(data), "--dict", dictionary, "--alpha", "0.1",
                 "--out", str(out), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err
    assert {"data folder": "is the input folder", "above the data": "holds the input",
            "holds the dict": "holds the input", "not a code set": "not a code set",
            "dot": "holds the input"}[where] in err, err
    assert _tree(tmp_path) == before


def test_cli_codes_overwrite_replaces_a_code_set(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="sc", P=(20, 10))
    A, _ = planted(seed=0)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    args = ["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
            "--out", str(tmp_path / "codes"), "--quiet", "--alpha"]
    assert main([*args, "0.1"]) == 0
    assert main([*args, "0.2", "--overwrite"]) == 0
    assert load_codes(tmp_path / "codes").meta["alphas"] == [0.2]


def test_save_codes_overwrites_only_a_code_set(tmp_path, sc, monkeypatch):
    A, Y = sc
    codes, stats = compute_codes(Y[:20], A, 0.1)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.npy").write_bytes(b"precious")
    with pytest.raises(InputError, match="not a code set"):
        save_codes(plain, {"train": codes}, [A], 0.1, stats={"train": stats}, overwrite=True)
    assert [p.name for p in plain.iterdir()] == ["data.npy"]
    # "." has no name to swap a new folder in under, even where it is a code set.
    save_codes(tmp_path / "set", {"train": codes}, [A], 0.1, stats={"train": stats})
    monkeypatch.chdir(tmp_path / "set")
    with pytest.raises(InputError, match="must name a folder"):
        save_codes(".", {"train": codes}, [A], 0.1, stats={"train": stats}, overwrite=True)
    assert load_codes(tmp_path / "set").meta["alphas"] == [0.1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "set"]


def test_cli_codes_compute_of_chosen_splits(tmp_path, capsys):
    """CodeSetSettings.splits: the splits named (a usage error for an unknown one), and one
    the data set lacks named as the flag, before anything is computed or written."""
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    A, _ = planted(seed=0)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    common = ["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
              "--alpha", "0.1", "--quiet"]
    assert main([*common, "--splits", "val", "--out", str(tmp_path / "v")]) == 2
    assert "--splits: " in capsys.readouterr().err and not (tmp_path / "v").exists()
    assert main([*common, "--splits", "every", "--out", str(tmp_path / "v")]) == 2
    assert "argument --splits: invalid choice: 'every'" in capsys.readouterr().err
    assert main([*common, "--splits", "test", "--out", str(tmp_path / "t")]) == 0
    assert load_codes(tmp_path / "t").splits == ["test"]


def test_cli_tune_alpha_on_a_grid(tmp_path, capsys):
    """TuneSettings.alphas (--grid): every alpha given is tried, and the library takes any
    iterable, or one alpha."""
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    A, Y = planted(seed=0, P=20)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    assert main(["codes", "tune-alpha", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 "--grid", "0.5", "0.05", "--samples", "20", "--target", "0.2"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:3]]
    assert rows == ["0.05", "0.5"]
    for grid, tried in ((np.array([[0.5, 0.05]]), [0.05, 0.5]),
                        ((a for a in (0.5, 0.05)), [0.05, 0.5]), (range(1, 2), [1.0]),
                        (0.5, [0.5]), (np.array(0.5), [0.5])):
        _, curve = tune_alpha(Y, A, 0.01, alphas=grid, n_samples=20)
        assert [row["alpha"] for row in curve] == tried


@pytest.mark.parametrize("grid", [",", " ", "0.1,x", "-1"])
def test_cli_tune_alpha_refuses_a_grid_without_numbers(tmp_path, capsys, grid):
    # "," used to reach max() of an empty curve: a ValueError traceback.
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    A, _ = planted(seed=0)
    np.save(tmp_path / "d.npy", A.astype(np.float32))
    assert main(["codes", "tune-alpha", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                 f"--grid={grid}", "--samples", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa codes tune-alpha: error: argument --grid: expected a "
                          "positive number, got ") and "\n" not in err
    A, Y = planted(seed=0, P=20)
    for grid in ([], [0.1, 0.0], np.array([])):
        with pytest.raises(InputError, match=r"^alphas must be a"):
            tune_alpha(Y, A, 0.9, alphas=grid, n_samples=20)


@pytest.mark.parametrize("flags,reason", [
    (["--tol", "0"], "argument --tol: expected a positive number, got 0.0"),
    (["--n-iter", "0"], "argument --n-iter: expected an integer >= 1 or 'none', got 0"),
    (["--mode", "fast"], "argument --mode: invalid choice: 'fast'"),
    (["--batch-size", "many"], "argument --batch-size: expected an integer >= 1, got 'many'")])
def test_cli_codes_compute_refuses_bad_options_before_reading_anything(tmp_path, capsys, flags,
                                                                       reason):
    """The codes' options (CodesSettings) are checked as the flags are read: a usage error
    naming the flag, before the (absent) data are looked for."""
    assert main(["codes", "compute", "--data", str(tmp_path / "none"), "--dict", "d.npy",
                 "--alpha", "0.1", "--out", str(tmp_path / "codes"), *flags]) == 2
    assert reason in capsys.readouterr().err


def test_tune_alpha_options_are_checked_where_declared(sc, tmp_path, capsys):
    """TuneSettings: the target is a fraction strictly inside (0, 1), in the library (named
    as the parameter) and on the command line (named as the flag, before any data is read)."""
    A, Y = sc
    for target in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match=r"target_sparsity must be a number in \(0, 1\)"):
            tune_alpha(Y, A, target)
    assert main(["codes", "tune-alpha", "--data", str(tmp_path / "none"), "--dict", "d.npy",
                 "--target", "1"]) == 2
    assert "argument --target: expected a number in (0, 1), got 1.0" in capsys.readouterr().err


def test_split_codes_refuse_a_data_set_without_splits_or_without_the_split_asked(tmp_path):
    """compute_split_codes itself refuses, before any solve: no splits to encode, or a split
    the data set lacks (named as the parameter, `splits`)."""
    from types import SimpleNamespace

    from lsalsa.workflow.code_sets import compute_split_codes

    A = np.eye(4, dtype=np.float32)
    with pytest.raises(InputError, match="has no splits to encode"):
        compute_split_codes(SimpleNamespace(splits=(), path=tmp_path), None, [A], 0.1)
    with pytest.raises(InputError, match=r"`splits`: .* has no split test"):
        compute_split_codes(SimpleNamespace(splits=("train",), path=tmp_path), ["test"],
                            [A], 0.1)
