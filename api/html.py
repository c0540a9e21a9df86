"""HTML pages for people: our own Jinja templates, CSS and JS; Bootstrap and Leaflet served from node_modules.

Nothing on a page comes from another host (the Content-Security-Policy says so to the browser too), and every
link on a page is a route we serve. pygeoapi answers JSON only; the pages are rendered from that JSON here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.links import base_url
from api.session import VARY_CALLER
from geoserver.access import Principal

log = logging.getLogger("onemap.api")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
NODE_MODULES = HERE.parent / "node_modules"
# npm packages (package.json, `make npm`) whose built files the pages load, at /static/vendor/<name>/.
VENDOR = {"bootstrap": NODE_MODULES / "bootstrap" / "dist", "leaflet": NODE_MODULES / "leaflet" / "dist"}
BASEMAP = "imagery"  # the raster source drawn under the features, when the server has it
HTML = "text/html; charset=utf-8"
# Our pages load only our own files; inline styles are allowed because Leaflet positions its panes with them.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def wants_html(request: Request) -> bool:
    """Whether the caller asked for a page: `f=html`, or a browser's Accept without JSON in it."""
    f = request.query_params.get("f")
    if f:
        return f.lower() == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


@dataclass(frozen=True)
class Crumb:
    """One step of the breadcrumb: its label and, unless it is the page itself, where it leads."""

    label: str
    href: str | None = None


class Pages:
    """Renders the templates in api/templates with what every page needs (base URL, who is logged in)."""

    def __init__(self) -> None:
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def render(self, request: Request, principal: Principal, template: str, crumbs: list[Crumb],
               status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
        """The page as a response that no shared cache keeps (it depends on who is logged in)."""
        base = base_url(request)
        rasters = getattr(request.app.state, "rasters", None)
        basemap = (f"{base}/basemaps/{BASEMAP}/{{z}}/{{x}}/{{y}}.png"
                   if rasters is not None and BASEMAP in rasters.ids else None)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.env.get_template(template).render(
            base=base, user=None if principal.is_anonymous else principal, crumbs=crumbs, here=here,
            basemap=basemap, **context)
        return Response(html, status_code=status, media_type=HTML, headers={
            "Cache-Control": "private, no-store", "Vary": VARY_CALLER,
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", **(headers or {})})


def mount_static(app: FastAPI) -> None:
    """Serve our own CSS/JS at /static and the npm packages the pages use at /static/vendor/<name>."""
    for name, path in VENDOR.items():
        if path.is_dir():
            app.mount(f"/static/vendor/{name}", StaticFiles(directory=path), name=f"vendor-{name}")
        else:
            log.warning("npm package %s is missing (%s): run `make npm`; HTML pages will lack it", name, path)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
