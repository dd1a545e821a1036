"""Sign-in through an OpenID Connect identity provider, against the fake one in tests/oidc_issuer.py.

Steward's app runs in process (httpx's ASGI transport); the fake issuer is a real HTTP server,
which Steward's routes call over the network for discovery, the key set and the token exchange.
The browser's part is done by hand: follow Steward's redirect to the issuer's ``/authorize``, take
the issuer's redirect back, and send it to Steward with the cookie Steward set. One test does the
same against a real ``steward serve`` configured through ``STEWARD_OIDC_*``.

Every refusal is checked for its page and for what it must not do: set a session cookie, or write
a session to the store.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from steward import Steward
from steward.data.events import EventLog
from steward.errors import ConfigError
from steward.governance.access import Role, add_identity, disable_identity, list_tokens
from steward.settings import Settings
from steward.web import create_app
from tests.conftest import Server, free_port
from tests.oidc_issuer import FakeIssuer

BASE = "http://localhost"


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(client_id="steward-dashboard", client_secret="s3cret-of-the-client") as running:
        yield running


def open_steward(workspace: Steward, issuer_url: str, **settings: str) -> Steward:
    """The workspace again, with sign-in through ``issuer_url`` configured."""
    return Steward.open(
        workspace.settings.workspace,
        database_url=workspace.settings.database_url,
        user="tester",
        oidc_issuer=issuer_url,
        oidc_client_id="steward-dashboard",
        oidc_client_secret="s3cret-of-the-client",
        **settings,
    )


def serve(steward: Steward, tmp_path: Path) -> Iterator[FastAPI]:
    with EventLog(tmp_path / "events") as events:
        app = create_app(steward, events=events)
        yield app
        app.state.service.close()
    steward.close()


@pytest.fixture
def app(workspace: Steward, issuer: FakeIssuer, tmp_path: Path) -> Iterator[FastAPI]:
    """The app over the workspace, signing people in through the fake issuer."""
    yield from serve(open_steward(workspace, issuer.url), tmp_path)


def cookies(answer: httpx.Response) -> dict[str, Any]:
    """The cookies ``answer`` sets, by name, each a ``Morsel`` (value and attributes)."""
    found: dict[str, Any] = {}
    for header in answer.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


@dataclass
class Attempt:
    """One sign-in: Steward's answer to ``/ui/oidc/login``, the issuer's, and the callback's."""

    login: httpx.Response
    authorize: httpx.Response | None = None
    callback: httpx.Response | None = None

    @property
    def back(self) -> str:
        """The path and query the issuer sent the browser back to."""
        assert self.authorize is not None
        location = urlsplit(self.authorize.headers["location"])
        return f"{location.path}?{location.query}"


def local(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def begin(app: FastAPI) -> Attempt:
    """Open ``/ui/oidc/login`` and follow its redirect to the issuer, which redirects back."""
    async with local(app) as steward:
        attempt = Attempt(await steward.get("/ui/oidc/login"))
    if attempt.login.status_code == 303:
        async with httpx.AsyncClient(timeout=30) as browser:
            attempt.authorize = await browser.get(attempt.login.headers["location"])
    return attempt


async def finish(app: FastAPI, attempt: Attempt, *, back: str | None = None) -> httpx.Response:
    """Send the issuer's redirect (or ``back``) to Steward with the sign-in cookie it set."""
    flow = cookies(attempt.login)["steward_oidc"].value
    async with local(app) as steward:
        attempt.callback = await steward.get(
            back or attempt.back, headers={"Cookie": f"steward_oidc={flow}"}
        )
    return attempt.callback


def sign_in(app: FastAPI) -> Attempt:
    async def run() -> Attempt:
        attempt = await begin(app)
        await finish(app, attempt)
        return attempt

    return asyncio.run(run())


def whoami(app: FastAPI, session: str) -> httpx.Response:
    async def run() -> httpx.Response:
        async with local(app) as steward:
            return await steward.get("/v1/whoami", headers={"Cookie": f"steward_session={session}"})

    return asyncio.run(run())


def sessions(workspace: Steward) -> list[Any]:
    return [token for token in list_tokens(workspace, every=True) if token.kind == "session"]


def signed_in(attempt: Attempt) -> bool:
    """The callback opened a session and went to the overview."""
    answer = attempt.callback
    return answer is not None and answer.status_code == 303 and "steward_session" in cookies(answer)


def assert_refused(attempt: Attempt, status: int, *phrases: str) -> None:
    """The callback answered an HTML page with ``status`` saying ``phrases``, and no session."""
    answer = attempt.callback
    assert answer is not None
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    text = html.unescape(" ".join(answer.text.split()))
    for phrase in phrases:
        assert phrase in text, (phrase, text)
    assert "steward_session" not in cookies(answer)
    assert "steward_csrf" not in cookies(answer)


def test_a_known_user_signs_in_and_whoami_says_who(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward
) -> None:
    add_identity(workspace, "ana@example.com", Role.OPERATOR)
    attempt = sign_in(app)
    # Steward sent the browser to the issuer with PKCE, state and nonce, and a Lax, HttpOnly
    # cookie holding them that the browser can neither read nor forge.
    asked = parse_qs(urlsplit(attempt.login.headers["location"]).query)
    assert attempt.login.headers["location"].startswith(f"{issuer.url}/authorize?")
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["redirect_uri"] == [f"{BASE}/ui/oidc/callback"]
    assert asked["client_id"] == ["steward-dashboard"]
    flow = cookies(attempt.login)["steward_oidc"]
    assert flow["samesite"] == "lax" and flow["httponly"] and flow["path"] == "/ui/oidc"
    assert asked["state"][0] not in flow.value and asked["nonce"][0] not in flow.value
    # The token request carried the PKCE verifier of that challenge, and the client's
    # credentials in basic auth, the method the issuer publishes.
    [exchange] = issuer.token_requests
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"][0]
    assert exchange["client_auth"] == "basic"
    # The callback set the two session cookies as /ui/login does and went to the overview.
    answer = attempt.callback
    assert answer is not None and answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    set_now = cookies(answer)
    session, csrf = set_now["steward_session"], set_now["steward_csrf"]
    assert session["httponly"] and session["samesite"] == "strict" and session["path"] == "/"
    assert not csrf["httponly"] and csrf["samesite"] == "strict"
    assert set_now["steward_oidc"]["max-age"] == "0"  # the sign-in cookie is spent
    me = whoami(app, session.value)
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "ana@example.com"
    assert me.json()["role"] == "operator"
    assert me.json()["via"] == "session"
    [made] = sessions(workspace)
    assert made.identity == "ana@example.com"
    assert made.note == f"oidc {issuer.url} (sub 2481)"


def test_an_unknown_user_is_told_how_an_admin_lets_them_in(
    app: FastAPI, workspace: Steward
) -> None:
    attempt = sign_in(app)
    assert_refused(
        attempt,
        403,
        "Steward has no identity named ana@example.com",
        "steward users add ana@example.com --role operator",
    )
    assert sessions(workspace) == []


def test_a_disabled_identity_or_a_service_gets_no_session(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward
) -> None:
    add_identity(workspace, "ana@example.com", Role.ADMIN)
    disable_identity(workspace, "ana@example.com")
    assert_refused(sign_in(app), 403, "identity ana@example.com is disabled")
    add_identity(workspace, "batch@example.com", Role.CLIENT, kind="service")
    issuer.user = {"sub": "77", "email": "batch@example.com"}
    assert_refused(sign_in(app), 403, "identity batch@example.com is a service")
    assert sessions(workspace) == []


MISBEHAVIOURS = {
    "wrong audience": (
        {"audience": "some-other-client"},
        "is for the audience 'some-other-client', not for this client ('steward-dashboard')",
    ),
    "expired": ({"expired": True}, "the ID token expired"),
    "wrong nonce": ({"nonce": "a-nonce-from-another-sign-in"}, "does not carry the nonce"),
    "forged signature": ({"forge": True}, "signature does not verify"),
}


@pytest.mark.parametrize("misbehaviour", sorted(MISBEHAVIOURS))
def test_an_id_token_that_does_not_hold_is_refused(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward, misbehaviour: str
) -> None:
    add_identity(workspace, "ana@example.com", Role.ADMIN)
    knobs, phrase = MISBEHAVIOURS[misbehaviour]
    for knob, value in knobs.items():
        setattr(issuer, knob, value)
    attempt = sign_in(app)
    assert_refused(attempt, 403, phrase)
    assert len(issuer.token_requests) == 1  # the code was exchanged: it is the token that failed
    assert sessions(workspace) == []


def test_discovery_and_keys_are_cached_and_read_again_when_the_keys_rotate(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward
) -> None:
    add_identity(workspace, "ana@example.com", Role.ADMIN)
    for _ in range(2):
        assert signed_in(sign_in(app))
    assert issuer.served.count("/.well-known/openid-configuration") == 1
    assert issuer.served.count("/jwks") == 1
    # The issuer signs with a new key under a new kid: Steward reads the key set again at once.
    issuer.rotate()
    assert signed_in(sign_in(app))
    assert issuer.served.count("/jwks") == 2
    assert len(sessions(workspace)) == 3


def test_a_state_or_a_cookie_that_does_not_match_is_refused(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward
) -> None:
    add_identity(workspace, "ana@example.com", Role.ADMIN)

    async def run() -> list[Attempt]:
        tampered, stranger, forged, missing = [await begin(app) for _ in range(4)]
        query = parse_qs(urlsplit(tampered.back).query)
        query["state"] = ["a-state-someone-else-made"]
        await finish(app, tampered, back="/ui/oidc/callback?" + urlencode(query, doseq=True))
        # The issuer's answer to one browser's sign-in, sent with another browser's cookie.
        other = await begin(app)
        stranger.login = other.login
        await finish(app, stranger)
        # A cookie the browser made up, and none at all.
        async with local(app) as steward:
            forged.callback = await steward.get(
                forged.back, headers={"Cookie": "steward_oidc=eyJhbGciOiJkaXIifQ.x.y.z.w"}
            )
            missing.callback = await steward.get(missing.back)
        return [tampered, stranger, forged, missing]

    tampered, stranger, forged, missing = asyncio.run(run())
    assert_refused(tampered, 400, "does not match this browser's sign-in")
    assert_refused(stranger, 400, "does not match this browser's sign-in")
    assert_refused(forged, 400, "was not made by this server")
    assert_refused(missing, 400, "no sign-in in progress")
    assert issuer.token_requests == []  # no code was exchanged without a matching state
    assert sessions(workspace) == []


def test_a_replayed_code_and_a_refusal_by_the_provider_open_no_session(
    app: FastAPI, issuer: FakeIssuer, workspace: Steward
) -> None:
    add_identity(workspace, "ana@example.com", Role.ADMIN)

    async def replay() -> tuple[Attempt, httpx.Response]:
        attempt = await begin(app)
        first = await finish(app, attempt)
        return attempt, first

    attempt, first = asyncio.run(replay())
    assert first.status_code == 303
    again = asyncio.run(finish(app, attempt))
    assert again.status_code == 400 and "refused the sign-in code (invalid_grant" in again.text
    assert "steward_session" not in cookies(again)
    issuer.deny = True
    assert_refused(sign_in(app), 403, "did not sign you in ('access_denied': 'the user said no')")
    assert len(sessions(workspace)) == 1  # the first sign-in's


def test_an_issuer_that_is_down_is_a_502_page(
    workspace: Steward, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for app in serve(open_steward(workspace, nowhere), tmp_path):
        attempt = asyncio.run(begin(app))
    answer = attempt.login
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert f"{nowhere}/.well-known/openid-configuration could not be read" in answer.text
    assert "steward_oidc" not in cookies(answer)
    assert "OIDC sign-in refused (502)" in caplog.text


def test_oidc_off_is_a_404_saying_how_to_turn_it_on(workspace: Steward, tmp_path: Path) -> None:
    async def run(app: FastAPI) -> list[httpx.Response]:
        async with local(app) as steward:
            return [
                await steward.get("/ui/oidc/login"),
                await steward.get("/ui/oidc/callback?code=x&state=y"),
                await steward.get("/", headers={"Accept": "text/html"}),
            ]

    for app in serve(workspace, tmp_path):
        login, back, page = asyncio.run(run(app))
    for answer in (login, back):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        detail = answer.json()["detail"]
        assert "STEWARD_OIDC_ISSUER" in detail and "STEWARD_OIDC_CLIENT_ID" in detail
    # The sign-in page offers the identity provider only when there is one.
    assert page.status_code == 401 and "/ui/oidc/login" not in page.text


def test_the_sign_in_page_offers_the_identity_provider(app: FastAPI) -> None:
    async def run() -> httpx.Response:
        async with local(app) as steward:
            return await steward.get("/ui/history", headers={"Accept": "text/html"})

    page = asyncio.run(run())
    assert page.status_code == 401
    assert '<a href="/ui/oidc/login">Sign in with your identity provider</a>' in page.text


@pytest.mark.slow
def test_a_served_workspace_signs_in_through_the_identity_provider(
    workspace: Steward, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_identity(workspace, "ana@example.com", Role.VIEWER)
    monkeypatch.setenv("STEWARD_OIDC_ISSUER", issuer.url)
    monkeypatch.setenv("STEWARD_OIDC_CLIENT_ID", issuer.client_id)
    monkeypatch.setenv("STEWARD_OIDC_CLIENT_SECRET", issuer.client_secret)
    server = Server(
        workspace.settings.workspace, workspace.settings.database_url, insecure_local=False
    )
    server.start()
    try:
        with httpx.Client(timeout=30) as browser:
            login = browser.get(f"{server.url}/ui/oidc/login")
            assert login.status_code == 303, login.text
            back = browser.get(login.headers["location"]).headers["location"]
            assert back.startswith(f"{server.url}/ui/oidc/callback?")
            flow = cookies(login)["steward_oidc"].value
            done = browser.get(back, headers={"Cookie": f"steward_oidc={flow}"})
            assert done.status_code == 303, done.text
            session = cookies(done)["steward_session"].value
            me = browser.get(
                f"{server.url}/v1/whoami", headers={"Cookie": f"steward_session={session}"}
            )
            overview = browser.get(
                f"{server.url}/", headers={"Cookie": f"steward_session={session}"}
            )
    finally:
        server.close()
    assert me.status_code == 200, me.text
    assert (me.json()["name"], me.json()["role"], me.json()["via"]) == (
        "ana@example.com",
        "viewer",
        "session",
    )
    assert overview.status_code == 200, overview.text
    assert "<html" in overview.text


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"STEWARD_OIDC_ISSUER": "http://login.example.com"},
            "must be the identity provider's https URL",
        ),
        ({"STEWARD_OIDC_ISSUER": "https://login.example.com"}, "'oidc_client_id' is empty"),
        (
            {
                "STEWARD_OIDC_ISSUER": "https://login.example.com/?realm=x",
                "STEWARD_OIDC_CLIENT_ID": "s",
            },
            "without query",
        ),
        ({"STEWARD_OIDC_CLAIM": " "}, "'oidc_claim' is empty"),
    ],
)
def test_oidc_settings_that_cannot_work_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=environ)


def test_oidc_settings_load_and_the_secret_stays_out_of_repr() -> None:
    settings = Settings.load(
        environ={
            "STEWARD_OIDC_ISSUER": "https://login.example.com/realms/staff",
            "STEWARD_OIDC_CLIENT_ID": "steward",
            "STEWARD_OIDC_CLIENT_SECRET": "the-secret",
            "STEWARD_OIDC_CLAIM": "preferred_username",
        }
    )
    assert settings.oidc_issuer == "https://login.example.com/realms/staff"
    assert (settings.oidc_client_id, settings.oidc_claim) == ("steward", "preferred_username")
    assert settings.oidc_client_secret == "the-secret" and "the-secret" not in repr(settings)
    assert Settings.load(environ={}).oidc_issuer == ""
