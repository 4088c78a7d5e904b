"""Image separation with an MCA encoder, and the ``separate`` CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.fft import idctn

import lsalsa
from lsalsa.cli import main
from lsalsa.separation import separate_image

SIDE = 8


def dct_dictionary(side: int) -> np.ndarray:
    """Orthonormal 2-D DCT atoms (smooth content) as columns."""
    atoms = []
    for k in range(side * side):
        coeffs = np.zeros((side, side))
        coeffs.flat[k] = 1.0
        atoms.append(idctn(coeffs, norm="ortho").ravel())
    return np.stack(atoms, axis=1)


@pytest.fixture(scope="module")
def mca_model():
    # Smooth (DCT) against spiky (identity) content: the classic incoherent MCA pair.
    dictionaries = [dct_dictionary(SIDE), np.eye(SIDE * SIDE)]
    # Untrained LSALSA equals SALSA(T): with many layers it is a near-exact MCA solver.
    return lsalsa.LSALSA(dictionaries, [0.02, 0.02], depth=300, mu=0.5)


def synthetic_mixture(rng, height, width):
    """An image made patch by patch from the two dictionaries with sparse codes."""
    rows, cols = height // SIDE, width // SIDE
    smooth = np.zeros((height, width))
    spikes = np.zeros((height, width))
    D = dct_dictionary(SIDE)
    for i in range(rows):
        for j in range(cols):
            code = np.zeros(SIDE * SIDE)
            code[rng.choice(6, 3, replace=False)] = rng.uniform(0.5, 1.5, 3)
            block = (D @ code).reshape(SIDE, SIDE)
            smooth[i * SIDE:(i + 1) * SIDE, j * SIDE:(j + 1) * SIDE] = block
            spike = np.zeros(SIDE * SIDE)
            spike[rng.choice(SIDE * SIDE, 2, replace=False)] = rng.uniform(0.5, 1.0, 2)
            spikes[i * SIDE:(i + 1) * SIDE, j * SIDE:(j + 1) * SIDE] = spike.reshape(SIDE, SIDE)
    return smooth, spikes


def psnr(estimate, truth):
    peak = np.abs(truth).max()
    return 10 * np.log10(peak**2 / np.mean((estimate - truth) ** 2))


def test_separation_recovers_both_components(mca_model, rng):
    smooth, spikes = synthetic_mixture(rng, 32, 40)
    parts = mca_model.separate(smooth + spikes)
    assert [p.shape for p in parts] == [(32, 40), (32, 40)]
    assert psnr(parts[0], smooth) > 25
    assert psnr(parts[1], spikes) > 25


def test_any_image_size_is_padded_and_cropped(mca_model, rng):
    smooth, spikes = synthetic_mixture(rng, 24, 24)
    image = (smooth + spikes)[:21, :19]  # not a multiple of the patch
    for stride in (None, 4):  # non-overlapping, and overlapping with averaging
        parts = separate_image(mca_model, image, stride=stride)
        assert all(p.shape == image.shape for p in parts)
        # The components add up to the model's reconstruction: close to the image itself.
        assert np.abs(parts[0] + parts[1] - image).max() < 0.1


def test_single_dictionary_model_is_refused(rng):
    model = lsalsa.LSALSA(dct_dictionary(SIDE), 0.1, depth=2)
    with pytest.raises(lsalsa.InputError, match="MCA model"):
        model.separate(np.zeros((16, 16)))


def test_cli_writes_components_and_picture(mca_model, rng, tmp_path):
    smooth, spikes = synthetic_mixture(rng, 16, 16)
    image = np.clip(smooth + spikes, 0, 1)
    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "mix.png")
    model_path = mca_model.save(tmp_path / "model.safetensors")
    out = tmp_path / "out"
    assert main(["separate", str(tmp_path / "mix.png"), "--model", str(model_path),
                 "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["mix_component0.npy", "mix_component0.png", "mix_component1.npy",
                     "mix_component1.png", "mix_separation.png"]
    side_by_side = np.asarray(Image.open(out / "mix_separation.png"))
    assert side_by_side.shape[0] == 16 and side_by_side.shape[1] == 3 * 16 + 2 * 4


def test_cli_errors_leave_nothing_behind(mca_model, tmp_path, capsys):
    model_path = mca_model.save(tmp_path / "model.safetensors")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(good)
    out = tmp_path / "out"
    # One unreadable image among good ones: nothing is written at all.
    assert main(["separate", str(good), str(tmp_path / "broken.png"), "--model",
                 str(model_path), "--out", str(out)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    assert main(["separate", str(good), "--model", str(tmp_path / "missing.safetensors"),
                 "--out", str(out)]) == 2
    sc_model = lsalsa.LSALSA(dct_dictionary(SIDE), 0.1, depth=1).save(tmp_path / "sc.safetensors")
    assert main(["separate", str(good), "--model", str(sc_model), "--out", str(out)]) == 2
    assert "MCA model" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
