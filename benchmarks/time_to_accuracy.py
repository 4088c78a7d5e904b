"""Time to accuracy: how long each method needs to reach the code RMSE of a trained LSALSA.

For each given LSALSA model (depth T, typically 1 and 5) on the test split of a prepared data set
with its stored optimal codes (``lsalsa codes compute``):

- LSALSA: wall-clock to encode the test set and the mean per-sample code RMSE it reaches;
- FISTA and SALSA (``lsalsa.solve``; SALSA takes the best mu of a small grid): the smallest T
  whose RMSE is at most LSALSA's (doubling, then bisection), and the time of that run;
- SPAMS (``spams.lasso``, LARS) and scikit-learn (``sparse_encode``, lasso_lars and lasso_cd):
  the time to compute the exact codes of the same signals.

All times are medians after a warm-up (DESIGN.md section 4), same threads for every method, and
are printed as ratios to LSALSA. scikit-learn's ``alpha`` for lasso_* is on
``1/2 ||y - D x||^2 + alpha ||x||_1`` (it divides by n_features internally, on its
``1/(2 n_features)`` objective); the script verifies this against ``lsalsa.objective`` before
timing. Per-dictionary alphas (MCA) are handled by rescaling the atoms.

Examples::

    python benchmarks/time_to_accuracy.py --train-quick            # builds a small set-up
    python benchmarks/time_to_accuracy.py --data fashion-mnist-10 --codes CODES \
        --model run1/model.safetensors run5/model.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lsalsa
from lsalsa.codes import load_codes
from lsalsa.data import load_prepared
from lsalsa.experiments.metrics import rmse_per_sample

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from _common import markdown_table, median_time, print_header, set_threads

# The installed `lsalsa` command, run with this interpreter (the package has no __main__).
LSALSA_CLI = [sys.executable, "-c", "import sys; from lsalsa.cli import main; sys.exit(main())"]

MU_GRID = (1.0, 2.5, 10.0, 40.0)


def rmse(estimate: np.ndarray, optimal: np.ndarray) -> float:
    """Mean over samples of the per-sample code RMSE (DESIGN.md section 4)."""
    return float(rmse_per_sample(estimate, optimal).mean())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="prepared data set (name or folder)")
    parser.add_argument("--root", help="folder of prepared data sets")
    parser.add_argument("--codes", help="code set directory (lsalsa codes compute)")
    parser.add_argument("--model", nargs="+", help="trained LSALSA model file(s)")
    parser.add_argument("--train-quick", action="store_true",
                        help="prepare fashion-mnist-10 (2000 images), learn a dictionary, "
                             "compute codes and train LSALSA T=1 and T=5 under --workdir "
                             "(reused when present)")
    parser.add_argument("--workdir", default=str(Path.home() / ".cache/lsalsa/bench-tta"))
    parser.add_argument("--limit", type=int, default=4000, help="test signals used (default 4000)")
    parser.add_argument("--exact-limit", type=int, default=1000,
                        help="signals given to SPAMS / scikit-learn (times scaled to --limit)")
    parser.add_argument("--max-iter", type=int, default=4096, help="largest T tried")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def lsalsa_cli(*args: str) -> None:
    command = [*LSALSA_CLI, *args, "--quiet"]
    print("$ lsalsa " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def train_quick(work: Path, seed: int) -> tuple[str, str, str, list[str]]:
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
        run = work / f"lsalsa-T{depth}"
        if not (run / "model.safetensors").is_file():
            lsalsa_cli("train", "--data", name, "--root", str(root), "--codes", str(codes),
                       "--dict", str(dictionary), "--model", "lsalsa", "--depth", str(depth),
                       "--epochs", "15", "--optimizer", "adam", "--lr", "1e-3",
                       "--seed", str(seed), "--run-dir", str(run))
        models.append(str(run / "model.safetensors"))
    return name, str(root), str(codes), models


def smallest_T(evaluate, target: float, max_iter: int) -> tuple[int | None, float]:
    """Smallest T with ``evaluate(T) <= target`` by doubling then bisection (None if never)."""
    T, value = 1, evaluate(1)
    while value > target:
        if T >= max_iter:
            return None, value
        T, value = min(2 * T, max_iter), evaluate(min(2 * T, max_iter))
    low, high, best = T // 2, T, value  # evaluate(low) > target unless low == 0
    while high - low > 1:
        mid = (low + high) // 2
        got = evaluate(mid)
        if got <= target:
            high, best = mid, got
        else:
            low = mid
    return high, best


def scaled_problem(dictionaries, alphas):
    """One dictionary and one alpha equivalent to per-block alphas: atoms of block i are scaled
    by ``a / alpha_i`` so that ``a ||x'||_1`` equals ``sum_i alpha_i ||x_i||_1``."""
    a = float(min(alphas))
    scale = np.concatenate([np.full(d.shape[1], a / al) for d, al in zip(dictionaries, alphas,
                                                                         strict=True)])
    return np.concatenate(dictionaries, axis=1) * scale, a, scale


def exact_peers(Y: np.ndarray, dictionaries, alphas, threads: int) -> list[tuple[str, object]]:
    """(name, callable returning codes) for SPAMS and scikit-learn, where installed."""
    A, a, scale = scaled_problem(dictionaries, alphas)
    peers = []
    try:
        import spams

        Yf = np.asfortranarray(Y.T.astype(np.float64))
        Af = np.asfortranarray(A.astype(np.float64))
        peers.append(("SPAMS lasso (LARS)", lambda: np.asarray(
            spams.lasso(Yf, D=Af, lambda1=a, mode=2, numThreads=threads).toarray()).T * scale))
    except ImportError:
        print("SPAMS not installed: skipped")
    from sklearn.decomposition import sparse_encode

    Y64, A64 = Y.astype(np.float64), A.T.astype(np.float64)
    for algorithm in ("lasso_lars", "lasso_cd"):
        peers.append((f"scikit-learn {algorithm}", lambda algorithm=algorithm: sparse_encode(
            Y64, A64, algorithm=algorithm, alpha=a, max_iter=10000, n_jobs=1) * scale))
    return peers


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = set_threads(args.threads)
    print_header("time_to_accuracy.py", threads, argv)
    if args.train_quick:
        args.data, args.root, args.codes, args.model = train_quick(Path(args.workdir), args.seed)
    if not (args.data and args.codes and args.model):
        sys.exit("give --data, --codes and --model, or --train-quick")
    dataset = load_prepared(args.data, root=args.root)
    codeset = load_codes(args.codes)
    rng = np.random.default_rng(args.seed)
    signals = np.asarray(dataset.signals("test"), dtype=np.float32)
    optimal = np.asarray(codeset.codes("test"), dtype=np.float32)
    rows = np.sort(rng.choice(len(signals), min(args.limit, len(signals)), replace=False))
    Y, X_opt = signals[rows], optimal[rows]
    Y_t = torch.from_numpy(Y)
    dicts, alphas = codeset.dictionaries, list(codeset.alphas)
    dicts_arg = dicts if len(dicts) > 1 else dicts[0]
    print(f"data {dataset.meta.get('name')} (stand-in: {dataset.meta.get('stand_in')}), "
          f"{len(Y)} test signals, M={Y.shape[1]}, N={X_opt.shape[1]}, alphas {alphas}")

    def classic(method: str, T: int, mu: float = 10.0) -> np.ndarray:
        with torch.inference_mode():
            return lsalsa.solve(Y_t, dicts_arg, alphas, method=method, n_iter=T, mu=mu
                                ).codes.numpy()

    table, summary = [], []
    for model_path in args.model:
        encoder = lsalsa.load_encoder(model_path)
        if encoder.kind != "lsalsa":
            sys.exit(f"{model_path} is a {encoder.kind} model; give LSALSA models")

        def run_encoder(encoder=encoder):
            with torch.inference_mode():
                return encoder(Y_t)
        target = rmse(run_encoder().numpy(), X_opt)
        base = median_time(run_encoder)
        T_model = encoder.depth
        print(f"\nLSALSA T={T_model}: RMSE {target:.5f} in {base * 1e3:.2f} ms", flush=True)
        results = [(f"LSALSA T={T_model}", T_model, target, base)]
        T, got = smallest_T(lambda T: rmse(classic("fista", T), X_opt), target, args.max_iter)
        seconds = median_time(lambda T=T: classic("fista", T)) if T else None
        results.append(("FISTA", T, got, seconds))
        best = None
        for mu in MU_GRID:
            T, got = smallest_T(lambda T, mu=mu: rmse(classic("salsa", T, mu), X_opt), target,
                                args.max_iter)
            print(f"  SALSA mu={mu}: T={T} (RMSE {got:.5f})", flush=True)
            if T is not None and (best is None or T < best[0]):
                best = (T, got, mu)
        if best is None:
            results.append(("SALSA", None, got, None))
        else:
            T, got, mu = best
            results.append((f"SALSA mu={mu:g}", T, got,
                            median_time(lambda T=T, mu=mu: classic("salsa", T, mu))))
        for name, T, got, seconds in results:
            table.append([f"T={T_model}", name, "-" if T is None else T, f"{got:.5f}",
                          "not reached" if seconds is None else f"{seconds * 1e3:.1f}",
                          "-" if seconds is None else f"{seconds / base:.1f}x"])
        summary.append((T_model, base))

    # Exact solvers, once: the time to the optimum itself (RMSE ~ 0), scaled to the test set.
    part = min(args.exact_limit, len(Y))
    scale = len(Y) / part
    for name, run in exact_peers(Y[:part], dicts, alphas, threads):
        start = time.perf_counter()
        codes = run()
        seconds = (time.perf_counter() - start) * scale
        # The alpha scaling check: the same objective (float64) as the stored optimum.
        dicts64 = [d.astype(np.float64) for d in dicts]
        dicts64 = dicts64 if len(dicts64) > 1 else dicts64[0]
        Y64 = Y[:part].astype(np.float64)
        cost = lsalsa.objective(Y64, np.asarray(codes, np.float64), dicts64, alphas).mean()
        ref = lsalsa.objective(Y64, X_opt[:part].astype(np.float64), dicts64, alphas).mean()
        check = f"{(cost - ref) / ref:+.1e}"
        for T_model, base in summary:
            table.append([f"T={T_model}", name + (" (scaled)" if scale > 1 else ""), "exact",
                          f"{rmse(codes, X_opt[:part]):.1e}", f"{seconds * 1e3:.1f}",
                          f"{seconds / base:.1f}x (objective vs stored optimum {check})"])
    print()
    print(markdown_table(["LSALSA", "method", "T", "RMSE", "time ms", "ratio to LSALSA"],
                         table))
    print(json.dumps({"threads": threads, "signals": len(Y)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
