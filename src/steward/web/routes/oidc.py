"""Signing in to the dashboard through an OpenID Connect identity provider.

Its ``router`` holds:

- ``GET /ui/oidc/login``: sends the browser to the provider's authorization endpoint (read from
  ``{issuer}/.well-known/openid-configuration``) with a fresh ``state``, ``nonce`` and PKCE
  challenge (S256). The three are kept in the ``steward_oidc`` cookie, encrypted and authenticated
  (JWE, ``dir`` + ``A256GCM``) so the browser can neither read nor forge it, ``HttpOnly``, for ten
  minutes, on ``/ui/oidc`` only, and ``SameSite=Lax``: the provider's redirect back is a cross-site
  top-level navigation, which a ``Strict`` cookie would miss. The session cookies stay ``Strict``.
- ``GET /ui/oidc/callback``: checks ``state`` against the cookie, exchanges the code at the token
  endpoint (with the PKCE verifier and the client's credentials), verifies the ID token's signature
  against the provider's JWKS (public-key algorithms only) and its ``iss``, ``aud``, ``exp`` and
  ``nonce``, then opens a session for the Steward identity named by the ``oidc_claim`` claim
  (``email`` by default): it must exist, be a person and not be disabled, so an admin lets someone
  in with ``steward users add ana@example.com --role operator``. The session cookies are set as
  ``/ui/login`` sets them, and the browser goes to ``/``.

Both answer 404 (problem+json) while the ``oidc_issuer`` setting is empty. Every failure is an HTML
page saying what went wrong: 400 for a sign-in that cannot be completed (no or stale cookie, a
``state`` that does not match, a refused code), 403 for an ID token or a person Steward does not
accept, 502 when the provider cannot be reached or answers nonsense. The discovery document and
the key set are cached for ``CACHE_SECONDS``; the key set is read again at once when a token names
a key it lacks (the provider rotated its keys). Network calls use an async client, off the event
loop's back.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwe import JWERegistry
from joserfc.jwk import KeySet, OctKey
from starlette.concurrency import run_in_threadpool

from steward.core import Steward
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.governance.access import Issued, Role, start_session
from steward.settings import Settings
from steward.web.auth import set_session_cookies
from steward.web.deps import StewardDep
from steward.web.problems import sign_in_page
from steward.web.roles import RoleRoute, requires

__all__ = [
    "ALGORITHMS",
    "CACHE_SECONDS",
    "FLOW_COOKIE",
    "Provider",
    "SignInFailed",
    "callback",
    "discover",
    "login",
    "router",
]

logger = logging.getLogger(__name__)

router = APIRouter(route_class=RoleRoute, tags=["session"])

FLOW_COOKIE: Final = "steward_oidc"
_FLOW_PATH: Final = "/ui/oidc"
_FLOW_SECONDS: Final = 600
#: The provider's discovery document and key set are read again after this many seconds.
CACHE_SECONDS: Final = 300.0
_TIMEOUT: Final = httpx.Timeout(10.0)
_SCOPE: Final = "openid email profile"
#: ID token signatures Steward takes: public-key algorithms only, so a token signed with the client
#: secret, or not signed at all, is refused.
ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
#: Seconds of clock difference allowed between Steward and the provider on exp, iat and nbf.
_LEEWAY: Final = 60
_FLOW_REGISTRY: Final = JWERegistry(algorithms=["dir", "A256GCM"])
#: Encrypts the flow cookie when there is no client secret to derive a key from (a public client);
#: such a cookie is then good only in this process.
_PROCESS_KEY: Final = secrets.token_bytes(32)
_cache: dict[tuple[str, str], tuple[float, Any]] = {}

_HEADINGS = {
    400: "This sign-in cannot be completed",
    403: "Steward does not let you in",
    502: "The identity provider did not answer properly",
}


class SignInFailed(Exception):
    """A sign-in that stops here: ``status`` (400, 403 or 502) and the page's ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Provider:
    """What Steward uses of an identity provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    auth_methods: tuple[str, ...]

    def auth_method(self, client_secret: str) -> str:
        """How Steward authenticates at the token endpoint: ``none`` for a public client."""
        if not client_secret:
            return "none"
        # Basic is the default when the provider lists none (OpenID Connect Discovery 1.0, 3).
        only_post = "client_secret_post" in self.auth_methods
        if only_post and "client_secret_basic" not in self.auth_methods:
            return "client_secret_post"
        return "client_secret_basic"


# The provider


def _cached(kind: str, url: str) -> Any:
    found = _cache.get((kind, url))
    if found is None or time.monotonic() - found[0] > CACHE_SECONDS:
        return None
    return found[1]


def _remember(kind: str, url: str, value: Any) -> Any:
    _cache[(kind, url)] = (time.monotonic(), value)
    return value


async def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            answer = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise SignInFailed(
            502,
            f"the identity provider's {what} at {url} could not be read "
            f"({type(error).__name__}: {error}); check that the oidc_issuer setting is right and "
            "the provider is up, then sign in again",
        ) from None
    try:
        document = answer.json() if answer.status_code == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SignInFailed(
            502,
            f"the identity provider's {what} at {url} answered HTTP {answer.status_code} without "
            "a JSON object; check the oidc_issuer setting",
        )
    return document


def _endpoint(document: dict[str, Any], name: str, url: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise SignInFailed(
            502, f"the discovery document at {url} has no usable {name!r} (got {value!r})"
        )
    return value


async def discover(issuer: str) -> Provider:
    """The provider at ``issuer``, from its discovery document (cached ``CACHE_SECONDS``)."""
    known = _cached("discovery", issuer)
    if isinstance(known, Provider):
        return known
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = await _get_json(url, "discovery document")
    published = document.get("issuer")
    if not isinstance(published, str) or published.rstrip("/") != issuer.rstrip("/"):
        raise SignInFailed(
            502,
            f"the discovery document at {url} names the issuer {published!r}, not {issuer!r}; "
            "set oidc_issuer to the issuer the provider publishes",
        )
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(name for name in ALGORITHMS if name in offered)
    if not algorithms:
        raise SignInFailed(
            502,
            f"the identity provider signs ID tokens only with {offered!r}; Steward takes "
            f"{', '.join(ALGORITHMS)}: configure the client to sign with RS256",
        )
    methods = document.get("token_endpoint_auth_methods_supported") or []
    provider = Provider(
        issuer=published,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", url),
        token_endpoint=_endpoint(document, "token_endpoint", url),
        jwks_uri=_endpoint(document, "jwks_uri", url),
        algorithms=algorithms,
        auth_methods=tuple(str(method) for method in methods),
    )
    return _remember("discovery", issuer, provider)


async def _key_set(provider: Provider, *, fresh: bool = False) -> KeySet:
    known = None if fresh else _cached("jwks", provider.jwks_uri)
    if isinstance(known, KeySet):
        return known
    document = await _get_json(provider.jwks_uri, "key set (jwks_uri)")
    try:
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise SignInFailed(
            502, f"the identity provider's key set at {provider.jwks_uri} is not a JWKS: {error}"
        ) from None
    remembered: KeySet = _remember("jwks", provider.jwks_uri, keys)
    return remembered


# The flow cookie: state, nonce and PKCE verifier between the two routes


def _flow_key(settings: Settings) -> OctKey:
    material = settings.oidc_client_secret.encode() or _PROCESS_KEY
    return OctKey.import_key(hmac.new(material, b"steward.oidc.flow", hashlib.sha256).digest())


def _seal(settings: Settings, flow: dict[str, Any]) -> str:
    claims = {
        **flow,
        "iss": settings.oidc_issuer,
        "aud": settings.oidc_client_id,
        "exp": int(time.time()) + _FLOW_SECONDS,
    }
    header = {"alg": "dir", "enc": "A256GCM"}
    return jwt.encode(header, claims, _flow_key(settings), registry=_FLOW_REGISTRY)


def _open_flow(settings: Settings, sealed: str | None) -> dict[str, Any]:
    again = "start again from the sign-in page"
    if not sealed:
        raise SignInFailed(
            400,
            "this browser has no sign-in in progress (the steward_oidc cookie is missing: it "
            f"lasts {_FLOW_SECONDS // 60} minutes and needs cookies on); {again}",
        )
    try:
        claims = jwt.decode(sealed, _flow_key(settings), registry=_FLOW_REGISTRY).claims
    except (JoseError, ValueError) as error:
        raise SignInFailed(
            400, f"the sign-in cookie was not made by this server ({error}); {again}"
        ) from None
    if claims.get("iss") != settings.oidc_issuer or claims.get("aud") != settings.oidc_client_id:
        raise SignInFailed(400, f"the sign-in began with another identity provider; {again}")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        raise SignInFailed(
            400, f"the sign-in took longer than {_FLOW_SECONDS // 60} minutes; {again}"
        )
    return claims


# The ID token


def _decode(id_token: str, keys: KeySet, provider: Provider) -> jwt.Token:
    try:
        return jwt.decode(id_token, keys, algorithms=list(provider.algorithms))
    except BadSignatureError:
        raise SignInFailed(
            403,
            "the ID token's signature does not verify against the identity provider's keys "
            f"({provider.jwks_uri}); it was not signed by {provider.issuer}",
        ) from None
    except UnsupportedAlgorithmError as error:
        raise SignInFailed(
            403, f"the ID token is signed with an algorithm Steward does not take ({error})"
        ) from None


async def _verified_claims(
    provider: Provider, settings: Settings, answer: dict[str, Any], nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, expiry and nonce hold."""
    id_token = answer.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed(
            502,
            "the token endpoint answered without an ID token; make sure the client may use the "
            "'openid' scope at the identity provider",
        )
    try:
        try:
            token = _decode(id_token, await _key_set(provider), provider)
        except InvalidKeyIdError:  # a key it does not have yet: the provider rotated its keys
            token = _decode(id_token, await _key_set(provider, fresh=True), provider)
    except JoseError as error:
        raise SignInFailed(
            403, f"the ID token is not a JWT signed with one of the provider's keys ({error})"
        ) from None
    claims = CodeIDToken(
        token.claims,
        token.header,
        {
            "iss": {"essential": True, "value": provider.issuer},
            "aud": {"essential": True, "value": settings.oidc_client_id},
        },
        {
            "nonce": nonce,
            "client_id": settings.oidc_client_id,
            "access_token": answer.get("access_token"),
        },
    )
    try:
        claims.validate(leeway=_LEEWAY)
    except ClaimError as error:
        raise SignInFailed(403, _claim_problem(error, token.claims, provider, settings)) from None
    except JoseError as error:
        raise SignInFailed(403, f"the ID token's claims do not hold ({error})") from None
    return dict(claims)


def _claim_problem(
    error: ClaimError, claims: dict[str, Any], provider: Provider, settings: Settings
) -> str:
    name, got = error.claim, claims.get(error.claim)
    if isinstance(error, ExpiredTokenError) or name == "exp":
        return f"the ID token expired (exp {got!r}, now {int(time.time())}); sign in again"
    explained = {
        "iss": f"was issued by {got!r}, not by {provider.issuer!r}",
        "aud": f"is for the audience {got!r}, not for this client ({settings.oidc_client_id!r})",
        "nonce": "does not carry the nonce of this sign-in: it belongs to another sign-in, or "
        "was replayed",
        "azp": f"was issued to the party {got!r}, not to this client",
    }
    return f"the ID token {explained.get(name, f'has no valid {name!r} claim ({error})')}"


def _person(claims: dict[str, Any], settings: Settings) -> str:
    """The Steward identity the claims name, by the ``oidc_claim`` setting."""
    name = claims.get(settings.oidc_claim)
    if not isinstance(name, str) or not name:
        has = ", ".join(sorted(claims))
        raise SignInFailed(
            403,
            f"the ID token has no {settings.oidc_claim!r} claim to name you by (it has: {has}); "
            "an admin can set oidc_claim to another one, e.g. preferred_username",
        )
    if settings.oidc_claim == "email" and claims.get("email_verified") is False:
        raise SignInFailed(
            403,
            f"the identity provider has not verified the email address {name}; verify it there, "
            "then sign in again",
        )
    return name


# The token endpoint


async def _exchange(
    provider: Provider, settings: Settings, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The token endpoint's answer to the authorization code, with the PKCE verifier."""
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    method = provider.auth_method(settings.oidc_client_secret)
    client = ClientAuth(settings.oidc_client_id, settings.oidc_client_secret, method)
    uri, headers, body = client.prepare("POST", provider.token_endpoint, headers, body)
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            answer = await http.post(uri, content=body, headers=headers)
    except httpx.HTTPError as unreachable:
        raise SignInFailed(
            502,
            f"the identity provider's token endpoint {provider.token_endpoint} could not be "
            f"reached ({type(unreachable).__name__}: {unreachable}); sign in again later",
        ) from None
    try:
        document = answer.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SignInFailed(
            502,
            f"the token endpoint {provider.token_endpoint} answered HTTP {answer.status_code} "
            "without a JSON object",
        )
    if answer.status_code != 200 or "error" in document:
        error = str(document.get("error", f"HTTP {answer.status_code}"))
        description = document.get("error_description")
        said = f"{error}: {description}" if description else error
        if error == "invalid_grant":
            raise SignInFailed(
                400, f"the identity provider refused the sign-in code ({said}); sign in again"
            )
        raise SignInFailed(
            502,
            f"the identity provider refused to exchange the sign-in code ({said}); an admin "
            "should check oidc_client_id and oidc_client_secret against the client registration",
        )
    return document


# The routes


def _configured(settings: Settings) -> Settings:
    if not settings.oidc_issuer:
        raise NotFoundError(
            "sign-in through an identity provider is off on this server; to turn it on, set "
            "STEWARD_OIDC_ISSUER, STEWARD_OIDC_CLIENT_ID and STEWARD_OIDC_CLIENT_SECRET (or "
            "--oidc-issuer and --oidc-client-id) and restart `steward serve` "
            "(docs/security.md, 'Sign-in through an identity provider')"
        )
    return settings


def _failed(failure: SignInFailed, *, forget_flow: bool, secure: bool) -> HTMLResponse:
    logger.warning("OIDC sign-in refused (%d): %s", failure.status, failure.reason)
    body = f'<p>{html.escape(failure.reason)}</p><p><a href="/ui/oidc/login">Sign in again</a></p>'
    answer = sign_in_page(_HEADINGS.get(failure.status, "Sign-in failed"), body, failure.status)
    if forget_flow:
        _forget_flow(answer, secure)
    return answer


def _forget_flow(answer: Response, secure: bool) -> None:
    answer.delete_cookie(FLOW_COOKIE, path=_FLOW_PATH, secure=secure, httponly=True, samesite="lax")


def _redirect_uri(request: Request) -> str:
    return f"{request.base_url}ui/oidc/callback"


@router.get(
    "/ui/oidc/login",
    dependencies=[requires(Role.ANONYMOUS)],
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def login(request: Request, steward: StewardDep) -> Response:
    """Send the browser to the identity provider to sign in; 404 while OIDC is off."""
    settings = _configured(steward.settings)
    secure = request.url.scheme == "https"
    try:
        provider = await discover(settings.oidc_issuer)
    except SignInFailed as failure:
        return _failed(failure, forget_flow=False, secure=secure)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url = prepare_grant_uri(
        provider.authorization_endpoint,
        settings.oidc_client_id,
        "code",
        redirect_uri=_redirect_uri(request),
        scope=_SCOPE,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    answer = RedirectResponse(url, status_code=303)
    answer.set_cookie(
        FLOW_COOKIE,
        _seal(settings, {"state": state, "nonce": nonce, "verifier": verifier}),
        max_age=_FLOW_SECONDS,
        path=_FLOW_PATH,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a cross-site navigation
        secure=secure,
    )
    return answer


@router.get(
    "/ui/oidc/callback",
    dependencies=[requires(Role.ANONYMOUS)],
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def callback(
    request: Request,
    steward: StewardDep,
    code: str = Query(default="", max_length=4096, description="The authorization code."),
    state: str = Query(default="", max_length=200, description="The state sent to the provider."),
    error: str = Query(default="", max_length=200, description="The provider's error code."),
    error_description: str = Query(default="", max_length=1000),
    iss: str = Query(default="", max_length=1000, description="The issuer (RFC 9207)."),
) -> Response:
    """Finish the sign-in the provider sends the browser back from; a session on success."""
    settings = _configured(steward.settings)
    secure = request.url.scheme == "https"
    try:
        flow = _open_flow(settings, request.cookies.get(FLOW_COOKIE))
        if not hmac.compare_digest(state.encode(), str(flow.get("state", "")).encode()):
            raise SignInFailed(
                400,
                "the state the identity provider sent back does not match this browser's "
                "sign-in (a stale tab, or a link someone else made); start again",
            )
        if error:
            said = f"{error!r}: {error_description!r}" if error_description else repr(error)
            raise SignInFailed(403, f"the identity provider did not sign you in ({said})")
        if not code:
            raise SignInFailed(400, "the identity provider sent the browser back without a code")
        provider = await discover(settings.oidc_issuer)
        if iss and iss != provider.issuer:
            raise SignInFailed(
                400, f"the answer came from the issuer {iss!r}, not {provider.issuer!r}"
            )
        answer = await _exchange(
            provider, settings, code, str(flow["verifier"]), _redirect_uri(request)
        )
        claims = await _verified_claims(provider, settings, answer, str(flow["nonce"]))
        issued = await _open_session(steward, provider, _person(claims, settings), claims)
    except SignInFailed as failure:
        return _failed(failure, forget_flow=True, secure=secure)
    return _signed_in(issued, secure)


async def _open_session(
    steward: Steward, provider: Provider, name: str, claims: dict[str, Any]
) -> Issued:
    note = f"oidc {provider.issuer} (sub {claims.get('sub')})"
    try:
        return await run_in_threadpool(start_session, steward, name, note=note)
    except NotFoundError:
        raise SignInFailed(
            403,
            f"you signed in at the identity provider as {name}, but Steward has no identity "
            f"named {name}. An admin lets someone in with `steward users add {name} --role "
            "operator` (or viewer, client, approver, admin: the role you need).",
        ) from None
    except ConflictError:
        raise SignInFailed(
            403,
            f"the Steward identity {name} is disabled (`steward users disable`), so it opens no "
            "session; ask an admin",
        ) from None
    except InvalidInputError:
        raise SignInFailed(
            403,
            f"the Steward identity {name} is a service (a program), and sessions are for people; "
            "ask an admin to sign you in under a user identity",
        ) from None


def _signed_in(issued: Issued, secure: bool) -> Response:
    """Set the session cookies exactly as ``/ui/login`` does, and go to the overview."""
    answer = set_session_cookies(RedirectResponse("/", status_code=303), issued, secure=secure)
    _forget_flow(answer, secure)
    return answer
