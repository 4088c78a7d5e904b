"""Reading photographs out of Qt resource files (.rcc): archives written here by a small
writer of the format, so every branch is known; the real GCompris archives are read by
test_data_natural.py."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from lsalsa.errors import InputError
from lsalsa.workflow.data.photo_pool import CuratedPhoto, PhotoSource, unpack_resources
from lsalsa.workflow.data.qt_resources import read_rcc_members


def write_rcc(path, tree: dict, version: int = 3, compress: frozenset = frozenset(),
              flags_of: dict | None = None) -> None:
    """Write ``tree`` (nested dicts of names to bytes) as a Qt resource file: nodes
    breadth-first, each directory's children contiguous, as Qt's rcc lays them out."""
    nodes, names, data = [], bytearray(), bytearray()
    queue = [("", tree, "")]
    while queue:
        name, item, where = queue.pop(0)
        name_offset = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        if isinstance(item, dict):
            first = len(nodes) + len(queue) + 1
            nodes.append((name_offset, 2, len(item), first))
            queue += [(k, v, f"{where}/{k}".lstrip("/")) for k, v in sorted(item.items())]
        else:
            flag = (flags_of or {}).get(where, 1 if where in compress else 0)
            payload = struct.pack(">I", len(item)) + zlib.compress(item) if flag & 1 else item
            nodes.append((name_offset, flag, len(data)))
            data += struct.pack(">I", len(payload)) + payload
    tree_blob = bytearray()
    for node in nodes:
        if node[1] & 2:
            tree_blob += struct.pack(">iHii", *node)
        else:
            tree_blob += struct.pack(">iHhhi", node[0], node[1], 0, 0, node[2])
        if version >= 2:
            tree_blob += bytes(8)  # modification time
    header_size = 20 if version < 3 else 24
    tree_at = header_size
    data_at = tree_at + len(tree_blob)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">iiii", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">i", 1 if compress else 0)
    path.write_bytes(header + tree_blob + data + names)


TREE = {"gcompris": {"src": {"a.webp": b"first photograph", "b.webp": b"second" * 50}},
        "top.txt": b"plain"}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_members_read_back_plain_and_compressed(tmp_path, version):
    path = tmp_path / "x.rcc"
    write_rcc(path, TREE, version, compress=frozenset({"gcompris/src/b.webp"}))
    got = read_rcc_members(path, ["gcompris/src/a.webp", "gcompris/src/b.webp", "top.txt"])
    assert got == {"gcompris/src/a.webp": b"first photograph",
                   "gcompris/src/b.webp": b"second" * 50, "top.txt": b"plain"}


@pytest.mark.parametrize("damage, message", [
    (lambda blob: b"QRES" + blob[4:], "no 'qres' magic"),
    (lambda blob: blob[:4] + struct.pack(">i", 9) + blob[8:], "version 9 is not supported"),
    (lambda blob: blob[:60], "not a readable Qt resource file"),
])
def test_a_damaged_archive_is_one_line(tmp_path, damage, message):
    path = tmp_path / "x.rcc"
    write_rcc(path, TREE)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InputError, match=message) as info:
        read_rcc_members(path, ["top.txt"])
    assert "\n" not in str(info.value)


def test_a_missing_member_or_zstd_data_is_named(tmp_path):
    path = tmp_path / "x.rcc"
    write_rcc(path, TREE, flags_of={"top.txt": 4})
    with pytest.raises(InputError, match=r"holds no gcompris/nothing\.webp"):
        read_rcc_members(path, ["gcompris/nothing.webp"])
    with pytest.raises(InputError, match=r"top\.txt: zstd-compressed resources are not"):
        read_rcc_members(path, ["top.txt"])


def test_curated_photographs_are_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    archives = tmp_path / "rcc"
    archives.mkdir()
    write_rcc(archives / "erase.rcc", TREE, compress=frozenset({"gcompris/src/b.webp"}))
    write_rcc(archives / "broken.rcc", TREE)
    (archives / "broken.rcc").write_bytes(b"qres")
    source = PhotoSource("pkg", "rcc", "train", archives=str(archives))
    rows = [CuratedPhoto("pkg", f, hashlib.sha256(b"x").hexdigest(), "CC0", "photograph")
            for f in ("erase/gcompris/src/b.webp", "broken/gcompris/src/a.webp",
                      "absent/gcompris/src/a.webp")]
    with pytest.warns(UserWarning, match="skipped the photographs of .*broken.rcc"):
        folder = unpack_resources(source, rows, "1.0")
    assert folder == tmp_path / "cache" / "photographs" / "pkg" / "1.0"
    assert (folder / rows[0].file).read_bytes() == b"second" * 50
    assert not (folder / rows[1].file).exists() and not (folder / rows[2].file).exists()
    # Once unpacked, the archive is not read again.
    (archives / "erase.rcc").unlink()
    assert unpack_resources(source, rows[:1], "1.0") == folder
    assert (folder / rows[0].file).read_bytes() == b"second" * 50


def test_a_cache_it_cannot_write_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("LSALSA_CACHE", str(tmp_path / "cache"))
    archives = tmp_path / "rcc"
    archives.mkdir()
    write_rcc(archives / "erase.rcc", TREE)
    source = PhotoSource("pkg", "rcc", "train", archives=str(archives))
    row = CuratedPhoto("pkg", "erase/top.txt", "0" * 64, "CC0", "photograph")
    with pytest.raises(InputError, match=r"cannot write the photographs of .*erase\.rcc"):
        unpack_resources(source, [row], "1.0")
