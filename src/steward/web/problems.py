"""Errors over HTTP: one shape, ``application/problem+json`` (RFC 9457).

Every error the API returns is ``{"type", "title", "status", "detail", "instance"}`` plus, where there
are several things wrong, ``errors``: a list with one entry per violation or invalid field. A test pins
the shape. Nothing a client sends can produce a 500: domain errors map to their ``status``, request
validation to 422, malformed JSON to 400, oversized bodies to 413.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steward.errors import ContractViolationError, StewardError, UnauthenticatedError

__all__ = ["BodyLimit", "install_problem_handlers", "problem", "send_problem", "sign_in_page"]

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    instance: str = "",
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An ``application/problem+json`` response: ``type`` is derived from ``title``."""
    body: dict[str, Any] = {
        "type": f"https://steward.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


#: What a 503 asks a client to wait before trying again: the event-log writer's retry period.
RETRY_AFTER_SECONDS = 1


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error ``app`` raises with problem+json: domain errors, 422, 400, 404, 405, 500."""

    @app.exception_handler(StewardError)
    async def _steward_error(request: Request, error: StewardError) -> Response:
        if isinstance(error, UnauthenticatedError):
            return _sign_in(request, error)
        errors = error.violations if isinstance(error, ContractViolationError) else None
        answer = problem(error.status, error.title, str(error), request.url.path, errors)
        if error.status == 503:  # a store or the event log is down for now: the client may retry
            answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [_field_error(item) for item in error.errors()]
        if any(item["type"] == "json_invalid" for item in details):
            return problem(
                400,
                "Malformed JSON",
                f"the request body is not valid JSON; {details[0]['message']}",
                request.url.path,
                details,
            )
        first = details[0]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        return problem(
            422,
            "Invalid request",
            f"{first['field']}: {first['message']}{more}",
            request.url.path,
            details,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
            error.status_code, "HTTP error"
        )
        return problem(error.status_code, title, str(error.detail), request.url.path)

    app.add_exception_handler(DBAPIError, _store_down)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return _bug_response(request)


async def _store_down(request: Request, error: DBAPIError) -> Response:
    """503 with Retry-After for a store that does not answer; anything else the store refused is
    a bug (500, logged)."""
    if not _unreachable(error):
        logger.exception("unhandled store error on %s", request.url.path, exc_info=error)
        return _bug_response(request)
    logger.warning("the store is unreachable on %s: %s", request.url.path, error.orig)
    answer = problem(
        503,
        "Store unavailable",
        "the metadata store did not answer (restarting, or the network dropped); nothing of "
        "this request was changed; retry after the Retry-After seconds",
        request.url.path,
    )
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


def _bug_response(request: Request) -> JSONResponse:
    return problem(
        500,
        "Internal error",
        "Steward hit a bug; the server log has the traceback. Nothing in your request caused it.",
        request.url.path,
    )


def _unreachable(error: DBAPIError) -> bool:
    """A store that is down or dropped the connection (operational or interface errors: a
    PostgreSQL restart, SQLite's lock timeout), as opposed to a query the store refused."""
    return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · Steward
</title><link rel="stylesheet" href="/ui/static/dashboard.css"></head><body><main>
<h1>{heading}</h1>{body}</main></body></html>"""
_PROVIDER = """<p><a href="/ui/oidc/login">Sign in with your identity provider</a></p>"""


def sign_in_page(
    heading: str, body: str, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """The small page a browser gets about signing in; ``body`` is HTML, escaped by the caller."""
    page = _PAGE.format(heading=html.escape(heading), body=body)
    return HTMLResponse(page, status_code=status, headers=headers)


def _sign_in(request: Request, error: UnauthenticatedError) -> Response:
    """401: problem+json with a ``WWW-Authenticate`` challenge; a page to a browser asking for one."""
    challenge = {"WWW-Authenticate": 'Bearer realm="steward"'}
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        provider = _PROVIDER if request.app.state.steward.settings.oidc_issuer else ""
        body = (
            f"<p>{html.escape(str(error))}</p>{provider}<p>Open the login link "
            "<code>steward serve</code>\nprinted, or make a new one with "
            "<code>steward login-link</code>.</p>"
        )
        return sign_in_page("Sign in to Steward", body, 401, challenge)
    answer = problem(error.status, error.title, str(error), request.url.path)
    answer.headers.update(challenge)
    return answer


def _field_error(item: Any) -> dict[str, Any]:
    location = [str(part) for part in item.get("loc", ()) if part != "body"]
    return {
        "field": ".".join(location) or "body",
        "type": item.get("type", ""),
        "message": item.get("msg", ""),
    }


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, counting what is actually streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = (
            f"the request body is over {self.max_bytes} bytes; send fewer records per request, "
            "or raise the max_request_bytes setting"
        )
        await send_problem(send, 413, "Payload too large", detail, scope.get("path", ""))


async def send_problem(send: Send, status: int, title: str, detail: str, path: str) -> None:
    """Answer with problem+json from ASGI middleware, before any route (and its handlers) runs;
    on the Open Inference Protocol's ``/v2`` routes, in that protocol's ``{"error": ...}``."""
    media_type, shape = (
        MEDIA_TYPE,
        {
            "type": f"https://steward.dev/problems/{title.lower().replace(' ', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
        },
    )
    if path == "/v2" or path.startswith("/v2/"):
        media_type, shape = "application/json", {"error": detail}
    body = json.dumps(shape).encode()
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
