"""One vocabulary of constraints for parameters, configs and the fields of stored files.

Every check takes the value and the name a user knows it by, and returns the value in its plain
Python type, or raises :class:`InputError` in one line naming that field. The rules are the same
everywhere:

- a bool is never a number (``True`` is a stray flag, not 1), and a string is never coerced
  (a JSON ``"10"`` is a mistake);
- NumPy scalars count as numbers (they come from arrays and configs);
- numbers must be finite.

Frozen dataclasses declare their constraints once, on the fields, with :func:`rule`, and call
:func:`check_fields` in ``__post_init__``. A list is checked item by item under its own name
(``search.lrs must be a number in (0, 1e+06], got 1e+300``: the value shown is the item at
fault).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import numpy as np

from .errors import InputError


# -- predicates, for collecting every fault of a stored file (see also :func:`fault`) -----------
def is_integer(value, low: int | None = None, high: int | None = None) -> bool:
    """An integer (not a bool) in [low, high]."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) \
        and (low is None or value >= low) and (high is None or value <= high)


def is_number(value) -> bool:
    """A finite real number, not a bool (np.bool_ is no numbers.Real; bool is)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def fault(check: Callable, value, name: str, **options) -> str | None:
    """The one-line message of ``check(value, name, **options)``, or None when it passes."""
    try:
        check(value, name, **options)
    except InputError as exc:
        return str(exc)
    return None


# -- checks -------------------------------------------------------------------------------------
def integer(value, name: str, *, low: int | None = None, high: int | None = None,
            none: bool = False) -> int | None:
    """An integer in [low, high] (either bound may be absent); None passes when ``none``."""
    if value is None and none:
        return None
    if not is_integer(value, low, high):
        raise InputError(f"{name} must be {_int_range(low, high)}, got {value!r}")
    return int(value)


def positive_int(value, name: str, *, none: bool = False) -> int | None:
    return integer(value, name, low=1, none=none)


def non_negative_int(value, name: str, *, none: bool = False) -> int | None:
    return integer(value, name, low=0, none=none)


def number(value, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False,
           none: bool = False) -> float | None:
    """A finite number in [low, high]; ``low_open`` / ``high_open`` leave a bound out."""
    if value is None and none:
        return None
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise InputError(f"{name} must be {_number_range(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    return float(value)


def positive_number(value, name: str, *, none: bool = False) -> float | None:
    return number(value, name, low=0, low_open=True, none=none)


def non_negative_number(value, name: str, *, none: bool = False) -> float | None:
    return number(value, name, low=0, none=none)


def one_of(value, name: str, *, choices: Sequence, none: bool = False) -> object:
    if value is None and none:
        return None
    try:
        found = not isinstance(value, bool | np.bool_) and value in choices
    except TypeError:  # a JSON list or object, looked up among a dict's keys
        found = False
    if not found:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}, "
                         f"got {value!r}")
    return value


def text(value, name: str, *, empty: bool = False, none: bool = False) -> str | None:
    """A string; empty only when ``empty``."""
    if value is None and none:
        return None
    if not isinstance(value, str) or not (value or empty):
        raise InputError(f"{name} must be a {'' if empty else 'non-empty '}string, "
                         f"got {value!r}")
    return value


def image_shape(value, name: str, *, none: bool = False) -> tuple[int, int] | None:
    """An image's (rows, cols), each >= 1: a pair of integers, or the text a command line
    gives, such as ``"10x12"``."""
    if value is None and none:
        return None
    pair = value if isinstance(value, list | tuple) else ()
    if isinstance(value, str):
        parts = value.lower().split("x")
        pair = [int(v) for v in parts if v.strip().lstrip("-").isdigit()]
        pair = pair if len(pair) == len(parts) else ()
    rows, cols = pair if len(pair) == 2 else (None, None)
    if not (is_integer(rows, 1) and is_integer(cols, 1)):
        raise InputError(f"{name} must be rows x cols, two integers >= 1 such as 10x10, "
                         f"got {value!r}")
    return (int(rows), int(cols))


def as_items(value):
    """The items of a list given as any iterable (an array of any shape, a range, a
    generator) or as one item, as a list; None and text stay themselves, for a check to
    refuse text."""
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, np.ndarray):
        return value.ravel().tolist()
    return list(value) if isinstance(value, Iterable) else [value]


def flag(value, name: str) -> bool:
    """True or false (a NumPy bool too); never a number or a text."""
    if not isinstance(value, bool | np.bool_):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def non_empty_list(value, name: str, *, each: Callable | None = None,
                   none: bool = False) -> list | None:
    """A non-empty list (a JSON array, or a tuple), each item checked by ``each(item, name)``."""
    if value is None and none:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise InputError(f"{name} must be a non-empty list, got {value!r}")
    return [each(item, name) for item in value] if each else list(value)


def _int_range(low, high) -> str:
    if low is not None and high is not None:
        return f"an integer in {low}..{high}"
    if low is not None:
        return f"an integer >= {low}"
    return "an integer" if high is None else f"an integer <= {high}"


def _number_range(low, high, low_open: bool, high_open: bool = False) -> str:
    if low == 0 and low_open and high is None:
        return "a positive number"
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"a number in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    return "a finite number" if high is None else f"a number {'<' if high_open else '<='} {high:g}"


# The number checks, each with the bounds it is ``number`` or ``integer`` with: what a flag
# parser or a JSON Schema made from a declaration needs to know of them.
NUMBER_CHECKS = {number: {}, positive_number: {"low": 0, "low_open": True},
                 non_negative_number: {"low": 0}}
INTEGER_CHECKS = {integer: {}, positive_int: {"low": 1}, non_negative_int: {"low": 0}}


# -- declared constraints on dataclass fields ---------------------------------------------------
def rule(check: Callable, default=dataclasses.MISSING, *, factory=dataclasses.MISSING,
         help: str = "", resume=None, **options):
    """A dataclass field checked by ``check(value, name, **options)`` in :func:`check_fields`,
    with a one-line ``help`` (what a command-line flag made from it says) and, for a stored
    configuration, how a continued run may differ in it (``resume``:
    :func:`lsalsa.workflow.rundir.differing_keys`; None: not at all)."""
    metadata = {"check": partial(check, **options), "help": help}
    if resume is not None:
        metadata["resume"] = resume
    return dataclasses.field(default=default, default_factory=factory, metadata=metadata)


def declared(model, name: str, *, default=dataclasses.MISSING) -> dataclasses.Field:
    """The declaration of field ``name`` of the dataclass ``model`` (its check, default and
    help), for another dataclass that takes the same option: it is declared once, there.
    ``default`` replaces the model's, where the other dataclass has its own reason."""
    for field in dataclasses.fields(model):
        if field.name == name:
            own = default is not dataclasses.MISSING
            return dataclasses.field(default=default if own else field.default,
                                     metadata={**field.metadata, "declared_by": model,
                                               "own_default": own})
    raise KeyError(f"{model.__name__} declares no {name}")


class Settings:
    """The base of a frozen dataclass of options declared with :func:`rule`: every field is
    checked (and normalised) when one is made."""

    def __post_init__(self):
        check_fields(self)


def check_fields(instance, prefix: str = "", *, keep: bool = False) -> None:
    """Check (and normalise) every field declared with :func:`rule`; for a frozen dataclass
    too. Field names are reported as ``prefix + name``. With ``keep`` the values are only
    checked and stay as given (a JSON ``10`` stays 10, not 10.0: for what is quoted back)."""
    for field in dataclasses.fields(instance):
        check = field.metadata.get("check")
        if check is not None:
            value = check(getattr(instance, field.name), prefix + field.name)
            if not keep:
                object.__setattr__(instance, field.name, value)
