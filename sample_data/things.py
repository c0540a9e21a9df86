"""Point things: temples, monitoring sites (sensors, stations, cameras) and thematic points of interest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import shapely

from geoserver.features import Feature
from layers.pois import POI_DEPARTMENTS
from layers.sites import SITE_DEPARTMENTS, SITE_KINDS
from sample_data.county import County, Settlement
from sample_data.names import NameBook
from sample_data.scales import Scale, rng_for
from sample_data.settlements import SettlementSummary, TemplePlan
from sample_data.spatial import county_outline, to_lonlat

# Shares of the monitoring sites by kind (of the scale's total), their code prefix and Chinese label.
SITE_SHARE = {"smoke": 0.25, "temperature": 0.12, "electric_fire": 0.16, "water_quality": 0.07, "air": 0.05,
              "waste_bin": 0.22, "camera": 0.13}
SITE_PREFIX = {"smoke": "SMK", "temperature": "TMP", "electric_fire": "EFR", "water_quality": "WQ",
               "air": "AIR", "waste_bin": "BIN", "camera": "CAM"}
SITE_LABEL = {"smoke": "烟感", "temperature": "温感", "electric_fire": "电气火灾监测点", "water_quality": "水质监测站",
              "air": "空气质量监测站", "waste_bin": "智能垃圾桶", "camera": "视频监控"}
SCENIC_SPOTS = ("红军沟", "玛可河原始林区", "班玛藏式碉楼群", "多柯河峡谷", "年保玉则东坡观景台", "阿什姜温泉",
                "灯塔乡千年碉楼", "江日堂红色教育基地", "亚尔堂藏家风情村", "知钦草原", "玛柯河湿地", "吉卡花海")
ENTERPRISES = ("生态畜牧业专业合作社", "藏家乐", "宾馆", "藏药材加工厂", "建材有限公司", "商贸有限公司", "牦牛乳制品厂",
               "唐卡艺术中心", "运输有限公司", "超市")


@dataclass
class PointThing:
    """One point feature before it is keyed: local position and properties (township/grid added later)."""

    x: float
    y: float
    props: dict


def _keyed(county: County, things: list[PointThing], with_grid: bool = True) -> list[Feature]:
    """Features with ids 1..n, keyed by point-in-polygon; points rounded to 1e-7 degrees."""
    if not things:
        return []
    lon, lat = to_lonlat(np.array([t.x for t in things]), np.array([t.y for t in things]))
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    towns, grids = county.locate(lon, lat)
    points = shapely.points(lon, lat)
    out = []
    for k, t in enumerate(things):
        props = dict(t.props, township_code=towns[k])
        if with_grid:
            props["grid_code"] = grids[k]
        out.append(Feature(k + 1, points[k], props))
    return out


def temple_features(county: County, temples: list[TemplePlan]) -> list[Feature]:
    """The temples as points, with the number of buildings actually laid out for each."""
    return _keyed(county, [PointThing(t.x, t.y, {
        "name": t.name, "sect": t.sect, "monks": t.monks, "buildings": len(t.footprints), "founded": t.founded,
        "contact": t.contact}) for t in temples])


def _site_counts(scale: Scale) -> dict[str, int]:
    return {k: max(1, int(round(scale.sites * SITE_SHARE[k]))) for k in SITE_KINDS}


def _near(x: float, y: float, rng: np.random.Generator, spread: float) -> tuple[float, float]:
    """A random point near (x, y) inside the county (looking further afield if (x, y) is outside it)."""
    for _ in range(12):
        px, py = x + rng.normal(0, spread, 16), y + rng.normal(0, spread, 16)
        inside = np.flatnonzero(shapely.contains_xy(county_outline(), *to_lonlat(px, py)))
        if inside.size:
            return float(px[inside[0]]), float(py[inside[0]])
        spread *= 2.0
    raise ValueError(f"no point of the county near {x:.0f}, {y:.0f}")


def site_features(county: County, summaries: list[SettlementSummary], temples: list[TemplePlan], scale: Scale,
                  seed: int) -> list[Feature]:
    """Monitoring sites of every kind: fire sensors in old houses and temples, stations by rivers and towns."""
    rng = rng_for(seed, "sites")
    settlements = county.settlements
    # Sensors go where people and old buildings are: the town and the seats first.
    weight = np.array([4.0 if s.kind == "town" else (1.5 if s.kind == "seat" else 0.4) for s in settlements])
    weight /= weight.sum()
    things: list[PointThing] = []
    start = date(2019, 1, 1)
    for kind, n in _site_counts(scale).items():
        for k in range(n):
            pick = int(rng.choice(len(settlements), p=weight))
            s, summary = settlements[pick], summaries[pick]
            place = s.name
            if kind in ("smoke", "temperature", "electric_fire"):
                if temples and kind != "electric_fire" and rng.random() < 0.25:
                    t = temples[int(rng.integers(len(temples)))]
                    x, y, place = t.x, t.y, t.name
                else:
                    old = summary.houses[: max(1, len(summary.houses) // 2)]
                    x, y = old[int(rng.integers(len(old)))] if len(old) else (s.x, s.y)
            elif kind == "water_quality":
                river = min(county.rivers, key=lambda r: r.line.distance(shapely.Point(s.x, s.y)))
                along = river.line.project(shapely.Point(s.x, s.y)) + rng.uniform(300, 1500)
                p = river.line.interpolate(min(along, river.line.length))
                x, y = _near(p.x, p.y, rng, 15.0)
            elif kind == "air":
                x, y = _near(s.x, s.y, rng, 300.0)
            elif kind == "waste_bin" and len(summary.houses):
                hx, hy = summary.houses[int(rng.integers(len(summary.houses)))]
                x, y = hx + 0.45 * 30.0 * np.cos(s.angle), hy + 0.45 * 30.0 * np.sin(s.angle)
            else:
                x, y = _near(s.x, s.y, rng, 250.0 if s.kind == "town" else 120.0)
            r = rng.random()
            status = "online" if r < (0.86 if kind == "camera" else 0.88) else ("offline" if r < 0.95 else "fault")
            things.append(PointThing(float(x), float(y), {
                "site_code": f"BM-{SITE_PREFIX[kind]}-{k + 1:04d}", "name": f"{place}{SITE_LABEL[kind]}{k + 1}号",
                "kind": kind, "status": status, "department": SITE_DEPARTMENTS[kind],
                "installed_on": start + timedelta(days=int(rng.integers(0, 2700))),
            }))
    return _keyed(county, things)


def _at(summary: SettlementSummary, name: str, s: Settlement, rng: np.random.Generator) -> tuple[float, float]:
    """Where a named building stands, or a point near the settlement centre."""
    if name in summary.named:
        return summary.named[name]
    return _near(s.x, s.y, rng, 60.0)


def poi_features(county: County, summaries: list[SettlementSummary], seed: int) -> list[Feature]:
    """Party organisations, enterprises, scenic spots and service halls of every township and village."""
    rng = rng_for(seed, "pois")
    names = NameBook(rng_for(seed, "names", "pois"))
    things: list[PointThing] = []
    town_of = {t.code: t for t in county.townships}

    def add(category: str, name: str, xy: tuple[float, float], s: Settlement) -> None:
        address = f"班玛县{town_of[s.township_code].name_zh}{s.name if s.kind != 'town' else ''}"
        things.append(PointThing(float(xy[0]), float(xy[1]), {
            "name": name, "category": category, "address": address, "phone": names.phone(),
            "department": POI_DEPARTMENTS[category]}))

    for s, summary in zip(county.settlements, summaries, strict=True):
        town = town_of[s.township_code]
        if s.kind == "town":
            add("service_hall", "班玛县政务服务中心", _at(summary, "班玛县政务服务中心", s, rng), s)
            add("service_hall", f"{town.name_zh}便民服务中心", _at(summary, "赛来塘镇人民政府", s, rng), s)
            add("party_org", "中共班玛县委员会", _at(summary, "中共班玛县委员会", s, rng), s)
            add("party_org", f"中共{town.name_zh}委员会", _at(summary, "赛来塘镇人民政府", s, rng), s)
            for v in (v for v in county.villages if v.settlement is s):
                add("party_org", f"{v.name}党支部", _near(s.x, s.y, rng, 1200.0), s)
            for _ in range(18):
                add("enterprise", f"班玛县{names.place('')}{ENTERPRISES[int(rng.integers(len(ENTERPRISES)))]}",
                    _near(s.x, s.y, rng, 700.0), s)
            continue
        office = f"{s.name}村委会"
        add("party_org", f"{s.name}党支部", _at(summary, office, s, rng), s)
        add("service_hall", f"{s.name}便民服务站", _at(summary, office, s, rng), s)
        if s.kind == "seat":
            add("service_hall", f"{town.name_zh}便民服务中心", _at(summary, f"{town.name_zh}人民政府", s, rng), s)
            add("party_org", f"中共{town.name_zh}委员会", _at(summary, f"{town.name_zh}人民政府", s, rng), s)
        if s.kind == "seat" or rng.random() < 0.5:
            add("enterprise", f"{s.name}{ENTERPRISES[int(rng.integers(3))]}", _near(s.x, s.y, rng, 250.0), s)
    for k, spot in enumerate(SCENIC_SPOTS):
        s = county.settlements[(7 * k + 3) % len(county.settlements)]
        angle = rng.uniform(0, 2 * np.pi)
        reach = rng.uniform(1500, 5000)
        add("scenic_spot", spot, _near(s.x + reach * np.cos(angle), s.y + reach * np.sin(angle), rng, 10.0), s)
    return _keyed(county, things)
