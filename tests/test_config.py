"""The run config: presets, files, overrides and validation."""

from __future__ import annotations

import pytest

from kgrec.config import PRESETS, RunConfig, dump_config, load_config
from kgrec.errors import InputError


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_are_complete_and_round_trip(tmp_path, preset):
    config = load_config(preset)
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert path.read_text() == dump_config(RunConfig.model_validate(config.model_dump()))


def test_override_validates_again():
    config = RunConfig().override({"graph.split.seed": 5, "graph.split.kind": "loo"})
    assert config.graph.split.seed == 5 and config.graph.split.kind == "loo"
    with pytest.raises(InputError, match="graph.split.kind"):
        RunConfig().override({"graph.split.kind": "sideways"})
    with pytest.raises(InputError, match="ratios must"):
        RunConfig().override({"graph.split.ratios": [0.5, 0.5, 0.5]})


def test_unknown_keys_are_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("graph:\n  splitt: {}\n")
    with pytest.raises(InputError, match="graph.splitt"):
        load_config(path)


def test_config_is_frozen():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RunConfig().graph.split.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("train.lr", float("inf"), "finite"),
        ("train.lr", float("nan"), "finite"),
        ("model.ease_l2", [float("inf")], "finite"),
        ("train.epochs", True, "epochs must be a number, not true"),
        ("kge.lr", False, "lr must be a number"),
    ],
)
def test_non_finite_and_boolean_numbers_are_refused(key, value, words):
    with pytest.raises(InputError, match=words):
        RunConfig().override({key: value})


def test_a_key_given_twice_in_a_yaml_section_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  use_text: false\n  dim: 32\n  use_text: true\n")
    with pytest.raises(InputError, match=r"c.yaml:4: .*'use_text' is given twice"):
        load_config(path)
    path.write_text("model:\n  use_text: false\ntrain:\n  use_text: 1\n")  # the same key in two sections is fine
    with pytest.raises(InputError, match="train.use_text"):
        load_config(path)


def test_on_and_off_read_as_yaml_booleans_still_switch_a_term():
    import yaml

    # `--set model.repeat=on` and an unquoted `repeat: on` in a YAML file arrive as booleans (YAML 1.1).
    config = RunConfig().override({"model.repeat": yaml.safe_load("on"), "model.kg_neighbours": yaml.safe_load("on")})
    assert (config.model.repeat, config.model.kg_neighbours) == ("on", "on")
    assert RunConfig().override({"model.repeat": yaml.safe_load("off")}).model.repeat == "off"
