"""The administrative areas of the sample county: 8 townships and 1 town, their villages and grid cells.

Townships are the Voronoi cells of their seats (real names and codes, approximate seat positions) clipped to
the real county outline; villages are Voronoi cells of their settlements within the township (the town's
core is cut into four communities); grids are relaxed Voronoi cells within each village, dense where people
live. Every partition is computed in the local metric frame and clipped in lon/lat, so areas nest exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.features import Feature
from sample_data.names import NameBook
from sample_data.scales import Scale, rng_for
from sample_data.spatial import (
    AreaLocator,
    county_local,
    county_outline,
    geodesic_area_km2,
    geometry_to_local,
    geometry_to_lonlat,
    polygonal,
    random_points_in,
    to_local,
    to_lonlat,
)
from sample_data.terrain import River, branch, main_rivers

COUNTY_CODE = "632626"
# (code suffix, pinyin, Chinese name, kind, seat lon, seat lat); the town is the county seat.
TOWNSHIPS = (
    ("100", "Sailaitang", "赛来塘镇", "town", 100.74, 32.93),
    ("200", "Duogongma", "多贡麻乡", "township", 100.08, 33.16),
    ("201", "Makehe", "马可河乡", "township", 100.67, 32.63),
    ("202", "Jika", "吉卡乡", "township", 100.55, 33.17),
    ("203", "Daka", "达卡乡", "township", 100.35, 33.06),
    ("204", "Zhiqin", "知钦乡", "township", 100.18, 32.88),
    ("205", "Jiangritang", "江日堂乡", "township", 100.42, 32.74),
    ("206", "Ya'ertang", "亚尔堂乡", "township", 101.08, 32.80),
    ("207", "Dengta", "灯塔乡", "township", 100.95, 33.02),
)
TOWN_CODE = COUNTY_CODE + "100"
_BIG_BOX = shapely.box(-400_000, -400_000, 400_000, 400_000)


@dataclass
class Settlement:
    """A built-up place on a valley floor: the town centre, a township seat or a village."""

    kind: str  # "town" | "seat" | "village"
    name: str
    township_code: str
    village_code: str
    x: float  # local metres
    y: float
    angle: float  # the valley's direction (radians from east)
    population: int
    buildings: int = 0


@dataclass
class Township:
    """A township or the town."""

    code: str
    name: str
    name_zh: str
    kind: str
    seat: tuple[float, float]  # local metres
    geometry: shapely.MultiPolygon  # lon/lat
    population: int = 0


@dataclass
class Village:
    """An administrative village or town community."""

    code: str
    name: str
    township_code: str
    geometry: shapely.MultiPolygon  # lon/lat
    settlement: Settlement
    population: int
    households: int


@dataclass
class Grid:
    """A governance grid cell, with its people."""

    code: str
    name: str
    township_code: str
    village_code: str
    geometry: shapely.MultiPolygon  # lon/lat
    kind: str
    is_key: bool
    leader: str
    full_time_workers: int
    part_time_workers: int
    households: int
    home: tuple[float, float]  # lon/lat: where its worker's patrols start


@dataclass
class County:
    """The administrative skeleton of the sample and the rivers that shape it."""

    townships: list[Township]
    villages: list[Village]
    grids: list[Grid]
    settlements: list[Settlement]
    rivers: list[River]
    township_locator: AreaLocator = field(init=False)
    grid_locator: AreaLocator = field(init=False)

    def __post_init__(self) -> None:
        self.township_locator = AreaLocator([t.code for t in self.townships], [t.geometry for t in self.townships])
        self.grid_locator = AreaLocator([g.code for g in self.grids], [g.geometry for g in self.grids])

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The township and grid codes of each lon/lat point (by point-in-polygon)."""
        return self.township_locator.locate(lon, lat), self.grid_locator.locate(lon, lat)

    def grid(self, code: str) -> Grid:
        """The grid with this code."""
        return self._grids_by_code[code]

    @property
    def _grids_by_code(self) -> dict[str, Grid]:
        cache = self.__dict__.get("_grid_index")
        if cache is None:
            cache = self.__dict__["_grid_index"] = {g.code: g for g in self.grids}
        return cache


def _voronoi(seeds: np.ndarray, within_lonlat: BaseGeometry) -> list[shapely.MultiPolygon]:
    """Voronoi cells of local-frame seeds, in lon/lat, clipped to a lon/lat area (one cell per seed)."""
    if len(seeds) == 1:
        return [polygonal(within_lonlat)]
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=_BIG_BOX, ordered=True)
    out = []
    for cell in cells.geoms:
        dense = shapely.segmentize(cell, 2000.0)
        out.append(polygonal(shapely.intersection(geometry_to_lonlat(dense), within_lonlat)))
    return out


def _spread_points(area_local: BaseGeometry, n: int, rng: np.random.Generator, min_gap: float,
                   centre: tuple[float, float] | None = None, sigma: float = 0.0,
                   near_share: float = 0.0) -> np.ndarray:
    """`n` points in an area at least `min_gap` apart (relaxed if need be), a share of them near `centre`."""
    gap = min_gap
    while True:
        ux, uy = random_points_in(area_local, 40 * n, rng)
        if centre is not None and near_share > 0:
            k = int(40 * n * near_share)
            gx = rng.normal(centre[0], sigma, 4 * k)
            gy = rng.normal(centre[1], sigma, 4 * k)
            keep = shapely.contains_xy(area_local, gx, gy)
            gx, gy = gx[keep][:k], gy[keep][:k]
            mix = rng.permutation(len(gx) + len(ux))
            ux, uy = np.concatenate([gx, ux])[mix], np.concatenate([gy, uy])[mix]
        chosen: list[tuple[float, float]] = []
        for x, y in zip(ux, uy, strict=True):
            if all((x - cx) ** 2 + (y - cy) ** 2 >= gap * gap for cx, cy in chosen):
                chosen.append((x, y))
                if len(chosen) == n:
                    return np.array(chosen)
        gap *= 0.7


def _relax(seeds: np.ndarray, area_local: BaseGeometry, rounds: int = 2) -> np.ndarray:
    """Lloyd relaxation: move each seed to its cell's centroid, for more regular cells."""
    if len(seeds) < 2:
        return seeds
    for _ in range(rounds):
        cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=_BIG_BOX, ordered=True)
        clipped = shapely.intersection(np.array(cells.geoms), area_local)
        cents = shapely.centroid(clipped)
        ok = ~shapely.is_empty(clipped)
        seeds = seeds.copy()
        seeds[ok] = shapely.get_coordinates(cents[ok])
    return seeds


def _townships() -> list[Township]:
    seats = np.array([to_local(np.array([lon]), np.array([lat])) for *_, lon, lat in TOWNSHIPS])[:, :, 0]
    cells = _voronoi(seats, county_outline())
    return [Township(COUNTY_CODE + suffix, name, name_zh, kind, (float(sx), float(sy)), cell)
            for (suffix, name, name_zh, kind, _, _), (sx, sy), cell in zip(TOWNSHIPS, seats, cells, strict=True)]


def _nearest_direction(rivers: list[River], x: float, y: float) -> float:
    return min(rivers, key=lambda r: r.line.distance(shapely.Point(x, y))).direction_at(x, y)


def _town_core(x: float, y: float, angle: float) -> shapely.Polygon:
    """The built-up core of the town: an ellipse along the valley (local frame)."""
    ellipse = shapely.affinity.scale(shapely.Point(0, 0).buffer(1.0, 64), 3400.0, 1900.0)
    ellipse = shapely.affinity.rotate(ellipse, angle, origin=(0, 0), use_radians=True)
    return shapely.affinity.translate(ellipse, x, y)


def _villages_of(town: Township, rivers: list[River], names: NameBook,
                 rng: np.random.Generator) -> tuple[list[Village], list[Settlement], list[River]]:
    """The villages (and, for the town, its communities) of one township, with a stream through each village."""
    local = polygonal(shapely.intersection(county_local(), geometry_to_local(town.geometry)))
    is_town = town.kind == "town"
    seat_x, seat_y = town.seat
    angle = _nearest_direction(rivers, seat_x, seat_y)
    villages: list[Village] = []
    settlements: list[Settlement] = []
    streams: list[River] = []
    rural_local, rural_ll = local, town.geometry
    if is_town:
        core = shapely.intersection(_town_core(seat_x, seat_y, angle), local)
        rural_local = polygonal(shapely.difference(local, core))
        core_ll = polygonal(shapely.intersection(geometry_to_lonlat(shapely.segmentize(core, 500.0)), town.geometry))
        rural_ll = polygonal(shapely.difference(town.geometry, core_ll))
        centre = Settlement("town", town.name_zh, town.code, "", seat_x, seat_y, angle, 0)
        settlements.append(centre)
        offsets = np.array([-2300.0, -800.0, 800.0, 2300.0])
        cseeds = np.column_stack([seat_x + offsets * np.cos(angle), seat_y + offsets * np.sin(angle)])
        for i, cell in enumerate(_voronoi(cseeds, core_ll)):
            pop = int(rng.integers(1800, 2400))
            villages.append(Village(f"{town.code}{i + 1:03d}", names.community(), town.code, cell, centre, pop,
                                    int(pop / 3.6)))
        centre.population = sum(v.population for v in villages)
        seeds = np.empty((0, 2))
        n_villages = int(rng.integers(4, 6))
    else:
        seeds = np.array([[seat_x, seat_y]])
        n_villages = int(rng.integers(3, 6))
    interior = rural_local.buffer(-2500.0)
    interior = rural_local if interior.area < 0.1 * rural_local.area else interior
    keep_away = shapely.Point(seat_x, seat_y).buffer(6000.0 if is_town else 4000.0)
    interior = shapely.difference(interior, keep_away)
    seeds = np.vstack([seeds, _spread_points(interior, n_villages - len(seeds), rng, 5000.0)])
    for i, ((x, y), cell) in enumerate(zip(seeds, _voronoi(seeds, rural_ll), strict=True)):
        code = f"{town.code}{201 + i:03d}"
        is_seat = not is_town and i == 0
        name = town.name_zh[:-1] + "村" if is_seat else names.place("村")
        if is_seat:
            pop, s_angle = int(rng.integers(1200, 1800)), angle
        else:
            stream = branch(name[:-1] + "曲", (float(x), float(y)), rivers + streams, 3,
                            float(rng.uniform(4000, 8000)), rng)
            streams.append(stream)
            pop, s_angle = int(rng.integers(450, 1100)), stream.direction_at(float(x), float(y))
        settlement = Settlement("seat" if is_seat else "village", name, town.code, code, float(x), float(y),
                                s_angle, pop)
        settlements.append(settlement)
        villages.append(Village(code, name, town.code, cell, settlement, pop, int(pop / 4.2)))
    return villages, settlements, streams


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """`total` split in proportion to `weights`, at least 1 each (largest remainder)."""
    n = len(weights)
    extra = total - n
    share = np.asarray(weights, dtype=float) / np.sum(weights) * max(extra, 0)
    out = np.floor(share).astype(int)
    out[np.argsort(-(share - out), kind="stable")[: max(extra, 0) - int(out.sum())]] += 1
    return out + 1


def _grids_of(village: Village, n: int, names: NameBook, rng: np.random.Generator) -> list[Grid]:
    """The grid cells of one village: denser near its settlement, more regular in the town."""
    local = polygonal(geometry_to_local(village.geometry))
    s = village.settlement
    community = s.kind == "town"
    gap = float(np.sqrt(local.area / n)) * (0.6 if community else 0.3)
    seeds = _spread_points(local, n, rng, gap, centre=(s.x, s.y), sigma=1500.0,
                           near_share=0.0 if community else 0.6)
    seeds = _relax(seeds, local, rounds=2 if community else 1)
    cells = _voronoi(seeds, village.geometry)
    cx, cy = to_local(*shapely.get_coordinates(shapely.centroid(cells)).T)
    dist = np.hypot(cx - s.x, cy - s.y)
    weights = np.ones(n) if community else np.exp(-dist / 1500.0) + 0.15
    households = _split(max(village.households, n), weights)
    grids = []
    for k, cell in enumerate(cells):
        hx, hy = random_points_in(polygonal(geometry_to_local(cell)), 48, rng)
        if shapely.contains_xy(local, s.x, s.y) and shapely.contains_xy(cell, *to_lonlat(s.x, s.y)):
            hx, hy = np.append(hx, s.x), np.append(hy, s.y)
        best = int(np.argmin(np.hypot(hx - s.x, hy - s.y)))
        home = to_lonlat(hx[best], hy[best])
        r = rng.random()
        grids.append(Grid(
            code=f"{village.code}{k + 1:03d}", name=f"{village.name}第{k + 1}网格", township_code=village.township_code,
            village_code=village.code, geometry=cell,
            kind="basic" if r < 0.8 else ("party" if r < 0.92 else "special"),
            is_key=bool(rng.random() < 0.1), leader=names.person(),
            full_time_workers=int(rng.integers(1, 3)) if community else 1,
            part_time_workers=int(rng.integers(1, 5)), households=int(households[k]),
            home=(float(home[0]), float(home[1])),
        ))
    return grids


def build_county(scale: Scale, seed: int) -> County:
    """The townships, villages, grids, settlements and rivers of the sample county."""
    rng = rng_for(seed, "county")
    names = NameBook(rng_for(seed, "names", "county"))
    townships = _townships()
    seats = np.array([t.seat for t in townships])
    rivers = main_rivers(rng, seats)
    for t in townships:  # a tributary through every seat off the main rivers
        if min(r.line.distance(shapely.Point(t.seat)) for r in rivers) > 300.0:
            rivers.append(branch(t.name_zh[:-1] + "河", t.seat, rivers, 2, float(rng.uniform(14000, 22000)), rng))
    villages: list[Village] = []
    settlements: list[Settlement] = []
    grids: list[Grid] = []
    for t in townships:
        vs, ss, streams = _villages_of(t, rivers, names, rng)
        rivers.extend(streams)
        t.population = sum(v.population for v in vs)
        villages.extend(vs)
        settlements.extend(ss)
        if t.kind == "town":
            communities = [v for v in vs if v.settlement.kind == "town"]
            rural = [v for v in vs if v.settlement.kind != "town"]
            core_total = int(round(scale.town_grids * 0.8))
            counts = list(_split(core_total, np.ones(len(communities))))
            counts += list(_split(scale.town_grids - core_total, np.array([v.population for v in rural])))
        else:
            lo, hi = scale.township_grids
            counts = list(_split(int(rng.integers(lo, hi + 1)), np.array([v.population for v in vs])))
        for v, n in zip(vs, counts, strict=True):
            grids.extend(_grids_of(v, int(n), names, rng))
    return County(townships, villages, grids, settlements, rivers)


def admin_features(county: County, layer_id: str) -> list[Feature]:
    """The townships, villages or grids as features (ids 1..n in code order)."""
    if layer_id == "townships":
        rows = [(t.geometry, {"township_code": t.code, "name": t.name, "name_zh": t.name_zh, "kind": t.kind,
                              "population": t.population, "area_km2": round(geodesic_area_km2(t.geometry), 2)})
                for t in county.townships]
    elif layer_id == "villages":
        rows = [(v.geometry, {"village_code": v.code, "name": v.name, "township_code": v.township_code,
                              "population": v.population, "households": v.households}) for v in county.villages]
    elif layer_id == "grids":
        rows = [(g.geometry, {"grid_code": g.code, "name": g.name, "township_code": g.township_code,
                              "village_code": g.village_code, "grid_kind": g.kind, "is_key": g.is_key,
                              "leader": g.leader, "full_time_workers": g.full_time_workers,
                              "part_time_workers": g.part_time_workers, "households": g.households})
                for g in county.grids]
    else:
        raise ValueError(f"{layer_id!r} is not an administrative layer")
    code = {"townships": "township_code", "villages": "village_code", "grids": "grid_code"}[layer_id]
    rows.sort(key=lambda r: r[1][code])
    return [Feature(k + 1, geom, props) for k, (geom, props) in enumerate(rows)]
