"""Streaming ``lsalsa encode`` over .npy files in chunks."""

from __future__ import annotations

import numpy as np
import pytest

import lsalsa
from _numerics import encoder_error
from conftest import random_dictionary
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
