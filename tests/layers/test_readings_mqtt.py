"""The MQTT readings consumer against a real, private Mosquitto, on both stores: readings stored once with the
topic's site, every bad message refused with its reason and counted (the consumer goes on), and a message
received but not acknowledged before a crash comes again and is stored once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.errors import BadInput
from geoserver.features import Feature, FeatureQuery
from layers import readings_mqtt
from layers.readings_mqtt import Broker, ReadingsConsumer
from tests.api import county
from tests.conftest import make_empty_store
from tests.mqtt_broker import PrivateBroker, Publisher, wait_for

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _at(i: int) -> str:
    return (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = PrivateBroker(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


@pytest.fixture(params=["embedded", "postgis"])
def store(request, catalog, tmp_path, fresh_postgis_url):
    s = make_empty_store(request.param, catalog, tmp_path, fresh_postgis_url)
    county.fill(s)
    yield s
    s.close()


@pytest.fixture
def sites(store):
    made = store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "S-A1", "kind": "smoke", "status": "online"}),
        Feature(None, Point(100.4, 33.2), {"site_code": "W-A1", "kind": "water_quality", "status": "online"})],
        Scope.everything())
    return {f.properties["site_code"]: f.id for f in made}


def _consumer(store, catalog, broker, client_id):
    return ReadingsConsumer(store, catalog, Broker.from_url(broker.url, client_id=client_id))


def _stored(store) -> list[tuple[int, str, float, datetime]]:
    page = store.query("readings", FeatureQuery(limit=10_000, with_geometry=False), Scope.everything())
    return sorted((f.properties["site_id"], f.properties["metric"], f.properties["value"],
                   f.properties["observed_at"]) for f in page.features)


def test_readings_are_stored_with_the_topic_s_site_and_bad_messages_are_refused_with_their_reason(
        store, catalog, broker, sites, request):
    consumer = _consumer(store, catalog, broker, f"onemap-test-{request.node.callspec.id}")
    consumer.ensure_running()
    device = Publisher(broker.port)
    try:
        wait_for(lambda: consumer.subscribed, what="the consumer to connect")
        smoke, water = sites["S-A1"], sites["W-A1"]
        device.publish(f"onemap/sites/{smoke}/readings",
                       {"metric": "smoke_density", "value": 0.02, "unit": "%obs/m", "observed_at": _at(0)})
        device.publish(f"onemap/sites/{water}/readings", [
            {"metric": "ph", "value": 7.1, "unit": "pH", "observed_at": _at(0)},
            {"metric": "turbidity", "value": 3, "unit": "NTU", "observed_at": _at(0)},
            {"metric": "ph", "value": 7.2, "unit": "°C", "observed_at": _at(1)}])  # wrong unit
        device.publish(f"onemap/sites/{smoke}/readings", b"{not json")
        device.publish("onemap/sites/abc/readings", {"metric": "smoke_density", "value": 1, "observed_at": _at(2)})
        device.publish(f"onemap/sites/{smoke}/readings", b"[" + b"1," * 200_000 + b"1]")  # 400 kB
        device.publish("onemap/sites/999999/readings",
                       {"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": _at(3)})
        device.publish(f"onemap/sites/{smoke}/readings", "[]")
        device.publish(f"onemap/sites/{smoke}/readings",
                       {"site_id": water, "metric": "smoke_density", "value": 1, "observed_at": _at(4)})
        device.publish(f"onemap/sites/{smoke}/readings",
                       {"metric": "smoke_density", "value": "high", "unit": "%obs/m", "observed_at": _at(5)})
        # After all that, the consumer still stores.
        device.publish(f"onemap/sites/{smoke}/readings",
                       {"metric": "smoke_density", "value": 0.03, "unit": "%obs/m", "observed_at": _at(6)})
        device.wait_all_acknowledged()
        wait_for(lambda: consumer.counts.messages >= 10, what="ten messages stored")
        assert consumer.counts.messages == 10, consumer.counts
        assert consumer.running
        assert [(s, m, v) for s, m, v, _ in _stored(store)] == [
            (smoke, "smoke_density", 0.02), (smoke, "smoke_density", 0.03), (water, "ph", 7.1),
            (water, "turbidity", 3.0)]
        refused = store.rows("rejected_readings", order_by=("id",))
        assert {r["source"] for r in refused} == {"mqtt"} and {r["actor"] for r in refused} == {"mqtt"}
        reasons = [(r["field"], r["site_id"], r["reason"]) for r in refused]
        assert [(f, s) for f, s, _ in reasons] == [
            ("unit", water), ("payload", smoke), ("topic", None), ("payload", smoke), ("site_id", 999999),
            ("payload", smoke), ("site_id", smoke), ("value", smoke)]
        assert "wrong unit" in reasons[0][2] and "not JSON" in reasons[1][2]
        assert "onemap/sites/{site_id}/readings" in reasons[2][2] and "larger than" in reasons[3][2]
        assert "unknown site 999999" in reasons[4][2] and "differs from the topic" in reasons[6][2]
        assert consumer.counts.accepted == 4 and consumer.counts.rejected == 8
    finally:
        device.close()
        consumer.stop()


def test_a_message_stored_but_not_acknowledged_before_a_crash_comes_again_and_is_stored_once(
        store, catalog, broker, sites, request, monkeypatch):
    client_id = f"onemap-crash-{request.node.callspec.id}"
    smoke = sites["S-A1"]
    first = _consumer(store, catalog, broker, client_id)
    # The process dies after the commit and before the PUBACK: nothing is acknowledged.
    monkeypatch.setattr(first, "_ack", lambda batch: None)
    first.ensure_running()
    device = Publisher(broker.port)
    try:
        wait_for(lambda: first.subscribed, what="the first consumer to connect")
        for i in range(20):
            device.publish(f"onemap/sites/{smoke}/readings", [
                {"metric": "smoke_density", "value": i / 100, "unit": "%obs/m", "observed_at": _at(10 + i)}])
        device.wait_all_acknowledged()
        wait_for(lambda: first.counts.messages >= 20, what=f"twenty messages stored: {first.counts}")
        first.stop()
        # The county's next consumer resumes the same session: the broker sends the twenty again.
        second = _consumer(store, catalog, broker, client_id)
        second.ensure_running()
        try:
            wait_for(lambda: second.counts.acknowledged >= 20, what="the twenty sent again, acknowledged")
            assert second.counts.duplicates == 20 and second.counts.accepted == 0
            assert len(_stored(store)) == 20
        finally:
            second.stop()
        # They were acknowledged this time: a third consumer of the session gets nothing.
        third = _consumer(store, catalog, broker, client_id)
        third.ensure_running()
        try:
            wait_for(lambda: third.subscribed, what="the third consumer to connect")
            device.publish(f"onemap/sites/{smoke}/readings", [
                {"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": _at(40)}])
            wait_for(lambda: third.counts.messages >= 1, what="the new message")
            assert (third.counts.messages, third.counts.accepted, third.counts.duplicates) == (1, 1, 0)
        finally:
            third.stop()
    finally:
        device.close()


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://127.0.0.1", ("127.0.0.1", 1883, None, None, False)),
    ("mqtt://dev%40county:p%3Ass@broker.example:1884", ("broker.example", 1884, "dev@county", "p:ss", False)),
    ("mqtts://broker.example", ("broker.example", 8883, None, None, True)),
])
def test_the_broker_url_names_host_port_credentials_and_tls(url, expected):
    b = Broker.from_url(url, client_id="onemap-county")
    assert (b.host, b.port, b.username, b.password, b.tls) == expected


@pytest.mark.parametrize("url", ["http://broker:1883", "mqtt://", "mqtt://host:99999", "broker:1883"])
def test_a_bad_broker_url_stops_the_start_naming_the_setting(url):
    with pytest.raises(BadInput) as err:
        Broker.from_url(url, client_id="onemap-county")
    assert err.value.parameter == "ONEMAP_MQTT_URL"


def test_the_county_s_client_id_is_the_same_in_every_process():
    assert readings_mqtt.default_client_id("postgresql://u:p@db:5432/county_x") == "onemap-county_x"
    assert readings_mqtt.default_client_id("/srv/data/county.gpkg") == "onemap-county"
