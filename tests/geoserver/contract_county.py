"""The handmade county of the Store contract suite: townships 632626100 (west) and 632626200 (east)
side by side, two grids in each, a dozen events, four buildings, four patrols, and the helpers to ask it."""

from __future__ import annotations

from datetime import datetime

from shapely.geometry import Point, Polygon, box

from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery

WEST, EAST = "632626100", "632626200"
WEST_BOX, EAST_BOX = (100.60, 32.80, 100.70, 32.90), (100.70, 32.80, 100.80, 32.90)
GRIDS = {  # grid code -> (township, lon from, lon to); every grid spans lat 32.80-32.90
    "632626100001": (WEST, 100.60, 100.65), "632626100002": (WEST, 100.65, 100.70),
    "632626200001": (EAST, 100.70, 100.75), "632626200002": (EAST, 100.75, 100.80),
}
G1, G2, G3, G4 = GRIDS


def t(text: str) -> datetime:
    """An aware UTC datetime from ISO text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# id: (lon, lat, type, status, priority, reported_at, title)
EVENTS = {
    1: (100.62, 32.82, "garbage", "reported", "high", "2024-03-01T08:00:00Z", "Garbage pile by the road"),
    2: (100.63, 32.85, "road_damage", "closed", "low", "2024-03-02T09:30:00.250Z", "Pothole on G317"),
    3: (100.67, 32.86, "fire_hazard", "dispatched", "urgent", "2024-03-03T10:00:00Z", "Smoke near the monastery"),
    4: (100.68, 32.88, "dispute", "reported", "normal", "2024-03-04T11:00:00Z", "garbage dispute between herders"),
    5: (100.72, 32.82, "garbage", "in_progress", None, "2024-03-05T12:00:00Z", "Garbage bin full"),
    6: (100.74, 32.84, "water_pollution", "reported", "high", "2024-03-06T13:00:00Z", "Foam on the river"),
    7: (100.77, 32.86, "wildlife", "closed", "low", "2024-03-07T14:00:00Z", "Injured deer"),
    8: (100.79, 32.89, "livestock", "reported", None, "2024-03-08T15:00:00Z", "Yaks on the highway"),
    9: (100.61, 32.895, "other", "reported", "normal", "2024-02-29T23:59:59.999Z", "Broken street light"),
    10: (100.76, 32.81, "infrastructure", "accepted", "urgent", "2024-03-10T08:00:00Z", "Bridge crack"),
    11: (100.655, 32.83, "garbage", "reported", "low", "2024-03-11T08:00:00Z", "Plastic in the grassland"),
    12: (100.745, 32.87, "fire_hazard", "handled", "normal", "2024-03-12T08:00:00Z", "Overloaded socket"),
}
WEST_EVENTS, EAST_EVENTS = [1, 2, 3, 4, 9, 11], [5, 6, 7, 8, 10, 12]
EVENT_GRID = {1: G1, 2: G1, 9: G1, 3: G2, 4: G2, 11: G2, 5: G3, 6: G3, 12: G3, 7: G4, 8: G4, 10: G4}

# An L-shaped building: its bounding box covers the notch at NOTCH, the building does not.
L_SHAPE = Polygon([(100.76, 32.86), (100.78, 32.86), (100.78, 32.862), (100.762, 32.862), (100.762, 32.88),
                   (100.76, 32.88)])
NOTCH = (100.77, 32.87, 100.78, 32.88)
BUILDINGS = {
    1: (box(100.620, 32.820, 100.621, 32.821), {"floors": 2, "height": 6.5, "use": "residential", "is_key": False,
                                                "year_built": 1998}),
    2: (box(100.730, 32.830, 100.7312, 32.8312), {"floors": 3, "height": 9.0, "use": "public", "is_key": True}),
    3: (L_SHAPE, {"floors": 1, "height": 4.0, "use": "agricultural", "is_key": False}),
    4: (box(100.670, 32.860, 100.6712, 32.8612), {"height": 12.0, "use": "religious", "name": "Assembly hall"}),
}
# id: (line, started_at, ended_at); keyed by where the track starts.
PATROLS = {
    1: ([(100.62, 32.81), (100.68, 32.85)], "2024-03-01T08:00:00Z", "2024-03-01T10:00:00Z"),
    2: ([(100.72, 32.81), (100.78, 32.86)], "2024-03-05T08:00:00Z", None),
    3: ([(100.69, 32.82), (100.75, 32.84)], "2024-03-03T08:00:00Z", "2024-03-03T12:00:00Z"),
    4: ([(100.71, 32.89), (100.79, 32.81)], "2024-03-02T08:00:00Z", "2024-03-04T12:00:00Z"),
}
EVERYTHING = Scope.everything()
WEST_ONLY = Scope.of([WEST])


def event_feature(fid: int | None, lon: float, lat: float, **props) -> Feature:
    """An event with the required properties filled in (overridable)."""
    base = {"title": "Reported by test", "type": "other", "reported_at": t("2024-04-01T00:00:00Z")}
    return Feature(fid, Point(lon, lat), {**base, **props})


def ids(store, layer: str, scope: Scope = EVERYTHING, **query) -> list[int]:
    """Ids of every feature the query returns, in the store's order."""
    return [f.id for f in store.query(layer, FeatureQuery(limit=1000, **query), scope).features]


def count(store, layer: str) -> int:
    return store.extent(layer, EVERYTHING).count


def prop(name: str) -> dict:
    return {"property": name}
