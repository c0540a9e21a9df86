"""Browser login: a form at /login that sets the session cookie, and POST /logout that clears it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import get_principal
from api.links import base_url
from api.ogc_pages import PAGES, trail
from api.routers.auth import token
from api.session import clear_session, safe_next, same_origin, set_session
from geoserver.access import Principal
from geoserver.errors import Forbidden, TooManyRequests, Unauthorized

router = APIRouter(include_in_schema=False)


def _form(request: Request, principal: Principal, next_path: str, *, username: str = "", message: str | None = None,
          status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # A refused login answers 401 with a form, not a Basic challenge (that would open the browser's own dialog).
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="onemap"'}
    return PAGES.render(request, principal, "login.html", trail(request, ("Log in", None)), status=status,
                        headers=headers, next=next_path, username=username, message=message)


def _check_origin(request: Request) -> None:
    # Login CSRF (a page elsewhere logging a visitor into another account) and forced logout need a cross-site
    # form post; browsers name the posting page's origin, so refuse any other than ours.
    if not same_origin(request, request.app.state.settings):
        raise Forbidden("this form must be posted from this server's own page", parameter="Origin")


@router.get("/login")
async def login_form(request: Request, next: str | None = None,
                     principal: Principal = Depends(get_principal)) -> Response:
    """The login form (`username`, `password`); `next` is where to go afterwards."""
    return _form(request, principal, safe_next(next))


@router.post("/login")
async def login(request: Request, username: str = Form(""), password: str = Form(""),
                next: str = Form("/")) -> Response:
    """Check the password as POST /auth/token does; on success set the session cookie and go to `next`."""
    _check_origin(request)
    try:
        answer = await token(request, username=username, password=password, grant_type=None)
    except Unauthorized as exc:
        return _form(request, Principal.anonymous(), safe_next(next), username=username, message=exc.message,
                     status=401)
    except TooManyRequests as exc:  # the login limits: the form again, saying when to try
        return _form(request, Principal.anonymous(), safe_next(next), username=username, message=exc.message,
                     status=429, headers={"Retry-After": str(exc.retry_after)})
    response = RedirectResponse(base_url(request) + safe_next(next), status_code=303)
    set_session(response, request, request.app.state.settings, answer["access_token"], answer["expires_in"])
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the session cookie and go to the landing page."""
    _check_origin(request)
    response = RedirectResponse(base_url(request) + "/", status_code=303)
    clear_session(response, request, request.app.state.settings)
    return response
