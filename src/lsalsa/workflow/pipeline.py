"""Run one experiment of Section 6 end to end into a run directory, resumably.

The steps (:data:`STEPS`, one module each in :mod:`lsalsa.workflow.steps`) run in order; each
writes its outputs, then ``steps/<step>.json``, and a rerun skips the finished ones (the report
is always redrawn). ``config.json`` (the resolved configuration), ``provenance.json`` and
``seed.json`` are recorded at the start; a run directory holding another configuration is
refused (:class:`lsalsa.workflow.rundir.RunDir`). The steps read the typed config
(:class:`lsalsa.workflow.config.ExperimentConfig`, held by :class:`.steps.context.Run`).
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import torch

from ..core import metrics
from .config import ExperimentConfig, load_experiment
from .steps import STEPS
from .steps.context import Run

__all__ = ["STEPS", "diverged_models", "run_experiment"]

# Each step is the module of its name in lsalsa.workflow.steps.
STEP_MODULES = {step: importlib.import_module(f".steps.{step}", __package__) for step in STEPS}
# A later step's outputs depend on the earlier ones: the report is always rewritten.
ALWAYS_RERUN = ("report",)


def run_experiment(config, run_dir, *, scale: str = "full", data_dir=None,
                   progress: bool = True, log=None) -> Path:
    """Run (or resume) an experiment; return the run directory.

    Parameters
    ----------
    config : a shipped configuration name (``lsalsa experiment list``), a JSON path, or a
        loaded :class:`~lsalsa.workflow.config.ExperimentConfig` (then ``scale`` is its own).
    run_dir : the run directory (created; a rerun reuses finished steps).
    scale : one of ``SCALES`` (the configuration's ``scales`` overrides).
    data_dir : folder with canonical raw data (passed to :func:`lsalsa.workflow.data.prepare`).
    progress : tqdm bars on a terminal.
    log : callable taking one line of progress text (default: print to stderr).
    """
    if not isinstance(config, ExperimentConfig):
        config = load_experiment(config, scale)
    run = Run(run_dir, config, data_dir=data_dir, progress=progress, log=log).open()
    # The run's thread count and seed hold inside it only; the caller's are restored after.
    with metrics.torch_threads(config.threads), torch.random.fork_rng():
        torch.manual_seed(config.seed)
        for step in STEPS:
            run_step(run, step)
    return run.dir


def run_step(run: Run, step: str) -> None:
    """Run ``step`` unless it finished before, and leave its marker."""
    if run.files.done(step) and step not in ALWAYS_RERUN:
        run.log(f"step {step}: done before, reused")
        return
    run.log(f"step {step} ...")
    began = time.perf_counter()
    info = STEP_MODULES[step].run(run)
    seconds = time.perf_counter() - began
    run.files.mark(step, seconds, **info)
    run.log(f"step {step} finished in {seconds:.1f} s")


def diverged_models(run_dir) -> list[str]:
    """The trained models of a finished run whose training diverged (each holds its best
    validation epoch; the stop reason is in ``results.json``)."""
    results = json.loads((Path(run_dir) / "results.json").read_text())
    return [name for name, info in (results.get("training") or {}).items()
            if info.get("stopped") == "diverged"]
