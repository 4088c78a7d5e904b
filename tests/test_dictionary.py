"""Dictionary learning (paper Eq. 5 / Eq. 8), its checkpoints, the atom picture and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from _numerics import gamma, unit_roundoff
from lsalsa import InputError, checks, objective, solve
from lsalsa.cli import main
from lsalsa.core.dictionary import _LipschitzTracker, learn_dictionary, normalize_columns
from lsalsa.workflow.checkpoint import read_checkpoint, write_checkpoint
from lsalsa.workflow.dictionaries import learn_with_checkpoints
from lsalsa.workflow.report.atoms import plot_atoms


def planted(seed=0, M=16, N=24, k=3, P=2000):
    """Signals ``y = A x`` from a random unit-norm dictionary and k-sparse codes."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((M, N))
    A /= np.linalg.norm(A, axis=0)
    X = np.zeros((P, N))
    for p in range(P):
        idx = rng.choice(N, k, replace=False)
        X[p, idx] = rng.choice([-1, 1], k) * rng.uniform(0.5, 1.5, k)
    return A, (X @ A.T).astype(np.float32)


def exact_mean_objective(Y, A, alpha):
    """Eq. 5 with truly optimal codes."""
    Y64, A64 = Y.astype(np.float64), A.astype(np.float64)
    X = solve(Y64, A64, alpha, method="exact").codes
    return float(objective(Y64, X, A64, alpha).mean())


def test_planted_dictionary_is_recovered():
    A_true, Y = planted()
    result = learn_dictionary(Y, 24, alpha=0.1, epochs=20, batch_size=128, lr=10.0,
                              lr_decay=1000, n_iter_codes=30, seed=0)
    cosines = np.abs(A_true.T @ result.dictionary)  # (true atom, learned atom)
    recovered = (cosines.max(axis=1) > 0.95).mean()
    assert recovered >= 0.9
    # The initial dictionary (random signals) is far from it: learning did the work.
    start = learn_dictionary(Y, 24, alpha=0.1, epochs=1, batch_size=128, lr=1e-12,
                             seed=0).dictionary
    assert (np.abs(A_true.T @ start).max(axis=1) > 0.95).mean() < 0.5


def test_objective_decreases_and_columns_stay_unit_norm():
    _, Y = planted(seed=1, P=600)
    Y = Y[:, :] + np.random.default_rng(0).normal(0, 0.05, Y.shape).astype(np.float32)
    result = learn_dictionary(Y, 20, alpha=0.1, epochs=6, batch_size=64, lr=3.0,
                              n_iter_codes=20, seed=3, init="random")
    A = result.dictionary
    assert A.shape == (16, 20) and A.dtype == np.float32
    # Normalised (at worst in float32: gamma(M + 2)), stored in float32 (u), and the norm
    # recomputed here in float32 (gamma(M) + u).
    bound = gamma(16 + 2, np.float32) + gamma(16, np.float32) + 2 * unit_roundoff(np.float32)
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0, rtol=0, atol=bound)
    assert result.history[-1] < result.history[0]
    assert len(result.history) == result.epochs == 6
    rng = np.random.default_rng([3, 1])
    A0 = rng.standard_normal((16, 20))
    A0 /= np.linalg.norm(A0, axis=0)
    assert exact_mean_objective(Y, A, 0.1) < 0.9 * exact_mean_objective(Y, A0, 0.1)


def test_tolerance_stops_early():
    _, Y = planted(seed=2, P=300)
    result = learn_dictionary(Y, 24, alpha=0.1, epochs=50, batch_size=300, lr=1e-9,
                              tol=1e-3, seed=0)
    # Steps of 1e-9 leave the objective unchanged: the second epoch meets the tolerance.
    assert result.converged and result.epochs == 2


def test_normalize_columns_projects_onto_the_sphere():
    A = torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]])
    B = normalize_columns(A)
    # float32: a norm of 2 terms, a division, and the norm recomputed here.
    rtol = 2 * gamma(2 + 2, np.float32)
    np.testing.assert_allclose(torch.linalg.vector_norm(B, dim=0), 1.0, rtol=rtol)
    np.testing.assert_allclose(B[:, 0], [0.6, 0.8], rtol=rtol)
    np.testing.assert_allclose(B[:, 1], [1.0, 0.0])  # a dead atom becomes a unit vector


def test_lipschitz_tracker_is_a_tight_upper_bound(rng):
    tracker = _LipschitzTracker(30, seed=0, device="cpu")
    A = torch.from_numpy(rng.standard_normal((20, 30)))
    for _ in range(4):
        true = float(torch.linalg.matrix_norm(A, ord=2) ** 2)
        estimate = tracker(A)
        # The estimate carries a 1e-3 safety margin, far above the rounding of either value.
        assert true <= estimate <= 1.01 * true
        A = A + 0.05 * torch.from_numpy(rng.standard_normal(A.shape))


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path):
    _, Y = planted(seed=4, P=256)
    settings = dict(alpha=0.1, batch_size=64, lr=3.0, n_iter_codes=10, seed=5, tol=0.0)
    full = learn_dictionary(Y, 24, epochs=4, **settings)
    learn_with_checkpoints(Y, 24, epochs=2, checkpoint_dir=tmp_path / "ck", **settings)
    _, state, _ = read_checkpoint(tmp_path / "ck" / "checkpoint.safetensors", "dictionary")
    assert state["epoch"] == 2
    resumed = learn_with_checkpoints(Y, 24, epochs=4, checkpoint_dir=tmp_path / "ck", **settings)
    # Exact: the resumed run repeats the same operations on the same restored state.
    np.testing.assert_array_equal(resumed.dictionary, full.dictionary)
    assert resumed.history == full.history
    # One file, replaced every epoch.
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["checkpoint.safetensors"]
    with pytest.raises(InputError, match="another run"):
        learn_with_checkpoints(Y, 24, epochs=4, checkpoint_dir=tmp_path / "ck",
                               **{**settings, "alpha": 0.2})


def _edit_state(folder, arrays=None, **changes):
    """Rewrite the checkpoint with ``changes`` to its state (``arrays``: to its tensors) as a
    consistent file, its checksums matching: what only the state checks can refuse."""
    file = folder / "checkpoint.safetensors"
    tensors, state, _ = read_checkpoint(file, "dictionary")
    for key, value in changes.items():
        if value is _DELETE:
            del state[key]
        else:
            state[key] = value
    write_checkpoint(file, "dictionary", {**tensors, **(arrays or {})}, state)


_DELETE = object()


@pytest.mark.parametrize("changes, message", [
    ({"epoch": "1"}, "epoch must be an integer >= 1, got '1'"),
    ({"epoch": -5}, "epoch must be an integer >= 1, got -5"),
    ({"epoch": True}, "epoch must be an integer >= 1, got True"),
    ({"history": None}, "history must be a list of finite numbers"),
    ({"history": [1.0, "x"]}, "history must be a list of finite numbers"),
    # epoch 0 with one history entry resumed into "3 epochs" of --epochs 2.
    ({"epoch": 0}, "epoch must be an integer >= 1, got 0"),
    ({"epoch": 2}, "history has 1 entries at epoch 2"),
    ({"step": 7}, "step must be 2 at epoch 1, got 7"),
    ({"converged": "no"}, "converged must be true or false"),
    ({"config": [1]}, "not a dictionary-learning state"),
    ({"config": _DELETE}, "not a dictionary-learning state"),
])
def test_a_damaged_checkpoint_state_is_refused(tmp_path, changes, message):
    # Each of these was a traceback, a wrong resume, or a read outside the folder.
    _, Y = planted(seed=4, P=100)
    settings = dict(alpha=0.1, batch_size=64, n_iter_codes=5, seed=5, tol=0.0)
    learn_with_checkpoints(Y, 24, epochs=1, checkpoint_dir=tmp_path / "ck", **settings)
    np.save(tmp_path / "outside.npy", np.ones((16, 24), np.float32))
    _edit_state(tmp_path / "ck", **changes)
    with pytest.raises(InputError, match=re.escape(message)) as info:
        learn_with_checkpoints(Y, 24, epochs=2, checkpoint_dir=tmp_path / "ck", **settings)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("array, message", [
    ("dictionary", "its dictionary has shape (16, 23), expected (16, 24)"),
    ("power", "its power has shape (23,), expected (24,)"),
    ("power zero", "its power vector is all zeros"),
    ("extra", "it holds arrays ['codes', 'dictionary', 'extra', 'power'], not the"),
    ("flipped bit", "does not match its checksum"),
])
def test_a_damaged_checkpoint_array_is_refused(tmp_path, array, message):
    _, Y = planted(seed=4, P=100)
    settings = dict(alpha=0.1, batch_size=64, n_iter_codes=5, seed=5, tol=0.0)
    learn_with_checkpoints(Y, 24, epochs=1, checkpoint_dir=tmp_path / "ck", **settings)
    file = tmp_path / "ck" / "checkpoint.safetensors"
    saved, _, _ = read_checkpoint(file, "dictionary")
    if array == "flipped bit":
        data = bytearray(file.read_bytes())
        data[-1] ^= 1  # in the last tensor's bytes
        file.write_bytes(bytes(data))
    else:
        bad = {"dictionary": lambda: {"dictionary": saved["dictionary"][:, :23]},
               "power": lambda: {"power": saved["power"][:23]},
               "power zero": lambda: {"power": saved["power"] * 0},
               "extra": lambda: {"extra": saved["power"]}}[array]
        _edit_state(tmp_path / "ck", arrays=bad())
    with pytest.raises(InputError, match=re.escape(message)) as info:
        learn_with_checkpoints(Y, 24, epochs=2, checkpoint_dir=tmp_path / "ck", **settings)
    assert "\n" not in str(info.value)


def test_a_checkpoint_of_an_older_lsalsa_is_refused(tmp_path):
    _, Y = planted(seed=4, P=100)
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "state.json").write_text("{}")
    with pytest.raises(InputError, match="older lsalsa"):
        learn_with_checkpoints(Y, 24, epochs=1, checkpoint_dir=tmp_path / "ck", alpha=0.1)


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": -1.0}, "alpha"), ({"n_atoms": 0}, "n_atoms"),
    ({"epochs": 0}, "epochs"), ({"init": "svd"}, "init"), ({"lr": float("nan")}, "lr"),
])
def test_bad_arguments_raise_and_write_nothing(tmp_path, kwargs, message):
    _, Y = planted(seed=0, P=50)
    with pytest.raises(InputError, match=message):
        learn_with_checkpoints(Y, **{"alpha": 0.1, **kwargs}, checkpoint_dir=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("signals", [np.zeros((0, 16), np.float32), np.zeros(16, np.float32),
                                     np.full((4, 16), np.nan, np.float32)])
def test_bad_signals_raise(signals):
    with pytest.raises(InputError):
        learn_dictionary(signals, 8, alpha=0.1)


def test_plot_atoms_draws_a_grid(tmp_path, rng):
    import matplotlib.image

    A = rng.standard_normal((12, 7))
    out = plot_atoms(A, tmp_path / "atoms.png", patch_shape=(3, 4), title="atoms")
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 10
    with pytest.raises(InputError, match="square"):
        plot_atoms(A, tmp_path / "bad.png")
    with pytest.raises(InputError, match="patch_shape"):
        plot_atoms(A, tmp_path / "bad.png", patch_shape=(5, 5))
    assert not (tmp_path / "bad.png").exists()


def make_prepared(root, name="toy", kind="sc", P=(200, 60), M=16, seed=0):
    """A minimal prepared data set in the layout of :mod:`lsalsa.workflow.data.prepared`.

    ``P`` holds the train and test sizes, or train, val and test."""
    from lsalsa.io import save_npy, write_json

    folder = root / name
    rng = np.random.default_rng(seed)
    _, Y = planted(seed=seed, M=M, P=sum(P))
    names = ("train", "test") if len(P) == 2 else ("train", "val", "test")
    parts = dict(zip(names, np.split(Y, np.cumsum(P)[:-1]), strict=True))
    for split, signals in parts.items():
        if kind == "mca":
            other = rng.standard_normal(signals.shape).astype(np.float32) * 0.1
            save_npy(folder / f"{split}_component0.npy", signals)
            save_npy(folder / f"{split}_component1.npy", other)
            signals = signals + other
        save_npy(folder / f"{split}_signals.npy", signals)
    side = int(np.sqrt(M))
    write_json(folder / "meta.json", {
        "name": name, "kind": kind, "M": M, "patch_shape": [side, side], "seed": seed,
        "stand_in": False, "label": "synthetic", "counts": dict(zip(names, P, strict=True))})
    return folder


def test_cli_learn_and_show(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="mca")
    out = tmp_path / "d0.npy"
    code = main(["dictionary", "learn", "--data", str(data), "--component", "0", "--atoms", "20",
                 "--alpha", "0.1", "--epochs", "2", "--seed", "1", "--out", str(out),
                 "--quiet", "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 0
    A = np.load(out)
    assert A.shape == (16, 20)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["data"]["key"] == "component0" and sidecar["patch_shape"] == [4, 4]
    assert sidecar["config"]["alpha"] == 0.1 and len(sidecar["history"]) == 2
    assert main(["dictionary", "show", str(out), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    ([], "give --component"),  # MCA data needs a component
    # option values are checked as they are read (usage errors, exit 2 too)
    (["--component", "0", "--alpha", "0"], "argument --alpha: expected a positive number"),
    (["--component", "0", "--atoms", "0"], "argument --atoms: expected an integer >= 1"),
])
def test_cli_learn_errors_write_nothing(tmp_path, capsys, extra, message):
    data = make_prepared(tmp_path, kind="mca")
    args = ["dictionary", "learn", "--data", str(data), "--alpha", "0.1", "--out",
            str(tmp_path / "d.npy"), "--quiet", *extra]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d.npy").exists() and not (tmp_path / "d.json").exists()


def test_cli_learn_refuses_a_device_other_than_cpu_or_cuda(tmp_path, capsys):
    # "meta" tensors hold no values: learning failed in .item() with a traceback.
    data = make_prepared(tmp_path, kind="sc")
    assert main(["dictionary", "learn", "--data", str(data), "--alpha", "0.1", "--out",
                 str(tmp_path / "d.npy"), "--quiet", "--device", "meta"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lsalsa: error: --device must be cpu, cuda or cuda:N, got 'meta'"
    assert not (tmp_path / "d.npy").exists()


def test_training_signals_are_the_pipelines_rows(tmp_path, capsys):
    """PreparedDataset.training_signals: the component (MCA) or the signals (SC), all or a
    seeded sorted subset drawn by one rule for lsalsa dictionary learn and the experiments;
    the CLI's errors name its flags."""
    from lsalsa.core._arrays import sorted_subset
    from lsalsa.workflow.data import load_prepared

    data = load_prepared(make_prepared(tmp_path, kind="mca"))
    train = data.split("train")
    key, every = data.training_signals(1)
    assert key == "component1" and np.array_equal(every, train["component1"])
    key, some = data.training_signals(0, max_signals=7, seed=3)
    rows = sorted_subset(len(train["component0"]), 7, np.random.default_rng([3, 21, 0]))
    assert key == "component0" and np.array_equal(some, train["component0"][rows])
    for component, message in ((None, "give `component` 0 or 1"), (2, "give `component`"),
                               (-1, "component must be an integer >= 0")):
        with pytest.raises(InputError, match=message):
            data.training_signals(component)
    with pytest.raises(InputError, match="max_signals must be an integer >= 1"):
        data.training_signals(0, max_signals=0)
    assert main(["dictionary", "learn", "--data", str(data.path), "--component", "2",
                 "--alpha", "0.1", "--out", str(tmp_path / "d.npy")]) == 2
    assert "give --component 0 or 1" in capsys.readouterr().err
    assert main(["dictionary", "learn", "--data", str(data.path), "--component", "0",
                 "--max-signals", "7", "--seed", "3", "--atoms", "4", "--alpha", "0.1",
                 "--epochs", "1", "--out", str(tmp_path / "d.npy"), "--quiet"]) == 0
    sidecar = json.loads((tmp_path / "d.json").read_text())
    assert sidecar["data"]["max_signals"] == 7


def test_cli_component_on_sc_data_is_refused(tmp_path, capsys):
    data = make_prepared(tmp_path, kind="sc")
    assert main(["dictionary", "learn", "--data", str(data), "--component", "1", "--alpha",
                 "0.1", "--out", str(tmp_path / "d.npy")]) == 2
    assert "MCA" in capsys.readouterr().err


@pytest.mark.parametrize("shape", ["-4x-4", "0x16"])
def test_show_refuses_sizes_below_one(shape, tmp_path, capsys):
    np.save(tmp_path / "A.npy", np.eye(16))
    out = tmp_path / "a.png"
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out", str(out),
                 f"--patch-shape={shape}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa dictionary show: error: argument --patch-shape: expected "
                          "rows x cols, two integers >= 1") and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("value, shape", [((3, 4), (3, 4)), ("3x4", (3, 4)), ("3X4", (3, 4)),
                                          ([2, 8], (2, 8))])
def test_an_image_shape_is_two_sizes(value, shape):
    assert checks.image_shape(value, "patch_shape") == shape


@pytest.mark.parametrize("value", ["3", "3x", "0x4", "ax4", "1.5x4", [4, True], ["4", "4"],
                                   {3, 4}, (1, 2, 3), 12, None])
def test_an_image_shape_refuses_anything_else(value):
    with pytest.raises(InputError, match=r"^patch_shape must be rows x cols"):
        checks.image_shape(value, "patch_shape")


@pytest.mark.parametrize("dtype", ["complex128", "<U3"])
def test_show_refuses_complex_and_text_dictionaries(dtype, tmp_path, capsys):
    # The imaginary part used to be dropped with only a warning; text gave a traceback.
    np.save(tmp_path / "A.npy", np.eye(16).astype(dtype))
    out = tmp_path / "a.png"
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err
    assert "must hold real numbers" in err and not out.exists()


@pytest.mark.parametrize("sidecar, message", [
    ('{"patch_shape": 5}', "has patch_shape 5"),
    ('{"patch_shape": "ab"}', "has patch_shape 'ab'"),
    ('{"patch_shape": [4, true]}', "has patch_shape [4, True]"),
    ('"ab"', "(not a JSON object)"),
    ("[1, 2]", "(not a JSON object)"),
    ("{", "cannot read a dictionary sidecar"),
])
def test_show_refuses_a_malformed_sidecar(sidecar, message, tmp_path, capsys):
    # These were TypeError, ValueError or AttributeError tracebacks (bad JSON was ignored).
    np.save(tmp_path / "A.npy", np.eye(16))
    (tmp_path / "A.json").write_text(sidecar)
    out = tmp_path / "a.png"
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err
    assert message in err and err.endswith("give --patch-shape HxW") and not out.exists()
    # --patch-shape does not read the sidecar.
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out", str(out),
                 "--patch-shape", "4x4"]) == 0 and out.is_file()


def test_show_refuses_to_draw_over_its_input(tmp_path, capsys):
    np.save(tmp_path / "A.npy", np.eye(16))
    before = (tmp_path / "A.npy").read_bytes()
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out",
                 str(tmp_path / "A.npy")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert (tmp_path / "A.npy").read_bytes() == before


@pytest.mark.parametrize("name", ["meta.npy", "train_signals.npy"])
def test_cli_learn_refuses_to_write_over_its_inputs(tmp_path, capsys, name):
    # meta.npy: its sidecar would be the data set's meta.json.
    data = make_prepared(tmp_path, kind="sc", P=(40, 20))
    args = ["dictionary", "learn", "--data", str(data), "--alpha", "0.5", "--epochs", "1",
            "--quiet", "--checkpoint-dir", str(tmp_path / "ck")]
    out = data / name
    victims = sorted(data.iterdir())
    before = {p: p.read_bytes() for p in victims}
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err and "is the input file" in err
    assert {p: p.read_bytes() for p in victims} == before
    assert not out.with_suffix(".json").exists() or out.with_suffix(".json") in before


def test_show_refuses_to_draw_over_the_sidecar_it_reads(tmp_path, capsys):
    np.save(tmp_path / "A.npy", np.eye(16))
    (tmp_path / "A.json").write_text('{"patch_shape": [4, 4]}')
    assert main(["dictionary", "show", str(tmp_path / "A.npy"), "--out",
                 str(tmp_path / "A.json")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert (tmp_path / "A.json").read_text() == '{"patch_shape": [4, 4]}'
