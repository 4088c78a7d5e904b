"""Read files out of a Qt binary resource (``.rcc``), the form GCompris ships its photographs in.

The format (Qt's ``rcc``, versions 1 to 3; all numbers big-endian): the magic ``qres``, the
version, then the offsets of the tree, the data and the names (version 3 adds a flags word).
Each tree node is a name offset and flags, then for a directory its child count and first
child, for a file its locale and data offset; from version 2 a node ends with an 8-byte
modification time. A name is its UTF-16 length, a hash and the UTF-16 characters. A file's
data is its size and its bytes, zlib-compressed behind a 4-byte length when flagged so.
Nothing is executed or unpickled; a damaged archive is one :class:`InputError` line.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from ...errors import InputError

_MAGIC = b"qres"
_COMPRESSED, _DIRECTORY, _COMPRESSED_ZSTD = 1, 2, 4


def read_rcc_members(path, members) -> dict[str, bytes]:
    """The bytes of each of ``members`` (paths inside the archive, ``a/b/c.webp``) in the Qt
    resource file ``path``; a member it does not hold is an :class:`InputError`."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        files = _walk(blob)
    except (struct.error, IndexError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path} is not a readable Qt resource file: {exc}") from exc
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc
    out = {}
    for member in members:
        if member not in files:
            raise InputError(f"{path} holds no {member}")
        try:
            out[member] = _payload(blob, *files[member])
        except (struct.error, zlib.error, ValueError) as exc:
            raise InputError(f"{path}: cannot read {member}: {exc}") from exc
    return out


def _walk(blob: bytes) -> dict[str, tuple[int, int]]:
    """Every file of the archive: its path and (data position, flags)."""
    if blob[:4] != _MAGIC:
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack_from(">iiii", blob, 4)
    if not 1 <= version <= 3:
        raise ValueError(f"Qt resource format version {version} is not supported (1 to 3)")
    node_size = 14 if version == 1 else 22
    files: dict[str, tuple[int, int]] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6  # past the length and the name's hash
        if start + 2 * length > len(blob):
            raise struct.error("a name runs past the end")
        return blob[start:start + 2 * length].decode("utf-16-be")

    def visit(node: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise ValueError("the resource tree is nested too deep (a loop?)")
        at = tree + node * node_size
        name_offset, flags = struct.unpack_from(">iH", blob, at)
        here = f"{prefix}/{name(name_offset)}".lstrip("/") if node else ""
        if flags & _DIRECTORY:
            count, first = struct.unpack_from(">ii", blob, at + 6)
            for child in range(first, first + count):
                visit(child, here, depth + 1)
        else:
            (offset,) = struct.unpack_from(">i", blob, at + 10)
            files[here] = (data + offset, flags)

    visit(0, "", 0)
    return files


def _payload(blob: bytes, at: int, flags: int) -> bytes:
    (size,) = struct.unpack_from(">I", blob, at)
    raw = blob[at + 4:at + 4 + size]
    if len(raw) != size:
        raise ValueError("its data runs past the end of the file")
    if flags & _COMPRESSED_ZSTD:
        raise ValueError("zstd-compressed resources are not supported")
    if flags & _COMPRESSED:
        (expected,) = struct.unpack_from(">I", raw, 0)  # qCompress: length, then zlib
        raw = zlib.decompress(raw[4:])
        if len(raw) != expected:
            raise ValueError(f"decompressed to {len(raw)} bytes, its header says {expected}")
    return raw
