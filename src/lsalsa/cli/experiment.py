"""``lsalsa experiment run CONFIG``, ``lsalsa experiment list`` and ``lsalsa experiment
schema``: the paper's experiments, and the JSON Schema of their config files.

``run`` executes data preparation, dictionaries, optimal codes, the per-T search, training,
evaluation, analysis and the report into a run directory; finished steps are reused when the
same command runs again (see :mod:`lsalsa.workflow.pipeline`). A run in which a training
diverged finishes (each model keeps its best epoch) and exits 1 (see :mod:`lsalsa.cli`).
"""

from __future__ import annotations

import sys
import textwrap

from ..workflow.config import ExperimentConfig
from .common import check_training
from .options import add_option_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="run the paper's experiments (Section 6) end to end",
        description="Run a shipped experiment (or a JSON config) end to end into a run "
                    "directory, resumably, or list the shipped experiments.")
    sub = parser.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)
    run_parser = sub.add_parser(
        "run", help="run (or resume) an experiment",
        description="Data -> dictionaries -> optimal codes -> per-T search -> training of "
                    "LISTA and LSALSA -> evaluation of FISTA, SALSA, LISTA, LSALSA -> analysis "
                    "-> report.md. Rerunning the same command reuses finished steps.")
    run_parser.add_argument("config", metavar="CONFIG",
                            help="a shipped experiment name (see `lsalsa experiment list`) or "
                                 "a path to a JSON config")
    add_option_flags(run_parser, ExperimentConfig, ("scale",))
    run_parser.add_argument("--run-dir", default=None,
                            help="run directory (default runs/<name>-<scale>)")
    run_parser.add_argument("--data-dir", default=None,
                            help="folder with canonical raw data (else LSALSA_DATA, the cache "
                                 "and the offline stand-ins)")
    run_parser.add_argument("--quiet", action="store_true", help="no progress output")
    # a run prepares its data from files already here; lsalsa data prepare fetches them
    run_parser.set_defaults(func=run_run,
                            flag_names={"download": "lsalsa data prepare --download"})
    list_parser = sub.add_parser("list", help="list the shipped experiments")
    list_parser.set_defaults(func=run_list)
    schema_parser = sub.add_parser(
        "schema", help="print the JSON Schema of a config file (for editors)",
        description="Print the JSON Schema (draft 2020-12) of an experiment config file, made "
                    "from the configs' own declarations: types, bounds, choices, defaults.")
    schema_parser.set_defaults(func=run_schema)


def run_run(args) -> int:
    from ..workflow.config import load_experiment
    from ..workflow.pipeline import run_experiment

    config = load_experiment(args.config, args.scale)
    run_dir = args.run_dir or f"runs/{config.name}-{args.scale}"
    log = (lambda message: None) if args.quiet else None
    out = run_experiment(config, run_dir, data_dir=args.data_dir,
                         progress=not args.quiet, log=log)
    print(out / "report.md")
    check_training(out)
    return 0


def run_list(args) -> int:
    from ..workflow.config import load_experiment, shipped
    from ..workflow.data import available

    status = {row["name"]: row["status"] for row in available()}
    for name in shipped():
        config = load_experiment(name, "full")
        data = status.get(config.dataset, "?")
        sys.stdout.write(f"{name:20s} {config.kind:4s} data {config.dataset} ({data}): "
                         f"{textwrap.shorten(config.description, 70)}\n")
    return 0


def run_schema(args) -> int:
    from ..workflow.config.schema import schema_text

    sys.stdout.write(schema_text())
    return 0
