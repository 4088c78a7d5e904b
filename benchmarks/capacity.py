"""Capacity and training length of LSALSA, chosen on held-out-source validation (issue 19,
items 4 and 5).

Trains variants of a finished experiment's LSALSA at depth T (trained on the exact codes,
``objective="codes"``, the paper's) on the SAME split as the run: its training rows (the same
seeded subset), its validation split (photographs from other sources than training and test)
for selection, and its test split (photographs from yet other sources) to report, per source.
Every variant starts where the run's own ``lsalsa_T<T>`` started and trains as it did (its
``done.json``: SALSA's (alpha, mu) of best validation code RMSE, the learning rate and the
thresholds' step the search chose; the run's other training options), for the run's epochs
and seed, so the "run's setting" row is the run's model again. Nothing is tuned on the test
split: the variant of lowest validation RMSE is marked "chosen on validation".

Variants (each changes one thing from the run's setting):

- the thresholds' step: 1 (the library default), 0.1, 0.01 (``threshold_lr``);
- fixed thresholds (the paper's LSALSA, tied);
- untied layers (one S per layer), or tied ones (the paper's) where the run was untied;
- a low-rank update of S: ``S = S_0 + c U V^T`` with ``S_0`` the start, frozen, and ``U``
  (zero at the start, so the variant starts at SALSA too) and ``V`` of ``--rank`` columns
  learned; ``c`` gives ``U V^T`` the relative step a full S takes (built here only: the library
  has no low-rank S);
- anchor decay 1.0 (a decoupled weight decay towards the start);
- the plateau schedule: the step held until validation stalls for 2 epochs, then halved, and
  training stopped 5 epochs after the best (``patience``), at most ``--plateau-epochs``.

Examples (one thread; natural-16's whole training set is about 20 s an epoch per variant)::

    OMP_NUM_THREADS=1 python benchmarks/capacity.py --run-dir runs/natural-16-thr
    OMP_NUM_THREADS=1 python benchmarks/capacity.py --run-dir runs/demo --variants run fixed
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

from lsalsa.core.encoders import build_encoder
from lsalsa.core.metrics import rmse_per_sample
from lsalsa.core.training import DEFAULTS as TRAIN_DEFAULTS
from lsalsa.core.training import train
from lsalsa.core.training.schedule import step_scales
from lsalsa.core.training.search import untied_layers
from lsalsa.workflow.code_sets import load_codes
from lsalsa.workflow.config import ExperimentConfig
from lsalsa.workflow.data import load_prepared
from lsalsa.workflow.steps.train import train_options, training_record
from lsalsa.workflow.training_data import split_prepared

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, print_header, set_threads

# key: (label, build_encoder options, train options replacing the run's); the encoder is
# tied or untied as the run's lsalsa was, unless its options say.
VARIANTS = {
    "run": ("the run's setting", {}, {}),
    "step1": ("thresholds' step 1 (the library default)", {}, {"threshold_lr": 1.0}),
    "step0.1": ("thresholds' step 0.1", {}, {"threshold_lr": 0.1}),
    "step0.01": ("thresholds' step 0.01", {}, {"threshold_lr": 0.01}),
    "fixed": ("fixed thresholds (the paper)", {"learn_thresholds": False, "untied": False}, {}),
    "untied": ("untied layers", {"untied": True}, {}),
    "tied": ("tied layers (the paper)", {"untied": False}, {}),
    "lowrank": ("S = S_0 + low-rank update", {"untied": False}, {}),
    "anchor": ("anchor decay 1.0", {}, {"anchor_decay": 1.0}),
    "plateau": ("plateau schedule (until validation stops improving)", {},
                {"schedule": "plateau", "patience": 5}),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="a finished experiment or demo run (data, codes, models)")
    parser.add_argument("--depth", type=int, default=5, help="T (default 5)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of every variant but plateau (default: the run's)")
    parser.add_argument("--plateau-epochs", type=int, default=None,
                        help="most epochs of the plateau variant (default: 4 x --epochs)")
    parser.add_argument("--rank", type=int, default=32, help="the low-rank update's rank")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="which variants to train (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


class LowRankUpdate(torch.nn.Module):
    """``S_0 + c U V^T``: ``U`` starts at zero, ``V`` at a seeded Gaussian."""

    def __init__(self, N: int, rank: int, dtype: torch.dtype, seed: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.U = torch.nn.Parameter(torch.zeros(N, rank, dtype=dtype))
        self.V = torch.nn.Parameter(torch.randn(N, rank, generator=generator, dtype=dtype))
        self.c = 1.0

    def forward(self, S0: torch.Tensor) -> torch.Tensor:
        return S0 + self.c * (self.U @ self.V.T)


def low_rank(encoder, rank: int, seed: int):
    """``encoder`` with its (tied) S replaced by a frozen start plus a low-rank update whose
    entries take the step a full S's would: with step scaling, Adam moves each entry of ``U``
    by about ``lr s_U`` (``s_U``, zero at the start, borrows a code's scale), so one step moves
    ``c U V^T`` by about ``c lr s_U sqrt(rank)`` (``V``'s entries are about 1), which is
    ``lr s_S`` when ``c = s_S / (s_U sqrt(rank))``."""
    s_S = step_scales(encoder)["S"]
    update = LowRankUpdate(encoder.S.shape[-1], rank, encoder.S.dtype, seed)
    parametrize.register_parametrization(encoder, "S", update)
    encoder.parametrizations.S.original.requires_grad_(False)
    s_U = step_scales(encoder)["parametrizations.S.0.U"]
    update.c = s_S / (s_U * math.sqrt(rank))
    return encoder


def learned_weights(encoder) -> int:
    """The weights training moves: those with gradients, less an untied model's first S,
    which multiplies the zero start and never gets a gradient."""
    count = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    if getattr(encoder, "untied", False) and encoder.depth > 1:
        count -= encoder.S[0].numel()
    return count


@torch.no_grad()
def per_sample_rmse(encoder, signals, codes, batch: int = 2048) -> np.ndarray:
    """Code RMSE per row of ``encoder(signals)`` against the exact ``codes``."""
    out = []
    for start in range(0, len(signals), batch):
        Y = torch.from_numpy(np.array(signals[start:start + batch], dtype=np.float32))
        out.append(rmse_per_sample(encoder(Y).numpy(), np.array(codes[start:start + batch])))
    return np.concatenate(out)


def by_source(values: np.ndarray, names, index: np.ndarray) -> dict[str, float]:
    return {names[k]: float(values[index == k].mean()) for k in np.unique(index)}


def source_list(dataset, split: str) -> str:
    names, index = dataset.row_sources(split)
    return ", ".join(names[k] for k in np.unique(index))


def run_setting(run_dir: Path, T: int, epochs: int | None = None):
    """A finished run's config, code set and data set, and how it trained ``lsalsa_T<T>``: its
    start and knobs (``done.json``'s hyper) and the training options, for ``epochs`` (default:
    the run's final epochs)."""
    config = ExperimentConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    codeset = load_codes(run_dir / "codes")
    dataset = load_prepared(run_dir / "data" / codeset.meta["data"]["name"])
    hyper = training_record(run_dir, "lsalsa", T)["hyper"]
    options = {**train_options(config), "lr": hyper["lr"], "lr_decay": hyper["lr_decay"],
               "threshold_lr": hyper.get("threshold_lr", TRAIN_DEFAULTS["threshold_lr"]),
               "max_epochs": epochs or config.search.final_epochs, "seed": config.seed,
               "objective": "codes"}
    return config, codeset, dataset, hyper, options


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("capacity.py", threads, argv)
    run_dir, T = args.run_dir, args.depth
    config, codeset, dataset, hyper, options = run_setting(run_dir, T, args.epochs)
    seed, epochs = config.seed, options["max_epochs"]
    fit = split_prepared(dataset, codeset, val_fraction=config.search.val_fraction,
                         max_train=config.search.max_train, seed=seed, dtype=np.float32)
    test_signals = np.asarray(dataset.split("test")["signals"], dtype=np.float32)
    test_codes = np.array(codeset.codes("test"), dtype=np.float32)
    names, index = dataset.row_sources("test")
    blocks = [np.asarray(d, dtype=np.float32) for d in codeset.dictionaries]
    print(f"split: {fit.signals.shape[0]} training rows (sources "
          f"{source_list(dataset, 'train')}); validation {fit.val_signals.shape[0]} rows "
          f"({fit.validation}; sources {source_list(dataset, 'val')}); test "
          f"{len(test_signals)} rows (sources {source_list(dataset, 'test')})")
    print(f"start: SALSA T = {T}, alpha {hyper['alpha']}, mu {hyper['mu']} (the run's "
          f"lsalsa_T{T}); options {options}", flush=True)

    def encoder(**build):  # tied or untied as the run's lsalsa was, unless build says
        build = {"untied": untied_layers("lsalsa", config.search.untied), **build}
        return build_encoder("lsalsa", blocks, hyper["alpha"], T, hyper["mu"], **build)

    # An LSALSA encoder at its initialisation is SALSA with T iterations exactly.
    salsa = encoder()
    salsa_test = per_sample_rmse(salsa, test_signals, test_codes)
    salsa_val = float(per_sample_rmse(salsa, fit.val_signals, fit.val_references).mean())
    salsa_src = by_source(salsa_test, names, index)
    results = [{"variant": f"SALSA T = {T} (the start)", "weights": 0, "seconds": 0.0,
                "epochs": 0, "best_epoch": 0, "stopped": "-", "val_rmse": salsa_val,
                "test_rmse": float(salsa_test.mean()), "test_by_source": salsa_src}]
    for key in args.variants:
        name, build, extra = VARIANTS[key]
        model = encoder(**build)
        settings = {**options, **extra}
        if key == "lowrank":
            model = low_rank(model, args.rank, seed)
            name = f"{name}, rank {args.rank}"
        if key == "plateau":
            settings["max_epochs"] = args.plateau_epochs or 4 * epochs
        if not model.learn_thresholds:
            settings.pop("threshold_lr")
        began = time.perf_counter()
        result = train(model, fit.signals, fit.references, val_signals=fit.val_signals,
                       val_references=fit.val_references, **settings)
        seconds = time.perf_counter() - began
        test = per_sample_rmse(model, test_signals, test_codes)
        row = {"variant": name, "key": key,
               "weights": learned_weights(model),
               "seconds": seconds, "epochs": result.epochs, "best_epoch": result.best_epoch,
               "stopped": result.stopped, "val_rmse": float(result.val_rmse),
               "test_rmse": float(test.mean()), "test_by_source": by_source(test, names, index)}
        results.append(row)
        print(f"{name}: val {result.initial_val_rmse:.4f} -> {result.val_rmse:.4f} "
              f"(best epoch {result.best_epoch} of {result.epochs}, {result.stopped}), test "
              f"{row['test_rmse']:.4f}, {seconds:.0f} s", flush=True)

    best = min(results[1:], key=lambda r: r["val_rmse"])
    sources = list(salsa_src)
    header = ["variant", "learned weights", "train s", "epochs (best)", "val RMSE", "test RMSE",
              "test / SALSA"] + [f"{s}: RMSE (/ SALSA)" for s in sources]
    rows = []
    for r in results:
        label = r["variant"] + (" **chosen on validation**" if r is best else "")
        learned = r is not results[0]
        rows.append([label, f"{r['weights']:,}" if learned else "-",
                     f"{r['seconds']:.0f}" if learned else "-",
                     f"{r['epochs']} ({r['best_epoch']})", f"{r['val_rmse']:.4f}",
                     f"{r['test_rmse']:.4f}", f"{r['test_rmse'] / results[0]['test_rmse']:.3f}"]
                    + [f"{r['test_by_source'][s]:.4f} ({r['test_by_source'][s] / salsa_src[s]:.3f})"
                       for s in sources])
    print()
    print(markdown_table(header, rows))
    if args.json:
        args.json.write_text(json.dumps({"command": sys.argv, "results": results,
                                         "chosen": best["variant"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
