"""``lsalsa train`` and ``lsalsa search``: train an encoder / grid-search per T into a run dir.

Data come either from a prepared data set plus a codes directory::

    lsalsa train --data fashion-mnist-10 --codes CODES_DIR --model lsalsa --depth 5 ...

(``CODES_DIR`` holds ``codes_train.npy`` (P, N), ``codes.json`` with the alphas and either
``dictionary_{i}.npy`` files beside it or a ``dictionaries`` list of paths), or directly from
arrays::

    lsalsa train --signals Y.npy --references X.npy --dict A.npy [--dict B.npy] --alpha 0.1 ...

Validation is, in order of preference: ``--val-signals/--val-references``; the prepared data set's
``val`` split with the code set's ``codes_val.npy`` (whole images or photographs held out);
the last ``--val-fraction`` of the training images (by the data set's image index, so no image
is cut in two); with ``--signals``, the last ``--val-fraction`` of the rows. The data and this
split are :mod:`lsalsa.workflow.training_data`'s (the experiment pipeline's split too), the
start's choice :func:`lsalsa.workflow.search.encoder_start`.
Under ``torchrun`` training runs data-parallel: ``torchrun --nproc_per_node=2 --
.venv/bin/lsalsa train ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.encoders import build_encoder
from ..core.encoders.settings import EncoderSettings
from ..core.training import DEFAULTS as TRAIN_DEFAULTS
from ..core.training.search import LEARNED_METHODS, SearchGrid, StartSettings
from ..core.training.settings import SplitSettings, TrainSettings
from ..errors import InputError, TrainingDiverged
from .options import add_option_flags, option_names

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# The options of lsalsa.core.training.train that lsalsa train takes as flags: every one
# TrainSettings declares (type, default and help) but the two the data arguments share with
# lsalsa search; and the flags not named after their options.
SHARED_OPTIONS = ("batch_size", "seed")
TRAIN_OPTIONS = option_names(TrainSettings, but=SHARED_OPTIONS)
TRAIN_FLAGS = {"max_epochs": "--epochs", "step_scaling": "--no-step-scaling",
               "component_weights": "--component-weight"}


def register(subparsers) -> None:
    _register_train(subparsers)
    _register_search(subparsers)


def _register_train(subparsers) -> None:
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
    add_option_flags(train_parser, EncoderSettings, ("kind", "depth"), flags={"kind": "--model"},
                     required=("depth",))
    add_option_flags(train_parser, StartSettings, ("mu",))
    train_parser.add_argument("--alpha", dest="alphas", action="append", type=float,
                              help="encoder alpha; one, or one per dictionary (default: the "
                                   "best multiple of the codes' alphas, like --mu none)")
    add_option_flags(train_parser, EncoderSettings, ("untied", "learn_thresholds"),
                     flags={"learn_thresholds": "--fixed-thresholds"})
    add_option_flags(train_parser, TrainSettings, TRAIN_OPTIONS, flags=TRAIN_FLAGS)
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --run-dir from its last checkpoint")
    train_parser.set_defaults(func=run_train)


def _register_search(subparsers) -> None:
    search_parser = subparsers.add_parser(
        "search", help="hyperparameter grid search per depth T (the paper's protocol)",
        description="For each T: ISTA and FISTA over alpha, SALSA over alpha x mu (on the "
                    "validation data); LISTA and LSALSA start from the best ISTA and SALSA "
                    "setting and are trained over lr x decay x the thresholds' step (--epochs "
                    "each); selects by validation RMSE. Writes results.csv, results.json and "
                    "best.json into --run-dir; rerunning skips finished trials.")
    _data_arguments(search_parser)
    add_option_flags(search_parser, SearchGrid, ("methods", "depths"), required=("depths",),
                     lists="nargs")
    add_option_flags(search_parser, SearchGrid, option_names(SearchGrid,
                                                             but=("methods", "depths")),
                     required=("alphas",), lists="nargs")
    add_option_flags(search_parser, TrainSettings, ["optimizer"])
    search_parser.set_defaults(func=run_search)


def _data_arguments(parser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", help="prepared data set (name or folder)")
    group.add_argument("--root", help="folder of prepared data sets (with --data)")
    group.add_argument("--codes", help="codes directory (or a codes_train .npy)")
    group.add_argument("--signals", help="training signals .npy (P, M)")
    group.add_argument("--references", help="their optimal codes .npy (P, N); with "
                       "--objective separation the true components (P, D*M)")
    group.add_argument("--dict", dest="dictionaries", action="append", metavar="A.npy",
                       help="dictionary (M, N_i); repeat for MCA")
    group.add_argument("--val-signals", help="validation signals .npy")
    group.add_argument("--val-references", help="validation optimal codes .npy")
    add_option_flags(group, SplitSettings, ("val_fraction",))
    add_option_flags(parser, TrainSettings, SHARED_OPTIONS)
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # load_training_set's one parameter not named as its flag (the others are: lsalsa.cli)
    parser.set_defaults(flag_names={"dataset": "--data"})


def _training_set(args, objective: str = "codes"):
    """The data of ``lsalsa train`` / ``lsalsa search``
    (:func:`lsalsa.workflow.training_data.load_training_set`)."""
    from ..workflow.training_data import load_training_set

    return load_training_set(dataset=args.data, root=args.root, codes=args.codes,
                             signals=args.signals, references=args.references,
                             dictionaries=args.dictionaries, val_signals=args.val_signals,
                             val_references=args.val_references, val_fraction=args.val_fraction,
                             objective=objective)


def _device_and_dtype(args):
    from ..core.training.distributed import local_device

    # local_device checks the name and picks cuda:LOCAL_RANK for "cuda" under torchrun.
    return local_device(args.device), DTYPES[args.dtype]


def run_train(args) -> int:
    from ..core.training.distributed import Distributed
    from ..workflow.search import encoder_start
    from ..workflow.training_run import train_in_dir

    if not args.learn_thresholds and args.threshold_lr != TRAIN_DEFAULTS["threshold_lr"]:
        raise InputError("--threshold-lr is the step of learned thresholds; "
                         "--fixed-thresholds has none")
    if args.objective == "separation" and args.kind != "lsalsa":
        raise InputError("--objective separation trains --model lsalsa")
    data = _training_set(args, args.objective)
    device, dtype = _device_and_dtype(args)
    dictionaries = data.dictionary_tensors(dtype, device)
    if args.kind == "lista" and args.mu is not None:
        raise InputError("--mu is LSALSA's; LISTA has none")
    if args.alphas is None and data.code_alphas is None:
        raise InputError("give --alpha (no codes.json alphas to fall back on)")
    split = data.split
    start = encoder_start(args.kind, args.depth, split.val_signals, split.val_references,
                          dictionaries, alpha=args.alphas, mu=args.mu,
                          code_alphas=data.code_alphas,
                          objective=args.objective)
    encoder = build_encoder(args.kind, dictionaries, start["alpha"], args.depth, start["mu"],
                            untied=args.untied,
                            learn_thresholds=args.learn_thresholds)
    result = train_in_dir(args.run_dir, encoder, split.signals, split.references,
                          val_signals=split.val_signals, val_references=split.val_references,
                          **{name: getattr(args, name) for name in TRAIN_OPTIONS},
                          seed=args.seed, batch_size=args.batch_size, resume=args.resume,
                          progress=not args.quiet,
                          data_info={**data.info, "start": start})
    if Distributed(rank=_rank()).is_main:
        classic = LEARNED_METHODS[args.kind].start
        knobs = ", ".join(f"{k} {v}" for k, v in (("alpha", start["alpha"]),
                                                  ("mu", start["mu"])) if v is not None)
        print(f"trained {args.kind} T={args.depth} (start: {classic.upper()}, {knobs}): "
              f"{result.epochs} epochs ({result.stopped}), best epoch {result.best_epoch}, "
              f"validation {_error_name(args.objective)} {result.initial_val_rmse:.6g} -> "
              f"{result.val_rmse:.6g}; "
              f"wrote {Path(args.run_dir) / 'model.safetensors'}")
    if result.stopped == "diverged":  # the CLI's one rule: a warning line, exit 1
        raise TrainingDiverged(f"the loss diverged at epoch {result.epochs}; the model holds "
                               f"epoch {result.best_epoch}, the best on validation")
    return 0


def _error_name(objective: str) -> str:
    return "RMSE" if objective == "codes" else "component RMSE"


def run_search(args) -> int:
    from ..workflow.search import search

    data = _training_set(args)
    device, _ = _device_and_dtype(args)
    dictionaries = data.dictionary_arrays(np.dtype(args.dtype))
    split = data.split
    result = search(split.signals, split.references, split.val_signals, split.val_references,
                    dictionaries, depths=args.depths, alphas=args.alphas,
                    methods=args.methods, mus=args.mus, lrs=args.lrs,
                    lr_decays=args.lr_decays, threshold_lrs=args.threshold_lrs,
                    epochs=args.epochs, untied=args.untied,
                    train_options={"optimizer": args.optimizer,
                                   "batch_size": args.batch_size},
                    seed=args.seed, device=device, run_dir=args.run_dir,
                    progress=not args.quiet)
    for (method, T), row in sorted(result.best.items()):
        knobs = ", ".join(f"{k}={row[k]}" for k in ("alpha", "mu", "lr", "lr_decay",
                                                     "threshold_lr") if row.get(k) is not None)
        rmse = "diverged" if row["val_rmse"] is None else f"{row['val_rmse']:.6g}"
        print(f"{method:7s} T={T:<3d} val RMSE {rmse}  ({knobs})")
    print(f"wrote {Path(args.run_dir) / 'results.csv'} ({len(result.rows)} trials)")
    return 0


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0") or 0)
