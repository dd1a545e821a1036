"""The audit log is hash-chained: edits and deletions are found (the Merkle tree and its
checkpoints are in test_audit_merkle.py)."""

from __future__ import annotations

from sqlalchemy import delete, update

from steward import Steward
from steward.store import AuditRow


def test_editing_an_entry_breaks_the_chain_at_that_entry(
    workspace: Steward, telco_model: object
) -> None:
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    with workspace.store.write() as session:
        session.execute(update(AuditRow).where(AuditRow.id == 2).values(actor="mallory"))
    check = workspace.verify_audit()
    assert not check.ok
    assert check.first_bad_id == 2
    assert "edited" in check.reason
    assert check.message == "broken at entry 2: its content was edited after it was written"


def test_deleting_an_entry_breaks_the_chain_after_it(
    workspace: Steward, telco_model: object
) -> None:
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    with workspace.store.write() as session:
        session.execute(delete(AuditRow).where(AuditRow.id == 2))
    check = workspace.verify_audit()
    assert (check.ok, check.first_bad_id) == (False, 3)
    assert "removed" in check.reason
