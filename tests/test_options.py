"""Every option is declared once (issue 22): each command-line flag that sets an option is
made from the field of one settings model (``lsalsa.cli.options.add_option_flags`` tags it),
and each experiment-config field that a library model also declares is that declaration
(``checks.declared`` tags it). Arguments that name files, and those that say where or how to
run, are not options."""

from __future__ import annotations

import argparse
import dataclasses

from lsalsa.cli import build_parser
from lsalsa.core.codes import CodesSettings
from lsalsa.core.dictionary_settings import DictionarySettings
from lsalsa.core.training.search import SearchGrid
from lsalsa.core.training.settings import SplitSettings, TrainSettings
from lsalsa.workflow.config import SECTIONS
from lsalsa.workflow.data.catalog import PrepareSettings
from lsalsa.workflow.data.prepared import TrainingSignalsSettings

# Files and folders read or written, and the problem given (dictionaries and their alphas).
INPUTS = {"signals", "out", "dictionaries", "dictionary", "alphas", "root", "data_dir", "name",
          "data", "checkpoint_dir", "codes", "references", "val_signals", "val_references",
          "run_dir", "input", "output", "images", "config"}
# Where and how to run: the device and precision (checked by resolve_device and
# inference_dtype, each in one place), progress, overwriting, resuming.
RUNTIME = {"version", "device", "dtype", "float32", "quiet", "overwrite", "resume",
           "download"}
# A model file in these commands.
MODEL_FILE = {"encode", "separate", "analyze"}


def _actions(parser, command=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*command, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(command), action


def test_every_flag_is_made_from_one_declaration():
    undeclared = set()
    for command, action in _actions(build_parser()):
        model = getattr(action, "declared_by", None)
        if model is not None and type(action) is argparse._StoreConstAction:  # one value
            field = {f.name: f for f in dataclasses.fields(model)}[action.dest]
            assert field.metadata["check"](action.const, action.dest) == action.const
        elif model is not None:
            field = {f.name: f for f in dataclasses.fields(model)}[action.dest]
            assert field.metadata["help"] in action.help, (command, action.dest)
        elif action.dest == "model":
            if command not in MODEL_FILE:
                undeclared.add((command, action.dest))
        elif action.dest not in INPUTS | RUNTIME:
            undeclared.add((command, action.dest))
    assert undeclared == set(), "declare these in a settings model"


# The library models whose options each config section shares; a section field of the same
# name as one of a model's is that option (declared there), but for these, which differ.
SHARED = {"prepare": (PrepareSettings,),
          "dictionary": (DictionarySettings, TrainingSignalsSettings),
          "codes": (CodesSettings,), "search": (TrainSettings, SplitSettings, SearchGrid)}
OTHER_OPTIONS = {("dictionary", "alpha"): "one alpha per component, the model's is one",
                 ("search", "lrs"): "one grid, or one per learned method"}


def test_a_config_option_that_a_library_model_declares_is_that_declaration():
    for section, models in SHARED.items():
        for model in models:
            library = {f.name for f in dataclasses.fields(model)}
            for field in dataclasses.fields(SECTIONS[section]):
                if field.name not in library or (section, field.name) in OTHER_OPTIONS:
                    continue
                assert field.metadata.get("declared_by") is model, f"{section}.{field.name}"
