"""The separation objective: MCA encoders trained on the true components of each mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

import lsalsa
from _numerics import gamma
from conftest import random_dictionary
from lsalsa import LSALSA, InputError
from lsalsa.core.metrics import component_rmse, validation_rmse
from lsalsa.core.training import train

ALPHAS = [0.1, 0.2]


def _mixtures(seed: int = 4, P: int = 300, M: int = 10, sizes=(8, 8)):
    """Mixtures of two components, each a sparse combination of its own dictionary's atoms
    plus a little noise (so the exact MCA codes do not separate them perfectly)."""
    rng = np.random.default_rng(seed)
    dicts = [random_dictionary(rng, M, n) for n in sizes]
    parts = []
    for A in dicts:
        codes = rng.standard_normal((P, A.shape[1])) * (rng.random((P, A.shape[1])) < 0.25)
        parts.append(codes @ A.T + 0.05 * rng.standard_normal((P, M)))
    Y = parts[0] + parts[1]
    return dicts, Y, np.hstack(parts)


def _reference_loss(encoder, Y, truth, weights) -> float:
    """Mean over samples of 1/2 sum_i w_i ||A_i f_i(y) - y_i||^2, in float64, by hand."""
    with torch.no_grad():
        codes = encoder(torch.as_tensor(Y)).numpy()
    A = encoder.dictionary.numpy()
    M, n0 = A.shape[0], encoder.block_sizes[0]
    first = codes[:, :n0] @ A[:, :n0].T - truth[:, :M]
    second = codes[:, n0:] @ A[:, n0:].T - truth[:, M:]
    per_sample = 0.5 * (weights[0] * (first**2).sum(1) + weights[1] * (second**2).sum(1))
    return float(per_sample.mean())


@pytest.mark.parametrize("weights", [None, [2.0, 0.5], [1.0, 0.0]])
def test_the_loss_is_each_components_error_against_the_truth(weights):
    """The first epoch's loss (one full batch, a negligible step) is the float64 reference."""
    dicts, Y, truth = _mixtures()
    encoder = LSALSA(dicts, ALPHAS, 3, mu=2.0)
    want = _reference_loss(encoder, Y, truth, weights or [1.0, 1.0])
    result = train(encoder, Y, truth, objective="separation", component_weights=weights,
                   lr=1e-12, max_epochs=1, batch_size=len(Y))
    # The trainer's sum over P samples of M-term squares, against the same in numpy: both
    # within gamma(P M) of the total (all terms non-negative).
    P, M = Y.shape
    assert result.history[1]["loss"] == pytest.approx(want, rel=4 * gamma(P * 2 * M))
    assert result.encoder is encoder


def test_the_separation_loss_passes_gradcheck():
    """The gradient of the separation loss through three layers, checked in float64."""
    from lsalsa.core.training.batches import sample_loss
    from lsalsa.core.training.settings import TrainSettings
    from lsalsa.core.training.trainer import Trainer

    dicts, Y, truth = _mixtures(P=6, M=5, sizes=(4, 3))
    encoder = LSALSA(dicts, ALPHAS, 3, mu=1.0)
    settings = TrainSettings(objective="separation", component_weights=[1.0, 0.7])
    assert settings.reference_width(encoder) == 10
    trainer = Trainer(encoder, Y, truth, objective="separation", component_weights=[1.0, 0.7])
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(truth)
    params = tuple(p.detach().clone().requires_grad_(True)
                   for p in (encoder.W, encoder.S, encoder.thresholds))
    with torch.no_grad():  # keep every code away from the kinks of soft thresholding
        params[2].add_(0.01)

    def functional(W, S, thresholds):
        out = functional_call(encoder, {"W": W, "S": S, "thresholds": thresholds}, (Yt,))
        return sample_loss(encoder.problem, out, Xt, objective=trainer.objective,
                           weights=trainer.weights,
                           reconstruction_weight=trainer.hyper["reconstruction_weight"]).sum()

    assert torch.autograd.gradcheck(functional, params)


def test_training_on_the_components_lowers_the_held_out_component_error():
    """On held-out mixtures the trained encoder's components are closer to the truth than
    SALSA's (its start), and closer than those of an encoder trained on the exact codes."""
    dicts, Y, truth = _mixtures(P=900)
    fit, held = slice(0, 600), slice(600, 900)
    start = LSALSA(dicts, ALPHAS, 3, mu=1.0)
    before = validation_rmse(start, Y[held], truth[held], objective="separation")
    encoder = LSALSA(dicts, ALPHAS, 3, mu=1.0)
    result = train(encoder, Y[fit], truth[fit], objective="separation", max_epochs=30,
                   seed=1, val_signals=Y[fit][:100], val_references=truth[fit][:100])
    after = validation_rmse(encoder, Y[held], truth[held], objective="separation")
    assert result.best_epoch > 0
    assert after < 0.8 * before
    # The same network trained on the exact codes of the same mixtures separates worse.
    X = lsalsa.solve(Y, dicts, ALPHAS, method="exact").codes
    on_codes = LSALSA(dicts, ALPHAS, 3, mu=1.0)
    train(on_codes, Y[fit], X[fit], max_epochs=30, seed=1, val_signals=Y[fit][:100],
          val_references=X[fit][:100])
    assert after < validation_rmse(on_codes, Y[held], truth[held], objective="separation")


def test_component_rmse_is_the_rmse_of_the_components_side_by_side():
    dicts, Y, truth = _mixtures(P=20)
    encoder = LSALSA(dicts, ALPHAS, 2, mu=1.0)
    with torch.no_grad():
        codes = encoder(torch.as_tensor(Y))
        got = component_rmse(encoder, codes, torch.as_tensor(truth)).numpy()
    parts = lsalsa.core.encoders.components(encoder, codes.numpy())
    want = np.sqrt(((np.hstack(parts) - truth) ** 2).mean(axis=1))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("change,message", [
    ({"objective": "pixels"}, "objective must be one of"),
    ({"component_weights": [1.0]}, "component_weights has 1 values but the encoder has 2"),
    ({"component_weights": [1.0, -1.0]}, "component_weights"),
    ({"truth_columns": 16}, "references has 16 columns but the encoder expects 20"),
])
def test_bad_separation_options(change, message):
    dicts, Y, truth = _mixtures(P=20)
    columns = change.pop("truth_columns", None)
    if columns is not None:
        truth = truth[:, :columns]
    options = {"objective": "separation", **change}
    with pytest.raises(InputError, match=message):
        train(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, max_epochs=1, **options)


def test_the_separation_objective_needs_several_dictionaries():
    dicts, Y, truth = _mixtures(P=20)
    with pytest.raises(InputError, match="needs an MCA encoder"):
        train(LSALSA(dicts[0], 0.1, 2, mu=1.0), Y, truth[:, :10], objective="separation")


def test_lsalsa_train_with_the_separation_objective(tmp_path):
    """``lsalsa train --objective separation``: the references are the components side by side,
    mu is chosen by SALSA's validation PSNR, and the run records the objective."""
    import json

    from lsalsa.cli import main

    dicts, Y, truth = _mixtures(P=200, M=16)  # square patches (4x4): placement needs them
    paths = {}
    for name, array in (("Y", Y), ("C", truth), ("A1", dicts[0]), ("A2", dicts[1])):
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], array)
    run = tmp_path / "run"
    args = ["train", "--signals", paths["Y"], "--references", paths["C"], "--dict", paths["A1"],
            "--dict", paths["A2"], "--alpha", "0.1", "--alpha", "0.2", "--depth", "2",
            "--epochs", "3", "--run-dir", str(run), "--quiet", "--objective", "separation",
            "--dtype", "float64"]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["objective"] == "separation"
    assert "PSNR" in config["data"]["start"]["chosen_by"]
    encoder = lsalsa.load_encoder(run / "model.safetensors")
    assert encoder.mu == config["data"]["start"]["mu"]
    # Whole-picture mixtures: recorded in the run's config; one component for both is refused.
    placed = [*args, "--augment-component", "1", "--augment-zoom", "1.5", "--place-component",
              "0"]
    placed[placed.index("--run-dir") + 1] = str(tmp_path / "placed")
    assert main(placed) == 0
    config = json.loads((tmp_path / "placed" / "config.json").read_text())
    assert (config["training"]["place_component"], config["training"]["augment_component"],
            config["training"]["augment_zoom"]) == (0, 1, 1.5)
    placed[placed.index("--run-dir") + 1] = str(tmp_path / "same")
    assert main([*placed[:-1], "1"]) == 2
    assert not (tmp_path / "same" / "model.safetensors").exists()
    # Codes as references are refused for this objective: their width is N, not D * M.
    np.save(tmp_path / "X.npy", np.zeros((200, 16)))
    bad = [str(tmp_path / "X.npy") if a == paths["C"] else a for a in args]
    bad[bad.index("--run-dir") + 1] = str(tmp_path / "bad")
    assert main(bad) == 2
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_augmented_patches_stay_images_and_the_symmetries_are_the_squares():
    from lsalsa.core.mixtures import augment_draws, augment_patches

    generator = torch.Generator().manual_seed(0)
    patches = torch.rand(64, 16, dtype=torch.float64)
    patches[0] = 1.0  # the extremes stay inside [0, 1] too
    patches[1] = 0.0
    for zoom in (1.0, 1.5):
        out = augment_patches(patches, augment_draws(64, generator, zoom))
        assert out.shape == patches.shape and bool(((out >= 0) & (out <= 1)).all())
    windows = augment_draws(1000, generator, 1.5)["window"]
    assert bool(((windows >= 1 / 1.5) & (windows <= 1)).all())
    draws = augment_draws(64, generator)  # zoom 1: no windows drawn, the whole patch
    assert set(draws) == {"symmetry", "gamma", "gain"}
    # With the whole patch, gamma and gain 1, each output is one of the eight symmetries of
    # its 4x4 input; with a window of the whole patch, the same up to the resampling's
    # rounding.
    plain = {**draws, "gamma": torch.ones(64, dtype=torch.float64),
             "gain": torch.ones(64, dtype=torch.float64)}
    whole_window = {**plain, "window": torch.ones(64, dtype=torch.float64),
                    "corner": torch.rand(64, 2, dtype=torch.float64, generator=generator)}
    resampled = augment_patches(patches, whole_window).reshape(64, 4, 4)
    turned = augment_patches(patches, plain).reshape(64, 4, 4)
    images = patches.reshape(64, 4, 4)
    for b in range(64):
        k = int(draws["symmetry"][b])
        want = torch.rot90(images[b], k % 4)
        want = want.T if k >= 4 else want
        assert torch.equal(turned[b], want)
        # The rounding of the window's sample coordinates (about u times the side, in
        # pixels), which the bilinear weights inherit.
        torch.testing.assert_close(resampled[b], want, rtol=0, atol=gamma(4 * 4))
    assert len(set(draws["symmetry"].tolist())) == 8
    with pytest.raises(InputError, match="square"):
        augment_patches(torch.rand(2, 10), augment_draws(2, generator))


@pytest.mark.parametrize("corner", [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.5, 0.5)])
def test_zoomed_patches_are_the_window_resampled(corner):
    """A window of half the side, at each corner and in the middle, against bilinear
    interpolation of that crop. They differ only at the outer pixels, where interpolation
    of the crop alone clamps to its edge and the window sees the pixels beyond it."""
    from lsalsa.core.mixtures import zoom_patches

    images = torch.rand(5, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = zoom_patches(images, torch.full((5,), 0.5, dtype=torch.float64),
                       torch.tensor([corner] * 5, dtype=torch.float64))
    r0, c0 = int(4 * corner[0]), int(4 * corner[1])
    want = torch.nn.functional.interpolate(images[:, None, r0:r0 + 4, c0:c0 + 4], size=(8, 8),
                                           mode="bilinear", align_corners=False)[:, 0]
    # Sample coordinates round to about u times the side (in pixels); the weights inherit it.
    torch.testing.assert_close(out[:, 1:-1, 1:-1], want[:, 1:-1, 1:-1], rtol=0, atol=gamma(4 * 8))
    assert bool(((out >= images.amin()) & (out <= images.amax())).all())


def test_placed_patches_move_with_zeros_and_saturate_at_one():
    """place_patches against a loop over the pixels; saturate is the increment a picture
    clipped at 1 shows."""
    from lsalsa.core.mixtures import place_draws, place_patches, saturate

    generator = torch.Generator().manual_seed(0)
    patches = torch.rand(64, 36, dtype=torch.float64)
    draws = place_draws(64, 6, generator)
    out = place_patches(patches, draws).reshape(64, 6, 6)
    images = patches.reshape(64, 6, 6)
    for b in range(64):
        dr, dc = (int(v) for v in draws["offset"][b])
        assert abs(dr) <= 3 and abs(dc) <= 3
        want = torch.zeros(6, 6, dtype=torch.float64)
        if not draws["empty"][b]:
            for r in range(6):
                for c in range(6):
                    if 0 <= r - dr < 6 and 0 <= c - dc < 6:
                        want[r, c] = images[b, r - dr, c - dc]
        assert torch.equal(out[b], want)
    assert 0 < int(draws["empty"].sum()) < 64
    rest = torch.rand(64, 36, dtype=torch.float64)
    shown = saturate(patches, rest)
    torch.testing.assert_close(rest + shown, (rest + patches).clamp(max=1), rtol=0, atol=1e-15)
    with pytest.raises(InputError, match="square"):
        place_patches(torch.rand(2, 10), place_draws(2, 3, generator))


@pytest.mark.parametrize("place", [None, 0])
def test_fresh_mixtures_are_sums_of_their_components_and_resume_exactly(tmp_path, place):
    """Every augmented training batch is a mixture equal to the sum of its components, with
    every pixel of the augmented (natural) component in [0, 1] (and of the mixture, when the
    digit is placed as in a clipped picture); a killed run resumes to the same weights; a set
    whose signals are not the sums is refused."""
    from lsalsa.core.training.trainer import Trainer
    from lsalsa.workflow.training_run import train_in_dir

    rng = np.random.default_rng(0)
    dicts = [random_dictionary(rng, 16, 10) for _ in range(2)]
    parts = [rng.random((120, 16)) * (rng.random((120, 16)) < 0.3), rng.random((120, 16))]
    Y, truth = parts[0] + parts[1], np.hstack(parts)
    # Windows of the natural component with the placed digit: both kinds of fresh data.
    options = {"objective": "separation", "augment_component": 1, "place_component": place,
               "augment_zoom": 1.0 if place is None else 1.5, "batch_size": 32, "seed": 2}
    trainer = Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, **options)
    for _ in range(5):
        batch = torch.randperm(120, generator=trainer.generator)[:32]
        Yb, Xb = trainer.batches(batch, trainer.encoder.W, trainer.dist)
        assert torch.equal(Yb, Xb[:, :16] + Xb[:, 16:])
        assert bool(((Xb[:, 16:] >= 0) & (Xb[:, 16:] <= 1)).all())
        if place is None:
            assert torch.equal(Xb[:, :16], torch.as_tensor(truth[batch.numpy(), :16]))
        else:  # moved, some left out, clipped: never brighter than the stored digit's peak
            assert bool((Xb[:, :16] >= 0).all()) and bool((Yb <= 1).all())
            assert float(Xb[:, :16].max()) <= float(truth[:, :16].max())
    # Exact resume: killed after epoch 2 of 4, then resumed.
    whole = train_in_dir(tmp_path / "a", LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth,
                         max_epochs=4, progress=False, **options)

    def stop_after_2(entry):
        if entry["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_in_dir(tmp_path / "b", LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth,
                     max_epochs=4, progress=False, callback=stop_after_2, **options)
    resumed = train_in_dir(tmp_path / "b", LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth,
                           max_epochs=4, progress=False, resume=True, **options)
    for name, value in whole.encoder.state_dict().items():
        assert torch.equal(value, resumed.encoder.state_dict()[name]), name
    with pytest.raises(InputError, match="sum of their components"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y + 0.1, truth, **options)
    from lsalsa.core.training.batches import _check_sums

    many, many_parts = np.tile(Y, (3, 1)), np.tile(truth, (3, 1))  # 360 rows
    _check_sums(many, many_parts, 16, chunk=100)
    many[-1, 0] += 0.1  # every row is checked, chunk by chunk, not a first few
    with pytest.raises(InputError, match="rows 300 to 359"):
        _check_sums(many, many_parts, 16, chunk=100)
    with pytest.raises(InputError, match="augment_component"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, objective="separation",
                augment_component=2)
    with pytest.raises(InputError, match="augment_zoom needs augment_component"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, objective="separation",
                augment_zoom=1.5)
    with pytest.raises(InputError, match="augment_zoom"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, objective="separation",
                augment_component=1, augment_zoom=0.5)
    # Validation mixtures are placed like the training ones, once, the same in every run.
    placed = [Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, val_signals=Y[:40],
                      val_references=truth[:40], objective="separation", place_component=0,
                      seed=3).val for _ in range(2)]
    assert torch.equal(placed[0][0], placed[1][0]) and torch.equal(placed[0][1], placed[1][1])
    val_Y, val_parts = placed[0]
    assert torch.equal(val_Y, val_parts[:, :16] + val_parts[:, 16:])
    assert torch.equal(val_parts[:, 16:], torch.as_tensor(truth[:40, 16:]))
    assert not torch.equal(val_parts[:, :16], torch.as_tensor(truth[:40, :16]))
    with pytest.raises(InputError, match="different"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, objective="separation",
                augment_component=1, place_component=1)
    with pytest.raises(InputError, match="place_component"):
        Trainer(LSALSA(dicts, ALPHAS, 2, mu=1.0), Y, truth, place_component=0)
    odd = [random_dictionary(rng, 10, 6) for _ in range(2)]  # 10 pixels: not a square patch
    with pytest.raises(InputError, match="square"):
        Trainer(LSALSA(odd, ALPHAS, 2, mu=1.0), Y[:, :10], np.hstack([p[:, :10] for p in parts]),
                objective="separation", place_component=0)
