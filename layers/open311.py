"""Open311 GeoReport v2 for hotlines and reporting apps: services are our event types, a service request is
an event reported through the same workflow as any other (layers/dispatch.on_report), read back within the
caller's scope. The spec's status is open/closed; ours rides along as `onemap_status`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely.geometry import Point

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Forbidden, NotFound, Unprocessable
from geoserver.features import Feature, FeatureQuery
from geoserver.store import Store
from layers import event_types, workflows
from layers.dispatch import OPEN, now

LAYER = "events"
MAX_DESCRIPTION = 4000
MAX_REQUESTS = 1000  # the spec's usual default window is 90 days / 1000 requests


def services(store: Store) -> list[dict[str, Any]]:
    """GET services: every event type still in use, as the spec lists a service."""
    return [{"service_code": t["code"], "service_name": t["name"], "description": t["name"], "metadata": False,
             "type": "realtime", "keywords": ",".join(t.get("departments") or []), "group": "事件"}
            for t in event_types.list_types(store, include_retired=False)]


def _float(form: dict[str, Any], name: str, lo: float, hi: float) -> float:
    try:
        value = float(form[name])
    except (KeyError, TypeError, ValueError):
        raise BadInput(f"{name} must be a number", parameter=name) from None
    if not lo <= value <= hi:
        raise BadInput(f"{name} must be between {lo} and {hi}", parameter=name)
    return value


def create_request(store: Store, catalog: Catalog, principal: Principal, form: dict[str, Any]) -> dict[str, Any]:
    """POST requests: report an event for the account behind the api_key; the spec's answer row."""
    if principal.is_anonymous:
        raise BadInput("api_key is required to post a service request", parameter="api_key")
    code = form.get("service_code")
    if not isinstance(code, str) or not code:
        raise BadInput("service_code is required", parameter="service_code")
    lat = _float(form, "lat", -90.0, 90.0)
    lon = _float(form, "long", -180.0, 180.0)
    description = str(form.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise BadInput(f"description must be at most {MAX_DESCRIPTION} characters", parameter="description")
    layer = catalog.get(LAYER)
    scope = scope_for(principal, layer, "create")
    if scope.townships == frozenset():
        raise Forbidden("this api_key may not report events", parameter="api_key")
    name = " ".join(str(form.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    title = (description.splitlines()[0] if description else code)[:80]
    props = {"title": title, "type": code, "source": "hotline", "reported_at": now(), "description": description
             or None, "reporter": name or principal.username}
    with store.transaction(actor=principal.username):
        try:
            ready = workflows.before_create(store, principal, LAYER, Feature(None, Point(lon, lat), props))
        except BadInput as exc:
            if isinstance(exc, Unprocessable):  # routing: in no township (Open311 clients expect a 400)
                raise BadInput("lat/long lie outside the county", parameter="lat") from None
            if exc.parameter == "type":
                raise BadInput(f"service_code: {exc.message.removeprefix('type: ')}", parameter="service_code") \
                    from None
            raise
        try:
            [stored] = store.insert(LAYER, [ready], scope)
        except Forbidden:
            raise BadInput("lat/long lie outside the townships this api_key may report in", parameter="lat") from None
        if stored.properties.get("township_code") is None:
            raise BadInput("lat/long lie outside the county", parameter="lat")
        stored = workflows.after_create(store, principal, LAYER, stored)
    deadline = stored.properties.get("deadline")
    return {"service_request_id": str(stored.id), "service_notice": f"deadline {_iso(deadline)}" if deadline else "",
            "account_id": None}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _request(store: Store, feature: Feature, names: dict[str, str]) -> dict[str, Any]:
    p = feature.properties
    status = p.get("status")
    return {
        "service_request_id": str(feature.id), "status": "open" if status in OPEN else "closed",
        "status_notes": status, "service_name": names.get(p.get("type"), p.get("type")),
        "service_code": p.get("type"), "description": p.get("description") or p.get("title"),
        "agency_responsible": p.get("department") or p.get("assignee"), "service_notice": None,
        "requested_datetime": _iso(p.get("reported_at")), "updated_datetime": _iso(p.get("closed_at")),
        "expected_datetime": _iso(p.get("deadline")), "address": None, "address_id": None, "zipcode": None,
        "lat": feature.geometry.y if feature.geometry is not None else None,
        "long": feature.geometry.x if feature.geometry is not None else None, "media_url": None,
        "onemap_status": status, "township_code": p.get("township_code"), "grid_code": p.get("grid_code"),
    }


def _names(store: Store) -> dict[str, str]:
    return {t["code"]: t["name"] for t in event_types.list_types(store)}


def get_request(store: Store, catalog: Catalog, principal: Principal, request_id: str) -> dict[str, Any]:
    """GET requests/{id}: one event the caller may read, as a service request."""
    try:
        fid = int(request_id)
    except ValueError:
        raise NotFound(f"no service request {request_id!r}", parameter="service_request_id") from None
    if not 0 < fid < 2**63:
        raise NotFound(f"no service request {request_id!r}", parameter="service_request_id")
    feature = store.get(LAYER, fid, scope_for(principal, catalog.get(LAYER), "read"))
    return _request(store, feature, _names(store))


def list_requests(store: Store, catalog: Catalog, principal: Principal, args: dict[str, Any]) -> list[dict]:
    """GET requests: the caller's events, filtered as the spec allows (ids, service_code, dates, status)."""
    conditions: list[dict[str, Any]] = []
    ids = args.get("service_request_id")
    if ids:
        try:
            wanted = [int(x) for x in str(ids).split(",") if x.strip()]
        except ValueError:
            raise BadInput("service_request_id must be comma-separated ids", parameter="service_request_id") \
                from None
        if not wanted or len(wanted) > MAX_REQUESTS or not all(0 < x < 2**63 for x in wanted):
            raise BadInput("service_request_id must name 1-1000 ids", parameter="service_request_id")
        conditions.append({"op": "in", "args": [{"property": "id"}, wanted]})
    if args.get("service_code"):
        codes = [c for c in str(args["service_code"]).split(",") if c]
        conditions.append({"op": "in", "args": [{"property": "type"}, codes]})
    for name, op in (("start_date", ">="), ("end_date", "<=")):
        if args.get(name):
            try:
                when = datetime.fromisoformat(str(args[name]).replace("Z", "+00:00"))
            except ValueError:
                raise BadInput(f"{name} must be a w3 date-time, e.g. 2024-01-01T00:00:00Z", parameter=name) \
                    from None
            if when.tzinfo is None:
                raise BadInput(f"{name} needs a time zone (Z or ±hh:mm)", parameter=name)
            conditions.append({"op": op, "args": [{"property": "reported_at"}, {"timestamp": when.isoformat()}]})
    status = args.get("status")
    if status:
        if status not in ("open", "closed"):
            raise BadInput("status must be open or closed", parameter="status")
        inside = {"op": "in", "args": [{"property": "status"}, list(OPEN)]}
        conditions.append(inside if status == "open" else {"op": "not", "args": [inside]})
    flt = {"op": "and", "args": conditions} if len(conditions) > 1 else (conditions[0] if conditions else None)
    query = FeatureQuery(filter=flt, limit=MAX_REQUESTS, sortby=(("reported_at", False),))
    page = store.query(LAYER, query, scope_for(principal, catalog.get(LAYER), "read"))
    names = _names(store)
    return [_request(store, f, names) for f in page.features]
