"""The server's MQTT consumer through a broker killed (-9) and started again mid-stream, on both stores: every
reading the broker acknowledged to the device is stored exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from api.app import create_app
from api.settings import Settings
from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery
from tests.api import county
from tests.conftest import STORE_KINDS, make_empty_store
from tests.mqtt_broker import PrivateBroker, Publisher, wait_for

pytestmark = pytest.mark.e2e
SECRET = "mqtt-restart-secret-of-at-least-32-bytes"
MESSAGES = 300
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _fill(store):
    county.fill(store)
    store.insert("monitoring_sites", [Feature(None, Point(100.1, 33.1), {
        "site_code": "S-A1", "kind": "smoke", "status": "online"})], Scope.everything())


@pytest.fixture(params=STORE_KINDS)
def database(request, catalog, tmp_path, fresh_postgis_url):
    store = make_empty_store(request.param, catalog, tmp_path, fresh_postgis_url)
    try:
        _fill(store)
    finally:
        store.close()
    return str(tmp_path / "test.gpkg") if request.param == "embedded" else fresh_postgis_url


def _stored(app, site: int) -> Counter:
    page = app.state.store.query("readings", FeatureQuery(
        filter={"op": "=", "args": [{"property": "site_id"}, site]}, limit=10_000, with_geometry=False),
        Scope.everything())
    return Counter(f.properties["observed_at"] for f in page.features)


def test_every_reading_the_broker_acknowledged_is_stored_once_across_a_kill_9_of_the_broker(database, tmp_path):
    broker = PrivateBroker(tmp_path).start()
    settings = Settings(database=database, secret=SECRET, mqtt_url=broker.url, jobs=True)
    device = None
    try:
        with TestClient(create_app(settings)) as client:
            app = client.app
            wait_for(lambda: app.state.mqtt is not None and app.state.mqtt.subscribed, what="the consumer")
            site = app.state.store.query("monitoring_sites", FeatureQuery(limit=1), Scope.everything()).features[0].id
            device = Publisher(broker.port)
            halfway = threading.Event()

            def stream():
                for i in range(MESSAGES):
                    at = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
                    device.publish(f"onemap/sites/{site}/readings", {
                        "metric": "smoke_density", "value": i / 1000, "unit": "%obs/m", "observed_at": at})
                    if i == MESSAGES // 2:
                        halfway.set()
                    threading.Event().wait(0.005)

            publishing = threading.Thread(target=stream)
            publishing.start()
            assert halfway.wait(60)
            broker.kill()
            broker.start()
            publishing.join(120)
            device.wait_all_acknowledged(timeout=60)
            acknowledged = {datetime.fromisoformat(p["observed_at"].replace("Z", "+00:00"))
                            for p in device.acknowledged()}
            assert len(acknowledged) == MESSAGES  # the device sent its unacknowledged ones again
            wait_for(lambda: acknowledged <= set(_stored(app, site)), timeout=60, what="every reading stored")
            stored = _stored(app, site)
            assert set(stored) == acknowledged and set(stored.values()) == {1}
            assert app.state.mqtt.counts.connects >= 2  # it did lose the broker and came back
            assert app.state.mqtt.counts.accepted == MESSAGES
    finally:
        if device is not None:
            device.close()
        broker.stop()
