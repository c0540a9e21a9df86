"""pygeoapi provider plugin over our Store; the caller comes in through a per-request ContextVar."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from pygeoapi.provider.base import BaseProvider, ProviderItemNotFoundError

from geoserver.access import Principal, scope_for
from geoserver.catalog import Layer
from geoserver.crs import CRS84
from geoserver.errors import NotFound
from geoserver.features import FeatureQuery
from geoserver.geojson import to_geojson
from geoserver.store import Store

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "datetime": "string", "date": "string"}
_FORMATS = {"datetime": "date-time", "date": "date"}


@dataclass(frozen=True)
class RequestContext:
    """What a provider needs from the request: the store and who is asking."""

    store: Store
    principal: Principal


REQUEST: ContextVar[RequestContext] = ContextVar("onemap_request")


def layer_fields(layer: Layer) -> dict[str, dict]:
    """JSON-schema types of a layer's properties (pygeoapi's `fields`, our queryables)."""
    out: dict[str, dict] = {}
    for p in layer.properties:
        f = {"type": _JSON_TYPES[p.type], "title": p.title or p.name}
        if p.type in _FORMATS:
            f["format"] = _FORMATS[p.type]
        if p.enum:
            f["enum"] = list(p.enum)
        out[p.name] = f
    return out


class StoreProvider(BaseProvider):
    """Features of one catalog layer, read through app.state.store within the caller's scope.

    Read-only on purpose: writes are api/features.py's own routes, through the layer's rules (layers/rules.py).
    """

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        ctx = REQUEST.get()
        self.store = ctx.store
        self.principal = ctx.principal
        self.layer = ctx.store.catalog.get(self.data)
        self.id_field = "id"
        self._fields = self.get_fields()

    def get_fields(self) -> dict:
        """The layer's declared properties."""
        return layer_fields(self.layer)

    def query(self, offset=0, limit=10, resulttype="results", bbox=None, datetime_=None, properties=None,
              sortby=None, select_properties=None, skip_geometry=False, q=None, filterq=None, **kwargs):
        """A page of features within the caller's read scope (pygeoapi's own filters are not used)."""
        scope = scope_for(self.principal, self.layer, "read")
        query = FeatureQuery(bbox=tuple(bbox) if bbox else None, limit=limit, offset=offset,
                             with_geometry=not skip_geometry)
        page = self.store.query(self.layer.id, query, scope)
        feats = [] if resulttype == "hits" else [to_geojson(f) for f in page.features]
        return {"type": "FeatureCollection", "features": feats, "numberMatched": page.number_matched,
                "numberReturned": len(feats)}

    def get(self, identifier, **kwargs):
        """One feature within the caller's read scope."""
        try:
            fid = int(identifier)
            feature = self.store.get(self.layer.id, fid, scope_for(self.principal, self.layer, "read"))
        except (ValueError, NotFound):
            raise ProviderItemNotFoundError(f"no feature {identifier!r}") from None
        return to_geojson(feature, CRS84)
