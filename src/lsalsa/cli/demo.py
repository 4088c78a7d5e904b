"""``lsalsa demo``: the main job on offline data (see :mod:`lsalsa.apps.demo`)."""

from __future__ import annotations

from .common import check_training


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="separate MNIST digits from natural images, end to end, offline",
        description="Prepare the offline MCA data, learn small dictionaries, compute exact "
                    "codes, train LSALSA and separate held-out mixtures (a small config of "
                    "`lsalsa experiment run`); a rerun reuses the finished steps.")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/demo, with --quick runs/demo-quick)")
    parser.add_argument("--quick", action="store_true", help="a reduced run (about a minute)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with canonical raw data (else LSALSA_DATA, the cache and "
                             "the offline stand-ins)")
    parser.add_argument("--quiet", action="store_true", help="no output")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..apps.demo import run_demo

    # One folder per scale, as `experiment run` does: a run directory holds one configuration.
    out = args.out or ("runs/demo-quick" if args.quick else "runs/demo")
    run_demo(out, quick=args.quick, data_dir=args.data_dir, quiet=args.quiet)
    check_training(out)
    return 0
