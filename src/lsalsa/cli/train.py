"""``lsalsa train`` and ``lsalsa search``: train an encoder / grid-search per T into a run dir.

Data come either from a prepared data set plus a codes directory::

    lsalsa train --data fashion-mnist-10 --codes CODES_DIR --model lsalsa --depth 5 ...

(``CODES_DIR`` holds ``codes_train.npy`` (P, N), ``codes.json`` with the alphas and either
``dictionary_{i}.npy`` files beside it or a ``dictionaries`` list of paths), or directly from
arrays::

    lsalsa train --signals Y.npy --targets X.npy --dict A.npy [--dict B.npy] --alpha 0.1 ...

Validation is the last ``--val-fraction`` of the training rows (patches are stored image by
image, so these are whole held-out images), unless ``--val-signals/--val-targets`` are given.
Under ``torchrun`` training runs data-parallel: ``torchrun --nproc_per_node=2
.venv/bin/lsalsa train ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoders import build_encoder
from ..errors import InputError
from .common import read_array

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def register(subparsers) -> None:
    train_parser = subparsers.add_parser(
        "train", help="train a LISTA or LSALSA encoder on optimal codes (writes a run dir)",
        description="Train an encoder to predict optimal codes (Eq. 15) with SGD (or Adam). "
                    "Writes config.json, provenance.json, history.json, an atomic checkpoint "
                    "after every epoch and the final model.safetensors into --run-dir.")
    _data_arguments(train_parser)
    train_parser.add_argument("--model", choices=("lsalsa", "lista"), default="lsalsa")
    train_parser.add_argument("--depth", type=int, required=True, help="layers T")
    train_parser.add_argument("--mu", type=float, default=10.0, help="LSALSA's mu (default 10)")
    train_parser.add_argument("--alpha", dest="alphas", action="append", type=float,
                              help="encoder alpha; one, or one per dictionary (default: the "
                                   "alphas in codes.json)")
    train_parser.add_argument("--untied", action="store_true", help="one S per layer")
    train_parser.add_argument("--thresholds", choices=("learned", "fixed"), default=None,
                              help="default: learned for LISTA, fixed for LSALSA (the paper)")
    train_parser.add_argument("--epochs", type=int, default=100, help="most epochs (100)")
    train_parser.add_argument("--lr", type=float, default=0.01)
    train_parser.add_argument("--lr-decay", type=float, default=0.0,
                              help="epoch e uses lr / (1 + lr_decay * e)")
    train_parser.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    train_parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    train_parser.add_argument("--rel-tol", type=float, default=1e-6,
                              help="stop when the epoch loss changes by less than this")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --run-dir from its last checkpoint")
    train_parser.set_defaults(func=run_train)

    search_parser = subparsers.add_parser(
        "search", help="hyperparameter grid search per depth T (the paper's protocol)",
        description="For each T: FISTA over alpha, SALSA over alpha x mu, LISTA over alpha x "
                    "lr x decay, LSALSA over alpha x mu x lr x decay (learned ones trained for "
                    "--epochs); selects by validation RMSE. Writes results.csv, results.json "
                    "and best.json into --run-dir; rerunning skips finished trials.")
    _data_arguments(search_parser)
    search_parser.add_argument("--methods", nargs="+", default=["fista", "salsa", "lista",
                                                                 "lsalsa"])
    search_parser.add_argument("--depths", nargs="+", type=int, required=True)
    search_parser.add_argument("--alphas", nargs="+", required=True, metavar="ALPHA",
                               help="alpha grid; for several dictionaries write a1:a2")
    search_parser.add_argument("--mus", nargs="+", type=float, default=[10.0])
    search_parser.add_argument("--lrs", nargs="+", type=float, default=[0.01])
    search_parser.add_argument("--lr-decays", nargs="+", type=float, default=[0.0])
    search_parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (10)")
    search_parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    search_parser.set_defaults(func=run_search)


def _data_arguments(parser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", help="prepared data set (name or folder)")
    group.add_argument("--root", help="folder of prepared data sets (with --data)")
    group.add_argument("--codes", help="codes directory (or a codes_train .npy)")
    group.add_argument("--signals", help="training signals .npy (P, M)")
    group.add_argument("--targets", help="their optimal codes .npy (P, N)")
    group.add_argument("--dict", dest="dictionaries", action="append", metavar="A.npy",
                       help="dictionary (M, N_i); repeat for MCA")
    group.add_argument("--val-signals", help="validation signals .npy")
    group.add_argument("--val-targets", help="validation optimal codes .npy")
    group.add_argument("--val-fraction", type=float, default=0.1,
                       help="without --val-*: hold out this last fraction of the rows (0.1)")
    parser.add_argument("--batch-size", type=int, default=64, help="global mini-batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_training_data(args) -> dict:
    """Signals, targets, validation pair, dictionaries, alphas and a description, from args."""
    code_alphas = None
    if args.data or args.codes:
        if not (args.data and args.codes):
            raise InputError("--data and --codes go together")
        if args.signals or args.targets:
            raise InputError("give either --data/--codes or --signals/--targets, not both")
        from ..data import load_prepared

        dataset = load_prepared(args.data, root=args.root)
        signals = dataset.signals("train")
        targets, dictionaries, code_alphas, codes_info = _read_codes(args.codes, "train")
        info = {"dataset": dataset.meta.get("name"), "dataset_path": str(dataset.path),
                "codes": codes_info}
    elif args.signals and args.targets:
        signals = read_array(args.signals, "signals", mmap=True)
        targets = read_array(args.targets, "targets", mmap=True)
        dictionaries = None
        info = {"signals": str(args.signals), "targets": str(args.targets)}
    else:
        raise InputError("give --data and --codes, or --signals, --targets and --dict")
    if args.dictionaries:
        dictionaries = [read_array(p, "dictionary") for p in args.dictionaries]
        info["dictionaries"] = [str(p) for p in args.dictionaries]
    if not dictionaries:
        raise InputError("no dictionary: give --dict A.npy (repeat for MCA)")
    if signals.ndim != 2 or targets.ndim != 2 or signals.shape[0] != targets.shape[0]:
        raise InputError(f"signals {signals.shape} and targets {targets.shape} must be 2-D "
                         "with the same number of rows")
    if args.val_signals or args.val_targets:
        if not (args.val_signals and args.val_targets):
            raise InputError("--val-signals and --val-targets go together")
        val_signals = read_array(args.val_signals, "validation signals", mmap=True)
        val_targets = read_array(args.val_targets, "validation targets", mmap=True)
    else:
        if not 0 < args.val_fraction < 1:
            raise InputError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        P = signals.shape[0]
        n_val = round(P * args.val_fraction)
        if n_val < 1 or n_val >= P:
            raise InputError(f"{P} rows are too few to hold out a fraction "
                             f"{args.val_fraction} for validation")
        # Slices of memory maps stay memory maps: nothing is copied.
        val_signals, val_targets = signals[P - n_val:], targets[P - n_val:]
        signals, targets = signals[:P - n_val], targets[:P - n_val]
        info["validation_split"] = f"last {n_val} of {P} rows"
    return {"signals": signals, "targets": targets, "val_signals": val_signals,
            "val_targets": val_targets, "dictionaries": dictionaries,
            "code_alphas": code_alphas, "info": info}


def _read_codes(path: str, split: str):
    """``(codes, dictionaries or None, alphas or None, description)`` from a code set
    directory written by ``lsalsa codes compute`` (checked by ``load_codes``) or a .npy."""
    from ..codes import load_codes

    where = Path(path)
    if where.is_file():
        return read_array(str(where), "codes", mmap=True), None, None, {"file": str(where)}
    if not where.is_dir():
        raise InputError(f"codes directory not found: {path}")
    code_set = load_codes(where)
    alphas = list(code_set.alphas)
    return code_set.codes(split), code_set.dictionaries, alphas, {
        "dir": str(where), "solver": code_set.meta.get("solver"), "alphas": alphas}


def _device_and_dtype(args):
    from ..training.distributed import local_device

    return local_device(args.device), DTYPES[args.dtype]


def run_train(args) -> int:
    from ..training import train
    from ..training.distributed import Distributed

    data = load_training_data(args)
    device, dtype = _device_and_dtype(args)
    alphas = args.alphas or data["code_alphas"]
    if alphas is None:
        raise InputError("give --alpha (no codes.json alphas to fall back on)")
    dictionaries = [torch.as_tensor(np.asarray(d), dtype=dtype, device=device)
                    for d in data["dictionaries"]]
    options = {"untied": args.untied}
    if args.thresholds is not None:
        options["learn_thresholds"] = args.thresholds == "learned"
    encoder = build_encoder(args.model, dictionaries, alphas, args.depth,
                            args.mu if args.model == "lsalsa" else None, **options)
    result = train(encoder, data["signals"], data["targets"], val_signals=data["val_signals"],
                   val_targets=data["val_targets"], optimizer=args.optimizer, lr=args.lr,
                   lr_decay=args.lr_decay, momentum=args.momentum, batch_size=args.batch_size,
                   max_epochs=args.epochs, rel_tol=args.rel_tol, seed=args.seed,
                   run_dir=args.run_dir, resume=args.resume, progress=not args.quiet,
                   data_info=data["info"])
    if Distributed(rank=_rank()).is_main:
        print(f"trained {args.model} T={args.depth}: {result.epochs} epochs ({result.stopped}), "
              f"loss {result.loss:.6g}, validation RMSE {result.initial_val_rmse:.6g} -> "
              f"{result.val_rmse:.6g}; wrote {Path(args.run_dir) / 'model.safetensors'}")
    return 1 if result.stopped == "diverged" else 0


def run_search(args) -> int:
    from ..training import search

    data = load_training_data(args)
    device, dtype = _device_and_dtype(args)
    dictionaries = [np.asarray(d, dtype=np.float32 if dtype == torch.float32 else np.float64)
                    for d in data["dictionaries"]]
    alphas = [_parse_alpha(a, len(dictionaries)) for a in args.alphas]
    result = search(data["signals"], data["targets"], data["val_signals"], data["val_targets"],
                    dictionaries, depths=args.depths, alphas=alphas, methods=args.methods,
                    mus=args.mus, lrs=args.lrs, lr_decays=args.lr_decays, epochs=args.epochs,
                    optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed,
                    device=device, run_dir=args.run_dir, progress=not args.quiet)
    for (method, T), row in sorted(result.best.items()):
        knobs = ", ".join(f"{k}={row[k]}" for k in ("alpha", "mu", "lr", "lr_decay")
                          if row[k] is not None)
        rmse = "diverged" if row["val_rmse"] is None else f"{row['val_rmse']:.6g}"
        print(f"{method:7s} T={T:<3d} val RMSE {rmse}  ({knobs})")
    print(f"wrote {Path(args.run_dir) / 'results.csv'} ({len(result.rows)} trials)")
    return 0


def _parse_alpha(text: str, n_dicts: int):
    try:
        values = [float(v) for v in text.split(":")]
    except ValueError as exc:
        raise InputError(f"alpha {text!r} is not a number (or a1:a2 for two dictionaries)") \
            from exc
    if len(values) not in (1, n_dicts):
        raise InputError(f"alpha {text!r} has {len(values)} values for {n_dicts} dictionaries")
    return values[0] if len(values) == 1 else values


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0") or 0)
