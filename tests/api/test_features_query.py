"""OGC API Features Parts 1-3 as a client sees them: paging, CRS, CQL2 text/JSON, bad input."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from geoserver import crs
from tests.api.conftest import login


@pytest.fixture(scope="module")
def admin(client):
    return login(client, "admin")


def _get(client, h, **params):
    r = client.get("/collections/events/items", params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_paging_with_next_links_keeps_every_parameter(client, admin):
    seen, url = [], "/collections/events/items?limit=3&filter=type%3D%27garbage%27&bbox=100,33,101,33.5"
    while url:
        body = client.get(url, headers=admin).json()
        assert body["numberMatched"] == 10 and body["numberReturned"] == len(body["features"])
        seen += [f["id"] for f in body["features"]]
        nxt = [lk["href"] for lk in body["links"] if lk["rel"] == "next"]
        if nxt:
            q = parse_qs(urlsplit(nxt[0]).query)
            assert q["filter"] == ["type='garbage'"] and q["bbox"] == ["100,33,101,33.5"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
    assert len(seen) == len(set(seen)) == 10


@pytest.mark.parametrize("uri", [crs.EPSG_4326, crs.EPSG_3857, crs.EPSG_4490, crs.CRS84])
def test_output_crs(client, admin, uri):
    r = client.get("/collections/events/items/1", params={"crs": uri}, headers=admin)
    base = client.get("/collections/events/items/1", headers=admin).json()["geometry"]["coordinates"]
    assert r.headers["content-crs"] == f"<{uri}>"
    x, y = r.json()["geometry"]["coordinates"]
    if uri in (crs.EPSG_4326, crs.EPSG_4490):
        assert (x, y) == pytest.approx((base[1], base[0]), abs=1e-6)  # lat, lon
    elif uri == crs.EPSG_3857:
        assert x == pytest.approx(base[0] * 111319.49, rel=1e-4)
    else:
        assert (x, y) == pytest.approx(tuple(base))


def test_bbox_crs_lat_lon_order(client, admin):
    lonlat = _get(client, admin, bbox="100.0,33.0,100.5,33.5", limit=100)
    latlon = _get(client, admin, bbox="33.0,100.0,33.5,100.5", **{"bbox-crs": crs.EPSG_4326}, limit=100)
    assert lonlat["numberMatched"] == latlon["numberMatched"] == 10


def test_cql2_text_and_json_agree(client, admin):
    text = _get(client, admin, filter="type = 'garbage' AND reported_at >= TIMESTAMP('2024-05-04T00:00:00Z')")
    js = _get(client, admin, **{"filter-lang": "cql2-json", "filter": json.dumps(
        {"op": "and", "args": [{"op": "=", "args": [{"property": "type"}, "garbage"]},
                               {"op": ">=", "args": [{"property": "reported_at"},
                                                     {"timestamp": "2024-05-04T00:00:00Z"}]}]})})
    assert text["numberMatched"] == js["numberMatched"] == 8


@pytest.mark.parametrize("expr,count", [
    ("S_INTERSECTS(geometry, POLYGON((100 33, 100.5 33, 100.5 33.5, 100 33.5, 100 33)))", 10),
    ("S_WITHIN(geometry, POLYGON((100 33, 101 33, 101 33.5, 100 33.5, 100 33)))", 20),
    ("S_DWITHIN(geometry, POINT(100.025 33.1), 1000, meters)", 1),  # the next event is 5.1 km away
    ("S_DWITHIN(geometry, POINT(100.025 33.1), 7, kilometers)", 2),  # and the third 10.3 km
    ("T_INTERSECTS(reported_at, INTERVAL('2024-05-01T00:00:00Z', '2024-05-02T12:00:00Z'))", 4),
    ("T_BEFORE(reported_at, TIMESTAMP('2024-05-03T00:00:00Z'))", 4),
    # An interval from two properties, as CQL2's own examples write it; no closed_at: still open.
    ("T_INTERSECTS(INTERVAL(reported_at, closed_at), INTERVAL('2024-05-05T00:00:00Z', '2024-05-06T00:00:00Z'))", 12),
    ("T_DURING(INTERVAL(reported_at, deadline), INTERVAL('2024-05-01T00:00:00Z', '..'))", 0),
    ("title IN ('event A0', 'event B9')", 2),
    ("title LIKE 'event A%'", 10),
    ("NOT (type = 'garbage')", 10),
])
def test_cql2_operators(client, admin, expr, count):
    assert _get(client, admin, filter=expr, limit=100)["numberMatched"] == count


def test_filter_crs(client, admin):
    poly = "POLYGON((33 100, 33 100.5, 33.5 100.5, 33.5 100, 33 100))"  # lat/lon order
    body = _get(client, admin, filter=f"S_INTERSECTS(geometry, {poly})", **{"filter-crs": crs.EPSG_4326})
    assert body["numberMatched"] == 10


def test_datetime_interval(client, admin):
    assert _get(client, admin, datetime="2024-05-01T00:00:00Z/2024-05-03T23:00:00Z")["numberMatched"] == 6
    assert _get(client, admin, datetime="../2024-05-01T12:00:00Z")["numberMatched"] == 2


@pytest.mark.parametrize("params,parameter", [
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"), ({"datetime": "yesterday"}, "datetime"),
    ({"filter": "type = "}, "filter"), ({"filter": "nosuch = 1"}, "filter"), ({"crs": "EPSG:9999"}, "crs"),
    ({"bbox": "1,2,3,4", "bbox-crs": "EPSG:1"}, "bbox-crs"), ({"limit": "100000"}, "limit"),
    ({"limit": "x"}, "limit"), ({"nosuch": "1"}, "nosuch"), ({"properties": "nosuch"}, "properties"),
    ({"filter": "type='x'", "filter-lang": "ecql"}, "filter-lang"),
])
def test_bad_input_names_the_parameter(client, admin, params, parameter):
    r = client.get("/collections/events/items", params=params, headers=admin)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["parameter"] == parameter or parameter in body["detail"]


def test_unknown_collection_and_feature(client, admin):
    assert client.get("/collections/nosuch/items").status_code == 404
    assert client.get("/collections/townships/items/999999").status_code == 404
    assert client.get("/collections/townships/items/abc").status_code == 404


def test_html_pages(client):
    for path in ("/", "/collections", "/collections/townships", "/collections/townships/items",
                 "/collections/townships/items/1", "/conformance"):
        r = client.get(path, params={"f": "html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path


def test_conformance_and_openapi(client):
    classes = client.get("/conformance").json()["conformsTo"]
    for part in ("ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/filter", "cql2/1.0/conf/cql2-text",
                 "ogcapi-features-4/1.0/conf/create-replace-delete"):
        assert any(c.endswith(part) for c in classes)
    doc = client.get("/openapi").json()
    assert doc["openapi"].startswith("3.0") and "/collections/townships/items" in doc["paths"]
    assert "/collections/events/items" not in doc["paths"]  # not for anonymous callers
