"""POST /auth/token: the OAuth2 password flow, answering a signed JWT."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool

from api.auth import issue_token, principal_of
from geoserver.errors import Unauthorized
from geoserver.passwords import verify_password

router = APIRouter(tags=["auth"])


@router.post("/auth/token")
async def token(request: Request, username: str = Form(...), password: str = Form(...),
                grant_type: str | None = Form(None)) -> dict:
    """Exchange a username and password for a bearer token."""
    store = request.app.state.store
    user = await run_in_threadpool(store.get_user, username)
    ok = user is not None and await run_in_threadpool(verify_password, password, user.password_hash)
    if not ok:
        raise Unauthorized("wrong username or password", parameter="username")
    access_token, expires_in = issue_token(request.app.state.settings, principal_of(user))
    return {"access_token": access_token, "token_type": "bearer", "expires_in": expires_in}
