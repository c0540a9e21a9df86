"""The change log: every committed write is a row with a strictly increasing `seq`, read by every process.

A store appends the rows inside the writing transaction (an outbox), so a change is in the log exactly when
the write is in the tables. Each server process runs one ChangeFeed: it reads the rows it has not seen yet --
woken by PostgreSQL NOTIFY, or by polling the GeoPackage -- and hands them, in seq order, to its consumers
(tile cache, extent cache, live stream). Nothing live lives only in one process's memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shapely.geometry.base import BaseGeometry

from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Layer

if TYPE_CHECKING:
    from geoserver.access import Scope
    from geoserver.features import Feature

log = logging.getLogger("onemap.changes")

BBox = tuple[float, float, float, float]
WORLD: BBox = (-180.0, -90.0, 180.0, 90.0)
# Operations in the log. `load` is a bulk load of a whole layer (no fid); `reset` never is a row: the feed
# and the stream send it when what was missed is no longer in the log.
INSERT, UPDATE, DELETE, LOAD, RESET = "insert", "update", "delete", "load", "reset"


@dataclass(frozen=True)
class Change:
    """One committed write to one feature (or a bulk load of one layer), as the change log keeps it."""

    seq: int
    layer_id: str
    fid: int | None
    op: str
    township_before: str | None = None
    township_after: str | None = None
    before: BBox | None = None
    after: BBox | None = None
    actor: str | None = None
    at: datetime | None = None
    # The few properties a live screen needs (what the layer's low-zoom tiles carry); fetch the feature for more.
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingChange:
    """A change recorded inside a transaction, before it has a seq (the store gives it one at commit)."""

    layer_id: str
    fid: int | None
    op: str
    township_before: str | None = None
    township_after: str | None = None
    before: BBox | None = None
    after: BBox | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def bbox_of(geometry: BaseGeometry | None) -> BBox | None:
    """The lon/lat bounds of a geometry (None for none or empty)."""
    if geometry is None or geometry.is_empty:
        return None
    return tuple(float(v) for v in geometry.bounds)  # type: ignore[return-value]


def live_properties(layer: Layer, properties: dict[str, Any]) -> dict[str, Any]:
    """The properties a change carries: the township and grid, and what the layer's tiles show at every zoom."""
    out: dict[str, Any] = {}
    for p in layer.properties:
        wanted = p.name in (TOWNSHIP_KEY, GRID_KEY) or (p.in_tiles and p.tile_min_zoom is None)
        if wanted and properties.get(p.name) is not None:
            value = properties[p.name]
            out[p.name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def feature_change(layer: Layer, op: str, before: Feature | None, after: Feature | None) -> PendingChange:
    """The change of one feature written from `before` to `after` (None for a create or a delete)."""
    fid = (after or before).id  # type: ignore[union-attr]
    return PendingChange(
        layer.id, None if fid is None else int(fid), op,
        township_before=before.properties.get(TOWNSHIP_KEY) if before else None,
        township_after=after.properties.get(TOWNSHIP_KEY) if after else None,
        before=bbox_of(before.geometry) if before else None,
        after=bbox_of(after.geometry) if after else None,
        properties=live_properties(layer, after.properties) if after else {},
    )


def as_seen_by(change: Change, scope: Scope) -> str | None:
    """The operation a subscriber reading the layer within `scope` should see, or None if none.

    A feature that moves out of the scope arrives as a delete, one that moves in as an insert. A bulk load
    (or a reset) concerns everyone who reads the layer.
    """
    if change.op in (LOAD, RESET):
        return change.op
    # the owner of a feature never changes (a worker's patrol stays his): its properties tell it for both
    was = scope.sees(change.township_before, change.properties)
    now = scope.sees(change.township_after, change.properties)
    if change.op == INSERT:
        return INSERT if now else None
    if change.op == DELETE:
        return DELETE if was else None
    if was and now:
        return change.op
    if was:
        return DELETE
    if now:
        return INSERT
    return None


Consumer = Callable[[Change], None]


class ChangeFeed:
    """One process's reader of the change log: delivers every committed change, in seq order, to consumers.

    Writers in this process call `catch_up()` after they commit, so a process reads its own writes at once;
    a background thread (`start()`) picks up other processes' writes -- woken by the store's `wait_for_changes`
    (PostgreSQL LISTEN; the GeoPackage polls). When the log no longer holds what the feed missed (purged),
    consumers get one `reset` change and should drop everything derived.
    """

    def __init__(self, store: Any, *, poll_seconds: float = 0.5, page: int = 1000) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.page = page
        self.last_seq: int | None = None
        self._consumers: list[Consumer] = []
        self._lock = threading.Lock()  # one reader at a time: changes go out once, in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- consumers ----------------------------------------------------------------------------------------
    def subscribe(self, consumer: Consumer) -> Callable[[], None]:
        """Call `consumer` with every change from now on; returns a function that unsubscribes it."""
        with self._lock:
            if self.last_seq is None:
                self.last_seq = self._latest()
            self._consumers.append(consumer)

        def unsubscribe() -> None:
            with self._lock:
                if consumer in self._consumers:
                    self._consumers.remove(consumer)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """True when anyone consumes the feed (writers skip the catch-up otherwise)."""
        return bool(self._consumers)

    # -- reading -----------------------------------------------------------------------------------------
    def _latest(self) -> int:
        try:
            return self.store.change_bounds()[1]
        except Exception:  # the store is down: start from the beginning of what is there once it is back
            log.warning("change log unreadable; the feed starts from seq 0")
            return 0

    def catch_up(self) -> int:
        """Read and deliver every change after the last one delivered; returns how many were delivered."""
        if not self._consumers:
            return 0
        delivered = 0
        with self._lock:
            if self.last_seq is None:
                self.last_seq = self._latest()
            while True:
                oldest, latest = self.store.change_bounds()
                if latest < self.last_seq or (oldest > self.last_seq + 1 and latest > self.last_seq):
                    # The log was purged past what we saw, or it is another (restored) database: start over.
                    self._deliver([Change(latest, "*", None, RESET)])
                    self.last_seq = latest
                    delivered += 1
                    break
                changes = self.store.changes_since(self.last_seq, self.page)
                if not changes:
                    break
                self._deliver(changes)
                self.last_seq = changes[-1].seq
                delivered += len(changes)
                if len(changes) < self.page:
                    break
        return delivered

    def _deliver(self, changes: Iterable[Change]) -> None:
        consumers = list(self._consumers)
        for change in changes:
            for consumer in consumers:
                try:
                    consumer(change)
                except Exception:  # a consumer must never stop the feed or undo a committed write
                    log.exception("change consumer failed on seq %s (%s)", change.seq, change.layer_id)

    # -- the background reader ---------------------------------------------------------------------------
    def start(self) -> None:
        """Read other processes' changes in a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="onemap-change-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background reader."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.store.wait_for_changes(self.poll_seconds, self._stop)
                if not self._stop.is_set():
                    self.catch_up()
            except Exception as exc:  # the database is away: wait and read again, from where we were
                log.warning("change feed: %s", exc)
                self._stop.wait(min(2.0, self.poll_seconds * 4))
