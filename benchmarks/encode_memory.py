"""Peak resident memory and throughput of ``lsalsa encode`` on a large ``.npy`` file.

Writes a float32 signal file of ``--size-gb`` (default 4 GB: about 10.5 million rows x 100),
saves a small LSALSA model (M = N = 100, T = 5, at initialisation), runs ``lsalsa encode`` on it
as a subprocess with a modest chunk size, and reports the child's peak RSS
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``) and rows per second. Target: peak RSS < 1 GB.
The big files are deleted afterwards. Refuses to start when the disk lacks room for input and
output (checked with ``shutil.disk_usage``).

Example::

    python benchmarks/encode_memory.py --size-gb 4 --chunk-size 16384
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lsalsa
from lsalsa.io import atomic_path, load_npy

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, print_header, random_dictionary, set_threads

# The installed `lsalsa` command, run with this interpreter (the package has no __main__).
LSALSA_CLI = [sys.executable, "-c", "import sys; from lsalsa.cli import main; sys.exit(main())"]

M = N = 100
DEPTH = 5


def write_signals(path: Path, rows: int, seed: int, block: int = 1 << 18) -> None:
    """A (rows, M) float32 .npy written block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (rows, M)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, header)
        done = 0
        while done < rows:
            count = min(block, rows - done)
            handle.write(rng.standard_normal((count, M), dtype=np.float32).tobytes())
            done += count


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=4.0, help="input size (default 4)")
    parser.add_argument("--chunk-size", type=int, default=16384, help="rows per chunk")
    parser.add_argument("--dir", default=None, help="where to put the big files (default tmp)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="do not delete the files")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("encode_memory.py", threads, argv)
    rows = int(args.size_gb * 1e9 / (4 * M))
    parent = Path(args.dir or tempfile.gettempdir())
    needed = rows * (M + N) * 4 + 1e9  # input + output + 1 GB spare
    free = shutil.disk_usage(parent).free
    if free < needed:
        sys.exit(f"refusing: {parent} has {free / 1e9:.1f} GB free, this needs "
                 f"{needed / 1e9:.1f} GB")
    work = Path(tempfile.mkdtemp(prefix="lsalsa-encode-memory-", dir=parent))
    try:
        signals, codes, model = work / "signals.npy", work / "codes.npy", work / "model.safetensors"
        start = time.perf_counter()
        write_signals(signals, rows, args.seed)
        print(f"wrote {signals} ({rows:,} x {M}, {signals.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        rng = np.random.default_rng(args.seed)
        encoder = lsalsa.LSALSA(random_dictionary(rng, M, N), 0.15, DEPTH)
        encoder.save(model)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        command = [*LSALSA_CLI, "encode", str(signals), str(codes),
                   "--model", str(model), "--chunk-size", str(args.chunk_size), "--quiet"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env)
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        if peak_kb <= before:
            print("note: an earlier child had a larger peak; the figure below is an upper bound")
        # Spot check: the first and last chunk equal the in-process encoder's codes.
        out = load_npy(codes, mmap=True)
        assert out.shape == (rows, N), out.shape
        head = load_npy(signals, mmap=True)
        with torch.inference_mode():
            for part in (slice(0, 1000), slice(rows - 1000, rows)):
                want = encoder(torch.from_numpy(np.array(head[part]))).numpy()
                np.testing.assert_array_equal(out[part], want)
        del out, head
        peak_gb = peak_kb * 1024 / 1e9
        table = [[f"{signals.stat().st_size / 1e9:.2f}", f"{rows:,}", args.chunk_size, threads,
                  f"{peak_gb:.3f}", f"{seconds:.1f}", f"{rows / seconds:,.0f}",
                  "met" if peak_gb < 1.0 else "MISSED"]]
        print()
        print(markdown_table(["input GB", "rows", "chunk", "threads", "peak RSS GB",
                              "wall s", "rows/s", "< 1 GB"], table))
        print("(wall time includes interpreter start-up, reading and writing; the codes of the "
              "first and last 1000 rows were checked against the in-process encoder)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
