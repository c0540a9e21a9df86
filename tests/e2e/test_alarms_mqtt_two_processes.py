"""Issue 11's done-when, end to end on both stores: readings published over MQTT to a real Mosquitto cross a
threshold; server process A runs the MQTT consumer job and stores them; a second server process B serves
/stream; the leader of the site's township receives the alarm on B and the leader of another township
receives nothing of it (checked against a sentinel alarm of his own township, raised after it: the change log
is ordered, so whatever of township A could reach him would have come before the sentinel)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from layers import alarm_rules
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import server_process
from tests.e2e.sse import SSEClient
from tests.mqtt_broker import PrivateBroker, Publisher, wait_for

pytestmark = pytest.mark.e2e
SECRET = "alarms-mqtt-two-processes-secret-32-bytes"


def _fill(store) -> None:
    county.fill(store)
    alarm_rules.seed_defaults(store)
    store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "S-A1", "name": "old house", "kind": "smoke"}),
        Feature(None, Point(100.8, 33.2), {"site_code": "S-B1", "name": "barn", "kind": "smoke"})],
        Scope.everything())


@pytest.fixture(scope="module", params=STORE_KINDS)
def county_pair(request, catalog, tmp_path_factory, fresh_postgis_url):
    """Mosquitto, and two server processes on one database: A consumes MQTT (jobs on), B only serves."""
    folder = tmp_path_factory.mktemp(f"mqtt-pair-{request.param}")
    db = filled_database(request.param, catalog, folder, fresh_postgis_url, _fill)
    broker = PrivateBroker(folder).start()
    env = {"ONEMAP_SECRET": SECRET, "ONEMAP_STREAM_HEARTBEAT": "0.3"}
    try:
        with (server_process(db, log=folder / "a.log", env={**env, "ONEMAP_JOBS": "1",
                                                              "ONEMAP_MQTT_URL": broker.url}) as base_a,
              server_process(db, log=folder / "b.log", env={**env, "ONEMAP_JOBS": "0"}) as base_b):
            yield broker, base_a, base_b
    finally:
        broker.stop()


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_an_mqtt_reading_past_the_limit_alarms_its_township_s_leader_on_another_process_and_no_one_else(
        county_pair):
    broker, a, b = county_pair
    op = _login(b, "operator")
    sites = {f["properties"]["site_code"]: f["id"] for f in httpx.get(
        f"{b}/collections/monitoring_sites/items", headers=op).json()["features"]}
    device = Publisher(broker.port)
    leader_a = SSEClient(f"{b}/stream?layers=alarms", _login(b, "leader-A"))
    leader_b = SSEClient(f"{b}/stream?layers=alarms", _login(b, "leader-B"))
    try:
        for s in (leader_a, leader_b):
            assert s.status == 200
            s.next(kind="ready")
        # A subscribes once its job has run: until then nothing published is for it. Probe with a reading in
        # a wrong unit until B shows it refused (what A stored, B reads: one database).
        probe = f"probe-{uuid.uuid4().hex[:6]}"

        def refused() -> bool:
            r = httpx.get(f"{b}/readings/rejected", headers=op)
            assert r.status_code == 200, r.text
            return any(probe in str(row.get("reading")) for row in r.json()["latest"])

        def probed() -> bool:
            device.publish(f"onemap/sites/{sites['S-A1']}/readings", {
                "metric": "smoke_density", "value": 0.01, "unit": probe, "observed_at": _stamp(datetime.now(UTC))})
            return refused() or (time.sleep(0.5) or refused())

        wait_for(probed, timeout=60, what="the consumer of process A to refuse a probe")
        latest = httpx.get(f"{b}/readings/rejected", headers=op).json()["latest"]
        assert any(row["field"] == "unit" and probe in str(row["reading"]) for row in latest)

        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        device.publish(f"onemap/sites/{sites['S-A1']}/readings", [
            {"metric": "smoke_density", "value": 0.02, "unit": "%obs/m", "observed_at": _stamp(sent)},
            {"metric": "smoke_density", "value": 0.31, "unit": "%obs/m",
             "observed_at": _stamp(sent + timedelta(seconds=10))}])
        raised = leader_a.next(timeout=30)
        assert (raised.data["layer"], raised.data["op"], raised.data["township_code"]) == ("alarms", "insert", "A")
        props = raised.data["properties"]
        assert (props["site_id"], props["status"], props["value"]) == (sites["S-A1"], "raised", 0.31)
        assert props["level"] == "critical"

        # The sentinel: township B's own alarm, published after A's was committed.
        device.publish(f"onemap/sites/{sites['S-B1']}/readings", {
            "metric": "smoke_density", "value": 0.4, "unit": "%obs/m", "observed_at": _stamp(sent)})
        sentinel = leader_b.next(timeout=30)  # his first change: nothing of township A came before it
        assert (sentinel.data["township_code"], sentinel.data["op"]) == ("B", "insert")
        assert sentinel.data["properties"]["site_id"] == sites["S-B1"]
        # and the other way round: A's next reading repeats his alarm; that update is the next thing he gets
        device.publish(f"onemap/sites/{sites['S-A1']}/readings", {
            "metric": "smoke_density", "value": 0.5, "unit": "%obs/m",
            "observed_at": _stamp(sent + timedelta(seconds=20))})
        repeated = leader_a.next(timeout=30)
        assert (repeated.data["id"], repeated.data["op"], repeated.data["township_code"]) == (
            raised.data["id"], "update", "A")
        alarm = httpx.get(f"{b}/collections/alarms/items/{raised.data['id']}", headers=op).json()["properties"]
        assert (alarm["count"], alarm["peak"], alarm["last_value"]) == (2, 0.5, 0.5)

        alarms = httpx.get(f"{b}/collections/alarms/items", headers=_login(b, "leader-B")).json()["features"]
        assert [f["properties"]["site_id"] for f in alarms] == [sites["S-B1"]]
        device.wait_all_acknowledged(timeout=30)
    finally:
        leader_a.close()
        leader_b.close()
        device.close()
