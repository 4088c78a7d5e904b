"""The analysis step: check Theorem 1 and measure the learned curvature of a stored LSALSA
model, and write the analysis folder (``analysis.json``, ``analysis.md`` and the figures).

The numbers are :mod:`lsalsa.core.theory`'s; the figures and the Markdown are drawn from the
stored result by :mod:`lsalsa.workflow.report.theory`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checks import Settings, non_negative_int, positive_int, rule
from ..core._arrays import as_real
from ..core.encoders import load_encoder, read_model_header
from ..core.theory import DEFAULT_SAMPLES, curvature_report, pick_samples, theorem1_check
from ..errors import InputError
from ..io import remove_stale_temporaries, write_json, write_text
from ..version import provenance
from .report.theory import FIGURES, analysis_figures, analysis_markdown, save_figure


@dataclass(frozen=True)
class AnalysisSettings(Settings):
    """The options of :func:`analyze`, declared once (``lsalsa analyze`` makes its flags from
    them), checked when made."""

    n_samples: int | None = rule(positive_int, DEFAULT_SAMPLES, none=True,
                                 help="signals used for the Theorem 1 check, drawn without "
                                      "replacement ('none': all)")
    seed: int = rule(non_negative_int, 0, help="seed of the draw of the signals")


def analyze(model_path: str | os.PathLike, signals, out_dir: str | os.PathLike, *,
            n_samples: int | None = AnalysisSettings.n_samples,
            seed: int = AnalysisSettings.seed, source: str | None = None) -> dict:
    """Analyse an LSALSA model file and write ``analysis.json``, ``analysis.md`` and figures.

    Parameters
    ----------
    model_path : a model saved by :meth:`lsalsa.UnrolledEncoder.save` (LSALSA only)
    signals : (B, M) array of inputs for the Theorem 1 check
    out_dir : folder for the outputs (created; existing files of the same names replaced)
    n_samples : use at most this many signals, drawn without replacement with ``seed``
        (None: all)
    source : a description of where the signals came from, for the report

    Every input is checked before anything is written, and each file is written atomically.
    Returns the dict stored in ``analysis.json``.
    """
    config, extra = read_model_header(model_path)
    if config.get("kind") != "lsalsa":
        raise InputError(f"analyze needs an LSALSA model; {model_path} is a "
                         f"{config.get('kind')!r} model")
    AnalysisSettings(n_samples=n_samples, seed=seed)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out_dir} exists and is not a directory")
    encoder = load_encoder(model_path)
    Y = signals.detach().cpu().numpy() if isinstance(signals, torch.Tensor) else signals
    if not isinstance(Y, np.ndarray) or Y.ndim != 2 or Y.shape[1] != config["M"]:
        shape = getattr(Y, "shape", None)
        raise InputError(f"signals must have shape (B, {config['M']}) for this model, got "
                         f"{tuple(shape) if shape is not None else type(Y).__name__}")
    Y, picked = pick_samples(Y, n_samples, seed)
    # A writable copy, also of a memory-mapped file; complex or text signals are refused.
    Y = np.array(as_real(Y, np.float64, "signals"))
    check = theorem1_check(encoder, Y)
    curvature = curvature_report(encoder)
    result = {
        "model": str(model_path), "model_config": config, "model_extra": extra,
        "signals": f"{source or 'given array'} ({picked})", "theorem1": check,
        "curvature": curvature, "figures": dict(FIGURES), "provenance": provenance(),
    }
    if not all(math.isfinite(e["residual_max"]) for e in check["layers"]):
        raise InputError(f"{model_path}: the Theorem 1 residual is not finite (singular S?)")
    figures = analysis_figures(result)  # drawn before the folder is touched
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # what killed runs left behind
    for name, fig in figures.items():
        save_figure(fig, out / FIGURES[name])
    write_text(out / "analysis.md", analysis_markdown(result))
    write_json(out / "analysis.json", result)
    return result
