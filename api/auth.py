"""Who is calling: bearer JWTs (ours, HS256), OIDC bearer tokens (JWKS), API keys and HTTP Basic -> a Principal."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict
from typing import Any

import jwt
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.session import session_token
from api.settings import Settings
from geoserver.access import ROLES, Grant, Principal
from geoserver.account_states import AccountStates
from geoserver.apikeys import hash_api_key
from geoserver.errors import Unauthorized
from geoserver.logins import LoginGate, LoginLimits
from geoserver.passwords import VerifiedPasswords
from geoserver.store import Store, UserRecord

ALGORITHM = "HS256"
ISSUER = "onemap"
# HTTP Basic (RFC 7617) for GIS clients that speak nothing else (QGIS, ArcGIS, GDAL). The password is the
# account's password or one of its API keys; with the reserved username `apikey`, any API key.
BASIC_REALM = "onemap"
BASIC_CHALLENGE = f'Basic realm="{BASIC_REALM}", charset="UTF-8"'
API_KEY_USERNAME = "apikey"


class BasicUnauthorized(Unauthorized):
    """Basic credentials were refused or malformed: the answer challenges for Basic again."""


def principal_of(user: UserRecord) -> Principal:
    """The Principal of a stored account; Unauthorized if the account is disabled."""
    if user.disabled:
        raise Unauthorized(f"the account {user.username!r} is disabled")
    grants = frozenset(Grant.parse(g) for g in user.extra.get("grants", ()))
    return Principal(user.username, user.role, frozenset(user.townships), frozenset(user.grids),
                     user.department, grants)


def _claims(principal: Principal, lifetime: int, version: int | None) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER, "sub": principal.username, "role": principal.role, "iat": now, "exp": now + lifetime,
        **({"ver": version} if version is not None else {}),
        "townships": sorted(principal.townships), "grids": sorted(principal.grids),
        "department": principal.department, "grants": [g.to_json() for g in principal.grants],
    }


def issue_token(settings: Settings, principal: Principal, version: int) -> tuple[str, int]:
    """A signed access token for the principal under its account's auth_version, and its lifetime in seconds."""
    lifetime = settings.token_minutes * 60
    return jwt.encode(_claims(principal, lifetime, version), settings.secret, algorithm=ALGORITHM), lifetime


def issue_ticket(settings: Settings, principal: Principal, audience: str, seconds: int,
                 version: int | None = None) -> str:
    """A short-lived token good only for `audience` (e.g. a stream a browser opens with the ticket in the
    URL, since EventSource cannot send headers), under the account's version if it has one; it is refused
    as a bearer token."""
    claims = {**_claims(principal, seconds, version), "aud": audience}
    return jwt.encode(claims, settings.secret, algorithm=ALGORITHM)


def principal_from_ticket(settings: Settings, ticket: str, audience: str,
                          parameter: str) -> tuple[Principal, int | None]:
    """The principal of a ticket issued for `audience` and its account version (None for an identity
    provider's user without an account); Unauthorized naming `parameter` if bad or expired."""
    try:
        return _own_token(settings, ticket, audience=audience)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the ticket has expired; ask for a new one", parameter=parameter) from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid ticket: {exc}", parameter=parameter) from None


class _VerifiedTokens:
    """Our bearer tokens already verified in this process: the principal, version and expiry of each.

    A map client sends the same token with every tile; its signature and claims cannot change, so they are
    checked once and the result kept (bounded, least recently used out) until the token expires. The account's
    version is still checked on every request (`check_version`), so a disabled account counts at once.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._known: OrderedDict[tuple[str, str], tuple[Principal, int | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, secret: str, token: str) -> tuple[Principal, int | None] | None:
        """The verified principal and version, or None if unknown or expired."""
        with self._lock:
            hit = self._known.get((secret, token))
            if hit is None:
                return None
            if hit[2] <= time.time():
                del self._known[(secret, token)]
                return None
            self._known.move_to_end((secret, token))
        return hit[0], hit[1]

    def put(self, secret: str, token: str, found: tuple[Principal, int | None], expires: float) -> None:
        """Remember a token just verified."""
        with self._lock:
            self._known[(secret, token)] = (*found, expires)
            while len(self._known) > self.size:
                self._known.popitem(last=False)


VERIFIED_TOKENS = _VerifiedTokens()


def own_bearer(settings: Settings, token: str) -> tuple[Principal, int | None]:
    """The principal and account version of one of our bearer tokens, verified once per process."""
    hit = VERIFIED_TOKENS.get(settings.secret, token)
    if hit is not None:
        return hit
    found, expires = _decode_own(settings, token, None)
    VERIFIED_TOKENS.put(settings.secret, token, found, expires)
    return found


def _own_token(settings: Settings, token: str, audience: str | None = None) -> tuple[Principal, int | None]:
    """The principal of one of our tokens and the account version it names (a ticket may name none)."""
    return _decode_own(settings, token, audience)[0]


def _decode_own(settings: Settings, token: str, audience: str | None) -> tuple[tuple[Principal, int | None], float]:
    claims = jwt.decode(token, settings.secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=audience,
                        options={"require": ["exp", "sub", "role"]})
    if claims["role"] not in ROLES or claims["role"] == "anonymous":
        raise Unauthorized("token carries an unknown role", parameter="Authorization")
    version = claims.get("ver")
    if audience is None and not isinstance(version, int):  # a bearer token: always under a version
        raise Unauthorized("token carries no account version", parameter="Authorization")
    principal = Principal(
        str(claims["sub"]), claims["role"], frozenset(claims.get("townships") or ()),
        frozenset(claims.get("grids") or ()), claims.get("department"),
        frozenset(Grant.parse(g) for g in claims.get("grants") or ()),
    )
    return (principal, version), float(claims["exp"])


def _jwks_client(request: Request, settings: Settings) -> jwt.PyJWKClient:
    client = getattr(request.app.state, "jwks_client", None)
    if client is None:
        client = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=3600)
        request.app.state.jwks_client = client
    return client


def _oidc_token(request: Request, settings: Settings, store: Store, token: str) -> Principal:
    """An identity provider's token: verified against its JWKS; the account decides the role."""
    key = _jwks_client(request, settings).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
        issuer=settings.oidc_issuer, audience=settings.oidc_audience,
        options={"require": ["exp", "sub"], "verify_aud": settings.oidc_audience is not None,
                 "verify_iss": settings.oidc_issuer is not None},
    )
    name = str(claims.get("preferred_username") or claims["sub"])
    user = store.get_user(name)
    if user is not None:
        return principal_of(user)
    # Someone the identity provider knows but we do not: authenticated, with an external client's reach.
    return Principal(name, "external")


def authenticate_bearer(request: Request, settings: Settings, store: Store, token: str) -> tuple[Principal, int | None]:
    """The principal of a bearer token (ours first, then OIDC when configured) and, for ours, the account
    version it was issued under; Unauthorized if bad."""
    try:
        return own_bearer(settings, token)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired", parameter="Authorization") from None
    except jwt.PyJWTError as own_error:
        if not settings.oidc_jwks_url:
            raise Unauthorized(f"invalid access token: {own_error}", parameter="Authorization") from None
    try:
        return _oidc_token(request, settings, store, token), None
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired", parameter="Authorization") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid access token: {exc}", parameter="Authorization") from None


def authenticate_api_key(store: Store, key: str) -> Principal:
    """The principal an API key stands for; Unauthorized if the key is unknown."""
    record = store.get_api_key(hash_api_key(key))
    user = store.get_user(record.username) if record is not None else None
    if user is None:
        raise Unauthorized("unknown API key", parameter="X-API-Key")
    return principal_of(user)


def basic_credentials(value: str) -> tuple[str, str]:
    """The username and password of a Basic credential (the base64 text after `Basic `); 401 if malformed."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BasicUnauthorized("Authorization: Basic credentials must be base64 of 'username:password'",
                                parameter="Authorization") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older clients send ISO-8859-1, as RFC 2617 allowed
    username, colon, password = text.partition(":")
    if not colon or not username:
        raise BasicUnauthorized("Authorization: Basic credentials must be base64 of 'username:password'",
                                parameter="Authorization")
    return username, password


def authenticate_basic(store: Store, verified: VerifiedPasswords, gate: LoginGate, username: str, password: str,
                       address: str) -> Principal:
    """The principal of Basic credentials: the account's password, or an API key as the password.

    The account is read on every request, so a changed password or a disabled account counts at once; only
    the slow hash of a password already proven right is skipped (`verified`). Anything else is a login and
    goes through the login limits (`gate`): an unknown username and a wrong password get the same answer
    after the same work, failures are counted per account and address, and too many are 429.
    """
    try:
        if username == API_KEY_USERNAME:
            return authenticate_api_key(store, password)
        user = store.get_user(username)
        if user is not None:
            if verified.remembered(username, password, user.password_hash):
                return principal_of(user)
            record = store.get_api_key(hash_api_key(password))  # one of the account's own keys as its password
            if record is not None and record.username == user.username:
                return principal_of(user)
        return principal_of(gate.login(username, password, address,
                                       verify=lambda given, stored: verified.verify(username, given, stored)))
    except BasicUnauthorized:
        raise
    except Unauthorized as exc:  # the challenge tells a GIS client to ask for (other) credentials
        raise BasicUnauthorized(exc.message, parameter="Authorization") from None


def login_gate(request: Request) -> LoginGate:
    """The login checks of this app: its store under the configured limits."""
    settings: Settings = request.app.state.settings
    limits = LoginLimits(settings.login_account_limit, settings.login_address_limit, settings.login_window_seconds)
    return LoginGate(request.app.state.store, limits)


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy, uvicorn's --forwarded-allow-ips sets it)."""
    return request.client.host if request.client else "unknown"


def _verified_passwords(request: Request) -> VerifiedPasswords:
    verified = getattr(request.app.state, "verified_passwords", None)
    if verified is None:  # one per app; two racing first requests at worst each build one, and one stays
        verified = request.app.state.verified_passwords = VerifiedPasswords()
    return verified


def _session(request: Request, settings: Settings) -> tuple[Principal, int] | None:
    """The principal and account version of the token in the browser's session cookie (safe methods only);
    None if absent, expired or forged."""
    token = session_token(request)
    if token is None:
        return None
    try:
        principal, version = own_bearer(settings, token)  # the cookie only ever holds a token we issued
    except (jwt.PyJWTError, Unauthorized):
        return None  # a stale cookie browses as anyone would; the page offers to log in again
    return principal, version


def session_principal(request: Request, settings: Settings) -> Principal | None:
    """The person behind the session cookie, as far as this process knows without reading the store (for
    pages that only show who is logged in); None if absent, expired, forged or its account moved on."""
    session = _session(request, settings)
    if session is None or request.app.state.account_states.verdict(session[0].username, session[1]) is False:
        return None
    return session[0]


async def check_version(request: Request, username: str, version: int, parameter: str = "Authorization") -> None:
    """Unauthorized (naming `parameter`) unless the account still stands at the version the token was issued
    under."""
    states: AccountStates = request.app.state.account_states
    verdict = states.verdict(username, version)
    if verdict is None:  # an account this process has not seen yet: one read, then it is known
        await run_in_threadpool(states.load, username)
        verdict = states.verdict(username, version)
    if not verdict:
        raise Unauthorized("the token no longer stands (its account was changed or disabled); log in again",
                           parameter=parameter)


async def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller from `Authorization` (Bearer, Basic), `X-API-Key` or the session cookie."""
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, credentials = auth.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            username, password = basic_credentials(credentials)
            return await run_in_threadpool(authenticate_basic, store, _verified_passwords(request),
                                           login_gate(request), username, password, client_address(request))
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized("Authorization must be 'Bearer <token>' or 'Basic <base64 of username:password>'",
                               parameter="Authorization")
        if not settings.oidc_jwks_url:  # our own HS256 tokens: a CPU-only check, no thread hop needed
            principal, version = authenticate_bearer(request, settings, store, credentials)
        else:
            principal, version = await run_in_threadpool(authenticate_bearer, request, settings, store, credentials)
        if version is not None:
            await check_version(request, principal.username, version)
        return principal
    key = request.headers.get("x-api-key")
    if key:
        return await run_in_threadpool(authenticate_api_key, store, key.strip())
    session = _session(request, settings)
    if session is not None:
        try:
            await check_version(request, session[0].username, session[1])
            return session[0]
        except Unauthorized:
            pass  # a cookie whose account changed browses as anyone would; the page offers to log in again
    return Principal.anonymous()
