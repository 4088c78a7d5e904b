"""The dictionaries step: one dictionary per component (paper Eq. 5; for MCA Eq. 8, each from
its own clean component), learned resumably, and a figure of its atoms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...io import load_npy
from ..dictionaries import learn_with_checkpoints, save_dictionary
from ..report.atoms import plot_atoms
from .context import Run

COMPONENTS = {"sc": ["patches"], "mca": ["digits", "natural"]}


def run(run: Run) -> dict:
    c, d = run.config, run.config.dictionary
    kind, seed, name = c.kind, c.seed, c.name
    side = tuple(run.dataset.meta["patch_shape"])
    out = run.dir / "dictionaries"
    info = []
    for i, component in enumerate(COMPONENTS[kind]):
        target = dictionary_file(run.dir, i)
        if not (target.is_file() and target.with_suffix(".json").is_file()):
            _, signals = run.dataset.training_signals(None if kind == "sc" else i,
                                                      d.max_signals, seed)
            run.log(f"dictionary {i} ({component}): {d.atoms[i]} atoms on {len(signals)} "
                    "signals")
            result = learn_with_checkpoints(
                np.array(signals, dtype=np.float32), d.atoms[i], d.alpha[i],
                epochs=d.epochs, batch_size=d.batch_size, lr=d.lr, seed=seed + i,
                n_iter_codes=d.n_iter_codes, checkpoint_dir=out / f"checkpoint_{i}",
                progress=run.sink, device=run.device)
            save_dictionary(target, result, extra={"component": component,
                                                   "signals": len(signals)})
        A = load_npy(target)
        plot_atoms(A, run.dir / "figures" / f"atoms_{i}.png", side,
                   title=f"{name}: dictionary {i} ({component}), {A.shape[1]} atoms")
        info.append({"component": component, "file": str(target.relative_to(run.dir)),
                     "shape": list(A.shape), "figure": f"figures/atoms_{i}.png"})
    return {"dictionaries": info}


def dictionary_file(run_dir: Path, component: int) -> Path:
    """Where the dictionary of ``component`` is stored (its sidecar ``.json`` beside it)."""
    return Path(run_dir) / "dictionaries" / f"dictionary_{component}.npy"
