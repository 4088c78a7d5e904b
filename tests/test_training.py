"""Training (Eq. 15), run directories, exact resume, the hyperparameter search and the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import lsalsa
from _numerics import encoder_error, gamma, iteration_error
from conftest import random_dictionary
from lsalsa import LSALSA, InputError, load_encoder
from lsalsa.cli import main
from lsalsa.core.codes import CodesSettings
from lsalsa.core.dictionary_settings import DictionarySettings
from lsalsa.core.encoders import build_encoder, read_model_header
from lsalsa.core.metrics import code_rmse, validation_rmse
from lsalsa.core.training import best_classic, train
from lsalsa.core.training.schedule import improving_epochs, plateau_halvings, step_scales
from lsalsa.core.training.settings import DEFAULTS, PLATEAU_WAIT, TrainSettings
from lsalsa.workflow.checkpoint import flatten_optimizer, load_checkpoint, unflatten_optimizer
from lsalsa.workflow.data.catalog import PrepareSettings
from lsalsa.workflow.search import search
from lsalsa.workflow.training_run import train_in_dir

ALPHA = 0.2


@pytest.fixture(scope="module")
def data():
    """A tiny SC problem with exactly optimal codes: 120 training and 40 validation rows."""
    rng = np.random.default_rng(5)
    A = random_dictionary(rng, 8, 12)
    Y = rng.standard_normal((160, 8))
    X = lsalsa.solve(Y, A, ALPHA, method="exact").codes
    return {"A": A, "Y": Y[:120], "X": X[:120], "Yv": Y[120:], "Xv": X[120:]}


def _train(data, encoder=None, run_dir=None, **options):
    """The library's defaults (Adam, step scaling, cosine, clipping) unless told otherwise;
    with ``run_dir``, in that run directory."""
    encoder = encoder or LSALSA(data["A"], ALPHA, 2, mu=2.0)
    kwargs = {"batch_size": 16, "max_epochs": 4, "seed": 3,
              "val_signals": data["Yv"], "val_references": data["Xv"], **options}
    if run_dir is None:
        return train(encoder, data["Y"], data["X"], **kwargs)
    return train_in_dir(run_dir, encoder, data["Y"], data["X"], progress=False, **kwargs)


# The paper's recipe: vanilla SGD on Eq. 15, constant step, nothing rescaled or clipped.
VANILLA_SGD = {"optimizer": "sgd", "step_scaling": False, "grad_clip": None,
               "schedule": "constant"}


def _weights(encoder):
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# -- the loss and the update ------------------------------------------------------------------

def _full_batch_gradient(data, T=3, **options):
    """A fresh LSALSA, and a reference copy holding the gradient of Eq. 15 on all rows."""
    enc = LSALSA(data["A"], ALPHA, T, mu=2.0, **options)
    ref = LSALSA(data["A"], ALPHA, T, mu=2.0, **options)
    Y, X = torch.as_tensor(data["Y"]), torch.as_tensor(data["X"])
    loss = ((X - ref(Y)) ** 2).sum() / (2 * len(Y))  # 1/(2P) sum_p ||x*_p - f(y_p)||^2
    loss.backward()
    return enc, ref, loss.item()


def _gradient_magnitude(data, T=3, **options):
    """Per entry, sum over samples of |d loss_p / d P|: what the rounding of the full-batch
    gradient is relative to (see test_one_full_batch_epoch_is_one_sgd_step_on_eq15)."""
    Y, X = torch.as_tensor(data["Y"]), torch.as_tensor(data["X"])
    P = Y.shape[0]
    magnitude = None
    for p in range(P):
        single = LSALSA(data["A"], ALPHA, T, mu=2.0, **options)
        (((X[p] - single(Y[p:p + 1])[0]) ** 2).sum() / (2 * P)).backward()
        if magnitude is None:
            magnitude = {n: torch.zeros_like(q) for n, q in single.named_parameters()}
        for name, param in single.named_parameters():
            magnitude[name] += param.grad.abs()
    return magnitude, max(P, X.shape[1], Y.shape[1]) + 1


def test_one_full_batch_epoch_is_one_sgd_step_on_eq15(data):
    """With the whole set as one batch, epoch 1 is exactly one vanilla SGD step on Eq. 15."""
    enc, ref, L = _full_batch_gradient(data, learn_thresholds=False)
    Y, X = torch.as_tensor(data["Y"]), torch.as_tensor(data["X"])
    result = _train(data, enc, lr=0.3, batch_size=len(Y), max_epochs=1, val_signals=None,
                    val_references=None, **VANILLA_SGD)
    # The trainer runs the same network on the rows in another order: codes within the
    # rounding of the layers (encoder_error, per sample e_p), so Eq. 15 (P N non-negative
    # terms) within sqrt(2 L) rms(e) + rms(e)^2 / 2 + gamma(P N) L, for each of the two.
    P, N = Y.shape[0], X.shape[1]
    e = encoder_error(ref, Y)[:, 0]
    rms = float(np.sqrt(np.mean(e**2)))
    assert abs(result.history[1]["loss"] - L) <= 2 * (np.sqrt(2 * L) * rms + rms**2 / 2
                                                      + gamma(P * N) * L)
    # Each sample's gradient passes through 2T + 2 rounded stages (T layers forward, T back,
    # the loss, the outer product) of sums of at most n terms: first order, within
    # (2T + 2) gamma(n) of its magnitude; the sum over samples adds gamma(P). Per entry:
    # |dW| <= lr (2T + 2 + 1) gamma(n) sum_p |g_p| for each side, plus the update's rounding.
    magnitude, n = _gradient_magnitude(data, learn_thresholds=False)
    for name in ("W", "S"):
        want = getattr(ref, name).detach() - 0.3 * getattr(ref, name).grad
        bound = (2 * 0.3 * (2 * 3 + 3) * gamma(n) * magnitude[name]
                 + 4 * gamma(1) * want.abs())
        assert bool(((getattr(enc, name).detach() - want).abs() <= bound).all()), name
    assert torch.equal(enc.thresholds, ref.thresholds)  # fixed: a hyperparameter


def test_step_scaling_optimises_each_tensor_divided_by_its_size(data):
    """SGD on P / s moves P by lr s^2 dL/dP; Adam's first step moves each entry by lr s."""
    enc, ref, _ = _full_batch_gradient(data)
    scales = step_scales(ref)
    S0 = ref.S.detach().double()
    assert scales["S"] == pytest.approx(float(torch.linalg.matrix_norm(S0, ord=2))
                                        / S0.shape[0], rel=1e-12)
    assert scales["thresholds"] == pytest.approx(ALPHA / 2.0, rel=1e-12)  # alpha / mu
    full = {"lr": 0.3, "batch_size": len(data["Y"]), "max_epochs": 1, "grad_clip": None,
            "schedule": "constant", "val_signals": None, "val_references": None}
    _train(data, enc, optimizer="sgd", **full)
    # The gradient's rounding as in the vanilla step above, times the step's factor s^2.
    magnitude, n = _gradient_magnitude(data)
    for name in ("W", "S", "thresholds"):
        param = getattr(ref, name)
        want = param.detach() - 0.3 * scales[name] ** 2 * param.grad
        bound = (2 * 0.3 * scales[name] ** 2 * (2 * 3 + 3) * gamma(n) * magnitude[name]
                 + 4 * gamma(1) * want.abs())
        assert bool(((getattr(enc, name).detach() - want).abs() <= bound).all()), name
    adam, ref, _ = _full_batch_gradient(data)
    _train(data, adam, optimizer="adam", **{**full, "lr": 1e-3})
    for name in ("W", "S"):
        moved = (getattr(adam, name) - getattr(ref, name)).detach().abs()
        # Adam's first step is lr g / (|g| + eps): off by eps / |g| <= 1e-5 where |g| >= 1e-3
        # (eps = 1e-8; the gradient's own rounding only changes g / |g| at second order);
        # the subtraction that measures it loses at most eps_64 |P| / step.
        significant = getattr(ref, name).grad.abs() >= 1e-3
        assert significant.float().mean() > 0.5
        torch.testing.assert_close(moved[significant], torch.full_like(
            moved[significant], 1e-3 * scales[name]), rtol=2e-5, atol=0)


def test_threshold_lr_scales_only_the_thresholds_step(data):
    """Adam's first step moves each entry by lr s; ``threshold_lr`` multiplies that step for
    the thresholds alone (W and S move exactly as with the default)."""
    full = {"lr": 1e-3, "batch_size": len(data["Y"]), "max_epochs": 1, "grad_clip": None,
            "schedule": "constant", "val_signals": None, "val_references": None}
    plain, ref, _ = _full_batch_gradient(data)
    slow, _, _ = _full_batch_gradient(data)
    scales = step_scales(ref)
    _train(data, plain, **full)
    _train(data, slow, threshold_lr=0.25, **full)
    for name in ("W", "S"):
        assert torch.equal(getattr(plain, name), getattr(slow, name)), name
    moved = (slow.thresholds - ref.thresholds).detach().abs()
    significant = ref.thresholds.grad.abs() >= 1e-3  # as above: Adam's eps / |g| <= 1e-5
    assert significant.float().mean() > 0.5
    torch.testing.assert_close(moved[significant], torch.full_like(
        moved[significant], 0.25 * 1e-3 * scales["thresholds"]), rtol=2e-5, atol=0)
    with pytest.raises(InputError, match="threshold_lr"):
        _train(data, threshold_lr=0.0)


def test_training_lowers_loss_and_validation_rmse(data):
    result = _train(data, max_epochs=30)
    losses = [h["loss"] for h in result.history[1:]]
    assert losses[-1] < 0.8 * losses[0]
    assert result.val_rmse < 0.8 * result.initial_val_rmse
    # RMSEs of codes that differ only by rounding (other batches, other code path): per
    # sample |rmse(a) - rmse(b)| <= rmse(a - b) <= ||a - b|| / sqrt(N), with ||a - b|| within
    # twice the layers' rounding bound; the RMSE itself is a sum of N and a mean of P terms.
    P, N = data["Xv"].shape

    def rmse_bound(errors, value):
        return 2 * float(errors.mean()) / np.sqrt(N) + 2 * gamma(N + P + 2) * value

    salsa = float(code_rmse(torch.as_tensor(lsalsa.solve(data["Yv"], data["A"], ALPHA, "salsa",
                                                         n_iter=2, mu=2.0).codes),
                            torch.as_tensor(data["Xv"])).mean())
    initial = iteration_error("salsa", data["Yv"], data["A"], ALPHA, 2, mu=2.0)
    assert abs(result.initial_val_rmse - salsa) <= rmse_bound(initial, salsa)
    batched = validation_rmse(result.encoder, data["Yv"], data["Xv"], batch_size=7)
    trained = encoder_error(result.encoder, data["Yv"])
    assert abs(result.val_rmse - batched) <= rmse_bound(trained, batched)


def _tiny_problem(D: int, seed: int = 2):
    rng = np.random.default_rng(seed)
    dicts = [random_dictionary(rng, 8, 6) for _ in range(D)]
    alphas = [0.1, 0.3][:D]
    Y = rng.standard_normal((200, 8))
    X = lsalsa.solve(Y, dicts, alphas, method="exact").codes
    return (dicts if D > 1 else dicts[0]), alphas, Y, X


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
@pytest.mark.parametrize("D", [1, 2])
def test_default_recipe_lowers_validation_rmse(kind, D):
    """The defaults alone (only depth and epochs given) train both encoders, SC and MCA."""
    dicts, alphas, Y, X = _tiny_problem(D)
    # As the pipeline does: start as the classic algorithm at its best mu for T (validation).
    mu = best_classic(Y[160:], X[160:], dicts, "salsa", [3], [alphas])[3]["mu"]
    enc = lsalsa.build_encoder(kind, dicts, alphas, 3, mu if kind == "lsalsa" else None)
    tau0 = enc.thresholds.detach().clone()
    # 160 rows are 3 default mini-batches: 60 epochs make the 180 steps of a real epoch's few.
    result = train(enc, Y[:160], X[:160], val_signals=Y[160:], val_references=X[160:],
                   max_epochs=60)
    assert result.val_rmse < 0.8 * result.initial_val_rmse
    assert result.best_epoch > 0
    assert not torch.equal(enc.thresholds.detach(), tau0)  # both learn their thresholds


def test_best_epoch_is_kept_and_the_start_when_every_epoch_is_worse(data):
    """Training never returns an encoder worse on validation than where it started."""
    start = LSALSA(data["A"], ALPHA, 2, mu=2.0)
    wrecked = _train(data, LSALSA(data["A"], ALPHA, 2, mu=2.0), lr=100.0, max_epochs=3,
                     patience=None)
    assert all(h["val_rmse"] > wrecked.initial_val_rmse for h in wrecked.history[1:])
    assert wrecked.best_epoch == 0 and wrecked.val_rmse == wrecked.initial_val_rmse
    _assert_same_weights(wrecked.encoder, start)
    # An ordinary run returns its best epoch, not its last.
    result = _train(data, max_epochs=6)
    vals = [h["val_rmse"] for h in result.history]
    assert result.best_epoch == int(np.argmin(vals)) and result.val_rmse == min(vals)
    assert result.val_rmse == pytest.approx(
        validation_rmse(result.encoder, data["Yv"], data["Xv"]), rel=1e-12)


def test_patience_stops_when_validation_stops_improving(data):
    result = _train(data, lr=100.0, max_epochs=20, patience=2)
    assert result.stopped == "patience" and result.epochs == 2 and result.best_epoch == 0


def test_sgd_with_the_default_safeguards_does_not_diverge(data):
    """Signals 30x larger make vanilla SGD blow up; the scaled, clipped step does not."""
    big = {**data, "Y": 30 * data["Y"], "X": 30 * data["X"], "Yv": 30 * data["Yv"],
           "Xv": 30 * data["Xv"]}
    vanilla = _train(big, lr=0.05, max_epochs=3, **VANILLA_SGD)
    assert vanilla.stopped == "diverged"
    _assert_same_weights(vanilla.encoder, LSALSA(data["A"], ALPHA, 2, mu=2.0))
    safe = _train(big, optimizer="sgd", lr=0.05, max_epochs=3)
    assert all(np.isfinite(h["loss"]) for h in safe.history[1:])
    assert safe.val_rmse < safe.initial_val_rmse


def test_reconstruction_weight_adds_each_components_error(data):
    """The loss is 1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2 per sample: the default w is 0 for one
    dictionary (Eq. 15) and 1 for several."""
    dicts, alphas, Y, X = _tiny_problem(2)
    for w, want_w in ((None, 1.0), (0.0, 0.0), (2.5, 2.5)):
        enc = LSALSA(dicts, alphas, 2, mu=2.0)
        with torch.no_grad():
            e = enc(torch.as_tensor(Y)) - torch.as_tensor(X)
            parts = [e[:, :6] @ torch.as_tensor(dicts[0]).T, e[:, 6:] @ torch.as_tensor(
                dicts[1]).T]
            want = (0.5 * e.pow(2).sum(1) + 0.5 * want_w * sum(
                p.pow(2).sum(1) for p in parts)).mean()
        result = train(enc, Y, X, reconstruction_weight=w, lr=1e-12, max_epochs=1,
                       batch_size=len(Y))
        assert result.history[1]["loss"] == pytest.approx(float(want), rel=1e-10)
    single = _train(data, max_epochs=1, lr=1e-12, batch_size=len(data["Y"]))
    eq15 = _train(data, max_epochs=1, lr=1e-12, batch_size=len(data["Y"]),
                  reconstruction_weight=0.0)
    assert single.history[1]["loss"] == eq15.history[1]["loss"]


def test_lr_schedules_and_rel_tol_stop(data):
    cosine = _train(data, lr=0.04, max_epochs=4)
    assert [h["lr"] for h in cosine.history[1:]] == pytest.approx(
        [0.04 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)])
    inverse = _train(data, lr=0.05, schedule="constant", lr_decay=0.5, max_epochs=3)
    assert [h["lr"] for h in inverse.history[1:]] == pytest.approx([0.05, 0.05 / 1.5, 0.05 / 2])
    assert inverse.stopped == "max_epochs" and inverse.epochs == 3
    stopped = _train(data, rel_tol=0.9, max_epochs=50)
    assert stopped.stopped == "rel_tol" and stopped.epochs == 2


@pytest.mark.parametrize("validation", [True, False])
def test_divergence_is_reported_and_the_best_epoch_kept(data, tmp_path, validation):
    options = {} if validation else {"val_signals": None, "val_references": None}
    run = tmp_path / "run"
    result = _train(data, lr=1e6, max_epochs=20, run_dir=run, **VANILLA_SGD, **options)
    assert result.stopped == "diverged" and result.epochs < 20
    assert result.best_epoch == 0 and result.history[-1]["loss"] is None
    start = LSALSA(data["A"], ALPHA, 2, mu=2.0)
    _assert_same_weights(result.encoder, start)
    # Nothing written holds NaN: strict JSON, and the model and checkpoint hold the start.
    json.loads((run / "history.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"{c} in history.json"))
    _assert_same_weights(load_encoder(run / "model.safetensors"), start)
    model_state, *_ = load_checkpoint(run / "checkpoint.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in model_state.values())


def test_a_model_with_non_finite_weights_is_not_saved(tmp_path):
    enc = LSALSA(np.eye(4), 0.1, 2)
    with torch.no_grad():
        enc.S[0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or Inf; nothing was written"):
        enc.save(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_seed_determines_the_result(data):
    a, b, c = _train(data), _train(data), _train(data, seed=4)
    _assert_same_weights(a.encoder, b.encoder)
    assert not torch.equal(a.encoder.S, c.encoder.S)


def test_memory_mapped_and_tensor_inputs_match_arrays(data, tmp_path):
    np.save(tmp_path / "Y.npy", data["Y"])
    np.save(tmp_path / "X.npy", data["X"])
    Y = np.load(tmp_path / "Y.npy", mmap_mode="r")
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    mm = train(LSALSA(data["A"], ALPHA, 2, mu=2.0), Y, X, lr=0.05, batch_size=16,
               max_epochs=2, seed=3)
    tt = train(LSALSA(data["A"], ALPHA, 2, mu=2.0), torch.as_tensor(data["Y"]),
               torch.as_tensor(data["X"]), lr=0.05, batch_size=16, max_epochs=2, seed=3)
    ref = _train(data, lr=0.05, max_epochs=2, val_signals=None, val_references=None)
    _assert_same_weights(mm.encoder, ref.encoder)
    _assert_same_weights(tt.encoder, ref.encoder)


@pytest.mark.parametrize("change,message", [
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"lr": 1e300}, r"lr must be a number in \(0, 1e\+06\], got 1e\+300"),  # a RuntimeError
    ({"batch_size": 0}, "batch_size"),
    ({"max_epochs": 1.5}, "max_epochs"),
    ({"seed": "x"}, "seed"),
    ({"val_references": None}, "both"),
    ({"schedule": "step"}, "schedule"),
    ({"schedule": "plateau", "val_signals": None, "val_references": None}, "plateau schedule"),
    ({"grad_clip": 0.0}, "grad_clip"),
    ({"patience": 0}, "patience"),
    ({"reconstruction_weight": -1.0}, "reconstruction_weight"),
    ({"anchor_decay": float("inf")}, "anchor_decay"),
])
def test_bad_options(data, change, message):
    with pytest.raises(InputError, match=message):
        _train(data, **change)


def test_bad_data(data):
    enc = LSALSA(data["A"], ALPHA, 2)
    with pytest.raises(InputError, match="columns"):
        train(enc, data["Y"][:, :5], data["X"])
    with pytest.raises(InputError, match="rows"):
        train(enc, data["Y"], data["X"][:10])
    bad = data["X"].copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        train(enc, data["Y"], bad)
    with pytest.raises(InputError, match="LISTA or LSALSA"):
        train(torch.nn.Linear(8, 12), data["Y"], data["X"])


# -- run directories, checkpoints and resume ------------------------------------------------

def test_run_directory_contents(data, tmp_path):
    run = tmp_path / "run"
    result = _train(data, run_dir=run, max_epochs=3, data_info={"dataset": "toy"})
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["seed"] == 3 and config["training"]["lr"] == DEFAULTS["lr"]
    assert config["encoder"]["kind"] == "lsalsa" and config["data"]["dataset"] == "toy"
    assert config["data"]["train"]["P"] == 120 and config["data"]["validation"]["P"] == 40
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["lsalsa_version"] == lsalsa.__version__ and "git_commit" in prov
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    model = load_encoder(run / "model.safetensors")
    _assert_same_weights(model, result.encoder)
    _, extra = read_model_header(run / "model.safetensors")
    assert extra["training"]["epochs"] == 3
    assert extra["training"]["val_rmse"] == pytest.approx(result.val_rmse)
    assert not list(run.glob(".*.tmp"))  # no temporary files left behind


class _Killed(Exception):
    pass


def _kill_after(epoch: int):
    def callback(entry):
        if entry["epoch"] == epoch:
            raise _Killed
    return callback


@pytest.mark.parametrize("options", [{}, {"optimizer": "sgd", "momentum": 0.9},
                                     {"schedule": "constant", "lr_decay": 0.3},
                                     {"anchor_decay": 5.0}, {"lr": 3.0},
                                     {"schedule": "plateau", "lr": 3.0}])
def test_resume_equals_uninterrupted(data, tmp_path, options):
    whole = _train(data, max_epochs=5, **options)
    run = tmp_path / "run"
    with pytest.raises(_Killed):
        _train(data, run_dir=run, max_epochs=5, callback=_kill_after(2), **options)
    resumed = _train(data, run_dir=run, resume=True, max_epochs=5, **options)
    assert resumed.resumed_from == 2 and resumed.epochs == 5
    assert resumed.best_epoch == whole.best_epoch
    _assert_same_weights(resumed.encoder, whole.encoder)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    # Resuming a finished run changes nothing.
    again = _train(data, run_dir=run, resume=True, max_epochs=5, **options)
    assert again.epochs == 5
    _assert_same_weights(again.encoder, whole.encoder)


@pytest.mark.parametrize("schedule", ["constant", "plateau"])
def test_a_schedule_of_no_fixed_length_may_grow_max_epochs_on_resume(data, tmp_path,
                                                                      schedule):
    run = tmp_path / "run"
    _train(data, run_dir=run, max_epochs=2, schedule=schedule, patience=None)
    grown = _train(data, run_dir=run, resume=True, max_epochs=4, schedule=schedule,
                   patience=None)
    assert grown.epochs == 4
    with pytest.raises(InputError, match="max_epochs"):
        _train(data, run_dir=tmp_path / "cosine", max_epochs=2)
        _train(data, run_dir=tmp_path / "cosine", resume=True, max_epochs=4)


def test_resume_refuses_other_settings_and_fresh_run_refuses_old_dir(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run_dir=run, max_epochs=1)
    with pytest.raises(InputError, match="already holds a run"):
        _train(data, run_dir=run, max_epochs=1)
    with pytest.raises(InputError, match=r"training\.lr differ"):
        _train(data, run_dir=run, resume=True, lr=0.05, max_epochs=1)
    with pytest.raises(InputError, match=r"encoder\.depth"):
        _train(data, LSALSA(data["A"], ALPHA, 3, mu=2.0), run_dir=run, resume=True)
    (run / "checkpoint.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt or truncated"):
        _train(data, run_dir=run, resume=True, max_epochs=1)


def test_optimizer_state_round_trip():
    p = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.8, 0.99))
    for _ in range(3):
        opt.zero_grad()
        (p ** 3).sum().backward()
        opt.step()
    tensors, meta = flatten_optimizer(opt.state_dict())
    back = unflatten_optimizer(tensors, json.loads(json.dumps(meta)))
    fresh = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=0.5)
    fresh.load_state_dict(back)
    assert fresh.param_groups[0]["betas"] == (0.8, 0.99) and fresh.param_groups[0]["lr"] == 0.1
    for key, value in opt.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import lsalsa
    from lsalsa.workflow.training_run import train_in_dir

    run_dir, resume, pause = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 12)); A /= np.linalg.norm(A, axis=0)
    Y = rng.standard_normal((96, 8))
    X = lsalsa.solve(Y, A, 0.2, method="fista", n_iter=300).codes
    enc = lsalsa.LSALSA(A, 0.2, 3, mu=2.0)
    train_in_dir(run_dir, enc, Y, X, optimizer="adam", lr=0.01, lr_decay=0.1, batch_size=10,
                 max_epochs=6, seed=11, resume=resume, progress=False,
                 callback=lambda entry: time.sleep(pause))
""")


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)

    def run(run_dir, resume, pause="0"):
        return subprocess.run([sys.executable, str(script), str(run_dir), resume, pause],
                              check=True, timeout=120)

    run(tmp_path / "whole", "0")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed), "0", "0.5"])
    deadline = time.monotonic() + 60
    while not (killed / "checkpoint.safetensors").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists()  # it really was cut short
    _, _, state, _ = load_checkpoint(killed / "checkpoint.safetensors")
    assert 1 <= state["epoch"] < 6
    run(killed, "1")
    a, b = load_encoder(killed / "model.safetensors"), load_encoder(tmp_path / "whole" /
                                                                   "model.safetensors")
    _assert_same_weights(a, b)
    assert json.loads((killed / "history.json").read_text())[-1]["loss"] == json.loads(
        (tmp_path / "whole" / "history.json").read_text())[-1]["loss"]


# -- search -------------------------------------------------------------------------------------

def test_search_grid_selection_and_tables(data, tmp_path, monkeypatch):
    run = tmp_path / "search"
    grid = {"depths": [1, 2], "alphas": [0.1, 0.2], "mus": [1.0, 2.0], "lrs": [0.01, 0.03],
            "lr_decays": [0.0], "epochs": 1, "train_options": {"batch_size": 16},
            "progress": False}
    result = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], run_dir=run,
                    **grid)
    counts = {m: sum(r["method"] == m for r in result.rows)
              for m in ("fista", "salsa", "lista", "lsalsa")}
    assert counts == {"fista": 4, "salsa": 8, "lista": 4, "lsalsa": 4}
    for (method, T), best in result.best.items():
        same = [r["val_rmse"] for r in result.rows if r["method"] == method and r["T"] == T]
        assert best["val_rmse"] == min(same)
    # A classic row is the RMSE of the solver at exactly T iterations.
    row = next(r for r in result.rows if r["method"] == "salsa" and r["T"] == 2
               and r["alpha"] == 0.1 and r["mu"] == 2.0)
    codes = lsalsa.solve(data["Yv"], data["A"], 0.1, "salsa", n_iter=2, mu=2.0).codes
    assert row["val_rmse"] == pytest.approx(np.sqrt(((codes - data["Xv"]) ** 2).mean(1)).mean(),
                                            rel=1e-12)
    # Each LSALSA starts from the best SALSA (alpha, mu) at its depth, and is never worse.
    for T in (1, 2):
        salsa = result.best[("salsa", T)]
        for r in result.rows:
            if r["method"] == "lsalsa" and r["T"] == T:
                assert (r["alpha"], r["mu"]) == (salsa["alpha"], salsa["mu"])
                assert r["val_rmse"] <= salsa["val_rmse"]
    assert len(json.loads((run / "results.json").read_text())) == 20
    assert (run / "results.csv").read_text().count("\n") == 21
    assert len(json.loads((run / "best.json").read_text())) == 8

    # A rerun of the same search skips every finished trial (nothing is trained again).
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(importlib.import_module("lsalsa.workflow.search"), "train", no_training)
    again = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], run_dir=run, **grid)
    assert again.rows == json.loads((run / "results.json").read_text())
    with pytest.raises(InputError, match="different search"):
        search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], run_dir=run,
               **{**grid, "alphas": [0.3]})


def test_search_over_the_thresholds_step(data, tmp_path):
    """The thresholds' step is a knob of the methods that learn thresholds only; its trial at
    1 is the default's trial exactly, and the best row per depth is the lowest of all."""
    grid = {"depths": [2], "alphas": [0.2], "mus": [2.0], "lrs": [0.03], "epochs": 2,
            "methods": ("salsa", "lsalsa", "lsalsa-fixed"),
            "train_options": {"batch_size": 16}, "progress": False}
    plain = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], **grid)
    both = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"],
                  threshold_lrs=[0.1, 1.0], run_dir=tmp_path / "s", **grid)
    steps = {r["method"]: [] for r in both.rows}
    for r in both.rows:
        steps[r["method"]].append(r["threshold_lr"])
    assert steps == {"salsa": [None], "lsalsa": [0.1, 1.0], "lsalsa-fixed": [None]}
    rmse = {(r["method"], r["threshold_lr"]): r["val_rmse"] for r in both.rows}
    default = {(r["method"], r["threshold_lr"]): r["val_rmse"] for r in plain.rows}
    assert rmse[("lsalsa", 1.0)] == default[("lsalsa", 1.0)]
    assert rmse[("lsalsa-fixed", None)] == default[("lsalsa-fixed", None)]
    assert rmse[("lsalsa", 0.1)] != rmse[("lsalsa", 1.0)]
    assert both.best[("lsalsa", 2)]["val_rmse"] == min(rmse[("lsalsa", 0.1)],
                                                      rmse[("lsalsa", 1.0)])
    header = (tmp_path / "s" / "results.csv").read_text().splitlines()[0]
    assert "threshold_lr" in header.split(",")
    with pytest.raises(InputError, match="threshold_lr"):
        search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"],
               threshold_lrs=[0.0], **grid)


def test_search_with_untied_layers_unties_all_but_the_paper_s_model(data, tmp_path,
                                                                   monkeypatch):
    """``untied`` gives every learned trial one S per layer but lsalsa-fixed's (the paper's
    tied model); the search records it, so a folder of tied trials is not resumed untied, and
    a tied search records nothing new (earlier folders still resume)."""
    module = importlib.import_module("lsalsa.workflow.search")
    built = {}

    def spy(kind, *args, **options):
        encoder = build_encoder(kind, *args, **options)
        built.setdefault(options["learn_thresholds"], []).append(encoder)
        return encoder

    monkeypatch.setattr(module, "build_encoder", spy)
    # Depth 3: the first layer's S multiplies a zero iterate, so two layers tied and untied
    # train alike.
    grid = {"depths": [3], "alphas": [0.2], "mus": [2.0], "lrs": [0.1], "epochs": 2,
            "methods": ("salsa", "lista", "lsalsa", "lsalsa-fixed"),
            "train_options": {"batch_size": 16}, "progress": False}
    untied = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], untied=True,
                    run_dir=tmp_path / "untied", **grid)
    assert [e.untied for e in built[True]] == [True, True]  # lista, lsalsa
    assert [e.untied for e in built[False]] == [False]  # lsalsa-fixed
    assert tuple(built[True][1].S.shape) == (3, 12, 12)
    assert json.loads((tmp_path / "untied" / "config.json").read_text())["untied"] is True
    built.clear()
    tied = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"],
                  run_dir=tmp_path / "tied", **grid)
    assert not any(e.untied for group in built.values() for e in group)
    assert "untied" not in json.loads((tmp_path / "tied" / "config.json").read_text())
    rmse = {(r["method"], kind): r["val_rmse"] for kind, result in (("u", untied), ("t", tied))
            for r in result.rows}
    assert rmse[("lsalsa-fixed", "u")] == rmse[("lsalsa-fixed", "t")]
    assert rmse[("lsalsa", "u")] != rmse[("lsalsa", "t")]
    with pytest.raises(InputError, match="different search"):
        search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], untied=True,
               run_dir=tmp_path / "tied", **grid)
    with pytest.raises(InputError, match="untied must be true or false"):
        search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], untied=1, **grid)


def test_a_search_grid_may_be_any_iterable_and_resumes_whatever_its_number_types(
        data, tmp_path, monkeypatch):
    """A range or an array is a grid too, and a grid written [0] trained the trials [0.0]
    names: a rerun reuses them, whichever way either run wrote its numbers."""
    run = tmp_path / "search"
    grid = {"alphas": [0.2], "epochs": 1, "methods": ("salsa", "lsalsa"),
            "train_options": {"batch_size": 16}, "progress": False, "run_dir": run}
    search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], depths=range(1, 2),
           mus=np.array([2]), lrs=[1 / 10], lr_decays=[0], **grid)
    # As a search before the grid was declared wrote it: its numbers as given.
    rows = json.loads((run / "results.json").read_text())
    for row in rows:
        row["lr_decay"] = None if row["lr_decay"] is None else 0
    (run / "results.json").write_text(json.dumps(rows))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr_decays": [0]}))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(importlib.import_module("lsalsa.workflow.search"), "train", no_training)
    again = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], depths=[1],
                   mus=[2.0], lrs=[0.1], lr_decays=[0.0], **grid)
    assert again.rows == rows


def test_a_search_from_before_the_thresholds_step_resumes_without_training(data, tmp_path,
                                                                          monkeypatch, capsys):
    """Rows written before ``threshold_lr`` was a column were trained at the default step:
    a rerun of the same search (default grid) reuses them, in the library and the CLI."""
    run = tmp_path / "search"
    grid = {"depths": [1], "alphas": [0.2], "mus": [2.0], "epochs": 1,
            "methods": ("salsa", "lsalsa"), "train_options": {"batch_size": 16},
            "progress": False}
    search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], run_dir=run, **grid)
    rows = json.loads((run / "results.json").read_text())
    for row in rows:
        del row["threshold_lr"]
    (run / "results.json").write_text(json.dumps(rows))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(importlib.import_module("lsalsa.workflow.search"), "train", no_training)
    again = search(data["Y"], data["X"], data["Yv"], data["Xv"], data["A"], run_dir=run, **grid)
    assert again.rows == rows
    # lsalsa search prints each winner's knobs, old rows (no such column) included.
    files = {}
    for name, key in (("signals", "Y"), ("codes", "X"), ("dict", "A")):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], data[key].astype(np.float32))
    args = ["search", "--signals", str(files["signals"]), "--references", str(files["codes"]),
            "--dict", str(files["dict"]), "--depths", "1", "--alphas", "0.2", "--methods",
            "salsa", "lsalsa", "--epochs", "1", "--run-dir", str(tmp_path / "cli"), "--quiet"]
    monkeypatch.undo()
    assert main(args) == 0
    rows = json.loads((tmp_path / "cli" / "results.json").read_text())
    for row in rows:
        del row["threshold_lr"]
    (tmp_path / "cli" / "results.json").write_text(json.dumps(rows))
    monkeypatch.setattr(importlib.import_module("lsalsa.workflow.search"), "train", no_training)
    capsys.readouterr()
    assert main(args) == 0
    assert "lsalsa  T=1" in capsys.readouterr().out


def test_classic_selection_refuses_bad_grids_and_empty_data(data):
    with pytest.raises(InputError, match="mu must be a positive number"):  # not run as 10
        best_classic(data["Yv"], data["Xv"], data["A"], "salsa", [1], [0.1], mus=(0.0,))
    with pytest.raises(InputError, match="non-empty"):
        best_classic(data["Yv"][:0], data["Xv"][:0], data["A"], "salsa", [1], [0.1])


def test_best_classic_takes_the_lowest_validation_rmse_per_depth(data):
    best = best_classic(data["Yv"], data["Xv"], data["A"], "salsa", [1, 3], [0.1, 0.2],
                        mus=(0.5, 2.0))
    for T, chosen in best.items():
        scores = {(a, m): float(np.sqrt(((lsalsa.solve(data["Yv"], data["A"], a, "salsa",
                                                       n_iter=T, mu=m).codes - data["Xv"])
                                         ** 2).mean(1)).mean())
                  for a in (0.1, 0.2) for m in (0.5, 2.0)}
        assert (chosen["alpha"], chosen["mu"]) == min(scores, key=scores.get)
        assert chosen["val_rmse"] == pytest.approx(min(scores.values()), rel=1e-12)


def test_search_validates(data):
    with pytest.raises(InputError, match=r"methods must be one of ista, fista, salsa, .*, "
                                         r"got 'ista2'"):
        search(None, None, data["Yv"], data["Xv"], data["A"], depths=[1], alphas=[0.1],
               methods=["ista2"])
    with pytest.raises(InputError, match="depth"):
        search(None, None, data["Yv"], data["Xv"], data["A"], depths=[0], alphas=[0.1],
               methods=["fista"])
    # the alpha grid (SearchGrid.alphas): numbers >= 0, each one or one per dictionary
    for alphas, message in (([], r"^alphas must be a non-empty list"),
                            ([-0.1], r"^alphas must be a number >= 0"),
                            (["0.1:x"], r"^alphas must be a number >= 0, or one per dictionary"),
                            ([[0.1, 0.2, 0.3]], r"^`alphas`: \[0.1, 0.2, 0.3\] has 3 values "
                                                r"for 1 dictionaries")):
        with pytest.raises(InputError, match=message):
            search(None, None, data["Yv"], data["Xv"], data["A"], depths=[1], alphas=alphas,
                   methods=["fista"])


@pytest.mark.parametrize("value, parsed", [(0.1, 0.1), ("0.1", 0.1), ("0.1:0.2", [0.1, 0.2]),
                                           ([0.1, 0.2], [0.1, 0.2]), (np.array([1, 2]),
                                                                      [1.0, 2.0])])
def test_a_grid_alpha_is_one_number_or_one_per_dictionary(value, parsed):
    from lsalsa.core.training.search import grid_alpha

    assert grid_alpha(value, "alphas") == parsed


# -- CLI ----------------------------------------------------------------------------------------

@pytest.fixture
def files(data, tmp_path):
    paths = {}
    for key, name in (("Y", "signals"), ("X", "codes"), ("A", "dict")):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], data[key].astype(np.float32))
    return paths


def test_cli_train_and_resume(files, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["train", "--signals", str(files["signals"]), "--references", str(files["codes"]),
              "--dict", str(files["dict"]), "--alpha", "0.2", "--depth", "2", "--mu", "2",
              "--lr", "0.05", "--schedule", "constant", "--batch-size", "16",
              "--run-dir", str(run), "--quiet"]
    args = [*common, "--epochs", "2"]
    assert main(args) == 0
    assert "validation RMSE" in capsys.readouterr().out
    model = load_encoder(run / "model.safetensors")
    assert model.depth == 2 and model.W.dtype == torch.float32 and model.mu == 2.0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["validation_split"] == "last 12 of 120 rows"
    assert main(args) == 2  # refuses to overwrite a run
    assert "already holds a run" in capsys.readouterr().err
    assert main([*common, "--epochs", "3", "--resume", "--batch-size", "8"]) == 2
    assert "training.batch_size" in capsys.readouterr().err
    assert main([*common, "--epochs", "3", "--resume"]) == 0
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 3


def test_cli_train_from_codes_directory(data, files, tmp_path, monkeypatch):
    from lsalsa.core.codes import compute_codes
    from lsalsa.workflow.code_sets import save_codes

    A = data["A"].astype(np.float32)
    values, stats = compute_codes(data["Y"], [A], [ALPHA])
    codes = save_codes(tmp_path / "codes", {"train": values}, [A], [ALPHA],
                       stats={"train": stats})

    class Prepared:
        path = tmp_path
        splits = ("train",)

        def __init__(self):
            self.meta = {"name": "toy"}

        def signals(self, split):
            return np.load(files["signals"], mmap_mode="r")

        def split(self, name):  # 120 rows: 40 images of 3 patches
            return {"image_index": np.repeat(np.arange(40), 3)}

    monkeypatch.setattr("lsalsa.workflow.training_data.load_prepared",
                        lambda name, root=None: Prepared())
    run = tmp_path / "run"
    assert main(["train", "--data", "toy", "--codes", str(codes), "--model", "lista",
                 "--depth", "2", "--epochs", "1", "--run-dir", str(run), "--quiet"]) == 0
    model = load_encoder(run / "model.safetensors")
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["dataset"] == "toy"
    # The start: ISTA's best multiple of the codes' alpha at T = 2 on the held-out images.
    assert config["data"]["validation_split"] == "last 4 of 40 training images"
    start = config["data"]["start"]
    assert model.kind == "lista" and model.alphas == tuple(start["alpha"])
    assert start["alpha"][0] in (0.5 * ALPHA, ALPHA, 2 * ALPHA) and start["mu"] is None


def test_cli_train_that_diverges_exits_1_with_one_warning_line(files, tmp_path, capsys):
    """A diverged training exits through the CLI's one rule (TrainingDiverged), as
    ``lsalsa experiment run`` does: the run is written, its model the best epoch."""
    run = tmp_path / "run"
    assert main(["train", "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--alpha", "0.2", "--depth", "2", "--mu", "2",
                 "--optimizer", "sgd", "--no-step-scaling", "--grad-clip", "none",
                 "--schedule", "constant", "--lr", "1e6", "--epochs", "20",
                 "--batch-size", "16", "--run-dir", str(run), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "trained lsalsa T=2" in captured.out
    err = captured.err.strip()
    assert err.startswith("lsalsa: warning: the loss diverged at epoch ") and "\n" not in err
    assert err.endswith("; the model holds epoch 0, the best on validation")
    assert (run / "model.safetensors").is_file()


def test_the_split_holds_out_whole_images_and_keeps_memory_maps(files):
    """One rule for the pipeline and ``lsalsa train``: the last images, whatever their number
    of patches, never part of one; the arrays are sliced, not copied."""
    from lsalsa.workflow.training_data import hold_out

    Y, X = np.load(files["signals"], mmap_mode="r"), np.load(files["codes"], mmap_mode="r")
    image = np.repeat(np.arange(7), [30, 5, 20, 10, 25, 12, 18])  # 120 rows
    split = hold_out(Y, X, val_fraction=0.3, image_index=image)  # round(2.1) = 2 images
    assert split.validation == "last 2 of 7 training images"
    assert np.array_equal(split.signals, Y[:90]) and np.array_equal(split.val_references, X[90:])
    assert isinstance(split.signals, np.memmap) and isinstance(split.val_signals, np.memmap)
    assert hold_out(Y, X, val_fraction=0.1).validation == "last 12 of 120 rows"
    with pytest.raises(InputError, match="image by image"):
        hold_out(Y, X, val_fraction=0.3, image_index=image[::-1])
    with pytest.raises(InputError, match="7 training images are too few"):
        hold_out(Y, X, val_fraction=0.95, image_index=image)


def test_split_prepared_prefers_the_val_split_and_keeps_a_seeded_subset(data, tmp_path):
    """The pipeline's split (Run.fit_val): the prepared val split when the code set has its
    codes, else the last images; max_train draws the rows it always drew, in stored order."""
    from lsalsa.core.codes import compute_codes
    from lsalsa.workflow.code_sets import load_codes, save_codes
    from lsalsa.workflow.data import load_prepared
    from lsalsa.workflow.training_data import PREPARED_VAL, split_prepared

    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"name": "toy", "kind": "sc"}))
    for split, Y in (("train", data["Y"]), ("val", data["Yv"])):
        np.save(folder / f"{split}_signals.npy", Y.astype(np.float32))
        np.save(folder / f"{split}_image_index.npy", np.repeat(np.arange(len(Y) // 3), 3))
    A = data["A"].astype(np.float32)
    solved = {split: compute_codes(Y, [A], [ALPHA]) for split, Y in
              (("train", data["Y"]), ("val", data["Yv"]))}
    dataset = load_prepared(folder)
    for splits in (["train"], ["train", "val"]):
        codes = save_codes(tmp_path / f"codes_{len(splits)}", {k: solved[k][0] for k in splits},
                           [A], [ALPHA], stats={k: solved[k][1] for k in splits})
        code_set = load_codes(codes)
        split = split_prepared(dataset, code_set, val_fraction=0.1, max_train=50, seed=3,
                               dtype=np.float32)
        n_train = 120 if "val" in splits else 108  # else the last 4 of 40 images held out
        rows = np.sort(np.random.default_rng([3, 31]).choice(n_train, 50, replace=False))
        assert np.array_equal(split.signals, data["Y"][rows].astype(np.float32))
        assert np.array_equal(split.references, code_set.codes("train")[rows])
        val = data["Yv"] if "val" in splits else data["Y"][108:]
        assert np.array_equal(split.val_signals, val.astype(np.float32))
        assert split.validation == (PREPARED_VAL if "val" in splits
                                    else "last 4 of 40 training images")
        assert all(type(a) is np.ndarray and a.dtype == np.float32 for a in
                   (split.signals, split.references, split.val_signals, split.val_references))


def test_cli_search(files, tmp_path, capsys):
    run = tmp_path / "search"
    assert main(["search", "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--depths", "1", "--alphas", "0.1", "0.2",
                 "--methods", "fista", "lsalsa", "--epochs", "1", "--run-dir", str(run),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "fista" in out and "lsalsa" in out
    assert (run / "results.csv").is_file() and (run / "best.json").is_file()
    assert "untied" not in json.loads((run / "config.json").read_text())
    # --untied reaches the search (recorded in its config) and lsalsa train (the model).
    assert main(["search", "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--depths", "3", "--alphas", "0.2",
                 "--methods", "lsalsa", "--epochs", "1", "--untied",
                 "--run-dir", str(tmp_path / "untied"), "--quiet"]) == 0
    assert json.loads((tmp_path / "untied" / "config.json").read_text())["untied"] is True
    assert main(["train", "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--alpha", "0.2", "--depth", "3", "--mu", "2",
                 "--epochs", "1", "--untied", "--run-dir", str(tmp_path / "t"), "--quiet"]) == 0
    assert read_model_header(tmp_path / "t" / "model.safetensors")[0]["untied"] is True


@pytest.mark.parametrize("flags, message", [
    (["search", "--depths", "1", "--alphas", "0.1:x"],
     "argument --alphas: expected a number >= 0, or one per dictionary (a1:a2), got '0.1:x'"),
    (["search", "--depths", "1"], "the following arguments are required: --alphas"),
    (["train", "--depth", "1", "--mu", "auto"],
     "argument --mu: expected a positive number or 'none', got 'auto'"),
    (["train", "--depth", "1", "--mu", "0"],
     "argument --mu: expected a positive number or 'none', got 0.0"),
])
def test_cli_start_and_grid_options_are_checked_as_read(files, tmp_path, capsys, flags,
                                                         message):
    """StartSettings.mu and SearchGrid.alphas: usage errors naming the flag, nothing written."""
    assert main([*flags, "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not (tmp_path / "r").exists()


def test_cli_threshold_steps(files, tmp_path, capsys):
    """--threshold-lr reaches the training (and its config); --threshold-lrs the search's
    grid; a step for fixed thresholds is refused in one line."""
    common = ["--signals", str(files["signals"]), "--references", str(files["codes"]),
              "--dict", str(files["dict"]), "--quiet"]
    assert main(["train", *common, "--alpha", "0.2", "--depth", "2", "--mu", "2", "--epochs",
                 "1", "--threshold-lr", "0.25", "--run-dir", str(tmp_path / "t")]) == 0
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["training"]["threshold_lr"] == 0.25
    assert main(["train", *common, "--alpha", "0.2", "--depth", "2", "--mu", "2", "--epochs",
                 "1", "--fixed-thresholds", "--run-dir", str(tmp_path / "fixed")]) == 0
    header = read_model_header(tmp_path / "fixed" / "model.safetensors")[0]
    assert header["learn_thresholds"] is False
    assert main(["train", *common, "--alpha", "0.2", "--depth", "2", "--fixed-thresholds",
                 "--threshold-lr", "0.25", "--run-dir", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--threshold-lr" in err and "\n" not in err and not (tmp_path / "f").exists()
    assert main(["search", *common, "--depths", "1", "--alphas", "0.2", "--methods", "salsa",
                 "lsalsa", "--epochs", "1", "--threshold-lrs", "0.1", "1",
                 "--run-dir", str(tmp_path / "s")]) == 0
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    assert [r["threshold_lr"] for r in rows if r["method"] == "lsalsa"] == [0.1, 1.0]


def test_the_library_refuses_a_step_for_fixed_thresholds(data):
    with pytest.raises(InputError, match="threshold_lr is the step of learned thresholds"):
        _train(data, LSALSA(data["A"], ALPHA, 2, mu=2.0, learn_thresholds=False),
               threshold_lr=0.5)


@pytest.mark.parametrize("extra,message", [
    (["--signals", "missing.npy", "--references", "x.npy", "--dict", "a.npy"], "not found"),
    (["--data", "toy"], "--data and --codes go together"),
    ([], "give --data and --codes, or --signals, --references and --dict"),
    (["--signals", "s.npy", "--references", "t.npy", "--dict", "a.npy", "--val-signals", "v.npy"],
     "--val-signals and --val-references go together"),
    (["--signals", "s.npy", "--references", "t.npy", "--val-fraction", "1.5"],
     "argument --val-fraction: expected a number in (0, 1), got 1.5"),
])
def test_cli_errors(extra, message, tmp_path, capsys):
    """The library names its parameters; the CLI writes them as its flags."""
    assert main(["train", *extra, "--depth", "2", "--alpha", "0.1",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "`" not in err


@pytest.mark.parametrize("command", ["train", "search"])
def test_cli_refuses_a_learning_rate_beyond_the_maximum_and_writes_nothing(command, files,
                                                                          tmp_path, capsys):
    # --lr 1e300 failed in the optimizer with a traceback, leaving config.json and
    # provenance.json behind in the run dir.
    run = tmp_path / "run"
    knobs = (["--lr", "1e300", "--alpha", "0.2", "--depth", "2", "--mu", "2"]
             if command == "train" else ["--lrs", "0.1", "1e300", "--alphas", "0.2",
                                         "--depths", "1", "--methods", "lsalsa"])
    argv = [command, "--signals", str(files["signals"]), "--references", str(files["codes"]),
            "--dict", str(files["dict"]), *knobs, "--run-dir", str(run), "--quiet"]
    # Checked as the flag is read: a usage error in one line.
    assert main(argv) == 2
    flag = "--lr" if command == "train" else "--lrs"
    assert capsys.readouterr().err.strip() == (
        f"lsalsa {command}: error: argument {flag}: expected a number in (0, 1e+06], got 1e+300")
    assert not run.exists()
    with pytest.raises(InputError, match=r"lrs must be a number in \(0, 1e\+06\], got inf"):
        search(None, None, None, None, None, depths=[1], alphas=[0.1], lrs=[float("inf")])


def test_cli_train_refuses_a_device_other_than_cpu_or_cuda(files, tmp_path, capsys):
    # "meta" tensors hold no values: training failed later with a traceback.
    run = tmp_path / "run"
    assert main(["train", "--signals", str(files["signals"]), "--references", str(files["codes"]),
                 "--dict", str(files["dict"]), "--alpha", "0.2", "--depth", "2", "--mu", "2",
                 "--device", "meta", "--run-dir", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lsalsa: error: --device must be cpu, cuda or cuda:N, got 'meta'"
    assert not run.exists()


# -- real data ----------------------------------------------------------------------------------

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"



@pytest.mark.slow
def test_training_beats_salsa_on_fashion_mnist_patches():
    from _realdata import require_data
    from lsalsa.core.patches import extract_patches
    from lsalsa.workflow.data.sources import read_idx

    images = read_idx(require_data(FASHION, "Fashion-MNIST (Debian dataset-fashion-mnist)"),
                      ndim=3)[:300].astype(np.float64) / 255
    patches = extract_patches(images, 10, stride=6)  # 10x10 patches, 16 per image
    patches = patches[patches.std(axis=1) > 0.1]  # drop flat background
    patches -= patches.mean(axis=1, keepdims=True)
    patches /= np.linalg.norm(patches, axis=1).mean()
    rng = np.random.default_rng(0)
    A = patches[rng.choice(2000, 100, replace=False)].T.copy()  # 100 atoms: unit-norm patches
    A /= np.linalg.norm(A, axis=0)
    # Images are stored in order, so train and validation patches come from different images.
    Y, Yv = patches[:1200], patches[-400:]
    alpha, T = 0.1, 1
    X = lsalsa.solve(np.vstack([Y, Yv]), A, alpha, method="exact").codes
    X, Xv = X[:1200], X[1200:]
    assert (X == 0).mean() > 0.85  # genuinely sparse optimal codes

    salsa = min(np.sqrt(((lsalsa.solve(Yv, A, alpha, "salsa", n_iter=T, mu=mu).codes - Xv) ** 2)
                        .mean(axis=1)).mean() for mu in (0.3, 1.0, 3.0, 10.0))
    result = train(LSALSA(A, alpha, T, mu=1.0), Y, X, val_signals=Yv, val_references=Xv,
                   max_epochs=15, seed=0)  # the defaults
    assert result.stopped != "diverged"
    assert result.val_rmse < 0.8 * result.initial_val_rmse
    assert result.val_rmse < 0.85 * salsa  # beats SALSA at the same T, whatever its mu


def test_classic_selection_refuses_a_depth_where_every_setting_diverges(rng, monkeypatch):
    """Both ways of choosing a classic setting per depth (the starts of the learned encoders
    and the baselines' curves) take the lowest validation RMSE and refuse a depth with no
    finite one, instead of starting from, or reporting, a diverged setting."""
    search_module = importlib.import_module("lsalsa.core.training.search")

    A = random_dictionary(rng, 8, 12)
    Y = rng.standard_normal((6, 8))
    X = lsalsa.solve(Y, A, 0.1, method="exact").codes
    curves = np.array([[0.5, np.inf], [0.4, np.inf]])  # settings x depths (1, 2)
    monkeypatch.setattr(search_module, "classic_curves", lambda *a, **k: curves.copy())
    for choose in (lambda: best_classic(Y, X, A, "salsa", [1, 2], [[0.1]], mus=[1.0, 2.0]),
                   lambda: search_module.selected_curves(
                       (Y, X), (Y, X), A, "salsa", [1, 2],
                       search_module.classic_settings("salsa", [[0.1]], [1.0, 2.0]))):
        with pytest.raises(InputError, match="every SALSA setting diverges at T = 2"):
            choose()
    curves[:, 1] = [0.3, 0.2]
    best = best_classic(Y, X, A, "salsa", [1, 2], [[0.1]], mus=[1.0, 2.0])
    assert (best[1]["mu"], best[2]["mu"]) == (2.0, 2.0)
    assert best[2]["val_rmse"] == 0.2


def test_one_step_clips_the_scaled_gradient_then_pulls_towards_the_anchor(rng):
    """One full-batch SGD step, worked out by hand: each tensor P moves by
    ``-lr s_P^2 c g_P`` with ``c = clip / ||(s_P g_P)_P||`` (the clip binds here), then
    ``-lr a (P - P_0)`` towards its start. Scaling the clip norm differently or pulling the
    wrong way changes every entry by far more than the tolerance."""
    A = random_dictionary(rng, 8, 12)
    Y = rng.standard_normal((16, 8))
    X = lsalsa.solve(Y, A, 0.1, method="exact").codes
    lr, clip, decay = 0.05, 1e-3, 3.0
    encoder = LSALSA(A, 0.1, 2, mu=1.0)
    start = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    model = LSALSA(A, 0.1, 2, mu=1.0)  # the same start, for the hand-made gradient
    loss = 0.5 * (model(torch.from_numpy(Y)) - torch.from_numpy(X)).pow(2).sum(1).mean()
    loss.backward()
    grads = {n: p.grad.detach() for n, p in model.named_parameters()}
    # s: spectral norm / sqrt(size) for W and S, RMS for the thresholds (step_scales)
    sizes = {n: float(torch.linalg.matrix_norm(P, ord=2)) / P.numel() ** 0.5 if P.ndim == 2
             else float(P.pow(2).mean().sqrt()) for n, P in start.items()}
    total = sum((sizes[n] * g.norm()) ** 2 for n, g in grads.items()) ** 0.5
    assert total > clip  # the clip binds
    train(encoder, Y, X, optimizer="sgd", lr=lr, schedule="constant", grad_clip=clip,
          anchor_decay=decay, batch_size=16, max_epochs=1)
    for name, P in encoder.named_parameters():
        moved = start[name] - lr * sizes[name] ** 2 * (clip / total) * grads[name]
        expected = moved - lr * decay * (moved - start[name])
        # float64; the batch sums 16 samples in another order: a few eps of the weights
        tol = 4 * gamma(16 + 12, np.float64) * float(start[name].abs().max())
        assert torch.allclose(P.detach(), expected, rtol=0, atol=tol), name


def test_the_cosine_schedule_decays_per_step_not_per_epoch(rng, tmp_path):
    """lr_t = lr (1 + cos(pi t / n)) / 2 at step t of n; the checkpoint's optimizer holds
    the last step's rate (times each tensor's step scale s, Adam)."""
    A = random_dictionary(rng, 8, 12)
    Y = rng.standard_normal((16, 8))
    X = lsalsa.solve(Y, A, 0.1, method="exact").codes
    encoder = LSALSA(A, 0.1, 2, mu=1.0)
    sizes = step_scales(encoder)
    train_in_dir(tmp_path / "run", encoder, Y, X, lr=0.1, batch_size=4, max_epochs=1,
                 progress=False)
    _, optim, _, _ = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    last = 0.1 * (1 + np.cos(np.pi * 3 / 4)) / 2  # step 3 of 4, all in epoch 0
    for group in optim["param_groups"]:
        assert group["lr"] == pytest.approx(last * group["scale"], rel=4 * np.finfo(float).eps)
    assert sorted(g["scale"] for g in optim["param_groups"]) == pytest.approx(
        sorted(sizes.values()), rel=4 * np.finfo(float).eps)


def test_plateau_halvings_count_runs_of_epochs_without_a_new_best():
    assert PLATEAU_WAIT == 2
    assert plateau_halvings([1.0]) == 0
    assert plateau_halvings([1.0, 1.0]) == 0
    assert plateau_halvings([1.0, 1.0, 1.0]) == 1
    assert plateau_halvings([1.0, 1.2, 0.9, 0.95]) == 0  # a new best restarts the wait
    assert plateau_halvings([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 2  # the wait restarts too
    assert plateau_halvings([1.0, 1.0, 1.0, 0.5, 0.7, 0.7]) == 2


def test_an_improvement_counts_only_above_min_improvement():
    """min_improvement: a decrease by at most that fraction of the last improving epoch's
    RMSE is no improvement (for patience and the halvings); 0 is any decrease."""
    vals = [1.0, 0.9995, 0.998, 0.9975, 0.99]
    assert improving_epochs(vals) == [0, 1, 2, 3, 4]
    assert improving_epochs(vals, 1e-3) == [0, 2, 4]  # 0.9975 is within 0.1 % of 0.998
    assert improving_epochs([1.0, None, 0.5], 0.1) == [0, 2]
    assert plateau_halvings([1.0, 0.9999, 0.9998, 0.9997], 1e-3) == 1
    assert plateau_halvings([1.0, 0.9999, 0.9998, 0.9997]) == 0


def _scripted(values):
    """A stand-in for validation_rmse that returns ``values`` in turn."""
    remaining = iter(values)
    return lambda *args, **kwargs: next(remaining)


def test_patience_counts_from_the_last_improvement_that_counts(data, monkeypatch):
    """With min_improvement, tiny decreases do not restart the patience, but the kept weights
    are still those of the lowest validation RMSE; without it the run goes on."""
    trainer = importlib.import_module("lsalsa.core.training.trainer")
    scores = [1.0, 0.8, 0.7999, 0.7998, 0.7997, 0.7996, 0.7995, 0.7994]
    for min_improvement, stopped, epochs in ((1e-3, "patience", 3), (0.0, "max_epochs", 7)):
        monkeypatch.setattr(trainer, "validation_rmse", _scripted(scores))
        result = _train(data, lr=0.05, schedule="constant", max_epochs=7, patience=2,
                        min_improvement=min_improvement)
        assert (result.stopped, result.epochs) == (stopped, epochs)
        assert result.best_epoch == epochs  # the lowest RMSE, however small its gain


def test_the_plateau_schedule_halves_the_step_until_validation_stops_improving(
        data, monkeypatch):
    """The step of epoch e is lr / 2^k, k the halvings after epochs 0 to e - 1; the run stops
    ``patience`` epochs after its best and returns that epoch's weights."""
    trainer = importlib.import_module("lsalsa.core.training.trainer")
    scripted = iter([1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85])
    monkeypatch.setattr(trainer, "validation_rmse", lambda *a, **k: next(scripted))
    kept = []
    result = _train(data, lr=0.08, schedule="plateau", max_epochs=50, patience=5,
                    callback=lambda state: kept.append(
                        {k: v.detach().clone() for k, v in state.model.items()}))
    assert [h["lr"] for h in result.history[1:]] == pytest.approx(
        [0.08, 0.08, 0.08, 0.04, 0.04, 0.04, 0.02, 0.02, 0.01])
    assert result.stopped == "patience" and result.epochs == 9 and result.best_epoch == 4
    assert all(torch.equal(v, kept[3][k]) for k, v in _weights(result.encoder).items())


def test_codes_that_overflow_on_validation_end_training_as_diverged(rng, tmp_path, monkeypatch):
    """Finite weights whose validation RMSE is not finite (codes that overflow) diverged: the
    epoch is recorded with val_rmse None, the run keeps its best epoch and every file it
    writes is strict JSON; a start that is already non-finite is refused before anything is
    written."""
    trainer = importlib.import_module("lsalsa.core.training.trainer")
    A = random_dictionary(rng, 8, 12)
    Y = rng.standard_normal((32, 8))
    X = lsalsa.solve(Y, A, 0.1, method="exact").codes
    real = trainer.validation_rmse
    calls = []

    def overflowing_after_epoch_1(*args, **kwargs):
        calls.append(1)
        return math.inf if len(calls) >= 3 else real(*args, **kwargs)

    monkeypatch.setattr(trainer, "validation_rmse", overflowing_after_epoch_1)
    encoder = LSALSA(A, 0.1, 2, mu=1.0)
    result = train_in_dir(tmp_path / "run", encoder, Y, X, val_signals=Y, val_references=X,
                          max_epochs=5, progress=False)
    assert result.stopped == "diverged" and result.epochs == 2
    assert result.history[2]["val_rmse"] is None and result.best_epoch <= 1
    json.loads((tmp_path / "run" / "history.json").read_text())  # strict JSON

    monkeypatch.setattr(trainer, "validation_rmse", lambda *args, **kwargs: math.nan)
    with pytest.raises(InputError, match="not finite"):
        train_in_dir(tmp_path / "refused", LSALSA(A, 0.1, 2, mu=1.0), Y, X, val_signals=Y,
                     val_references=X, max_epochs=1, progress=False)
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())


def _subparser(*names: str):
    from lsalsa.cli import build_parser

    parser = build_parser()
    for name in names:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = commands.choices[name]
    return parser


@pytest.mark.parametrize("command,model", [
    (["train"], TrainSettings), (["search"], TrainSettings),
    (["dictionary", "learn"], DictionarySettings), (["codes", "compute"], CodesSettings),
    (["data", "prepare"], PrepareSettings)])
def test_every_option_flag_is_made_from_its_declaration(command, model):
    """Each flag of a command that sets a declared option (TrainSettings: lsalsa train, lsalsa
    search; DictionarySettings: lsalsa dictionary learn; CodesSettings: lsalsa codes compute;
    PrepareSettings: lsalsa data prepare)
    takes its choices, default and help from the option's declaration: it is declared once,
    there."""
    declared = {f.name: f for f in dataclasses.fields(model)}
    actions = [a for a in _subparser(*command)._actions if a.dest in declared]
    assert {a.dest for a in actions} >= ({"optimizer", "batch_size", "seed"} if command ==
                                         ["search"] else set(declared))
    for action in actions:
        field = declared[action.dest]
        assert field.metadata["help"] and field.metadata["help"] in action.help, action.dest
        if action.choices is not None:
            assert tuple(action.choices) == tuple(field.metadata["check"].keywords["choices"])
        if action.required:
            assert action.default is None and "(default" not in action.help
        elif action.const is None:  # not a switch
            assert action.default == field.default, action.dest
        else:
            assert action.default is field.default


def test_training_flags_read_none_and_refuse_other_words(capsys):
    parser = _subparser("train")
    common = ["--signals", "y.npy", "--references", "x.npy", "--dict", "a.npy", "--depth", "2",
              "--run-dir", "r"]
    args = parser.parse_args([*common, "--patience", "none", "--grad-clip", "None",
                              "--component-weight", "1", "--component-weight", "0.5",
                              "--no-step-scaling", "--epochs", "7"])
    assert args.patience is None and args.grad_clip is None and args.step_scaling is False
    assert args.component_weights == [1.0, 0.5] and args.max_epochs == 7
    for bad, reason in ((["--patience", "never"], "--patience: expected an integer >= 1 or "
                                                  "'none', got 'never'"),
                        (["--patience", "0"], "--patience: expected an integer >= 1 or 'none', "
                                              "got 0"),
                        (["--rel-tol", "-1"], "--rel-tol: expected a number >= 0, got -1.0"),
                        (["--component-weight", "-2"], "expected a number >= 0, got -2.0")):
        with pytest.raises(SystemExit):
            parser.parse_args([*common, *bad])
        assert capsys.readouterr().err.strip().endswith(reason), bad
