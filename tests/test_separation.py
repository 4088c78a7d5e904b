"""Image separation with an MCA encoder, and the ``separate`` CLI."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.fft import idctn

import lsalsa
from conftest import alias_of
from lsalsa.apps.separation import read_image
from lsalsa.cli import main
from lsalsa.core.encoders import components
from lsalsa.core.patches import (
    assemble_patches,
    extract_patches,
    grid_shape,
    pad_to_multiple,
    patch_grid,
)
from lsalsa.core.separation import separate_image

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
    parts = separate_image(mca_model, smooth + spikes)
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
        separate_image(model, np.zeros((16, 16)))


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


def _fails_with_one_line(argv, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err and match in err, err


@pytest.mark.parametrize("fault", ["S 1e300", "W 1e300"])
def test_model_that_overflows_writes_nothing(fault, tmp_path, capsys):
    model = lsalsa.LSALSA([dct_dictionary(SIDE), np.eye(SIDE * SIDE)], [0.02, 0.02], depth=3,
                          mu=0.5)
    with torch.no_grad():
        if fault == "S 1e300":
            model.S.fill_(1e300)
        else:
            model.W.fill_(1e300)
    path = model.save(tmp_path / "model.safetensors")
    Image.fromarray(np.full((16, 16), 128, dtype=np.uint8)).save(tmp_path / "mix.png")
    out = tmp_path / "out"
    _fails_with_one_line(["separate", str(tmp_path / "mix.png"), "--model", str(path),
                          "--out", str(out)], capsys, "NaN or Inf")
    assert not out.exists()


@pytest.mark.parametrize("size", ["0", "-1"])
def test_batch_size_must_be_positive(size, mca_model, tmp_path, capsys):
    path = mca_model.save(tmp_path / "model.safetensors")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "mix.png")
    # A usage error as the flag is read (SeparateFilesSettings): one line, exit 2.
    assert main(["separate", str(tmp_path / "mix.png"), "--model", str(path), "--out",
                 str(tmp_path / "out"), "--batch-size", size]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --batch-size: expected an integer >= 1" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(lsalsa.InputError, match="batch_size must be an integer >= 1"):
        separate_image(mca_model, np.zeros((8, 8)), batch_size=int(size))


# -- reading images at their native depth -------------------------------------------------

def test_16_bit_png_is_scaled_by_65535(tmp_path):
    # A full-range 16-bit ramp (before: clipped to 8 bits, 99.7% white).
    values = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256)
    Image.fromarray(values).save(tmp_path / "ramp.png")
    np.testing.assert_array_equal(read_image(tmp_path / "ramp.png"),
                                  values.astype(np.float32) / 65535.0)


def test_float_tiff_is_taken_as_it_is(tmp_path):
    values = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(64, 48)
    Image.fromarray(values).save(tmp_path / "ramp.tif")  # before: all zeros
    np.testing.assert_array_equal(read_image(tmp_path / "ramp.tif"), values)


@pytest.mark.parametrize("fault, message", [("range", r"span \[0, 255\]"),
                                            ("nan", "NaN or Inf")])
def test_float_image_outside_0_1_is_refused(fault, message, tmp_path):
    values = np.linspace(0, 255, 64, dtype=np.float32).reshape(8, 8)
    if fault == "nan":
        values = values / 255
        values[3, 3] = np.nan
    Image.fromarray(values).save(tmp_path / "bad.tif")
    with pytest.raises(lsalsa.InputError, match=message):
        read_image(tmp_path / "bad.tif")


def test_8_bit_gray_and_colour(rng, tmp_path):
    gray = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png"),
                                  gray.astype(np.float32) / 255.0)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    for mode in ("RGB", "RGBA"):
        image = Image.fromarray(rgb).convert(mode)
        image.save(tmp_path / f"colour-{mode}.png")
        expected = rgb.astype(np.float64) @ [0.299, 0.587, 0.114] / 255.0
        # Float32 luminance: a few roundings of values <= 1.
        np.testing.assert_allclose(read_image(tmp_path / f"colour-{mode}.png"), expected,
                                   rtol=0, atol=8 * np.finfo(np.float32).eps)


def test_other_modes(rng, tmp_path):
    from lsalsa.apps.separation import _scaled

    gray = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    expected = gray.astype(np.float32) / 255.0
    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), expected)
    Image.fromarray(gray > 127).save(tmp_path / "bw.png")  # 1-bit
    np.testing.assert_array_equal(read_image(tmp_path / "bw.png"), (gray > 127) * 1.0)
    Image.fromarray(gray).convert("P").save(tmp_path / "palette.png")
    np.testing.assert_allclose(read_image(tmp_path / "palette.png"), expected, rtol=0,
                               atol=8 * np.finfo(np.float32).eps)
    # Older Pillows open 16-bit PNGs as 32-bit "I"; other 32-bit integer images have no range.
    wide = Image.fromarray(gray.astype(np.int32) * 257)
    wide.format = "PNG"
    np.testing.assert_array_equal(_scaled(wide, "x.png"), expected)
    wide.save(tmp_path / "int32.tif")
    with pytest.raises(lsalsa.InputError, match="32-bit integer images are not supported"):
        read_image(tmp_path / "int32.tif")


def test_cli_separates_a_16_bit_png(mca_model, rng, tmp_path):
    smooth, spikes = synthetic_mixture(rng, 16, 16)
    image = np.clip(smooth + spikes, 0, 1)
    Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(tmp_path / "mix.png")
    path = mca_model.save(tmp_path / "model.safetensors")
    assert main(["separate", str(tmp_path / "mix.png"), "--model", str(path), "--out",
                 str(tmp_path / "out")]) == 0
    total = sum(np.load(tmp_path / "out" / f"mix_component{i}.npy") for i in range(2))
    assert np.abs(total - image).max() < 0.1  # as for 8-bit input; before: about all white


def _png_header(path, width: int, height: int) -> None:
    """A PNG that claims width x height 8-bit gray pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_unless_allowed(mca_model, tmp_path, capsys):
    path = mca_model.save(tmp_path / "model.safetensors")
    _png_header(tmp_path / "bomb.png", 20000, 20000)
    argv = ["separate", str(tmp_path / "bomb.png"), "--model", str(path), "--out",
            str(tmp_path / "out")]
    _fails_with_one_line(argv, capsys, "raise it with --max-pixels")
    # Allowed, the file is decoded, and found to be truncated (no data behind the header).
    _fails_with_one_line([*argv, "--max-pixels", str(20000 * 20000)], capsys,
                         "cannot read image")
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(tmp_path / "small.png")
    small = ["separate", str(tmp_path / "small.png"), "--model", str(path), "--out",
             str(tmp_path / "out")]
    _fails_with_one_line([*small, "--max-pixels", "255"], capsys, "16x16 = 256 pixels")
    assert main([*small, "--max-pixels", "256"]) == 0


# -- patches stream through the encoder -----------------------------------------------------

def _all_at_once(encoder, image, stride):
    """The path batched separation replaced: every patch, code and component at once."""
    padded, (height, width) = pad_to_multiple(image[None], SIDE, stride)
    codes = encoder.encode(extract_patches(padded, SIDE, stride))
    return [assemble_patches(part, padded.shape[1:], SIDE, stride)[0, :height, :width]
            for part in components(encoder, codes)]


@pytest.mark.parametrize("stride, batch", [(None, 5), (3, 7), (2, 1), (3, 10**6)])
def test_batched_separation_equals_all_at_once(stride, batch, rng):
    model = lsalsa.LSALSA([dct_dictionary(SIDE), np.eye(SIDE * SIDE)], [0.02, 0.02], depth=20,
                          mu=0.5)  # float64
    smooth, spikes = synthetic_mixture(rng, 24, 32)
    image = (smooth + spikes)[:21, :30]
    new = separate_image(model, image, stride=stride, batch_size=batch)
    old = _all_at_once(model, image, stride)
    for a, b in zip(new, old, strict=True):
        # The float64 sums differ only in the order of the overlap additions (~1e-16); the
        # result is then rounded once to float32 (half an ulp).
        np.testing.assert_allclose(a, b, rtol=0, atol=np.finfo(np.float32).eps * np.abs(b).max())


def test_rows_held_at_once_are_bounded_by_the_batch(mca_model, rng, monkeypatch):
    seen = []
    encode = lsalsa.LSALSA.encode

    def recording_encode(self, Y, batch_size=65536, **options):
        seen.append(len(Y))
        return encode(self, Y, batch_size, **options)

    monkeypatch.setattr(lsalsa.LSALSA, "encode", recording_encode)
    image = rng.random((40, 40))
    parts = separate_image(mca_model, image, stride=2, batch_size=16)
    rows, cols = grid_shape(40, 40, SIDE, 2)
    assert sum(seen) == rows * cols and max(seen) <= 16
    assert all(p.shape == (40, 40) for p in parts)


# -- outputs never replace inputs, and are all checked before any is moved ---------------------

@pytest.fixture
def small_mca(tmp_path):
    model = lsalsa.LSALSA([dct_dictionary(SIDE), np.eye(SIDE * SIDE)], [0.02, 0.02], depth=2,
                          mu=0.5)
    return str(model.save(tmp_path / "model.safetensors"))


def _gray_png(path, value):
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("alias", ["same name", "hard link"])
def test_an_output_that_is_an_input_image_is_refused(small_mca, tmp_path, capsys, alias):
    # x.png's first component would be written over the input x_component0.png.
    folder = tmp_path / "ow"
    folder.mkdir()
    _gray_png(folder / "x.png", 10)
    name = folder / "x_component0.png"
    victim = _gray_png(name if alias == "same name" else tmp_path / "other.png", 200)
    alias_of(victim, alias, name)
    before = victim.read_bytes()
    _fails_with_one_line(["separate", str(folder / "x.png"), str(victim), "--model", small_mca,
                          "--out", str(folder)], capsys, "is the input file")
    assert victim.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["x.png", "x_component0.png"]


def test_separating_a_folder_into_itself_twice_is_refused(small_mca, tmp_path, capsys):
    folder = tmp_path / "ow"
    folder.mkdir()
    _gray_png(folder / "x.png", 10)
    assert main(["separate", str(folder / "x.png"), "--model", small_mca, "--out",
                 str(folder)]) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    # The second run takes its own outputs as inputs: x.png would replace x_component0.png.
    _fails_with_one_line(["separate", *sorted(str(p) for p in folder.glob("*.png")), "--model",
                          small_mca, "--out", str(folder)], capsys, "is the input file")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_destination_that_is_a_folder_is_refused_before_anything_is_moved(
        small_mca, tmp_path, capsys):
    image = _gray_png(tmp_path / "img.png", 10)
    out = tmp_path / "half"
    (out / "img_separation.png").mkdir(parents=True)
    (out / "img_separation.png" / "keep").touch()
    _fails_with_one_line(["separate", str(image), "--model", small_mca, "--out", str(out)],
                         capsys, f"output {out / 'img_separation.png'} is a directory")
    assert sorted(p.name for p in out.iterdir()) == ["img_separation.png"]
    assert [p.name for p in (out / "img_separation.png").iterdir()] == ["keep"]


# -- low precision (dtype=, --dtype) ---------------------------------------------------------

def test_bfloat16_separation_is_float32_and_within_rounding_of_float32(rng):
    from _numerics import encoder_error

    dictionaries = [dct_dictionary(SIDE), np.eye(SIDE * SIDE)]
    model = lsalsa.LSALSA(dictionaries, [0.02, 0.02], depth=8, mu=0.5)
    smooth, spikes = synthetic_mixture(rng, 24, 32)
    image = smooth + spikes
    exact = separate_image(model, image)
    low = separate_image(model, image, dtype="bfloat16")
    assert all(p.dtype == np.float32 and p.shape == image.shape and np.isfinite(p).all()
               for p in low)
    # Per patch: the codes within the two encoders' bounds (both dictionaries are orthonormal,
    # so a component moves by at most its codes' change), and the synthesis rounds codes,
    # atoms and result to bfloat16: 4 u ||x_i||_1 for unit-norm atoms.
    patches = extract_patches(image.astype(np.float32)[None], SIDE)[0].reshape(-1, SIDE * SIDE)
    codes = model.encode(patches)
    per_patch = (encoder_error(model, patches, low_precision=torch.bfloat16)
                 + encoder_error(model, patches))[:, 0]
    for i, block in enumerate((codes[:, :SIDE * SIDE], codes[:, SIDE * SIDE:])):
        # the encoder's change, then the synthesis' rounding (of codes moved by per_patch)
        bound = per_patch + 4 * 2.0**-8 * (np.abs(block).sum(axis=1) + np.sqrt(SIDE * SIDE)
                                          * per_patch)
        change = np.linalg.norm(low[i] - exact[i])
        assert change <= np.sqrt((bound**2).sum()), (change, np.sqrt((bound**2).sum()))
        assert change > 0


def test_fused_separation_is_the_plain_one_within_rounding(rng, tmp_path):
    from _numerics import encoder_error

    dictionaries = [dct_dictionary(SIDE), np.eye(SIDE * SIDE)]
    model = lsalsa.LSALSA(dictionaries, [0.02, 0.02], depth=8, mu=0.5)
    smooth, spikes = synthetic_mixture(rng, 24, 32)
    image = smooth + spikes
    plain = separate_image(model, image)
    fused = separate_image(model, image, fused=True)
    # Per tile (the padded grid separate_image encodes; stride = side, so no overlaps) the
    # codes differ by at most two float32 evaluations' bounds; the dictionaries are
    # orthonormal, so a component's tile moves by no more, and cropping the padding only
    # removes pixels.
    padded, _ = pad_to_multiple(image.astype(np.float32)[None], SIDE)
    tiles = patch_grid(padded, SIDE, SIDE)[0].reshape(-1, SIDE * SIDE)
    bound = np.sqrt(((2 * encoder_error(model, tiles)) ** 2).sum())
    for p, q in zip(fused, plain, strict=True):
        assert p.dtype == np.float32 and np.linalg.norm(p - q) <= bound
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "mix.png")
    path = model.save(tmp_path / "model.safetensors")
    assert main(["separate", str(tmp_path / "mix.png"), "--model", str(path), "--out",
                 str(tmp_path / "out"), "--fused"]) == 0
    assert np.isfinite(np.load(tmp_path / "out" / "mix_component0.npy")).all()


def test_cli_dtype(mca_model, rng, tmp_path, capsys):
    smooth, spikes = synthetic_mixture(rng, 16, 16)
    Image.fromarray((np.clip(smooth + spikes, 0, 1) * 255).astype(np.uint8)).save(
        tmp_path / "mix.png")
    small = lsalsa.LSALSA([dct_dictionary(SIDE), np.eye(SIDE * SIDE)], [0.02, 0.02], depth=8,
                          mu=0.5)
    path = small.save(tmp_path / "model.safetensors")
    out = tmp_path / "out"
    assert main(["separate", str(tmp_path / "mix.png"), "--model", str(path), "--out",
                 str(out), "--dtype", "bfloat16"]) == 0
    part = np.load(out / "mix_component0.npy")
    assert part.dtype == np.float32 and part.shape == (16, 16) and np.isfinite(part).all()
    for dtype, match in (("float16", "float16 needs a CUDA device"),
                         ("half", "--dtype must be float32")):
        _fails_with_one_line(["separate", str(tmp_path / "mix.png"), "--model", str(path),
                              "--out", str(tmp_path / "other"), "--dtype", dtype], capsys,
                             match)
        assert not (tmp_path / "other").exists()
