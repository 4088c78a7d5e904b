"""The search step: the learning rates (decays, thresholds' steps) of each learned method per
T, each encoder starting from its classic algorithm's best setting (``search/<method>/``); skipped
for a method whose grid holds one setting, and for one trained on the components."""

from __future__ import annotations

from ...core.training.search import LEARNED_METHODS, threshold_steps
from ..config import alpha_grid
from ..search import search
from . import classic
from .context import Run
from .train import lr_grid, train_options


def run(run: Run) -> dict:
    c = run.config
    s = c.search
    depths, alphas, seed, options = c.depths, alpha_grid(c), c.seed, train_options(c)
    trials = 0
    for method in s.learned:
        lrs = lr_grid(c, method)
        # The search scores trials by code RMSE: a method trained on the components is not
        # searched and trains at the grid's first setting.
        steps = threshold_steps(method, s.threshold_lrs)
        if (len(lrs) * len(s.lr_decays) * len(steps) == 1
                or LEARNED_METHODS[method].objective != "codes"):
            continue
        fv = run.fit_val()
        result = search(fv.signals, fv.references, fv.val_signals, fv.val_references, run.blocks(),
                        depths=depths, alphas=alphas, methods=(method,), mus=s.mus,
                        lrs=lrs, lr_decays=s.lr_decays, threshold_lrs=s.threshold_lrs,
                        epochs=s.epochs, untied=s.untied,
                        train_options=options, starts=classic.starts(run.dir), seed=seed,
                        device=run.device, run_dir=run.dir / "search" / method,
                        progress=run.sink)
        trials += len(result.rows)
    return {"trials": trials}
