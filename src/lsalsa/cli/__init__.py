"""The ``lsalsa`` command line: one module per command group, each with ``register``.

Every command exits 0 on success; bad input prints one line ``lsalsa: error: ...`` to stderr
and exits 2, leaving no partial output (all writes are atomic).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InputError
from ..version import __version__

# Each module defines register(subparsers); a subcommand's handler is args.func(args).
COMMAND_MODULES = ["solve", "data", "dictionary", "codes", "train", "encode", "separate", "analyze",
                   "demo", "experiment", "report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsalsa",
        description="Fast sparse coding and source separation with learned SALSA encoders.")
    parser.add_argument("--version", action="version", version=f"lsalsa {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (InputError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError) as exc:
        print(f"lsalsa: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # full disk, unwritable folder, ...
        print(f"lsalsa: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lsalsa: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
