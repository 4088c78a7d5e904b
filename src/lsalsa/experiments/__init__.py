"""The paper's experiments (Section 6): configs, the resumable runner, metrics and reports.

``lsalsa experiment run CONFIG --scale small|full`` / :func:`run_experiment`;
``lsalsa report RUN_DIR`` / :func:`write_report`.
"""

from .config import load_config, shipped
from .runner import STEPS, run_experiment

__all__ = ["STEPS", "load_config", "run_experiment", "shipped", "write_report"]


def write_report(run_dir):
    """Write figures, tables, report.md and report.html of a run directory (see .report)."""
    from .report import write_report as _write

    return _write(run_dir)
