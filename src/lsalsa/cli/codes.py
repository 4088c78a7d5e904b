"""``lsalsa codes``: optimal codes of a prepared data set for fixed dictionaries."""

from __future__ import annotations

from pathlib import Path

from ..core._arrays import as_real, resolve_device
from ..core.codes import CodesSettings, TuneSettings
from ..io import check_output_path, read_array
from ..workflow.code_sets import CodeSetSettings
from ..workflow.data.prepared import TrainingSignalsSettings
from .options import add_option_flags, option_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "codes", help="optimal codes of a prepared data set (what the encoders learn to predict)",
        description="Optimal codes for fixed dictionaries, stored with their dictionaries, "
                    "alphas, solver and achieved duality gaps.")
    sub = parser.add_subparsers(dest="codes_command", metavar="ACTION", required=True)

    compute = sub.add_parser(
        "compute", help="compute and store the codes of every split",
        description="Codes of the signals (MCA: the mixtures) of every split of a prepared "
                    "data set. --mode exact (default) solves to a relative duality gap of "
                    "--tol; --mode paper runs the paper's recipe (--n-iter iterations of FISTA for "
                    "one dictionary, of SALSA with --mu for several). Writes OUT/ with "
                    "codes_<split>.npy, dictionary_<i>.npy and codes.json.")
    compute.add_argument("--data", required=True, metavar="PREPARED",
                         help="prepared data set: a folder or a name under --root")
    compute.add_argument("--root", default=None, metavar="DIR",
                         help="folder of prepared data sets (default <cache>/prepared)")
    compute.add_argument("--dict", dest="dictionaries", action="append", required=True,
                         metavar="A.npy", help="dictionary (M, N_i); repeat for MCA")
    compute.add_argument("--alpha", dest="alphas", action="append", type=float, required=True,
                         help="l1 penalty; one, or one per --dict")
    add_option_flags(compute, CodesSettings, option_names(CodesSettings))
    add_option_flags(compute, CodeSetSettings, ("splits",), lists="nargs")
    compute.add_argument("--device", default=None, help="paper mode: torch device")
    compute.add_argument("--overwrite", action="store_true",
                         help="replace an existing OUT (only ever a code set)")
    compute.add_argument("--quiet", action="store_true", help="no progress bar")
    compute.add_argument("--out", required=True, metavar="CODES_DIR")
    compute.set_defaults(func=run_compute)

    tune = sub.add_parser(
        "tune-alpha", help="the smallest alpha whose exact codes reach a target sparsity",
        description="Search alpha (bisection in log-alpha, or --grid) so that the exact codes "
                    "of a seeded subsample of the train signals are at least TARGET sparse, "
                    "and print the curve searched.")
    tune.add_argument("--data", required=True, metavar="PREPARED")
    tune.add_argument("--root", default=None, metavar="DIR")
    add_option_flags(tune, TrainingSignalsSettings, ("component",))
    tune.add_argument("--dict", dest="dictionary", required=True, metavar="A.npy")
    add_option_flags(tune, TuneSettings, ("target_sparsity", "n_samples", "seed", "alphas"),
                     flags={"target_sparsity": "--target", "n_samples": "--samples",
                            "alphas": "--grid"}, lists="nargs")
    tune.set_defaults(func=run_tune)


def run_compute(args) -> int:
    import numpy as np

    from ..workflow.code_sets import check_codes_output, compute_split_codes, save_codes
    from ..workflow.data import load_prepared
    from ..workflow.progress import Progress

    data = load_prepared(args.data, root=args.root)
    # Checked before the (long) computation; save_codes checks again before it writes.
    out = check_output_path(args.out, [data.path, *args.dictionaries], folder=True)
    check_codes_output(out, args.overwrite)
    device = None if args.device is None else resolve_device(args.device)
    dictionaries = [as_real(read_array(p, "dictionary"), np.float32, f"dictionary {p}")
                    for p in args.dictionaries]
    codes, stats = compute_split_codes(
        data, args.splits, dictionaries, args.alphas, mode=args.mode, tol=args.tol,
        batch_size=args.batch_size, progress=Progress("lsalsa codes", quiet=args.quiet),
        device=device, mu=args.mu, n_iter=args.n_iter)
    save_codes(out, codes, dictionaries, args.alphas, stats=stats, overwrite=args.overwrite,
               data={"path": str(data.path), "name": data.name, "key": "signals",
                     "seed": data.meta.get("seed"), "stand_in": data.meta.get("stand_in"),
                     "label": data.meta.get("label")},
               seed=data.meta.get("seed"),
               extra={"dictionary_files": [str(Path(p).resolve()) for p in args.dictionaries]})
    for split in codes:
        gap = stats[split]["gap"]
        print(f"{split}: {codes[split].shape[0]} codes, {stats[split]['solver']}, relative "
              f"duality gap median {gap['relative_median']:.3g}, max {gap['relative_max']:.3g}")
    print(f"wrote {out}")
    return 0


def run_tune(args) -> int:
    from ..core.codes import tune_alpha
    from .dictionary import training_signals

    _, key, signals = training_signals(args)
    A = read_array(args.dictionary, "dictionary")
    alpha, curve = tune_alpha(signals, A, args.target_sparsity, args.alphas,
                              n_samples=args.n_samples, seed=args.seed)
    print("alpha        sparsity  rel_error  nonzeros")
    for row in curve:
        print(f"{row['alpha']:<12.6g} {row['sparsity']:<9.4f} {row['relative_error']:<10.4f} "
              f"{row['mean_nonzeros']:.2f}")
    print(f"alpha = {alpha:.6g} (smallest searched with sparsity >= {args.target_sparsity}, "
          f"on {key})")
    return 0
