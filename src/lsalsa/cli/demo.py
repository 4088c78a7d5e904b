"""``lsalsa demo``: the main job on offline data (see :mod:`lsalsa.apps.demo`)."""

from __future__ import annotations

from ..apps.demo import DemoConfig, run_demo


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="separate MNIST digits from natural images, end to end, offline",
        description="Prepare the offline MCA data, learn small dictionaries, compute exact "
                    "codes, train LSALSA and separate held-out mixtures; results are reused "
                    "by later runs with the same settings.")
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a reduced run (about a minute)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    config = DemoConfig.quick() if args.quick else DemoConfig()
    run_demo(args.out, config, quiet=args.quiet)
    return 0
