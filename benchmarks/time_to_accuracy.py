"""Time to accuracy: how long FISTA, SALSA and exact solvers need to reach a trained encoder's
code RMSE (issue 12, "Time to accuracy" and the Fashion-MNIST "defaults only" target).

Inputs: a prepared data set, its code set (optimal codes of the val and test splits) and one or
more trained LSALSA / LISTA models. For each model, on the test split:

- the model: mean per-sample code RMSE against the stored optimum, and the wall-clock time to
  encode the test set;
- FISTA and SALSA: for every iteration count T = 1, 2, ... the setting (alpha among
  ``alpha_candidates`` of the codes' alphas; for SALSA also mu among ``MUS`` and ``--add-mu``)
  with the lowest VALIDATION RMSE at that T (``lsalsa.core.training.classic_curves``), then the test
  RMSE of that choice. "Iterations to match" is the smallest T whose test RMSE is at most the
  model's; nothing is selected on the test split. The method is timed at that T with its chosen
  setting, with its operators built once outside the timer: SALSA as an untrained
  ``lsalsa.LSALSA`` (equal to SALSA(T), and the same in-place inference code as the model),
  FISTA through ``lsalsa.core.solvers.classic.iterates`` with prebuilt operators;
- SPAMS (``spams.lasso``, LARS with Cholesky updates) and scikit-learn (``sparse_encode``,
  lasso_lars and lasso_cd): the time to the exact codes of ``--exact-limit`` of the signals,
  scaled linearly to the test set (each signal is solved on its own), with the mean objective
  compared against the stored optimum's.

Precisions (issue 21, ``--dtypes``, default float32 and bfloat16): every model and every
FISTA / SALSA run is timed in each, with the products in that precision (``dtype=``; the
iterates, thresholds and codes stay float32). A precision keeps a method's accuracy when its
test RMSE is within 2% of the method's float32 RMSE at the same T and setting (for MCA, each
component's PSNR also at most 0.1 dB below float32's); each method is
then ranked by its fastest precision that keeps its accuracy, and the ratio to the model
compares those fastest times ("ratio to model"; the float32-only ratio is printed beside it).
The exact solvers run in float64, as they solve. ``--fused`` adds, for the models and SALSA
(an untrained LSALSA), each precision with fused layers (``encode(fused=True)``, torch.compile;
the warm-up call compiles, so compile time is not in the timings), named like
"bfloat16 fused".

Every method gets the same test signals (the exact solvers a random subset of them), batch
(``--batch-size``, default 4096 as in the experiments' evaluation) and thread count
(``--threads``, default 1, for torch, BLAS and SPAMS). Times are medians after a warm-up
(docs/DESIGN.md section 6), over rounds in which every timed call runs once in turn. The output
is a table of ratios to each model's time, the issue's targets as met / missed, and JSON with
every number (``--json`` also writes it).

Examples::

    python benchmarks/time_to_accuracy.py --train-quick          # builds a small set-up
    python benchmarks/time_to_accuracy.py --data fashion-mnist-10 --codes CODES \\
        --model run1/model.safetensors run5/model.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import lsalsa
from lsalsa.core.encoders import components, read_model_header
from lsalsa.core.metrics import (
    classic_encoder,
    iterations_to_match,
    rmse_per_sample,
    separation_quality,
)
from lsalsa.core.operators import inference_dtype
from lsalsa.core.problem import make_problem
from lsalsa.core.solvers.exact import spams_available, spams_lasso
from lsalsa.core.training import DEFAULTS
from lsalsa.core.training.search import MUS, alpha_candidates, classic_settings, selected_curves
from lsalsa.io import write_json
from lsalsa.workflow.code_sets import load_codes
from lsalsa.workflow.data import load_prepared
from lsalsa.workflow.targets import count_verdict, ratio_verdict

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import (
    interleaved_times,
    machine_line,
    markdown_table,
    print_header,
    set_threads,
    split_variant,
    variant_name,
)

# The installed `lsalsa` command, run with this interpreter (the package has no __main__).
LSALSA_CLI = [sys.executable, "-c", "import sys; from lsalsa.cli import main; sys.exit(main())"]
CLASSIC = ("fista", "salsa")
EXACT = ("spams", "lasso_lars", "lasso_cd")
# A low precision keeps a method's accuracy when its code RMSE is within this fraction of the
# method's float32 RMSE (issue 21).
KEEPS_ACCURACY = 0.02
KEEPS_PSNR = 0.1  # dB, for every separated component of MCA


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="prepared data set (name or folder)")
    parser.add_argument("--root", help="folder of prepared data sets")
    parser.add_argument("--codes", help="code set directory with val and test codes")
    parser.add_argument("--model", nargs="+", help="trained LSALSA / LISTA model file(s)")
    parser.add_argument("--train-quick", action="store_true",
                        help="prepare fashion-mnist-10 (2000 images per split), learn a "
                             "dictionary, compute codes and train LSALSA T=1 and T=5 with "
                             "`lsalsa train --depth T --epochs E` (all else default) under "
                             "--workdir (reused when present)")
    parser.add_argument("--epochs", type=positive, default=3, help="--train-quick epochs (3)")
    parser.add_argument("--workdir", default=str(Path.home() / ".cache/lsalsa/bench-tta"))
    parser.add_argument("--limit", type=positive, help="test signals used (default all)")
    parser.add_argument("--val-limit", type=positive, help="validation signals used (default all)")
    parser.add_argument("--exact-limit", type=positive, default=1000,
                        help="test signals (random) given to SPAMS / scikit-learn, times "
                             "scaled to the test set (default 1000)")
    parser.add_argument("--exact", nargs="*", choices=EXACT, default=list(EXACT),
                        help="exact solvers to time (default all)")
    parser.add_argument("--max-iter", type=positive, default=1000,
                        help="largest T of the FISTA / SALSA curves (default 1000)")
    parser.add_argument("--add-mu", type=float, nargs="+", default=[],
                        help=f"SALSA mu values besides {MUS}, e.g. 0.25")
    parser.add_argument("--batch-size", type=positive, default=4096,
                        help="rows per batch for every timed method (default 4096, the "
                             "experiments' evaluation batch)")
    parser.add_argument("--threads", type=positive, default=1, help="threads for every method (1)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        help="precisions of the products to time every model and FISTA / "
                             "SALSA in (default float32 bfloat16; float32 is always timed)")
    parser.add_argument("--repeats", type=positive, default=5,
                        help="interleaved timing rounds after the warm-up (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="row subsets and --train-quick")
    parser.add_argument("--json", help="also write the JSON to this file")
    parser.add_argument("--fused", action="store_true",
                        help="also time the models and SALSA with fused layers (torch.compile) "
                             "in every precision")
    parser.add_argument("--plot", help="also draw time against test RMSE to this PNG: FISTA "
                                       "and SALSA timed at each --curve-T in every precision "
                                       "(each T at its setting chosen on validation), the "
                                       "models and the exact solvers")
    parser.add_argument("--curve-T", type=positive, nargs="+", default=[1, 2, 5, 10, 20, 50, 100],
                        help="T of the timed FISTA / SALSA points of --plot (those within "
                             "each curve's horizon)")
    return parser.parse_args(argv)


def lsalsa_cli(*args: str) -> None:
    print("$ lsalsa " + " ".join(args), flush=True)
    subprocess.run([*LSALSA_CLI, *args, "--quiet"], check=True)


def train_quick(work: Path, epochs: int, seed: int) -> tuple[str, str, str, list[str]]:
    """Build (or reuse) a small offline set-up; returns (data, root, codes, models)."""
    root, name = work / "prepared", "fashion-mnist-10"
    work.mkdir(parents=True, exist_ok=True)
    if not (root / name).is_dir():
        lsalsa_cli("data", "prepare", name, "--root", str(root), "--limit-images", "2000",
                   "--seed", str(seed))
    dictionary = work / "dictionary.npy"
    if not dictionary.is_file():
        lsalsa_cli("dictionary", "learn", "--data", name, "--root", str(root), "--alpha",
                   "0.15", "--epochs", "3", "--seed", str(seed), "--out", str(dictionary))
    codes = work / "codes"
    if not codes.is_dir():
        lsalsa_cli("codes", "compute", "--data", name, "--root", str(root), "--dict",
                   str(dictionary), "--alpha", "0.15", "--out", str(codes))
    models = []
    for depth in (1, 5):
        run = work / f"lsalsa-T{depth}-e{epochs}"
        if not (run / "model.safetensors").is_file():
            lsalsa_cli("train", "--data", name, "--root", str(root), "--codes", str(codes),
                       "--model", "lsalsa", "--depth", str(depth), "--epochs", str(epochs),
                       "--seed", str(seed), "--run-dir", str(run))
        models.append(str(run / "model.safetensors"))
    return name, str(root), str(codes), models


def split_pair(dataset, codeset, split: str, limit: int | None, rng) -> tuple:
    """Signals and optimal codes of a split as float32 tensors (a random subset with limit),
    and the rows taken."""
    Y, X = dataset.signals(split), codeset.codes(split)
    if len(Y) != len(X):
        sys.exit(f"{split}: {len(Y)} signals but {len(X)} codes; the code set is not of this "
                 "data set")
    rows = np.arange(len(Y)) if limit is None or limit >= len(Y) else np.sort(
        rng.choice(len(Y), limit, replace=False))
    return (torch.from_numpy(np.asarray(Y[rows], np.float32)),
            torch.from_numpy(np.asarray(X[rows], np.float32)), rows)


def mean_rmse(codes, optimal) -> float:
    """Mean over samples of the per-sample code RMSE (docs/DESIGN.md section 6)."""
    return float(rmse_per_sample(codes, optimal).mean())


def selected_curve(val, test, blocks, method: str, settings: list[dict], horizon: int) -> dict:
    """For T = 1..horizon: the index in ``settings`` of the lowest validation RMSE at T
    (``choice``), and the test RMSE of that choice (lsalsa.core.training.search.selected_curves)."""
    depths = list(range(1, horizon + 1))
    curve = selected_curves(val, test, blocks, method, depths, settings)
    # classic_curves gives inf for a diverged setting; JSON has no inf.
    return {"T": depths, "val_rmse": finite_or_none(curve["val_rmse"]),
            "test_rmse": finite_or_none(curve["rmse"]), "choice": curve["choice"].tolist()}


def finite_or_none(values) -> list:
    return [float(v) if np.isfinite(v) else None for v in values]


def dense_curve(val, test, blocks, method, settings, references, max_iter: int) -> dict:
    """:func:`selected_curve` up to the first horizon (16, 32, ..., max_iter) at which every
    reference RMSE is reached. The value at T does not depend on the horizon, so growing it
    only saves work (at most twice that of the final horizon)."""
    horizon = min(16, max_iter)
    while True:
        curve = selected_curve(val, test, blocks, method, settings, horizon)
        if horizon == max_iter or all(
                iterations_to_match(curve["T"], curve["test_rmse"], r) is not None
                for r in references):
            return curve
        horizon = min(2 * horizon, max_iter)


def scaled_problem(dictionaries, alphas):
    """One dictionary and one alpha equivalent to per-block alphas: atoms of block i are scaled
    by ``a / alpha_i`` so that ``a ||x'||_1`` equals ``sum_i alpha_i ||x_i||_1``."""
    a = float(min(alphas))
    scale = np.concatenate([np.full(d.shape[1], a / al) for d, al in zip(dictionaries, alphas,
                                                                         strict=True)])
    return np.concatenate(dictionaries, axis=1) * scale, a, scale


def exact_solvers(Y: np.ndarray, dictionaries, alphas, names, threads: int) -> dict:
    """{name: callable returning the exact codes of Y} for SPAMS and scikit-learn."""
    A, a, scale = scaled_problem(dictionaries, alphas)
    Y64, A64 = Y.astype(np.float64), A.astype(np.float64)
    solvers = {}
    if "spams" in names:
        if not spams_available():
            print("SPAMS not installed (pip install spams-bin): skipped")
        else:
            # The library's own call (LARS with Cholesky: the Gram-update LARS loses the path
            # on ill-conditioned MCA dictionaries), on the given threads.
            problem = make_problem([np.asarray(d, np.float64) for d in dictionaries],
                                   alphas)[0]
            Yt = torch.from_numpy(Y64)
            solvers["SPAMS lasso (LARS, Cholesky)"] = lambda: spams_lasso(
                problem, Yt, threads=threads).numpy()
    from sklearn.decomposition import sparse_encode

    for algorithm in ("lasso_lars", "lasso_cd"):
        if algorithm in names:
            # sparse_encode's alpha is on 1/2 ||y - D x||^2 + alpha ||x||_1 (it divides by
            # n_features for its scaled Lasso); the objective check below confirms it.
            solvers[f"scikit-learn {algorithm}"] = lambda algorithm=algorithm: sparse_encode(
                Y64, A64.T, algorithm=algorithm, alpha=a, max_iter=10000, n_jobs=1) * scale
    return solvers


def exact_check(codes, Y: np.ndarray, X_opt: np.ndarray, dictionaries, alphas) -> dict:
    """RMSE of exact codes against the stored optimum and the relative difference of the mean
    objectives (float64): the check that the solver solved the same problem."""
    blocks64 = [d.astype(np.float64) for d in dictionaries]
    Y64 = Y.astype(np.float64)
    cost, reference = (lsalsa.objective(Y64, np.asarray(X, np.float64), blocks64, alphas).mean()
                       for X in (codes, X_opt))
    return {"test_rmse": mean_rmse(codes, X_opt),
            "objective_vs_optimum": float((cost - reference) / reference)}


def problem_kind(dataset) -> str | None:
    """Which of the issue's targets apply: "fashion" (Fashion-MNIST), "mca" or None."""
    if dataset.meta.get("kind") == "mca":
        return "mca"
    return "fashion" if dataset.name.startswith("fashion-mnist") else None


def targets(model: dict, kind: str | None) -> list[dict]:
    """The issue's targets that apply to this model, as {"target", "value", "met"}."""
    if model["kind"] != "lsalsa" or kind is None:
        return []
    T, by = model["depth"], model["methods"]
    out = []

    def check(text, value, met):
        out.append({"target": text, "value": value, "met": met})

    if T == 1:
        salsa = by["salsa"]
        # Not reached within --max-iter: the ratio at max-iter is a lower bound only.
        check("SALSA at its best needs >= 5x LSALSA T=1's time to reach its RMSE",
              ("> " if salsa["T"] is None else "") + f"{salsa['ratio']:.1f}x",
              ratio_verdict(salsa["ratio"], salsa["T"] is not None, 5))
    if T == 5:
        # Issue 21: each side at its fastest precision that keeps its accuracy.
        salsa = by["salsa"]
        check(f"{kind}: the best SALSA (any precision) needs >= 5x LSALSA T=5's time to "
              "reach its RMSE", ("> " if salsa["T"] is None else "") + f"{salsa['ratio']:.1f}x",
              ratio_verdict(salsa["ratio"], salsa["T"] is not None, 5))
    for row in model["exact"]:
        if row["method"].startswith("SPAMS"):
            check("SPAMS needs >= 20x the time for the exact codes", f"{row['ratio']:.1f}x",
                  row["ratio"] >= 20)
            if T == 5 and kind == "mca":
                check("MCA: SPAMS needs >= 100x LSALSA T=5's time (issue 21)",
                      f"{row['ratio']:.1f}x", row["ratio"] >= 100)
    bars = {1: ((15, False), (5, True)), 5: ((50, False), (10, False))}
    if kind == "fashion" and T in bars:
        for method, (bar, inclusive) in zip(CLASSIC, bars[T], strict=True):
            needed, horizon = by[method]["T"], by[method]["T_timed"]
            check(f"Fashion-MNIST T={T}: {method.upper()} needs "
                  f"{'at least' if inclusive else 'more than'} {bar} iterations",
                  f"> {horizon}" if needed is None else str(needed),
                  count_verdict(needed, horizon, bar - 1 if inclusive else bar))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("time_to_accuracy.py", threads, argv)
    if args.train_quick:
        args.data, args.root, args.codes, args.model = train_quick(
            Path(args.workdir), args.epochs, args.seed)
    if not (args.data and args.codes and args.model):
        sys.exit("give --data, --codes and --model, or --train-quick")
    with threadpool_limits(limits=threads):  # BLAS under numpy, scikit-learn and SPAMS
        result = run(args, threads)
    result["command"] = sys.argv[1:] if argv is None else argv
    print(json.dumps(result))
    if args.json:
        write_json(args.json, result)
    return 0


def run(args, threads: int) -> dict:
    dataset = load_prepared(args.data, root=args.root)
    codeset = load_codes(args.codes)
    missing = {"val", "test"} - set(codeset.splits)
    if missing:
        sys.exit(f"{args.codes} has no codes for {sorted(missing)}; compute codes for every "
                 "split (lsalsa codes compute)")
    rng = np.random.default_rng(args.seed)
    val = split_pair(dataset, codeset, "val", args.val_limit, rng)[:2]
    Y, X_opt, test_rows = split_pair(dataset, codeset, "test", args.limit, rng)
    dictionaries, alphas = codeset.dictionaries, list(codeset.alphas)
    blocks = [torch.from_numpy(d) for d in dictionaries]
    batch = min(args.batch_size, len(Y))
    kind = problem_kind(dataset)
    # float32 first: the reference of every accuracy check; each other name is checked here.
    dtypes = ["float32", *dict.fromkeys(d for d in args.dtypes if d != "float32")]
    for dtype in dtypes[1:]:
        inference_dtype(dtype, Y.device, torch.float32, "--dtypes")
    # A variant is a precision, with fused layers or not (FISTA has no fused form).
    variants = dtypes + ([variant_name(d, True) for d in dtypes] if args.fused else [])

    def variants_of(method: str) -> list[str]:
        return [v for v in variants if method != "fista" or not split_variant(v)[1]]

    quality = Quality(X_opt, dictionaries, alphas,
                      separation_truth(dataset, test_rows, len(dictionaries), kind))
    print(f"data {dataset.name} ({dataset.meta.get('label', '')}): {len(Y)} test and "
          f"{len(val[0])} validation signals, M={Y.shape[1]}, N={X_opt.shape[1]}, "
          f"codes' alphas {alphas}; batch {batch}, threads {threads}", flush=True)

    # The models' test RMSE, then FISTA's and SALSA's curves (selection on validation).
    models, encoders = [], []
    for path in args.model:
        encoder = lsalsa.load_encoder(path)
        if (encoder.block_sizes != tuple(d.shape[1] for d in dictionaries) or not np.array_equal(
                encoder.dictionary.numpy(), np.concatenate(dictionaries, axis=1))):
            sys.exit(f"{path} was trained on another dictionary than the code set's")
        _, extra = read_model_header(path)
        models.append({"path": path, "kind": encoder.kind, "depth": encoder.depth,
                       "mu": encoder.mu, "alphas": list(encoder.alphas),
                       "learn_thresholds": encoder.learn_thresholds,
                       "training": extra.get("training_config"), "trained": extra.get("training"),
                       "data": extra.get("data"),
                       # float32: the quality every method is timed to reach
                       "target_rmse": mean_rmse(encoder.encode(Y, batch_size=batch), X_opt)})
        encoders.append(encoder)
    mus = sorted({*MUS, *args.add_mu})
    curves = {}
    for method in CLASSIC:
        settings = classic_settings(method, alpha_candidates(alphas), mus)
        curves[method] = {**dense_curve(val, (Y, X_opt), blocks, method, settings,
                                        [m["target_rmse"] for m in models], args.max_iter),
                          "grid": settings}
        print(f"{method}: {len(settings)} settings, T = 1..{len(curves[method]['T'])}",
              flush=True)

    # What is timed, in every precision: each model, FISTA and SALSA at the smallest T that
    # matches it in float32 (each with the setting chosen for that T); the exact solvers
    # (float64) on a random subset.
    calls, matched = {}, {}
    for i, (model, encoder) in enumerate(zip(models, encoders, strict=True)):
        for variant in variants:
            dtype, fused = split_variant(variant)
            calls[i, variant] = lambda encoder=encoder, dtype=dtype, fused=fused: encoder.encode(
                Y, batch_size=batch, dtype=dtype, fused=fused)
        for method, curve in curves.items():
            needed = iterations_to_match(curve["T"], curve["test_rmse"], model["target_rmse"])
            # Not reached: time the longest run, a lower bound on the time to match.
            T = needed or len(curve["T"])
            setting = curve["grid"][curve["choice"][T - 1]]
            for variant in variants_of(method):
                dtype, fused = split_variant(variant)
                calls[i, method, variant] = classic_encoder(method, dictionaries, setting, T,
                                                            Y, batch, dtype=dtype, fused=fused)
            matched[i, method] = {"T": needed, "T_timed": T, "setting": setting,
                                  "val_rmse": curve["val_rmse"][T - 1],
                                  "curve_test_rmse": curve["test_rmse"][T - 1]}
    if args.plot:  # points of the plot's curves: timed like the rest, interleaved with it
        for method, curve in curves.items():
            for T in sorted(t for t in set(args.curve_T) if t <= len(curve["T"])):
                setting = curve["grid"][curve["choice"][T - 1]]
                for variant in variants_of(method):
                    dtype, fused = split_variant(variant)
                    calls["curve", method, T, variant] = classic_encoder(
                        method, dictionaries, setting, T, Y, batch, dtype=dtype, fused=fused)
    part = min(args.exact_limit, len(Y))
    rows = np.sort(rng.choice(len(Y), part, replace=False))
    Y_part, X_part = Y[rows].numpy(), X_opt[rows].numpy()
    calls.update(exact_solvers(Y_part, dictionaries, alphas, args.exact, threads))

    # One warm-up call each (its output is what the table checks), then interleaved rounds.
    # scikit-learn warns once per signal it leaves unconverged: counted in the warm-up, then
    # silenced; the objective check shows how far off those codes are.
    outputs, unconverged = {}, {}
    for name, fn in calls.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            outputs[name] = fn()
        unconverged[name] = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    print(f"timing {len(calls)} calls in {args.repeats} interleaved rounds", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        times = interleaved_times(calls, args.repeats)
    seconds = {name: statistics.median(t) for name, t in times.items()}

    exact = []
    for name in calls:
        if isinstance(name, str):  # an exact solver, scaled from the subset to the test set
            exact.append({"method": name, "signals": part, "measured_seconds": seconds[name],
                          "seconds": seconds[name] * len(Y) / part, "times": times[name],
                          "convergence_warnings": unconverged[name],
                          **exact_check(outputs[name], Y_part, X_part, dictionaries, alphas)})
    def measured(*key) -> dict:
        return fastest({variant: {"seconds": seconds[(*key, variant)],
                                  "times": times[(*key, variant)],
                                  **quality(outputs[(*key, variant)])}
                        for variant in variants if (*key, variant) in calls})

    for i, model in enumerate(models):
        model.update(measured(i))
        model["methods"] = {}
        for method in curves:
            row = {**matched[i, method], **measured(i, method)}
            row["ratio"] = row["seconds"] / model["seconds"]
            row["ratio_float32"] = (row["precisions"]["float32"]["seconds"]
                                    / model["precisions"]["float32"]["seconds"])
            model["methods"][method] = row
        model["exact"] = [{**row, "ratio": row["seconds"] / model["seconds"]} for row in exact]
        model["targets"] = targets(model, kind)

    points = [{"method": name[1], "T": name[2], "precision": name[3],
               "seconds": seconds[name], **quality(outputs[name])}
              for name in calls if isinstance(name, tuple) and name[0] == "curve"]
    print_report(models, part, len(Y), args.max_iter)
    if args.plot:
        print(f"wrote {plot_time_to_quality(args.plot, models, points, dataset.name)}")
    return {"machine": machine_line(threads), "data": dataset.name,
            "data_path": str(dataset.path), "codes": str(codeset.path), "alphas": alphas,
            "test_signals": len(Y), "val_signals": len(val[0]), "exact_signals": part,
            "batch_size": batch, "threads": threads, "max_iter": args.max_iter, "mus": mus,
            "dtypes": dtypes, "variants": variants, "curve_points": points,
            "curves": curves, "models": models}


def separation_truth(dataset, rows, n_components: int, kind: str | None) -> list | None:
    """The true components of the timed test rows of an MCA data set (else None)."""
    if kind != "mca":
        return None
    test = dataset.split("test")
    return [np.asarray(test[f"component{i}"][rows], np.float32) for i in range(n_components)]


class Quality:
    """What a method's codes are scored on: the mean code RMSE against the optimum, and for
    MCA the PSNR of each separated component (synthesised from the codes) against the true
    one (``separation_quality``'s ``psnr``, docs/DESIGN.md section 6)."""

    def __init__(self, optimum, dictionaries, alphas, truth):
        self.optimum, self.truth = optimum, truth
        self.problem = make_problem([np.asarray(d, np.float32) for d in dictionaries],
                                    alphas)[0]

    def __call__(self, codes) -> dict:
        scores = {"test_rmse": mean_rmse(codes, self.optimum)}
        if self.truth is not None:
            parts = [p.numpy() for p in components(self.problem, torch.as_tensor(codes))]
            scores["psnr"] = separation_quality(parts, self.truth)["psnr"]
        return scores


def fastest(by_dtype: dict) -> dict:
    """``{dtype: {"seconds", "times", "test_rmse"[, "psnr"]}}`` of one method -> its entry:
    every precision, whether each keeps the method's accuracy (test RMSE within
    KEEPS_ACCURACY of float32's, and each component's PSNR at most KEEPS_PSNR dB lower), and the
    fastest that does (``precision``, ``seconds``, ``times``, ``test_rmse``)."""
    reference = by_dtype["float32"]

    def keeps(m) -> bool:
        # One-sided, as the RMSE's: a precision that separates better keeps the accuracy.
        psnr_kept = all(a >= b - KEEPS_PSNR for a, b in zip(
            m.get("psnr", []), reference.get("psnr", []), strict=True))
        return m["test_rmse"] <= (1 + KEEPS_ACCURACY) * reference["test_rmse"] and psnr_kept

    precisions = {dtype: {**m, "rmse_change": m["test_rmse"] / reference["test_rmse"] - 1,
                          "keeps_accuracy": keeps(m)} for dtype, m in by_dtype.items()}
    best = min((d for d, p in precisions.items() if p["keeps_accuracy"]),
               key=lambda d: precisions[d]["seconds"])
    chosen = precisions[best]
    return {"precisions": precisions, "precision": best,
            **{k: chosen[k] for k in ("seconds", "times", "test_rmse", "psnr") if k in chosen}}


def plot_time_to_quality(path, models: list[dict], points: list[dict], data: str) -> Path:
    """Test RMSE against time: FISTA and SALSA as curves over T, one per precision (the
    --curve-T points and the timed T to match of every model), every model in every precision
    as a point, the exact solvers as vertical lines (their RMSE is the stored optimum's, zero
    up to rounding)."""
    from lsalsa.workflow.report.figures import new_figure, save_png

    curves: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for p in points:
        curves.setdefault((p["method"], p["precision"]), {})[p["T"]] = (p["seconds"],
                                                                        p["test_rmse"])
    for m in models:
        for method, row in m["methods"].items():
            for variant, p in row["precisions"].items():
                curves.setdefault((method, variant), {})[row["T_timed"]] = (p["seconds"],
                                                                            p["test_rmse"])
    fig = new_figure(6.8, 4.6)
    ax = fig.add_subplot()
    colours = {"fista": "tab:blue", "salsa": "tab:orange"}
    styles = {"float32": "-", "bfloat16": "--", "float16": ":", "float32 fused": "-.",
              "bfloat16 fused": (0, (1, 1)), "float16 fused": (0, (3, 1, 1, 1))}
    for (method, variant), by_T in sorted(curves.items()):
        Ts = sorted(by_T)
        ax.plot([1e3 * by_T[T][0] for T in Ts], [by_T[T][1] for T in Ts],
                ls=styles.get(variant, "-"), marker="o", ms=3, color=colours[method],
                label=f"{method.upper()} ({variant}), T = {Ts[0]}..{Ts[-1]}")
    markers = {"float32": "*", "bfloat16": "D", "float16": "s", "float32 fused": "P",
               "bfloat16 fused": "X", "float16 fused": "p"}
    shades = ["black", "tab:purple", "tab:green", "tab:red", "tab:brown"]
    for m, shade in zip(models, shades * len(models), strict=False):
        for variant, p in m["precisions"].items():
            ax.plot(1e3 * p["seconds"], p["test_rmse"], markers.get(variant, "x"), ms=9,
                    color=shade, label=f"{m['kind'].upper()} T={m['depth']} ({variant})")
    for row, ls in zip(models[0]["exact"] if models else [], [":", "-.", "--"], strict=False):
        ax.axvline(1e3 * row["seconds"], color="grey", ls=ls, lw=1,
                   label=f"{row['method'].split(' (')[0]}: exact")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time to encode the test set (ms, one thread)")
    ax.set_ylabel("mean code RMSE against the optimum")
    ax.set_title(f"Time to quality: {data}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_png(fig, Path(path), 110, bbox_inches="tight")


def setting_text(setting: dict) -> str:
    alpha = "/".join(f"{a:g}" for a in np.atleast_1d(setting["alpha"]))
    return f"alpha {alpha}" + (f", mu {setting['mu']:g}" if setting.get("mu") else "")


def print_report(models: list[dict], part: int, signals: int, max_iter: int) -> None:
    rows, by_precision = [], []
    for m in models:
        name = f"{m['kind'].upper()} T={m['depth']}"
        rows.append([name, name, m["depth"], "-", m["precision"], f"{m['test_rmse']:.5f}",
                     f"{m['seconds'] * 1e3:.2f}", "1.0x", "1.0x"])
        entries = [(name, m)]
        for method, r in m["methods"].items():
            reached = r["T"] is not None
            bound = "" if reached else "> "
            rows.append([name, method.upper(), r["T"] if reached else f"> {r['T_timed']}",
                         setting_text(r["setting"]), r["precision"], f"{r['test_rmse']:.5f}",
                         f"{r['seconds'] * 1e3:.2f}", f"{bound}{r['ratio']:.1f}x",
                         f"{bound}{r['ratio_float32']:.1f}x"])
            entries.append((method.upper(), r))
        for r in m["exact"]:
            scaled = f" (from {part} signals)" if part < signals else ""
            warned = (f", {r['convergence_warnings']} not converged"
                      if r["convergence_warnings"] else "")
            rows.append([name, r["method"] + scaled, "exact",
                         f"objective {r['objective_vs_optimum']:+.1e} vs stored{warned}",
                         "float64", f"{r['test_rmse']:.1e}", f"{r['seconds'] * 1e3:.1f}",
                         f"{r['ratio']:.1f}x", "-"])
        for method, r in entries:
            reference = r["precisions"]["float32"]["seconds"]
            for dtype, p in r["precisions"].items():
                psnr = " / ".join(f"{v:.2f}" for v in p["psnr"]) if "psnr" in p else "-"
                by_precision.append([name, method, dtype, f"{p['seconds'] * 1e3:.2f}",
                                     f"{reference / p['seconds']:.2f}x", f"{p['test_rmse']:.5f}",
                                     f"{100 * p['rmse_change']:+.2f}%", psnr,
                                     "yes" if p["keeps_accuracy"] else "no"])
    print()
    print(markdown_table(["model", "method", "T to match", "setting (chosen on val)",
                          "precision", "test RMSE", "time ms", "ratio to model",
                          "float32 ratio"], rows))
    print(f"\nT to match: the smallest T (1..{max_iter}) whose float32 test RMSE, at the "
          "setting chosen on validation for that T, is at most the model's float32 RMSE. "
          "precision: the fastest that keeps the method's accuracy (test RMSE within "
          f"{100 * KEEPS_ACCURACY:g}% of its float32 RMSE, and for MCA each component's PSNR "
          f"at most {KEEPS_PSNR:g} dB lower); ratio to model: that time over the "
          "model's at its own fastest such precision; float32 ratio: both in float32.\n")
    print(markdown_table(["model", "method", "precision", "time ms", "speed-up vs float32",
                          "test RMSE", "RMSE change", "PSNR dB (components)",
                          "keeps accuracy"], by_precision))
    for m in models:
        if m["targets"]:
            print(f"\ntargets, {m['kind'].upper()} T={m['depth']} ({m['path']}; "
                  f"trained {describe_training(m)}):")
        for t in m["targets"]:
            verdict = {True: "met", False: "MISSED", None: "undecided (raise --max-iter)"}
            print(f"- {t['target']}: {t['value']}: {verdict[t['met']]}")
    print(flush=True)


def describe_training(model: dict) -> str:
    """How the model was trained, as stored in its file, and whether the options were the
    library's defaults (the "defaults only" target)."""
    config, trained = model["training"] or {}, model["trained"] or {}
    if not config:
        return "with unknown options"
    # reconstruction_weight's default (None) means 0 for one dictionary, 1 for MCA.
    # A run records only the options that apply to it (no augment_* for the codes objective):
    # one it left out is at its default.
    changed = [f"{k} {config.get(k)}" for k, v in DEFAULTS.items()
               if k != "reconstruction_weight" and config.get(k, v) != v]
    if not model["learn_thresholds"]:
        changed.append("fixed thresholds")
    P = (model["data"] or {}).get("train", {}).get("P")
    return (f"{config.get('optimizer')} lr {config.get('lr')} {config.get('schedule')}, "
            f"{trained.get('epochs')} epochs (best {trained.get('best_epoch')}) on {P} signals, "
            + ("library defaults" if not changed else "not the defaults: " + ", ".join(changed)))


if __name__ == "__main__":
    sys.exit(main())
