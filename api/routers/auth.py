"""POST /auth/token: the OAuth2 password flow, answering a signed JWT."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool

from api.auth import client_address, issue_token, login_gate, principal_of
from geoserver.store import AccountState

router = APIRouter(tags=["auth"])


@router.post("/auth/token", responses={429: {"description": "Too many failed logins for the account or the "
                                                          "address; try again after Retry-After seconds."}})
async def token(request: Request, username: str = Form(..., max_length=256),
                password: str = Form(..., max_length=1024), grant_type: str | None = Form(None)) -> dict:
    """Exchange a username and password for a bearer token (failed attempts are limited: 429)."""
    user = await run_in_threadpool(login_gate(request).login, username, password, client_address(request))
    request.app.state.account_states.note(user.username, AccountState(user.auth_version, user.disabled))
    access_token, expires_in = issue_token(request.app.state.settings, principal_of(user), user.auth_version)
    return {"access_token": access_token, "token_type": "bearer", "expires_in": expires_in}
