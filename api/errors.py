"""The one error map: each core exception class becomes one HTTP status with an RFC 9457 problem body."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import BASIC_CHALLENGE, BasicUnauthorized, session_principal
from api.html import Pages, wants_html
from geoserver import errors
from geoserver.access import Principal
from geoserver.idempotency import KeyReused

log = logging.getLogger("onemap.api")

STATUS_CODES: dict[type[errors.OneMapError], int] = {
    errors.BadInput: 400,
    errors.TooLarge: 413,
    errors.Unprocessable: 422,
    errors.UnsupportedMediaType: 415,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.TooManyRequests: 429,
    errors.StoreUnavailable: 503,
    KeyReused: 422,  # as the IETF Idempotency-Key draft says: same key, different request
}
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 412: "Precondition failed", 413: "Content too large", 415: "Unsupported media type",
          422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
          503: "Service unavailable"}


def problem(status: int, detail: str, *, parameter: str | None = None, headers: dict | None = None,
            members: dict | None = None) -> JSONResponse:
    """An application/problem+json response (`members`: extension members, RFC 9457 section 3.2)."""
    body: dict[str, object] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                               "detail": detail}
    if parameter:
        body["parameter"] = parameter
    for name, value in (members or {}).items():
        body.setdefault(name, value)
    h = dict(headers or {})
    if status == 401:
        h.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=h)


_PAGES = Pages()


def html_problem(request: Request, status: int, detail: str, headers: dict | None = None) -> Response:
    """The same problem as a page, for a person's browser (it offers to log in when a login could help)."""
    who = session_principal(request, request.app.state.settings) or Principal.anonymous()
    return _PAGES.render(request, who, "error.html", [], status=status, headers=headers,
                         title=TITLES.get(status, "Error"), detail=detail, path=request.url.path, code=status)


def status_for(exc: errors.OneMapError) -> int:
    """The HTTP status of a core exception (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_from_status(status: int, detail: str, parameter: str | None = None) -> errors.OneMapError:
    """The core exception that maps back to `status` (for answers of embedded libraries such as pygeoapi)."""
    for cls, code in STATUS_CODES.items():
        if code == status and cls is not KeyReused:
            return cls(detail, parameter=parameter)
    return errors.OneMapError(detail, parameter=parameter)  # anything else: a 500 with the detail logged


def add_exception_handlers(app: FastAPI) -> None:
    """Install the error map on an app."""

    @app.exception_handler(errors.OneMapError)
    async def _core(request: Request, exc: errors.OneMapError) -> Response:
        status = status_for(exc)
        # A passing outage (database down or busy) or too many failed logins: tell clients when to try again.
        # The store logs an outage itself once; a line per refused request would flood the log while it lasts.
        retry_after = getattr(exc, "retry_after", None)
        if status >= 500:
            log.log(logging.DEBUG if retry_after else logging.WARNING, "%s on %s: %s", type(exc).__name__,
                    request.url.path, exc.message)
        if wants_html(request) and status in (400, 403, 404):  # 401 keeps its challenge for clients
            return html_problem(request, status, exc.message)
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
        if isinstance(exc, BasicUnauthorized):
            # Refused Basic credentials challenge for Basic again (a GIS client then asks its user); a bearer
            # failure does not, or browsers running the viewer would pop up their own password dialog.
            headers = {"WWW-Authenticate": BASIC_CHALLENGE}
        return problem(status, exc.message, parameter=exc.parameter, headers=headers,
                       members=getattr(exc, "members", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body", "header")]
        name = ".".join(loc) or None
        return problem(400, f"{name or 'request'}: {first.get('msg', 'invalid value')}", parameter=name)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request) and exc.status_code == 404:
            return html_problem(request, 404, str(exc.detail))
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "internal error; the server log has the details")
