"""A Server-Sent Events client for tests: reads a stream in a thread and hands out its events one by one."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Event:
    """One SSE event as a browser's EventSource would see it."""

    id: str | None
    event: str
    data: dict

    @property
    def seq(self) -> int:
        """The change-log seq the event id carries."""
        return int(self.id) if self.id is not None else -1


class SSEClient:
    """Opens `url` and collects its events; `next()` waits for one, `close()` drops the connection."""

    def __init__(self, url: str, headers: dict | None = None) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream", **(headers or {})}
        self.events: queue.Queue[Event] = queue.Queue()
        self.status: int | None = None
        self.comments = 0
        self._opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._opened.wait(10):
            raise TimeoutError(f"no answer from {url}")

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments += 1
                    elif not line:
                        if "data" in fields:
                            self.events.put(Event(fields.get("id"), fields.get("event", "message"),
                                                  json.loads(fields["data"])))
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            self._opened.set()

    def next(self, timeout: float = 3.0, kind: str | None = "change") -> Event:
        """The next event (of `kind`, skipping others); TimeoutError if none arrives in time."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no {kind or ''} event within {timeout} s") from None
            if kind is None or event.event == kind:
                return event

    def drain(self, wait: float = 0.5) -> list[Event]:
        """Every event that arrives within `wait` seconds of the last one."""
        out = []
        while True:
            try:
                out.append(self.events.get(timeout=wait))
            except queue.Empty:
                return out

    def close(self) -> None:
        """Drop the connection."""
        self._client.close()
        self._thread.join(timeout=5)
