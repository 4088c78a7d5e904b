"""Streaming ``lsalsa encode`` over .npy files in chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsalsa
from _numerics import encoder_error
from conftest import alias_of, random_dictionary
from lsalsa.cli import main


@pytest.fixture
def model_path(rng, tmp_path):
    A = random_dictionary(rng, 16, 24).astype(np.float32)
    return lsalsa.LSALSA([A[:, :12], A[:, 12:]], [0.1, 0.2], depth=3, mu=2.0).save(
        tmp_path / "model.safetensors")


def test_chunked_file_equals_one_go(model_path, rng, tmp_path):
    signals = rng.standard_normal((1003, 16)).astype(np.float32)
    np.save(tmp_path / "in.npy", signals)
    assert main(["encode", str(tmp_path / "in.npy"), str(tmp_path / "out.npy"), "--model",
                 str(model_path), "--chunk-size", "100", "--quiet"]) == 0
    chunked = np.load(tmp_path / "out.npy")
    model = lsalsa.load_encoder(model_path)
    whole = model.encode(signals)
    assert chunked.shape == (1003, 24) and chunked.dtype == np.float32
    # Equal up to float32 rounding of the layers: BLAS may block a 100-row product
    # differently (encoder_error bounds each evaluation, per sample).
    assert np.all(np.abs(chunked - whole) <= 2 * encoder_error(model, signals))


def test_float64_input_is_accepted(model_path, rng, tmp_path):
    np.save(tmp_path / "in.npy", rng.standard_normal((10, 16)))
    assert main(["encode", str(tmp_path / "in.npy"), str(tmp_path / "out.npy"), "--model",
                 str(model_path), "--quiet"]) == 0
    assert np.load(tmp_path / "out.npy").shape == (10, 24)


@pytest.mark.parametrize("case", ["width", "nan", "truncated", "object", "missing"])
def test_bad_input_exits_nonzero_and_writes_nothing(case, model_path, rng, tmp_path, capsys):
    source = tmp_path / "in.npy"
    if case == "width":
        np.save(source, rng.standard_normal((5, 15)).astype(np.float32))
    elif case == "nan":
        bad = rng.standard_normal((300, 16)).astype(np.float32)
        bad[250, 3] = np.nan  # in a later chunk: earlier chunks were already encoded
        np.save(source, bad)
    elif case == "truncated":
        np.save(source, rng.standard_normal((50, 16)).astype(np.float32))
        source.write_bytes(source.read_bytes()[:-40])
    elif case == "object":
        np.save(source, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out = tmp_path / "out.npy"
    code = main(["encode", str(source), str(out), "--model", str(model_path),
                 "--chunk-size", "100", "--quiet"])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize("layout", ["big-endian", "fortran", "both"])
def test_any_byte_order_and_memory_order_is_read(layout, model_path, rng, tmp_path):
    signals = rng.standard_normal((250, 16))
    stored = signals.astype(">f8") if layout != "fortran" else signals
    if layout != "big-endian":
        stored = np.asfortranarray(stored)
    np.save(tmp_path / "in.npy", stored)
    np.save(tmp_path / "plain.npy", signals)
    for name in ("in", "plain"):
        assert main(["encode", str(tmp_path / f"{name}.npy"), str(tmp_path / f"{name}-out.npy"),
                     "--model", str(model_path), "--chunk-size", "100", "--quiet"]) == 0
    # The same rows reach the encoder in the same chunks: the codes are bit for bit equal.
    np.testing.assert_array_equal(np.load(tmp_path / "in-out.npy"),
                                  np.load(tmp_path / "plain-out.npy"))


def _fails_with_one_line(argv, capsys, out, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsalsa: error:") and "\n" not in err and match in err, err
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("device", ["meta", "mps", "cpux", "cuda:99"])
def test_a_device_other_than_cpu_or_cuda_is_refused(device, model_path, rng, tmp_path, capsys):
    # "meta" used to reach the encoder and fail there with a NotImplementedError traceback.
    np.save(tmp_path / "in.npy", rng.standard_normal((10, 16)).astype(np.float32))
    out = tmp_path / "out.npy"
    match = {"cpux": "unknown device", "cuda:99": "CUDA"}.get(device, "must be cpu, cuda")
    _fails_with_one_line(["encode", str(tmp_path / "in.npy"), str(out), "--model",
                          str(model_path), "--device", device, "--quiet"], capsys, out, match)


def test_values_beyond_the_models_dtype_are_refused(model_path, rng, tmp_path, capsys):
    # Finite in float64, Inf once cast to the float32 model (before: Inf/NaN codes, exit 0).
    signals = rng.standard_normal((300, 16))
    signals[250] *= 1e300
    np.save(tmp_path / "in.npy", signals)
    out = tmp_path / "out.npy"
    _fails_with_one_line(["encode", str(tmp_path / "in.npy"), str(out), "--model",
                          str(model_path), "--chunk-size", "100", "--quiet"], capsys, out,
                         "(rows 200..300) has values beyond the float32 range")


def test_codes_that_overflow_are_not_written(rng, tmp_path, capsys):
    # Finite weights and input, but the products overflow float32: the output check refuses.
    A = random_dictionary(rng, 16, 24).astype(np.float32)
    model = lsalsa.LSALSA([A[:, :12], A[:, 12:]], [0.1, 0.2], depth=3, mu=2.0)
    with torch.no_grad():
        model.S.mul_(1e37)
    path = model.save(tmp_path / "model.safetensors")
    np.save(tmp_path / "in.npy", rng.standard_normal((10, 16)).astype(np.float32))
    out = tmp_path / "out.npy"
    _fails_with_one_line(["encode", str(tmp_path / "in.npy"), str(out), "--model", str(path),
                          "--quiet"], capsys, out, "would hold NaN or Inf")


def test_input_truncated_while_encoding(model_path, rng, tmp_path, capsys, monkeypatch):
    source = tmp_path / "in.npy"
    np.save(source, rng.standard_normal((300, 16)).astype(np.float32))
    forward = lsalsa.LSALSA.forward

    def truncating_forward(self, Y, **options):
        source.write_bytes(source.read_bytes()[:-1000])  # another process cuts the file
        return forward(self, Y, **options)

    monkeypatch.setattr(lsalsa.LSALSA, "forward", truncating_forward)
    out = tmp_path / "out.npy"
    _fails_with_one_line(["encode", str(source), str(out), "--model", str(model_path),
                          "--chunk-size", "100", "--quiet"], capsys, out, "ended early")


@pytest.mark.parametrize("alias", ["same name", "symlink", "hard link"])
def test_output_that_is_the_input_is_refused(alias, model_path, rng, tmp_path, capsys):
    source = tmp_path / "in.npy"
    np.save(source, rng.standard_normal((10, 16)).astype(np.float32))
    out = alias_of(source, alias, tmp_path / "alias.npy")
    before = source.read_bytes()
    assert main(["encode", str(source), str(out), "--model", str(model_path), "--quiet"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert source.read_bytes() == before


@pytest.mark.parametrize("command", ["encode", "separate", "analyze"])
def test_a_folder_as_the_model_is_named_so(command, rng, tmp_path, capsys):
    np.save(tmp_path / "in.npy", rng.standard_normal((10, 16)).astype(np.float32))
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    out = tmp_path / "out.npy"
    argv = {"encode": ["encode", str(tmp_path / "in.npy"), str(out), "--model", str(folder)],
            "separate": ["separate", str(tmp_path / "in.npy"), "--model", str(folder),
                         "--out", str(out)],
            "analyze": ["analyze", str(folder), "--out", str(out)]}[command]
    _fails_with_one_line(argv, capsys, out, "is a folder, not a model file")


def test_dtype_bfloat16_writes_float32_codes_of_the_low_precision_path(model_path, rng,
                                                                      tmp_path, capsys):
    signals = rng.standard_normal((250, 16)).astype(np.float32)
    np.save(tmp_path / "in.npy", signals)
    assert main(["encode", str(tmp_path / "in.npy"), str(tmp_path / "out.npy"), "--model",
                 str(model_path), "--chunk-size", "100", "--dtype", "bfloat16", "--quiet"]) == 0
    assert "products in bfloat16" in capsys.readouterr().out
    codes = np.load(tmp_path / "out.npy")
    assert codes.dtype == np.float32 and codes.shape == (250, 24) and np.isfinite(codes).all()
    model = lsalsa.load_encoder(model_path)
    # The same low-precision path as encode(dtype=...), chunked: within the rounding of two
    # low-precision evaluations (BLAS may block a 100-row product differently).
    whole = model.encode(signals, dtype="bfloat16")
    bound = encoder_error(model, signals, low_precision=torch.bfloat16)
    assert np.all(np.abs(codes - whole) <= 2 * bound)
    assert main(["encode", str(tmp_path / "in.npy"), str(tmp_path / "f32.npy"), "--model",
                 str(model_path), "--dtype", "float32", "--quiet"]) == 0
    assert np.all(np.abs(np.load(tmp_path / "f32.npy") - model.encode(signals))
                  <= 2 * encoder_error(model, signals))


def test_fused_layers_write_the_plain_paths_codes_within_rounding(model_path, rng, tmp_path,
                                                                  capsys):
    signals = rng.standard_normal((250, 16)).astype(np.float32)
    np.save(tmp_path / "in.npy", signals)
    assert main(["encode", str(tmp_path / "in.npy"), str(tmp_path / "out.npy"), "--model",
                 str(model_path), "--chunk-size", "100", "--fused", "--quiet"]) == 0
    assert "fused layers" in capsys.readouterr().out
    codes = np.load(tmp_path / "out.npy")
    assert codes.dtype == np.float32 and codes.shape == (250, 24)
    model = lsalsa.load_encoder(model_path)
    # Same steps, compiled: within two float32 evaluations' rounding of the plain path.
    assert np.all(np.abs(codes - model.encode(signals)) <= 2 * encoder_error(model, signals))


@pytest.mark.parametrize(("dtype", "match"), [("float16", "float16 needs a CUDA device"),
                                              ("bf16", "--dtype must be float32"),
                                              ("", "--dtype must be float32")])
def test_a_bad_dtype_is_refused_in_one_line(dtype, match, model_path, rng, tmp_path, capsys):
    np.save(tmp_path / "in.npy", rng.standard_normal((10, 16)).astype(np.float32))
    out = tmp_path / "out.npy"
    _fails_with_one_line(["encode", str(tmp_path / "in.npy"), str(out), "--model",
                          str(model_path), "--dtype", dtype, "--quiet"], capsys, out, match)
