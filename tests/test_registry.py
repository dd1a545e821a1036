"""The registry on the real stores: versions, lineage, aliases, history, rollback, diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steward import Steward
from steward.demo import train_churn_model
from steward.errors import (
    ConflictError,
    InvalidInputError,
    UnknownAliasError,
    UnknownSystemError,
    UnknownVersionError,
)
from steward.model.lineage import fingerprint_frame


def register(workspace: Steward, model: object, **kwargs: object) -> int:
    registration = workspace.register_model(model, system="churn", **kwargs)  # type: ignore[arg-type]
    return registration.version.version


def test_versions_are_numbered_from_one_per_system(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    from steward.demo import train_churn_model

    frame, target = telco
    other = train_churn_model(frame, target, C=0.1)
    assert register(workspace, telco_model) == 1
    assert register(workspace, other) == 2
    assert [version.version for version in workspace.versions("churn")] == [1, 2]


def test_registering_the_same_artifact_twice_returns_the_existing_version(
    workspace: Steward, telco_model: object
) -> None:
    first = workspace.register_model(telco_model, system="churn")
    again = workspace.register_model(telco_model, system="churn")
    assert first.created and not again.created
    assert again.version.version == first.version.version
    assert len(workspace.versions("churn")) == 1


@pytest.mark.parametrize("boosting", [False, True], ids=["logistic", "boosting"])
def test_the_same_fitted_model_registered_twice_is_one_version(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], boosting: bool
) -> None:
    """A fitted model saved again (its arrays rebuilt at new addresses) is still the same version."""
    import copy

    from steward.demo import train_churn_model

    frame, target = telco
    model = train_churn_model(frame.head(600), target.head(600), boosting=boosting)
    first = workspace.register_model(model, system="churn")
    again = workspace.register_model(copy.deepcopy(model), system="churn")
    assert first.created and not again.created
    assert [version.version for version in workspace.versions("churn")] == [1]


def test_telco_model_loads_back_and_predicts_the_same(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = telco
    register(workspace, telco_model)
    loaded = workspace.load_model("churn", 1)
    expected = telco_model.predict_proba(frame)[:, 1]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(loaded.predict(frame, "binary"), expected)


def test_lineage_records_data_code_params_metrics_and_libraries(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, target = telco
    data_file = tmp_path / "train.csv"
    frame.assign(Churn=target).to_csv(data_file, index=False)
    repo = tmp_path / "code"
    repo.mkdir()
    for command in (
        ["init", "-q"],
        [
            "-c",
            "user.email=t@e",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "start",
        ],
    ):
        subprocess.run(["git", *command], cwd=repo, check=True)
    version = workspace.register_model(
        telco_model,
        system="churn",
        data=data_file,
        metrics={"roc_auc": 0.84},
        params={"note": "baseline"},
        code_dir=repo,
    ).version

    reread = pd.read_csv(data_file)
    assert version.data["sha256"] == fingerprint_frame(reread)["sha256"]
    assert version.data["n_rows"] == len(frame)
    assert version.data["schema"]["tenure"] == "int64"
    assert version.data["source"] == str(data_file)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version.code == {"commit": head, "dirty": False, "repository": str(repo)}
    assert version.params["logisticregression__C"] == 1.0
    assert version.params["note"] == "baseline"
    assert version.metrics == {"roc_auc": 0.84}
    assert version.libraries["scikit-learn"]
    assert version.registered_by == "tester"
    reference = workspace.reference_data("churn", 1)
    assert len(reference) == workspace.settings.reference_sample_rows
    merged = reference.merge(reread, on=list(reread.columns), how="left", indicator=True)
    assert (merged["_merge"] == "both").all(), "the reference sample must be rows of the data"


def test_alias_moves_are_kept_in_history(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    from steward.demo import train_churn_model

    register(workspace, telco_model)
    register(workspace, train_churn_model(*telco, C=0.1))
    workspace.move_alias("churn", "champion", 1, reason="first")
    workspace.move_alias("churn", "champion", "v2", reason="better auc")
    workspace.move_alias("churn", "shadow", 1)
    history = workspace.history("churn")
    assert [(m.alias, m.from_version, m.to_version) for m in history] == [
        ("champion", None, 1),
        ("champion", 1, 2),
        ("shadow", None, 1),
    ]
    assert history[1].reason == "better auc" and history[1].moved_by == "tester"
    assert workspace.version("churn", "champion").version == 2
    assert workspace.version("churn", 1).aliases == ("shadow",)


def test_rollback_restores_previous_champion_and_steps_back_again(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    from steward.demo import train_churn_model

    for C in (1.0, 0.1, 0.01):
        version = register(workspace, train_churn_model(*telco, C=C))
        workspace.move_alias("churn", "champion", version)
    first = workspace.rollback("churn", reason="v3 misbehaves")
    assert (first.from_version, first.to_version, first.action) == (3, 2, "rollback")
    second = workspace.rollback("churn")
    assert (second.from_version, second.to_version) == (2, 1)
    with pytest.raises(ConflictError, match="no earlier holder than v1"):
        workspace.rollback("churn")
    assert workspace.version("churn", "champion").version == 1
    assert len(workspace.history("churn", "champion")) == 5


def test_rollback_without_history_says_so(workspace: Steward) -> None:
    with pytest.raises(ConflictError, match="cannot roll back 'champion' of 'churn'"):
        workspace.rollback("churn")


def test_removing_an_alias_is_a_move_to_nothing(workspace: Steward, telco_model: object) -> None:
    register(workspace, telco_model)
    workspace.move_alias("churn", "canary", 1)
    change = workspace.move_alias("churn", "canary", None, reason="canary over")
    assert (change.from_version, change.to_version) == (1, None)
    with pytest.raises(UnknownAliasError, match="no version at alias 'canary'"):
        workspace.version("churn", "canary")


def test_diff_shows_params_metrics_and_data_side_by_side(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    from steward.demo import train_churn_model

    frame, target = telco
    register(workspace, telco_model, data=frame, metrics={"roc_auc": 0.84})
    smaller = frame.iloc[:5000]
    register(
        workspace,
        train_churn_model(smaller, target.iloc[:5000], C=0.1),
        data=smaller,
        metrics={"roc_auc": 0.83},
    )
    changed = {
        (row.section, row.key): (row.a, row.b)
        for row in workspace.diff("churn", 1, 2)
        if row.changed
    }
    assert changed[("params", "logisticregression__C")] == (1.0, 0.1)
    assert changed[("metrics", "roc_auc")] == (0.84, 0.83)
    assert changed[("data", "n_rows")] == (len(frame), 5000)
    assert ("schema", "tenure") not in changed


def test_unknown_names_get_errors_that_say_what_exists(
    workspace: Steward, telco_model: object
) -> None:
    register(workspace, telco_model)
    with pytest.raises(
        UnknownSystemError, match=r"unknown system 'fraud' \(known systems: churn\)"
    ):
        workspace.versions("fraud")
    with pytest.raises(UnknownVersionError, match=r"no version 7 \(versions are 1 to 1\)"):
        workspace.version("churn", 7)
    with pytest.raises(UnknownAliasError, match="no alias is set"):
        workspace.version("churn", "champion")
    with pytest.raises(InvalidInputError, match="alias 'Champ ion' is not a valid name"):
        workspace.move_alias("churn", "Champ ion", 1)


def test_every_change_lands_in_an_intact_audit_log(workspace: Steward, telco_model: object) -> None:
    register(workspace, telco_model)
    workspace.move_alias("churn", "champion", 1)
    check = workspace.verify_audit()
    assert check.ok
    assert check.n_entries == 3  # system.create, model.register, alias.move


def test_a_card_renders_for_versions_registered_from_a_frame_or_without_data(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, target = telco
    workspace.register_model(telco_model, system="churn", data=frame.assign(Churn=target))
    other = train_churn_model(frame, target, C=0.3)  # another artifact, so another version
    workspace.register_model(other, system="churn", description="no data")
    from_frame, without_data = workspace.card("churn", 1), workspace.card("churn", 2)
    assert f"{len(frame)} rows" in from_frame.to_markdown()
    assert " from `" not in from_frame.to_markdown()
    assert "Fingerprint" not in without_data.to_markdown()
    assert "<html" in without_data.to_html().lower()


def test_a_champion_without_training_data_is_warned_about_at_registration_and_promotion(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """Registered without --data, a champion silently turned drift monitoring off."""
    bare = workspace.register_model(telco_model, system="churn")
    assert bare.warnings and "no reference sample" in bare.warnings[0]
    assert "--data" in bare.warnings[0]
    promoted = workspace.move_alias("churn", "champion", 1)
    assert promoted.warnings == tuple(bare.warnings)
    assert promoted.to_dict()["warnings"] == list(bare.warnings)
    frame, target = telco
    with_data = workspace.register_model(
        train_churn_model(frame, target, C=0.5), system="churn", data=frame.head(300)
    )
    assert with_data.warnings == []
    assert workspace.move_alias("churn", "champion", 2).warnings == ()
    assert "warnings" not in workspace.move_alias("churn", "challenger", 1).to_dict()
