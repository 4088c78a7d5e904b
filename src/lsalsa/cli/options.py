"""Command-line flags made from the library's declared options.

A dataclass such as :class:`lsalsa.core.training.TrainSettings` declares each option once, as a
:func:`lsalsa.checks.rule`: its check, default and help. :func:`add_option_flags` turns such
fields into argparse flags: the type, the choices, the default and the help come from the
field, so a command declares none of them again, and the library's own check still judges
every value (its error names the parameter; the command maps it to the flag).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable

from .. import checks
from ..errors import InputError


def option_names(model, *, but: Iterable[str] = ()) -> tuple[str, ...]:
    """Every option the dataclass ``model`` declares, in order, but those in ``but``."""
    return tuple(f.name for f in dataclasses.fields(model) if f.name not in set(but))


def option_flag(name: str, flags: dict[str, str] | None = None) -> str:
    """The flag of option ``name``: ``flags[name]``, else ``--`` and the name with dashes."""
    return (flags or {}).get(name) or "--" + name.replace("_", "-")


def add_option_flags(parser, model, names: Iterable[str], *,
                     flags: dict[str, str] | None = None, required: Iterable[str] = (),
                     lists: str = "append") -> None:
    """One flag per option ``names`` of the dataclass ``model`` (``flags`` renames some; the
    ``required`` ones have no default).

    A true/false option becomes a switch that turns its default over (so a flag for a
    default-true option should be named ``--no-...``); a list option is repeated, once per
    item (``lists="append"``), or takes its items after one flag (``lists="nargs"``); an
    option that may be None reads ``none`` as None. Every value is checked as it is read, by
    the option's own check: a value it refuses is a usage error naming the flag."""
    declared = {field.name: field for field in dataclasses.fields(model)}
    for name in names:
        flag = option_flag(name, flags)
        argument = _argument(declared[name], flag, lists)
        if name in required:
            argument = {**argument, "required": True, "default": None}
            argument["help"] = argument["help"].rsplit(" (default", 1)[0]
        action = parser.add_argument(flag, dest=name, **argument)
        action.declared_by = model  # where the option is declared (tests walk the parsers)


def _argument(field: dataclasses.Field, flag: str, lists: str) -> dict:
    check = field.metadata["check"]
    func, options = check.func, check.keywords
    default, help_text = field.default, field.metadata.get("help", "")
    if default is dataclasses.MISSING:  # a required option: add_option_flags says so
        default = None
    if func is checks.flag:
        if default:
            return {"action": "store_false", "help": f"turn off: {help_text} (on by default)"}
        return {"action": "store_true", "help": f"{help_text} (the default: off)"}
    metavar = flag.lstrip("-").replace("-", "_").upper()
    if func is checks.non_empty_list:  # its help says what no value means
        each = options["each"]
        # Appending adds to the default's items: only a list given after one flag may
        # replace a default that has any.
        many = ({"action": "append", "default": default} if lists == "append" else
                {"nargs": "+", "default": list(default) if default is not None else None})
        if lists != "append" and default is not None:
            help_text = f"{help_text} (default {' '.join(map(str, default))})"
        if getattr(each, "func", None) is checks.one_of:
            choices = tuple(each.keywords["choices"])
            return {**many, "choices": choices, "metavar": metavar,
                    "help": f"{help_text}; among {', '.join(choices)}"}
        return {**many, "type": _reader(_number_type(each), each, flag), "metavar": metavar,
                "help": help_text}
    shown = "none" if default is None else f"{default:g}" if isinstance(default, float) \
        else default
    help_text = f"{help_text} (default {shown})"
    if func is checks.one_of:
        return {"choices": tuple(options["choices"]), "default": default, "help": help_text}
    return {"type": _reader(_number_type(func), check, flag), "default": default,
            "metavar": metavar, "help": help_text}


# Checks that read a value from text themselves.
TEXT_CHECKS = (checks.text, checks.image_shape)


def _number_type(check: Callable) -> type:
    if check in TEXT_CHECKS:
        return str
    return int if check in checks.INTEGER_CHECKS else float  # every other number: a float


def _reader(parse: type, check: Callable, flag: str) -> Callable[[str], object]:
    """argparse's ``type``: the text parsed (``none`` is None) and judged by ``check``."""
    def read(text: str):
        value = None
        if text.lower() != "none":
            try:
                value = parse(text)
            except ValueError:
                value = text  # refused below, quoted as typed
        try:
            return check(value, flag)
        except InputError as exc:  # "--x must be ..., got ..." -> "expected ..., got ..."
            reason = str(exc).split(" must be ", 1)
            if len(reason) == 1:
                raise argparse.ArgumentTypeError(str(exc)) from exc
            what, _, got = reason[1].rpartition(", got ")
            either = " or 'none'" if getattr(check, "keywords", {}).get("none") else ""
            raise argparse.ArgumentTypeError(f"expected {what}{either}, got {got}") from exc

    return read
