"""Verified downloads into the cache: stream, hash, check, then rename into place.

A download is hashed while it streams into a temporary file beside the target; only when its
length matches the server's ``Content-Length`` and its SHA-256 matches the expected value is it
renamed to its final name (:func:`lsalsa.io.atomic_path`). A checksum mismatch, a truncated
transfer or a network error raise :class:`~lsalsa.errors.InputError` and leave nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from ...errors import InputError
from ...io import atomic_path
from ..progress import as_progress

# Canonical files with their SHA-256 (sizes in bytes for the progress bar). ASIRRA has no
# published checksum we could pin, so it is read only from a folder the user provides.
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
RESOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            _FASHION + "train-images-idx3-ubyte.gz",
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"),
        "train-labels-idx1-ubyte.gz": (
            _FASHION + "train-labels-idx1-ubyte.gz",
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"),
        "t10k-images-idx3-ubyte.gz": (
            _FASHION + "t10k-images-idx3-ubyte.gz",
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"),
        "t10k-labels-idx1-ubyte.gz": (
            _FASHION + "t10k-labels-idx1-ubyte.gz",
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            _MNIST + "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (
            _MNIST + "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (
            _MNIST + "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (
            _MNIST + "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "cifar10": {
        "cifar-10-binary.tar.gz": (
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
    },
}

_CHUNK = 1 << 20


def sha256_file(path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest, sha256: str, *, timeout: float = 60.0,
             progress: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with the right SHA-256 is already there.

    Parameters
    ----------
    url : str
    dest : path-like
        Final location (its folder is created).
    sha256 : str
        Expected hex digest; the file is only kept when it matches.
    timeout : float
        Socket timeout in seconds.
    progress : bool
        Show a tqdm bar (only on a terminal).

    Returns
    -------
    Path to the verified file.
    """
    dest = Path(dest)
    expected = sha256.lower()
    if dest.is_file():
        if sha256_file(dest) == expected:
            return dest
        dest.unlink()  # a corrupt cached copy is never used; fetch it again
    response = _open(url, timeout)
    with response, atomic_path(dest) as tmp:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = _bar(total, dest.name, progress)
        try:
            digest, received = _stream(response, tmp, url, total, bar)
        finally:
            bar.close()
        if total is not None and received != total:
            raise InputError(f"download of {url} truncated: got {received} of {total} bytes")
        got = digest.hexdigest()
        if got != expected:
            raise InputError(f"checksum mismatch for {url}: expected sha256 {expected}, "
                             f"got {got}; nothing was kept")
    return dest


def _open(url: str, timeout: float):
    """The server's response to ``url``; a network or protocol failure as an InputError."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot download {url}: {reason}") from exc
    except http.client.HTTPException as exc:  # a bad status line, over 100 headers, ...
        raise InputError(f"cannot download {url}: {_malformed(exc)}") from exc


def _stream(response, path: Path, url: str, total: int | None, bar):
    """Copy ``response`` to ``path`` chunk by chunk; return its SHA-256 (a hashlib object) and
    its length. A failed or cut-short read is an InputError."""
    digest, received = hashlib.sha256(), 0
    with open(path, "wb") as handle:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except http.client.IncompleteRead as exc:
                chunk = exc.partial
                received += len(chunk)
                raise InputError(f"download of {url} truncated: got {received} of "
                                 f"{total} bytes") from exc
            except http.client.HTTPException as exc:  # e.g. a chunk line too long
                raise InputError(f"download of {url} failed: {_malformed(exc)}") from exc
            except OSError as exc:
                raise InputError(f"download of {url} failed: {exc}") from exc
            if not chunk:
                break
            handle.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return digest, received


def fetch_resource(group: str, dest_dir, progress: bool = False) -> Path:
    """Download every file of a canonical group (``RESOURCES``) into ``dest_dir``."""
    if group not in RESOURCES:
        raise InputError(f"no canonical download for {group!r}")
    dest_dir = Path(dest_dir)
    for name, (url, digest) in RESOURCES[group].items():
        download(url, dest_dir / name, digest, progress=progress)
    return dest_dir


def _malformed(exc: http.client.HTTPException) -> str:
    # Their text is often the server's raw line (with its CR LF): one line, cut short.
    detail = " ".join(str(exc).split())[:100]
    return f"malformed HTTP response ({type(exc).__name__}{': ' + detail if detail else ''})"


def _bar(total, name, enabled):
    return as_progress(enabled).bar(total, f"download {name}", "B", unit_scale=True)
