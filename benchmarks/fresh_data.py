"""Fresh training patches every epoch, with their exact codes, for SC on photographs (issue 19,
item 3): which reaches the better held-out-source validation RMSE per CPU second?

Reads a finished natural-16 run (`lsalsa experiment run natural-16 ...`) and trains its
``lsalsa_T<T>`` again from the same start with the same knobs (its ``done.json``; the run's
other training options, schedule and seed, for ``--epochs`` epochs, no early stop), three
ways:

- **stored**: the run's training patches (a stride-8 grid of each photograph) every epoch, as
  the experiment trains;
- **fresh**: every epoch (the first too), each training patch replaced by one cut from the
  same photograph at a uniformly random offset (any pixel, not the grid) and turned by a
  random symmetry of the square, with its exact codes computed anew (the run's code
  settings);
- **pool**: ``--pool`` such draws made once, their codes computed once (that time counted),
  and each epoch trained on the next draw in turn.

The photographs are rebuilt exactly from their stored patches (stride 8, 16 x 16: the grid
covers each 224 x 224 photograph). The same Adam run carries on across epochs in every arm
(the data are swapped between epochs). The table gives, after every epoch, the validation RMSE
and the wall seconds spent so far (training, validation, cutting and codes); the last lines
give each arm's test RMSE per held-out source. Nothing is chosen on the test split.

Example (2 threads; about 20 minutes for 10 epochs)::

    python benchmarks/fresh_data.py --run-dir runs/natural-16-thr --epochs 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lsalsa.core.codes import compute_codes
from lsalsa.core.encoders import build_encoder
from lsalsa.core.mixtures import augment_draws, augment_patches
from lsalsa.core.patches import assemble_patches, extract_patches
from lsalsa.core.training.batches import Batches
from lsalsa.core.training.search import untied_layers
from lsalsa.core.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, print_header, set_threads
from capacity import by_source, per_sample_rmse, run_setting

ARMS = ("stored", "fresh", "pool")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="a finished natural-16 run")
    parser.add_argument("--depth", type=int, default=5, help="T (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the run's")
    parser.add_argument("--pool", type=int, default=4, help="draws made once (pool arm)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def photographs(signals: np.ndarray, image_index: np.ndarray, side: int = 16,
                stride: int = 8) -> torch.Tensor:
    """The photographs (n, H, W) whose patches are ``signals``, each photograph's rows a
    row-major grid at ``stride`` (:func:`~lsalsa.core.patches.extract_patches`'s order);
    checked: extracting them again gives every stored patch exactly."""
    per = np.bincount(image_index)
    grid = round(float(np.sqrt(per[0])))
    if not (per == grid * grid).all():
        raise SystemExit("every photograph must have the same square grid of patches")
    H = (grid - 1) * stride + side
    signals = np.asarray(signals)
    # Overlapping copies of one pixel agree, and 1, 2 or 4 of them average exactly.
    images = assemble_patches(signals, (H, H), side, stride).astype(signals.dtype)
    if not np.array_equal(extract_patches(images, side, stride), signals):
        raise SystemExit("the stored patches do not tile their photographs")
    return torch.from_numpy(images)


def cut(images: torch.Tensor, which: torch.Tensor, corner: torch.Tensor,
        side: int) -> torch.Tensor:
    """Patches (n, side, side) of ``images[which]`` with top-left corners ``corner`` (n, 2)."""
    steps = torch.arange(side)
    rows = (corner[:, 0, None] + steps)[:, :, None]
    cols = (corner[:, 1, None] + steps)[:, None, :]
    return images[which[:, None, None], rows, cols]


def draw(images: torch.Tensor, which: torch.Tensor, generator: torch.Generator,
         side: int = 16) -> np.ndarray:
    """One fresh patch per row: from photograph ``which``, at a random offset, turned by a
    random symmetry of the square."""
    corner = torch.randint(images.shape[-1] - side + 1, (len(which), 2), generator=generator)
    patches = cut(images, which, corner, side).reshape(len(which), -1).to(torch.float64)
    draws = augment_draws(len(which), generator)
    draws["gamma"] = torch.ones_like(draws["gamma"])  # the symmetry alone: no photometry
    draws["gain"] = torch.ones_like(draws["gain"])
    return np.ascontiguousarray(augment_patches(patches, draws).to(torch.float32).numpy())


def train_arm(arm: str, encoder, arrays, options: dict, fresh_pair, generator, pool_size: int):
    """Train ``encoder`` on the stored pair or on fresh draws (see the module docstring);
    returns ``[(epoch, seconds so far, validation RMSE)]`` and the training result."""
    Y, X, Yv, Xv = arrays
    began = time.perf_counter()
    pool = [fresh_pair(generator) for _ in range(pool_size)] if arm == "pool" else []
    curve = [(0, time.perf_counter() - began, None)]
    with Trainer(encoder, Y, X, val_signals=Yv, val_references=Xv, **options) as trainer:
        trainer.begin()

        def use(pair):
            trainer.batches = Batches(*pair, M=Y.shape[1], augment=None, zoom=1.0, place=None,
                                      generator=trainer.generator)

        def next_epoch(state):
            curve.append((state.epoch, time.perf_counter() - began,
                          state.history[-1]["val_rmse"]))
            print(f"{arm} epoch {state.epoch}: val {curve[-1][2]:.4f}, {curve[-1][1]:.0f} s",
                  flush=True)
            if arm != "stored" and state.epoch < options["max_epochs"]:
                use(fresh_pair(generator) if arm == "fresh" else pool[state.epoch % len(pool)])

        if arm != "stored":  # the first epoch trains on a draw too
            use(pool[0] if pool else fresh_pair(generator))
        return curve, trainer.run(next_epoch)


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("fresh_data.py", threads, argv)
    config, codeset, dataset, hyper, options = run_setting(args.run_dir, args.depth,
                                                          args.epochs)
    if "val" not in dataset.splits or config.search.max_train:
        raise SystemExit("needs a run with a prepared val split and every training row")
    options = {**options, "patience": None, "rel_tol": 0.0}  # every arm runs every epoch
    T, epochs = args.depth, options["max_epochs"]
    code_options = {"mode": codeset.meta["mode"], "tol": codeset.meta["tol"]}
    alphas = codeset.meta["alphas"]
    blocks = [np.asarray(d, dtype=np.float32) for d in codeset.dictionaries]
    Y = np.asarray(dataset.signals("train"), dtype=np.float32)
    X = np.asarray(codeset.codes("train"), dtype=np.float32)
    Yv = np.asarray(dataset.signals("val"), dtype=np.float32)
    Xv = np.asarray(codeset.codes("val"), dtype=np.float32)
    Yt = np.asarray(dataset.signals("test"), dtype=np.float32)
    Xt = np.asarray(codeset.codes("test"), dtype=np.float32)
    which = torch.from_numpy(np.array(dataset.split("train")["image_index"], dtype=np.int64))
    images = photographs(Y, which.numpy())
    names, index = dataset.row_sources("test")
    print(f"{len(Y)} training patches of {images.shape[0]} photographs; validation {len(Yv)}, "
          f"test {len(Yt)}; start alpha {hyper['alpha']}, mu "
          f"{hyper['mu']}; codes {code_options}, alphas {alphas}; options {options}",
          flush=True)

    def fresh_pair(generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        signals = draw(images, which, generator)
        codes, _ = compute_codes(signals, blocks, alphas, **code_options)
        return signals, codes.astype(np.float32)

    curves, tests = {}, {}
    for arm in args.arms:
        encoder = build_encoder("lsalsa", blocks, hyper["alpha"], T, hyper["mu"],
                                untied=untied_layers("lsalsa", config.search.untied))
        curves[arm], result = train_arm(arm, encoder, (Y, X, Yv, Xv), options, fresh_pair,
                                        torch.Generator().manual_seed(config.seed + 1),
                                        args.pool)
        test = per_sample_rmse(result.encoder, Yt, Xt)
        tests[arm] = {"best_epoch": result.best_epoch, "val_rmse": result.val_rmse,
                      "test_rmse": float(test.mean()),
                      "test_by_source": by_source(test, names, index)}

    header = ["epoch"] + [f"{arm}: val RMSE (s)" for arm in args.arms]
    rows = [[str(e)] + [f"{curves[a][e][2]:.4f} ({curves[a][e][1]:.0f})"
                        if curves[a][e][2] is not None else f"- ({curves[a][e][1]:.0f})"
                        for a in args.arms] for e in range(1, epochs + 1)]
    print()
    print(markdown_table(header, rows))
    print()
    sources = list(next(iter(tests.values()))["test_by_source"])
    print(markdown_table(["arm", "best epoch", "val RMSE", "test RMSE", *sources],
                         [[a, str(t["best_epoch"]), f"{t['val_rmse']:.4f}",
                           f"{t['test_rmse']:.4f}"]
                          + [f"{t['test_by_source'][n]:.4f}" for n in sources]
                          for a, t in tests.items()]))
    if args.json:
        args.json.write_text(json.dumps({"command": sys.argv, "curves": curves, "test": tests},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
