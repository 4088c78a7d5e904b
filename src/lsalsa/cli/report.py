"""``lsalsa report RUN_DIR``: figures, tables, report.md and report.html from stored results."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write report.md / report.html of an experiment run directory",
        description="Read the stored results of `lsalsa experiment run` (results.json, eval/, "
                    "analysis/) and write figures/, tables/, report.md and report.html into "
                    "the run directory. Nothing is recomputed.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..workflow.report.document import write_report
    from ..workflow.steps import STEPS

    for path in write_report(args.run_dir, steps=STEPS):
        print(path)
    return 0
