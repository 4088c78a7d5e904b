"""The codes step: exact optimal codes of every split for the learned dictionaries."""

from __future__ import annotations

from ...io import load_npy
from ..code_sets import compute_split_codes, save_codes
from .context import Run
from .dictionaries import dictionary_file


def run(run: Run) -> dict:
    c = run.config
    alphas, mode, tol, mu, seed = c.alphas, c.codes.mode, c.codes.tol, c.mu, c.seed
    blocks = [load_npy(dictionary_file(run.dir, i)) for i in range(len(alphas))]
    codes, stats = compute_split_codes(run.dataset, run.dataset.splits, blocks, alphas,
                                       mode=mode, tol=tol, progress=run.sink, mu=mu)
    for split in codes:
        run.log(f"optimal codes {split}: {codes[split].shape}, sparsity "
                f"{float((codes[split] == 0).mean()):.3f}")
    meta = run.dataset.meta
    save_codes(run.dir / "codes", codes, blocks, alphas, stats=stats,
               data={"path": str(run.dataset.path), "name": meta["name"],
                     "stand_in": meta.get("stand_in"), "label": meta.get("label")},
               seed=seed, overwrite=True)
    return {"gap": {s: stats[s]["gap"] for s in stats},
            "sparsity": {s: float((codes[s] == 0).mean()) for s in codes}}
