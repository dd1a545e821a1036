"""apply: systems, their contracts as numbered versions, and the audit trail of each change."""

from __future__ import annotations

import yaml

from steward import Steward
from steward.errors import ConfigError
from steward.workspace.systems import get_contract

from .conftest import CONFIG

CONTRACT = {
    "on_violation": "reject",
    "columns": {
        "tenure": {"type": "int", "min": 0, "nullable": False},
        "Contract": {"type": "category", "categories": ["Month-to-month", "One year"]},
    },
}


def write_config(steward: Steward, contract: dict[str, object]) -> None:
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["contract"] = contract
    steward.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_contract_changes_become_numbered_versions_classed_breaking_or_not(
    workspace: Steward,
) -> None:
    write_config(workspace, CONTRACT)
    assert workspace.apply()[0].contract == "contract v1"
    assert workspace.apply()[0].contract is None  # unchanged: no new version

    widened = {
        **CONTRACT,
        "columns": {
            **CONTRACT["columns"],
            "Contract": {
                "type": "category",
                "categories": ["Month-to-month", "One year", "Two year"],
            },
        },
    }
    write_config(workspace, widened)
    change = workspace.apply()[0].contract
    assert change is not None and change.startswith("contract v2 (compatible")

    narrowed = {
        **widened,
        "columns": {**widened["columns"], "tenure": {"type": "int", "min": 1, "nullable": False}},
    }
    write_config(workspace, narrowed)
    change = workspace.apply()[0].contract
    assert change is not None and change.startswith("contract v3 (breaking") and "tenure" in change

    current = get_contract(workspace.store, "churn")
    assert current is not None and current.version == 3
    assert current.columns["tenure"].min == 1
    assert workspace.verify_audit().ok


def test_invalid_contract_in_config_is_located(workspace: Steward) -> None:
    write_config(workspace, {"columns": {"tenure": {"type": "integer"}}})
    try:
        workspace.apply()
    except ConfigError as error:
        assert "steward.yaml:" in str(error) and "systems[0].contract" in str(error)
        assert "integer" in str(error)
    else:
        raise AssertionError("an invalid contract type must be refused")


def test_apply_names_each_changed_field_with_its_old_and_new_value(workspace: Steward) -> None:
    """A changed card or policy used to read "card/contract/policy changed", with no values."""
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["policy"] = {"thresholds": [{"at": 0.5, "action": "call"}], "holdout": 0.1}
    workspace.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    workspace.apply()
    config["systems"][0]["policy"]["holdout"] = 0.2
    config["systems"][0]["card"]["caveats"] = "Fictional data; retrain on yours."
    config["systems"][0]["owner"] = "bo@example.com"
    workspace.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    change = workspace.apply()[0]
    assert change.kind == "changed"
    assert change.fields == {
        "owner": ("ana@example.com", "bo@example.com"),
        "card.caveats": (
            "Trained on one fictional telco's customers.",
            "Fictional data; retrain on yours.",
        ),
        "policy.holdout": (0.1, 0.2),
    }
