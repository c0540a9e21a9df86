"""OGC API Features (Parts 1-4): the FeaturesFactory owning an APIRouter; pygeoapi renders metadata and HTML."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pygeoapi import api as pga
from pygeoapi.api import itemtypes
from starlette.concurrency import run_in_threadpool

from api import ogc_pages as pages
from api.auth import get_principal
from api.bodies import read_json
from api.html import wants_html
from api.links import base_url
from api.ogc_params import ITEM_FORMATS, check_format, parse_items
from api.ogc_service import OGCService
from geoserver import crs as crsmod
from geoserver import idempotency
from geoserver.access import Principal, scope_for
from geoserver.catalog import Layer
from geoserver.errors import BadInput, NotFound
from geoserver.features import MAX_LIMIT, Feature, FeaturePage
from geoserver.geojson import from_geojson, to_geojson
from geoserver.store.base import GeoJSONPage
from layers import rules

GEOJSON = "application/geo+json"
ItemRenderer = Callable[[Request, Principal, str], Awaitable[Response]]
OGC = "http://www.opengis.net/spec"
CONFORMANCE = sorted([
    f"{OGC}/ogcapi-common-1/1.0/conf/core", f"{OGC}/ogcapi-common-1/1.0/conf/landing-page",
    f"{OGC}/ogcapi-common-1/1.0/conf/json", f"{OGC}/ogcapi-common-1/1.0/conf/html",
    f"{OGC}/ogcapi-common-1/1.0/conf/oas30", f"{OGC}/ogcapi-common-2/1.0/conf/collections",
    f"{OGC}/ogcapi-features-1/1.0/conf/core", f"{OGC}/ogcapi-features-1/1.0/conf/oas30",
    f"{OGC}/ogcapi-features-1/1.0/conf/html", f"{OGC}/ogcapi-features-1/1.0/conf/geojson",
    f"{OGC}/ogcapi-features-2/1.0/conf/crs",
    f"{OGC}/ogcapi-features-3/1.0/conf/queryables", f"{OGC}/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    f"{OGC}/ogcapi-features-3/1.0/conf/filter", f"{OGC}/ogcapi-features-3/1.0/conf/features-filter",
    f"{OGC}/cql2/1.0/conf/cql2-text", f"{OGC}/cql2/1.0/conf/cql2-json", f"{OGC}/cql2/1.0/conf/basic-cql2",
    f"{OGC}/cql2/1.0/conf/advanced-comparison-operators", f"{OGC}/cql2/1.0/conf/basic-spatial-functions",
    f"{OGC}/cql2/1.0/conf/basic-spatial-functions-plus", f"{OGC}/cql2/1.0/conf/spatial-functions",
    f"{OGC}/cql2/1.0/conf/temporal-functions",
    f"{OGC}/ogcapi-features-4/1.0/conf/create-replace-delete", f"{OGC}/ogcapi-features-4/1.0/conf/update",
    f"{OGC}/ogcapi-features-4/1.0/conf/features",
])


def _json(body: Any, status: int = 200, media_type: str = "application/json", **headers: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type=media_type, headers=headers)


class FeaturesFactory:
    """Registers the OGC API Features routes on `self.router`; the service is found on app.state.ogc."""

    def __init__(self, alternates: dict[str, dict[str, ItemRenderer]] | None = None) -> None:
        self.router = APIRouter(tags=["OGC API - Features"])
        # Other encodings of one collection's items, by `f` value (patrols: MF-JSON, api/routers/moving_features).
        self.alternates = alternates or {}
        self.register()

    @staticmethod
    def service(request: Request) -> OGCService:
        """The app's OGC service (built in the lifespan)."""
        return request.app.state.ogc

    def register(self) -> None:
        """Add every route."""
        r = self.router
        r.add_api_route("/", self.landing, methods=["GET"])
        r.add_api_route("/conformance", self.conformance, methods=["GET"])
        r.add_api_route("/collections", self.collections, methods=["GET"])
        r.add_api_route("/collections/{collection_id}", self.collection, methods=["GET"])
        r.add_api_route("/collections/{collection_id}/queryables", self.queryables, methods=["GET"])
        r.add_api_route("/collections/{collection_id}/items", self.items, methods=["GET"])
        r.add_api_route("/collections/{collection_id}/items", self.create, methods=["POST"], status_code=201)
        r.add_api_route("/collections/{collection_id}/items/{fid}", self.item, methods=["GET"])
        r.add_api_route("/collections/{collection_id}/items/{fid}", self.replace, methods=["PUT"])
        r.add_api_route("/collections/{collection_id}/items/{fid}", self.patch, methods=["PATCH"])
        r.add_api_route("/collections/{collection_id}/items/{fid}", self.delete, methods=["DELETE"],
                        status_code=204)

    # -- metadata, through pygeoapi (JSON; the pages are ours) ---------------------------------------------
    async def landing(self, request: Request, principal: Principal = Depends(get_principal)) -> Response:
        """Landing page."""
        svc = self.service(request)
        return await pages.metadata(request, principal, svc.view(principal, base_url(request)),
                                    pga.landing_page, template="landing.html", crumbs=lambda doc: [])

    async def conformance(self, request: Request, principal: Principal = Depends(get_principal)) -> Response:
        """Conformance classes, Part 3 and 4 included (pygeoapi 0.21 does not declare them)."""
        body = {"conformsTo": CONFORMANCE}
        check_format(request.query_params, ("json", "html"))
        if wants_html(request):
            return pages.conformance_page(request, principal, body)
        return _json(body)

    async def collections(self, request: Request, principal: Principal = Depends(get_principal)) -> Response:
        """The collections the caller may read, with extents of what they may see."""
        svc = self.service(request)
        view = await run_in_threadpool(svc.view, principal, base_url(request), True)
        return await pages.metadata(request, principal, view, pga.describe_collections, template="collections.html",
                                    crumbs=lambda doc: pages.trail(request, ("Collections", None)))

    async def collection(self, collection_id: str, request: Request,
                         principal: Principal = Depends(get_principal)) -> Response:
        """One collection (404 when the caller may not read it)."""
        svc = self.service(request)
        svc.layer(principal, collection_id)
        view = await run_in_threadpool(svc.view, principal, base_url(request), True)
        return await pages.metadata(
            request, principal, view, pga.describe_collections, collection_id, template="collection.html",
            crumbs=lambda doc: pages.trail(request, ("Collections", "/collections"), (doc["title"], None)))

    async def queryables(self, collection_id: str, request: Request,
                         principal: Principal = Depends(get_principal)) -> Response:
        """Queryable properties of a collection."""
        svc = self.service(request)
        layer = svc.layer(principal, collection_id)
        return await pages.metadata(
            request, principal, svc.view(principal, base_url(request)), itemtypes.get_collection_queryables,
            collection_id, template="queryables.html", collection_id=collection_id,
            crumbs=lambda doc: pages.collection_trail(request, layer, ("Queryables", None)))

    # -- reads ------------------------------------------------------------------------------------------
    async def items(self, collection_id: str, request: Request,
                    principal: Principal = Depends(get_principal)) -> Response:
        """Features of a collection: bbox, datetime, CQL2 filter, property filters, paging, CRS."""
        svc = self.service(request)
        layer = svc.layer(principal, collection_id)
        params = {k: v for k, v in request.query_params.items()}
        html = wants_html(request)
        parsed = parse_items(layer, params)
        out_crs = crsmod.CRS84 if html else parsed.crs
        scope = scope_for(principal, layer, "read")
        q = parsed.query
        base = f"{base_url(request)}/collections/{layer.id}/items"
        if html:
            page: FeaturePage = await run_in_threadpool(svc.store.query, layer.id, q, scope)
            feats = [to_geojson(f, out_crs) for f in page.features]
            body = {"type": "FeatureCollection", "features": feats, "numberMatched": page.number_matched,
                    "numberReturned": len(feats), "links": []}
            page_links = {"prev": _href(base, request, max(0, q.offset - q.limit), f="html") if q.offset > 0 else None,
                          "next": _href(base, request, q.offset + q.limit, f="html")
                          if q.offset + len(feats) < page.number_matched else None,
                          "json_href": _href(base, request, q.offset, f="json")}
            return pages.items_page(request, principal, layer, body, q.offset, q.limit, MAX_LIMIT, page_links)
        # The features arrive encoded (PostGIS writes them itself); the members around them are added here.
        encoded: GeoJSONPage = await run_in_threadpool(svc.store.query_geojson, layer.id, q, scope, out_crs)
        links = [{"rel": "self", "type": GEOJSON, "href": _href(base, request, q.offset)},
                 {"rel": "alternate", "type": "text/html", "href": _href(base, request, q.offset, f="html")},
                 {"rel": "collection", "type": "application/json",
                  "href": f"{base_url(request)}/collections/{layer.id}"}]
        if q.offset + encoded.number_returned < encoded.number_matched:
            links.append({"rel": "next", "type": GEOJSON, "href": _href(base, request, q.offset + q.limit)})
        if q.offset > 0:
            links.append({"rel": "prev", "type": GEOJSON,
                          "href": _href(base, request, max(0, q.offset - q.limit))})
        tail = orjson.dumps({"numberMatched": encoded.number_matched, "numberReturned": encoded.number_returned,
                             "timeStamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "links": links})
        content = b"".join((b'{"type":"FeatureCollection","features":[', encoded.features, b"],", tail[1:]))
        return Response(content, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})

    async def item(self, collection_id: str, fid: str, request: Request,
                   principal: Principal = Depends(get_principal)) -> Response:
        """One feature with its ETag (404 outside the caller's scope, as if it did not exist)."""
        svc = self.service(request)
        layer = svc.layer(principal, collection_id)
        alternates = self.alternates.get(layer.id, {})
        f = check_format(request.query_params, ITEM_FORMATS + tuple(alternates))
        if f in alternates:
            return await alternates[f](request, principal, fid)
        out_crs = crsmod.parse_crs(request.query_params.get("crs"), "crs")
        feature = await run_in_threadpool(svc.store.get, layer.id, _fid(fid), scope_for(principal, layer, "read"))
        if wants_html(request):
            return pages.item_page(request, principal, layer, to_geojson(feature, crsmod.CRS84))
        body = to_geojson(feature, out_crs)
        body["links"] = [
            {"rel": "self", "type": GEOJSON, "href": f"{base_url(request)}/collections/{layer.id}/items/{fid}"},
            {"rel": "collection", "type": "application/json",
             "href": f"{base_url(request)}/collections/{layer.id}"}]
        return _json(body, media_type=GEOJSON, ETag=feature.etag(), **{"Content-Crs": f"<{out_crs}>"})

    # -- writes (Part 4) --------------------------------------------------------------------------------
    async def _body(self, request: Request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (GEOJSON, "application/json", "application/merge-patch+json"):
            raise BadInput(f"Content-Type must be {GEOJSON}; got {ctype or 'none'!r}", parameter="Content-Type")
        return await read_json(request)

    def _write_layer(self, request: Request, principal: Principal, collection_id: str, action: str) -> Layer:
        layer = self.service(request).layer(principal, collection_id)
        rules.write_scope(principal, layer, action)  # refused before the body is read
        return layer

    def _written_response(self, request: Request, layer: Layer, feature: Feature, status: int) -> dict[str, Any]:
        """Status, headers and GeoJSON body of a written feature (the form an Idempotency-Key keeps)."""
        url = f"{base_url(request)}/collections/{layer.id}/items/{feature.id}"
        return {"status": status, "headers": {"ETag": feature.etag(), "Location": url}, "body": to_geojson(feature)}

    def _written(self, request: Request, layer: Layer, feature: Feature, status: int) -> Response:
        written = self._written_response(request, layer, feature, status)
        return _json(written["body"], status, GEOJSON, **written["headers"])

    async def create(self, collection_id: str, request: Request,
                     principal: Principal = Depends(get_principal)) -> Response:
        """Create a feature (township/grid filled by spatial join); 201 with Location and ETag.

        With an Idempotency-Key header, a retry of the same request gets the first response again (nothing is
        written twice, whichever server process it reaches); the key with another body is a 422.
        """
        layer = self._write_layer(request, principal, collection_id, "create")
        in_crs = crsmod.parse_crs(request.headers.get("content-crs", "").strip("<> ") or None, "Content-Crs")
        body = await self._body(request)
        feature = from_geojson(layer, body, in_crs)
        store = self.service(request).store

        def insert() -> dict[str, Any]:
            stored = rules.create(store, principal, layer, feature)
            return self._written_response(request, layer, stored, 201)

        header = request.headers.get(idempotency.HEADER)
        if header is None:
            written, replayed = await run_in_threadpool(insert), False
        else:
            written, replayed = await run_in_threadpool(
                idempotency.run_once, store, principal.username, f"POST /collections/{layer.id}/items",
                idempotency.parse_key(header), idempotency.request_hash(body, in_crs), insert)
        headers = {**written["headers"], **({"Idempotent-Replayed": "true"} if replayed else {})}
        return _json(written["body"], written["status"], GEOJSON, **headers)

    async def _update(self, request: Request, principal: Principal, collection_id: str, fid: str,
                      partial: bool) -> Response:
        layer = self._write_layer(request, principal, collection_id, "update")
        in_crs = crsmod.parse_crs(request.headers.get("content-crs", "").strip("<> ") or None, "Content-Crs")
        body = await self._body(request)
        if partial and isinstance(body, dict) and body.get("type") != "Feature":
            body = {"type": "Feature", "geometry": body.get("geometry"), "properties": body.get("properties", {})}
        feature = from_geojson(layer, body, in_crs, partial=partial)
        store = self.service(request).store
        stored = await run_in_threadpool(
            lambda: rules.update(store, principal, layer, _fid(fid), feature, partial=partial,
                                 if_match=request.headers.get("if-match")))
        return self._written(request, layer, stored, 200)

    async def replace(self, collection_id: str, fid: str, request: Request,
                      principal: Principal = Depends(get_principal)) -> Response:
        """Replace a feature (If-Match honoured: 412 when someone changed it first)."""
        return await self._update(request, principal, collection_id, fid, partial=False)

    async def patch(self, collection_id: str, fid: str, request: Request,
                    principal: Principal = Depends(get_principal)) -> Response:
        """Update some properties (and/or the geometry) of a feature."""
        return await self._update(request, principal, collection_id, fid, partial=True)

    async def delete(self, collection_id: str, fid: str, request: Request,
                     principal: Principal = Depends(get_principal)) -> Response:
        """Delete a feature; 204 with no body."""
        layer = self._write_layer(request, principal, collection_id, "delete")
        store = self.service(request).store
        await run_in_threadpool(
            lambda: rules.delete(store, principal, layer, _fid(fid), if_match=request.headers.get("if-match")))
        return Response(status_code=204)


def _fid(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise NotFound(f"no feature {value!r}", parameter="featureId") from None


def _href(base: str, request: Request, offset: int, **override: str) -> str:
    """A link to the same query (every parameter kept, filter included) at another offset."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", *override)]
    if offset:
        items.append(("offset", str(offset)))
    items.extend(override.items())
    return base + ("?" + urlencode(items) if items else "")
