"""The classic step: FISTA and SALSA tuned per T on validation, the starts of the learned
encoders, and MCA's separation baselines, into ``classic.json``.

- For every T of the dense list (1 to ``dense_max``), the (alpha, mu) with the lowest
  validation RMSE over the search grid, and the test curve with those settings (nothing is
  selected on the test split).
- The settings LISTA (ISTA's) and LSALSA (SALSA's) start from at each learned depth.
- For MCA, the SALSA settings with the best validation PSNR (the separation baselines): the mu
  at the optimal codes' alphas, and the (alpha, mu) of the whole grid.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from ...core import metrics
from ...core.training import best_classic
from ...core.training.search import classic_settings, selected_curves
from ...io import write_json
from ..config import CLASSIC, PSNR_BASELINES, alpha_grid, dense_depths
from .context import Run

FILE = "classic.json"


def run(run: Run) -> dict:
    c = run.config
    depths, dense, alphas, grid, mus = (c.depths, dense_depths(c), c.alphas, alpha_grid(c),
                                        c.search.mus)
    fv = run.fit_val()
    val = (fv.val_signals, fv.val_references)
    test = (torch.from_numpy(run.split_arrays("test")["signals"].astype(np.float32)).to(
        run.device), torch.from_numpy(np.array(run.codeset.codes("test"))).to(run.device))
    blocks = [torch.from_numpy(d).to(run.device) for d in run.blocks()]
    out: dict = {"dense_depths": dense}
    for method in CLASSIC:
        out[method] = dense_curve(val, test, blocks, method, dense, grid, mus)
        run.log(f"{method}: dense curve over {len(dense)} depths, "
                f"{len(out[method]['grid'])} settings")
    # ISTA has no curve of its own in the report: it is where LISTA starts.
    ista = best_classic(*val, blocks, "ista", depths, grid)
    salsa = out["salsa"]
    out["starts"] = {"ista": {str(T): v for T, v in ista.items()},
                     "salsa": {str(T): {**salsa["hyper"][dense.index(T)],
                                        "val_rmse": salsa["val_rmse"][dense.index(T)]}
                               for T in depths}}
    if c.kind == "mca" and "val" in run.dataset.splits:
        grids = {"codes_alphas": classic_settings("salsa", [alphas], mus),
                 "any_alpha": salsa["grid"]}
        out.update(psnr_baselines(run.split_arrays("val"), blocks, grids, depths))
    write_json(run.dir / FILE, out)
    return {"file": FILE}


def dense_curve(val, test, blocks, method: str, dense, alphas, mus) -> dict:
    """Per depth of ``dense``, the setting of lowest validation RMSE, and its test curve."""
    settings = classic_settings(method, alphas, mus)
    curve = selected_curves(val, test, blocks, method, dense, settings)
    return {"T": dense, "val_rmse": curve["val_rmse"].tolist(),
            "rmse_mean": curve["rmse"].tolist(), "sparsity_mean": curve["sparsity"].tolist(),
            "hyper": [settings[k] for k in curve["choice"].tolist()], "grid": settings}


def psnr_baselines(val: dict, blocks, grids: dict, depths) -> dict:
    """SALSA per depth at the setting of each grid with the best mean validation PSNR,
    under its results key (:data:`lsalsa.workflow.config.PSNR_BASELINES`)."""
    signals = val["signals"].astype(np.float32)
    truth = [val[f"component{i}"] for i in range(len(blocks))]
    out = {}
    for kind, grid in grids.items():
        chosen = metrics.salsa_by_psnr(signals, truth, blocks, grid, depths)
        out[PSNR_BASELINES[kind]] = {str(T): v for T, v in chosen.items()}
    return out


def read(run_dir) -> dict:
    """The stored ``classic.json``."""
    return json.loads((run_dir / FILE).read_text())


def starts(run_dir) -> dict[tuple[str, int], dict]:
    """``{(classic method, T): setting}``: where each learned encoder starts."""
    return {(method, int(T)): v for method, by_T in read(run_dir)["starts"].items()
            for T, v in by_T.items()}
