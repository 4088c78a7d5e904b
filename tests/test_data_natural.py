"""The offline natural-image stand-in: curated photographs of five packages, deduplicated,
cut into overlapping patches and split by photograph (skip when missing, fail under CI)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _realdata import require_data
from lsalsa.core.patches import extract_patches
from lsalsa.workflow.data import load_prepared, prepare, resolve_source
from lsalsa.workflow.data import sources as sources_module
from lsalsa.workflow.data.prepared import SPLITS
from lsalsa.workflow.data.registry import load_source
from lsalsa.workflow.data.sources import load_photo, natural_packages, natural_photo_list

# Near-duplicates: the correlation of two photographs' 16x16 thumbnails. A copy of one
# photograph (re-encoded, resized) correlates above 0.99 and skimage's stereo pair
# motorcycle_left/right at 0.90; the distinct photographs kept here stay below 0.7.
DUPLICATE = 0.85
# Left out of the curated lists as copies of a kept photograph: (package, file).
KNOWN_COPIES = [("PyWavelets", "camera.npz"), ("scikit-image", "motorcycle_right.png")]


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSALSA_DATA", raising=False)


def installed_packages() -> dict[str, dict]:
    """Every package's folder and curated files; each one missing fails under CI=true."""
    packages = {}
    for pkg in natural_packages():
        folder = pkg["folder"] or Path(f"<{pkg['package']} is not installed>")
        require_data(folder, f"offline photographs of {pkg['package']}")
        for name in pkg["names"]:
            require_data(folder / name, f"{pkg['package']} photograph")
        packages[pkg["package"]] = pkg
    return packages


def fingerprint(path: Path) -> np.ndarray:
    """A 16x16 grayscale thumbnail, zero-mean and unit-norm."""
    thumb = np.asarray(Image.fromarray(load_photo(path, None)).resize((16, 16),
                                                                      Image.BILINEAR))
    thumb = thumb.astype(np.float64).ravel() - thumb.mean()
    return thumb / np.linalg.norm(thumb)


@pytest.mark.slow
def test_every_curated_photograph_is_used_once():
    packages = installed_packages()
    photos = natural_photo_list()
    assert photos.missing == ()
    counts = {p["package"]: p["photographs"] for p in photos.packages}
    assert counts == {name: len(pkg["names"]) for name, pkg in packages.items()}
    assert len(photos.files) == len(set(photos.files)) == 36


@pytest.mark.slow
def test_kept_photographs_are_distinct_and_copies_are_detected():
    packages = installed_packages()
    photos = natural_photo_list()
    prints = np.array([fingerprint(f) for f in photos.files])
    similarity = prints @ prints.T
    for i, j in itertools.combinations(range(len(photos.files)), 2):
        assert similarity[i, j] < DUPLICATE, (photos.names[i], photos.names[j])
    # The check finds the copies that the curated lists leave out.
    for package, name in KNOWN_COPIES:
        path = require_data(packages[package]["folder"] / name, f"{package} {name}")
        assert (prints @ fingerprint(path)).max() > DUPLICATE, name


@pytest.mark.slow
def test_natural_patches_overlap_and_split_by_photograph(tmp_path):
    installed_packages()
    ds = load_prepared(prepare("natural-16", tmp_path / "p", limit_images=2, progress=False))
    meta = ds.meta
    assert meta["stand_in"] is True and meta["label"].startswith("offline stand-in: 36 ")
    # 16x16 patches at stride 4 on 224x224: 53 x 53 positions.
    assert meta["stride"] == 4 and meta["overlapping"] is True
    assert meta["patches_per_image"] == 53 * 53
    info = meta["split_by_source"]["natural"]
    names = info["photographs"]
    assert [len(names[s]) for s in SPLITS] == [2, 2, 2]
    for a, b in itertools.combinations(SPLITS, 2):
        assert set(names[a]).isdisjoint(names[b])
    assert [p["package"] for p in info["packages"]] == [
        "scikit-image", "SPORCO", "PyWavelets", "matplotlib", "mate-backgrounds"]
    # Train patches are those of the named photographs, overlapping by 12 pixels.
    photos = natural_photo_list()
    train = ds.split("train")
    first = photos.files[int(train["source_ids"][0])]
    expected = extract_patches(load_photo(first, 224)[None], 16, 4)
    np.testing.assert_array_equal(train["signals"][: 53 * 53], expected)
    left, right = (train["signals"][k].reshape(16, 16) for k in (0, 1))
    np.testing.assert_array_equal(left[:, 4:], right[:, :12])


@pytest.mark.slow
def test_every_photograph_lands_in_one_split_about_70_15_15():
    installed_packages()
    splits, info = load_source(resolve_source("natural"), seed=0, limit=None)
    assert info["images"] == {"train": 26, "val": 5, "test": 5}
    ids = np.concatenate([splits[s].source_ids for s in SPLITS])
    assert sorted(ids.tolist()) == list(range(36))
    names = [n for s in SPLITS for n in info["photographs"][s]]
    assert sorted(names) == sorted(natural_photo_list().names)
    assert info["unreadable"]["count"] == 0


def test_a_missing_package_is_named_and_the_rest_used(tmp_path, monkeypatch):
    monkeypatch.setattr(sources_module, "MATE_BACKGROUNDS", tmp_path / "no-backgrounds")
    photos = natural_photo_list()
    assert any(m.startswith("mate-backgrounds: not installed") for m in photos.missing)
    assert not any(n.startswith("mate-backgrounds/") for n in photos.names)
    ds = load_prepared(prepare("natural-32", tmp_path / "p", limit_images=1, progress=False))
    info = ds.meta["split_by_source"]["natural"]
    assert info["missing"] == list(photos.missing)
    assert "missing here: mate-backgrounds: not installed" in ds.meta["label"]
    assert ds.meta["stride"] == 8 and ds.meta["patches_per_image"] == 25 * 25
