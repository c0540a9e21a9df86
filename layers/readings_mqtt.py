"""Readings in over MQTT (数据接入): one consumer per county, subscribed with QoS 1 to
`onemap/sites/{site_id}/readings` (a payload is one `{"metric", "value", "unit", "observed_at"}` or an array of
them), storing through `layers.ingest` with source `mqtt`.

Nothing acknowledged is lost: the session is persistent (a fixed client id, clean start off, a session expiry)
and a message is acknowledged (PUBACK) only after its readings, or the reasons they were refused, are
committed. A crash in between means the broker sends it again, and ingest's natural key makes that a
duplicate. The broker hands over at most RECEIVE_MAXIMUM unacknowledged messages, so the consumer takes
messages at the pace it commits and the rest wait at the broker. A bad message is refused with its reason
into rejected_readings and acknowledged; it never stops the consumer.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from geoserver.access import Principal
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, StoreUnavailable
from geoserver.jobs import Job
from geoserver.store import Store
from layers import ingest

log = logging.getLogger("onemap.mqtt")

TOPIC_FILTER = "onemap/sites/+/readings"
TOPIC = re.compile(r"onemap/sites/([^/]*)/readings")
SITE_ID = re.compile(r"[0-9]{1,19}")
MAX_PAYLOAD = 256 * 1024  # a message of 1,000 readings is ~100 kB
# QoS-1 messages the broker may have sent us without our PUBACK: with 200, a batch committing in 1 s on a
# loaded machine capped the consumer at ~200 readings/s; 1,000 lets a batch grow to ingest.MAX_BATCH readings.
RECEIVE_MAXIMUM = 1000
BATCH_READINGS = ingest.MAX_BATCH  # readings stored per transaction, at most
SESSION_EXPIRY = 7 * 24 * 3600  # seconds the broker keeps our session (and queues for it) while we are away
RETRY_SECONDS = 1.0  # wait before storing again while the store is away
STALLED_SECONDS = 10.0  # without a connection for this long, the client is made afresh
# The consumer stores as a machine account of the whole county; which device may publish to which site's
# topic is the broker's ACL.
PRINCIPAL = Principal("mqtt", "operator")
JOB = "mqtt-readings"


@dataclass(frozen=True)
class Broker:
    """Where the broker is and who we are there (from ONEMAP_MQTT_URL)."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, *, client_id: str, ca_file: str | None = None) -> Broker:
        """`mqtt://user:pass@host:1883` or `mqtts://…` (TLS, port 8883 by default); BadInput naming the setting."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise BadInput(f"ONEMAP_MQTT_URL must look like mqtt://user:pass@host:1883 or mqtts://host:8883; "
                           f"got {parts.scheme or 'no'} scheme", parameter="ONEMAP_MQTT_URL")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise BadInput("ONEMAP_MQTT_URL has a bad port", parameter="ONEMAP_MQTT_URL") from None
        if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", client_id):
            raise BadInput("ONEMAP_MQTT_CLIENT_ID: 1-64 letters, digits, '_', '.' or '-'",
                           parameter="ONEMAP_MQTT_CLIENT_ID")
        return cls(parts.hostname, port, client_id,
                   unquote(parts.username) if parts.username is not None else None,
                   unquote(parts.password) if parts.password is not None else None,
                   parts.scheme == "mqtts", ca_file)


def default_client_id(database: str) -> str:
    """The county's client id: `onemap-` and the database's name, the same in every process of the county."""
    name = urlsplit(database).path.rsplit("/", 1)[-1] if "://" in database else database.rsplit("/", 1)[-1]
    name = re.sub(r"[^0-9A-Za-z_.-]", "-", name.removesuffix(".gpkg"))[:50] or "county"
    return f"onemap-{name}"


def items_of(topic: str, payload: bytes) -> list[Any]:
    """The batch items of one message: readings carrying the topic's site id, or one `ingest.Refused`."""
    match = TOPIC.fullmatch(topic)
    head = payload[:ingest.MAX_KEPT_JSON].decode("utf-8", "replace")
    if not match or not SITE_ID.fullmatch(match.group(1)) or not 0 < int(match.group(1)) < 2**63:
        return [ingest.Refused({"topic": topic[:200], "payload": head},
                               f"topic {topic[:200]!r} is not onemap/sites/{{site_id}}/readings with a numeric "
                               "site id", "topic")]
    site = int(match.group(1))
    if len(payload) > MAX_PAYLOAD:
        return [ingest.Refused({"payload": head}, f"message of {len(payload)} bytes is larger than the "
                               f"{MAX_PAYLOAD // 1024} kB limit", "payload", site)]
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return [ingest.Refused({"payload": head}, f"payload is not JSON: {str(exc)[:200]}", "payload", site)]
    readings = body if isinstance(body, list) else [body]
    if not readings or not all(isinstance(r, dict) for r in readings):
        return [ingest.Refused({"payload": head}, "payload must be one reading object or a non-empty array of "
                               "them", "payload", site)]
    if len(readings) > ingest.MAX_BATCH:
        return [ingest.Refused({"payload": head}, f"at most {ingest.MAX_BATCH} readings per message; got "
                               f"{len(readings)}", "payload", site)]
    out: list[Any] = []
    for reading in readings:
        if "site_id" in reading and reading["site_id"] != site:
            out.append(ingest.Refused(reading, f"site_id {str(reading['site_id'])[:32]} differs from the "
                                      f"topic's site {site}", "site_id", site))
        else:
            out.append({**reading, "site_id": site})
    return out


@dataclass
class _Message:
    generation: int
    mid: int
    qos: int
    items: list[Any]


@dataclass
class Counts:
    """What the consumer has done since it started (per process)."""

    messages: int = 0
    acknowledged: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    connects: int = 0
    store_failures: int = 0


class ReadingsConsumer:
    """Consumes the readings topic into the store; started and stopped by its job (`job()`) under a lease."""

    def __init__(self, store: Store, catalog: Catalog, broker: Broker, *,
                 on_stored: Callable[[ingest.Report], None] | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.broker = broker
        self.on_stored = on_stored
        self.counts = Counts()
        self._lock = threading.Lock()  # the client's state, shared with paho's callbacks
        self._life = threading.Lock()  # one start or stop at a time
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._generation = 0
        self._connected = False
        self._since = 0.0  # when the client last started, connected or lost the broker
        self._subscribed = -1  # the connection (generation) the broker confirmed our subscription on

    # -- the job --------------------------------------------------------------------------------------------
    def job(self) -> Job:
        """The background job: while this process holds the lease, the consumer runs; losing it stops it."""
        return Job(JOB, every=2.0, lease=15.0, run=lambda store: self.ensure_running(), lost=self.stop)

    @property
    def running(self) -> bool:
        """True while a client and a worker are up in this process."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def connected(self) -> bool:
        """True while connected to the broker."""
        return self._connected

    @property
    def subscribed(self) -> bool:
        """True once the broker has confirmed the subscription on the current connection."""
        return self._connected and self._subscribed == self._generation

    def ensure_running(self) -> str | None:
        """Start the client and the worker unless they run; make the client afresh if it stays disconnected."""
        if self.running and not self._connected and time.monotonic() - self._since > STALLED_SECONDS:
            log.warning("MQTT: no connection to %s:%d for %.0f s; starting the client afresh", self.broker.host,
                        self.broker.port, time.monotonic() - self._since)
            self.stop()
        with self._life:
            if self.running:
                return None
            self._since = time.monotonic()
            self._stop.clear()
            self._inbox = queue.Queue()
            client = self._new_client()
            with self._lock:
                self._client = client
            client.connect_async(self.broker.host, self.broker.port, keepalive=30, clean_start=False,
                                 properties=self._connect_properties())
            client.loop_start()
            self._worker = threading.Thread(target=self._work, name="onemap-mqtt", daemon=True)
            self._worker.start()
        return f"consuming {TOPIC_FILTER} from {self.broker.host}:{self.broker.port} as {self.broker.client_id}"

    def stop(self) -> None:
        """Disconnect and stop the worker; what was received and not acknowledged, the broker sends again."""
        with self._life:
            with self._lock:
                client, worker = self._client, self._worker
                if client is None and worker is None:
                    return
                self._stop.set()
                self._client = self._worker = None
                self._connected = False
                self._generation += 1  # nothing received so far is acknowledged any more
            # Outside the state lock: paho's callbacks take it while loop_stop() waits for them.
            if client is not None:
                client.disconnect()
                client.loop_stop()
            if worker is not None:
                worker.join(timeout=30)

    # -- the client -----------------------------------------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.broker.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        client.enable_logger(logging.getLogger("onemap.mqtt.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        return props

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%d refused us: %s", self.broker.host, self.broker.port, reason)
            return
        with self._lock:
            if client is not self._client:
                return
            self._generation += 1
            self._connected = True
            self._since = time.monotonic()
        self.counts.connects += 1
        # Subscribing again is harmless when the session kept the subscription, and needed when the broker
        # lost it; retained messages only on a new subscription (a retained reading is a duplicate anyway).
        client.subscribe(TOPIC_FILTER, options=SubscribeOptions(qos=1, retainHandling=1))
        log.info("MQTT: connected to %s:%d as %s (session %s)", self.broker.host, self.broker.port,
                 self.broker.client_id, "resumed" if flags.session_present else "new")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT: the broker refused our subscription to %s: %s", TOPIC_FILTER, reasons)
            return
        with self._lock:
            if client is self._client:
                self._subscribed = self._generation

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._lock:
            if client is self._client:
                self._connected = False
                self._since = time.monotonic()
        if not self._stop.is_set():
            log.warning("MQTT: lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # The paho network thread: parse and hand over, never block (the broker bounds what is in flight),
        # never raise (an exception here would end paho's loop).
        try:
            items = items_of(message.topic, message.payload)
        except Exception as exc:  # a bug, not the device's fault: still refused with a reason, never lost
            log.exception("MQTT: a message on %r could not be read", message.topic[:200])
            items = [ingest.Refused({"topic": message.topic[:200]}, f"could not be read: {type(exc).__name__}",
                                    "payload")]
        self._inbox.put(_Message(self._generation, message.mid, message.qos, items))

    # -- the worker -----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            batch, size = [first], len(first.items)
            while size < BATCH_READINGS:  # what has come meanwhile joins this transaction
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                batch.append(more)
                size += len(more.items)
            if self._store(batch):
                self._ack(batch)

    def _store(self, batch: list[_Message]) -> bool:
        """Commit a batch (True), retrying while the store is away. A batch that fails otherwise is stored
        (and acknowledged) message by message; a message that still fails is refused with the error."""
        items = [item for m in batch for item in m.items]
        refusing = False
        while not self._stop.is_set():
            try:
                report = ingest.ingest(self.store, self.catalog, PRINCIPAL, items, source="mqtt")
            except StoreUnavailable as exc:
                self.counts.store_failures += 1
                log.warning("MQTT: the store is away (%s); storing again in %.0f s", exc, RETRY_SECONDS)
                self._stop.wait(RETRY_SECONDS)
                continue
            except Exception as exc:
                self.counts.store_failures += 1
                if len(batch) > 1:
                    log.warning("MQTT: a batch of %d messages failed (%s); storing them one by one",
                                len(batch), exc)
                    for m in batch:
                        if self._store([m]):
                            self._ack([m])
                    return False
                if refusing:  # not even its refusal can be stored: left to the broker's next delivery
                    log.exception("MQTT: message %d could neither be stored nor refused", batch[0].mid)
                    return False
                log.exception("MQTT: message %d could not be stored; refusing it", batch[0].mid)
                refusing = True
                items = [ingest.Refused({"readings": len(items)}, f"could not be stored: {type(exc).__name__}: "
                                        f"{str(exc)[:300]}", "payload")]
                continue
            self.counts.messages += len(batch)
            self.counts.batches += 1
            self.counts.accepted += report.accepted
            self.counts.rejected += report.rejected
            self.counts.duplicates += report.duplicates
            if self.on_stored is not None:
                self.on_stored(report)
            return True
        return False

    def _ack(self, batch: list[_Message]) -> None:
        """PUBACK what was committed, if it came on the current connection (an older connection's messages
        come again after the reconnect: duplicates then, acknowledged then)."""
        with self._lock:
            client, generation, connected = self._client, self._generation, self._connected
        if client is None or not connected:
            return
        for m in batch:
            if m.generation == generation:
                if m.qos > 0:
                    client.ack(m.mid, m.qos)
                self.counts.acknowledged += 1
