"""Per held-out source: how many SALSA (or FISTA) iterations match a learned model's code RMSE.

An experiment's report gives the iterations to match over the whole test split. This reads a
finished run directory (`lsalsa experiment run ...`) and, for each source of its test rows
(the package of the photographs, ``PreparedDataset.row_sources``), runs the classic method's
dense curve on that source's rows alone, at the setting the run chose on validation for each T
(its ``classic.json``; nothing is chosen here), and compares it with each model's mean test
RMSE on the same rows (its ``eval/rmse_<model>.npy``). Prints a table and one line of JSON.

Examples::

    python benchmarks/iterations_per_source.py runs/natural-16-small lsalsa_T5 lsalsa-fixed_T5
    python benchmarks/iterations_per_source.py runs/mca-mnist-natural-small lsalsa_T5 --method fista
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from lsalsa.core.training.search import chosen_curves
from lsalsa.io import read_json_object
from lsalsa.workflow.code_sets import load_codes
from lsalsa.workflow.data import load_prepared

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, print_header, set_threads


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished experiment run directory")
    parser.add_argument("models", nargs="+", help="models of its eval/ folder, e.g. lsalsa_T5")
    parser.add_argument("--method", choices=("salsa", "fista"), default="salsa")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("iterations_per_source.py", threads, argv)
    run = args.run_dir
    codes = load_codes(run / "codes")
    data = load_prepared(run / "data" / codes.meta["data"]["name"])
    names, index = data.row_sources("test")
    Y = np.asarray(data.signals("test"), np.float32)
    X = np.asarray(codes.codes("test"), np.float32)
    blocks = [torch.from_numpy(np.asarray(d)) for d in codes.dictionaries]
    classic = read_json_object(run / "classic.json", "the run's classic.json")[args.method]
    grid, depths = classic["grid"], classic["T"]
    choice = [grid.index(setting) for setting in classic["hyper"]]  # chosen on validation
    rmse = {m: np.load(run / "eval" / f"rmse_{m}.npy") for m in args.models}
    rows, out = [], {}
    for s, name in enumerate(names):
        where = np.flatnonzero(index == s)
        if where.size == 0:  # a training or validation source
            continue
        curve = chosen_curves(torch.from_numpy(Y[where]), torch.from_numpy(X[where]), blocks,
                              args.method, depths, grid, choice)["rmse"]
        for model in args.models:
            target = float(rmse[model][where].mean())
            hit = np.flatnonzero(curve <= target)
            needed = int(depths[hit[0]]) if hit.size else None
            at_5 = float(curve[depths.index(5)]) if 5 in depths else None
            out[f"{name} {model}"] = {"source": name, "model": model, "rows": int(where.size),
                                      "model_rmse": target, f"{args.method}_T5_rmse": at_5,
                                      "iterations_to_match": needed, "horizon": depths[-1]}
            rows.append([name, model, where.size, f"{target:.4f}",
                         "-" if at_5 is None else f"{target / at_5:.3f}",
                         needed if needed else f"> {depths[-1]}"])
    print(markdown_table(["source", "model", "rows", "model RMSE",
                          f"/ {args.method.upper()} T=5", f"{args.method.upper()} iterations"],
                         rows))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
