"""The curated offline photographs: the natural-image stand-in (docs/DESIGN.md section 5).

photographs.csv, beside this file, lists each photograph (source package, file, SHA-256,
licence, why it counts); :data:`PHOTO_SOURCES` gives each package's kind and the split all of
its photographs go to. :func:`natural_photo_list` finds the installed ones, unpacking those that
ship inside Qt resource files into the cache first; :func:`load_curated_photo` checks a file
against its SHA-256 before decoding it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from .download import sha256_file
from .photo_files import PhotoList, load_photo
from .sources import cache_dir

# The offline natural-image stand-in: the curated photographs of real scenes that installed
# packages ship, listed in photographs.csv beside this file (one row per photograph: source
# package, file, SHA-256, licence, why it counts). Left out by hand: drawings, renders,
# gradients, logos, printed text (it would compete with the digit component of MCA), images
# under 224x224, stereo or video twins of a kept photograph (skimage motorcycle_right, OpenCV
# aloeR, leuvenB, basketball2, rubberwhale2, aero3, graf3) and copies (PyWavelets camera.npz is
# skimage's camera.png; GCompris's categorization brandenburgGate is its explore_monuments
# one). tests/test_data_natural.py checks that no two kept photographs are copies of each other.
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


def source_root(source: PhotoSource, photographs=(), version: str | None = None
                ) -> Path | None:
    """The folder a source's files are relative to, or None when it is not installed; a Qt
    resource source's ``photographs`` are unpacked there first (into a folder named after
    ``version``, the installed package's, :func:`source_version`)."""
    if source.kind == "deb":
        return DEBIAN_ROOT
    if source.kind == "rcc":
        return unpack_resources(source, photographs, version) \
            if Path(source.archives).is_dir() else None
    folder = _module_dir(source.module, "")
    return None if folder is None else folder.parent


def unpack_resources(source: PhotoSource, photographs, version: str | None) -> Path:
    """Copy the curated photographs of a Qt resource source out of its ``.rcc`` archives into
    the cache (once, atomically; a folder per package ``version``) and return the folder they
    are relative to. An archive that is missing or damaged is warned about and its photographs
    left out; their SHA-256 is checked when they are decoded, as every curated photograph's
    is."""
    import warnings

    from ...io import atomic_path
    from .qt_resources import read_rcc_members

    folder = cache_dir() / "photographs" / source.name / (version or "unknown")
    wanted: dict[str, list[str]] = {}
    for photo in photographs:
        if not (folder / photo.file).is_file():
            archive, _, member = photo.file.partition("/")
            wanted.setdefault(archive, []).append(member)
    for archive, members in wanted.items():
        path = Path(source.archives) / f"{archive}.rcc"
        if not path.is_file():
            continue  # named as not found by natural_photo_list
        try:
            contents = read_rcc_members(path, members)
        except InputError as exc:
            warnings.warn(f"skipped the photographs of {path}: {exc}", UserWarning,
                          stacklevel=2)
            continue
        for member, data in contents.items():
            try:
                with atomic_path(folder / archive / member) as tmp:
                    tmp.write_bytes(data)
            except OSError as exc:
                raise InputError(f"cannot write the photographs of {path} into {folder}: "
                                 f"{exc.strerror or exc}") from exc
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
        version = source_version(source)
        packages.append({"package": name, "version": version,
                         "folder": source_root(source, rows, version), "split": source.split,
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
