"""A private Mosquitto for tests (its own port, config and persistence in a temporary folder), and a QoS-1
publisher that remembers which messages the broker acknowledged."""

from __future__ import annotations

import faulthandler
import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.e2e.live_server import free_port


class PrivateBroker:
    """Mosquitto on a free port with persistence in `folder`, saved on every change so that a kill -9 keeps
    what it acknowledged; start, kill (-9) and start again on the same port and store."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("mosquitto") is None:  # never a silent skip: scripts/system-deps.sh installs it
            pytest.fail("mosquitto is not installed; run `make system-deps` (scripts/system-deps.sh)")
        self.folder = folder
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to a user who cannot write here
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "autosave_on_changes true\n"
            "max_queued_messages 0\n"
            f"log_dest file {folder}/mosquitto.log\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateBroker:
        """Start (or start again) and wait until it takes connections."""
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()[-1000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def kill(self) -> None:
        """kill -9: no goodbye to clients, no save on the way out."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop it (if it runs)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Publisher:
    """A device: publishes QoS-1 messages with a persistent session and records the ones PUBACKed."""

    def __init__(self, port: int, client_id: str | None = None) -> None:
        self.sent: dict[int, Any] = {}
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"dev-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(0.1, 1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason, props) -> None:
        with self._lock:
            self._acked.add(mid)

    def publish(self, topic: str, payload: Any) -> None:
        """Publish with QoS 1 (a str/bytes as is, anything else as JSON)."""
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=1)  # its PUBACK may come before this returns
        with self._lock:
            self.sent[info.mid] = payload

    def acknowledged(self) -> list[Any]:
        """The payloads the broker has acknowledged."""
        with self._lock:
            return [self.sent[m] for m in self._acked if m in self.sent]

    def wait_all_acknowledged(self, timeout: float = 30) -> None:
        """Until every message sent is acknowledged (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < len(self.sent):
            assert time.monotonic() < deadline, f"{len(self.sent) - len(self.acknowledged())} not acknowledged"
            time.sleep(0.05)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition, timeout: float = 30, what: str = "condition") -> None:
    """Poll `condition()` until true (AssertionError naming `what` after `timeout` s; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            faulthandler.dump_traceback(all_threads=True)  # where the consumer's threads are
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
