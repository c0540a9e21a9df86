"""One search box over the county: places and things by name or code, events by code, people by name --
each layer read within the caller's scope, in the store's own query (a match outside the scope never exists)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoserver.access import Principal, readable_layers
from geoserver.catalog import Catalog
from geoserver.errors import BadInput
from geoserver.features import FeatureQuery
from geoserver.store import Store

MAX_QUERY = 100
MAX_LIMIT = 50
# CQL2 LIKE has no escape character: the wildcards are taken out of what people type.
WILDCARDS = str.maketrans("", "", "%_\\")


@dataclass(frozen=True)
class Searchable:
    """A layer the box searches: which properties match, which one labels a hit, what kind of thing it is."""

    layer: str
    properties: tuple[str, ...]
    label: str
    kind: str
    detail: str | None = None


SEARCHABLE = (
    Searchable("townships", ("name_zh", "name", "township_code"), "name_zh", "township", "township_code"),
    Searchable("villages", ("name", "village_code"), "name", "village", "village_code"),
    Searchable("grids", ("name", "grid_code"), "name", "grid", "grid_code"),
    Searchable("buildings", ("name",), "name", "building", "use"),
    Searchable("temples", ("name",), "name", "temple", "sect"),
    Searchable("monitoring_sites", ("name", "site_code"), "name", "site", "site_code"),
    Searchable("pois", ("name",), "name", "poi", None),
    Searchable("events", ("event_code",), "event_code", "event", "title"),
    # People by name: the grid leaders each grid names (accounts carry usernames, not names).
    Searchable("grids", ("leader",), "leader", "person", "name"),
)


def clean_query(q: str | None) -> str:
    """The text to look for; BadInput naming `q` when it is missing, blank or too long."""
    if q is None or not q.strip():
        raise BadInput("q is required: a name or code to look for", parameter="q")
    text = q.strip().translate(WILDCARDS)
    if len(q) > MAX_QUERY:
        raise BadInput(f"q must be at most {MAX_QUERY} characters", parameter="q")
    if not text:
        raise BadInput("q must hold more than wildcards (% _ \\)", parameter="q")
    return text


def search(store: Store, catalog: Catalog, principal: Principal, q: str | None, limit: int = 10) -> list[dict[str, Any]]:
    """What matches `q` in the layers the principal may read, within their scope: up to `limit` hits per kind,
    each `{layer, id, kind, label, detail, bbox}`, exact matches of a kind first."""
    text = clean_query(q)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
    scopes = {layer.id: scope for layer, scope in readable_layers(principal, catalog)}
    hits: list[dict[str, Any]] = []
    for s in SEARCHABLE:
        if s.layer not in scopes:
            continue
        layer = catalog.get(s.layer)
        props = [p for p in s.properties if layer.has_prop(p)]
        likes = [{"op": "like", "args": [{"property": p}, f"%{text}%"]} for p in props]
        filt = likes[0] if len(likes) == 1 else {"op": "or", "args": likes}
        wanted = tuple(dict.fromkeys(p for p in (*props, s.label, s.detail, "name") if p and layer.has_prop(p)))
        page = store.query(s.layer, FeatureQuery(filter=filt, properties=wanted, limit=limit,
                                                 sortby=((s.label, True),)), scopes[s.layer])
        found = []
        for f in page.features:
            label = f.properties.get(s.label) or f.properties.get("name") or str(f.id)
            exact = any(f.properties.get(p) == text for p in props)
            found.append((not exact, {
                "layer": s.layer, "id": f.id, "kind": s.kind, "label": label,
                "detail": f.properties.get(s.detail) if s.detail else None,
                "bbox": [round(v, 7) for v in f.geometry.bounds] if f.geometry is not None else None}))
        hits += [hit for _, hit in sorted(found, key=lambda pair: pair[0])]
    return hits
