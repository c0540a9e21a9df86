"""pygeoapi's configuration, generated from the layer catalog at start (there is no hand-kept copy)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from api.settings import Settings
from geoserver.catalog import Catalog, Layer
from geoserver.crs import CRS84, SUPPORTED
from geoserver.features import MAX_LIMIT

PROVIDER = "api.pygeoapi_provider.StoreProvider"
WORLD = [-180.0, -90.0, 180.0, 90.0]
DEFAULT_LIMIT = 10


def _resource(layer: Layer) -> dict:
    provider = {"type": "feature", "name": PROVIDER, "data": layer.id, "id_field": "id",
                "editable": layer.editable, "crs": list(SUPPORTED), "storage_crs": CRS84}
    if layer.time_field:
        provider["time_field"] = layer.time_field
    return {
        "type": "collection", "title": layer.title, "description": layer.description or layer.title,
        "keywords": list(layer.keywords) or [layer.id],
        "extents": {"spatial": {"bbox": WORLD, "crs": CRS84}},
        "providers": [provider],
        "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT, "on_exceed": "error"},
        # Root-relative, so it holds behind any host name; GDAL's OGC API driver follows it to the tiles.
        "links": [{"type": "application/json", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                   "title": "Vector tiles", "href": f"/collections/{layer.id}/tiles"}],
    }


def build_config(settings: Settings, catalog: Catalog, layer_ids: Iterable[str] | None = None,
                 base_url: str = "http://127.0.0.1:8000") -> dict:
    """A pygeoapi config dict for the given layers (default: every catalog layer), linking to `base_url`."""
    ids = set(catalog.ids if layer_ids is None else layer_ids)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 8000},
            "url": base_url.rstrip("/"),
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
            "languages": ["en-US", "zh-CN"], "pretty_print": False,
            "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT, "on_exceed": "error"},
        },
        "logging": {"level": logging.getLevelName(logging.getLogger("onemap").getEffectiveLevel())},
        "metadata": {
            "identification": {
                "title": "onemap", "description": "One-map GIS server of the county: OGC API Features.",
                "keywords": ["county", "governance", "grid", "OGC API"], "keywords_type": "theme",
                "terms_of_service": "", "url": base_url,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "onemap", "url": base_url},
            "contact": {"name": "County command centre", "position": "Operator", "address": "",
                        "city": "", "stateorprovince": "", "postalcode": "", "country": "CN",
                        "phone": "", "fax": "", "email": "", "url": base_url,
                        "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": {layer.id: _resource(layer) for layer in catalog if layer.id in ids},
    }
