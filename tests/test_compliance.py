"""The compliance report: obligations mapped to evidence, each citing audit entries that prove."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.delivery.suspension import resume, suspend
from steward.errors import InvalidInputError
from steward.governance.access import Role, add_identity
from steward.governance.compliance import FRAMEWORKS, compliance_report
from steward.store import audit


def _report(steward: Steward, tmp_path: Path, framework: str) -> tuple[str, dict]:
    output = tmp_path / f"{framework}.html"
    result = CliRunner().invoke(
        cli,
        ["--workspace", str(steward.settings.workspace), "--database-url",
         steward.settings.database_url, "compliance", "report", "churn", "--framework",
         framework, "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return output.read_text(), json.loads(output.with_suffix(".json").read_text())


def _proves(steward: Steward, entry_id: int) -> bool:
    proof = audit.prove(steward.store, steward.settings.store_dir, entry_id)
    public_key = (steward.settings.store_dir / "audit-signing.pub").read_text()
    return audit.verify_inclusion_proof(json.dumps(proof), public_key).ok


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_evidence_line_cites_entries_that_prove_and_gaps_are_not_claimed(
    workspace: Steward, telco_model: object, tmp_path: Path, framework: str
) -> None:
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1, reason="first release")
    add_identity(workspace, "dana", Role.APPROVER)
    suspend(workspace, "churn", mode="review", reason="drift on tenure")
    resume(workspace, "churn", reason="retrained")
    html, data = _report(workspace, tmp_path, framework)
    obligations = {o["reference"]: o for o in data["obligations"]}
    lines = [e for o in data["obligations"] for e in o["evidence"]]
    assert lines and all(line["audit_ids"] for line in lines)
    cited = sorted({i for line in lines for i in line["audit_ids"]})
    assert sorted(int(i) for i in data["entries"]) == cited
    assert all(_proves(workspace, entry_id) for entry_id in cited)
    for entry_id in cited:
        assert f'id="audit-{entry_id}"' in html and f'href="#audit-{entry_id}"' in html
    if framework == "eu-ai-act":
        oversight = obligations["Art. 14, 26(2)"]
        assert oversight["status"] == "evidenced"
        assert any("suspended or resumed 2 times" in e["text"] for e in oversight["evidence"])
        assert obligations["Art. 9"]["status"] == "gap"  # never claimed
        assert obligations["Art. 26(5), 73"]["status"] == "gap"  # none declared, none automated
    else:
        assert obligations["MEASURE 2.11"]["status"] == "gap"
        assert obligations["MANAGE 2.4"]["status"] == "evidenced"
    assert all(o["status"] in ("evidenced", "partial", "gap") for o in data["obligations"])


def test_a_high_risk_system_under_the_retention_floor_is_a_gap(
    workspace: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_RETENTION_DAYS", "90")
    steward = Steward.open(
        workspace.settings.workspace, database_url=workspace.settings.database_url
    )
    try:
        _, data = _report(steward, tmp_path, "eu-ai-act")
    finally:
        steward.close()
    logging = data["obligations"][0]
    assert logging["reference"] == "Art. 12, 19, 26(6)"
    assert any("90 days, under the 180-day floor" in gap for gap in logging["gaps"])


def test_an_unknown_framework_is_refused(workspace: Steward) -> None:
    check = workspace.verify_audit()
    with pytest.raises(InvalidInputError, match="unknown framework 'iso-42001'"):
        compliance_report(workspace, workspace.events, "churn", "iso-42001", check)
