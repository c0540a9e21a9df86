"""GET /openapi (and /api): our OpenAPI document; Swagger UI from our own node_modules at /docs, never a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.links import base_url
from api.openapi.document import OpenAPIDocuments
from api.openapi.ogc import OPENAPI
from geoserver.access import Principal
from geoserver.errors import BadInput

SWAGGER_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "swagger-ui-dist"
ASSETS = "/docs/assets"

router = APIRouter(tags=["OpenAPI"])


def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f.lower() not in ("json", "html"):
            raise BadInput(f"f must be json or html; got {f!r}", parameter="f")
        return f.lower() == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def swagger_page(request: Request) -> Response:
    """Swagger UI over /openapi, its script and styles served by us."""
    base = base_url(request)
    return get_swagger_ui_html(
        openapi_url=f"{base}/openapi?f=json", title=f"{request.app.title} - OpenAPI",
        swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{base}{ASSETS}/favicon-32x32.png",
        # validatorUrl null: Swagger UI would otherwise fetch a badge from validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})


async def _document(request: Request, principal: Principal) -> Response:
    if _wants_html(request):
        return swagger_page(request)
    docs: OpenAPIDocuments = request.app.state.openapi
    body = await run_in_threadpool(docs.document, principal, base_url(request))
    return Response(body, media_type=OPENAPI, headers={"Vary": "Accept, Authorization, X-API-Key"})


@router.get("/openapi")
async def openapi(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """This OpenAPI 3.0 document: every route we serve, the collections the caller may read; HTML: Swagger UI."""
    return await _document(request, principal)


@router.get("/api", include_in_schema=False)
async def api_alias(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """The same document under the name pygeoapi uses."""
    return await _document(request, principal)


@router.get("/docs", include_in_schema=False)
def docs_page(request: Request) -> Response:
    """Swagger UI for people."""
    return swagger_page(request)


def mount_swagger(app: FastAPI) -> None:
    """Serve swagger-ui-dist (installed by `make npm` from package-lock.json) at /docs/assets."""
    app.state.openapi = OpenAPIDocuments(app, app.state.catalog)
    if SWAGGER_DIST.is_dir():
        app.mount(ASSETS, StaticFiles(directory=SWAGGER_DIST), name="swagger-ui")
