"""Encode ``.npy`` files larger than memory, chunk by chunk.

Input rows are read with plain file reads (no memory map), so resident memory stays bounded by
the chunk size whatever the file size; the output is written the same way into a temporary
file that is renamed into place only when every chunk succeeded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .encoders import UnrolledEncoder
from .errors import InputError
from .io import atomic_path


def read_npy_header(handle) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data_offset)`` of an open ``.npy`` file; refuses object arrays."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    except ValueError as exc:
        raise InputError(f"{handle.name} is not a .npy file: {exc}") from exc
    if dtype.hasobject:
        raise InputError(f"{handle.name} holds Python objects; only numeric arrays are read")
    if fortran:
        raise InputError(f"{handle.name} is Fortran-ordered; save it in C order")
    return shape, dtype, handle.tell()


def encode_file(encoder: UnrolledEncoder, in_path: str | os.PathLike,
                out_path: str | os.PathLike, *, chunk_size: int = 65536,
                progress: bool = True) -> tuple[int, int]:
    """Encode every row of ``in_path`` (B, M) into ``out_path`` (B, N) float32.

    Returns the output shape. Nothing is left at ``out_path`` when anything fails.
    """
    if chunk_size < 1:
        raise InputError(f"chunk size must be >= 1, got {chunk_size}")
    source = Path(in_path)
    if not source.is_file():
        raise InputError(f"input file not found: {in_path}")
    M, N = encoder.dictionary.shape
    param = encoder.W_e
    with open(source, "rb") as reader:
        shape, dtype, offset = read_npy_header(reader)
        if len(shape) != 2 or shape[1] != M:
            raise InputError(f"{in_path} has shape {shape}; the model expects (B, {M})")
        if dtype.kind not in "fiu":
            raise InputError(f"{in_path} has dtype {dtype}; expected numbers")
        rows = shape[0]
        if rows == 0:
            raise InputError(f"{in_path} is empty")
        expected = offset + rows * M * dtype.itemsize
        if source.stat().st_size < expected:
            raise InputError(f"{in_path} is truncated: {source.stat().st_size} bytes, "
                             f"its header promises {expected}")
        out_header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                      "fortran_order": False, "shape": (rows, N)}
        with atomic_path(out_path) as tmp, open(tmp, "wb") as writer:
            np.lib.format.write_array_header_2_0(writer, out_header)
            # disable=None: tqdm hides itself when stderr is not a terminal.
            bar = tqdm(total=rows, unit="rows", desc="encode",
                       disable=None if progress else True)
            done = 0
            while done < rows:
                count = min(chunk_size, rows - done)
                chunk = np.fromfile(reader, dtype=dtype, count=count * M).reshape(count, M)
                if not np.isfinite(chunk).all():
                    raise InputError(f"{in_path} has NaN or Inf in rows {done}..{done + count}")
                signals = torch.from_numpy(chunk).to(device=param.device, dtype=param.dtype)
                with torch.inference_mode():
                    codes = encoder(signals)
                writer.write(codes.to(torch.float32).cpu().numpy().tobytes())
                done += count
                bar.update(count)
            bar.close()
    return rows, N
