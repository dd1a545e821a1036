"""A fake OpenID Connect identity provider for tests: a real HTTP server on a free loopback port.

It serves discovery (``/.well-known/openid-configuration``), its key set (``/jwks``, one RSA key
made at start), ``/authorize`` (no login form: it redirects straight back to the ``redirect_uri``
with a code for ``user``, the person the test chose) and ``/token`` (checks the code, the client's
credentials, the redirect URI and the PKCE verifier, then answers an RS256 ID token with ``iss``,
``aud``, ``sub``, ``email``, ``email_verified``, ``nonce``, ``iat`` and ``exp``).

Knobs make it misbehave the way a test needs: ``audience`` (another ``aud``), ``expired`` (an
``exp`` an hour ago), ``nonce`` (another nonce than the one asked for), ``forge`` (signed by a key
it does not publish, under the published key's ``kid``), ``deny`` (``/authorize`` answers
``error=access_denied``), and ``rotate()`` (a new signing key under a new ``kid``). ``served``
lists the path of every request; ``token_requests`` what ``/token`` was sent (the form, and
``client_auth``: how the client authenticated, ``basic`` or ``post``).

Use it as a context manager; set ``user`` (and any knob) before the sign-in it is for::

    with FakeIssuer(client_id="steward", client_secret="s3cret") as issuer:
        issuer.user = {"sub": "2481", "email": "ana@example.com"}
        issuer.expired = True     # the next ID token is an hour old
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import free_port

__all__ = ["FakeIssuer", "Grant"]


@dataclass(frozen=True)
class Grant:
    """What ``/authorize`` promised: the code's person, nonce, PKCE challenge and redirect URI."""

    claims: dict[str, Any]
    nonce: str
    challenge: str
    redirect_uri: str


class FakeIssuer:
    """An identity provider at ``url`` for the client ``client_id`` / ``client_secret``."""

    def __init__(self, *, client_id: str = "steward", client_secret: str = "s3cret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._generation = 1
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig"})
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig"})
        #: Who signs in next: the ID token's claims besides iss, aud, nonce, iat and exp.
        self.user: dict[str, Any] = {
            "sub": "2481",
            "email": "ana@example.com",
            "email_verified": True,
        }
        self.audience: str | None = None
        self.expired = False
        self.nonce: str | None = None
        self.forge = False
        self.deny = False
        self.grants: dict[str, Grant] = {}
        self.token_requests: list[dict[str, str]] = []
        #: The path of every request served, in order.
        self.served: list[str] = []
        routes = [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize),
            Route("/token", self._token, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(_Record, served=self.served)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> FakeIssuer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"the fake issuer did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def rotate(self) -> None:
        """Sign from now on with a new key under a new ``kid``, and publish only that one."""
        self._generation += 1
        kid = f"fake-{self._generation}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})

    def __enter__(self) -> FakeIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The endpoints

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: Request) -> Response:
        asked = request.query_params
        wrong = [
            f"{name}={asked.get(name)!r}"
            for name, ok in (
                ("client_id", asked.get("client_id") == self.client_id),
                ("response_type", asked.get("response_type") == "code"),
                ("scope", "openid" in asked.get("scope", "").split()),
                ("code_challenge_method", asked.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(asked.get("code_challenge"))),
                ("state", bool(asked.get("state"))),
                ("nonce", bool(asked.get("nonce"))),
                ("redirect_uri", bool(asked.get("redirect_uri"))),
            )
            if not ok
        ]
        if wrong:
            return JSONResponse({"error": "invalid_request", "wrong": wrong}, status_code=400)
        back = {"state": asked["state"], "iss": self.url}
        if self.deny:
            back["error"] = "access_denied"
            back["error_description"] = "the user said no"
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                dict(self.user), asked["nonce"], asked["code_challenge"], asked["redirect_uri"]
            )
            back["code"] = code
        return RedirectResponse(f"{asked['redirect_uri']}?{urlencode(back)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which Steward lacks.
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        self.token_requests.append({**form, "client_auth": "basic" if basic else "post"})
        if not self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return _invalid_grant("unknown or used code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _invalid_grant("redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return _invalid_grant("PKCE verifier does not match the challenge")
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
            }
        )

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(
            f"{client_id}:{secret}", f"{self.client_id}:{self.client_secret}"
        )

    def id_token(self, grant: Grant) -> str:
        """The ID token for ``grant``, as the knobs say."""
        now = int(time.time())
        issued = now - 3600 if self.expired else now
        claims = {
            **grant.claims,
            "iss": self.url,
            "aud": self.audience or self.client_id,
            "nonce": self.nonce or grant.nonce,
            "iat": issued,
            "exp": issued + 300,
        }
        key = self.impostor if self.forge else self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def _invalid_grant(why: str) -> Response:
    return JSONResponse({"error": "invalid_grant", "error_description": why}, status_code=400)


class _Record:
    """Middleware that appends the path of each request to ``served``."""

    def __init__(self, app: ASGIApp, served: list[str]) -> None:
        self.app = app
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.served.append(scope["path"])
        await self.app(scope, receive, send)
