"""The offline natural-image stand-in: the curated photographs of photographs.csv, checked by
hash, deduplicated, cut into overlapping patches and split by source package (skip when
missing, fail under CI)."""

from __future__ import annotations

import csv
import importlib.resources
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _realdata import require_data
from lsalsa.core.patches import extract_patches
from lsalsa.errors import InputError
from lsalsa.workflow.data import load_prepared, prepare, resolve_source, sha256_file
from lsalsa.workflow.data import photo_pool as pool_module
from lsalsa.workflow.data.photo_files import load_photo
from lsalsa.workflow.data.photo_pool import (
    PHOTO_SOURCES,
    PHOTOGRAPH_FIELDS,
    curated_photographs,
    natural_packages,
    natural_photo_list,
)
from lsalsa.workflow.data.prepared import SPLITS
from lsalsa.workflow.data.registry import load_source

# Copies: the correlation of two photographs' fingerprints (below). A copy of one photograph
# (re-encoded, resized) or the next frame of a video correlates above 0.95; the distinct
# photographs kept here stay below 0.6.
DUPLICATE = 0.85
# Left out of the curated list as copies of a kept photograph: (package, file).
KNOWN_COPIES = [("PyWavelets", "pywt/data/camera.npz"),
                ("opencv-doc", "/usr/share/doc/opencv-doc/examples/data/basketball2.png"),
                ("opencv-doc", "/usr/share/doc/opencv-doc/examples/data/rubberwhale2.png")]
# The split of each package, as docs/DESIGN.md section 5 documents it.
ASSIGNED = {
    "train": {"scikit-image", "SPORCO", "PyWavelets", "matplotlib", "scikit-learn",
              "mate-backgrounds", "opencv-doc", "tuxpaint-data", "gcompris-qt-data"},
    "val": {"lxqt-themes", "palapeli-data"},
    "test": {"plasma-workspace-wallpapers", "lomiri-wallpapers-16.04"},
}


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSALSA_DATA", raising=False)


def installed_packages() -> dict[str, dict]:
    """Every package's root and curated files; each one missing fails under CI=true."""
    packages = {}
    for pkg in natural_packages():
        root = pkg["folder"] or Path(f"<{pkg['package']} is not installed>")
        require_data(root, f"offline photographs of {pkg['package']}")
        for photo in pkg["photographs"]:
            require_data(root / photo.file.lstrip("/"), f"{pkg['package']} photograph")
        packages[pkg["package"]] = pkg
    return packages


def fingerprint(path: Path) -> np.ndarray:
    """A 32x32 grayscale thumbnail less its 4x4 blur, zero-mean and unit-norm: the blur
    removed, photographs that merely share a bright sky over a dark ground stay apart."""
    small = Image.fromarray(load_photo(path, None)).resize((32, 32), Image.BILINEAR)
    coarse = small.resize((4, 4), Image.BILINEAR).resize((32, 32), Image.BILINEAR)
    detail = (np.asarray(small, np.float64) - np.asarray(coarse, np.float64)).ravel()
    detail -= detail.mean()
    return detail / np.linalg.norm(detail)


def test_the_curated_list_is_complete_and_broad():
    """Every row names its source, file, SHA-256, licence and why it is a photograph; at
    least 5 independent packages give photographs, each side of the split at least one."""
    text = importlib.resources.files("lsalsa.workflow.data").joinpath(
        "photographs.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == PHOTOGRAPH_FIELDS
    for row in rows:
        assert all(row[k].strip() for k in PHOTOGRAPH_FIELDS), row
        assert len(row["sha256"]) == 64 and row["source"] in PHOTO_SOURCES, row
    curated = curated_photographs()
    assert len(curated) == len(rows) >= 200
    assert len({(p.source, p.file) for p in curated}) == len(curated)
    assert len({p.source for p in curated}) >= 5
    assert {s: {n for n, ps in PHOTO_SOURCES.items() if ps.split == s} for s in SPLITS} \
        == ASSIGNED
    assert {p.source for p in curated} == set(PHOTO_SOURCES)


def test_run_sh_installs_every_debian_package_of_the_list():
    """run.sh's setup_data installs each Debian source, probed by one of its curated files
    (for a Qt resource source, by an archive that holds curated photographs)."""
    text = (Path(__file__).parents[1] / "run.sh").read_text()
    table = text.split("<<'PACKAGES'\n", 1)[1].split("\nPACKAGES\n", 1)[0]
    probes = dict(line.split() for line in table.splitlines())
    debs = {name: source for name, source in PHOTO_SOURCES.items() if source.kind != "pip"}
    assert set(debs) <= set(probes)
    files = {(p.source, p.file) for p in curated_photographs()}
    archives = {(p.source, f"{debs[p.source].archives}/{p.file.split('/')[0]}.rcc")
                for p in curated_photographs() if p.source in debs}
    for name in debs:
        assert (name, probes[name]) in (archives if debs[name].kind == "rcc" else files), name


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[1].update(licence=""), "line 3: no licence"),
    (lambda rows: rows[0].update(source="imagenet"), "line 2: unknown source 'imagenet'"),
    (lambda rows: rows[2].update(sha256="abc"), "line 4: sha256 is not 64 hex digits"),
    (lambda rows: rows.append(dict(rows[0])), "listed twice"),
])
def test_a_damaged_curated_list_is_one_line(monkeypatch, tmp_path, edit, message):
    text = importlib.resources.files("lsalsa.workflow.data").joinpath(
        "photographs.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    edit(rows)
    folder = tmp_path / "pkg"
    folder.mkdir()
    with open(folder / "photographs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, PHOTOGRAPH_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setattr(importlib.resources, "files", lambda package: folder)
    with pytest.raises(InputError, match=message):
        curated_photographs()


@pytest.mark.slow
def test_every_curated_photograph_is_installed_and_matches_its_hash():
    packages = installed_packages()
    photos = natural_photo_list()
    assert photos.missing == ()
    counts = {p["package"]: p["photographs"] for p in photos.packages}
    assert counts == {name: len(pkg["photographs"]) for name, pkg in packages.items()}
    assert len(photos.files) == len(set(photos.files)) == len(curated_photographs())
    for path, photo in zip(photos.files, photos.curated, strict=True):
        assert sha256_file(path) == photo.sha256, path


@pytest.mark.slow
def test_every_photograph_is_at_least_the_protocol_size():
    """Resizing to 224x224 never enlarges a kept photograph (smaller ones are left out)."""
    installed_packages()
    photos = natural_photo_list()
    for path, name in zip(photos.files, photos.names, strict=True):
        assert min(load_photo(path, None).shape) >= 224, name


@pytest.mark.slow
def test_kept_photographs_are_distinct_and_copies_are_detected():
    packages = installed_packages()
    photos = natural_photo_list()
    prints = np.array([fingerprint(f) for f in photos.files])
    similarity = prints @ prints.T
    for i, j in itertools.combinations(range(len(photos.files)), 2):
        assert similarity[i, j] < DUPLICATE, (photos.names[i], photos.names[j])
    # The check finds the copies that the curated list leaves out.
    for package, name in KNOWN_COPIES:
        path = require_data(packages[package]["folder"] / name.lstrip("/"),
                            f"{package} {name}")
        assert (prints @ fingerprint(path)).max() > DUPLICATE, name


@pytest.mark.slow
def test_natural_patches_overlap_and_split_by_source(tmp_path):
    installed_packages()
    ds = load_prepared(prepare("natural-16", tmp_path / "p", limit_images=2, progress=False))
    meta = ds.meta
    n = len(curated_photographs())
    assert meta["stand_in"] is True and meta["label"].startswith(f"offline stand-in: {n} ")
    # 16x16 patches at stride 8 on 224x224: 27 x 27 positions.
    assert meta["stride"] == 8 and meta["overlapping"] is True
    assert meta["patches_per_image"] == 27 * 27
    info = meta["split_by_source"]["natural"]
    used = info["photographs"]
    assert [len(used[s]) for s in SPLITS] == [2, 2, 2]
    for split in SPLITS:
        assert {p["source"] for p in used[split]} <= ASSIGNED[split]
        assert all(set(p) == {"source", "file", "sha256"} for p in used[split])
        # Every row carries the package of its photograph.
        names, index = ds.row_sources(split)
        assert names == tuple(meta["natural_sources"]) == tuple(PHOTO_SOURCES)
        rows = np.repeat([p["source"] for p in used[split]], 27 * 27)
        np.testing.assert_array_equal(np.asarray(names)[index], rows)
    # Train patches are those of the named photographs, overlapping by 8 pixels.
    photos = natural_photo_list()
    train = ds.split("train")
    first = photos.files[int(train["source_ids"][0])]
    assert photos.curated[int(train["source_ids"][0])].file == used["train"][0]["file"]
    expected = extract_patches(load_photo(first, 224)[None], 16, 8)
    np.testing.assert_array_equal(train["signals"][: 27 * 27], expected)
    left, right = (train["signals"][k].reshape(16, 16) for k in (0, 1))
    np.testing.assert_array_equal(left[:, 8:], right[:, :8])


@pytest.mark.slow
def test_every_photograph_lands_in_its_sources_split():
    installed_packages()
    splits, info = load_source(resolve_source("natural"), seed=0, limit=None)
    photos = natural_photo_list()
    for split in SPLITS:
        sources = {photos.curated[i].source for i in splits[split].source_ids}
        assert sources == ASSIGNED[split], split
        assert info["sources"][split] == {
            name: sum(p.source == name for p in photos.curated) for name in PHOTO_SOURCES
            if name in ASSIGNED[split]}
    # No source on two sides, every photograph used once, the held-out splits whole sources
    # of at least a dozen photographs each.
    for a, b in itertools.combinations(SPLITS, 2):
        assert set(info["sources"][a]).isdisjoint(info["sources"][b])
    ids = np.concatenate([splits[s].source_ids for s in SPLITS])
    assert sorted(ids.tolist()) == list(range(len(photos.files)))
    assert info["images"]["train"] >= 200
    assert info["images"]["val"] >= 12 and info["images"]["test"] >= 12
    assert info["unreadable"]["count"] == 0 and info["mismatched"]["count"] == 0


@pytest.mark.slow
def test_a_photograph_that_changed_is_skipped_with_a_warning(tmp_path, monkeypatch):
    installed_packages()
    curated = curated_photographs()
    changed = next(p for p in curated if p.source == "lxqt-themes")
    edited = tuple(p if p is not changed else pool_module.CuratedPhoto(
        p.source, p.file, "0" * 64, p.licence, p.note) for p in curated)
    monkeypatch.setattr(pool_module, "curated_photographs", lambda: edited)
    with pytest.warns(UserWarning, match=r"skipped 1 changed \(not the SHA-256"):
        ds = load_prepared(prepare("natural-32", tmp_path / "p", progress=False))
    info = ds.meta["split_by_source"]["natural"]
    assert info["mismatched"] == {"count": 1, "files": [f"lxqt-themes/{changed.file}"]}
    assert changed.file not in {p["file"] for p in info["photographs"]["val"]}
    assert ds.meta["images"]["val"] == sum(p.source in ASSIGNED["val"] for p in curated) - 1


def test_a_missing_package_is_named_and_the_rest_used(tmp_path, monkeypatch):
    real_root = pool_module.source_root

    def without_mate(source, *rest):
        return (tmp_path / "nowhere" if source.name == "mate-backgrounds"
                else real_root(source, *rest))

    monkeypatch.setattr(pool_module, "source_root", without_mate)
    photos = natural_photo_list()
    assert "mate-backgrounds: not installed" in photos.missing
    assert not any(n.startswith("mate-backgrounds/") for n in photos.names)
    ds = load_prepared(prepare("natural-32", tmp_path / "p", limit_images=1, progress=False))
    info = ds.meta["split_by_source"]["natural"]
    assert info["missing"] == list(photos.missing)
    assert "missing here: mate-backgrounds: not installed" in ds.meta["label"]
    assert ds.meta["stride"] == 8 and ds.meta["patches_per_image"] == 25 * 25


def test_a_split_whose_packages_are_all_missing_is_refused(tmp_path, monkeypatch):
    real_root = pool_module.source_root

    def without_test_packages(source, *rest):
        return None if source.split == "test" else real_root(source, *rest)

    monkeypatch.setattr(pool_module, "source_root", without_test_packages)
    with pytest.raises(InputError, match="no offline photographs for the test split"):
        prepare("natural-32", tmp_path / "p", limit_images=1, progress=False)
    assert not (tmp_path / "p" / "natural-32").exists()
