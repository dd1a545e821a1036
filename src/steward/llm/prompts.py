"""The prompt registry: immutable versions of prompt files, and labels whose every move is kept.

A prompt of an ``llm`` system is a file in the workspace (``steward.llm.prompt_files``). ``push``
registers each file whose bytes changed as the prompt's next version, identified by its SHA-256,
with the git commit when there is one; unchanged files register nothing. Labels (``production``,
``staging`` or any name) point at versions the way aliases point at model versions, with the same
history, audit and undo stack (``steward.model.registry.replay_stack``): ``rollback`` undoes the
last move of a label, a second one goes a step further back.

A label in the system's ``protected_labels`` moves only through an approval another person decides
(``request_label_move``, then ``steward approvals approve``), or a rollback. A prompt with an eval
set moves to ``production`` only with a passed eval run of that version as its evidence
(``steward.llm.evals.store``); the move cites the run.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steward.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnknownAliasError,
    UnknownVersionError,
)
from steward.llm.prompt_files import PromptFile, PromptSpec, file_commit, read_prompt
from steward.model.registry import MAX_VERSION, check_pointer_name, find_system, replay_stack
from steward.store import (
    ApprovalRow,
    EvalRunRow,
    PromptLabelMove,
    PromptLabelRow,
    PromptVersionRow,
    Store,
    System,
    audit,
    utcnow,
)

__all__ = [
    "LabelChange",
    "PromptVersion",
    "Pushed",
    "apply_label_move",
    "diff_prompt_versions",
    "get_prompt",
    "label_history",
    "labels_by_prompt",
    "list_prompt_versions",
    "list_prompts",
    "move_label",
    "push_prompts",
    "register_prompt",
    "request_label_move",
    "rollback_label",
    "systems_with_prompt",
]


@dataclass(frozen=True)
class PromptVersion:
    """One registered version of a prompt, with the labels that point at it now."""

    system: str
    prompt: str
    version: int
    sha256: str
    path: str
    source: str
    spec: dict[str, Any]
    code: dict[str, Any]
    registered_by: str
    registered_at: datetime
    labels: tuple[str, ...] = ()

    @property
    def parsed(self) -> PromptSpec:
        return PromptSpec.model_validate(self.spec)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["registered_at"] = self.registered_at.isoformat()
        data["labels"] = list(self.labels)
        data["messages"] = [message.model_dump() for message in self.parsed.chat]
        return data


@dataclass(frozen=True)
class LabelChange:
    system: str
    prompt: str
    label: str
    action: str
    from_version: int | None
    to_version: int | None
    moved_by: str
    moved_at: datetime
    reason: str
    eval_run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "moved_at": self.moved_at.isoformat()}


@dataclass(frozen=True)
class Pushed:
    """What ``push_prompts`` did with one prompt file."""

    system: str
    prompt: str
    version: int
    created: bool
    path: str


def push_prompts(
    store: Store, system: str, declared: list[Any], base: Path, *, actor: str
) -> list[Pushed]:
    """Register each declared prompt file (``PromptConfig``) of ``system`` whose bytes changed."""
    pushed = []
    for prompt in declared:
        path = Path(prompt.file)
        file = read_prompt(path if path.is_absolute() else base / path)
        version, created = register_prompt(store, system, prompt.name, file, actor=actor)
        pushed.append(Pushed(system, prompt.name, version.version, created, str(file.path)))
    return pushed


def register_prompt(
    store: Store, system: str, prompt: str, file: PromptFile, *, actor: str
) -> tuple[PromptVersion, bool]:
    """The next version of ``prompt`` for these bytes, or the version that already has them."""
    code = file_commit(file.path)
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        existing = session.scalars(
            select(PromptVersionRow).where(
                PromptVersionRow.system_id == system_row.id,
                PromptVersionRow.prompt == prompt,
                PromptVersionRow.sha256 == file.sha256,
            )
        ).first()
        if existing is not None:
            return _view(session, system_row, existing), False
        latest = session.scalar(
            select(func.max(PromptVersionRow.version)).where(
                PromptVersionRow.system_id == system_row.id, PromptVersionRow.prompt == prompt
            )
        )
        row = PromptVersionRow(
            system_id=system_row.id,
            prompt=prompt,
            version=(latest or 0) + 1,
            sha256=file.sha256,
            path=str(file.path),
            source=file.source,
            spec=file.spec.model_dump(mode="json"),
            code=code,
            registered_by=actor,
            registered_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="prompt.register",
            target=f"{system}/prompts/{prompt}/v{row.version}",
            details={"sha256": file.sha256, "commit": code.get("commit")},
            bind=row,
        )
        return _view(session, system_row, row), True


def get_prompt(store: Store, system: str, prompt: str, reference: int | str) -> PromptVersion:
    """A version by number (``2``, ``"v2"``) or by the label that points at it (``"production"``)."""
    with store.read() as session:
        system_row = find_system(session, system)
        number = _version_number(session, system_row, prompt, reference)
        row = None
        if 1 <= number <= MAX_VERSION:
            row = session.scalars(
                select(PromptVersionRow).where(
                    PromptVersionRow.system_id == system_row.id,
                    PromptVersionRow.prompt == prompt,
                    PromptVersionRow.version == number,
                )
            ).first()
        if row is None:
            latest = _latest(session, system_row, prompt)
            span = f"versions are 1 to {latest}" if latest else "it has no versions yet"
            raise UnknownVersionError(
                f"prompt {prompt!r} of {system!r} has no version {number} ({span}); see "
                f"`steward prompts list {system}`"
            )
        return _view(session, system_row, row)


def list_prompts(store: Store, system: str) -> list[PromptVersion]:
    """The newest version of each prompt of ``system``, by name."""
    with store.read() as session:
        system_row = find_system(session, system)
        newest = (
            select(PromptVersionRow.prompt, func.max(PromptVersionRow.version).label("version"))
            .where(PromptVersionRow.system_id == system_row.id)
            .group_by(PromptVersionRow.prompt)
            .subquery()
        )
        rows = session.scalars(
            select(PromptVersionRow)
            .join(
                newest,
                (PromptVersionRow.prompt == newest.c.prompt)
                & (PromptVersionRow.version == newest.c.version),
            )
            .where(PromptVersionRow.system_id == system_row.id)
            .order_by(PromptVersionRow.prompt)
        ).all()
        return [_view(session, system_row, row) for row in rows]


def labels_by_prompt(store: Store, system: str) -> dict[str, dict[str, int]]:
    """Where each prompt's labels point now, ``{prompt: {label: version}}``, in one query."""
    with store.read() as session:
        system_row = find_system(session, system)
        rows = session.scalars(
            select(PromptLabelRow).where(
                PromptLabelRow.system_id == system_row.id, PromptLabelRow.version.is_not(None)
            )
        )
        found: dict[str, dict[str, int]] = {}
        for row in rows:
            found.setdefault(row.prompt, {})[row.name] = int(row.version or 0)
        return found


def systems_with_prompt(store: Store, prompt: str) -> list[str]:
    """The systems that have a prompt of this name, sorted."""
    with store.read() as session:
        return list(
            session.scalars(
                select(System.name)
                .join(PromptVersionRow, PromptVersionRow.system_id == System.id)
                .where(PromptVersionRow.prompt == prompt)
                .distinct()
                .order_by(System.name)
            )
        )


def list_prompt_versions(store: Store, system: str, prompt: str) -> list[PromptVersion]:
    with store.read() as session:
        system_row = find_system(session, system)
        rows = session.scalars(
            select(PromptVersionRow)
            .where(PromptVersionRow.system_id == system_row.id, PromptVersionRow.prompt == prompt)
            .order_by(PromptVersionRow.version)
        ).all()
        if not rows:
            raise NotFoundError(_no_prompt(session, system_row, prompt))
        labels = _labels_by_version(session, system_row.id, prompt)
        return [_view(session, system_row, row, labels) for row in rows]


def move_label(
    store: Store,
    system: str,
    prompt: str,
    label: str,
    version: int | str | None,
    *,
    actor: str,
    reason: str = "",
) -> LabelChange:
    """Point ``label`` at ``version`` (``None`` removes it) and keep the move in its history.

    A protected label that is set moves only through an approval: ``ForbiddenError``. A prompt with
    an eval set moves to ``production`` only with a passed eval run of the version: the move cites
    it, and without one it is refused (``ConflictError``) with the command that makes one.
    """
    check_pointer_name(label, "label")
    target = None if version is None else get_prompt(store, system, prompt, version).version
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        current = session.get(PromptLabelRow, (system_row.id, prompt, label))
        protected = label in _config(system_row).get("protected_labels", [])
        if protected and current is not None and current.version != target:
            raise ForbiddenError(
                f"label {label!r} of prompt {prompt!r} on {system!r} is protected: it moves "
                f"only through an approval another person decides (`steward prompts label "
                f"{system} {prompt} {label} {target} --request`), or a rollback"
            )
        evidence = _evidence(session, system_row, prompt, label, target)
        return apply_label_move(
            session, system_row, prompt, label, target, "move", actor, reason, evidence
        )


def request_label_move(
    store: Store, system: str, prompt: str, label: str, version: int | str, *, actor: str
) -> int:
    """Open an approval to move a protected label; returns the approval's id."""
    check_pointer_name(label, "label")
    target = get_prompt(store, system, prompt, version).version
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        evidence = _evidence(session, system_row, prompt, label, target)
        current = session.get(PromptLabelRow, (system_row.id, prompt, label))
        subject = {
            "prompt": prompt,
            "label": label,
            "to": target,
            "from": current.version if current else None,
            "eval_run_id": evidence,
        }
        row = ApprovalRow(
            system_id=system_row.id,
            kind="prompt-label",
            subject=subject,
            state="pending",
            reason=f"move {prompt} {label} to v{target}"
            + (f" (eval run #{evidence} passed)" if evidence else ""),
            requested_by=actor,
            requested_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="approval.request",
            target=f"{system}/approval/{row.id}",
            details=subject,
            bind=row,
        )
        return row.id


def rollback_label(
    store: Store,
    system: str,
    prompt: str,
    *,
    actor: str,
    reason: str = "",
    label: str = "production",
) -> LabelChange:
    """Move ``label`` back to the version that held it before its last move."""
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        moves = session.scalars(
            select(PromptLabelMove)
            .where(
                PromptLabelMove.system_id == system_row.id,
                PromptLabelMove.prompt == prompt,
                PromptLabelMove.label == label,
            )
            .order_by(PromptLabelMove.id)
        )
        holders = replay_stack((move.action, move.to_version) for move in moves)
        if len(holders) < 2 or holders[-2] is None:
            current = holders[-1] if holders else None
            raise ConflictError(
                f"cannot roll back label {label!r} of prompt {prompt!r} on {system!r}: no earlier "
                f"holder than {'v' + str(current) if current else 'nothing'}; see "
                f"`steward prompts history {system} {prompt}`"
            )
        return apply_label_move(
            session, system_row, prompt, label, holders[-2], "rollback", actor, reason, None
        )


def label_history(
    store: Store, system: str, prompt: str, label: str | None = None
) -> list[LabelChange]:
    """Every move of the prompt's labels (or of one label), oldest first."""
    with store.read() as session:
        system_row = find_system(session, system)
        query = select(PromptLabelMove).where(
            PromptLabelMove.system_id == system_row.id, PromptLabelMove.prompt == prompt
        )
        if label is not None:
            query = query.where(PromptLabelMove.label == label)
        return [
            _change(system, move) for move in session.scalars(query.order_by(PromptLabelMove.id))
        ]


def diff_prompt_versions(a: PromptVersion, b: PromptVersion) -> str:
    """The two files as a unified diff, ``a`` to ``b`` (empty when they are the same)."""
    lines = difflib.unified_diff(
        a.source.splitlines(),
        b.source.splitlines(),
        fromfile=f"{a.prompt} v{a.version}",
        tofile=f"{b.prompt} v{b.version}",
        lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def apply_label_move(
    session: Session,
    system_row: System,
    prompt: str,
    label: str,
    target: int | None,
    action: str,
    actor: str,
    reason: str,
    eval_run_id: int | None,
) -> LabelChange:
    """Point the label at ``target`` inside ``session`` (which holds the system's lock)."""
    row = session.get(PromptLabelRow, (system_row.id, prompt, label))
    current = row.version if row else None
    now = utcnow()
    if row is None:
        row = PromptLabelRow(
            system_id=system_row.id,
            prompt=prompt,
            name=label,
            version=target,
            moved_by=actor,
            moved_at=now,
        )
        session.add(row)
    else:
        row.version, row.moved_by, row.moved_at = target, actor, now
    move = PromptLabelMove(
        system_id=system_row.id,
        prompt=prompt,
        label=label,
        action=action,
        from_version=current,
        to_version=target,
        moved_by=actor,
        moved_at=now,
        reason=reason,
        eval_run_id=eval_run_id,
    )
    session.add(move)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"prompt_label.{action}",
        target=f"{system_row.name}/prompts/{prompt}/{label}",
        details={"from": current, "to": target, "reason": reason, "eval_run_id": eval_run_id},
        bind=[row, move],
    )
    return _change(system_row.name, move)


def _evidence(
    session: Session, system_row: System, prompt: str, label: str, target: int | None
) -> int | None:
    """The passed eval run a move to ``production`` cites; refused without one when required."""
    if label != "production" or target is None:
        return None
    run_id = session.scalar(
        select(func.max(EvalRunRow.id)).where(
            EvalRunRow.system_id == system_row.id,
            EvalRunRow.prompt == prompt,
            EvalRunRow.version == target,
            EvalRunRow.decision == "pass",
        )
    )
    declared = {item["name"]: item for item in _config(system_row).get("prompts", [])}
    if run_id is None and (declared.get(prompt) or {}).get("evals"):
        raise ConflictError(
            f"prompt {prompt!r} v{target} of {system_row.name!r} has no passed eval run, and its "
            f"eval set gates 'production'; run `steward eval run {system_row.name} --prompt "
            f"{prompt} --version {target} --against production` first"
        )
    return run_id


def _config(system_row: System) -> dict[str, Any]:
    return dict(system_row.config or {})


def _latest(session: Session, system_row: System, prompt: str) -> int | None:
    return session.scalar(
        select(func.max(PromptVersionRow.version)).where(
            PromptVersionRow.system_id == system_row.id, PromptVersionRow.prompt == prompt
        )
    )


def _no_prompt(session: Session, system_row: System, prompt: str) -> str:
    names = session.scalars(
        select(PromptVersionRow.prompt)
        .where(PromptVersionRow.system_id == system_row.id)
        .distinct()
        .order_by(PromptVersionRow.prompt)
    ).all()
    known = f"its prompts: {', '.join(names)}" if names else "it has no prompts yet"
    return (
        f"system {system_row.name!r} has no prompt {prompt!r} ({known}); declare it under "
        "prompts: in steward.yaml and run `steward apply`"
    )


def _version_number(session: Session, system_row: System, prompt: str, reference: int | str) -> int:
    if isinstance(reference, int):
        return reference
    text = reference.strip()
    if re.fullmatch(r"[vV]?\d+", text):
        return int(text.lstrip("vV"))
    if _latest(session, system_row, prompt) is None:
        raise NotFoundError(_no_prompt(session, system_row, prompt))
    row = session.get(PromptLabelRow, (system_row.id, prompt, text))
    if row is None or row.version is None:
        held = _labels_by_version(session, system_row.id, prompt).values()
        names = sorted(name for names in held for name in names)
        hint = f"labels set: {', '.join(names)}" if names else "no label is set"
        raise UnknownAliasError(
            f"prompt {prompt!r} of {system_row.name!r} has no version at label {text!r} ({hint}); "
            f"give a version number or move the label with `steward prompts label`"
        )
    return row.version


def _labels_by_version(session: Session, system_id: int, prompt: str) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    rows = session.scalars(
        select(PromptLabelRow).where(
            PromptLabelRow.system_id == system_id, PromptLabelRow.prompt == prompt
        )
    )
    for label in rows:
        if label.version is not None:
            found.setdefault(label.version, []).append(label.name)
    return {version: tuple(sorted(names)) for version, names in found.items()}


def _view(
    session: Session,
    system_row: System,
    row: PromptVersionRow,
    labels: dict[int, tuple[str, ...]] | None = None,
) -> PromptVersion:
    if labels is None:
        labels = _labels_by_version(session, system_row.id, row.prompt)
    return PromptVersion(
        system=system_row.name,
        prompt=row.prompt,
        version=row.version,
        sha256=row.sha256,
        path=row.path,
        source=row.source,
        spec=dict(row.spec),
        code=dict(row.code),
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        labels=labels.get(row.version, ()),
    )


def _change(system: str, move: PromptLabelMove) -> LabelChange:
    return LabelChange(
        system=system,
        prompt=move.prompt,
        label=move.label,
        action=move.action,
        from_version=move.from_version,
        to_version=move.to_version,
        moved_by=move.moved_by,
        moved_at=move.moved_at,
        reason=move.reason,
        eval_run_id=move.eval_run_id,
    )
