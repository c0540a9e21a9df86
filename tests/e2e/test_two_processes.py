"""Two real server processes on one database: what one writes, the other serves and streams within a second,
and a stream that moves from one to the other with Last-Event-ID misses nothing."""

from __future__ import annotations

import time
import uuid

import httpx
import mapbox_vector_tile
import morecantile
import pytest

from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import server_process
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.e2e
SECRET = "two-processes-secret-of-at-least-32-bytes"
ENV = {"ONEMAP_SECRET": SECRET, "ONEMAP_JOBS": "1"}
GJ = {"Content-Type": "application/geo+json"}
SPOT = (100.31, 33.41)  # an empty corner of township A
Z = 15


@pytest.fixture(scope="module", params=STORE_KINDS)
def pair(request, catalog, tmp_path_factory, fresh_postgis_url):
    folder = tmp_path_factory.mktemp(f"pair-{request.param}")
    db = filled_database(request.param, catalog, folder, fresh_postgis_url, county.fill)
    with (server_process(db, log=folder / "a.log", env=ENV) as base_a,
          server_process(db, log=folder / "b.log", env=ENV) as base_b):
        yield base_a, base_b


def _token(base: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": "operator", "password": county.PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _report(base: str, headers: dict, lon: float, lat: float) -> int:
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"title": f"two {uuid.uuid4().hex[:6]}", "type": "garbage",
                           "reported_at": "2024-06-01T08:00:00Z"}}
    r = httpx.post(f"{base}/collections/events/items", json=body, headers={**headers, **GJ})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _events_in_tile(base: str, headers: dict) -> int:
    tile = morecantile.tms.get("WebMercatorQuad").tile(*SPOT, Z)
    r = httpx.get(f"{base}/collections/events/tiles/WebMercatorQuad/{Z}/{tile.y}/{tile.x}", headers=headers)
    assert r.status_code in (200, 204), r.text
    if r.status_code == 204:
        return 0
    return len(mapbox_vector_tile.decode(r.content).get("events", {}).get("features", []))


def test_an_edit_through_one_process_changes_the_tile_the_other_serves_within_a_second(pair):
    a, b = pair
    headers = _token(a)
    before = _events_in_tile(b, headers)  # now cached in B
    assert _events_in_tile(b, headers) == before
    _report(a, headers, *SPOT)
    deadline = time.monotonic() + 1.0
    seen = before
    while seen == before and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = _events_in_tile(b, headers)
    assert seen == before + 1


def test_a_stream_on_one_process_receives_the_other_s_change(pair):
    a, b = pair
    headers = _token(a)
    stream = SSEClient(f"{b}/stream?layers=events", headers)
    try:
        stream.next(kind="ready")
        fid = _report(a, headers, 100.2, 33.1)
        got = stream.next(timeout=2.0)
        assert (got.data["id"], got.data["op"]) == (fid, "insert")
    finally:
        stream.close()


def test_a_client_that_reconnects_to_the_other_process_misses_nothing_and_gets_nothing_twice(pair):
    a, b = pair
    headers = _token(a)
    on_b = SSEClient(f"{b}/stream?layers=events", headers)
    try:
        on_b.next(kind="ready")
        first = _report(a, headers, 100.2, 33.1)
        last = on_b.next(timeout=2.0)
        assert last.data["id"] == first
    finally:
        on_b.close()
    missed = [_report(b, headers, 100.2, 33.1), _report(a, headers, 100.7, 33.1), _report(b, headers, 100.3, 33.1)]
    on_a = SSEClient(f"{a}/stream?layers=events", {**headers, "Last-Event-ID": last.id})
    try:
        replayed = [on_a.next(timeout=2.0) for _ in missed]
        assert [e.data["id"] for e in replayed] == missed
        later = _report(b, headers, 100.4, 33.1)
        assert on_a.next(timeout=2.0).data["id"] == later
        assert [e for e in on_a.drain(0.5) if e.event == "change"] == []
    finally:
        on_a.close()


def test_serve_with_two_workers_shares_one_database_and_one_token_secret(catalog, tmp_path, fresh_postgis_url):
    db = filled_database("postgis", catalog, tmp_path, fresh_postgis_url, county.fill)
    with server_process(db, "--workers", "2", log=tmp_path / "serve.log", env=ENV) as base:
        headers = _token(base)
        answers = {httpx.get(f"{base}/collections/events/items", params={"limit": 1}, headers=headers).status_code
                   for _ in range(20)}
        assert answers == {200}
