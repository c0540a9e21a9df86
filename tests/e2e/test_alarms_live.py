"""Alarms arrive live, on both stores: a hot reading's alarm reaches the /stream of its township's leader and not
another's, an acknowledgement arrives as an update, and a silent sensor's offline alarm arrives when the clock
says so, with no further message from the sensor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from shapely.geometry import Point

from api.app import create_app
from api.settings import Settings
from geoserver.access import Scope
from geoserver.features import Feature
from layers import alarm_eval, alarm_rules
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.e2e
SECRET = "alarm-stream-secret-of-at-least-32-bytes"


def _fill(store) -> None:
    county.fill(store)
    alarm_rules.seed_defaults(store)
    store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "T-A1", "name": "old house", "kind": "temperature"}),
        Feature(None, Point(100.8, 33.2), {"site_code": "T-B1", "name": "barn", "kind": "temperature"})],
        Scope.everything())


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url):
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"alarms-{request.param}"),
                         fresh_postgis_url, _fill)
    app = create_app(Settings(database=db, secret=SECRET, stream_heartbeat_seconds=0.3, jobs=False))
    with live_server(app) as base:
        yield base, app


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_an_alarm_reaches_its_townships_leader_live_and_a_silent_sensor_goes_offline_on_the_clock(server):
    base, app = server
    op = _login(base, "operator")
    sites = {f["properties"]["site_code"]: f["id"] for f in httpx.get(
        f"{base}/collections/monitoring_sites/items", headers=op).json()["features"]}
    leader_a = SSEClient(f"{base}/stream?layers=alarms", _login(base, "leader-A"))
    leader_b = SSEClient(f"{base}/stream?layers=alarms", _login(base, "leader-B"))
    try:
        for s in (leader_a, leader_b):
            assert s.status == 200
            s.next(kind="ready")
        sent = datetime.now(UTC) - timedelta(minutes=1)
        r = httpx.post(f"{base}/readings", headers=op, json={"readings": [{
            "site_id": sites["T-A1"], "metric": "temperature", "value": 75, "unit": "°C",
            "observed_at": sent.isoformat().replace("+00:00", "Z")}]})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        raised = leader_a.next(timeout=5)
        assert (raised.data["layer"], raised.data["op"], raised.data["township_code"]) == ("alarms", "insert", "A")
        assert raised.data["properties"]["status"] == "raised" and raised.data["properties"]["level"] == "critical"
        r = httpx.post(f"{base}/alarms/{raised.data['id']}/actions/ack", json={"note": "seen"},
                       headers=_login(base, "leader-A"))
        assert r.status_code == 200, r.text
        acked = leader_a.next(timeout=5)
        assert (acked.data["id"], acked.data["op"]) == (raised.data["id"], "update")
        assert acked.data["properties"]["status"] == "acknowledged"
        # The sensor says nothing more; the clock (the alarm-clock job's run, at a time the test chooses) does.
        store = app.state.store
        alarm_eval.check_clock(store, at=sent + timedelta(minutes=30))  # watches T-B1 from now on
        assert leader_a.drain(0.5) == []
        alarm_eval.check_clock(store, at=sent + timedelta(hours=2, minutes=1))
        offline = leader_a.next(timeout=5)
        assert offline.data["op"] == "insert" and offline.data["properties"]["status"] == "raised"
        alarm = httpx.get(f"{base}/collections/alarms/items/{offline.data['id']}", headers=op).json()
        assert alarm["properties"]["alarm_kind"] == "site_offline" and alarm["properties"]["site_id"] == sites["T-A1"]
        assert [e for e in leader_b.drain(0.5) if e.event == "change"] == []  # nothing of township A, ever
        alarm_eval.check_clock(store, at=sent + timedelta(hours=2, minutes=31))
        barn = leader_b.next(timeout=5)
        assert barn.data["township_code"] == "B"
    finally:
        leader_a.close()
        leader_b.close()
