"""Capacity of LSALSA at T = 5, chosen on held-out-source validation (issue 19, item 4).

Trains variants of the demo's LSALSA (T = 5, trained on the exact codes: ``objective="codes"``,
the paper's) on the SAME split of a finished demo run: the same training rows, the prepared
``val`` split (photographs from other sources than training and test) for selection, and the
``test`` split (photographs from yet other sources) to report. Every variant starts from SALSA
at T = 5 at the (alpha, mu) of best validation code RMSE (``classic.json``'s ``starts``, as
``lsalsa.workflow.steps.train.start_of`` does), with the same epochs, seed and training options
(the run's ``search`` section; patience off unless the variant sets it). Nothing is tuned on
the test split: the variant of lowest validation RMSE is marked "chosen on validation".

Variants: the library default (tied S, learned thresholds); untied layers (one S per layer);
fixed thresholds (the paper's LSALSA); anchor decay 1.0 (pull towards the start); early
stopping with patience 2. Low-rank updates of S are not in the library and are not tried here.

Example (about 3 minutes per variant on one thread)::

    OMP_NUM_THREADS=1 python benchmarks/capacity.py --run-dir runs/demo --epochs 8 \\
        --max-train 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lsalsa.core.encoders import build_encoder
from lsalsa.core.metrics import rmse_per_sample
from lsalsa.core.training import train
from lsalsa.workflow.code_sets import load_codes
from lsalsa.workflow.config import ExperimentConfig
from lsalsa.workflow.data import load_prepared
from lsalsa.workflow.steps.train import lr_grid, train_options
from lsalsa.workflow.training_data import split_prepared

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, print_header, set_threads

DEPTH = 5
DATASET = Path("data") / "mca-mnist-natural"
# key: (label, build_encoder options, train options on top of the common ones).
VARIANTS = {
    "default": ("default (tied S, learned thresholds)", {}, {}),
    "untied": ("untied layers", {"untied": True}, {}),
    "fixed": ("fixed thresholds (paper)", {"learn_thresholds": False}, {}),
    "anchor": ("anchor decay 1.0", {}, {"anchor_decay": 1.0}),
    "patience": ("early stopping, patience 2", {}, {"patience": 2}),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"),
                        help="a finished demo run (its data set, codes and classic.json)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-train", type=int, default=20000,
                        help="training rows (a seeded subset, as the workflow draws it; 0: all)")
    parser.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="which variants to train (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


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


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("capacity.py", threads, argv)
    run_dir = args.run_dir
    config = ExperimentConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    seed = config.seed if args.seed is None else args.seed
    dataset, codeset = load_prepared(run_dir / DATASET), load_codes(run_dir / "codes")
    start = json.loads((run_dir / "classic.json").read_text())["starts"]["salsa"][str(DEPTH)]
    # The demo's training options, lr and decay; patience off (early stopping is a variant).
    options = {**train_options(config), "patience": None}
    lr, lr_decay = lr_grid(config, "lsalsa")[0], config.search.lr_decays[0]
    fit = split_prepared(dataset, codeset, val_fraction=config.search.val_fraction,
                         max_train=args.max_train or None, seed=seed, dtype=np.float32)
    test_signals = np.asarray(dataset.split("test")["signals"], dtype=np.float32)
    test_codes = np.array(codeset.codes("test"), dtype=np.float32)
    names, index = dataset.row_sources("test")
    blocks = [np.asarray(d, dtype=np.float32) for d in codeset.dictionaries]
    total = dataset.split("train")["signals"].shape[0]
    print(f"split: {fit.signals.shape[0]} training rows of {total} (sources "
          f"{source_list(dataset, 'train')}); validation {fit.val_signals.shape[0]} rows "
          f"({fit.validation}; sources {source_list(dataset, 'val')}); test "
          f"{len(test_signals)} rows (sources {source_list(dataset, 'test')})")
    print(f"start: SALSA T = {DEPTH}, alpha {start['alpha']}, mu {start['mu']} (best validation "
          f"code RMSE, classic.json); lr {lr}, lr_decay {lr_decay}, {args.epochs} epochs, seed "
          f"{seed}, options {options}", flush=True)

    def encoder(**build):
        return build_encoder("lsalsa", blocks, start["alpha"], DEPTH, start["mu"], **build)

    # An LSALSA encoder at its initialisation is SALSA with T iterations exactly.
    salsa = encoder()
    salsa_test = per_sample_rmse(salsa, test_signals, test_codes)
    salsa_val = float(per_sample_rmse(salsa, fit.val_signals, fit.val_targets).mean())
    salsa_src = by_source(salsa_test, names, index)
    results = [{"variant": f"SALSA T = {DEPTH} (the start)", "weights": 0, "seconds": 0.0,
                "epochs": 0, "best_epoch": 0, "stopped": "-", "val_rmse": salsa_val,
                "test_rmse": float(salsa_test.mean()), "test_by_source": salsa_src}]
    for key in args.variants:
        name, build, extra = VARIANTS[key]
        model = encoder(**build)
        began = time.perf_counter()
        result = train(model, fit.signals, fit.targets, val_signals=fit.val_signals,
                       val_targets=fit.val_targets, max_epochs=args.epochs, seed=seed, lr=lr,
                       lr_decay=lr_decay, objective="codes", **{**options, **extra})
        seconds = time.perf_counter() - began
        test = per_sample_rmse(model, test_signals, test_codes)
        row = {"variant": name, "weights": sum(p.numel() for p in model.parameters()),
               "seconds": seconds, "epochs": result.epochs, "best_epoch": result.best_epoch,
               "stopped": result.stopped, "val_rmse": float(result.val_rmse),
               "test_rmse": float(test.mean()), "test_by_source": by_source(test, names, index)}
        results.append(row)
        print(f"{name}: val {result.initial_val_rmse:.4f} -> {result.val_rmse:.4f} "
              f"(best epoch {result.best_epoch} of {result.epochs}, {result.stopped}), test "
              f"{row['test_rmse']:.4f}, {seconds:.0f} s", flush=True)

    best = min(results[1:], key=lambda r: r["val_rmse"])
    sources = list(salsa_src)
    header = ["variant", "weights", "train s", "epochs (best)", "val RMSE", "test RMSE",
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
