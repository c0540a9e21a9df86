"""Buildings for white-model tests: two townships of rectangles, an L, a courtyard, a temple, key buildings."""

from __future__ import annotations

from shapely.geometry import MultiPolygon, Polygon, box

from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import Store, UserRecord
from tiles.extrude import Building

TOWNSHIPS = {"A": (100.0, 33.0, 100.02, 33.02), "B": (100.02, 33.0, 100.04, 33.02)}
PASSWORD = "onemap"
STEP = 0.001  # about 100 m between houses


def footprints() -> list[tuple[Polygon, dict]]:
    """Footprints (lon/lat) and properties: 8 x 8 houses per township plus three special shapes in A."""
    out = []
    for code, (x0, y0, _, _) in TOWNSHIPS.items():
        for i in range(8):
            for j in range(8):
                x, y = x0 + 0.002 + i * STEP * 2, y0 + 0.002 + j * STEP * 2
                floors = 1 + (i + j) % 5
                out.append((box(x, y, x + 0.0003, y + 0.0002), {
                    "township_code": code, "floors": floors, "height": floors * 3.2, "use": "residential",
                    "is_key": (i, j) == (0, 0), "name": f"house {code}{i}{j}"}))
    x, y = 100.001, 33.019
    out.append((Polygon([(x, y), (x + 4e-4, y), (x + 4e-4, y + 1e-4), (x + 1e-4, y + 1e-4), (x + 1e-4, y + 4e-4),
                         (x, y + 4e-4)]), {"township_code": "A", "floors": 2, "height": 7.0, "use": "commercial",
                                           "is_key": False, "name": "L-shaped shop"}))
    court = box(100.005, 33.0185, 100.0056, 33.0191).difference(box(100.0052, 33.0187, 100.0054, 33.0189))
    out.append((court, {"township_code": "A", "floors": 3, "height": 11.0, "use": "religious", "is_key": True,
                        "name": "Temple hall"}))
    return out


def buildings() -> list[Building]:
    """The footprints as white-model buildings (no store involved)."""
    return [Building.from_feature(i + 1, g, p) for i, (g, p) in enumerate(footprints())]


def fill(store: Store) -> None:
    """Townships, buildings and accounts into an initialised, empty store."""
    store.bulk_load("townships", [
        Feature(None, MultiPolygon([box(*bb)]), {"township_code": c, "name": f"Township {c}", "kind": "township",
                                                  "population": 1000}) for c, bb in TOWNSHIPS.items()])
    store.bulk_load("buildings", [Feature(None, g, {k: v for k, v in p.items() if k != "township_code"})
                                  for g, p in footprints()])
    h = hash_password(PASSWORD)
    store.put_users([UserRecord("admin", "admin", h), UserRecord("leader-A", "leader", h, townships=("A",))])
