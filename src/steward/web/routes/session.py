"""Signing in and out of the dashboard, and who the caller is.

Its ``router`` holds:

- ``GET /ui/login?token=``: spends a one-time login link (``steward serve`` prints one, and
  ``steward login-link`` makes more) and opens a browser session: the ``steward_session`` cookie
  (HttpOnly) and the ``steward_csrf`` cookie the dashboard's script sends back as a header, both
  ``SameSite=Strict``, ``Secure`` over TLS; then redirects to the overview;
- ``POST /ui/logout``: ends the session (the ``viewer`` role's, with the CSRF header);
- ``GET /v1/whoami``: the caller's name, role and how they signed in.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from steward.errors import InvalidInputError
from steward.governance.access import Role, redeem_login, revoke_token
from steward.web.auth import CSRF_COOKIE, SESSION_COOKIE, CallerDep, set_session_cookies
from steward.web.deps import StewardDep
from steward.web.problems import sign_in_page
from steward.web.roles import RoleRoute, requires

__all__ = ["login", "logout", "router", "whoami"]

router = APIRouter(route_class=RoleRoute, tags=["session"])


@router.get(
    "/ui/login",
    dependencies=[requires(Role.ANONYMOUS)],
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def login(
    request: Request,
    steward: StewardDep,
    token: str = Query(default="", max_length=200, description="The one-time login link's token."),
) -> Response:
    """Spend a login link and open a session; an unknown, used or expired link says so."""
    try:
        issued = await run_in_threadpool(redeem_login, steward, token)
    except InvalidInputError as error:
        reason = f"<p>{html.escape(str(error))}</p>"
        return sign_in_page("This link does not sign you in", reason, 400)
    secure = request.url.scheme == "https"
    answer = RedirectResponse("/", status_code=303)
    set_session_cookies(answer, issued, secure=secure)
    return answer


@router.post("/ui/logout", dependencies=[requires(Role.VIEWER)], include_in_schema=False)
async def logout(request: Request, steward: StewardDep, caller: CallerDep) -> Response:
    """End the browser session this request came with."""
    if caller.via == "session" and caller.key is not None:
        await run_in_threadpool(revoke_token, steward, caller.key, actor=caller.actor)
    answer = Response(status_code=204)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        answer.delete_cookie(name, path="/", samesite="strict")
    return answer


@router.get("/v1/whoami", dependencies=[requires(Role.VIEWER)])
async def whoami(caller: CallerDep) -> dict[str, Any]:
    """Who the server takes the caller to be: name, role and how they proved it."""
    return {"name": caller.name, "role": caller.role.label, "via": caller.via, "key": caller.key}
