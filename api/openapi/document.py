"""The OpenAPI document of what we serve: FastAPI's route table, the OGC layer, and what the caller can reach.

Every route FastAPI knows (and that is not marked include_in_schema=False) is in the document, so a route
added anywhere appears by itself; api/openapi/ogc.py adds what signatures cannot say. Errors are always
problem+json (api/errors.py builds every one), and FastAPI's 422 validation answers are our 400s.

One document per reach: the collections a caller may read are the ones named (as `/collections` lists
them: anonymous callers never learn a protected collection's id), with the write operations they may use.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.auth import get_principal
from api.errors import TITLES
from api.openapi.oas30 import document_to_30
from api.openapi.ogc import (
    FEATURE_ROUTES,
    HTML,
    OPERATIONS,
    PATH_DOMAINS,
    PROBLEM,
    Reach,
    feature_paths,
    feature_tags,
    problem,
)
from api.openapi.patrols import moving_schemas
from api.openapi.patrols import operations as moving_operations
from api.openapi.schemas import common_schemas, layer_schemas
from basemaps import outlines
from geoserver.access import WRITES, Principal, readable_layers, scope_for
from geoserver.catalog import Catalog

MOVING_OPERATIONS = moving_operations()
MAX_DOCUMENTS = 64  # cached documents: one per (reach, base URL)
VALIDATION = "#/components/schemas/HTTPValidationError"
DESCRIPTION = ("The county's one-map server: OGC API Features (Parts 1-4), Tiles (vector and map tiles), "
               "WMTS 1.0.0, 3D Tiles 1.1 and the governance routes. Errors are RFC 9457 problem details. "
               "This document lists what the caller can reach: log in for more.")
BODY_METHODS = ("POST", "PUT", "PATCH")
HTML_ERRORS = ("400", "403", "404")  # api/errors.py answers these with a page when a browser asks
SECURITY = [{}, {"bearer": []}, {"apiKey": []}, {"basic": []}, {"password": []}]  # {}: anonymous is served too


def security_schemes(base_url: str) -> dict[str, Any]:
    """How a caller proves who they are (api/auth.py): bearer tokens (ours or OIDC), API keys, HTTP Basic."""
    return {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A token from POST /auth/token (or from the configured OIDC provider)."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "basic": {"type": "http", "scheme": "basic",
                  "description": "Username and password, or an API key as the password (username `apikey`)."},
        "password": {"type": "oauth2", "description": "Username and password for a bearer token.",
                     "flows": {"password": {"tokenUrl": f"{base_url}/auth/token", "scopes": {}}}},
    }


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(path template, route) of every APIRoute, through included routers."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI before route contexts: the table is flat
        items = ((getattr(r, "path_format", None), r) for r in app.routes)
    else:
        items = ((c.path_format, c.original_route) for c in iterate(app.routes))
    for path, route in items:
        if isinstance(route, APIRoute) and path:
            yield path, route


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _template_names(path: str) -> list[str]:
    return [part.split("}")[0] for part in path.split("{")[1:]]


class OpenAPIDocuments:
    """Builds the document for a caller's reach (cached), from the app's routes and the catalog."""

    def __init__(self, app: FastAPI, catalog: Catalog) -> None:
        self.app = app
        self.catalog = catalog
        self._base: dict[str, Any] | None = None
        self._authenticated: set[tuple[str, str]] = set()
        self._docs: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    # -- the caller's reach -----------------------------------------------------------------------------
    def reach(self, principal: Principal) -> Reach:
        """The collections, write actions and drawable sources this caller can reach."""
        layers = tuple(layer for layer, _ in readable_layers(principal, self.catalog))
        writes = {layer.id: frozenset(a for a in WRITES if scope_for(principal, layer, a).townships != frozenset())
                  for layer in layers}
        rasters = getattr(self.app.state, "rasters", None)
        return Reach(layers, {k: v for k, v in writes.items() if v}, tuple(rasters.ids) if rasters else (),
                     tuple(layer.id for layer, _ in outlines.readable(self.catalog, principal)))

    # -- FastAPI's part ---------------------------------------------------------------------------------
    def base(self) -> dict[str, Any]:
        """FastAPI's document of every route (3.0 dialect), built once: routes do not change after start."""
        if self._base is None:
            doc = get_openapi(title=self.app.title, version=self.app.version, description=DESCRIPTION,
                              routes=self.app.routes)
            self._authenticated = {(m, p) for p, r in api_routes(self.app) if r.include_in_schema
                                   for m in r.methods if _depends_on(r.dependant, get_principal)}
            self._base = document_to_30(doc)
        return self._base

    # -- the document -----------------------------------------------------------------------------------
    def document(self, principal: Principal, base_url: str) -> bytes:
        """The caller's document as JSON bytes."""
        reach = self.reach(principal)
        key = (reach.key(), base_url)
        with self._lock:
            hit = self._docs.get(key)
            if hit is not None:
                self._docs.move_to_end(key)
                return hit
        body = json.dumps(self.build(reach, base_url), ensure_ascii=False, separators=(",", ":")).encode()
        with self._lock:
            self._docs[key] = body
            while len(self._docs) > MAX_DOCUMENTS:
                self._docs.popitem(last=False)
        return body

    def build(self, reach: Reach, base_url: str) -> dict[str, Any]:
        """The document for one reach, linking to `base_url`."""
        base = copy.deepcopy(self.base())
        generic = {(m.upper(), p): op for p, item in base["paths"].items() for m, op in item.items()}
        paths: dict[str, dict[str, Any]] = {}
        features_added = False
        for path, item in base["paths"].items():
            kept = {}
            for method, op in item.items():
                key = (method.upper(), path)
                if key in FEATURE_ROUTES:
                    if not features_added:  # the collections' own paths go where the generic ones were
                        paths.update(self._features(reach, generic))
                        features_added = True
                    continue
                op = self._operation(key, op, reach)
                if op is not None:
                    kept[method] = op
            if kept:
                paths[path] = kept
        if not features_added:
            paths.update(self._features(reach, generic))
        schemas = {k: v for k, v in base.get("components", {}).get("schemas", {}).items()
                   if k not in ("HTTPValidationError", "ValidationError")}
        schemas.update(common_schemas())
        for layer in reach.collections:
            schemas.update(layer_schemas(layer))
        if "patrols" in reach.collection_ids:
            schemas.update(moving_schemas())
        return {
            "openapi": base["openapi"], "info": {**base["info"], "license": {"name": "CC-BY 4.0"}},
            "servers": [{"url": base_url or "/", "description": "this server"}],
            "tags": feature_tags(reach), "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": security_schemes(base_url)},
        }

    def _features(self, reach: Reach, generic: dict) -> dict[str, dict[str, Any]]:
        out = feature_paths(reach, generic)
        for path, item in out.items():
            for op in item.values():
                _errors(op, "", path, authenticated=True, known=True)
        return out

    def _operation(self, key: tuple[str, str], op: dict[str, Any], reach: Reach) -> dict[str, Any] | None:
        """One FastAPI operation with the OGC layer applied; None when the caller cannot reach it."""
        method, path = key
        entry = OPERATIONS.get(key) or MOVING_OPERATIONS.get(key)
        if entry is not None:
            if entry.needs is not None and not entry.needs(reach):
                return None
            for param in op.get("parameters", []):
                domain = entry.domains.get(param["name"]) or PATH_DOMAINS.get(param["name"])
                if param["in"] == "path" and domain is not None:
                    schema = domain(reach)
                    if schema.get("enum") == []:
                        return None  # nothing to name: the caller cannot reach this route at all
                    param["schema"] = {**schema, "title": param["schema"].get("title", param["name"])}
            named = {(p["name"], p["in"]): p for p in op.get("parameters", [])}
            named.update({(p["name"], p["in"]): copy.deepcopy(p) for p in entry.parameters})
            if named:
                op["parameters"] = list(named.values())
            for status, resp in entry.responses.items():
                op.setdefault("responses", {})[status] = copy.deepcopy(resp)
        _errors(op, method, path, authenticated=key in self._authenticated, known=entry is not None)
        return op


def _errors(op: dict[str, Any], method: str, path: str, *, authenticated: bool, known: bool) -> None:
    """The error answers every operation shares; FastAPI's 422 is our 400.

    Errors are problem+json (api/errors.py builds every one); 400, 403 and 404 are an HTML page instead when
    the request asks for one (`f=html`, or a browser's Accept). Routes the OGC layer does not know (`known`)
    may read their body themselves and refuse a role, so they may answer 400 and 403 whatever FastAPI saw.
    """
    responses = op.setdefault("responses", {})
    if VALIDATION in json.dumps(responses.get("422", {})):
        del responses["422"]
    if op.get("parameters") or op.get("requestBody") or (not known and method in BODY_METHODS):
        responses.setdefault("400", problem("A parameter, header or the body is not valid (it is named)."))
    if op.get("requestBody") or method in BODY_METHODS:  # api/bodies.py: one size limit for every body
        responses.setdefault("413", problem("The body is larger than this server accepts here."))
    if authenticated:
        op["security"] = SECURITY
        responses.setdefault("401", problem("The credentials are not valid (an anonymous call needs none)."))
        if not known:
            responses.setdefault("403", problem("The caller's role or townships do not allow this."))
    if _template_names(path):
        responses.setdefault("404", problem("No such resource, or none the caller may see."))
    responses.setdefault("503", {**problem("The store does not answer; try again after Retry-After seconds."),
                                 "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}})
    for status, resp in responses.items():
        if status[:1] in "45" and status.isdigit():
            resp["content"] = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            if status in HTML_ERRORS:
                resp["content"][HTML] = {"schema": {"type": "string"}}
            if resp.get("description") in (None, "", "Successful Response", "Additional Response"):
                resp["description"] = TITLES.get(int(status), "Error")
