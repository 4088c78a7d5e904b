"""Shared helpers for the benchmark scripts: timing, machine description, tables.

Timing follows docs/DESIGN.md section 6: a warm-up call, then the median of repeated calls, with the
same thread count for every method (set once with :func:`set_threads`).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def set_threads(threads: int | None) -> int:
    """Fix torch's intra-op thread count (default: all cores) and return it."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"0.52 0.80 1.10"`` ("n/a" where unknown)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line(threads: int) -> str:
    """One line describing where a benchmark ran (printed at the top of every table)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"torch {torch.__version__}, CPU {cpu} ({os.cpu_count()} cores), "
            f"torch threads {threads}, GPU {gpu}, load average {load_average()}")


def print_header(script: str, threads: int, argv: list[str] | None) -> None:
    """The machine line and the exact command, printed at the top of every benchmark."""
    import sys

    given = sys.argv[1:] if argv is None else argv
    print(machine_line(threads))
    print(f"command: python benchmarks/{script} {' '.join(given)}", flush=True)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so wall-clock times are real."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], *, device="cpu", warmup: int = 1,
                min_repeats: int = 3, max_repeats: int = 20, min_total: float = 0.5,
                best: bool = False) -> float:
    """Median wall-clock seconds of ``fn()`` after ``warmup`` calls (the fastest with ``best``).

    Repeats at least ``min_repeats`` times and until ``min_total`` seconds have been spent
    (at most ``max_repeats``), so fast calls are not dominated by timer noise.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    while len(times) < min_repeats or (sum(times) < min_total and len(times) < max_repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times) if best else statistics.median(times)


def interleaved_times(calls: dict[str, Callable[[], object]], rounds: int, *,
                      device="cpu") -> dict[str, list[float]]:
    """Wall-clock seconds of every call in each of ``rounds`` rounds; a round calls each one
    once, in turn (warm them up first). On a shared machine a change of load then hits every
    method alike, so ratios of their medians hold better than when one method is timed after
    another."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def random_dictionary(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """A Gaussian (m, n) float32 dictionary with unit-norm columns."""
    A = rng.standard_normal((m, n))
    return (A / np.linalg.norm(A, axis=0)).astype(np.float32)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured markdown table; floats are printed as given (format them first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def si(value: float, digits: int = 3) -> str:
    """``12345678 -> '12.3M'``: short numbers for throughput columns."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{unit}"
    return f"{value:.{digits}g}"


def variant_name(dtype, fused: bool) -> str:
    """How a timed variant is named in the tables: its precision ("bfloat16", a torch dtype
    or its name), then " fused" for fused layers (``encode(fused=True)``)."""
    name = str(dtype).removeprefix("torch.")
    return f"{name} fused" if fused else name


def split_variant(variant: str) -> tuple[str, bool]:
    """The inverse of :func:`variant_name`: "bfloat16 fused" -> ("bfloat16", True)."""
    dtype, _, fused = variant.partition(" ")
    return dtype, fused == "fused"
