"""The compliance report's content: each obligation of a framework, the evidence Steward holds for
it, and what Steward cannot evidence.

Two frameworks are mapped: the EU AI Act's duties of a deployer of a high-risk system (``eu-ai-act``:
Art. 12, 14, 19, 26, 72, 73) and the NIST AI RMF's GOVERN, MEASURE and MANAGE subcategories that
ask for operating evidence (``nist-ai-rmf``). The evidence is the same facts, gathered once:

- every piece of evidence cites the audit entries it comes from (their ids, which ``steward audit
  prove ID`` proves against the signed tree), so a reader checks it instead of trusting it;
- what Steward does not hold (a written risk management system, worker information, a fundamental
  rights impact assessment) is listed as a gap, never claimed; so is what Steward does not record
  yet (incidents, fairness monitoring);
- an obligation is ``evidenced`` with evidence and no gap, ``partial`` with both, ``gap`` with no
  evidence.

Example::

    report = compliance_report(steward, steward.events, "churn", "eu-ai-act", audit_check)
    [(o.reference, o.status) for o in report.obligations]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import or_, select

from steward.data.events import EventLog
from steward.errors import InvalidInputError
from steward.model.registry import find_system
from steward.store import AuditRow, IdentityRow, ReviewDecisionRow, utcnow
from steward.store.audit import AuditCheck
from steward.workspace import Workspace

__all__ = [
    "FRAMEWORKS",
    "RETENTION_FLOOR_DAYS",
    "ComplianceReport",
    "Evidence",
    "Obligation",
    "compliance_report",
]

Framework = Literal["eu-ai-act", "nist-ai-rmf"]
FRAMEWORKS: Final = ("eu-ai-act", "nist-ai-rmf")
#: Art. 19(1) and 26(6): a deployer keeps a high-risk system's logs for at least six months.
RETENTION_FLOOR_DAYS: Final = 180
_REVIEWER_ROLES: Final = ("approver", "admin")


@dataclass(frozen=True)
class Evidence:
    """One fact, and the audit entries it comes from."""

    text: str
    audit_ids: list[int]


@dataclass
class Obligation:
    """One obligation of the framework and what answers it."""

    reference: str
    title: str
    evidence: list[Evidence] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.evidence:
            return "gap"
        return "partial" if self.gaps else "evidenced"


@dataclass
class ComplianceReport:
    """Obligations with their evidence for one system, and the state of the audit tree."""

    system: str
    framework: str
    generated_at: datetime
    risk_tier: str
    audit_message: str
    audit_ok: bool
    obligations: list[Obligation]
    #: The cited audit entries by id: when, who, what, on what, and the entry's hash.
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def cited(self) -> list[int]:
        """Every audit entry the report cites, once, in order."""
        return sorted({i for o in self.obligations for e in o.evidence for i in e.audit_ids})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict, with each obligation's status."""
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        for obligation, raw in zip(self.obligations, data["obligations"], strict=True):
            raw["status"] = obligation.status
        return data


def compliance_report(
    workspace: Workspace,
    events: EventLog,
    system: str,
    framework: str,
    audit_check: AuditCheck,
) -> ComplianceReport:
    """Gather the evidence for ``system`` and map it onto ``framework``'s obligations."""
    if framework not in FRAMEWORKS:
        raise InvalidInputError(
            f"unknown framework {framework!r}; choose {' or '.join(FRAMEWORKS)}"
        )
    info = workspace.system(system)
    facts = _Facts(workspace, events, system, audit_check)
    build = _EU_AI_ACT if framework == "eu-ai-act" else _NIST_AI_RMF
    obligations = [
        Obligation(reference, title, *gather(facts)) for reference, title, gather in build
    ]
    report = ComplianceReport(
        system, framework, utcnow(), info.risk_tier, audit_check.message, audit_check.ok,
        obligations,
    )  # fmt: skip
    by_id = {row.id: row for row in facts.entries}
    report.entries = {
        entry_id: {
            "id": entry_id,
            "at": by_id[entry_id].at.isoformat(),
            "actor": by_id[entry_id].actor,
            "action": by_id[entry_id].action,
            "target": by_id[entry_id].target,
            "hash": by_id[entry_id].hash,
        }
        for entry_id in report.cited
    }
    return report


# --- the facts, each with the audit entries behind it --------------------------------------------


class _Facts:
    """What the store and the event log hold about one system, read once."""

    def __init__(
        self, workspace: Workspace, events: EventLog, system: str, audit_check: AuditCheck
    ) -> None:
        self.system = system
        self.workspace = workspace
        self.info = workspace.system(system)
        self.retention_days = workspace.settings.retention_days
        self.audit_check = audit_check
        with workspace.store.read() as session:
            system_id = find_system(session, system).id
            self.entries = list(
                session.scalars(
                    select(AuditRow)
                    .where(
                        or_(
                            AuditRow.target == system,
                            AuditRow.target.startswith(f"{system}/"),
                            AuditRow.action.in_(("events.files", "identity.add")),
                        )
                    )
                    .order_by(AuditRow.id)
                )
            )
            self.reviewers = list(
                session.scalars(
                    select(IdentityRow).where(
                        IdentityRow.role.in_(_REVIEWER_ROLES), IdentityRow.disabled_at.is_(None)
                    )
                )
            )
            self.reviews = list(
                session.scalars(
                    select(ReviewDecisionRow).where(ReviewDecisionRow.system_id == system_id)
                )
            )
        kind = "llm_calls" if self.info.task == "llm" else "predictions"
        self.logged = events.query(
            f"SELECT count(*) AS n, min(event_time) AS first, max(event_time) AS last FROM {kind} "
            f"WHERE system = '{system.replace(chr(39), chr(39) * 2)}'"
        ).to_pylist()[0]
        self.kind = kind

    def with_action(self, *prefixes: str) -> list[AuditRow]:
        return [row for row in self.entries if row.action.startswith(prefixes)]

    def ids(self, rows: Sequence[AuditRow], most: int = 50) -> list[int]:
        """The newest ``most`` entries' ids (a long history cites its latest entries)."""
        return [row.id for row in rows][-most:]


Gathered = tuple[list[Evidence], list[str]]


def _logging(facts: _Facts) -> Gathered:
    evidence, gaps = [], []
    files = facts.with_action("events.files")
    created = facts.with_action("system.create", "system.update")
    n = int(facts.logged["n"] or 0)
    if n and files:
        evidence.append(
            Evidence(
                f"{n:,} {facts.kind.replace('_', ' ')} logged automatically from "
                f"{_day(facts.logged['first'])} to {_day(facts.logged['last'])}, in event files "
                f"whose hashes {len(files)} audit entries bind",
                facts.ids(files),
            )
        )
    else:
        gaps.append("no logged events of this system are bound into the audit tree yet")
    if created:
        evidence.append(
            Evidence(
                f"events are kept {facts.retention_days} days (setting retention_days), then "
                "deleted by `steward retention`; the system's configuration is audited",
                facts.ids(created),
            )
        )
    if facts.info.risk_tier == "high" and facts.retention_days < RETENTION_FLOOR_DAYS:
        gaps.append(
            f"retention is {facts.retention_days} days, under the {RETENTION_FLOOR_DAYS}-day floor "
            "of Art. 19(1) and 26(6) for a high-risk system"
        )
    gaps.append(
        "retention is not yet verified by reading the files (`steward retention verify` is "
        "not built)"
    )
    return evidence, gaps


def _oversight(facts: _Facts) -> Gathered:
    evidence, gaps = [], []
    added = [row for row in facts.with_action("identity.add")
             if row.target in {identity.name for identity in facts.reviewers}]  # fmt: skip
    if facts.reviewers and added:
        names = ", ".join(sorted(identity.name for identity in facts.reviewers))
        evidence.append(Evidence(f"people who may approve and decide: {names}", facts.ids(added)))
    else:
        gaps.append("no person holds the approver role; `steward access add NAME --role approver`")
    decided = facts.with_action("review.")
    if facts.reviews and decided:
        overridden = sum(1 for review in facts.reviews if review.overridden)
        by = Counter(review.decided_by for review in facts.reviews)
        evidence.append(
            Evidence(
                f"{len(facts.reviews)} predictions reviewed by a person, {overridden} overridden; "
                f"decided by {', '.join(f'{who} ({n})' for who, n in by.most_common())}",
                facts.ids(decided),
            )
        )
    suspensions = facts.with_action("system.suspend", "system.resume")
    if suspensions:
        evidence.append(
            Evidence(
                f"the system was suspended or resumed {len(suspensions)} times (kill switch: "
                "`steward suspend`), each by a named actor",
                facts.ids(suspensions),
            )
        )
    approvals = facts.with_action("approval.")
    if approvals:
        decided_by = sorted({row.actor for row in approvals if row.action != "approval.request"})
        evidence.append(
            Evidence(
                f"{len(approvals)} approval entries (requests and decisions); decided by "
                f"{', '.join(decided_by) or 'nobody yet'}",
                facts.ids(approvals),
            )
        )
    return evidence, gaps


def _inputs(facts: _Facts) -> Gathered:
    contracts = facts.with_action("contract.version")
    quality = facts.with_action("monitor.data_quality.")
    evidence = []
    if contracts:
        evidence.append(
            Evidence(
                f"{len(contracts)} contract versions check every input at the door (type, range, "
                "categories), rejecting or flagging what breaks them",
                facts.ids(contracts),
            )
        )
    if quality:
        evidence.append(
            Evidence(
                f"{len(quality)} data-quality breaches detected and alerted on", facts.ids(quality)
            )
        )
    gaps = [] if contracts else ["no data contract is declared for this system"]
    return evidence, gaps


def _monitoring(facts: _Facts) -> Gathered:
    evidence = []
    breaches = facts.with_action("monitor.")
    if breaches:
        kinds = Counter(row.action.split(".")[1] for row in breaches)
        evidence.append(
            Evidence(
                "monitor breaches: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()),
                facts.ids(breaches),
            )
        )
    alerts = facts.with_action("alert.")
    if alerts:
        fired = sum(1 for row in alerts if row.action == "alert.fire")
        resolved = sum(1 for row in alerts if row.action == "alert.resolve")
        evidence.append(Evidence(f"{fired} alerts fired, {resolved} resolved", facts.ids(alerts)))
    actions = facts.with_action("playbook.")
    if actions:
        kinds = Counter(row.action.split(".", 1)[1] for row in actions)
        evidence.append(
            Evidence(
                "what was done: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()),
                facts.ids(actions),
            )
        )
    slos = facts.info.declared.slos
    gaps = [] if slos else ["no SLO is declared: monitoring has no objective to be held to"]
    gaps.append(_FAIRNESS)
    return evidence, gaps


def _incidents(facts: _Facts) -> Gathered:
    from steward.governance.incidents import list_incidents

    evidence, gaps = [], []
    rules = [p.when for p in facts.info.declared.playbooks if "declare_incident" in p.do]
    config = facts.with_action("system.create", "system.update")
    if rules and config:
        evidence.append(
            Evidence(
                f"alerts on {', '.join(rules)} are declared incidents by a playbook, starting "
                "their Art. 73 clock",
                facts.ids(config),
            )
        )
    for incident in list_incidents(facts.workspace, facts.system):
        cited = [r for r in facts.entries if r.target == f"{facts.system}/incident/{incident.id}"]
        text = (
            f"incident #{incident.id} ({incident.kind}, {incident.severity}) declared by "
            f"{incident.declared_by} on {incident.declared_at:%Y-%m-%d %H:%M} UTC: "
            f"{incident.title}; {len(incident.actions)} actions; {incident.clock()}"
        )
        if incident.cause:
            text += f"; cause: {incident.cause}"
        evidence.append(Evidence(text, facts.ids(cited)))
        left = incident.time_left()
        if incident.state == "open" and left is not None and left.total_seconds() < 0:
            gaps.append(f"incident #{incident.id}: {incident.clock()}")
    if not evidence:
        gaps.append(
            "no incident has been declared and no playbook declares one: serious alerts rely "
            "on a person running `steward incidents declare`"
        )
    gaps.append("reporting to the market surveillance authority happens outside Steward")
    return evidence, gaps


def _documentation(facts: _Facts) -> Gathered:
    registered = facts.with_action("model.register", "prompt.register")
    evidence, gaps = [], []
    if registered:
        evidence.append(
            Evidence(
                f"{len(registered)} model or prompt versions registered with lineage (data "
                "fingerprint, code, params, metrics); model cards are generated from them",
                facts.ids(registered),
            )
        )
    card = facts.info.declared.card
    missing = [name for name in ("intended_use", "owner") if not getattr(facts.info, name, None)]
    missing += [name for name, value in card.model_dump().items() if not value] if card else []
    if missing:
        gaps.append(f"model card fields nobody wrote: {', '.join(missing)}")
    return evidence, gaps


def _changes(facts: _Facts) -> Gathered:
    moves = facts.with_action("alias.", "prompt_label.", "system.update", "approval.")
    if not moves:
        return [], ["no change to what serves has been recorded"]
    people = sorted({row.actor for row in moves})
    return [
        Evidence(
            f"{len(moves)} changes to what serves (alias and label moves, approvals, "
            f"configuration), by {', '.join(people)}",
            facts.ids(moves),
        )
    ], []


def _audit(facts: _Facts) -> Gathered:
    check = facts.audit_check
    if not facts.entries:
        return [], ["the audit log holds no entry for this system"]
    latest = facts.entries[-1:]
    text = f"audit tree {check.message}"
    return ([Evidence(text, [row.id for row in latest])], [] if check.ok else [text])


def _outside(*gaps: str) -> Callable[[_Facts], Gathered]:
    def gather(facts: _Facts) -> Gathered:
        return [], list(gaps)

    return gather


def _day(value: Any) -> str:
    return value.strftime("%Y-%m-%d") if isinstance(value, datetime) else "–"


_FAIRNESS: Final = "fairness by group is not monitored yet (the measure exists: docs/fairness.md)"
_EU_AI_ACT: Final = (
    ("Art. 12, 19, 26(6)", "Automatic logs, kept at least six months", _logging),
    ("Art. 14, 26(2)", "Human oversight by competent people", _oversight),
    ("Art. 26(4)", "Input data relevant to the intended purpose", _inputs),
    ("Art. 26(5), 72", "Monitoring of operation, suspension on risk", _monitoring),
    ("Art. 26(5), 73", "Serious incidents reported within 2, 10 or 15 days", _incidents),
    ("Art. 11, 13", "Instructions and technical documentation (model card)", _documentation),
    ("Art. 12(2)", "Traceability of changes, with approvals", _changes),
    ("Art. 12", "Tamper-evident record", _audit),
    ("Art. 9", "Risk management system",
     _outside("a written risk management system is kept outside Steward")),
    ("Art. 26(7)", "Workers informed",
     _outside("informing workers and their representatives is not evidenced by Steward")),
    ("Art. 27", "Fundamental rights impact assessment",
     _outside("a fundamental rights impact assessment is kept outside Steward")),
    ("Art. 4", "AI literacy of staff", _outside("staff AI literacy is not evidenced by Steward")),
)  # fmt: skip
_NIST_AI_RMF: Final = (
    ("GOVERN 1.5", "Ongoing monitoring and periodic review planned", _monitoring),
    ("GOVERN 1.4", "Transparent policies: who may change what", _changes),
    ("MAP 1.1", "Intended purpose and context documented", _documentation),
    ("MEASURE 2.4", "Functionality and behavior monitored in production", _inputs),
    ("MEASURE 2.11", "Fairness and bias evaluated", _outside(_FAIRNESS)),
    ("MANAGE 2.4", "Mechanisms to supersede, disengage or deactivate", _oversight),
    ("MANAGE 4.1", "Post-deployment monitoring, logging and change management", _logging),
    ("MANAGE 4.3", "Incidents and errors tracked and communicated", _incidents),
    ("GOVERN 4.2", "Risks and impacts documented",
     _outside("a written risk and impact record is kept outside Steward")),
    ("MEASURE 2.7", "Record integrity (security and resilience)", _audit),
)  # fmt: skip
