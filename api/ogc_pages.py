"""The OGC API documents as pages: pygeoapi's JSON (trimmed to links we serve) rendered by our templates."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response
from pygeoapi.api import API

from api.html import Crumb, Pages, wants_html
from api.links import base_url
from api.ogc_service import FORMATS
from geoserver.access import Principal
from geoserver.catalog import Layer
from geoserver.errors import BadInput

PAGES = Pages()
# Routes pygeoapi links to that this server does not have (no processes, jobs, schemas; our tile matrix sets
# are at /tileMatrixSets): such links are dropped from every document.
UNSERVED = frozenset({"processes", "jobs", "TileMatrixSets", "schema"})
TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"


def trail(request: Request, *steps: tuple[str, str | None]) -> list[Crumb]:
    """Home, then each step (label, path under the base URL; None for the page itself)."""
    base = base_url(request)
    return [Crumb("Home", f"{base}/"), *(Crumb(label, None if path is None else base + path) for label, path in steps)]


def collection_trail(request: Request, layer: Layer, *steps: tuple[str, str | None]) -> list[Crumb]:
    """Home / Collections / <the layer's title> / steps."""
    return trail(request, ("Collections", "/collections"), (layer.title, f"/collections/{layer.id}"), *steps)


def _is_served(link: dict) -> bool:
    parts = urlsplit(link.get("href", ""))
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    # Our items route answers GeoJSON and HTML; pygeoapi's JSON-LD items link would get GeoJSON.
    return last not in UNSERVED and not (last == "items" and "f=jsonld" in parts.query)


def _served(links: list[dict]) -> list[dict]:
    return [link for link in links if _is_served(link)]


def served_links(doc: dict, base: str) -> dict:
    """The document with links only to routes we serve (also inside each collection of a list)."""
    if isinstance(doc.get("links"), list):
        had_tiling = any(link.get("rel") == TILING_SCHEMES for link in doc["links"])
        doc["links"] = _served(doc["links"])
        if had_tiling:
            doc["links"].append({"rel": TILING_SCHEMES, "type": "application/json",
                                 "title": "Tile matrix sets", "href": f"{base}/tileMatrixSets"})
    for collection in doc.get("collections") or ():
        collection["links"] = _served(collection.get("links") or [])
    return doc


def _as_json(request: Request) -> Request:
    """The same request asking pygeoapi for JSON (it never renders a page of ours)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "f"] + [("f", "json")]
    return Request({**request.scope, "query_string": urlencode(query).encode()}, request.receive)


async def metadata(request: Request, principal: Principal, api: API, fn: Callable, *args: Any, template: str,
                   crumbs: Callable[[dict], list[Crumb]], **context: Any) -> Response:
    """A pygeoapi document: JSON-LD as pygeoapi renders it; else its JSON, or our page made from that JSON."""
    svc = request.app.state.ogc
    f = (request.query_params.get("f") or "").lower()
    if f == "jsonld":
        return await svc.call(request, principal, api, fn, *args)
    if f and f not in FORMATS:
        raise BadInput(f"f must be one of {', '.join(FORMATS)}; got {f!r}", parameter="f")
    answer = await svc.call(_as_json(request), principal, api, fn, *args)
    doc = served_links(json.loads(answer.body), base_url(request))
    if wants_html(request):
        return PAGES.render(request, principal, template, crumbs(doc), doc=doc, **context)
    media_type = answer.headers.get("content-type", "application/json").split(";")[0]
    return Response(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), media_type=media_type,
                    headers={k: v for k, v in answer.headers.items() if k.lower() == "content-language"})


def conformance_page(request: Request, principal: Principal, body: dict) -> Response:
    """The conformance classes as a page."""
    return PAGES.render(request, principal, "conformance.html", trail(request, ("Conformance", None)), doc=body)


def items_page(request: Request, principal: Principal, layer: Layer, body: dict, offset: int, limit: int,
               max_limit: int, links: dict[str, str | None]) -> Response:
    """A page of features: the filter form, a map, a table and paging."""
    params = request.query_params
    columns = [p.name for p in layer.properties]
    example = next((f"{p.name} = '{p.enum[0]}'" for p in layer.properties if p.enum), None) \
        or (f"{columns[0]} IS NOT NULL" if columns else "id > 0")
    crumbs = collection_trail(request, layer, ("Items", None))
    form = {"filter": params.get("filter", ""), "bbox": params.get("bbox", ""),
            "datetime": params.get("datetime", ""), "limit": limit}
    return PAGES.render(request, principal, "items.html", crumbs, layer=layer, fc=body, columns=columns,
                        form=form, example=example, offset=offset, max_limit=max_limit, **links)


def item_page(request: Request, principal: Principal, layer: Layer, feature: dict) -> Response:
    """One feature: its properties and a map."""
    crumbs = collection_trail(request, layer, ("Items", f"/collections/{layer.id}/items"), (str(feature["id"]), None))
    return PAGES.render(request, principal, "item.html", crumbs, layer=layer, feature=feature)
