"""Every option is declared once (issue 22): each command-line flag that sets an option is
made from the field of one settings model (``lsalsa.cli.options.add_option_flags`` tags it),
and each experiment-config field that a library model also declares is that declaration
(``checks.declared`` tags it). Arguments that name files, and those that say where or how to
run, are not options."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from PIL import Image

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


def test_every_command_writes_the_librarys_parameter_names_as_its_flags():
    """The library's errors name parameters; the command line alone writes them as flags,
    each command through the map its own arguments make (``flag_names``)."""
    for command, parser in _commands(build_parser()):
        names = parser.get_default("flag_names")
        for action in parser._actions:
            # a flag that sets the opposite or one constant does not stand for its parameter
            one_value = isinstance(action, argparse._StoreConstAction) and not isinstance(
                action, argparse._StoreTrueAction)
            if action.option_strings and action.dest != "help" and not one_value:
                flags = {s for a in parser._actions if a.dest == action.dest
                         for s in a.option_strings}
                assert names[action.dest] in flags, (command, action.dest)
            elif one_value and action.dest in names:
                assert names[action.dest] not in action.option_strings, (command, action.dest)
    train = dict(_commands(build_parser()))["train"].get_default("flag_names")
    assert "learn_thresholds" not in train and train["dataset"] == "--data"


def _commands(parser, command=()):
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield " ".join(command), parser
    for group in groups:
        for name, sub in group.choices.items():
            yield from _commands(sub, (*command, name))


def test_a_library_error_names_the_parameter_and_the_command_its_flag(tmp_path, capsys):
    from lsalsa.apps.separation import read_image
    from lsalsa.cli import main
    from lsalsa.errors import InputError

    image = tmp_path / "big.png"
    Image.new("L", (20, 20)).save(image)
    with pytest.raises(InputError, match="raise it with `max_pixels`"):
        read_image(image, max_pixels=100)
    assert main(["separate", str(image), "--out", str(tmp_path / "out"),
                 "--max-pixels", "100"]) == 2
    assert "raise it with --max-pixels if" in capsys.readouterr().err
    # a parameter a command has no flag for: the command that sets it
    run = dict(_commands(build_parser()))["experiment run"].get_default("flag_names")
    assert run["download"] == "lsalsa data prepare --download"
    assert run["run_dir"] == "--run-dir"
