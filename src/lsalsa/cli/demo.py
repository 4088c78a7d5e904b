"""``lsalsa demo``: the main job on offline data (see :mod:`lsalsa.apps.demo`)."""

from __future__ import annotations

from ..workflow.config import ExperimentConfig
from .common import check_training
from .options import add_option_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="separate MNIST digits from natural images, end to end, offline",
        description="Prepare the offline MCA data, learn small dictionaries, compute exact "
                    "codes, train LSALSA and separate held-out mixtures (a small config of "
                    "`lsalsa experiment run`); a rerun reuses the finished steps.")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/demo, runs/demo-quick with --quick, "
                             "runs/demo-SCALE at another scale)")
    scale = parser.add_mutually_exclusive_group()
    add_option_flags(scale, ExperimentConfig, ("scale",))
    quick = scale.add_argument("--quick", dest="scale", action="store_const", const="small",
                               help="a reduced run of about a minute: --scale small")
    quick.declared_by = ExperimentConfig  # a name for one value of the declared option
    parser.add_argument("--data-dir", default=None,
                        help="folder with canonical raw data (else LSALSA_DATA, the cache and "
                             "the offline stand-ins)")
    parser.add_argument("--quiet", action="store_true", help="no output")
    # the demo prepares its data from files already here; lsalsa data prepare fetches them
    parser.set_defaults(func=run, flag_names={"out_dir": "--out",
                                              "download": "lsalsa data prepare --download"})


def run(args) -> int:
    from ..apps.demo import DEFAULT_OUT, run_demo

    out = args.out or DEFAULT_OUT[args.scale]
    run_demo(out, scale=args.scale, data_dir=args.data_dir, quiet=args.quiet)
    check_training(out)
    return 0
