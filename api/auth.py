"""Who is calling: bearer JWTs (ours, HS256), OIDC bearer tokens (JWKS) and API keys -> a Principal."""

from __future__ import annotations

import time
from typing import Any

import jwt
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.settings import Settings
from geoserver.access import ROLES, Grant, Principal
from geoserver.apikeys import hash_api_key
from geoserver.errors import Unauthorized
from geoserver.store import Store, UserRecord

ALGORITHM = "HS256"
ISSUER = "onemap"


def principal_of(user: UserRecord) -> Principal:
    """The Principal of a stored account."""
    grants = frozenset(Grant.parse(g) for g in user.extra.get("grants", ()))
    return Principal(user.username, user.role, frozenset(user.townships), frozenset(user.grids),
                     user.department, grants)


def issue_token(settings: Settings, principal: Principal) -> tuple[str, int]:
    """A signed access token for the principal, and its lifetime in seconds."""
    lifetime = settings.token_minutes * 60
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": principal.username, "role": principal.role, "iat": now, "exp": now + lifetime,
        "townships": sorted(principal.townships), "grids": sorted(principal.grids),
        "department": principal.department, "grants": [g.to_json() for g in principal.grants],
    }
    return jwt.encode(claims, settings.secret, algorithm=ALGORITHM), lifetime


def _own_token(settings: Settings, token: str) -> Principal:
    claims = jwt.decode(token, settings.secret, algorithms=[ALGORITHM], issuer=ISSUER,
                        options={"require": ["exp", "sub", "role"]})
    if claims["role"] not in ROLES or claims["role"] == "anonymous":
        raise Unauthorized("token carries an unknown role", parameter="Authorization")
    return Principal(
        str(claims["sub"]), claims["role"], frozenset(claims.get("townships") or ()),
        frozenset(claims.get("grids") or ()), claims.get("department"),
        frozenset(Grant.parse(g) for g in claims.get("grants") or ()),
    )


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


def authenticate_bearer(request: Request, settings: Settings, store: Store, token: str) -> Principal:
    """The principal of a bearer token (ours first, then OIDC when configured); Unauthorized if bad."""
    try:
        return _own_token(settings, token)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired", parameter="Authorization") from None
    except jwt.PyJWTError as own_error:
        if not settings.oidc_jwks_url:
            raise Unauthorized(f"invalid access token: {own_error}", parameter="Authorization") from None
    try:
        return _oidc_token(request, settings, store, token)
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


async def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from `Authorization: Bearer` or `X-API-Key`; anonymous if neither."""
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", parameter="Authorization")
        if not settings.oidc_jwks_url:  # our own HS256 tokens: a CPU-only check, no thread hop needed
            return authenticate_bearer(request, settings, store, token.strip())
        return await run_in_threadpool(authenticate_bearer, request, settings, store, token.strip())
    key = request.headers.get("x-api-key")
    if key:
        return await run_in_threadpool(authenticate_api_key, store, key.strip())
    return Principal.anonymous()
