"""/users and /api-keys: admins create, re-grant, disable and re-enable accounts and issue and revoke API keys.

Thin: parse and bound the input here, let geoserver/accounts.py decide, serialise the result. A non-admin
gets 403, nobody logged in 401.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.settings import Settings
from geoserver.access import Principal, may_administer_accounts
from geoserver.accounts import MAX_CODES, MAX_GRANTS, MAX_PASSWORD, MAX_TEXT, AccountAdmin, grants_of
from geoserver.errors import BadInput, Forbidden, Unauthorized
from geoserver.logins import account_subject
from geoserver.store import ApiKeyRecord, UserRecord

router = APIRouter(tags=["accounts"], responses={403: {"description": "Only an admin manages accounts and keys."}})
CONFLICT = {409: {"description": "The change would leave the county without an enabled admin."}}
STALE = {412: {"description": "If-Match names an older version of the account."}}

Code = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Path(min_length=1, max_length=64)]
Role = Literal["admin", "operator", "leader", "worker", "department", "external"]


class GrantBody(BaseModel):
    """A per-account grant: an action on a layer (`*`: every one) in townships (`*`, `own` or a list)."""

    model_config = ConfigDict(extra="forbid")
    layer: Code
    action: Code
    townships: Literal["*", "own"] | Annotated[list[Code], Field(max_length=MAX_CODES)] = "own"


class AccountFields(BaseModel):
    """What an admin may set on an account (every field optional: PATCH)."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    display_name: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    townships: Annotated[list[Code], Field(max_length=MAX_CODES)] | None = None
    grids: Annotated[list[Code], Field(max_length=MAX_CODES)] | None = None
    department: Code | None = None
    grants: Annotated[list[GrantBody], Field(max_length=MAX_GRANTS)] | None = None
    disabled: bool | None = None
    password: Annotated[str, Field(max_length=MAX_PASSWORD)] | None = None


class NewAccount(AccountFields):
    """POST /users: a name, a password and a role at least."""

    username: Code
    password: Annotated[str, Field(max_length=MAX_PASSWORD)]
    role: Role


class Replacement(AccountFields):
    """PUT /users/{username}: the whole account (fields not sent are emptied; the password is kept)."""

    role: Role


class NewKey(BaseModel):
    """POST /api-keys: whose key, and a label saying what it is for."""

    model_config = ConfigDict(extra="forbid")
    username: Code
    label: Annotated[str, Field(max_length=MAX_TEXT)] = ""


async def admin(principal: Principal = Depends(get_principal)) -> Principal:
    """The caller, if an admin: 401 for nobody, 403 for anyone else."""
    if principal.is_anonymous:
        raise Unauthorized("log in as an admin to manage accounts", parameter="Authorization")
    if not may_administer_accounts(principal):
        raise Forbidden("only an admin manages accounts and API keys")
    return principal


def accounts(request: Request) -> AccountAdmin:
    """Account administration over the app's store; this process's token check hears each change at once."""
    return AccountAdmin(request.app.state.store, request.app.state.catalog, request.app.state.account_states.note)


def _user_json(user: UserRecord) -> dict:
    return {"username": user.username, "role": user.role, "display_name": user.display_name,
            "townships": list(user.townships), "grids": list(user.grids), "department": user.department,
            "grants": [{"layer": g.layer, "action": g.action, "townships": g.to_json()[2]} for g in grants_of(user)],
            "disabled": user.disabled, "version": user.auth_version}


def _key_json(key: ApiKeyRecord) -> dict:
    created = key.created_at.isoformat().replace("+00:00", "Z") if key.created_at else None
    return {"id": key.key_id, "username": key.username, "label": key.label, "created_at": created}


def _etag(user: UserRecord) -> str:
    return f'"{user.auth_version}"'


def _version(if_match: str | None) -> int | None:
    """The account version an If-Match names (the ETag of GET /users/{username}), or None."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise BadInput("If-Match must be the account's ETag, e.g. \"3\"", parameter="If-Match")
    return int(text)


def _fields(body: AccountFields) -> tuple[dict, str | None]:
    """The account fields sent and the new password (None: unchanged)."""
    sent = body.model_dump(exclude_unset=True)
    password = sent.pop("password", None)
    sent.pop("username", None)
    return sent, password


# -- accounts -------------------------------------------------------------------------------------------------
@router.get("/users")
async def list_users(request: Request, who: Principal = Depends(admin),
                     role: Role | None = Query(None), township: str | None = Query(None, max_length=64),
                     limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    """A page of accounts in name order (of one role, holding one township)."""
    users, matched = await run_in_threadpool(accounts(request).list, role=role, township=township, limit=limit,
                                             offset=offset)
    return {"users": [_user_json(u) for u in users], "numberMatched": matched, "numberReturned": len(users)}


@router.post("/users", status_code=201, responses={409: {"description": "The username is taken."}})
async def create_user(request: Request, body: NewAccount, response: Response, who: Principal = Depends(admin)) -> dict:
    """Create an account (its password stored only as a slow hash)."""
    fields, password = _fields(body)
    role = fields.pop("role")
    user = await run_in_threadpool(accounts(request).create, body.username, password, actor=who.username, role=role,
                                   **fields)
    response.headers["Location"] = f"/users/{quote(user.username)}"
    response.headers["ETag"] = _etag(user)
    return _user_json(user)


@router.get("/users/{username}")
async def get_user(request: Request, username: Name, response: Response, who: Principal = Depends(admin)) -> dict:
    """One account, with its failed logins in the current window."""
    settings: Settings = request.app.state.settings
    user = await run_in_threadpool(accounts(request).get, username)
    since = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds)
    failures = await run_in_threadpool(request.app.state.store.login_failures, [account_subject(username)], since)
    response.headers["ETag"] = _etag(user)
    counted = failures.get(account_subject(username))
    return {**_user_json(user), "failed_logins": counted.failures if counted else 0}


async def _change(request: Request, username: str, body: AccountFields, who: Principal, if_match: str | None,
                  response: Response, *, replace: bool) -> dict:
    fields, password = _fields(body)
    if replace:  # PUT: what was not sent is emptied
        fields = {"display_name": "", "townships": [], "grids": [], "department": None, "grants": [],
                  "disabled": False, **fields}
    user = await run_in_threadpool(accounts(request).change, username, actor=who.username,
                                   version=_version(if_match), password=password, **fields)
    response.headers["ETag"] = _etag(user)
    return _user_json(user)


@router.patch("/users/{username}", responses={**CONFLICT, **STALE})
async def patch_user(request: Request, username: Name, body: AccountFields, response: Response,
                     who: Principal = Depends(admin),
                     if_match: str | None = Header(None, max_length=64)) -> dict:
    """Change some fields of an account (role, townships, grids, department, grants, disabled, password)."""
    return await _change(request, username, body, who, if_match, response, replace=False)


@router.put("/users/{username}", responses={**CONFLICT, **STALE})
async def put_user(request: Request, username: Name, body: Replacement, response: Response,
                   who: Principal = Depends(admin),
                   if_match: str | None = Header(None, max_length=64)) -> dict:
    """Replace an account's fields (the password is kept unless sent)."""
    return await _change(request, username, body, who, if_match, response, replace=True)


@router.delete("/users/{username}", status_code=204, responses=CONFLICT)
async def disable_user(request: Request, username: Name, who: Principal = Depends(admin)) -> Response:
    """Disable an account (kept, since events and patrols name it): its tokens and API keys stop at once."""
    await run_in_threadpool(accounts(request).change, username, actor=who.username, disabled=True)
    return Response(status_code=204)


# -- API keys -------------------------------------------------------------------------------------------------
@router.post("/api-keys", status_code=201)
async def issue_key(request: Request, body: NewKey, response: Response, who: Principal = Depends(admin)) -> dict:
    """Issue an API key: the key is in this answer only, never again (only its hash is kept)."""
    key, record = await run_in_threadpool(accounts(request).issue_key, body.username, body.label,
                                          actor=who.username)
    response.headers["Location"] = f"/api-keys/{quote(record.key_id)}"
    return {**_key_json(record), "key": key}


@router.get("/api-keys")
async def list_keys(request: Request, who: Principal = Depends(admin),
                    username: str | None = Query(None, min_length=1, max_length=64)) -> dict:
    """Every API key (of one account), without secrets."""
    keys = await run_in_threadpool(accounts(request).keys, username)
    return {"api_keys": [_key_json(k) for k in keys]}


@router.get("/api-keys/{key_id}")
async def get_key(request: Request, key_id: Annotated[str, Path(min_length=1, max_length=64)],
                  who: Principal = Depends(admin)) -> dict:
    """One API key, without its secret."""
    return _key_json(await run_in_threadpool(accounts(request).key, key_id))


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_key(request: Request, key_id: Annotated[str, Path(min_length=1, max_length=64)],
                     who: Principal = Depends(admin)) -> Response:
    """Revoke an API key: it stops working at once, in every process."""
    await run_in_threadpool(accounts(request).revoke_key, key_id, actor=who.username)
    return Response(status_code=204)
