"""Live positions on /stream, on both stores: a batch of fixes moves its worker once (one `positions` change
per batch, read from the stream itself), a late batch of older fixes does not move him, and a leader of
another township sees nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.api.test_patrols import _day_of_fixes
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.e2e
SECRET = "positions-stream-secret-of-at-least-32-bytes"
DAY = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url):
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"positions-{request.param}"),
                         fresh_postgis_url, county.fill)
    app = create_app(Settings(database=db, secret=SECRET, stream_heartbeat_seconds=0.3, jobs=False))
    with live_server(app) as base:
        yield base


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_batch_moves_its_worker_once_on_the_stream_and_a_late_batch_not_at_all(server):
    base = server
    worker = _login(base, "worker-A1")
    r = httpx.post(f"{base}/patrols", json={"grid_code": "A1", "started_at": DAY.isoformat()}, headers=worker)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    fixes = _day_of_fixes(200)
    leader_a = SSEClient(f"{base}/stream?layers=positions", _login(base, "leader-A"))
    leader_b = SSEClient(f"{base}/stream?layers=positions", _login(base, "leader-B"))
    try:
        for s in (leader_a, leader_b):
            assert s.status == 200
            s.next(kind="ready")
        r = httpx.post(f"{base}/patrols/{pid}/points", json={"points": fixes[100:]}, headers=worker)
        assert r.status_code == 200 and r.json()["accepted"] == 100, r.text
        moved = leader_a.next(timeout=5)
        assert (moved.data["layer"], moved.data["township_code"]) == ("positions", "A")
        assert moved.data["properties"]["worker"] == "worker-A1"
        assert moved.data["properties"]["recorded_at"].startswith(fixes[-1]["time"][:19])
        assert [e for e in leader_a.drain(0.5) if e.event == "change"] == []  # one change for the batch
        r = httpx.post(f"{base}/patrols/{pid}/points", json={"points": fixes[:100]}, headers=worker)
        assert r.status_code == 200 and r.json()["accepted"] == 100, r.text
        assert [e for e in leader_a.drain(0.5) if e.event == "change"] == []  # older fixes: not moved back
        assert [e for e in leader_b.drain(0.5) if e.event == "change"] == []  # another township: nothing
    finally:
        leader_a.close()
        leader_b.close()
