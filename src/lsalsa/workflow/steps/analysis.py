"""The analysis step: Theorem 1 and the learned curvature of every trained LSALSA
(:func:`lsalsa.workflow.analysis.analyze`), on the test signals -> ``analysis/lsalsa_T<T>/``."""

from __future__ import annotations

import numpy as np

from ..analysis import analyze
from .context import Run
from .train import model_path


def run(run: Run) -> dict:
    c = run.config
    depths, samples, seed, dataset = (c.depths, c.evaluation.analysis_samples, c.seed,
                                      c.dataset)
    Y = run.split_arrays("test")["signals"].astype(np.float64)
    summary = {}
    for T in depths:
        out = run.dir / "analysis" / f"lsalsa_T{T}"
        if not (out / "analysis.json").is_file():
            analyze(model_path(run.dir, "lsalsa", T), Y, out, n_samples=samples, seed=seed,
                    source=f"{dataset} test signals")
        summary[str(T)] = str(out.relative_to(run.dir))
    return {"analysis": summary}
