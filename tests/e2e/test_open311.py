"""Open311 GeoReport v2 on both stores: an Open311 client library reads our services and requests, a hotline
posts a request the spec's way (form-encoded, api_key) and it becomes an event of the dispatch workflow."""

from __future__ import annotations

import httpx
import pytest
import xmltodict
from georeport import GeoReport

from api.app import create_app
from api.settings import Settings
from layers.event_types import DEFAULTS
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.e2e
SECRET = "open311-test-secret-of-at-least-32-bytes"


@pytest.fixture(scope="module", params=STORE_KINDS)
def base(request, catalog, tmp_path_factory, fresh_postgis_url):
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"o311-{request.param}"),
                         fresh_postgis_url, county.fill)
    with live_server(create_app(Settings(database=db, secret=SECRET, jobs=False))) as url:
        yield f"{url}/open311/v2"


def _post(base: str, **form) -> httpx.Response:
    fields = {"api_key": county.LEADER_KEY, "service_code": "garbage", "lat": "33.2", "long": "100.2",
              "description": "垃圾堆在桥下\n已经三天了", "first_name": "张", "last_name": "三", **form}
    return httpx.post(f"{base}/requests.json", data={k: v for k, v in fields.items() if v is not None})


def test_a_client_library_reads_the_services_in_json_and_xml(base):
    codes = {s["service_code"] for s in GeoReport(base).get_service_list()}
    assert codes == {code for code, *_ in DEFAULTS}
    xml = GeoReport(base, output_format="xml").get_service_list()
    assert {s["service_code"] for s in xml} == codes


def test_a_hotline_request_becomes_a_routed_event_and_is_read_back(base):
    r = _post(base)
    assert r.status_code == 201, r.text
    [answer] = r.json()
    rid = answer["service_request_id"]
    assert answer["service_notice"].startswith("deadline ")
    [got] = httpx.get(f"{base}/requests/{rid}.json", params={"api_key": county.LEADER_KEY}).json()
    assert (got["status"], got["onemap_status"], got["service_code"]) == ("open", "reported", "garbage")
    assert got["township_code"] == "A" and got["lat"] == pytest.approx(33.2) and got["expected_datetime"]
    assert got["description"].startswith("垃圾堆在桥下")
    listed = httpx.get(f"{base}/requests.json", params={"api_key": county.LEADER_KEY, "status": "open",
                                                        "service_code": "garbage"}).json()
    assert rid in [x["service_request_id"] for x in listed]
    assert all(x["township_code"] == "A" for x in listed)  # the key's account sees its township only
    xml = httpx.get(f"{base}/requests/{rid}.xml", params={"api_key": county.LEADER_KEY})
    assert xml.headers["content-type"].startswith("application/xml")
    assert xmltodict.parse(xml.content)["service_requests"]["request"]["service_request_id"] == rid
    # The same request, through the library, without a key: events are not public.
    with pytest.raises(Exception, match="404"):
        GeoReport(base).get_service_request(rid)


@pytest.mark.parametrize("form, field, status", [
    ({"service_code": None}, "service_code", 400), ({"service_code": "teleport"}, "service_code", 400),
    ({"lat": "abc"}, "lat", 400), ({"lat": "1e309"}, "lat", 400), ({"long": "181"}, "long", 400),
    ({"lat": "10", "long": "10"}, "lat", 400),  # outside the county
    ({"long": "100.8"}, "lat", 400),  # township B: outside the key's townships
    ({"description": "x" * 5000}, "description", 400),
    ({"api_key": "no-such-key"}, "X-API-Key", 401), ({"api_key": None}, "api_key", 400),
])
def test_a_bad_request_is_refused_naming_the_field_and_writes_nothing(base, form, field, status):
    def everything() -> int:  # as the admin sees it
        r = httpx.get(f"{base}/requests.json", auth=("admin", county.PASSWORD))
        assert r.status_code == 200
        return len(r.json())

    before = everything()
    r = _post(base, **form)
    assert r.status_code == status and r.json()["parameter"] == field, r.text
    assert everything() == before


@pytest.mark.parametrize("path, params, status", [
    ("requests.json", {"status": "maybe"}, 400), ("requests.json", {"start_date": "yesterday"}, 400),
    ("requests.json", {"start_date": "2024-01-01T00:00:00"}, 400),
    ("requests.json", {"service_request_id": "1,x"}, 400), ("requests.csv", {}, 404),
    ("requests/99999999999999999999.json", {}, 404), ("requests/abc.json", {}, 404),
])
def test_bad_reads_are_4xx(base, path, params, status):
    r = httpx.get(f"{base}/{path}", params={"api_key": county.LEADER_KEY, **params})
    assert r.status_code == status, r.text
