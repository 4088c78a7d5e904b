"""``lsalsa analyze``: check Theorem 1 and report the learned curvature of an LSALSA model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import checks
from ..core.encoders import read_model_header
from ..core.theory import theorem1_verdict
from ..errors import InputError
from ..io import read_array
from ..workflow.analysis import AnalysisSettings, analyze
from ..workflow.data.prepared import SPLITS
from .options import add_option_flags, option_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze", help="check Theorem 1 and show the learned curvature of an LSALSA model",
        description="For a trained LSALSA model: the x-gradient of the learned augmented "
                    "Lagrangian at every layer's x-update (Theorem 1), the learned curvature "
                    "P = S^-1 - (mu I + A^T A), symmetry and definiteness of S, and beta-hat "
                    "against beta. Writes analysis.json, analysis.md and figures to --out.")
    parser.add_argument("model", help="LSALSA model file (.safetensors)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PREPARED",
                        help="prepared data set (folder or name); its test signals are used")
    source.add_argument("--signals", metavar="X.npy", help="signals (B, M) as a .npy file")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: MODEL without suffix + '-analysis')")
    add_option_flags(parser, AnalysisSettings, option_names(AnalysisSettings))
    add_option_flags(parser, SignalSettings, option_names(SignalSettings))
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class SignalSettings:
    """Which signals the command analyses, besides a file: a split of --data, or synthetic
    ones for the model's dictionary."""

    split: str = checks.rule(checks.one_of, "test", choices=SPLITS,
                             help="the split of --data")
    synthetic: int = checks.rule(checks.positive_int, 256,
                                 help="without --data or --signals: this many synthetic "
                                      "signals y = A x (x sparse, drawn with --seed)")


def _synthetic_signals(model: str, count: int, seed: int) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(model, framework="np") as handle:
        A = handle.get_tensor("dictionary").astype(np.float64)
    rng = np.random.default_rng(seed)
    N = A.shape[1]
    # About 10% non-zeros: a generic sparse-coding input for the model's dictionary.
    X = rng.standard_normal((count, N)) * (rng.random((count, N)) < 0.1)
    return X @ A.T


def run(args) -> int:
    model = args.model
    read_model_header(model)  # a missing or foreign file fails here, before it is read for data
    out = Path(args.out) if args.out else Path(model).with_suffix("").with_name(
        Path(model).with_suffix("").name + "-analysis")
    if args.data is not None:
        try:
            from ..workflow.data import load_prepared
        except ImportError as exc:
            raise InputError(f"prepared data sets are not available: {exc}") from exc
        dataset = load_prepared(args.data)
        signals = dataset.signals(args.split)
        source = f"prepared data set {dataset.meta.get('name', args.data)}, {args.split} split"
        if dataset.meta.get("stand_in"):
            source += " (offline stand-in)"
    elif args.signals is not None:
        signals = read_array(args.signals, "signals", mmap=True)
        source = f"{args.signals}"
    else:
        count = args.synthetic
        signals = _synthetic_signals(model, count, args.seed)
        source = f"{count} synthetic signals y = A x, 10% non-zeros, seed {args.seed}"
    result = analyze(model, signals, out, n_samples=args.n_samples, seed=args.seed,
                     source=source)
    check, curvature = result["theorem1"], result["curvature"]
    print(f"wrote {out}/analysis.json, analysis.md and figures")
    print(theorem1_verdict(check))
    print(f"Curvature: ||P||_2/||H||_2 = {curvature['P_rel2']:.3g}; beta_hat = "
          f"{curvature['beta_hat']:.6g} vs beta = {curvature['beta']:.6g}; S symmetric: "
          f"{curvature['S_symmetric']}, positive definite: {curvature['S_positive_definite']}")
    return 0
