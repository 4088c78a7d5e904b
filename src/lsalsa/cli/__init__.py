"""The ``lsalsa`` command line: one module per command group, each with ``register``.

Every command exits 0 on success; bad input prints one line ``lsalsa: error: ...`` to stderr
and exits 2, leaving no partial output (all writes are atomic). A failed write (full disk,
unwritable folder) exits 1, and so does a command whose training diverged (``lsalsa train``,
``lsalsa experiment run``, ``lsalsa demo``): it finishes, keeps the model of the best epoch
before the divergence, and prints one line ``lsalsa: warning: ...``. SIGTERM is handled like
Ctrl-C: the command's clean-up runs (temporary files and staging folders are removed) and it
exits 143 (128 + 15) with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from ..errors import InputError, TrainingDiverged
from ..version import __version__
from .common import with_flags

# Each module defines register(subparsers); a subcommand's handler is args.func(args).
COMMAND_MODULES = ["solve", "data", "dictionary", "codes", "train", "encode", "separate", "analyze",
                   "demo", "experiment", "report"]


class _Parser(argparse.ArgumentParser):
    """A usage error is one line too, as every other bad input (``--help`` shows the usage);
    the subcommands' parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lsalsa",
        description="Fast sparse coding and source separation with learned SALSA encoders.")
    parser.add_argument("--version", action="version", version=f"lsalsa {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    _name_flags(parser)
    return parser


def _name_flags(parser: argparse.ArgumentParser) -> None:
    """Give each command's parser its map from parameter to flag (``flag_names``), made from
    its own arguments (the long flag of the first that sets each ``dest``) under any it set
    itself: the library names parameters in its errors, and :func:`_run` writes them as this
    command's flags. A flag that sets the opposite or one constant (``--fixed-thresholds``,
    ``--quick``) does not stand for its parameter."""
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not commands:
        names: dict[str, str] = {}
        for action in parser._actions:
            one_value = isinstance(action, argparse._StoreConstAction) and not isinstance(
                action, argparse._StoreTrueAction)
            if action.option_strings and action.dest != "help" and not one_value:
                names.setdefault(action.dest, max(action.option_strings, key=len))
        parser.set_defaults(flag_names={**names, **(parser.get_default("flag_names") or {})})
    for action in commands:
        for command in action.choices.values():
            _name_flags(command)


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM, so that the clean-up of an interrupted write (``finally``) runs."""


def _terminate(signum, frame):
    # Once is enough: a second SIGTERM must not cut the clean-up short (SIGKILL still works).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (2 for a usage error, printed in one line)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error, --help or --version
        return int(exc.code or 0)
    # Python dies on SIGTERM without running any clean-up. Only the main thread may set a
    # handler, and a SIGTERM that our parent chose to ignore stays ignored.
    handle = threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    previous = signal.signal(signal.SIGTERM, _terminate) if handle else None
    try:
        return _run(args)
    finally:
        if handle:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _run(args) -> int:
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"lsalsa: error: {_one_line(with_flags(exc, args.flag_names))}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        print(f"lsalsa: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # full disk, unwritable folder, ...
        print(f"lsalsa: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except TrainingDiverged as exc:
        print(f"lsalsa: warning: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Terminated:
        print("lsalsa: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
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
