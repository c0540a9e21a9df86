"""Query parameters of OGC API Features requests, parsed into a FeatureQuery (BadInput names the parameter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geoserver import crs as crsmod
from geoserver.catalog import Layer, Property
from geoserver.cql import parse_filter
from geoserver.errors import BadInput
from geoserver.features import INT64_MAX, MAX_LIMIT, FeatureQuery, coerce_value, to_utc

DEFAULT_LIMIT = 10
ITEM_FORMATS = ("json", "geojson", "html")  # what items and item answer with
BOOLEANS = {"true": True, "false": False}
RESERVED = frozenset({"f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter",
                      "filter-lang", "filter-crs", "properties", "sortby", "skipGeometry", "resulttype"})


@dataclass(frozen=True)
class ItemsRequest:
    """A parsed items request: the store query and the output CRS."""

    query: FeatureQuery
    crs: str


def _int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be an integer; got {raw[:40]!r}", parameter=name) from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise BadInput(f"{name} must be {bound}; got {raw[:40]}", parameter=name)
    return value


def parse_bbox(raw: str, bbox_crs: str) -> tuple[float, float, float, float]:
    """A lon/lat bbox from `minx,miny,maxx,maxy` (or 6 numbers) given in `bbox_crs` axis order."""
    try:
        nums = [float(v) for v in raw.split(",")]
    except ValueError:
        raise BadInput(f"bbox must be 4 or 6 comma-separated numbers; got {raw!r}", parameter="bbox") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or any(v != v for v in nums):
        raise BadInput(f"bbox must be 4 or 6 comma-separated numbers; got {raw!r}", parameter="bbox")
    if nums[1] > nums[3]:
        raise BadInput("bbox: the lower bound of the second axis exceeds its upper bound", parameter="bbox")
    if bbox_crs in (crsmod.CRS84,) and not (-90 <= nums[1] <= 90 and -90 <= nums[3] <= 90):
        raise BadInput("bbox latitude must lie within [-90, 90]", parameter="bbox")
    try:
        box = crsmod.bbox_to_storage(tuple(nums), bbox_crs)
    except Exception as exc:  # pyproj refuses boxes outside a CRS's area of use
        raise BadInput(f"bbox cannot be transformed from {bbox_crs}: {exc}", parameter="bbox") from None
    if box[0] > box[2]:  # crosses the antimeridian: widen to the whole range of longitudes
        box = (-180.0, box[1], 180.0, box[3])
    return box


def _instant(text: str) -> datetime | None:
    if text in ("..", ""):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInput(f"datetime must be RFC 3339 (e.g. 2024-05-01T00:00:00Z) or an interval a/b; "
                       f"got {text[:80]!r}", parameter="datetime") from None
    try:
        return to_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is a day before year 1 in UTC
        raise BadInput(f"datetime {text!r} lies outside years 1-9999 once moved to UTC",
                       parameter="datetime") from None


def check_format(params: Mapping[str, str], allowed: tuple[str, ...]) -> str | None:
    """The `f` parameter, lower-cased, if it names one of `allowed`; BadInput naming `f` otherwise."""
    f = params.get("f")
    if f is None:
        return None
    if f.lower() not in allowed:
        raise BadInput(f"f must be one of {', '.join(allowed)}; got {f[:40]!r}", parameter="f")
    return f.lower()


def _boolean(params: Mapping[str, str], name: str) -> bool:
    raw = (params.get(name) or "false").lower()
    if raw not in BOOLEANS:
        raise BadInput(f"{name} must be true or false; got {raw[:40]!r}", parameter=name)
    return BOOLEANS[raw]


def parse_datetime(raw: str) -> tuple[datetime | None, datetime | None]:
    """An instant or a closed/open interval (`a/b`, `../b`, `a/..`)."""
    if "/" in raw:
        a, _, b = raw.partition("/")
        start, end = _instant(a), _instant(b)
        if start and end and start > end:
            raise BadInput("datetime interval starts after it ends", parameter="datetime")
        return start, end
    t = _instant(raw)
    if t is None:
        raise BadInput("datetime must be an instant or an interval", parameter="datetime")
    return t, t


def _and(a: dict | None, b: dict) -> dict:
    return b if a is None else {"op": "and", "args": [a, b]}


def parse_items(layer: Layer, params: Mapping[str, str], *, max_limit: int = MAX_LIMIT) -> ItemsRequest:
    """The FeatureQuery and output CRS of a GET items request on `layer`."""
    check_format(params, ITEM_FORMATS)
    out_crs = crsmod.parse_crs(params.get("crs"), "crs")
    bbox_crs = crsmod.parse_crs(params.get("bbox-crs"), "bbox-crs")
    if "bbox-crs" in params and "bbox" not in params:
        raise BadInput("bbox-crs given without bbox", parameter="bbox-crs")
    bbox = parse_bbox(params["bbox"], bbox_crs) if params.get("bbox") else None
    interval = parse_datetime(params["datetime"]) if params.get("datetime") else None
    filt: dict[str, Any] | None = None
    if params.get("filter"):
        filt = parse_filter(params["filter"], params.get("filter-lang"), params.get("filter-crs"))
    elif params.get("filter-lang") or params.get("filter-crs"):
        parse_filter("true", params.get("filter-lang"), params.get("filter-crs"))  # validates them
    for name, value in params.items():
        if name in RESERVED:
            continue
        if not layer.has_prop(name):
            raise BadInput(f"unknown query parameter or property {name!r} of collection {layer.id!r}",
                           parameter=name)
        prop = layer.prop(name)
        coerce_value(Property(prop.name, prop.type), value)  # checked here so the error names the parameter
        filt = _and(filt, {"op": "=", "args": [{"property": name}, value]})
    props = None
    if params.get("properties"):
        # Each once: SQLite refuses more than 2,000 result columns, and a name twice adds nothing.
        props = tuple(dict.fromkeys(p.strip() for p in params["properties"].split(",") if p.strip()))
        for p in props:
            if not layer.has_prop(p):
                raise BadInput(f"properties: unknown property {p!r} of collection {layer.id!r}",
                               parameter="properties")
    sortby: list[tuple[str, bool]] = []
    for item in (params.get("sortby") or "").split(","):
        item = item.strip()
        if not item:
            continue
        asc = not item.startswith("-")
        name = item.lstrip("+-")
        if name != "id" and not layer.has_prop(name):
            raise BadInput(f"sortby: unknown property {name!r} of collection {layer.id!r}", parameter="sortby")
        sortby.append((name, asc))
    skip = _boolean(params, "skipGeometry")
    query = FeatureQuery(
        bbox=bbox, datetime=interval, filter=filt, properties=props, sortby=tuple(sortby),
        limit=_int(params, "limit", DEFAULT_LIMIT, 1, max_limit), offset=_int(params, "offset", 0, 0, INT64_MAX),
        with_geometry=not skip,
    )
    return ItemsRequest(query, out_crs)
