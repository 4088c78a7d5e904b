"""Throughput of ISTA, FISTA, SALSA (``lsalsa.solve``) and LISTA, LSALSA (encoders at init).

For every size, batch and depth T it prints codes per second, the achieved GFLOP/s counting
``2*M*N + 2*T*N^2`` flops per sample (one input product plus one N x N product per iteration,
docs/DESIGN.md section 2) and that rate as a fraction of the machine's dense matrix-multiply rate,
measured in the same run on the same shapes (``torch.mm`` of (B, N) x (N, N), the fastest of
at least ten calls: a ceiling).

Classic rows time the public ``lsalsa.solve``, which forms its operators on every call (the
Lipschitz constant; for SALSA the float64 inverse); the one-off set-up time per size is printed
so it can be told apart. Encoder rows run under ``torch.inference_mode`` (the in-place path).

Examples::

    python benchmarks/inference.py --quick
    python benchmarks/inference.py --threads 2 --max-call-seconds 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lsalsa
from lsalsa.core.operators import salsa_inverse64
from lsalsa.core.problem import make_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import (
    markdown_table,
    median_time,
    print_header,
    random_dictionary,
    set_threads,
)

SIZES = {  # name: (M, atoms per dictionary, alphas)
    "sc100": (100, [100], [0.15]),
    "sc256": (256, [256], [0.5]),
    "mca1024": (1024, [1024, 1024], [0.125, 0.2]),
}
METHODS = ("ista", "fista", "salsa", "lista", "lsalsa")
MU = 10.0


def flops_per_sample(M: int, N: int, T: int) -> int:
    return 2 * M * N + 2 * T * N * N


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced grid: sizes sc100, sc256; batches 1024, 4096, 16384; T 1, 5")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=None)
    parser.add_argument("--batches", nargs="+", type=int, default=None,
                        help="default 256 1024 4096 16384 65536")
    parser.add_argument("--depths", nargs="+", type=int, default=None, help="default 1 5 20")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="cpu and/or cuda (default: cpu, plus cuda when available)")
    parser.add_argument("--max-call-seconds", type=float, default=3.0,
                        help="skip a combination whose single call is estimated to take longer")
    parser.add_argument("--max-memory-gb", type=float, default=4.0,
                        help="skip a combination whose working set would exceed this")
    parser.add_argument("--compare-plain", action="store_true",
                        help="also time LSALSA T=5 without the in-place path (torch.no_grad)")
    parser.add_argument("--compile", action="store_true",
                        help="also time LSALSA T=5 under torch.compile (one compile per shape)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or ["sc100", "sc256"]
        args.batches = args.batches or [1024, 4096, 16384]
        args.depths = args.depths or [1, 5]
    args.sizes = args.sizes or list(SIZES)
    args.batches = args.batches or [256, 1024, 4096, 16384, 65536]
    args.depths = args.depths or [1, 5, 20]
    if args.devices is None:
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return args


def make_runner(method: str, Y: torch.Tensor, dicts, alphas, T: int, encoders: dict):
    """A no-argument callable computing the codes of ``Y`` once."""
    if method in ("ista", "fista", "salsa"):
        def run():
            with torch.inference_mode():
                return lsalsa.solve(Y, dicts, alphas, method=method, n_iter=T, mu=MU).codes
        return run
    encoder = encoders[(method, T)]

    def run():
        with torch.inference_mode():
            return encoder(Y)
    return run


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    print_header("inference.py", threads, argv)
    header = ["device", "size", "B", "T", "method", "codes/s", "GFLOP/s", "mm GFLOP/s",
              "fraction"]
    rows: list[list[object]] = []
    skipped: list[str] = []
    for device in args.devices:
        for size in args.sizes:
            M, atoms, alphas = SIZES[size]
            N = sum(atoms)
            dicts_np = [random_dictionary(rng, M, n) for n in atoms]
            dicts = [torch.as_tensor(a, device=device) for a in dicts_np]
            dicts_arg = dicts if len(dicts) > 1 else dicts[0]
            problem, _ = make_problem(dicts_arg, alphas)
            start = time.perf_counter()
            _ = problem.lipschitz, salsa_inverse64(problem, MU)
            print(f"[{device} {size}] operator set-up (Lipschitz + SALSA inverse, float64): "
                  f"{time.perf_counter() - start:.3f} s per solve call", flush=True)
            encoders = {}
            for T in args.depths:
                encoders[("lista", T)] = lsalsa.LISTA(problem, alphas, T).to(device)
                encoders[("lsalsa", T)] = lsalsa.LSALSA(problem, alphas, T, MU).to(device)
            S = torch.as_tensor(rng.standard_normal((N, N)), dtype=torch.float32, device=device)
            for B in args.batches:
                working_set = 12 * B * max(N, M) * 4 / 1e9  # a dozen (B, N) float32 arrays
                if working_set > args.max_memory_gb:
                    skipped.append(f"{device} {size} B={B}: ~{working_set:.1f} GB working set")
                    continue
                X = torch.randn(B, N, device=device)
                # The reference is a ceiling: the fastest of many products (on a shared machine a
                # median would drift with the neighbours' load and flatter the encoders).
                mm_time = median_time(lambda X=X, S=S: torch.mm(X, S), device=device,
                                      min_repeats=10, min_total=1.0, best=True)
                mm_rate = 2 * B * N * N / mm_time / 1e9
                Y = torch.as_tensor(rng.standard_normal((B, M)), dtype=torch.float32,
                                    device=device)
                for T in args.depths:
                    flops = B * flops_per_sample(M, N, T)
                    estimate = flops / (mm_rate * 1e9) * 3  # elementwise work on top
                    if estimate > args.max_call_seconds:
                        skipped.append(f"{device} {size} B={B} T={T}: one call ~{estimate:.0f} s")
                        continue
                    variants = [(m, make_runner(m, Y, dicts_arg, alphas, T, encoders))
                                for m in args.methods]
                    if T == 5 and "lsalsa" in args.methods:
                        variants += extra_variants(args, encoders[("lsalsa", 5)], Y)
                    for name, run in variants:
                        seconds = median_time(run, device=device)
                        rate = flops / seconds / 1e9
                        row = [device, f"{M}x{N}", B, T, name, f"{B / seconds:,.0f}",
                               f"{rate:.1f}", f"{mm_rate:.1f}", f"{rate / mm_rate:.2f}"]
                        rows.append(row)
                        print(" | ".join(str(c) for c in row), flush=True)
    print()
    print(markdown_table(header, rows))
    if skipped:
        print("\nskipped (memory or time would be silly here):")
        for line in skipped:
            print(f"- {line}")
    goal = [r for r in rows if r[4] == "lsalsa" and r[3] == 5 and int(r[2]) >= 4096
            and int(r[1].split("x")[1]) >= 256]
    if goal:
        worst = min(float(r[8]) for r in goal)
        print(f"\ngoal (LSALSA T=5, N >= 256, B >= 4096 at >= 0.5 of the mm rate): worst "
              f"fraction {worst:.2f} -> {'met' if worst >= 0.5 else 'MISSED'}")
    return 0


def extra_variants(args, encoder, Y):
    """Optional LSALSA T=5 variants: the plain (not in-place) path, and torch.compile."""
    extra = []
    if args.compare_plain:
        def plain():
            with torch.no_grad():  # autograd off but not inference mode: the plain path
                return encoder(Y)
        extra.append(("lsalsa-plain", plain))
    if args.compile:
        try:
            compiled = torch.compile(encoder, dynamic=False)
            start = time.perf_counter()
            with torch.inference_mode():
                compiled(Y)
            print(f"  (torch.compile for B={Y.shape[0]}: {time.perf_counter() - start:.1f} s)",
                  flush=True)

            def run():
                with torch.inference_mode():
                    return compiled(Y)
            extra.append(("lsalsa-compiled", run))
        except Exception as exc:  # any compiler failure means "not available"
            print(f"  torch.compile unavailable here ({type(exc).__name__}: {exc}); skipped")
    return extra


if __name__ == "__main__":
    sys.exit(main())
