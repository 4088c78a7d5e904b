"""The report step: figures, tables, report.md and report.html, drawn from the stored results
only (:mod:`lsalsa.workflow.report.document`); rewritten on every run."""

from __future__ import annotations

from ..report.document import write_report
from . import STEPS
from .context import Run


def run(run: Run) -> dict:
    paths = write_report(run.dir, steps=STEPS)
    return {"files": [str(p.relative_to(run.dir)) for p in paths]}
