"""``lsalsa train`` and ``lsalsa search``: train an encoder / grid-search per T into a run dir.

Data come either from a prepared data set plus a codes directory::

    lsalsa train --data fashion-mnist-10 --codes CODES_DIR --model lsalsa --depth 5 ...

(``CODES_DIR`` holds ``codes_train.npy`` (P, N), ``codes.json`` with the alphas and either
``dictionary_{i}.npy`` files beside it or a ``dictionaries`` list of paths), or directly from
arrays::

    lsalsa train --signals Y.npy --targets X.npy --dict A.npy [--dict B.npy] --alpha 0.1 ...

Validation is, in order of preference: ``--val-signals/--val-targets``; the prepared data set's
``val`` split with the code set's ``codes_val.npy`` (whole images or photographs held out);
the last ``--val-fraction`` of the training images (by the data set's image index, so no image
is cut in two); with ``--signals``, the last ``--val-fraction`` of the rows.
Under ``torchrun`` training runs data-parallel: ``torchrun --nproc_per_node=2 --
.venv/bin/lsalsa train ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ..core.encoders import build_encoder
from ..core.training import DEFAULTS as TRAIN_DEFAULTS
from ..core.training.search import CLASSIC_METHODS, LEARNED_METHODS, MUS, SEARCH_METHODS
from ..core.training.trainer import MAX_LR, check_lr
from ..errors import InputError
from .common import read_array, resolve_device

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def register(subparsers) -> None:
    train_parser = subparsers.add_parser(
        "train", help="train a LISTA or LSALSA encoder on optimal codes (writes a run dir)",
        description="Train an encoder to predict optimal codes (Eq. 15; for MCA plus each "
                    "component's reconstruction error). By default it starts "
                    "as its classic algorithm at the best alpha (and mu) for its depth on the "
                    "validation data, learns its thresholds, trains with Adam (per-tensor step "
                    "scaling, cosine decay, clipping) and keeps the best validation epoch. "
                    "Writes config.json, provenance.json, history.json, an atomic checkpoint "
                    "after every epoch and the final model.safetensors into --run-dir.")
    _data_arguments(train_parser)
    train_parser.add_argument("--model", choices=("lsalsa", "lista"), default="lsalsa")
    train_parser.add_argument("--depth", type=int, required=True, help="layers T")
    train_parser.add_argument("--mu", default="auto",
                              help="LSALSA's mu, or 'auto' (default): the best of "
                                   f"{', '.join(f'{m:g}' for m in MUS)} for SALSA at T "
                                   "iterations on the validation data")
    train_parser.add_argument("--alpha", dest="alphas", action="append", type=float,
                              help="encoder alpha; one, or one per dictionary (default: the "
                                   "best multiple of the codes' alphas, like --mu auto)")
    train_parser.add_argument("--untied", action="store_true", help="one S per layer")
    train_parser.add_argument("--thresholds", choices=("learned", "fixed"), default="learned",
                              help="learned per-coordinate thresholds (default) or fixed "
                                   "alpha/mu, alpha/L (the paper's LSALSA)")
    train_parser.add_argument("--epochs", type=int, default=100, help="most epochs (100)")
    train_parser.add_argument("--optimizer", choices=("adam", "sgd"),
                              default=TRAIN_DEFAULTS["optimizer"])
    train_parser.add_argument("--lr", type=float, default=TRAIN_DEFAULTS["lr"],
                              help=f"step size, relative to each tensor's size "
                                   f"(default {TRAIN_DEFAULTS['lr']:g}, at most {MAX_LR:g})")
    train_parser.add_argument("--schedule", choices=("cosine", "constant"),
                              default=TRAIN_DEFAULTS["schedule"])
    train_parser.add_argument("--lr-decay", type=float, default=TRAIN_DEFAULTS["lr_decay"],
                              help="epoch e also divides the step by 1 + lr_decay * e")
    train_parser.add_argument("--momentum", type=float, default=TRAIN_DEFAULTS["momentum"],
                              help="SGD momentum")
    train_parser.add_argument("--no-step-scaling", dest="step_scaling", action="store_false",
                              help="plain steps (not relative to each tensor's size)")
    train_parser.add_argument("--grad-clip", type=_optional_float,
                              default=TRAIN_DEFAULTS["grad_clip"],
                              help=f"clip the scaled gradient's norm (default "
                                   f"{TRAIN_DEFAULTS['grad_clip']:g}; 'none': off)")
    train_parser.add_argument("--anchor-decay", type=float,
                              default=TRAIN_DEFAULTS["anchor_decay"],
                              help="pull the weights towards their start (default 0: off)")
    train_parser.add_argument("--reconstruction-weight", type=_optional_float, default=None,
                              help="weight of each component's reconstruction error in the "
                                   "loss (default: 0 for one dictionary, 1 for MCA)")
    train_parser.add_argument("--patience", type=int, default=TRAIN_DEFAULTS["patience"],
                              help="stop after this many epochs without a better validation "
                                   f"RMSE (default {TRAIN_DEFAULTS['patience']}; 0: never)")
    train_parser.add_argument("--rel-tol", type=float, default=TRAIN_DEFAULTS["rel_tol"],
                              help="stop when the epoch loss changes by less than this")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --run-dir from its last checkpoint")
    train_parser.set_defaults(func=run_train)

    search_parser = subparsers.add_parser(
        "search", help="hyperparameter grid search per depth T (the paper's protocol)",
        description="For each T: ISTA and FISTA over alpha, SALSA over alpha x mu (on the "
                    "validation data); LISTA and LSALSA start from the best ISTA and SALSA "
                    "setting and are trained over lr x decay (--epochs each); selects by "
                    "validation RMSE. Writes results.csv, results.json and best.json into "
                    "--run-dir; rerunning skips finished trials.")
    _data_arguments(search_parser)
    search_parser.add_argument("--methods", nargs="+", default=list(SEARCH_METHODS),
                               choices=(*CLASSIC_METHODS, *LEARNED_METHODS))
    search_parser.add_argument("--depths", nargs="+", type=int, required=True)
    search_parser.add_argument("--alphas", nargs="+", required=True, metavar="ALPHA",
                               help="alpha grid; for several dictionaries write a1:a2")
    search_parser.add_argument("--mus", nargs="+", type=float, default=list(MUS))
    search_parser.add_argument("--lrs", nargs="+", type=float, default=[TRAIN_DEFAULTS["lr"]])
    search_parser.add_argument("--lr-decays", nargs="+", type=float, default=[0.0])
    search_parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (10)")
    search_parser.add_argument("--optimizer", choices=("adam", "sgd"),
                               default=TRAIN_DEFAULTS["optimizer"])
    search_parser.set_defaults(func=run_search)


def _optional_float(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from exc


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
                       help="without --val-* or a val split: hold out this last fraction of "
                            "the training images (0.1)")
    parser.add_argument("--batch-size", type=int, default=TRAIN_DEFAULTS["batch_size"],
                        help="global mini-batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_training_data(args) -> dict:
    """Signals, targets, validation pair, dictionaries, alphas and a description, from args."""
    code_alphas, dataset, code_set = None, None, None
    if args.data or args.codes:
        if not (args.data and args.codes):
            raise InputError("--data and --codes go together")
        if args.signals or args.targets:
            raise InputError("give either --data/--codes or --signals/--targets, not both")
        from ..workflow.data import load_prepared

        dataset = load_prepared(args.data, root=args.root)
        signals = dataset.signals("train")
        targets, dictionaries, code_alphas, codes_info, code_set = _read_codes(args.codes)
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
        info["validation_split"] = "--val-signals / --val-targets"
    elif dataset is not None and code_set is not None and "val" in dataset.splits \
            and "val" in code_set.splits:
        val_signals, val_targets = dataset.signals("val"), code_set.codes("val")
        info["validation_split"] = "the prepared val split (held-out images)"
    else:
        if not 0 < args.val_fraction < 1:
            raise InputError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        P = signals.shape[0]
        if dataset is not None:  # whole images: never cut one image's patches in two
            image = np.asarray(dataset.split("train")["image_index"])
            n_images = int(image.max()) + 1
            first_val = n_images - round(n_images * args.val_fraction)
            if not 0 < first_val < n_images:
                raise InputError(f"{n_images} training images are too few to hold out a "
                                 f"fraction {args.val_fraction} for validation")
            # Patches are stored image by image: the held-out images are the last rows.
            cut = int(np.searchsorted(image, first_val))
            info["validation_split"] = (f"last {n_images - first_val} of {n_images} training "
                                        "images")
        else:
            cut = P - round(P * args.val_fraction)
            if not 0 < cut < P:
                raise InputError(f"{P} rows are too few to hold out a fraction "
                                 f"{args.val_fraction} for validation")
            info["validation_split"] = f"last {P - cut} of {P} rows"
        # Slices of memory maps stay memory maps: nothing is copied.
        val_signals, val_targets = signals[cut:], targets[cut:]
        signals, targets = signals[:cut], targets[:cut]
    return {"signals": signals, "targets": targets, "val_signals": val_signals,
            "val_targets": val_targets, "dictionaries": dictionaries,
            "code_alphas": code_alphas, "info": info}


def _read_codes(path: str):
    """``(train codes, dictionaries or None, alphas or None, description, code set or None)``
    from a code set directory written by ``lsalsa codes compute`` (checked by ``load_codes``)
    or a .npy of training codes."""
    from ..workflow.code_sets import load_codes

    where = Path(path)
    if where.is_file():
        return (read_array(str(where), "codes", mmap=True), None, None, {"file": str(where)},
                None)
    if not where.is_dir():
        raise InputError(f"codes directory not found: {path}")
    code_set = load_codes(where)
    alphas = list(code_set.alphas)
    return code_set.codes("train"), code_set.dictionaries, alphas, {
        "dir": str(where), "solver": code_set.meta.get("solver"), "alphas": alphas}, code_set


def _device_and_dtype(args):
    from ..core.training.distributed import local_device

    resolve_device(args.device)  # the checks; local_device picks cuda:LOCAL_RANK for "cuda"
    return local_device(args.device), DTYPES[args.dtype]


def run_train(args) -> int:
    from ..core.training import best_classic
    from ..core.training.distributed import Distributed
    from ..core.training.search import alpha_candidates
    from ..workflow.training import train_in_dir

    check_lr(args.lr, "--lr")  # before the data are read and the start is searched
    data = load_training_data(args)
    device, dtype = _device_and_dtype(args)
    dictionaries = [torch.as_tensor(np.asarray(d), dtype=dtype, device=device)
                    for d in data["dictionaries"]]
    if args.model == "lista" and args.mu != "auto":
        raise InputError("--mu is LSALSA's; LISTA has none")
    mu = None if args.mu == "auto" else _positive_float(args.mu, "--mu")
    if args.alphas is None and data["code_alphas"] is None:
        raise InputError("give --alpha (no codes.json alphas to fall back on)")
    start = {"alpha": args.alphas, "mu": mu}
    classic = "salsa" if args.model == "lsalsa" else "ista"
    if args.alphas is None or (args.model == "lsalsa" and mu is None):
        # Start as the classic algorithm at its best setting for this depth (validation).
        alphas = [args.alphas] if args.alphas else alpha_candidates(data["code_alphas"])
        mus = [mu] if mu is not None else MUS
        best = best_classic(data["val_signals"], data["val_targets"], dictionaries, classic,
                            [args.depth], alphas, mus)[args.depth]
        start = {"alpha": best["alpha"], "mu": best["mu"], "chosen_by": f"{classic.upper()} "
                 f"at T = {args.depth} on the validation data", "val_rmse": best["val_rmse"]}
    encoder = build_encoder(args.model, dictionaries, start["alpha"], args.depth, start["mu"],
                            untied=args.untied,
                            learn_thresholds=args.thresholds == "learned")
    result = train_in_dir(args.run_dir, encoder, data["signals"], data["targets"],
                          val_signals=data["val_signals"], val_targets=data["val_targets"],
                          optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
                          lr_decay=args.lr_decay, momentum=args.momentum,
                          step_scaling=args.step_scaling, grad_clip=args.grad_clip,
                          anchor_decay=args.anchor_decay,
                          reconstruction_weight=args.reconstruction_weight,
                          batch_size=args.batch_size, max_epochs=args.epochs,
                          patience=args.patience or None, rel_tol=args.rel_tol,
                          seed=args.seed, resume=args.resume, progress=not args.quiet,
                          data_info={**data["info"], "start": start})
    if Distributed(rank=_rank()).is_main:
        knobs = ", ".join(f"{k} {v}" for k, v in (("alpha", start["alpha"]),
                                                  ("mu", start["mu"])) if v is not None)
        print(f"trained {args.model} T={args.depth} (start: {classic.upper()}, {knobs}): "
              f"{result.epochs} epochs ({result.stopped}), best epoch {result.best_epoch}, "
              f"validation RMSE {result.initial_val_rmse:.6g} -> {result.val_rmse:.6g}; "
              f"wrote {Path(args.run_dir) / 'model.safetensors'}")
    if result.stopped == "diverged":
        print(f"lsalsa: warning: the loss diverged at epoch {result.epochs}; the model holds "
              f"epoch {result.best_epoch}, the best on validation", file=sys.stderr)
        return 1
    return 0


def _positive_float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(f"{name} must be a positive number or 'auto', got {text!r}") from exc
    if not value > 0 or not np.isfinite(value):
        raise InputError(f"{name} must be a positive number or 'auto', got {text!r}")
    return value


def run_search(args) -> int:
    from ..workflow.search import search

    for lr in args.lrs:
        check_lr(lr, "every --lrs value")
    data = load_training_data(args)
    device, dtype = _device_and_dtype(args)
    dictionaries = [np.asarray(d, dtype=np.float32 if dtype == torch.float32 else np.float64)
                    for d in data["dictionaries"]]
    alphas = [_parse_alpha(a, len(dictionaries)) for a in args.alphas]
    result = search(data["signals"], data["targets"], data["val_signals"], data["val_targets"],
                    dictionaries, depths=args.depths, alphas=alphas, methods=args.methods,
                    mus=args.mus, lrs=args.lrs, lr_decays=args.lr_decays, epochs=args.epochs,
                    train_options={"optimizer": args.optimizer, "batch_size": args.batch_size},
                    seed=args.seed, device=device, run_dir=args.run_dir,
                    progress=not args.quiet)
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
