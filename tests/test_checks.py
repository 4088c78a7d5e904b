"""The vocabulary of constraints (lsalsa.checks) and the typed experiment configs built on it."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lsalsa import checks
from lsalsa.errors import InputError
from lsalsa.workflow.config import (
    SCALES,
    ExperimentConfig,
    Target,
    load_config,
    load_experiment,
    merge,
    shipped,
)

# -- the vocabulary -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, np.True_, "3", 2.0, 2.5, None, [3], 0, -1])
def test_positive_int_refuses_bools_texts_floats_and_small_values(value):
    with pytest.raises(InputError, match=r"^n must be an integer >= 1, got "):
        checks.positive_int(value, "n")


def test_integers_from_numpy_are_plain_ints():
    value = checks.positive_int(np.int64(3), "n")
    assert value == 3 and type(value) is int
    assert checks.integer(5, "depth", low=1, high=5) == 5
    with pytest.raises(InputError, match=r"depth must be an integer in 1\.\.5, got 6"):
        checks.integer(6, "depth", low=1, high=5)
    assert checks.positive_int(None, "n", none=True) is None


@pytest.mark.parametrize("value", [True, "1.0", float("nan"), float("inf"), None, 0, -0.5])
def test_positive_number_refuses_bools_texts_non_finite_and_small_values(value):
    with pytest.raises(InputError, match=r"^mu must be a positive number, got "):
        checks.positive_number(value, "mu")


def test_number_bounds_and_types():
    assert type(checks.positive_number(np.float32(0.5), "x")) is float
    assert checks.positive_number(3, "x") == 3.0
    with pytest.raises(InputError, match=r"x must be a number in \(0, 1\), got 1"):
        checks.number(1, "x", low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(InputError, match=r"lr must be a number in \(0, 1e\+06\], got 1e\+300"):
        checks.number(1e300, "lr", low=0, low_open=True, high=1e6)
    assert checks.non_negative_number(0, "x") == 0.0


def test_choices_texts_flags_and_lists():
    assert checks.one_of("adam", "optimizer", choices=("sgd", "adam")) == "adam"
    for bad in (True, ["adam"], {"a": 1}, "Adam"):
        with pytest.raises(InputError, match=r"optimizer must be one of sgd, adam, got "):
            checks.one_of(bad, "optimizer", choices={"sgd": 1, "adam": 2})
    with pytest.raises(InputError, match="name must be a non-empty string, got ''"):
        checks.text("", "name")
    assert checks.text("", "description", empty=True) == ""
    assert checks.flag(np.True_, "untied") is True
    with pytest.raises(InputError, match="untied must be true or false, got 1"):
        checks.flag(1, "untied")
    assert checks.non_empty_list((1, 2), "T", each=checks.positive_int) == [1, 2]
    with pytest.raises(InputError, match=r"T must be a non-empty list, got \[\]"):
        checks.non_empty_list([], "T")
    # An item at fault is named by its list; the value shown is the item.
    with pytest.raises(InputError, match=r"^T must be an integer >= 1, got 0$"):
        checks.non_empty_list([1, 0], "T", each=checks.positive_int)


def test_predicates_and_faults():
    assert checks.is_integer(np.int32(4), 1) and not checks.is_integer(True)
    assert not checks.is_integer(4.0) and not checks.is_integer(0, 1)
    assert checks.is_number(np.float64(2)) and not checks.is_number(float("nan"))
    assert not checks.is_number(False)
    assert checks.fault(checks.positive_int, 3, "n") is None
    assert checks.fault(checks.positive_int, 0, "n") == "n must be an integer >= 1, got 0"


def test_declared_fields_are_checked_and_normalised_or_kept():
    @dataclass(frozen=True)
    class Settings:
        epochs: int = checks.rule(checks.positive_int, 10)
        lr: float = checks.rule(checks.positive_number, 1.0)

        def __post_init__(self):
            checks.check_fields(self, "train.")

    assert Settings(epochs=np.int64(3), lr=2).lr == 2.0
    assert type(Settings(epochs=np.int64(3)).epochs) is int
    with pytest.raises(InputError, match=r"^train\.epochs must be an integer >= 1, got 0$"):
        Settings(epochs=0)

    @dataclass(frozen=True)
    class AsWritten:
        ratio: float = checks.rule(checks.positive_number, 5)

        def __post_init__(self):
            checks.check_fields(self, keep=True)

    assert type(AsWritten().ratio) is int  # checked, not rewritten


# -- typed experiment configs -------------------------------------------------------------------


@pytest.mark.parametrize("section,model,names", [
    ("SearchSection", "TrainSettings", {"optimizer", "schedule", "batch_size", "rel_tol",
                                        "patience", "reconstruction_weight", "anchor_decay",
                                        "augment_zoom"}),
    ("DictionarySection", "DictionarySettings", {"epochs", "batch_size", "lr",
                                                 "n_iter_codes"}),
    ("CodesSection", "CodesSettings", {"mode", "tol"}),
    ("PrepareSection", "PrepareSettings", {"limit_images", "stride"})])
def test_config_sections_take_their_options_from_the_library_s_declarations(section, model,
                                                                            names):
    """An option of both a library settings class and an experiment-config section is declared
    once, by the library: the section's field has the same check and default (and so refuses
    the same values, named "<section>.<option>")."""
    from lsalsa.core.codes import CodesSettings
    from lsalsa.core.dictionary_settings import DictionarySettings
    from lsalsa.core.training.settings import TrainSettings
    from lsalsa.workflow.config import sections
    from lsalsa.workflow.data.catalog import PrepareSettings

    section = getattr(sections, section)
    model = {"TrainSettings": TrainSettings, "DictionarySettings": DictionarySettings,
             "CodesSettings": CodesSettings, "PrepareSettings": PrepareSettings}[model]
    library = {f.name: f for f in dataclasses.fields(model)}
    fields = {f.name: f for f in dataclasses.fields(section)}
    for name in names:  # (a section's alpha is per component: another option)
        assert fields[name].metadata["check"] is library[name].metadata["check"], name
        # (a section may keep a default of its own, said where it is declared)
        assert fields[name].metadata["own_default"] or \
            fields[name].default == library[name].default, name
    name = sorted(names)[0]
    needed = {"atoms": 8} if "atoms" in fields else {}
    with pytest.raises(InputError, match=rf"^{section.PREFIX}{name} must be"):
        section(**needed, **{name: -1})



@pytest.mark.parametrize("scale", SCALES)
def test_every_shipped_config_round_trips(scale):
    for name in shipped():
        if scale == "converged" and scale not in load_config_file(name).get("scales", {}):
            with pytest.raises(InputError, match=f"has no scale {scale}"):
                load_experiment(name, scale)
            continue
        config = load_experiment(name, scale)
        as_dict = config.to_dict()
        assert as_dict == load_config(name, scale)
        assert ExperimentConfig.from_dict(as_dict) == config
        assert json.loads(json.dumps(as_dict)) == as_dict  # what config.json holds
        assert pickle.loads(pickle.dumps(config)) == config


def test_configs_are_frozen_typed_and_keep_values_as_written():
    config = load_experiment("mca-mnist-natural", "small")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mu = 1.0
    assert config.kind == "mca" and config.n_components == 2
    assert config.dictionary.atoms == (128, 128) and config.alphas == (0.125, 0.2)
    assert config.search.alpha_factors[3] == (0.5, 1.0)
    assert isinstance(config.targets[0], Target) and config.targets[0].T == (1, 5)
    fashion = load_experiment("fashion-mnist", "small")
    ratio = next(t for t in fashion.targets if t.kind == "time_ratio")
    assert ratio.at_least == 5 and type(ratio.at_least) is int  # the report quotes "5x"
    assert "reference_T" in ratio.to_dict() and "at_most" not in ratio.to_dict()


def _raw(**changes) -> dict:
    raw = {"name": "toy", "dataset": "fashion-mnist-10", "alphas": 0.15,
           "dictionary": {"atoms": 100}}
    raw.update(changes)
    return raw


def test_defaults_and_normalisations():
    config = ExperimentConfig.from_dict(_raw(mu=10, depths=[5, 1, 2]))
    assert config.alphas == (0.15,) and config.dictionary.atoms == (100,)
    assert config.dictionary.alpha == (0.15,)  # the optimal codes' alphas by default
    assert config.depths == (1, 2, 5)
    assert config.to_dict()["mu"] == 10 and type(config.to_dict()["mu"]) is int
    assert config.scale == "full" and config.origin == ""


@pytest.mark.parametrize("changes, message", [
    ({"description": 5}, "description must be a string, got 5"),
    ({"seed": True}, "seed must be an integer >= 0, got True"),
    ({"mu": "10"}, "mu must be a positive number, got '10'"),
    ({"alphas": [0.1, True]}, "alphas must be a positive number, got True"),
    ({"dictionary": {"atoms": 100, "epochs": 2.0}},
     "dictionary.epochs must be an integer >= 1, got 2.0"),
    ({"search": {"val_fraction": 1}}, "search.val_fraction must be a number in (0, 1), got 1"),
    ({"search": {"lrs": {"lsalsa": [0.1, True]}}}, "search.lrs.lsalsa must be a number in"),
    ({"evaluation": {"sparsity_T": [1, 0]}}, "evaluation.sparsity_T must be an integer >= 1"),
    ({"targets": [{"kind": "time_ratio", "method": "salsa", "reference_T": 0,
                   "at_least": 5, "text": "t"}]}, "targets[0].reference_T must be an integer"),
    ({"targets": [{"kind": "rmse_ratio", "method": "lsalsa", "other": "lista", "T": [1],
                   "at_most": "1", "text": "t"}]}, "targets[0].at_most must be a positive"),
    ({"targets": [{"kind": ["rmse_ratio"]}]}, "targets[0] needs a kind among"),
    ({"kind": "mca"}, "kind 'mca' does not match data set fashion-mnist-10"),
    ({"scales": {}}, "config: unknown key 'scales'"),
])
def test_typed_config_refuses_with_the_field_named(changes, message):
    with pytest.raises(InputError, match=re.escape(message)) as info:
        ExperimentConfig.from_dict(_raw(**changes))
    assert "\n" not in str(info.value)


# -- the JSON Schema of config files ------------------------------------------------------------


def _schema_validator():
    import jsonschema  # a test dependency: never skipped

    from lsalsa.workflow.config.schema import config_schema

    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_published_schema_is_the_one_the_declarations_make():
    from lsalsa.workflow.config.schema import schema_text

    published = Path(__file__).resolve().parents[1] / "docs" / "experiment-config.schema.json"
    assert published.read_text() == schema_text(), \
        "regenerate it: lsalsa experiment schema > docs/experiment-config.schema.json"


def test_every_shipped_config_and_the_demo_match_the_schema():
    from lsalsa.apps import demo

    validator = _schema_validator()
    configs = [load_config_file(name) for name in shipped()]
    configs.append(json.loads((Path(demo.__file__).parent / demo.CONFIG).read_text()))
    for raw in configs:
        assert not [e.message for e in validator.iter_errors(raw)], raw["name"]
    for key in ("name", "dataset", "alphas"):  # no default: the file must give them
        assert list(validator.iter_errors({k: v for k, v in configs[0].items() if k != key}))


@pytest.mark.parametrize("change", [
    {"search": {"schedule": "linear"}}, {"search": {"batch_size": 0}},
    {"search": {"lrs": [0.0]}}, {"search": {"learned": ["lista"]}}, {"dense_max": 2.5},
    {"evaluation": {"threads": "two"}}, {"search": {"unknown": 1}}, {"scales": {"huge": {}}},
    {"scales": {"small": {"search": {"patience": 0}}}}, {"name": "../up"},
    {"targets": [{"kind": "rmse_ratio", "text": "t"}]}, {"alphas": []},
])
def test_the_schema_refuses_what_the_loader_refuses(change, tmp_path):
    """Each of these configs, refused by the loader in one line, is refused by the schema too
    (not every one is: the loader also ties fields together, and refuses 10.0 for 10)."""
    raw = merge(load_config_file("natural-16"), change)
    assert list(_schema_validator().iter_errors(raw))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError):
        for scale in SCALES:
            load_experiment(str(path), scale)


def load_config_file(name: str) -> dict:
    from lsalsa.workflow.config.loading import read_config

    return read_config(name)[0]
