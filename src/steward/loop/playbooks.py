"""Playbooks: what Steward does, step by step, when an alert fires.

A system's ``playbooks:`` in ``steward.yaml`` say, for alerts whose rule matches ``when`` (``*``, an
exact rule such as ``slo:latency``, or a glob such as ``monitor:*``), which steps to take in order:

=====================  ==========================================================================
step                   what it does
=====================  ==========================================================================
``notify``             nothing more: the alert's notifiers already tell people (no second message)
``rollback``           moves ``champion`` back to the last known good version (see below)
``suspend``            suspends the automation: decisions go to review, or to a fallback action
``retrain``            runs the user's training command on recent labeled traffic (``retrain``)
``promote_if_better``  compares challenger and champion (``promotion``); promotes, or asks a person
=====================  ==========================================================================

``respond(steward, events, alert)`` runs them and records each step as an action (``done``,
``failed``, ``skipped`` or ``pending_approval``, with a reason a person paged at 3 a.m. can act on),
audited. A failed step does not stop the playbook, except that a promotion never follows a retrain
that did not succeed.

The last known good version is the one ``champion`` held before the current one, on the alias
history's undo stack, passing over versions that were themselves rolled back from before.

>>> [playbook.when for playbook in matching_playbooks(
...     SystemConfig(name="churn", task="binary", playbooks=[
...         PlaybookConfig(when="monitor:*", do=["notify"]),
...         PlaybookConfig(when="slo:latency", do=["rollback"])]), "monitor:drift")]
['monitor:*']
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import select

from steward.data.events import EventLog
from steward.errors import ConflictError, InvalidInputError, StewardError, UnknownAliasError
from steward.llm import prompts
from steward.loop import promotion, retrain
from steward.model import registry
from steward.plugins import hookimpl, plugin_manager
from steward.store import ActionRow, AliasMove, AliasRow, audit, utcnow
from steward.workspace import Workspace
from steward.workspace.config import PlaybookConfig, SystemConfig

__all__ = [
    "ACTION_STATUSES",
    "STEPS",
    "Action",
    "AlertLike",
    "FunctionStep",
    "Step",
    "StepContext",
    "StepOutcome",
    "available_steps",
    "list_actions",
    "matching_playbooks",
    "respond",
    "rollback_to_last_good",
    "run_step",
    "steward_playbook_steps",
]

logger = logging.getLogger(__name__)

#: The steps that ship; plugins add more through the ``steward_playbook_steps`` hook.
STEPS: Final = (
    "notify",
    "rollback",
    "rollback_prompt",
    "suspend",
    "retrain",
    "promote_if_better",
    "declare_incident",
)
ACTION_STATUSES: Final = ("done", "failed", "skipped", "pending_approval")
PLAYBOOK_ACTOR: Final = "steward"


class AlertLike(Protocol):
    """What a playbook needs of an alert (``steward.loop.alerts.Alert`` has it)."""

    @property
    def id(self) -> int: ...
    @property
    def system(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class Action:
    """One step taken on a system, by a playbook or by hand, and how it went."""

    id: int
    system: str
    kind: str
    status: str
    reason: str
    actor: str
    created_at: datetime
    alert_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class StepOutcome:
    """What a step did: a status from ``ACTION_STATUSES``, why, and the figures behind it."""

    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepContext:
    """What a step runs with: the workspace, the event log, the system, who acts and why."""

    steward: Workspace
    events: EventLog
    system: str
    actor: str
    playbook: PlaybookConfig | None
    alert: AlertLike | None

    @property
    def at(self) -> datetime | None:
        """The alert's time (the loop's clock, simulated in the demo and tests); None: now."""
        seen = getattr(self.alert, "last_seen_at", None)
        return seen if isinstance(seen, datetime) else None

    @property
    def why(self) -> str:
        if self.alert is None:
            return f"run by hand by {self.actor}"
        return f"alert #{self.alert.id} ({self.alert.rule}): {self.alert.summary}"


def matching_playbooks(config: SystemConfig, rule: str) -> list[PlaybookConfig]:
    """The system's playbooks whose ``when`` matches ``rule`` (exact, ``*`` or a glob), in order."""
    return [
        playbook
        for playbook in config.playbooks
        if playbook.when == rule or fnmatch.fnmatchcase(rule, playbook.when)
    ]


def respond(steward: Workspace, events: EventLog, alert: AlertLike) -> list[Action]:
    """Run every playbook of the alert's system that matches its rule; one action per step.

    >>> actions = respond(steward, events, alert)  # doctest: +SKIP
    >>> [(action.kind, action.status) for action in actions]  # doctest: +SKIP
    [('notify', 'done'), ('rollback', 'done')]
    """
    config = steward.system(alert.system).declared
    actions: list[Action] = []
    for playbook in matching_playbooks(config, alert.rule):
        context = StepContext(steward, events, alert.system, PLAYBOOK_ACTOR, playbook, alert)
        blocked: str | None = None
        for kind in playbook.do:
            if kind == "promote_if_better" and blocked is not None:
                outcome = StepOutcome("skipped", blocked)
            else:
                outcome = _safely(kind, context)
            if kind == "retrain" and outcome.status != "done":
                blocked = (
                    f"no promotion: the retrain step before it {outcome.status}, so there is no "
                    "new challenger to promote"
                )
            actions.append(_record(context, kind, outcome))
    return actions


def run_step(
    steward: Workspace,
    events: EventLog,
    system: str,
    kind: str,
    *,
    actor: str | None = None,
    playbook: PlaybookConfig | None = None,
) -> Action:
    """Run one step by hand (``steward retrain``, ``steward promote --if-better``), recorded.

    >>> run_step(steward, events, "churn", "retrain").status  # doctest: +SKIP
    'done'
    """
    steps = available_steps()
    if kind not in steps:
        raise InvalidInputError(f"unknown step {kind!r}; steps are {', '.join(steps)}")
    steward.system(system)  # an unknown system is the caller's mistake, raised, not recorded
    context = StepContext(steward, events, system, actor or steward.actor, playbook, None)
    return _record(context, kind, _safely(kind, context))


def list_actions(steward: Workspace, system: str, limit: int = 50) -> list[Action]:
    """The newest ``limit`` actions taken on ``system``, newest first."""
    if limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}")
    with steward.store.read() as session:
        system_row = registry.find_system(session, system)
        rows = session.scalars(
            select(ActionRow)
            .where(ActionRow.system_id == system_row.id)
            .order_by(ActionRow.id.desc())
            .limit(limit)
        )
        return [_action(system, row) for row in rows]


def rollback_to_last_good(
    steward: Workspace, system: str, *, actor: str, reason: str
) -> list[registry.AliasChange]:
    """Move ``champion`` back to its last known good holder; ``[]`` when there is none.

    Replays the alias history as an undo stack (as ``registry.rollback`` does) and pops until the
    holder is neither the current version nor one that was itself rolled back from. Each pop is a
    ``rollback`` move in the history, all in one transaction, so serving never sees the versions
    passed over and a later ``steward rollback`` keeps walking the same stack.
    """
    with steward.store.write() as session:
        system_row = registry.find_system(session, system)
        steward.store.lock_system(session, system_row.id)
        moves = session.scalars(
            select(AliasMove)
            .where(AliasMove.system_id == system_row.id, AliasMove.alias == "champion")
            .order_by(AliasMove.id)
        ).all()
        stack: list[int | None] = []
        for move in moves:
            if move.action == "rollback" and stack:
                stack.pop()
            else:
                stack.append(move.to_version)
        alias = session.get(AliasRow, (system_row.id, "champion"))
        current = alias.version if alias else None
        bad = {move.from_version for move in moves if move.action == "rollback"}
        pops = _pops_to_good(stack, current, bad)
        if current is None or pops is None:
            return []
        changes = []
        for step in range(1, pops + 1):
            target = stack[-1 - step]
            note = reason if step == pops else f"{reason} (passing v{target}: rolled back before)"
            changes.append(
                registry.apply_move(
                    session, system_row, "champion", target, "rollback", actor, note
                )
            )
        return changes


def _pops_to_good(stack: list[int | None], current: int | None, bad: set[int | None]) -> int | None:
    for pops in range(1, len(stack)):
        holder = stack[-1 - pops]
        if holder is None:
            return None
        if holder != current and holder not in bad:
            return pops
    return None


# ---------------------------------------------------------------------------------------------
# Steps


def _safely(kind: str, context: StepContext) -> StepOutcome:
    """Run a step; an error becomes a ``failed`` outcome so the playbook (and the loop) goes on."""
    try:
        return available_steps()[kind].run(context)
    except StewardError as error:
        return StepOutcome("failed", f"{kind} failed: {error}", {"error": str(error)})
    except Exception as error:  # a bug in one step must not stop the others or the loop
        logger.exception("playbook step %s on %s failed", kind, context.system)
        text = f"{type(error).__name__}: {error}"
        return StepOutcome("failed", f"{kind} failed unexpectedly ({text})", {"error": text})


def _notify(context: StepContext) -> StepOutcome:
    notify = context.steward.system(context.system).declared.notify
    channels = []
    if notify.webhook:
        channels.append("the webhook")
    if notify.email:
        channels.append("email to " + ", ".join(notify.email))
    where = " and ".join(channels) or "the log (no webhook or email is configured)"
    return StepOutcome(
        "done",
        f"people are told through the alert's notifiers, {where}; the playbook sends no second "
        "message",
        {"webhook": bool(notify.webhook), "email": list(notify.email)},
    )


def _rollback(context: StepContext) -> StepOutcome:
    reason = f"rollback by playbook: {context.why}"
    changes = rollback_to_last_good(
        context.steward, context.system, actor=context.actor, reason=reason
    )
    if not changes:
        holder = _champion(context)
        return StepOutcome(
            "skipped",
            f"nothing to roll back to: champion ({holder}) has no earlier known good version in "
            f"its history; see `steward models history {context.system}`",
            {"champion": holder},
        )
    start, end = changes[0].from_version, changes[-1].to_version
    passed = [change.to_version for change in changes[:-1]]
    also = (
        f", passing over {', '.join(f'v{v}' for v in passed)} (rolled back before)"
        if passed
        else ""
    )
    return StepOutcome(
        "done",
        f"champion moved back from v{start} to v{end}, its last known good version{also}; "
        f"undo with `steward models alias {context.system} champion {start}`",
        {"from": start, "to": end, "passed_over": passed},
    )


def _rollback_prompt(context: StepContext) -> StepOutcome:
    """Move ``production`` of the prompt whose label moved last back to its previous version."""
    moves = [
        change
        for newest in prompts.list_prompts(context.steward.store, context.system)
        for change in prompts.label_history(
            context.steward.store, context.system, newest.prompt, "production"
        )[-1:]
    ]
    if not moves:
        return StepOutcome(
            "skipped",
            f"{context.system} has no prompt with a production label to roll back; see "
            f"`steward prompts list {context.system}`",
        )
    last = max(moves, key=lambda change: change.moved_at)
    try:
        change = prompts.rollback_label(
            context.steward.store,
            context.system,
            last.prompt,
            actor=context.actor,
            reason=f"rollback by playbook: {context.why}",
        )
    except StewardError as error:
        return StepOutcome("skipped", str(error), {"prompt": last.prompt})
    return StepOutcome(
        "done",
        f"prompt {last.prompt} production moved back from v{change.from_version} to "
        f"v{change.to_version}; undo with `steward prompts label {context.system} "
        f"{last.prompt} production {change.from_version}`",
        {"prompt": last.prompt, "from": change.from_version, "to": change.to_version},
    )


def _champion(context: StepContext) -> str:
    try:
        return f"v{context.steward.version(context.system, 'champion').version}"
    except StewardError:
        return "not set"


def _declare_incident(context: StepContext) -> StepOutcome:
    """Declare the alert an incident (its kind from the playbook), once per alert."""
    from steward.governance.incidents import declare_incident, list_incidents

    if context.alert is None:
        return StepOutcome(
            "skipped",
            "declare_incident runs on an alert; a person declares one with `steward incidents "
            f"declare {context.system}`",
        )
    alert_id = context.alert.id
    if any(i.alert_id == alert_id for i in list_incidents(context.steward, context.system)):
        return StepOutcome("skipped", f"alert #{alert_id} is already an incident")
    playbook = context.playbook
    incident = declare_incident(
        context.steward,
        context.system,
        f"{context.alert.rule}: {context.alert.summary}",
        kind=playbook.incident_kind if playbook else "serious",
        severity=playbook.incident_severity if playbook else "major",
        alert_id=alert_id,
        actor=context.actor,
        at=context.at,
    )
    return StepOutcome(
        "done",
        f"incident #{incident.id} declared ({incident.kind}): {incident.clock(context.at)}",
        {"incident": incident.id, "kind": incident.kind},
    )


def _suspend(context: StepContext) -> StepOutcome:
    from steward.delivery.suspension import suspend

    playbook = context.playbook
    mode = playbook.suspend_mode if playbook else "review"
    fallback = playbook.fallback_action if playbook else None
    try:
        suspension = suspend(
            context.steward,
            context.system,
            mode=mode,
            fallback_action=fallback,
            reason=context.why,
            actor=context.actor,
        )
    except ConflictError as error:
        return StepOutcome("skipped", f"already suspended, left as it is: {error}")
    return StepOutcome(
        "done",
        f"automation suspended: {suspension.describe()}; resume with "
        f"`steward resume {context.system}` once the cause is fixed",
        suspension.to_dict(),
    )


def _retrain(context: StepContext) -> StepOutcome:
    result = retrain.run_retrain(context.steward, context.events, context.system, at=context.at)
    return StepOutcome(result.status, result.reason, result.details)


def _promote_if_better(context: StepContext) -> StepOutcome:
    steward, system = context.steward, context.system
    try:
        challenger = steward.version(system, "challenger").version
        champion = steward.version(system, "champion").version
    except UnknownAliasError as error:
        return StepOutcome("skipped", f"nothing to compare: {error}")
    if challenger == champion:
        return StepOutcome(
            "skipped", f"nothing to compare: challenger and champion are both v{champion}"
        )
    comparison = promotion.compare_models(
        steward, context.events, system, challenger, champion, at=context.at
    )
    figures = comparison.to_dict()
    if not comparison.better:
        return StepOutcome("skipped", f"kept the champion: {comparison.summary()}", figures)
    info = steward.system(system)
    protected = "champion" in info.config.get("protected_aliases", [])
    if info.risk_tier == "high" or protected:
        alert_id = context.alert.id if context.alert else None
        approval = promotion.find_pending(steward, comparison) or promotion.request_promotion(
            steward, comparison, actor=context.actor, alert_id=alert_id
        )
        return StepOutcome(
            "pending_approval",
            f"{comparison.summary()}; {system!r} is "
            f"{'high-risk' if info.risk_tier == 'high' else 'protected'}, so a person decides: "
            f"`steward approvals approve {approval.id}` (or reject)",
            {**figures, "approval_id": approval.id},
        )
    change = promotion.promote(
        steward, comparison, actor=context.actor, reason=f"promoted: {comparison.summary()}"
    )
    return StepOutcome(
        "done",
        f"champion moved from v{change.from_version} to v{change.to_version}: "
        f"{comparison.summary()}",
        figures,
    )


class Step(Protocol):
    """A playbook step: ``name`` (as written under ``do:``) and ``run(context)``."""

    @property
    def name(self) -> str: ...

    def run(self, context: StepContext) -> StepOutcome: ...


@dataclass(frozen=True)
class FunctionStep:
    """A step made of a name and a function of the context."""

    name: str
    function: Callable[[StepContext], StepOutcome]

    def run(self, context: StepContext) -> StepOutcome:
        return self.function(context)


@hookimpl
def steward_playbook_steps() -> list[Step]:
    """The built-in steps, registered through the same hook as a plugin's."""
    return [
        FunctionStep("notify", _notify),
        FunctionStep("rollback", _rollback),
        FunctionStep("rollback_prompt", _rollback_prompt),
        FunctionStep("suspend", _suspend),
        FunctionStep("retrain", _retrain),
        FunctionStep("promote_if_better", _promote_if_better),
        FunctionStep("declare_incident", _declare_incident),
    ]


def available_steps() -> dict[str, Step]:
    """Every registered step by name, built-ins first (a plugin may not replace one)."""
    found: dict[str, Step] = {}
    for steps in reversed(plugin_manager().hook.steward_playbook_steps()):
        for step in steps:
            found.setdefault(step.name, step)
    return found


# ---------------------------------------------------------------------------------------------
# Recording


def _record(context: StepContext, kind: str, outcome: StepOutcome) -> Action:
    details = promotion.json_safe(outcome.details)
    alert_id = context.alert.id if context.alert else None
    with context.steward.store.write() as session:
        system_row = registry.find_system(session, context.system)
        row = ActionRow(
            system_id=system_row.id,
            alert_id=alert_id,
            kind=kind,
            status=outcome.status,
            reason=outcome.reason,
            details=details,
            actor=context.actor,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=context.actor,
            action=f"playbook.{kind}",
            target=context.system,
            details={
                "action_id": row.id,
                "status": outcome.status,
                "alert_id": alert_id,
                "reason": outcome.reason,
            },
        )
        return _action(context.system, row)


def _action(system: str, row: ActionRow) -> Action:
    return Action(
        id=row.id,
        system=system,
        kind=row.kind,
        status=row.status,
        reason=row.reason,
        actor=row.actor,
        created_at=row.created_at,
        alert_id=row.alert_id,
        details=dict(row.details),
    )
