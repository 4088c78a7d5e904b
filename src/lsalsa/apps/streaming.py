"""Encode ``.npy`` files larger than memory, chunk by chunk.

Input rows are read with plain file reads (no memory map), so resident memory stays bounded by
the chunk size whatever the file size; the output is written the same way into a temporary
file that is renamed into place only when every chunk succeeded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import checks
from ..checks import Settings, rule
from ..core._arrays import cast_array, numpy_dtype
from ..core.encoders import UnrolledEncoder
from ..core.encoders.settings import EncodeSettings
from ..core.operators import inference_dtype
from ..errors import InputError
from ..io import atomic_path, check_finite_output, remove_stale_temporaries
from ..workflow.progress import as_progress


def read_npy_header(handle) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """``(shape, dtype, fortran_order, data_offset)`` of an open ``.npy`` file; refuses
    object arrays."""
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
    return shape, dtype, fortran, handle.tell()


def _read_rows(reader, layout: tuple, first: int, count: int) -> np.ndarray:
    """Rows ``first .. first + count`` of a 2-D ``.npy`` whose data start at ``offset``."""
    (rows, M), dtype, fortran, offset = layout
    if not fortran:
        reader.seek(offset + first * M * dtype.itemsize)
        chunk = np.fromfile(reader, dtype=dtype, count=count * M)
        if chunk.size != count * M:
            raise InputError(f"{reader.name} ended early: was it truncated while being read?")
        return chunk.reshape(count, M)
    # Fortran order stores column after column: one read per column.
    chunk = np.empty((count, M), dtype=dtype)
    for j in range(M):
        reader.seek(offset + (j * rows + first) * dtype.itemsize)
        column = np.fromfile(reader, dtype=dtype, count=count)
        if column.size != count:
            raise InputError(f"{reader.name} ended early: was it truncated while being read?")
        chunk[:, j] = column
    return chunk


@dataclass(frozen=True)
class EncodeFileSettings(Settings):
    """The options of :func:`encode_file`, declared once (``lsalsa encode`` makes its flags
    from them), checked when made."""

    chunk_size: int = rule(checks.positive_int, 65536,
                           help="rows read, encoded and written at a time; bounds the memory")
    fused: bool = checks.declared(EncodeSettings, "fused")


def encode_file(encoder: UnrolledEncoder, in_path: str | os.PathLike,
                out_path: str | os.PathLike, *, chunk_size: int = EncodeFileSettings.chunk_size,
                progress: bool = True, dtype=None,
                fused: bool = EncodeFileSettings.fused) -> tuple[int, int]:
    """Encode every row of ``in_path`` (B, M) into ``out_path`` (B, N) float32.

    ``dtype`` ("bfloat16"; "float16" on CUDA) runs the encoder's products in that precision
    (see :meth:`~lsalsa.core.encoders.UnrolledEncoder.forward`); None: the model's own.
    ``fused``: the layers through torch.compile (``encode(fused=True)``).

    The input may have any real dtype, byte order and memory order. Returns the output
    shape. Nothing is left at ``out_path`` when anything fails, including codes that come out
    NaN or Inf (an overflow).
    """
    EncodeFileSettings(chunk_size=chunk_size, fused=fused)
    low = inference_dtype(dtype, encoder.W.device, encoder.W.dtype)
    source = Path(in_path)
    if not source.is_file():
        raise InputError(f"input file not found: {in_path}")
    M, N = encoder.dictionary.shape
    param = encoder.W
    model_dtype = numpy_dtype(param.dtype)
    with open(source, "rb") as reader:
        shape, dtype, fortran, offset = read_npy_header(reader)
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
        layout = (shape, dtype, fortran, offset)
        remove_stale_temporaries(Path(out_path).parent)  # what killed runs left behind
        out_header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                      "fortran_order": False, "shape": (rows, N)}
        with atomic_path(out_path) as tmp, open(tmp, "wb") as writer:
            np.lib.format.write_array_header_2_0(writer, out_header)
            bar = as_progress(progress).bar(rows, "encode", "rows")
            done = 0
            while done < rows:
                count = min(chunk_size, rows - done)
                where = f"{in_path} (rows {done}..{done + count})"
                # Checked in the model's dtype: 1e300 is finite in float64, Inf in float32.
                chunk = cast_array(_read_rows(reader, layout, done, count), model_dtype, where)
                signals = torch.from_numpy(chunk).to(device=param.device)
                if fused:
                    codes = encoder.encode(signals, batch_size=count, dtype=low, fused=True)
                else:
                    with torch.inference_mode():
                        codes = encoder(signals, dtype=low)
                codes = codes.to(torch.float32).cpu().numpy()
                check_finite_output(codes, f"the codes of {where}")
                writer.write(codes.tobytes())
                done += count
                bar.update(count)
            bar.close()
    return rows, N
