"""``lsalsa solve``: sparse codes of signals in a .npy file with a classic solver."""

from __future__ import annotations

import numpy as np
import torch

from ..core._arrays import as_real
from ..core.operators import inference_dtype
from ..core.solvers import SolveSettings, solve
from ..io import check_output_path, read_array, remove_stale_temporaries, save_npy
from .options import add_option_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "solve", help="sparse codes of signals (.npy) with ISTA, FISTA, SALSA or an exact solver",
        description="Solve min_x 1/2||y - A x||^2 + sum_i alpha_i ||x_i||_1 for every row y "
                    "of SIGNALS and write the codes (B, N) to OUT.")
    parser.add_argument("signals", help="input .npy of shape (B, M)")
    parser.add_argument("out", help="output .npy for the codes, shape (B, N)")
    parser.add_argument("--dict", dest="dictionaries", action="append", required=True,
                        metavar="A.npy", help="dictionary (M, N_i); repeat for MCA")
    parser.add_argument("--alpha", dest="alphas", action="append", type=float, required=True,
                        help="l1 penalty; one, or one per --dict")
    add_option_flags(parser, SolveSettings, ("method", "n_iter", "mu", "tol"))
    parser.add_argument("--float32", action="store_true", help="compute in float32")
    parser.add_argument("--dtype", default=None,
                        help="ista, fista, salsa: bfloat16 runs every product in bfloat16 (fast "
                             "on CPUs with AVX-512 BF16 or AMX); the iterates and codes stay "
                             "float64 (float32 with --float32)")
    parser.set_defaults(func=run)


def run(args) -> int:
    dtype_of_signals = torch.float32 if args.float32 else torch.float64
    inference_dtype(args.dtype, "cpu", dtype_of_signals)
    out = check_output_path(args.out, [args.signals, *args.dictionaries])
    remove_stale_temporaries(out.parent)  # what killed runs left behind
    dtype = np.float32 if args.float32 else np.float64
    Y = as_real(read_array(args.signals, "signals"), dtype, f"signals {args.signals}")
    dictionaries = [as_real(read_array(p, "dictionary"), dtype, f"dictionary {p}")
                    for p in args.dictionaries]
    result = solve(Y, dictionaries, args.alphas, method=args.method, n_iter=args.n_iter,
                   mu=args.mu, tol=args.tol, dtype=args.dtype)
    save_npy(out, result.codes)
    gap = "" if result.gap is None else f", median duality gap {np.median(result.gap):.3g}"
    precision = "" if args.dtype is None else f", products in {args.dtype}"
    print(f"wrote {out} ({result.codes.shape[0]} x {result.codes.shape[1]} codes, "
          f"{result.method}, {result.n_iter} iterations{gap}{precision})")
    return 0
