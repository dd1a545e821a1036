"""steward.yaml: the template parses, and mistakes are reported with file, line and column."""

from __future__ import annotations

import pytest

from steward.errors import ConfigError
from steward.workspace.config import TEMPLATE, parse_config


def test_init_template_is_a_valid_config() -> None:
    config = parse_config(TEMPLATE)
    assert [system.name for system in config.systems] == ["churn"]
    assert config.systems[0].card.factors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "systems:\n  - name: churn\n    task: binray\n",
            "steward.yaml:3:11: systems[0].task: Input should be 'binary'",
        ),
        (
            "systems:\n  - name: churn\n    task: binary\n    ownr: ana\n",
            "steward.yaml:4:11: systems[0].ownr: unknown key",
        ),
        ("systems:\n  - owner: ana\n", "steward.yaml:2:5: systems[0].name: required, but missing"),
        ("systems:\n  - name: churn\n   task: binary\n", "steward.yaml:3:4: invalid YAML"),
        (
            "systems:\n  - {name: a, task: binary}\n  - {name: a, task: regression}\n",
            "steward.yaml:3:12: systems[1].name: system 'a' is declared twice",
        ),
        ("- just\n- a list\n", "expected a mapping with a 'systems' list"),
        ("systems:\n  - {name: 'bad name!', task: binary}\n", "systems[0].name: String should"),
    ],
)
def test_invalid_config_names_the_place_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)


def test_empty_file_declares_no_systems() -> None:
    assert parse_config("").systems == []


@pytest.mark.parametrize(
    ("text", "place", "sentence"),
    [
        (
            "systems:\n  - name: churn\n   task: binary\n",
            "steward.yaml:3:4",
            "indented differently",
        ),
        ("systems:\n\t- name: churn\n", "steward.yaml:2:1", "indent YAML with spaces"),
        ("systems:\n  - name: a: b\n", "steward.yaml:2:12", "quote the value"),
    ],
)
def test_broken_yaml_says_where_and_what_to_do_in_a_plain_sentence(
    text: str, place: str, sentence: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert message.startswith(place) and sentence in message
