"""The JSON Schema of an experiment config file, made from the config's own declarations.

Every field of :class:`ExperimentConfig` and of its sections is a :func:`lsalsa.checks.rule`;
:func:`config_schema` turns each rule's check into the schema that accepts what it accepts
(types, bounds, choices, lists, None where allowed), with its default and help, so editors can
complete and check a config as it is typed. The configs' own checks stay the judge: some
constraints tie fields together (one value per component of the data set), a section's
required fields are required only once the scales are merged, and JSON Schema counts 10.0 as
an integer, which the loader refuses; no schema holds those. ``lsalsa experiment schema``
prints it; ``docs/experiment-config.schema.json`` is a copy kept equal by the tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from ... import checks
from ...core.training.settings import MAX_LR, check_lr
from .experiment import SECTIONS, ExperimentConfig
from .sections import (
    LEARNED,
    PLAIN_NAME,
    SCALES,
    TARGET_KINDS,
    Target,
    _alpha_factor,
    _learned_methods,
    _learning_rates,
    distinct,
    per_component,
    plain_name,
    to_json,
)

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def config_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a config file: the whole experiment, whose
    ``scales`` hold partial configs merged over it at each scale."""
    top = {f.name: f for f in dataclasses.fields(ExperimentConfig)
           if f.name not in ("scale", "origin")}  # set by the loader, never written
    properties = {}
    for name, field in top.items():
        if name in SECTIONS:
            properties[name] = {"$ref": f"#/$defs/{name}",
                                "description": field.metadata["help"]}
        elif name == "targets":
            properties[name] = {"type": "array", "items": {"$ref": "#/$defs/target"},
                                "description": field.metadata["help"]}
        else:
            properties[name] = field_schema(field)
    partial = {"type": "object", "additionalProperties": False, "properties": properties}
    # What has no usable default must be in the file itself (a scale only overrides).
    required = [name for name, field in top.items() if name not in SECTIONS and
                field.default is None and not field.metadata["check"].keywords.get("none")]
    return {"$schema": SCHEMA_URI, "title": "lsalsa experiment config", **partial,
            "required": required,
            "properties": {**properties, "scales": {
                "type": "object", "additionalProperties": False,
                "description": "settings merged over the config at each scale "
                               "(lsalsa experiment run --scale)",
                "properties": {scale: {**partial, "description": f"overrides for --scale "
                                                                 f"{scale}"}
                               for scale in SCALES}}},
            "$defs": {**{name: section_schema(section) for name, section in SECTIONS.items()},
                      "target": target_schema()}}


def section_schema(section) -> dict:
    return {"type": "object", "additionalProperties": False,
            "properties": {f.name: field_schema(f) for f in dataclasses.fields(section)}}


def target_schema() -> dict:
    """A target: its kind, its text and the keys that kind holds."""
    fields = {f.name: f for f in dataclasses.fields(Target)}
    kinds = []
    for kind, keys in TARGET_KINDS.items():
        need = ("kind", "text", *keys)
        kinds.append({"type": "object", "additionalProperties": False, "required": list(need),
                      # the keys a kind needs hold values: null is no threshold
                      "properties": {**{key: field_schema(fields[key], none=False)
                                        for key in need},
                                     "kind": {"const": kind, "description":
                                              fields["kind"].metadata["help"]}}})
    return {"oneOf": kinds}


def field_schema(field: dataclasses.Field, *, none: bool | None = None) -> dict:
    """The schema of one declared field: its check's, None where the check allows it (or
    where ``none`` says), with the field's default (when it has one JSON can hold) and
    help."""
    check = field.metadata["check"]
    schema = check_schema(check.func, check.keywords)
    if check.keywords.get("none") if none is None else none:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if field.default is not dataclasses.MISSING and field.default is not None:
        schema["default"] = to_json(field.default)
    if field.metadata.get("help"):  # the command line's word for None is JSON's null
        schema["description"] = field.metadata["help"].replace("'none'", "null")
    return schema


def check_schema(func: Callable, options: dict) -> dict:
    """The schema that accepts what ``func(value, name, **options)`` accepts."""
    bounds = {k: v for k, v in options.items() if k != "none"}
    if func in checks.NUMBER_CHECKS:
        return _number({**checks.NUMBER_CHECKS[func], **bounds})
    if func in checks.INTEGER_CHECKS:
        return _integer({**checks.INTEGER_CHECKS[func], **bounds})
    if func is checks.one_of:
        return {"enum": list(options["choices"])}
    if func is checks.flag:
        return {"type": "boolean"}
    if func is checks.text:
        return {"type": "string", **({} if options.get("empty") else {"minLength": 1})}
    if func is plain_name:
        return {"type": "string", "pattern": f"^{PLAIN_NAME.pattern}$"}
    if func in (checks.non_empty_list, distinct, per_component):
        each = _each(options.get("each"))
        listed = {"type": "array", "minItems": 1, **({"items": each} if each else {}),
                  **({"uniqueItems": True} if func is distinct else {})}
        return {"anyOf": [each, listed]} if func is per_component else listed
    if func is _alpha_factor:
        return {"anyOf": [_number({"low": 0, "low_open": True}),
                          {"type": "array", "minItems": 1,
                           "items": _number({"low": 0, "low_open": True})}]}
    if func is _learning_rates:
        grid = {"type": "array", "minItems": 1, "items": check_schema(check_lr, {})}
        return {"anyOf": [grid, {"type": "object", "additionalProperties": False,
                                 "properties": {m: {**grid, "description": f"the grid of {m}"}
                                                for m in LEARNED}}]}
    if func is _learned_methods:
        return {"type": "array", "minItems": 1, "uniqueItems": True,
                "items": {"enum": list(LEARNED)}, "contains": {"const": "lsalsa"}}
    if func is check_lr:
        return _number({"low": 0, "low_open": True, "high": MAX_LR})
    raise KeyError(f"no schema for the check {func.__name__}")


def _each(check) -> dict:
    if check is None:
        return {}
    if hasattr(check, "func"):  # a partial
        return check_schema(check.func, check.keywords)
    return check_schema(check, {})


def _number(bounds: dict) -> dict:
    schema = {"type": "number"}
    if bounds.get("low") is not None:
        schema["exclusiveMinimum" if bounds.get("low_open") else "minimum"] = bounds["low"]
    if bounds.get("high") is not None:
        schema["exclusiveMaximum" if bounds.get("high_open") else "maximum"] = bounds["high"]
    return schema


def _integer(bounds: dict) -> dict:
    schema = {"type": "integer"}
    if bounds.get("low") is not None:
        schema["minimum"] = bounds["low"]
    if bounds.get("high") is not None:
        schema["maximum"] = bounds["high"]
    return schema


def schema_text() -> str:
    """The schema as the published file holds it."""
    return json.dumps(config_schema(), indent=2) + "\n"
