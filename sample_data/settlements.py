"""Building footprints: settlements laid out as rotated street lattices along their valleys, and temples.

Each settlement is a lattice of lots aligned with its valley, streets left open every few rows, the river
kept clear, lots nearest the centre filled first; each lot holds one rectangle (6–40 m sides) well inside
it, so footprints never overlap. All of it is numpy: one settlement is one batch of arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from geoserver.features import Feature
from layers.temples import SECTS
from sample_data.county import County, Settlement
from sample_data.names import NameBook
from sample_data.scales import Scale, rng_for
from sample_data.spatial import county_local, county_outline, random_points_in, to_lonlat

SPACING = {"town": 30.0, "seat": 30.0, "village": 34.0, "temple": 24.0}
ASPECT = {"town": 2.6, "seat": 2.0, "village": 1.7, "temple": 1.2}
STREETS = {"town": (8, 5), "seat": (7, 5), "village": (0, 0), "temple": (0, 0)}  # every k-th column/row
SECT_SHARE = {"Nyingma": 0.45, "Jonang": 0.25, "Kagyu": 0.10, "Gelug": 0.15, "Sakya": 0.05}
TEMPLE_BUILDINGS_AVG = 14  # what the allocation sets aside for temple buildings, per temple
TOWN_KEY_BUILDINGS = ("班玛县人民政府", "中共班玛县委员会", "班玛县人民医院", "班玛县民族中学", "班玛县第一完全小学",
                      "班玛县公安局", "班玛县人民法院", "班玛县藏医院", "班玛县政务服务中心", "赛来塘镇人民政府",
                      "班玛县文化馆", "班玛县汽车站", "班玛县消防救援大队", "班玛县疾病预防控制中心", "班玛县供电公司",
                      "班玛县第二完全小学", "班玛县幼儿园", "班玛县应急管理局")


@dataclass
class Footprints:
    """A batch of building footprints and their attributes (arrays of equal length)."""

    x: np.ndarray  # centroid, local metres
    y: np.ndarray
    rings: np.ndarray  # (n, 5, 2) lon/lat
    floors: np.ndarray
    height: np.ndarray
    use: np.ndarray
    year: np.ndarray
    is_key: np.ndarray
    name: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class TemplePlan:
    """Where a temple stands and what it is, with the footprints of its buildings."""

    name: str
    x: float
    y: float
    sect: str
    monks: int
    founded: int
    contact: str
    settlement: Settlement
    footprints: Footprints


def extent(kind: str, n: int) -> tuple[float, float]:
    """The half-axes (along, across the valley) of the ellipse holding `n` lots of a settlement kind."""
    s = SPACING[kind]
    b = float(np.sqrt(max(n, 1) * s * s / (0.55 * np.pi * ASPECT[kind])))
    return ASPECT[kind] * b, b


def _lots(kind: str, cx: float, cy: float, angle: float, n: int, rng: np.random.Generator,
          rivers: list[shapely.LineString]) -> tuple[np.ndarray, ...]:
    """The `n` best lots of a settlement: lattice indices, local centres and distance rank (0 at the centre)."""
    s = SPACING[kind]
    a, b = extent(kind, n)
    col_every, row_every = STREETS[kind]
    ca, sa = np.cos(angle), np.sin(angle)
    for _ in range(6):
        ii, jj = np.meshgrid(np.arange(-int(a / s) - 2, int(a / s) + 3), np.arange(-int(b / s) - 2, int(b / s) + 3))
        i, j = ii.ravel(), jj.ravel()
        u, v = i * s, j * s
        rank = np.hypot(u / a, v / b)
        keep = rank < 1.15
        if col_every:
            keep &= (i % col_every != 0) & (j % row_every != 0)
        x, y = cx + u * ca - v * sa, cy + u * sa + v * ca
        keep &= shapely.contains_xy(county_local(), x, y)
        box = (x.min() - s, y.min() - s, x.max() + s, y.max() + s)
        near = [c for c in (shapely.clip_by_rect(r, *box) for r in rivers) if not c.is_empty]
        if near:
            pts = shapely.points(x[keep], y[keep])
            d = np.min([shapely.distance(pts, r) for r in near], axis=0)
            keep[np.flatnonzero(keep)[d < 0.9 * s]] = False
        # Villages grow less regularly than the town: a noisier edge, more gaps.
        score = rank + rng.uniform(0, 0.25 if kind != "village" else 0.6, rank.size)
        idx = np.flatnonzero(keep)
        if idx.size >= n:
            idx = idx[np.argsort(score[idx], kind="stable")[:n]]
            return i[idx], j[idx], x[idx], y[idx], rank[idx]
        a, b = a * 1.25, b * 1.25
    idx = np.flatnonzero(keep)
    return i[idx], j[idx], x[idx], y[idx], rank[idx]


def _uses(kind: str, rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = rng.random(rank.size)
    use = np.full(rank.size, "residential", dtype=object)
    if kind == "temple":
        use[:] = "religious"
    elif kind in ("town", "seat"):
        centre = rank < (0.45 if kind == "town" else 0.3)
        use[centre & (r < 0.28)] = "commercial"
        use[centre & (r >= 0.28) & (r < 0.38)] = "public"
        use[~centre & (r < 0.05)] = "commercial"
        use[~centre & (r >= 0.05) & (r < 0.09)] = "industrial"
        use[~centre & (r >= 0.09) & (r < 0.16)] = "agricultural"
        use[~centre & (r >= 0.16) & (r < 0.18)] = "public"
    else:
        use[r < 0.17] = "agricultural"
        use[(r >= 0.17) & (r < 0.20)] = "public"
    return use


def _floors(kind: str, rank: np.ndarray, use: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "town":
        hi = np.where(rank < 0.3, 7, np.where(rank < 0.7, 4, 3))
        lo = np.where(rank < 0.3, 2, 1)
    elif kind == "seat":
        hi, lo = np.where(rank < 0.4, 4, 3), np.ones(rank.size, int)
    else:
        hi, lo = np.full(rank.size, 3), np.ones(rank.size, int)
    floors = lo + np.floor(rng.random(rank.size) ** 1.6 * (hi - lo)).astype(int)
    floors[use == "agricultural"] = 1
    return floors


def lay_out(kind: str, cx: float, cy: float, angle: float, n: int, rng: np.random.Generator,
            rivers: list[shapely.LineString]) -> Footprints:
    """Footprints of a settlement (or temple) of `n` buildings centred on (cx, cy) along `angle`."""
    i, j, x, y, rank = _lots(kind, cx, cy, angle, n, rng, rivers)
    m = len(x)
    s = SPACING[kind]
    use = _uses(kind, rank, rng)
    big = (use == "commercial") | (use == "public") | (use == "industrial")
    # Town-centre houses fill more of their lots than village ones.
    fill = np.where(rank < 0.5, 0.75, 0.6) if kind in ("town", "seat") else np.full(m, 0.6)
    w = np.where(big, rng.uniform(12, 0.8 * s, m), rng.uniform(7, fill * s))
    d = np.where(big, rng.uniform(10, 0.78 * s, m), rng.uniform(6, (fill - 0.1) * s))
    # A few big halls in the middle take a 2 x 2 block of lots.
    merged = np.zeros(m, bool)
    if kind in ("town", "seat", "temple"):
        key = set(zip(i.tolist(), j.tolist(), strict=True))
        col_every, row_every = STREETS[kind]
        for k in np.flatnonzero((rank < 0.5) & big & (i % 2 == 0) & (j % 2 == 0))[: max(1, m // 60)]:
            block = [(i[k] + 1, j[k]), (i[k], j[k] + 1), (i[k] + 1, j[k] + 1)]
            if col_every and ((i[k] + 1) % col_every == 0 or (j[k] + 1) % row_every == 0):
                continue
            if all(b in key for b in block):
                merged[k] = True
                for b in block:
                    key.discard(b)
        gone = np.array([(a, b) not in key for a, b in zip(i.tolist(), j.tolist(), strict=True)]) & ~merged
        x = np.where(merged, x + s / 2 * (np.cos(angle) - np.sin(angle)), x)
        y = np.where(merged, y + s / 2 * (np.sin(angle) + np.cos(angle)), y)
        w = np.where(merged, rng.uniform(26, 40, m), w)
        d = np.where(merged, rng.uniform(20, min(40.0, 1.55 * s), m), d)
        keep = ~gone
        i, j, x, y, rank, use, w, d, merged = (a[keep] for a in (i, j, x, y, rank, use, w, d, merged))
        m = len(x)
    slack_u = np.maximum(0.0, np.where(merged, 1.8 * s, 0.86 * s) - w) / 2
    slack_v = np.maximum(0.0, np.where(merged, 1.8 * s, 0.86 * s) - d) / 2
    theta = angle + rng.uniform(-0.06, 0.06, m)
    du, dv = rng.uniform(-1, 1, m) * slack_u * 0.8, rng.uniform(-1, 1, m) * slack_v * 0.8
    x = x + du * np.cos(angle) - dv * np.sin(angle)
    y = y + du * np.sin(angle) + dv * np.cos(angle)
    corner_u = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    corner_v = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    cu, cv = corner_u[None, :] * w[:, None], corner_v[None, :] * d[:, None]
    ct, st = np.cos(theta)[:, None], np.sin(theta)[:, None]
    px, py = x[:, None] + cu * ct - cv * st, y[:, None] + cu * st + cv * ct
    lon, lat = to_lonlat(px.ravel(), py.ravel())
    rings = np.round(np.stack([lon, lat], axis=1).reshape(m, 5, 2), 7)
    floors = _floors(kind, rank, use, rng)
    floors[merged] = np.maximum(floors[merged], 3 if kind != "temple" else 2)
    height = np.round(floors * rng.uniform(3.0, 3.3, m), 1)
    age = np.floor(rng.exponential(9.0 if kind == "town" else 16.0, m)).astype(int)
    year = np.clip(2025 - age, 1958 if kind != "temple" else 1981, 2025)
    # Only buildings wholly inside the county (its outline, not the local copy the lots were checked on).
    inside = shapely.contains_xy(county_outline(), rings[:, :4, 0].ravel(), rings[:, :4, 1].ravel())
    k = inside.reshape(m, 4).all(axis=1)
    return Footprints(x[k], y[k], rings[k], floors[k], height[k], use[k], year[k], np.zeros(int(k.sum()), bool),
                      np.full(int(k.sum()), None, dtype=object))


def allocate(county: County, scale: Scale) -> None:
    """Share the scale's building count among the settlements (by population; the town centre denser)."""
    # A few lots fall outside the county or in a river: allocate that much more.
    total = max(len(county.settlements), int((scale.buildings - scale.temples * TEMPLE_BUILDINGS_AVG) * 1.025))
    weight = np.array([s.population * (1.6 if s.kind == "town" else 1.0) for s in county.settlements], float)
    share = weight / weight.sum() * total
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]] += 1
    for s, c in zip(county.settlements, counts, strict=True):
        s.buildings = int(c)


def _name_key_buildings(fp: Footprints, settlement: Settlement) -> None:
    """Name the public buildings nearest the centre: offices, schools, clinics."""
    if settlement.kind == "town":
        names = list(TOWN_KEY_BUILDINGS)
    elif settlement.kind == "seat":
        town = settlement.name[:-1]
        names = [f"{town}乡人民政府", f"{town}乡中心学校", f"{town}乡卫生院", f"{settlement.name}村委会"]
    else:
        names = [f"{settlement.name}村委会"]
    public = np.flatnonzero(fp.use == "public")
    order = public[np.argsort(np.hypot(fp.x[public] - settlement.x, fp.y[public] - settlement.y), kind="stable")]
    for k, name in zip(order, names, strict=False):
        fp.name[k] = name
        fp.is_key[k] = True


def settlement_footprints(county: County, index: int, seed: int) -> Footprints:
    """The footprints of the county's `index`-th settlement (deterministic, independent of the others)."""
    s = county.settlements[index]
    rng = rng_for(seed, "buildings", index)
    rivers = [r.line for r in county.rivers]
    fp = lay_out(s.kind, s.x, s.y, s.angle, s.buildings, rng, rivers)
    _name_key_buildings(fp, s)
    return fp


def plan_temples(county: County, scale: Scale, seed: int) -> list[TemplePlan]:
    """The temples: on the slopes above settlements, with their sect, monks and buildings."""
    rng = rng_for(seed, "temples")
    names = NameBook(rng_for(seed, "names", "temples"))
    rivers = [r.line for r in county.rivers]
    weights = np.array([3.0 if s.kind == "town" else (1.5 if s.kind == "seat" else 1.0)
                        for s in county.settlements])
    plans = []
    frames = [(s.x, s.y, np.cos(s.angle), np.sin(s.angle), *extent(s.kind, max(s.buildings, 50)))
              for s in county.settlements]
    placed: list[tuple[float, float]] = []
    for k in range(scale.temples):
        s = county.settlements[int(rng.choice(len(county.settlements), p=weights / weights.sum()))]
        monks = int(np.clip(rng.lognormal(3.4, 0.9), 4, 450))
        n_buildings = int(np.clip(3 + monks / 6 + rng.normal(0, 3), 3, 70))
        sa_, sb_ = extent(s.kind, max(s.buildings, 50))
        for _ in range(40):  # upslope across the valley, clear of every settlement's lots and other temples
            reach = 1.6 * sb_ + rng.uniform(300, 1500)
            along = rng.uniform(-0.6, 0.6) * sa_
            side = rng.choice([-1.0, 1.0])
            ca, sa = np.cos(s.angle), np.sin(s.angle)
            tx, ty = s.x + along * ca - side * reach * sa, s.y + along * sa + side * reach * ca
            if _clear(tx, ty, frames, placed):
                break
        else:  # a hermitage out in the hills instead
            while True:
                (tx,), (ty,) = random_points_in(county_local(), 1, rng)
                if _clear(tx, ty, frames, placed):
                    break
        placed.append((tx, ty))
        fp = lay_out("temple", tx, ty, s.angle + rng.uniform(-0.4, 0.4), n_buildings,
                     rng_for(seed, "temple-buildings", k), rivers)
        name = names.place("寺", (2, 3))
        if len(fp):
            main = int(np.argmin(np.hypot(fp.x - tx, fp.y - ty)))
            fp.name[main], fp.is_key[main] = f"{name}大经堂", True
            fp.floors[main] = max(int(fp.floors[main]), 3)
            fp.height[main] = round(float(fp.floors[main]) * 3.4, 1)
        plans.append(TemplePlan(
            name=name, x=float(tx), y=float(ty), sect=str(rng.choice(SECTS, p=[SECT_SHARE[x] for x in SECTS])),
            monks=monks, founded=int(rng.integers(1300, 1990)), contact=names.phone(), settlement=s, footprints=fp))
    return plans


def _clear(x: float, y: float, frames: list[tuple[float, ...]], placed: list[tuple[float, float]]) -> bool:
    """True if a temple at (x, y) keeps clear of every settlement's lots, the other temples and the border."""
    if not shapely.contains_xy(county_local(), x, y):
        return False
    for fx, fy, c, s, a, b in frames:
        u, v = (x - fx) * c + (y - fy) * s, -(x - fx) * s + (y - fy) * c
        if np.hypot(u / (1.3 * a + 250.0), v / (1.3 * b + 250.0)) < 1.15:
            return False
    return all((x - px) ** 2 + (y - py) ** 2 > 600.0 ** 2 for px, py in placed)


def footprint_features(fp: Footprints, county: County, first_id: int) -> list[Feature]:
    """Building features from a batch of footprints, keyed by where their centroids fall."""
    polygons = shapely.polygons(fp.rings)
    lon, lat = to_lonlat(fp.x, fp.y)
    towns, grids = county.locate(lon, lat)
    out = []
    for k in range(len(fp)):
        props = {"township_code": towns[k], "grid_code": grids[k], "floors": int(fp.floors[k]),
                 "height": float(fp.height[k]), "use": fp.use[k], "year_built": int(fp.year[k]),
                 "is_key": bool(fp.is_key[k]), "name": fp.name[k]}
        out.append(Feature(first_id + k, polygons[k], props))
    return out


def _slices(fp: Footprints, size: int) -> Iterator[Footprints]:
    for start in range(0, len(fp), size):
        part = slice(start, start + size)
        yield Footprints(*(getattr(fp, f)[part] for f in Footprints.__dataclass_fields__))


def iter_buildings(county: County, temples: list[TemplePlan], seed: int,
                   chunk: int = 50_000) -> Iterator[list[Feature]]:
    """Every building, settlement by settlement then temple by temple, as chunks of features (ids from 1)."""
    next_id = 1
    for index in range(len(county.settlements)):
        for part in _slices(settlement_footprints(county, index, seed), chunk):
            features = footprint_features(part, county, next_id)
            next_id += len(features)
            yield features
    for plan in temples:
        chunk = footprint_features(plan.footprints, county, next_id)
        next_id += len(chunk)
        yield chunk


@dataclass
class SettlementSummary:
    """What other layers need of a settlement's buildings: named ones and a sample of (old) houses."""

    named: dict[str, tuple[float, float]]  # name -> local centroid
    houses: np.ndarray  # (k, 2) local centroids, oldest first
    years: np.ndarray


def summarise(county: County, seed: int, per_settlement: int = 400) -> list[SettlementSummary]:
    """One summary per settlement (regenerates the footprints; keep the result)."""
    out = []
    for index in range(len(county.settlements)):
        fp = settlement_footprints(county, index, seed)
        named = {str(fp.name[k]): (float(fp.x[k]), float(fp.y[k])) for k in np.flatnonzero(fp.is_key)}
        homes = np.flatnonzero((fp.use == "residential") | (fp.use == "commercial"))
        homes = homes[np.argsort(fp.year[homes], kind="stable")][:per_settlement]
        out.append(SettlementSummary(named, np.column_stack([fp.x[homes], fp.y[homes]]), fp.year[homes]))
    return out
