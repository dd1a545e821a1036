"""Who may do what: identities, roles, and the credentials that prove an identity.

An identity is a person (``user``) or a program (``service``) with the highest ``Role`` it may
hold. It proves itself with a credential: an API token (``steward tokens create``), a one-time
login link (printed by ``steward serve``), or the browser session a login link opens. Every
credential is ``stw_<key>_<secret>``: ``key`` is public (it names the credential in lists, in the
audit log and to ``steward tokens revoke``), ``secret`` is 256 random bits shown once and stored
only as its SHA-256, so a copy of the database signs nobody in. Every credential expires, and a
credential's role is at most its identity's.

Every change here is an audit entry. Authentication (``Authenticator``) caches what it read for a
few seconds, so a revoked token stops working within ``CACHE_SECONDS``.

>>> from steward import Steward
>>> steward = Steward.open(tmp_path)                                        # doctest: +SKIP
>>> add_identity(steward, "ana", Role.APPROVER)                              # doctest: +SKIP
>>> issued = create_token(steward, "ana", expires_in=timedelta(days=30))     # doctest: +SKIP
>>> Authenticator(steward).identify(issued.secret).role                      # doctest: +SKIP
<Role.APPROVER: 4>
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.store import IdentityRow, TokenRow, audit, utcnow
from steward.workspace import Workspace

__all__ = [
    "CACHE_SECONDS",
    "KINDS",
    "LOGIN_LINK_LIFETIME",
    "MAX_TOKEN_LIFETIME",
    "SESSION_LIFETIME",
    "Authenticator",
    "Identity",
    "IdentityInfo",
    "Issued",
    "Role",
    "TokenInfo",
    "add_identity",
    "create_token",
    "csrf_token",
    "disable_identity",
    "ensure_identity",
    "list_identities",
    "list_tokens",
    "login_link",
    "redeem_login",
    "revoke_token",
    "start_session",
]

#: A revoked or expired credential stops working within this many seconds.
CACHE_SECONDS: Final = 5.0
LOGIN_LINK_LIFETIME: Final = timedelta(minutes=15)
SESSION_LIFETIME: Final = timedelta(hours=12)
MAX_TOKEN_LIFETIME: Final = timedelta(days=366)
#: ``last_used_at`` is written at most this often per credential, off the hot path's back.
_TOUCH_SECONDS: Final = 60.0
KINDS: Final = ("user", "service")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_CREDENTIAL = re.compile(r"stw_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")


class Role(enum.IntEnum):
    """Who may call what, lowest first; each role may do what the roles below it may.

    ``viewer`` reads; ``client`` predicts and sends predictions and outcomes; ``operator`` acts on
    alerts, reviews and suspensions; ``approver`` decides approvals; ``admin`` manages identities,
    tokens and config. ``anonymous`` is nobody signed in: health, readiness, metrics, the API
    description and static files only.
    """

    ANONYMOUS = 0
    VIEWER = 1
    CLIENT = 2
    OPERATOR = 3
    APPROVER = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        """The role's name as published in OpenAPI and in messages: ``operator``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"operator"`` as ``Role.OPERATOR``; anything else names the roles one may give."""
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            role = cls.ANONYMOUS
        if role is cls.ANONYMOUS:
            names = ", ".join(r.label for r in cls if r is not cls.ANONYMOUS)
            raise InvalidInputError(f"role {text!r} is not one of {names}")
        return role


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: ``via`` is ``token``, ``session``, ``local`` or ``anonymous``."""

    name: str
    role: Role
    via: str
    key: str | None = None

    @property
    def actor(self) -> str:
        """The name the audit log and every ``*_by`` column record for this caller."""
        return self.name


ANONYMOUS: Final = Identity("anonymous", Role.ANONYMOUS, "anonymous")


@dataclass(frozen=True)
class IdentityInfo:
    name: str
    kind: str
    role: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


@dataclass(frozen=True)
class TokenInfo:
    key: str
    kind: str
    identity: str
    role: str
    note: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"

    def to_dict(self) -> dict[str, Any]:
        moments = ("created_at", "expires_at", "last_used_at", "revoked_at")
        values = {name: getattr(self, name) for name in moments}
        return {
            "key": self.key,
            "kind": self.kind,
            "identity": self.identity,
            "role": self.role,
            "state": self.state,
            "note": self.note,
            "created_by": self.created_by,
            **{name: value.isoformat() if value else None for name, value in values.items()},
        }


@dataclass(frozen=True)
class Issued:
    """A credential just made: ``secret`` is the whole credential, shown this once."""

    secret: str
    info: TokenInfo


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a browser session: an HMAC of its secret, so nothing more is stored."""
    return hmac.new(session_secret.encode(), b"steward.csrf", hashlib.sha256).hexdigest()


# Identities


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"identity name {name!r} is not allowed; use 1-100 letters, digits, '.', '_', '@' "
            "or '-', starting with a letter or digit"
        )
    return name


def _find_identity(session: Session, name: str) -> IdentityRow:
    row = session.scalars(select(IdentityRow).where(IdentityRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"no identity named {name!r}; add it with `steward users add {name}`")
    return row


def _identity_info(row: IdentityRow) -> IdentityInfo:
    return IdentityInfo(
        row.name, row.kind, row.role, row.created_by, row.created_at, row.disabled_at
    )


def add_identity(
    steward: Workspace, name: str, role: Role, *, kind: str = "user", actor: str | None = None
) -> IdentityInfo:
    """Add a person (``kind="user"``) or a program (``"service"``) who may hold up to ``role``."""
    if kind not in KINDS:
        raise InvalidInputError(f"identity kind {kind!r} is not one of {', '.join(KINDS)}")
    if role is Role.ANONYMOUS:
        raise InvalidInputError("an identity needs a role above anonymous, e.g. viewer")
    who = actor or steward.actor
    with steward.store.write() as session:
        if session.scalars(select(IdentityRow).where(IdentityRow.name == name)).first():
            raise ConflictError(f"an identity named {name!r} already exists")
        row = IdentityRow(
            name=_checked_name(name),
            kind=kind,
            role=role.label,
            created_by=who,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        details = {"kind": kind, "role": role.label}
        audit.record(
            session, actor=who, action="identity.add", target=name, details=details, bind=row
        )
        return _identity_info(row)


def ensure_identity(
    steward: Workspace, name: str, role: Role, *, actor: str | None = None
) -> IdentityInfo:
    """The user ``name``, added with ``role`` if it does not exist yet (its role is kept if it does)."""
    with steward.store.read() as session:
        row = session.scalars(select(IdentityRow).where(IdentityRow.name == name)).first()
        if row is not None:
            return _identity_info(row)
    return add_identity(steward, name, role, actor=actor)


def list_identities(steward: Workspace) -> list[IdentityInfo]:
    with steward.store.read() as session:
        rows = session.scalars(select(IdentityRow).order_by(IdentityRow.name)).all()
        return [_identity_info(row) for row in rows]


def disable_identity(steward: Workspace, name: str, *, actor: str | None = None) -> IdentityInfo:
    """Disable ``name``: its tokens and sessions stop working; its history stays attributable."""
    who = actor or steward.actor
    with steward.store.write() as session:
        row = _find_identity(session, name)
        if row.disabled_at is None:
            row.disabled_at = utcnow()
            audit.record(
                session, actor=who, action="identity.disable", target=name, details={}, bind=row
            )
        return _identity_info(row)


# Credentials


def _token_info(row: TokenRow, identity: str) -> TokenInfo:
    return TokenInfo(
        row.key,
        row.kind,
        identity,
        row.role,
        row.note,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.last_used_at,
        row.revoked_at,
    )


def _issue(
    session: Session,
    identity: IdentityRow,
    *,
    kind: str,
    role: Role,
    lifetime: timedelta,
    note: str,
    actor: str,
    also: TokenRow | None = None,
) -> Issued:
    """Make a credential; ``also`` is another token row this change touched (a spent link)."""
    key, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = utcnow()
    row = TokenRow(
        key=key,
        kind=kind,
        identity_id=identity.id,
        role=role.label,
        secret_sha256=_digest(secret),
        note=note,
        created_by=actor,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    details = {"key": key, "kind": kind, "role": role.label, "expires_at": row.expires_at}
    audit.record(
        session,
        actor=actor,
        action=f"{kind}.create",
        target=identity.name,
        details=details,
        bind=[row] if also is None else [also, row],
    )
    return Issued(f"stw_{key}_{secret}", _token_info(row, identity.name))


def _usable(identity: IdentityRow, role: Role | None) -> Role:
    if identity.disabled_at is not None:
        raise ConflictError(f"identity {identity.name!r} is disabled; add a new one instead")
    ceiling = Role.parse(identity.role)
    wanted = ceiling if role is None else role
    if wanted > ceiling:
        raise InvalidInputError(
            f"role {wanted.label} is above {identity.name!r}'s role {ceiling.label}; ask for "
            f"{ceiling.label} or lower"
        )
    return wanted


def create_token(
    steward: Workspace,
    identity: str,
    *,
    role: Role | None = None,
    expires_in: timedelta,
    note: str = "",
    actor: str | None = None,
) -> Issued:
    """An API token for ``identity`` with ``role`` (default: the identity's), valid ``expires_in``."""
    if not timedelta(0) < expires_in <= MAX_TOKEN_LIFETIME:
        raise InvalidInputError(
            f"a token's lifetime must be above zero and at most {MAX_TOKEN_LIFETIME.days} days, "
            f"not {expires_in}; pass e.g. --expires 90d"
        )
    with steward.store.write() as session:
        row = _find_identity(session, identity)
        wanted = _usable(row, role)
        return _issue(
            session,
            row,
            kind="api",
            role=wanted,
            lifetime=expires_in,
            note=note,
            actor=actor or steward.actor,
        )


def login_link(steward: Workspace, identity: str, *, actor: str | None = None) -> Issued:
    """A one-time credential that opens a browser session for ``identity`` (15 minutes to use it)."""
    with steward.store.write() as session:
        row = _find_identity(session, identity)
        if row.kind != "user":
            raise InvalidInputError(f"{identity!r} is a service; login links are for people")
        wanted = _usable(row, None)
        return _issue(
            session,
            row,
            kind="login",
            role=wanted,
            lifetime=LOGIN_LINK_LIFETIME,
            note="",
            actor=actor or steward.actor,
        )


def redeem_login(steward: Workspace, credential: str) -> Issued:
    """Spend a login link: it stops working, and a session credential for its identity is made."""
    match = _CREDENTIAL.fullmatch(credential)
    with steward.store.write() as session:
        row = None
        if match:
            row = session.scalars(select(TokenRow).where(TokenRow.key == match[1])).first()
        if (
            row is None
            or match is None
            or row.kind != "login"
            or not hmac.compare_digest(row.secret_sha256, _digest(match[2]))
            or row.revoked_at is not None
            or row.expires_at <= utcnow()
        ):
            raise InvalidInputError(
                "this login link is unknown, used or expired; ask for a new one with "
                "`steward login-link`"
            )
        identity = session.get(IdentityRow, row.identity_id)
        assert identity is not None
        row.revoked_at, row.revoked_by = utcnow(), identity.name
        role = _usable(identity, Role.parse(row.role))
        return _issue(
            session,
            identity,
            kind="session",
            role=role,
            lifetime=SESSION_LIFETIME,
            note=f"from login link {row.key}",
            actor=identity.name,
            also=row,
        )


def start_session(steward: Workspace, identity: str, *, note: str) -> Issued:
    """A browser session for the user ``identity``, signed in elsewhere (an identity provider):
    ``note`` says how, e.g. ``"oidc https://idp.example (sub 2481)"``."""
    with steward.store.write() as session:
        row = _find_identity(session, identity)
        if row.kind != "user":
            raise InvalidInputError(f"{identity!r} is a service; sessions are for people")
        return _issue(
            session,
            row,
            kind="session",
            role=_usable(row, None),
            lifetime=SESSION_LIFETIME,
            note=note,
            actor=row.name,
        )


def list_tokens(
    steward: Workspace, *, identity: str | None = None, every: bool = False
) -> list[TokenInfo]:
    """API tokens (and sessions with ``every``), newest first; expired and revoked ones only with
    ``every``."""
    with steward.store.read() as session:
        query = select(TokenRow, IdentityRow.name).join(IdentityRow)
        if identity is not None:
            query = query.where(IdentityRow.name == identity)
        if not every:
            query = query.where(TokenRow.kind == "api", TokenRow.revoked_at.is_(None))
        rows = session.execute(query.order_by(TokenRow.id.desc())).all()
        found = [_token_info(row, name) for row, name in rows]
    return found if every else [info for info in found if info.state == "active"]


def revoke_token(steward: Workspace, key: str, *, actor: str | None = None) -> TokenInfo:
    """Revoke the credential ``key`` (the public part, as ``steward tokens list`` shows it)."""
    key = key.removeprefix("stw_").split("_")[0]
    who = actor or steward.actor
    with steward.store.write() as session:
        row = session.scalars(select(TokenRow).where(TokenRow.key == key)).first()
        if row is None:
            raise NotFoundError(f"no token with key {key!r}; `steward tokens list` shows the keys")
        identity = session.get(IdentityRow, row.identity_id)
        assert identity is not None
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = utcnow(), who
            details = {"key": key, "kind": row.kind}
            audit.record(
                session,
                actor=who,
                action="token.revoke",
                target=identity.name,
                details=details,
                bind=row,
            )
        return _token_info(row, identity.name)


@dataclass(frozen=True)
class _Cached:
    identity: Identity | None
    read_at: float


class Authenticator:
    """Turns a credential into an ``Identity``, caching each answer for ``CACHE_SECONDS``.

    Thread-safe; one per server. ``last_used_at`` is written at most once a minute a credential.
    """

    def __init__(self, steward: Workspace, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._steward = steward
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def identify(self, credential: str, *, kinds: tuple[str, ...] = ("api",)) -> Identity | None:
        """The identity ``credential`` proves, or None when it is malformed, unknown, of another
        kind, expired, revoked or its identity disabled."""
        match = _CREDENTIAL.fullmatch(credential)
        if match is None:
            return None
        now = time.monotonic()
        digest = _digest(credential)
        with self._lock:
            cached = self._cache.get(digest)
        if cached is None or now - cached.read_at > self._cache_seconds:
            cached = _Cached(self._read(match[1], match[2]), now)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = cached
        found = cached.identity
        if found is None or found.via not in kinds:
            return None
        self._touch(match[1], now)
        return Identity(
            found.name, found.role, "token" if found.via == "api" else found.via, found.key
        )

    def _read(self, key: str, secret: str) -> Identity | None:
        with self._steward.store.read() as session:
            found = session.execute(
                select(TokenRow, IdentityRow).join(IdentityRow).where(TokenRow.key == key)
            ).first()
            if found is None:
                return None
            row, identity = found
            if (
                not hmac.compare_digest(row.secret_sha256, _digest(secret))
                or row.revoked_at is not None
                or row.expires_at <= utcnow()
                or identity.disabled_at is not None
                or row.kind == "login"
            ):
                return None
            role = min(Role.parse(row.role), Role.parse(identity.role))
            return Identity(identity.name, role, row.kind, key)

    def _touch(self, key: str, now: float) -> None:
        with self._lock:
            if now - self._touched.get(key, -_TOUCH_SECONDS) < _TOUCH_SECONDS:
                return
            self._touched[key] = now
        with self._steward.store.write() as session:
            row = session.scalars(select(TokenRow).where(TokenRow.key == key)).first()
            if row is not None:
                row.last_used_at = utcnow()
