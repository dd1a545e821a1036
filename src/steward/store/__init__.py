"""The metadata store: tables, engine and migrations.

SQLite under ``.steward/`` by default, PostgreSQL when ``STEWARD_DATABASE_URL`` names one. The schema is
owned by Alembic migrations in ``steward/migrations``; ``open_store`` upgrades to the newest on open.

Writes that read-then-write (numbering a version, moving an alias) run in ``store.write()``, which takes
the database's write lock up front: ``BEGIN IMMEDIATE`` on SQLite, a row lock (``SELECT ... FOR UPDATE``
on the system) on PostgreSQL. That is what keeps two processes from writing the same version number or
an alias history whose links do not meet.

>>> store = open_store("sqlite:///:memory:")
>>> with store.read() as session:
...     session.scalars(select(System)).all()
[]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Final

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from steward.errors import ConfigError, DatabaseUnreachableError

__all__ = [
    "MAX_ROW_ID",
    "ActionRow",
    "AlertRow",
    "AliasMove",
    "AliasRow",
    "ApprovalRow",
    "AuditRow",
    "Base",
    "ContractRow",
    "EvalRunRow",
    "IdentityRow",
    "IncidentRow",
    "ModelVersionRow",
    "MonitorResultRow",
    "NotificationRow",
    "PromptLabelMove",
    "PromptLabelRow",
    "PromptVersionRow",
    "ReviewDecisionRow",
    "SLOEvaluationRow",
    "Store",
    "SuspensionRow",
    "System",
    "TokenRow",
    "clock_at",
    "open_store",
    "select",
    "utcnow",
]


#: The largest id an INTEGER primary key holds (PostgreSQL int4): an id beyond it names no row.
MAX_ROW_ID: Final = 2**31 - 1


_CLOCK: ContextVar[Callable[[], datetime] | None] = ContextVar("steward_clock", default=None)


def utcnow() -> datetime:
    """Now, in UTC: the wall clock, unless ``clock_at`` set another for this context.

    Every row and audit entry Steward writes is stamped with this, so a replay (the demo's
    simulated weeks) writes one consistent history.
    """
    clock = _CLOCK.get()
    return clock() if clock is not None else datetime.now(UTC)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Within the block (in this thread or task), ``utcnow()`` reads ``moment`` plus the time
    elapsed since the block began, so what is written inside keeps its order.

    >>> with clock_at(datetime(2026, 3, 2, tzinfo=UTC)):
    ...     utcnow().date().isoformat()
    '2026-03-02'
    """
    if moment.tzinfo is None:
        raise ValueError(f"clock_at needs a timezone-aware moment, got {moment!r}")
    began = time.monotonic()
    token = _CLOCK.set(lambda: moment + timedelta(seconds=time.monotonic() - began))
    try:
        yield
    finally:
        _CLOCK.reset(token)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime}


class System(Base):
    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    risk_tier: Mapped[str] = mapped_column(String(50), default="")
    intended_use: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(200), default="")
    entity_key: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("system_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    flavor: Mapped[str] = mapped_column(String(50))
    artifact_sha256: Mapped[str] = mapped_column(String(64), index=True)
    artifact_name: Mapped[str] = mapped_column(String(500))
    artifact_size: Mapped[int] = mapped_column(Integer)
    trusted_types: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code: Mapped[dict[str, Any]] = mapped_column(default=dict)
    libraries: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasRow(Base):
    """Where an alias points now; ``AliasMove`` keeps every move that led here."""

    __tablename__ = "aliases"

    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    moved_by: Mapped[str] = mapped_column(String(200))
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasMove(Base):
    __tablename__ = "alias_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    # "move" or "rollback": rollback pops the last move, so two rollbacks go two steps back.
    action: Mapped[str] = mapped_column(String(20), default="move")
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    moved_by: Mapped[str] = mapped_column(String(200))
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class ContractRow(Base):
    """One version of a system's data contract; a new row each time ``apply`` finds it changed."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("system_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    breaking: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitorResultRow(Base):
    """One stored result of one monitor over one window."""

    __tablename__ = "monitor_results"
    # The dashboard and the loop read a system's newest results of one monitor over a span; the
    # dashboard samples a span by id and status, read from this index alone (migration 0010).
    __table_args__ = (
        Index(
            "ix_monitor_results_system_monitor_end_status",
            "system_id",
            "monitor",
            "window_end",
            "status",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    monitor: Mapped[str] = mapped_column(String(50))
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SLOEvaluationRow(Base):
    """One evaluation of one SLO: its SLO window, ending when the loop evaluated it.

    ``status`` reads as a monitor result's does: ``ok``, ``breach`` (a burn-rate pair fires, the
    SLO's own status ``alerting``), ``not_enough_data`` or ``error``. ``details`` keeps the whole
    evaluation (``steward.monitoring.slo.SLOStatus.to_dict``), the SLO's own status included.
    """

    __tablename__ = "slo_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    indicator: Mapped[str] = mapped_column(String(50), default="")
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()  # the evaluation time
    status: Mapped[str] = mapped_column(String(30))
    sli: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_remaining: Mapped[float | None] = mapped_column(Float, nullable=True)
    burn_rates: Mapped[dict[str, Any]] = mapped_column(default=dict)  # window -> rate or None
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRow(Base):
    """One breach of one rule, with its lifecycle: firing, acknowledged, resolved.

    At most one alert per (system, rule) is open (not resolved) at a time: a check that sees the same
    breach again updates ``last_seen_at`` and ``checks`` instead of opening another.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    rule: Mapped[str] = mapped_column(String(200))  # e.g. "slo:latency" or "monitor:drift"
    group_key: Mapped[str] = mapped_column(String(200), default="")
    severity: Mapped[str] = mapped_column(String(20), default="ticket")  # page | ticket
    state: Mapped[str] = mapped_column(String(20), default="firing")
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checks: Mapped[int] = mapped_column(Integer, default=1)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class NotificationRow(Base):
    """One attempt to tell someone about an alert, and whether it got through."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # webhook | email | log
    target: Mapped[str] = mapped_column(String(500), default="")
    event: Mapped[str] = mapped_column(String(20))  # fired | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(20))  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ActionRow(Base):
    """One step a playbook (or a person) took on a system, with why and how it went."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(50))  # notify | rollback | suspend | retrain | ...
    status: Mapped[str] = mapped_column(String(30))  # done | failed | skipped | pending_approval
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalRow(Base):
    """A change that waits for a person (a promotion on a high-risk system, say)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))  # promote
    subject: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|rejected
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")


class ReviewDecisionRow(Base):
    """A person's decision on a prediction that went to review: approved as proposed, or overridden."""

    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("system_id", "prediction_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    prediction_id: Mapped[str] = mapped_column(String(200))
    proposed_action: Mapped[str | None] = mapped_column(String(100), nullable=True)
    action: Mapped[str] = mapped_column(String(100))
    overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class SuspensionRow(Base):
    """Automation suspended on a system: every decision goes to review, or to a fallback action.

    The open suspension is the row with ``ended_at`` null; ending it keeps the row as history.
    """

    __tablename__ = "suspensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    mode: Mapped[str] = mapped_column(String(20))  # review | fallback
    fallback_action: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)


class IncidentRow(Base):
    """An alert (or a person's finding) declared an incident: its kind sets the Art. 73 clock.

    ``actions`` holds what was done, in order (``{"at", "by", "text"}``); closing needs ``cause``.
    """

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # serious | death | widespread | other
    severity: Mapped[str] = mapped_column(String(20))  # critical | major | minor
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | closed
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
    report_due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cause: Mapped[str] = mapped_column(Text, default="")
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class IdentityRow(Base):
    """Someone (a person or a service) the HTTP API knows, with the highest role they may hold.

    ``kind`` is ``user`` (a person: tokens, login links, sessions) or ``service`` (tokens only).
    A disabled identity keeps its row, so what it did stays attributable.
    """

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # user | service
    role: Mapped[str] = mapped_column(String(20))  # viewer | client | operator | approver | admin
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TokenRow(Base):
    """A credential of one identity: an API token, a one-time login link, or a browser session.

    Only the SHA-256 of the secret is stored; the secret is shown once, when it is made. ``key`` is
    the public part of the credential, used to find the row, list it and revoke it.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # api | login | session
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PromptVersionRow(Base):
    """One registered version of a prompt file, immutable, identified by its content hash."""

    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("system_id", "prompt", "version"),
        UniqueConstraint("system_id", "prompt", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    prompt: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code: Mapped[dict[str, Any]] = mapped_column(default=dict)
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptLabelRow(Base):
    """Where a prompt's label points now; ``PromptLabelMove`` keeps every move that led here."""

    __tablename__ = "prompt_labels"

    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), primary_key=True)
    prompt: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    moved_by: Mapped[str] = mapped_column(String(200))
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptLabelMove(Base):
    __tablename__ = "prompt_label_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    prompt: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20), default="move")  # move | rollback
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    moved_by: Mapped[str] = mapped_column(String(200))
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The passed eval run the move cites (its id), if any.
    eval_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EvalRunRow(Base):
    """One eval run: an eval set run on a prompt version (and its baseline), and the decision."""

    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    prompt: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    baseline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baseline_label: Mapped[str] = mapped_column(String(100), default="")
    eval_set: Mapped[str] = mapped_column(String(500))
    eval_set_sha256: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(500))
    decision: Mapped[str] = mapped_column(String(20))  # pass | fail | report (no baseline gate)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Store:
    """An engine with a session factory; ``write()`` holds the write lock for read-then-write work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._local_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success; on SQLite it holds the database write lock."""
        with self._local_lock, self._sessions() as session, session.begin():
            if self.dialect == "sqlite":
                # pysqlite's own BEGIN is deferred; take the write lock before reading.
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            yield session

    def lock_system(self, session: Session, system_id: int) -> None:
        """Serialize writers of one system (PostgreSQL row lock; SQLite already holds its lock)."""
        if self.dialect != "sqlite":
            session.execute(select(System.id).where(System.id == system_id).with_for_update())

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"database URL {url!r} is not a valid SQLAlchemy URL; "
            "use e.g. sqlite:///path/steward.db or postgresql://user@host:5432/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.database)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    raise ConfigError(
        f"database URL {url!r}: backend {parsed.get_backend_name()!r} is not supported; "
        "use sqlite or postgresql"
    )


def _sqlite_engine(database: str | None) -> Engine:
    in_memory = database in (None, "", ":memory:")
    if not in_memory:
        Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{database or ':memory:'}",
        connect_args={"timeout": 60, "check_same_thread": False},
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so that write() can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        # Deleted rows (erasure, retention) are overwritten with zeros, not left in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def open_store(url: str) -> Store:
    """Connect to the metadata store at ``url`` and bring its schema to the newest migration."""
    from steward.store.migrations import upgrade

    engine = _create_engine(url)
    try:
        with engine.connect() as connection:
            upgrade(connection)
    except OperationalError as error:
        engine.dispose()
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseUnreachableError(
            f"cannot reach the metadata store {make_url(url).render_as_string(hide_password=True)}"
            f": {reason}; check STEWARD_DATABASE_URL and that the database is running"
        ) from None
    return Store(engine)
