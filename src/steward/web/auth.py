"""Who is calling, and the guards every request passes before a route sees it.

A caller proves who they are with ``Authorization: Bearer <token>`` (an API token from
``steward tokens create``) or with the browser session cookie a login link opens (``/ui/login``).
A request that changes state with the session cookie must also carry the session's CSRF token in
the ``X-CSRF-Token`` header: the dashboard's script copies it from the ``steward_csrf`` cookie,
which a page of another site cannot read. Both cookies are ``SameSite=Strict`` (``Secure`` when the
request came over TLS); the session cookie is ``HttpOnly``.

Two guards run before routing, as ASGI middleware: ``HostGuard`` answers only the host names the
server is configured for (against DNS rebinding), and ``FormGuard`` refuses form and plain-text
bodies on every request that changes state (the content types a cross-site HTML form can send).

``steward serve --insecure-local`` (loopback only) gives every caller the local user's identity
with the ``admin`` role: ``Access.local``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from steward.errors import ForbiddenError, UnauthenticatedError
from steward.governance.access import ANONYMOUS, Authenticator, Identity, Issued, csrf_token
from steward.web.problems import send_problem

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "DEFAULT_HOSTS",
    "SESSION_COOKIE",
    "Access",
    "CallerDep",
    "FormGuard",
    "HostGuard",
    "bearer_identity",
    "caller",
    "get_caller",
    "set_session_cookies",
]

SESSION_COOKIE = "steward_session"
CSRF_COOKIE = "steward_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


@dataclass
class Access:
    """How the app knows its callers: ``authenticator`` for credentials, or ``local``, the one
    identity every request gets on an ``--insecure-local`` server; ``hosts`` it answers to."""

    authenticator: Authenticator | None
    local: Identity | None = None
    hosts: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_HOSTS))


def caller(request: Request) -> Identity:
    """The identity ``request`` proves, ``ANONYMOUS`` if it sends no credential.

    A credential that is sent and does not hold (unknown, expired, revoked, malformed) is a 401,
    never anonymous; a state-changing request on the session cookie without its CSRF token a 403.
    """
    access: Access = request.app.state.access
    if access.local is not None:
        return access.local
    assert access.authenticator is not None
    header = request.headers.get("authorization")
    if header is not None:
        return bearer_identity(access, header, "the Authorization header")
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        return ANONYMOUS
    found = access.authenticator.identify(session, kinds=("session",))
    if found is None:
        raise UnauthenticatedError(
            "your session has ended or expired; sign in again with a new link from "
            "`steward login-link`"
        )
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if sent != csrf_token(session):
            raise ForbiddenError(
                "this request changes state with a session cookie but lacks the session's CSRF "
                f"token; send it in the {CSRF_HEADER} header (the dashboard does so itself)"
            )
    return found


def set_session_cookies(answer: Response, issued: Issued, *, secure: bool) -> Response:
    """Put a new browser session on ``answer``: the ``HttpOnly`` session cookie and the CSRF
    cookie the dashboard's script reads, both ``SameSite=Strict`` and ``Secure`` over TLS."""
    lifetime = int((issued.info.expires_at - issued.info.created_at).total_seconds())
    for name, value, http_only in (
        (SESSION_COOKIE, issued.secret, True),
        (CSRF_COOKIE, csrf_token(issued.secret), False),
    ):
        answer.set_cookie(
            name,
            value,
            max_age=lifetime,
            path="/",
            httponly=http_only,
            samesite="strict",
            secure=secure,
        )
    return answer


async def get_caller(request: Request) -> Identity:
    """The caller the route's role check found (``steward.web.roles``)."""
    found = getattr(request.state, "identity", None)
    if isinstance(found, Identity):
        return found
    raise UnauthenticatedError("this route declares no role, so nobody is known to call it")


CallerDep = Annotated[Identity, Depends(get_caller)]


def _host_of(scope: Scope) -> str:
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


#: Public probes a load balancer or an orchestrator calls by IP address: any Host may ask.
PROBES = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"})


class HostGuard:
    """Answer only requests whose ``Host`` is one of ``hosts`` (``*`` allows any): 400 otherwise.

    The public probes (``PROBES``) answer any host: they are what a load balancer calls by address,
    and they show nothing a rebound page could steal."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(host.lower() for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.hosts or scope.get("path") in PROBES:
            await self.app(scope, receive, send)
            return
        host = _host_of(scope)
        if host in self.hosts:
            await self.app(scope, receive, send)
            return
        allowed = ", ".join(sorted(self.hosts))
        detail = (
            f"host {host or '(none)'!r} is not one this server answers to ({allowed}); "
            "start it with --allowed-host NAME or set STEWARD_ALLOWED_HOSTS"
        )
        await send_problem(send, 400, "Invalid host", detail, scope.get("path", ""))


class FormGuard:
    """Refuse form and plain-text bodies on requests that change state (415): the API takes JSON,
    and those are the bodies a page of another site can make a browser send without asking."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if kind not in _FORM_TYPES:
            await self.app(scope, receive, send)
            return
        detail = (
            f"content type {kind!r} is not accepted on {scope['method']} requests; send JSON "
            "with Content-Type: application/json"
        )
        await send_problem(send, 415, "Unsupported media type", detail, scope.get("path", ""))


def bearer_identity(access: Access, header: str, where: str) -> Identity:
    """The API token's identity in ``Bearer <token>`` (``where`` names what carried it, for the
    message); a malformed, unknown, expired or revoked one raises UnauthenticatedError."""
    assert access.authenticator is not None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise UnauthenticatedError(
            f"{where} must be 'Bearer <token>'; make a token with `steward tokens create`"
        )
    found = access.authenticator.identify(credential.strip(), kinds=("api",))
    if found is None:
        raise UnauthenticatedError(
            "the bearer token is unknown, expired or revoked; `steward tokens list` shows "
            "the active ones and `steward tokens create` makes a new one"
        )
    return found
