"""Two live servers on one database, both stores: an admin's change through one stops the account's open
stream, its tokens and its stream tickets on the other."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.e2e
SECRET = "accounts-test-secret-of-at-least-32-bytes"
BOUND = 5.0  # seconds the change may take to cross to the other server on a loaded machine


@pytest.fixture(params=STORE_KINDS)
def servers(request, catalog, tmp_path, fresh_postgis_url):
    """Servers A and B on one fresh database holding the tiny county."""
    db = filled_database(request.param, catalog, tmp_path, fresh_postgis_url, county.fill)
    settings = Settings(database=db, secret=SECRET, stream_heartbeat_seconds=0.3, jobs=False)
    with live_server(create_app(settings)) as a, live_server(create_app(settings)) as b:
        yield a, b


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_disabling_through_a_ends_the_open_stream_and_the_tickets_on_b(servers):
    a, b = servers
    token = _login(b, "leader-A")
    stream = SSEClient(f"{b}/stream?layers=events", token)
    try:
        assert stream.status == 200
        stream.next(kind="ready")
        ticket = httpx.post(f"{b}/stream/tickets", headers=token).json()["ticket"]
        r = httpx.patch(f"{a}/users/leader-A", json={"disabled": True}, headers=_login(a, "admin"))
        assert r.status_code == 200, r.text
        end = stream.next(timeout=BOUND, kind="end")
        assert "account changed" in end.data["reason"]
    finally:
        stream.close()
    assert httpx.get(f"{b}/stream?layers=events", headers=token).status_code == 401
    r = httpx.get(f"{b}/stream", params={"layers": "events", "ticket": ticket})
    assert r.status_code == 401 and r.json()["parameter"] == "ticket"


def test_a_regrant_through_a_ends_the_stream_on_b_and_a_new_login_hears_the_new_township(servers):
    a, b = servers
    admin = _login(a, "admin")
    old = SSEClient(f"{b}/stream?layers=events", _login(b, "leader-B"))
    try:
        old.next(kind="ready")
        r = httpx.patch(f"{a}/users/leader-B", json={"townships": ["A", "B"]}, headers=admin)
        assert r.status_code == 200, r.text
        old.next(timeout=BOUND, kind="end")
    finally:
        old.close()
    new = SSEClient(f"{b}/stream?layers=events", _login(b, "leader-B"))
    try:
        new.next(kind="ready")
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.25, 33.2]},
                "properties": {"title": "in A", "type": "garbage", "reported_at": "2024-06-01T08:00:00Z"}}
        r = httpx.post(f"{a}/collections/events/items", json=body,
                       headers={**admin, "Content-Type": "application/geo+json"})
        assert r.status_code == 201, r.text
        heard = new.next(timeout=BOUND)
        assert (heard.data["id"], heard.data["township_code"]) == (r.json()["id"], "A")
    finally:
        new.close()
