"""The data step: prepare the experiment's data set inside the run directory."""

from __future__ import annotations

from ..data import prepare
from ..data.prepared import read_meta
from .context import Run


def run(run: Run) -> dict:
    c = run.config
    dataset, seed, limit_images = c.dataset, c.seed, c.prepare.limit_images
    path = prepare(dataset, root=run.dir / "data", data_dir=run.data_dir, seed=seed,
                   limit_images=limit_images, progress=run.bars, stride=c.prepare.stride)
    meta = read_meta(path / "meta.json")
    return {"path": str(path.relative_to(run.dir)), "stand_in": meta.get("stand_in"),
            "label": meta.get("label"), "counts": meta.get("counts")}
