"""Low-precision inference: LISTA and LSALSA encode in bfloat16 against float32, side by side.

For each shape and encoder it times ``encoder.encode(Y)`` (float32) and
``encoder.encode(Y, dtype=...)`` (bfloat16; on CUDA also float16) in interleaved rounds after
a warm-up (median of the rounds: a change of load on a shared machine hits both alike), and
prints:

- the throughput ratio low / float32;
- how far the low-precision codes are from the float32 codes (RMS of the difference over RMS
  of the float32 codes);
- the code RMSE (docs/DESIGN.md section 6) of each precision against reference codes, and its
  relative change (the issue's "within 2%");
- each precision's rate against the same-precision ``torch.mm`` rate for the same FLOPs
  (``2 M N + 2 T N^2`` per sample, as ``benchmarks/inference.py`` counts them; the mm rate is
  the fastest of at least ten (B, N) x (N, N) products: a ceiling).

Shapes: ``mca`` is the demo's (32x32 mixtures, M = 1024, two dictionaries of 256 atoms,
alphas 0.125 and 0.2), ``fashion`` Fashion-MNIST's (10x10 patches, M = 100, 100 atoms,
alpha 0.15). Dictionaries are random with unit-norm columns, the signals sparse combinations
of their atoms plus noise, and the reference codes FISTA's after ``--reference-iters``
iterations. ``--run-dir runs/demo`` instead takes the demo's learned dictionaries, its test
mixtures and their exact codes for ``mca``, and adds the separation PSNR of both components
(the synthesis in the same precision). The encoders are untrained (= ISTA(T), SALSA(T)), which
run exactly the trained ones' operations. ``--fused`` adds every precision with fused layers
(``encode(fused=True)``, torch.compile; compiled in the warm-up), named like "bfloat16 fused",
each against the same float32 (unfused) reference and its own precision's mm rate.

Examples::

    python benchmarks/precision.py
    python benchmarks/precision.py --run-dir runs/demo --cases mca --fused
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

import lsalsa
from lsalsa.core.encoders import components
from lsalsa.core.metrics import rmse_per_sample, separation_quality
from lsalsa.workflow.code_sets import load_codes
from lsalsa.workflow.data import load_prepared

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import (
    interleaved_times,
    markdown_table,
    median_time,
    print_header,
    random_dictionary,
    set_threads,
    si,
    variant_name,
)
from inference import flops_per_sample

CASES = {  # name: (M, atoms per dictionary, alphas)
    "mca": (1024, [256, 256], [0.125, 0.2]),
    "fashion": (100, [100], [0.15]),
}
METHODS = ("lsalsa", "lista")
MU = 10.0
TARGET_RATIO, TARGET_RMSE, TARGET_MM = 2.0, 0.02, 0.8  # issue 21's targets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--batch", type=int, default=4096, help="signals B (default 4096)")
    parser.add_argument("--depth", type=int, default=5, help="layers T (default 5)")
    parser.add_argument("--mu", type=float, default=MU, help="LSALSA's mu (default 10)")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    parser.add_argument("--reference-iters", type=int, default=300,
                        help="FISTA iterations for the reference codes of random problems")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="an lsalsa demo run: its dictionaries, test mixtures and exact "
                             "codes stand in for the random mca problem")
    parser.add_argument("--fused", action="store_true",
                        help="also time every precision with fused layers (encode(fused=True), "
                             "torch.compile; the warm-up call compiles)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def random_problem(rng, case: str, B: int, iters: int, device):
    """Random dictionaries, signals ``A x0 + noise`` with 10% of the atoms active, and
    FISTA's codes after ``iters`` iterations as the reference."""
    M, atoms, alphas = CASES[case]
    dicts = [random_dictionary(rng, M, n) for n in atoms]
    A = np.hstack(dicts)
    X0 = rng.standard_normal((B, A.shape[1])) * (rng.random((B, A.shape[1])) < 0.1)
    Y = (X0 @ A.T + 0.1 * rng.standard_normal((B, M)) / np.sqrt(M)).astype(np.float32)
    tensors = [torch.as_tensor(d, device=device) for d in dicts]
    Y_t = torch.as_tensor(Y, device=device)
    with torch.inference_mode():
        reference = lsalsa.solve(Y_t, tensors if len(tensors) > 1 else tensors[0], alphas,
                                 method="fista", n_iter=iters).codes
    return {"dicts": tensors, "alphas": alphas, "Y": Y_t, "reference": reference,
            "truth": None, "label": f"random, FISTA({iters}) reference"}


def demo_problem(run_dir: Path, B: int, device):
    """The demo's dictionaries, its first ``B`` test mixtures, their exact codes and true
    components (read, and checked, by the workflow's own loaders)."""
    codeset = load_codes(run_dir / "codes")
    test = load_prepared(run_dir / "data" / codeset.meta["data"]["name"]).split("test")
    dicts = [torch.as_tensor(d, device=device) for d in codeset.dictionaries]
    return {"dicts": dicts, "alphas": list(codeset.alphas),
            "Y": torch.as_tensor(np.array(test["signals"][:B], dtype=np.float32),
                                 device=device),
            "reference": torch.as_tensor(np.array(codeset.codes("test")[:B]), device=device),
            "truth": [np.array(test[f"component{i}"][:B], dtype=np.float32)
                      for i in range(len(dicts))],
            "label": f"{run_dir} test mixtures, exact codes"}


def mm_rate(B: int, N: int, dtype, device) -> float:
    """GFLOP/s of the fastest (B, N) x (N, N) product in ``dtype``."""
    X = torch.randn(B, N, device=device).to(dtype)
    S = torch.randn(N, N, device=device).to(dtype)
    seconds = median_time(lambda: torch.mm(X, S), device=device, min_repeats=10,
                          min_total=0.5, best=True)
    return 2 * B * N * N / seconds / 1e9


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    device = torch.device(args.device or "cpu")
    lows = [torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    rng = np.random.default_rng(args.seed)
    print_header("precision.py", threads, argv)
    header = ["case", "method", "B", "T", "dtype", "codes/s", "x fp32", "codes vs fp32",
              "code RMSE", "RMSE change", "PSNR (dB)", "GFLOP/s", "mm GFLOP/s", "of mm"]
    rows, verdicts = [], []
    for case in args.cases:
        if case == "mca" and args.run_dir is not None:
            problem = demo_problem(args.run_dir, args.batch, device)
        else:
            problem = random_problem(rng, case, args.batch, args.reference_iters, device)
        dicts, alphas, Y = problem["dicts"], problem["alphas"], problem["Y"]
        B, M = Y.shape
        N = sum(d.shape[1] for d in dicts)
        print(f"[{case}] M = {M}, N = {N}, B = {B}: {problem['label']}", flush=True)
        rates = {dtype: mm_rate(B, N, dtype, device) for dtype in (torch.float32, *lows)}
        dictionaries = dicts if len(dicts) > 1 else dicts[0]
        for method in args.methods:
            encoder = lsalsa.build_encoder(method, dictionaries, alphas, args.depth,
                                           args.mu if method == "lsalsa" else None).to(device)
            # (dtype, fused) -> call; float32 unfused is the reference of every ratio.
            calls = {(dtype, fused): (lambda e=encoder, Y=Y, d=dtype, f=fused: e.encode(
                Y, dtype=None if d == torch.float32 else d, fused=f))
                for fused in ((False, True) if args.fused else (False,)) for dtype in rates}
            for call in calls.values():  # warm-up: the weights' casts, the allocator, compiles
                call()
            times = interleaved_times(calls, args.rounds, device=device)
            seconds = {d: statistics.median(t) for d, t in times.items()}
            codes = {d: call() for d, call in calls.items()}
            plain = (torch.float32, False)
            base = codes[plain]
            flops = B * flops_per_sample(M, N, args.depth)
            rmse = {d: float(rmse_per_sample(c.cpu(), problem["reference"].cpu()).mean())
                    for d, c in codes.items()}
            for variant in calls:
                dtype, fused = variant
                name = variant_name(dtype, fused)
                ratio = seconds[plain] / seconds[variant]
                moved = float((codes[variant] - base).pow(2).mean().sqrt()
                              / base.pow(2).mean().sqrt())
                change = rmse[variant] / rmse[plain] - 1
                psnr = ""
                if problem["truth"] is not None:
                    low = None if dtype == torch.float32 else dtype
                    parts = [p.cpu().numpy() for p in components(encoder, codes[variant],
                                                                 dtype=low)]
                    psnr = " / ".join(f"{v:.2f}" for v in
                                      separation_quality(parts, problem["truth"])["psnr"])
                rate = flops / seconds[variant] / 1e9
                row = [case, method, B, args.depth, name, si(B / seconds[variant]),
                       f"{ratio:.2f}", f"{moved:.2%}", f"{rmse[variant]:.4g}", f"{change:+.2%}",
                       psnr, f"{rate:.1f}", f"{rates[dtype]:.1f}",
                       f"{rate / rates[dtype]:.2f}"]
                rows.append(row)
                print(" | ".join(str(c) for c in row), flush=True)
                if dtype != torch.float32:
                    met = ratio >= TARGET_RATIO and abs(change) <= TARGET_RMSE
                    verdicts.append(f"{case} {method} {name}: {ratio:.2f}x float32, code RMSE "
                                    f"{change:+.2%} -> {'met' if met else 'MISSED'}")
                verdicts.append(f"{case} {method} {name}: {rate / rates[dtype]:.2f} of the "
                                f"{variant_name(dtype, False)} mm rate -> "
                                f"{'met' if rate / rates[dtype] >= TARGET_MM else 'MISSED'}")
    print()
    print(markdown_table(header, rows))
    print(f"\ntargets (issue 21): low precision >= {TARGET_RATIO:g}x float32 with code RMSE "
          f"within {TARGET_RMSE:.0%}; encoders >= {TARGET_MM:g} of the same-precision mm rate")
    for line in verdicts:
        print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
