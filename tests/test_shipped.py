"""The model shipped with the package: it loads, matches its card and reproduces its numbers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lsalsa import InputError
from lsalsa.apps import shipped


def test_the_shipped_model_loads_verifies_and_reproduces_its_card():
    encoder, card = shipped.load_shipped()
    assert encoder.problem.D == 2 and card["model"]["depth"] == encoder.depth
    assert card["objective"].startswith("the true components")
    assert set(card["test"]["by_source"])  # reported per held-out source
    # ... and on whole pictures, per source and overall, against SALSA too
    assert set(card["pictures"]["by_source"]) == {"all", *card["test"]["by_source"]}
    assert "whole pictures" in shipped.card_summary(card)
    with shipped.shipped_files() as folder:
        check = shipped.read_check(folder)
    with torch.inference_mode():
        numbers = shipped.check_numbers(encoder, check)
    # The same float32 network on another CPU or BLAS rounds its sums in another order: each
    # component moves by a few float32 ulps of its size, far below 1e-3 dB of PSNR
    # (10 log10 e * 2 * relative error of the RMSE).
    for key in ("psnr", "psnr_per_mixture"):
        np.testing.assert_allclose(numbers[key], card["check"][key], rtol=0, atol=1e-3)


def test_a_changed_model_or_card_is_refused(tmp_path):
    with shipped.shipped_files() as folder:
        shutil.copytree(folder, tmp_path / "models")
    copy = tmp_path / "models"
    shipped.load_verified(copy)  # the copy verifies as it is
    model = copy / shipped.MODEL
    data = bytearray(model.read_bytes())
    data[-100] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256"):
        shipped.load_verified(copy)
    # A card that is not one (no hash, no model entry) is refused in one line too.
    model.write_bytes(bytes(data[:-100] + bytearray([data[-100] ^ 1]) + data[-99:]))
    card = json.loads((copy / shipped.CARD).read_text())
    del card["sha256"]
    (copy / shipped.CARD).write_text(json.dumps(card))
    with pytest.raises(InputError, match="not a model card") as info:
        shipped.load_verified(copy)
    assert "\n" not in str(info.value)
