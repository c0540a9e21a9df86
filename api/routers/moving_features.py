"""OGC API - Moving Features Part 1 for patrols: the MF-JSON feature (`f=mfjson` on the item), its temporal
geometry sequence and the distance / velocity / acceleration curves. Parse, call layers/patrol_replay, serialise.

MF-JSON has no media type of its own (it names application/geo+json), so `Accept: application/geo+json`
keeps answering the plain GeoJSON feature and MF-JSON is asked for with `f=mfjson`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api import jsonout
from api.auth import get_principal
from api.links import base_url
from api.ogc_params import check_format, parse_bbox, parse_datetime
from geoserver import crs as crsmod
from geoserver.access import Principal
from geoserver.errors import BadInput, NotFound
from geoserver.features import MAX_LIMIT, to_utc
from layers import patrol_replay as replay

router = APIRouter(tags=["OGC API - Moving Features"])
GEOJSON = "application/geo+json"
JSON = "application/json"
BASE = "/collections/patrols/items/{featureId}"
MAX_LEAF = replay.MAX_LEAF
MAX_LEAF_TEXT = MAX_LEAF * 40
SEQUENCE_PARAMS = ("f", "bbox", "datetime", "limit", "leaf", "subTrajectory")
CURVE_PARAMS = ("f", "datetime", "leaf", "subTemporalValue")
BOOLEANS = {"true": True, "false": False}


def _dumps(body: Any, media_type: str = JSON, etag: str | None = None) -> Response:
    response = Response(jsonout.dumps(body), media_type=media_type)
    if etag is not None:
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "private, no-cache"  # the caller's own view: revalidate each time
    return response


def _validator(request: Request, found: Any) -> str | None:
    """A weak ETag of this request's answer about a stopped patrol (its version, the path and the query);
    None while the patrol runs. Who may see it was decided before: the answer is the same for all of them."""
    tag = replay.version(found)
    if tag is None:
        return None
    key = hashlib.blake2b(f"{tag} {request.url.path}?{request.url.query}".encode(), digest_size=12).hexdigest()
    return f'W/"{key}"'


def _not_modified(request: Request, etag: str | None) -> bool:
    """True when If-None-Match names the answer's ETag (weak comparison, RFC 9110 13.1.2)."""
    header = request.headers.get("if-none-match")
    if etag is None or header is None:
        return False
    named = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in named or etag.removeprefix("W/") in named


def _unchanged(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"})


def _patrol_id(value: str) -> int:
    try:
        pid = int(value)
    except ValueError:
        raise NotFound(f"no patrol {value[:40]!r}", parameter="featureId") from None
    if not 0 < pid < 2**63:
        raise NotFound(f"no patrol {value[:40]!r}", parameter="featureId")
    return pid


def _only(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for name in params:
        if name not in allowed:
            raise BadInput(f"unknown query parameter {name[:40]!r}; this resource takes {', '.join(allowed)}",
                           parameter=name)


def _boolean(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in BOOLEANS:
        raise BadInput(f"{name} must be true or false; got {raw[:40]!r}", parameter=name)
    return BOOLEANS[raw]


def parse_leaf(raw: str) -> np.ndarray:
    """`leaf`: RFC 3339 instants, comma-separated, strictly increasing, at most MAX_LEAF; epoch ms."""
    if len(raw) > MAX_LEAF_TEXT or raw.count(",") >= MAX_LEAF:
        raise BadInput(f"leaf takes at most {MAX_LEAF} instants", parameter="leaf")
    out = []
    for text in raw.split(","):
        try:
            value = to_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00")))
        except (ValueError, OverflowError):
            raise BadInput(f"leaf must be RFC 3339 instants separated by commas; got {text[:60]!r}",
                           parameter="leaf") from None
        out.append(round(value.timestamp() * 1000))
    ms = np.array(out, dtype=np.int64)
    if len(ms) > 1 and not np.all(ms[1:] > ms[:-1]):
        raise BadInput("leaf instants must be strictly increasing (no instant twice)", parameter="leaf")
    return ms


def parse_selection(params: Mapping[str, str], clip_name: str, *, with_bbox: bool) -> replay.Selection:
    """The window, clipping, instants and bbox of a request (BadInput naming the parameter)."""
    window = parse_datetime(params["datetime"]) if params.get("datetime") else None
    clip = _boolean(params, clip_name)
    leaf = parse_leaf(params["leaf"]) if params.get("leaf") else None
    if clip and leaf is not None:
        raise BadInput(f"leaf and {clip_name} cannot be used together", parameter="leaf")
    if clip and (window is None or window[0] is None or window[1] is None):
        raise BadInput(f"{clip_name}=true needs a bounded datetime interval a/b", parameter="datetime")
    bbox = parse_bbox(params["bbox"], crsmod.CRS84) if with_bbox and params.get("bbox") else None
    return replay.Selection(window=window, clip=clip, leaf=leaf, bbox=bbox)


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit") or "10"
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"limit must be an integer; got {raw[:40]!r}", parameter="limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadInput(f"limit must be between 1 and {MAX_LIMIT}; got {raw[:40]}", parameter="limit")
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def feature_response(request: Request, principal: Principal, fid: str) -> Response:
    """The patrol as an MF-JSON MovingFeature with every fix (`/collections/patrols/items/{id}?f=mfjson`)."""
    crs = request.query_params.get("crs")
    if crs is not None and crsmod.parse_crs(crs, "crs") != crsmod.CRS84:
        raise BadInput("MF-JSON answers are in CRS84: leave crs out (or name CRS84)", parameter="crs")
    app = request.app.state
    pid = _patrol_id(fid)
    found = await run_in_threadpool(replay.patrol, app.store, app.catalog, principal, pid)
    etag = _validator(request, found)
    if _not_modified(request, etag):
        return _unchanged(etag)  # type: ignore[arg-type]
    tr = await run_in_threadpool(replay.fixes, app.store, found)
    body = replay.moving_feature(tr)
    url = f"{base_url(request)}/collections/patrols/items/{tr.patrol.id}"
    body["links"] = [{"rel": "self", "type": GEOJSON, "href": f"{url}?f=mfjson"},
                     {"rel": "alternate", "type": GEOJSON, "href": url, "title": "plain GeoJSON"},
                     {"rel": "items", "type": JSON, "href": f"{url}/tgsequence", "title": "temporal geometry"},
                     {"rel": "collection", "type": JSON, "href": f"{base_url(request)}/collections/patrols"}]
    return _dumps(body, GEOJSON, etag)


@router.get(BASE + "/tgsequence", response_class=Response)
async def temporal_geometry_sequence(featureId: str, request: Request,  # noqa: N803 -- the standard's name
                                     principal: Principal = Depends(get_principal)) -> Response:
    """The patrol's movement as an MF-JSON TemporalGeometrySequence: one MovingPoint of every fix in time
    order (`datetime` a/b keeps the fixes in the window, with `subTrajectory=true` cut at interpolated ends;
    `leaf` gives positions at those instants; `bbox` keeps the track only if it meets the box)."""
    params = request.query_params
    _only(params, SEQUENCE_PARAMS)
    check_format(params, ("json",))
    pid = _patrol_id(featureId)
    selection = parse_selection(params, "subTrajectory", with_bbox=True)
    limit = _limit(params)
    app = request.app.state

    def build() -> tuple[dict[str, Any] | None, str | None]:
        found = replay.patrol(app.store, app.catalog, principal, pid, geometry=False)
        etag = _validator(request, found)
        if _not_modified(request, etag):
            return None, etag
        tr = replay.fixes(app.store, found, selection.read_window())
        primitives, matched = replay.sequence(tr, selection, limit)
        return {"type": "TemporalGeometrySequence", "geometrySequence": primitives, "numberMatched": matched,
                "numberReturned": len(primitives), "timeStamp": _now()}, etag

    body, etag = await run_in_threadpool(build)
    if body is None:
        return _unchanged(etag)  # type: ignore[arg-type]
    url = f"{base_url(request)}/collections/patrols/items/{pid}/tgsequence"
    body["links"] = [{"rel": "self", "type": JSON, "href": url + (f"?{params}" if params else "")}]
    return _dumps(body, JSON, etag)


async def _curve(kind: str, feature_id: str, tg_id: str, request: Request, principal: Principal) -> Response:
    params = request.query_params
    _only(params, CURVE_PARAMS)
    check_format(params, ("json",))
    pid = _patrol_id(feature_id)
    if tg_id != replay.TG_ID:
        raise NotFound(f"no temporal geometry {tg_id[:40]!r} in patrol {pid} (its one is {replay.TG_ID!r})",
                       parameter="tGeometryId")
    selection = parse_selection(params, "subTemporalValue", with_bbox=False)
    app = request.app.state

    def build() -> tuple[dict[str, Any] | None, str | None]:
        found = replay.patrol(app.store, app.catalog, principal, pid, geometry=False)
        etag = _validator(request, found)
        if _not_modified(request, etag):
            return None, etag
        return replay.derived(replay.fixes(app.store, found), kind, selection), etag

    body, etag = await run_in_threadpool(build)
    if body is None:
        return _unchanged(etag)  # type: ignore[arg-type]
    return _dumps(body, JSON, etag)


@router.get(BASE + "/tgsequence/{tGeometryId}/distance", response_class=Response)
async def distance(featureId: str, tGeometryId: str, request: Request,  # noqa: N803
                   principal: Principal = Depends(get_principal)) -> Response:
    """The time-to-distance curve (metres travelled since the first fix, geodesic) as a TemporalProperty."""
    return await _curve("distance", featureId, tGeometryId, request, principal)


@router.get(BASE + "/tgsequence/{tGeometryId}/velocity", response_class=Response)
async def velocity(featureId: str, tGeometryId: str, request: Request,  # noqa: N803
                   principal: Principal = Depends(get_principal)) -> Response:
    """The time-to-velocity curve (m/s) as a TemporalProperty."""
    return await _curve("velocity", featureId, tGeometryId, request, principal)


@router.get(BASE + "/tgsequence/{tGeometryId}/acceleration", response_class=Response)
async def acceleration(featureId: str, tGeometryId: str, request: Request,  # noqa: N803
                       principal: Principal = Depends(get_principal)) -> Response:
    """The time-to-acceleration curve (m/s²) as a TemporalProperty."""
    return await _curve("acceleration", featureId, tGeometryId, request, principal)
