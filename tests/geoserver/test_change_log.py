"""The change log, in both stores: one row per committed write in the writing transaction, in seq order, read
by every process's feed; transactions that join; leases that one holder at a time owns."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.changes import DELETE, INSERT, LOAD, RESET, UPDATE, ChangeFeed
from geoserver.errors import BadInput, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature
from geoserver.store import open_store
from tests.geoserver.contract_county import EAST, EVERYTHING, G4, WEST, WEST_ONLY, event_feature


def _latest(store) -> int:
    return store.change_bounds()[1]


def _since(store, seq):
    return store.changes_since(seq, 10_000)


def test_every_write_appends_one_change_with_townships_and_boxes_before_and_after(store):
    start = _latest(store)
    [created] = store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)
    moved = store.update("events", created.id, Feature(None, Point(100.77, 32.86), {}), EVERYTHING, partial=True)
    store.delete("events", created.id, EVERYTHING)
    changes = _since(store, start)
    assert [c.op for c in changes] == [INSERT, UPDATE, DELETE]
    assert [c.fid for c in changes] == [created.id] * 3
    assert all(c.layer_id == "events" for c in changes)
    assert [c.seq for c in changes] == sorted({c.seq for c in changes})  # strictly increasing
    ins, upd, dele = changes
    assert (ins.township_before, ins.township_after) == (None, WEST)
    assert ins.after == pytest.approx((100.62, 32.82, 100.62, 32.82))
    assert (upd.township_before, upd.township_after) == (WEST, EAST)  # it moved across the border
    assert upd.before == pytest.approx((100.62, 32.82, 100.62, 32.82))
    assert upd.after == pytest.approx((100.77, 32.86, 100.77, 32.86))
    assert upd.properties["grid_code"] == G4 and upd.properties["type"] == "other"
    assert (dele.township_before, dele.township_after, dele.after) == (EAST, None, None)
    assert moved.properties["township_code"] == EAST
    assert all(c.at is not None and c.at.tzinfo is not None for c in changes)


def test_a_bulk_load_is_one_change_of_the_whole_layer(store):
    start = _latest(store)
    store.bulk_load("events", [event_feature(None, 100.62, 32.82), event_feature(None, 100.72, 32.82)])
    [change] = _since(store, start)
    assert (change.layer_id, change.op, change.fid) == ("events", LOAD, None)
    assert change.before == (-180.0, -90.0, 180.0, 90.0)


def test_a_failed_write_leaves_no_change(store):
    start = _latest(store)
    with pytest.raises(Forbidden):
        store.insert("events", [event_feature(None, 100.77, 32.86)], WEST_ONLY)
    with pytest.raises(PreconditionFailed):
        store.update("events", 1, Feature(None, None, {"title": "x"}), EVERYTHING, partial=True,
                     if_match='"stale"')
    with pytest.raises(BadInput):
        store.insert("events", [event_feature(None, 100.62, 32.82), Feature(None, Point(100.6, 32.8), {})],
                     EVERYTHING)
    assert _since(store, start) == []


def test_a_transaction_commits_every_write_and_its_changes_together_or_nothing(store):
    start = _latest(store)
    with pytest.raises(RuntimeError), store.transaction(actor="dispatcher-1"):
        store.insert("events", [event_feature(None, 100.62, 32.82, title="first")], EVERYTHING)
        store.update("events", 1, Feature(None, None, {"title": "renamed"}), EVERYTHING, partial=True)
        raise RuntimeError("the workflow fails half way")
    assert _since(store, start) == []
    assert store.get("events", 1, EVERYTHING).properties["title"] != "renamed"
    with store.transaction(actor="dispatcher-1"):
        [made] = store.insert("events", [event_feature(None, 100.62, 32.82, title="first")], EVERYTHING)
        # A read inside the transaction sees its own write.
        assert store.get("events", made.id, EVERYTHING).properties["title"] == "first"
        store.update("events", 1, Feature(None, None, {"title": "renamed"}), EVERYTHING, partial=True)
    changes = _since(store, start)
    assert [(c.op, c.fid, c.actor) for c in changes] == [(INSERT, made.id, "dispatcher-1"),
                                                          (UPDATE, 1, "dispatcher-1")]


def test_concurrent_writers_get_distinct_increasing_seqs_and_lose_nothing(store):
    start = _latest(store)
    errors = []

    def write(n):
        try:
            for i in range(10):
                store.insert("events", [event_feature(None, 100.62, 32.82, title=f"w{n}-{i}")], EVERYTHING)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    changes = _since(store, start)
    assert len(changes) == 40
    assert len({c.fid for c in changes}) == 40
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)


def test_purge_drops_old_changes_but_keeps_the_newest(store):
    store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)
    oldest, latest = store.change_bounds()
    assert latest > oldest
    assert store.purge_changes(datetime.now(UTC) + timedelta(minutes=1)) == latest - oldest
    assert store.change_bounds() == (latest, latest)


def test_the_feed_delivers_own_writes_at_once_and_another_process_s_within_a_second(store, catalog, tmp_path):
    seen = []
    store.changes.subscribe(seen.append)
    [made] = store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)
    assert [(c.op, c.fid) for c in seen] == [(INSERT, made.id)]  # read-your-writes, no waiting
    # A second store object on the same database stands for another server process.
    other = open_store(_address(store), catalog)
    other.open()
    try:
        remote = []
        other.changes.subscribe(remote.append)
        other.changes.start()
        store.update("events", made.id, Feature(None, None, {"title": "seen elsewhere"}), EVERYTHING, partial=True)
        deadline = time.monotonic() + 1.0
        while not remote and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(c.op, c.fid, c.properties.get("type")) for c in remote] == [(UPDATE, made.id, "other")]
    finally:
        other.changes.stop()
        other.close()


def test_a_feed_that_missed_purged_changes_resets_its_consumers(store):
    seen = []
    feed = ChangeFeed(store)
    feed.subscribe(seen.append)
    for _ in range(3):
        store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)
    store.purge_changes(datetime.now(UTC) + timedelta(minutes=1))  # before this feed read them
    feed.catch_up()
    assert [c.op for c in seen] == [RESET]
    store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)
    feed.catch_up()
    assert [c.op for c in seen] == [RESET, INSERT]


def test_a_lease_has_one_holder_until_it_expires_or_is_released(store):
    assert store.acquire_lease("purge", "process-a", 30)
    assert not store.acquire_lease("purge", "process-b", 30)
    assert store.acquire_lease("purge", "process-a", 30)  # renewal
    store.release_lease("purge", "process-a")
    assert store.acquire_lease("purge", "process-b", 0.2)
    time.sleep(0.4)  # process-b died: its lease runs out
    assert store.acquire_lease("purge", "process-a", 30)


def _address(store) -> str:
    return getattr(store, "url", None) or str(store.path)



def test_update_many_patches_in_order_relocates_a_moved_one_and_logs_each_or_writes_nothing(store):
    first, second = store.insert("events", [event_feature(None, 100.62, 32.82), event_feature(None, 100.63, 32.82)],
                                 EVERYTHING)
    start = _latest(store)
    out = store.update_many("events", [Feature(second.id, None, {"title": "second"}),
                                       Feature(first.id, Point(100.77, 32.86), {"title": "first"})], EVERYTHING)
    assert [(f.id, f.properties["title"], f.properties["township_code"]) for f in out] == [
        (second.id, "second", WEST), (first.id, "first", EAST)]  # the moved one crossed the border
    assert [(c.op, c.fid) for c in _since(store, start)] == [(UPDATE, second.id), (UPDATE, first.id)]
    start = _latest(store)
    with pytest.raises(NotFound):  # first is in the east now: outside WEST_ONLY, so nothing is written
        store.update_many("events", [Feature(second.id, None, {"title": "x"}), Feature(first.id, None, {"title": "y"})],
                          WEST_ONLY)
    assert _since(store, start) == []
    assert store.get("events", second.id, EVERYTHING).properties["title"] == "second"


def test_update_many_of_the_same_columns_sets_each_feature_its_own_values(store):
    a, b, c = store.insert("events", [event_feature(None, 100.62 + i / 100, 32.82) for i in range(3)], EVERYTHING)
    start = _latest(store)
    later = datetime(2024, 5, 1, 8, tzinfo=UTC)
    out = store.update_many("events", [
        Feature(c.id, None, {"escalation_level": 2, "deadline": later, "near_border": True}),
        Feature(a.id, None, {"escalation_level": None, "deadline": None, "near_border": False}),
        Feature(b.id, None, {"escalation_level": 7, "deadline": later, "near_border": None})], EVERYTHING)
    assert [f.id for f in out] == [c.id, a.id, b.id]
    got = {f.id: f.properties for f in out}
    assert [(got[i]["escalation_level"], got[i]["deadline"], got[i]["near_border"]) for i in (a.id, b.id, c.id)] == [
        (None, None, False), (7, later, None), (2, later, True)]
    assert store.get("events", b.id, EVERYTHING).properties["escalation_level"] == 7
    assert store.get("events", b.id, EVERYTHING).properties["title"] == "Reported by test"  # untouched column
    assert [(ch.op, ch.fid) for ch in _since(store, start)] == [(UPDATE, c.id), (UPDATE, a.id), (UPDATE, b.id)]


def test_rows_added_and_updated_in_batches(store):
    store.add_rows("alarm_state", [{"site_id": s, "rule_id": 1, "count": 0, "watched_at": datetime(2026, 1, 1, tzinfo=UTC)}
                                   for s in (1, 2, 3)])
    store.add_rows("alarm_state", [{"site_id": s, "rule_id": 1, "count": 9, "watched_at": datetime(2026, 1, 2, tzinfo=UTC)}
                                   for s in (3, 4)], unless=("site_id", "rule_id"))
    rows = {r["site_id"]: r for r in store.rows("alarm_state")}
    assert {s: r["count"] for s, r in rows.items()} == {1: 0, 2: 0, 3: 0, 4: 9}  # 3 was there: skipped
    store.update_rows_by_id("alarm_state", {rows[1]["id"]: {"count": 5}, rows[4]["id"]: {"count": 6, "last_value": 1.5}})
    assert {r["site_id"]: (r["count"], r["last_value"]) for r in store.rows("alarm_state")} == {
        1: (5, None), 2: (0, None), 3: (0, None), 4: (6, 1.5)}
    later = datetime(2026, 1, 3, 8, tzinfo=UTC)
    store.update_rows_by_id("alarm_state", {  # the same columns for three rows, each its own values
        rows[3]["id"]: {"count": 7, "last_value": 2, "last_at": later},
        rows[1]["id"]: {"count": 8, "last_value": None, "last_at": None},
        rows[2]["id"]: {"count": 1, "last_value": 0.25, "last_at": later}})
    assert {r["site_id"]: (r["count"], r["last_value"], r["last_at"]) for r in store.rows("alarm_state")} == {
        1: (8, None, None), 2: (1, 0.25, later), 3: (7, 2.0, later), 4: (6, 1.5, None)}
