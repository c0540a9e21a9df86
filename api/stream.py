"""The live stream (GET /stream): change-log entries as Server-Sent Events, scoped per subscriber.

Each process has one StreamHub fed by its ChangeFeed (the feed runs in threads; the hub hands each change to
the subscribers' asyncio queues). A subscriber sees a change only if it may read the layer in the township the
feature was in or is in now (geoserver.changes.as_seen_by); the event id is the change's seq. A reconnect with
`Last-Event-ID` replays what was missed from the change log itself -- whichever process it reaches -- and
then continues live, skipping what the replay already sent; if the log no longer holds it, a `reset` event
tells the client to reload. A change to the subscriber's own account ends its stream with an `end` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from geoserver.access import Principal, Scope
from geoserver.changes import RESET, Change, as_seen_by
from geoserver.store import Store
from geoserver.store.accounts_sql import USERS_LOG

log = logging.getLogger("onemap.stream")
QUEUE_LIMIT = 10_000  # changes waiting for one slow client before it is told to reset
REPLAY_PAGE = 500
SEND_BATCH = 1000  # changes waiting for a client that are sent in one write
TEXTS_KEPT = 4096  # change events a hub keeps encoded, by (seq, op)


@dataclass(eq=False)
class Subscriber:
    """One open stream: what its principal may read of which layers, and its queue of changes."""

    principal: Principal
    scopes: dict[str, Scope]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False

    def event(self, change: Change, texts: dict[tuple[int, str], str] | None = None) -> str | None:
        """The SSE text of a change as this subscriber may see it, or None if it may not; `texts` keeps the
        texts made, by (seq, op), for the other subscribers of the same change log (one process's hub)."""
        if change.op == RESET:
            return _sse(change.seq, "reset", {"seq": change.seq})
        scope = self.scopes.get(change.layer_id)
        if scope is None:
            return None
        op = as_seen_by(change, scope)
        if op is None:
            return None
        key = (change.seq, op)
        text = texts.get(key) if texts is not None else None
        if text is None:  # the same for every subscriber who sees the change so: encoded once
            body = {"seq": change.seq, "layer": change.layer_id, "id": change.fid, "op": op,
                    "at": change.at.isoformat().replace("+00:00", "Z") if change.at else None}
            if op in ("insert", "update"):
                body["properties"] = change.properties
                body["township_code"] = change.township_after
                body["bbox"] = list(change.after) if change.after else None
            text = _sse(change.seq, "change", body)
            if texts is not None:
                if len(texts) >= TEXTS_KEPT:
                    texts.clear()
                texts[key] = text
        return text

    def wants(self, change: Change) -> bool:
        """Whether the change may concern this stream at all (its layers, a reset, an account change)."""
        return change.layer_id in self.scopes or change.op == RESET or change.layer_id == USERS_LOG


def _sse(seq: int, event: str, data: dict) -> str:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


class StreamHub:
    """This process's fan-out of the change feed to its stream subscribers."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, *, heartbeat: float = 15.0) -> None:
        self.store = store
        self.loop = loop
        self.heartbeat = heartbeat
        self._subscribers: set[Subscriber] = set()
        self._texts: dict[tuple[int, str], str] = {}  # used in the event loop's thread only
        self._unsubscribe = store.changes.subscribe(self._on_change)

    def close(self) -> None:
        """Stop receiving changes."""
        self._unsubscribe()

    @property
    def subscribers(self) -> int:
        """How many streams are open in this process."""
        return len(self._subscribers)

    def _on_change(self, change: Change) -> None:
        # Called in a feed or writer thread: hand the change to the event loop (once, not once per subscriber).
        self.loop.call_soon_threadsafe(self._fan_out, change)

    def _fan_out(self, change: Change) -> None:
        for sub in list(self._subscribers):
            if sub.wants(change):
                _offer(sub, change)

    async def events(self, sub: Subscriber, last_event_id: int | None) -> AsyncIterator[str]:
        """The stream's text: a `ready` event, the replay after `last_event_id`, then live changes."""
        self._subscribers.add(sub)  # before reading the log: nothing committed from now on can be missed
        try:
            oldest, latest = await run_in_threadpool(self.store.change_bounds)
            yield "retry: 2000\n\n"
            sent = latest
            if last_event_id is not None:
                missed_purged = oldest > last_event_id + 1 and latest >= oldest
                if last_event_id > latest or missed_purged:
                    yield _sse(latest, "reset", {"seq": latest, "reason": "Last-Event-ID is no longer in the change log"})
                else:
                    sent = last_event_id
                    async for text, seq in self._replay(sub, last_event_id, latest):
                        sent = seq
                        if text:
                            yield text
                    sent = max(sent, latest)
            yield _sse(sent, "ready", {"seq": sent})
            while True:
                if sub.overflowed:
                    sub.overflowed = False
                    _, latest = await run_in_threadpool(self.store.change_bounds)
                    sent = latest
                    yield _sse(latest, "reset", {"seq": latest, "reason": "the client fell too far behind"})
                if sub.queue.empty():
                    try:
                        first = await asyncio.wait_for(sub.queue.get(), self.heartbeat)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                else:
                    first = sub.queue.get_nowait()
                # What has queued up meanwhile goes out in one write: a client behind catches up in few sends.
                changes = [first]
                while len(changes) < SEND_BATCH and not sub.queue.empty():
                    changes.append(sub.queue.get_nowait())
                texts: list[str] = []
                for change in changes:
                    if change.seq <= sent and change.op != RESET:
                        continue  # the replay already covered it
                    if change.layer_id == USERS_LOG and change.properties.get("username") == sub.principal.username:
                        # The account changed (disabled, re-granted, new password): what this stream may show
                        # was decided under the old account, so it ends; a reconnect needs credentials that
                        # still stand.
                        texts.append(_sse(change.seq, "end", {"seq": change.seq,
                                                              "reason": "the account changed; log in again"}))
                        yield "".join(texts)
                        return
                    sent = max(sent, change.seq)
                    text = sub.event(change, self._texts)
                    if text:
                        texts.append(text)
                if texts:
                    yield "".join(texts)
        finally:
            self._subscribers.discard(sub)

    async def _replay(self, sub: Subscriber, after: int, upto: int) -> AsyncIterator[tuple[str | None, int]]:
        seq = after
        while seq < upto:
            page = await run_in_threadpool(self.store.changes_since, seq, REPLAY_PAGE)
            if not page:
                return
            for change in page:
                if change.seq > upto:
                    return
                seq = change.seq
                yield sub.event(change), seq
            if len(page) < REPLAY_PAGE:
                return


def _offer(sub: Subscriber, change: Change) -> None:
    try:
        sub.queue.put_nowait(change)
    except asyncio.QueueFull:
        sub.overflowed = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
