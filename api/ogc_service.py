"""pygeoapi inside our app: one pygeoapi API per set of visible collections, per-caller extents, and the call."""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.openapi import get_oas
from starlette.concurrency import run_in_threadpool

from api.errors import error_from_status
from api.links import LinkBase
from api.ogc_config import WORLD, build_config
from api.pygeoapi_provider import REQUEST, RequestContext
from api.settings import Settings
from geoserver.access import Principal, readable_layers, scope_for
from geoserver.catalog import Catalog, Layer
from geoserver.crs import CRS84
from geoserver.errors import BadInput, NotFound
from geoserver.extents import ExtentCache
from geoserver.store import Extent, Store

MAX_APIS = 64  # pygeoapi API objects kept: one per (set of visible collections, base URL)
SYSTEM = Principal("system", "admin")
FORMATS = ("json", "html", "jsonld")  # what the metadata routes render


class _NoConfigCache(dict):
    """Stands in for pygeoapi's translated-config cache, which keeps nothing."""

    def get(self, key: Any, default: Any = None) -> Any:
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _pygeoapi_detail(body: Any) -> str:
    """The message of a pygeoapi exception document (JSON or HTML), as plain text."""
    try:
        doc = json.loads(body)
        return f"{doc.get('description') or doc.get('code') or 'error'}"
    except (TypeError, ValueError, AttributeError):
        return "the OGC API could not answer this request"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class OGCService:
    """Builds and caches pygeoapi API objects and answers with the caller's view of the collections."""

    def __init__(self, settings: Settings, catalog: Catalog, store: Store, extents: ExtentCache) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.extents = extents
        self._apis: OrderedDict[tuple[tuple[str, ...], str], API] = OrderedDict()
        self._lock = threading.Lock()
        # pygeoapi 0.21 caches the config it hands to HTML templates per locale only, for the whole process:
        # every page would then carry the base URL (and metadata) of the first API that rendered one.
        l10n._cfg_cache = _NoConfigCache()
        # Fail at start, clearly, if the config is broken.
        self.full = self._api_for(catalog.ids, LinkBase(settings).default)

    def _api_for(self, ids: tuple[str, ...], base_url: str) -> API:
        key = (ids, base_url)
        with self._lock:
            api = self._apis.get(key)
            if api is not None:
                self._apis.move_to_end(key)
            else:
                cfg = build_config(self.settings, self.catalog, ids, base_url)
                token = REQUEST.set(RequestContext(self.store, SYSTEM))
                try:  # the OpenAPI builder loads each provider to list its queryables
                    api = API(cfg, get_oas(cfg))
                finally:
                    REQUEST.reset(token)
                self._apis[key] = api
                while len(self._apis) > MAX_APIS:  # bounded, whatever Host headers arrive
                    self._apis.popitem(last=False)
            return api

    def visible(self, principal: Principal) -> tuple[str, ...]:
        """The collections the caller may read, in catalog order."""
        return tuple(layer.id for layer, _ in readable_layers(principal, self.catalog))

    def layer(self, principal: Principal, collection_id: str) -> Layer:
        """The layer, or NotFound if it does not exist or the caller may not read it."""
        if collection_id not in self.catalog or collection_id not in self.visible(principal):
            raise NotFound(f"no collection {collection_id!r}", parameter="collectionId")
        return self.catalog.get(collection_id)

    def extent(self, layer: Layer, principal: Principal) -> Extent:
        """What the caller sees of a layer (kept per scope, refreshed from the change log)."""
        return self.extents.extent(layer.id, scope_for(principal, layer, "read"))

    def view(self, principal: Principal, base_url: str, with_extents: bool = False) -> API:
        """The API as this caller sees it: only readable collections, extents of what they may see."""
        ids = self.visible(principal)
        api = self._api_for(ids, base_url)
        if not with_extents:
            return api
        resources = {}
        for cid, res in api.config["resources"].items():
            ext = self.extent(self.catalog.get(cid), principal)
            res = dict(res)
            extents: dict[str, Any] = {"spatial": {"bbox": list(ext.bbox) if ext.bbox else WORLD, "crs": CRS84}}
            if ext.interval and (ext.interval[0] or ext.interval[1]):
                extents["temporal"] = {"begin": _iso(ext.interval[0]), "end": _iso(ext.interval[1])}
            res["extents"] = extents
            resources[cid] = res
        view = copy.copy(api)
        view.config = {**api.config, "resources": resources}
        return view

    async def call(self, request: Request, principal: Principal, api: API, fn: Callable, *args: Any) -> Response:
        """Run a pygeoapi API function for this request with the caller in the provider's context."""
        req = await APIRequest.from_starlette(request, api.locales)
        if req.format is not None and req.format.lower() not in FORMATS:  # pygeoapi would answer JSON
            raise BadInput(f"f must be one of {', '.join(FORMATS)}; got {req.format!r}", parameter="f")
        token = REQUEST.set(RequestContext(self.store, principal))
        try:
            headers, status, body = await run_in_threadpool(fn, api, req, *args)
        finally:
            REQUEST.reset(token)
        if status >= 400:  # pygeoapi's own error document becomes our problem+json, through the one map
            raise error_from_status(status, _pygeoapi_detail(body))
        if status == 204:
            return Response(status_code=204, headers=headers)
        return Response(content=body, status_code=status, headers=headers)
