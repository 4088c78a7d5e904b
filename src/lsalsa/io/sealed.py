"""Safetensors files sealed with checksums: model files and checkpoints store the sha256 of
every tensor (with its dtype and shape) in a manifest, and the sha256 of all their metadata
(the manifest included), so a flipped bit anywhere, or an edited header, is refused on
loading. Nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import InputError
from .atomic import atomic_path

MANIFEST = "lsalsa_tensors"
DIGEST = "lsalsa_sha256"


def _describe(tensor) -> dict:
    import torch

    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
            "sha256": hashlib.sha256(flat.view(torch.uint8).numpy()).hexdigest()}


def _metadata_digest(metadata: dict[str, str]) -> str:
    body = {key: value for key, value in metadata.items() if key != DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str]) -> None:
    """Write torch tensors and string metadata to one safetensors file, atomically, with the
    usual permissions, sealed by checksums. The header is written with sorted keys, so equal
    contents give equal bytes (safetensors itself orders the metadata at random)."""
    from safetensors.torch import save

    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    metadata = {**metadata, MANIFEST: json.dumps(
        {name: _describe(t) for name, t in tensors.items()}, sort_keys=True)}
    metadata[DIGEST] = _metadata_digest(metadata)
    data = save(tensors, metadata=metadata)
    size = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + size]), sort_keys=True,
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data stay 8-byte aligned, as safetensors has them
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(len(header).to_bytes(8, "little") + header)
        handle.write(memoryview(data)[8 + size:])  # no copy of the tensors' bytes


def read_safetensors(path: str | os.PathLike, what: str, tensors: bool = True
                     ) -> tuple[dict, dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file (no tensors with ``tensors=False``); an
    unreadable file is an :class:`InputError` calling it ``what``. Nothing is verified yet:
    see :func:`verify_header` and :func:`verify_tensors`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            loaded = {name: handle.get_tensor(name) for name in handle.keys()} if tensors \
                else {}
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"{what} {path} is corrupt or truncated: {reason}") from exc
    return loaded, metadata


def verify_header(path, what: str, metadata: dict[str, str]) -> None:
    """Refuse metadata that do not match the checksum stored with them."""
    if metadata.get(DIGEST) != _metadata_digest(metadata):
        raise InputError(f"{what} {path} is damaged or was edited: its header does not match "
                         "the checksum stored in it")


def verify_tensors(path, what: str, tensors: dict, metadata: dict[str, str]) -> None:
    """Refuse tensors that differ from the manifest (names, dtypes, shapes, sha256) in a
    header already checked by :func:`verify_header`."""
    try:
        manifest = json.loads(metadata[MANIFEST])
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{what} {path} has no readable tensor manifest") from exc
    if not isinstance(manifest, dict) or set(manifest) != set(tensors):
        raise InputError(f"{what} {path} is damaged: it holds tensors {sorted(tensors)}, its "
                         "manifest lists others")
    for name in sorted(tensors):
        if manifest[name] != _describe(tensors[name]):
            raise InputError(f"{what} {path} is damaged: tensor {name} does not match its "
                             "checksum")
