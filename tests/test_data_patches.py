"""Patch extraction and assembly, padding, resizing, and MCA mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import gamma, unit_roundoff
from lsalsa.core.mixtures import make_mixtures
from lsalsa.core.patches import (
    assemble_patches,
    covered_shape,
    extract_patches,
    grid_shape,
    pad_to_multiple,
    resize_images,
)
from lsalsa.errors import InputError


def test_patch_order_is_image_major_then_row_major(rng):
    images = rng.random((2, 32, 32))
    patches = extract_patches(images, 10)
    assert patches.shape == (2 * 9, 100)
    for i in range(2):
        for r in range(3):
            for c in range(3):
                expected = images[i, 10 * r:10 * r + 10, 10 * c:10 * c + 10].ravel()
                np.testing.assert_array_equal(patches[9 * i + 3 * r + c], expected)


@pytest.mark.parametrize(("size", "patch", "per_image"), [(32, 10, 9), (224, 16, 196),
                                                         (224, 32, 49), (32, 32, 1)])
def test_counts_per_image_match_the_paper(size, patch, per_image):
    rows, cols = grid_shape(size, size, patch)
    assert rows * cols == per_image
    images = np.zeros((3, size, size), dtype=np.float32)
    assert extract_patches(images, patch).shape == (3 * per_image, patch * patch)


def test_round_trip_gives_the_cropped_image(rng):
    images = rng.random((4, 32, 32)).astype(np.float32)
    back = assemble_patches(extract_patches(images, 10), (32, 32), 10)
    h, w = covered_shape(32, 32, 10)
    assert (h, w) == (30, 30)
    np.testing.assert_array_equal(back[:, :30, :30], images[:, :30, :30])
    assert not back[:, 30:, :].any() and not back[:, :, 30:].any()  # dropped, not invented


def test_overlapping_assembly_averages(rng):
    # 4x4 image, 2x2 patches, stride 1: nine patches; give patch k the constant value k.
    patches = np.repeat(np.arange(9, dtype=np.float64)[:, None], 4, axis=1)
    image = assemble_patches(patches, (4, 4), 2, stride=1)[0]
    assert image[0, 0] == 0                      # only patch 0
    assert image[0, 1] == pytest.approx(0.5)     # patches 0 and 1
    assert image[1, 1] == pytest.approx((0 + 1 + 3 + 4) / 4)
    assert image[3, 3] == 8


def test_padding_then_overlapping_round_trip(rng):
    images = rng.random((2, 29, 23))
    padded, original = pad_to_multiple(images, 8, stride=3)
    _, hp, wp = padded.shape
    assert original == (29, 23)
    assert (hp - 8) % 3 == 0 and (wp - 8) % 3 == 0 and hp >= 29 and wp >= 23
    assert covered_shape(hp, wp, 8, 3) == (hp, wp)
    back = assemble_patches(extract_patches(padded, 8, 3), (hp, wp), 8, 3)
    # Each pixel is the mean of the k <= (8 / 3 rounded up)^2 = 9 copies of itself that cover
    # it: a sum of k equal terms and a division, within gamma(k + 1) of it.
    np.testing.assert_allclose(back[:, :29, :23], images, rtol=gamma(9 + 1), atol=0)


def test_pad_small_image_up_to_one_patch():
    padded, _ = pad_to_multiple(np.ones((1, 3, 5)), 8, mode="constant")
    assert padded.shape == (1, 8, 8)
    assert padded.sum() == 15


def test_bad_grids_are_input_errors():
    images = np.zeros((1, 8, 8))
    with pytest.raises(InputError, match="stride"):
        extract_patches(images, 4, stride=5)
    with pytest.raises(InputError, match="does not fit"):
        extract_patches(images, 9)
    with pytest.raises(InputError, match=r"\(n, H, W\)"):
        extract_patches(np.zeros((8, 8)), 4)
    with pytest.raises(InputError, match="do not fit"):
        assemble_patches(np.zeros((5, 16)), (8, 8), 4)


def test_resize_keeps_constants_and_shape():
    images = np.full((2, 28, 28), 0.25, dtype=np.float32)
    out = resize_images(images, 32)
    assert out.shape == (2, 32, 32) and out.dtype == np.float32
    # Pillow's "F" mode resamples with normalised double weights and rounds each of its
    # (at most two) passes to float32: within 2u of the exact interpolation.
    u = unit_roundoff(np.float32)
    np.testing.assert_allclose(out, 0.25, rtol=2 * u, atol=0)
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (1, 28, 1))
    wide = resize_images(ramp, (28, 56))[0]
    assert np.all(np.diff(wide[5]) >= -4 * u)  # bilinear keeps a ramp (in [0, 1]) monotone


def test_mixtures_are_sums_and_reproducible(rng):
    digits = rng.random((7, 16)).astype(np.float32)
    naturals = rng.random((5, 16)).astype(np.float32)
    a = make_mixtures(digits, naturals, 20, seed=3)
    b = make_mixtures(digits, naturals, 20, seed=3)
    c = make_mixtures(digits, naturals, 20, seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["natural_index"], c["natural_index"])
    np.testing.assert_array_equal(a["mixtures"], a["component0"] + a["component1"])
    np.testing.assert_array_equal(a["component0"], digits[a["digit_index"]])
    np.testing.assert_array_equal(a["component1"], naturals[a["natural_index"]])
    # Balanced draw: every natural patch used 4 times, every digit 2 or 3 times.
    assert np.bincount(a["natural_index"], minlength=5).tolist() == [4] * 5
    assert set(np.bincount(a["digit_index"], minlength=7).tolist()) <= {2, 3}


def test_mixtures_default_count_and_errors(rng):
    out = make_mixtures(rng.random((3, 4)), rng.random((6, 4)), seed=0)
    assert out["mixtures"].shape == (6, 4)
    with pytest.raises(InputError):
        make_mixtures(rng.random((3, 4)), rng.random((6, 5)), seed=0)
