"""Where a reported point goes (spatial routing of events): its township and grid, whether it lies on or near
a border, and the neighbours a dispatcher may re-route it to -- and the `relocate` action that moves it.

The store assigns the township and grid (point in polygon; on a shared border the smallest code, bytewise, in
both stores). This module says so in the timeline and flags points within `border_metres` of another
township or grid (`near_border`), so a dispatcher can move the point (`relocate`), which re-runs routing.
A phone's EXIF position never comes here: only the reported point routes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import Point

from geoserver.access import Principal, Scope, scope_for
from geoserver.errors import BadInput, Forbidden, Unprocessable
from geoserver.features import FeatureQuery
from geoserver.store import Store

TOWNSHIPS, GRIDS = "townships", "grids"
# A point within this distance of another township or grid is flagged `near_border` (ONEMAP_BORDER_FLAG_METERS).
DEFAULT_BORDER_METRES = 50.0
MAX_BORDER_METRES = 5000.0
MAX_NEIGHBOURS = 20


@dataclass
class Policy:
    """How routing flags borders (one per process, set from the settings at start)."""

    border_metres: float = DEFAULT_BORDER_METRES


POLICY = Policy()


def configure(border_metres: float) -> None:
    """Set the border distance (from ONEMAP_BORDER_FLAG_METERS); ValueError outside 0..MAX_BORDER_METRES."""
    if not (isinstance(border_metres, int | float) and math.isfinite(border_metres)
            and 0 <= border_metres <= MAX_BORDER_METRES):
        raise ValueError(f"ONEMAP_BORDER_FLAG_METERS must be between 0 and {MAX_BORDER_METRES:.0f}, "
                         f"got {border_metres!r}")
    POLICY.border_metres = float(border_metres)


@dataclass(frozen=True)
class Route:
    """Where a point was routed, and what lies around it."""

    township_code: str | None
    grid_code: str | None
    # Other townships / grids within the border distance (re-routing candidates).
    near_townships: tuple[str, ...] = ()
    near_grids: tuple[str, ...] = ()
    # Every township / grid the point lies in or on (more than one: on a shared border).
    on_townships: tuple[str, ...] = field(default=())
    on_grids: tuple[str, ...] = field(default=())

    @property
    def near_border(self) -> bool:
        """True when another township or grid lies within the border distance."""
        return bool(self.near_townships or self.near_grids)

    def data(self) -> dict[str, Any]:
        """The timeline's details of this route."""
        out: dict[str, Any] = {"township_code": self.township_code, "grid_code": self.grid_code,
                               "near_border": self.near_border}
        if self.near_border:
            out.update(border_metres=POLICY.border_metres, neighbour_townships=list(self.near_townships),
                       neighbour_grids=list(self.near_grids))
        if len(self.on_townships) > 1 or len(self.on_grids) > 1:
            out.update(on_border_townships=list(self.on_townships), on_border_grids=list(self.on_grids))
        return out

    def note(self) -> str:
        """What the timeline says about it, in words."""
        if self.grid_code:
            text = f"routed to grid {self.grid_code} of township {self.township_code}"
        elif self.township_code:
            text = f"outside every grid: routed to township {self.township_code}"
        else:
            return "outside every township"
        for kind, on, chosen in (("townships", self.on_townships, self.township_code),
                                 ("grids", self.on_grids, self.grid_code)):
            if len(on) > 1:
                text += (f"; the point lies on the border of {kind} {', '.join(on)}: assigned to {chosen} "
                         f"(the smallest code)")
        if self.near_border:
            near = [*(f"township {c}" for c in self.near_townships), *(f"grid {c}" for c in self.near_grids)]
            text += f"; within {POLICY.border_metres:g} m of {', '.join(near)}: relocate it if it belongs there"
        return text


def _codes(store: Store, layer_id: str, key: str, point: Point, metres: float | None) -> list[str]:
    if layer_id not in store.catalog:
        return []
    literal = {"type": "Point", "coordinates": [point.x, point.y]}
    test = ({"op": "s_intersects", "args": [{"property": "geometry"}, literal]} if metres is None else
            {"op": "s_dwithin", "args": [{"property": "geometry"}, literal, metres, "meters"]})
    query = FeatureQuery(filter=test, properties=(key,), limit=MAX_NEIGHBOURS, with_geometry=False,
                         sortby=((key, True),))
    return sorted({f.properties[key] for f in store.query(layer_id, query, Scope.everything()).features
                   if f.properties.get(key)})


def route(store: Store, point: Point, *, detail: bool = False) -> Route:
    """Where `point` goes: the store's township and grid, and the neighbours within the border distance.

    With `detail`, also every township and grid the point lies on (to say so when it is on a shared border).
    Raises Unprocessable (422) for a point outside every township of the county.
    """
    where = store.locate(point.x, point.y)
    if where.township_code is None:
        raise Unprocessable(f"the point ({point.x:.6f}, {point.y:.6f}) lies outside the county (in no township)",
                            parameter="geometry")
    metres = POLICY.border_metres
    towns = _codes(store, TOWNSHIPS, "township_code", point, metres)
    grids = _codes(store, GRIDS, "grid_code", point, metres)
    near_t = tuple(c for c in towns if c != where.township_code)
    near_g = tuple(c for c in grids if c != where.grid_code)
    on_t: tuple[str, ...] = ()
    on_g: tuple[str, ...] = ()
    if detail and (near_t or near_g):
        on_t = tuple(_codes(store, TOWNSHIPS, "township_code", point, None))
        on_g = tuple(_codes(store, GRIDS, "grid_code", point, None))
    return Route(where.township_code, where.grid_code, near_t, near_g, on_t, on_g)


def point_of(body: dict[str, Any]) -> Point:
    """The new point of a `relocate` body: `{"lon", "lat"}` or `{"geometry": <GeoJSON Point>}`."""
    geometry = body.get("geometry")
    if geometry is not None:
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            raise BadInput("geometry must be a GeoJSON Point", parameter="geometry")
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) not in (2, 3):
            raise BadInput("geometry.coordinates must be [lon, lat]", parameter="geometry")
        lon, lat, names = coords[0], coords[1], ("geometry", "geometry")
    elif "lon" in body or "lat" in body:
        lon, lat, names = body.get("lon"), body.get("lat"), ("lon", "lat")
    else:
        raise BadInput("relocate needs the new point: {\"lon\": …, \"lat\": …} or a GeoJSON Point geometry",
                       parameter="lon")
    for value, name, bound in ((lon, names[0], 180.0), (lat, names[1], 90.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or abs(value) > bound:
            raise BadInput(f"{name} must be a number within ±{bound:g} degrees", parameter=name)
    return Point(float(lon), float(lat))


def relocate(store: Store, principal: Principal, layer, event, body: dict[str, Any]
             ) -> tuple[Point, dict[str, Any], dict[str, Any]]:
    """The new point, property changes and timeline details of moving an event (called inside `act`).

    422 outside the county; 403 into a township the caller may not dispatch in.
    """
    point = point_of(body)
    new = route(store, point, detail=True)
    if not scope_for(principal, layer, "dispatch").allows(new.township_code):
        raise Forbidden(f"the new point lies in township {new.township_code}, where you may not dispatch",
                        parameter="geometry")
    old = event.properties
    before = event.geometry
    data = {"from": {"township_code": old.get("township_code"), "grid_code": old.get("grid_code"),
                     "coordinates": [before.x, before.y] if before is not None else None},
            "to": {"coordinates": [point.x, point.y], **new.data()}, "routing": new.note()}
    return point, {"near_border": new.near_border}, data
