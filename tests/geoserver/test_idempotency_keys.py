"""The idempotency-key table of both stores: atomic claims, replayed responses, releases, leases, purges."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from geoserver.errors import Conflict
from geoserver.idempotency import KeyReused, request_hash, run_once
from geoserver.store import IdempotencyRecord, open_store

EP = "POST /collections/events/items"


def _record(key: str = "k1", owner: str = "worker-1", fingerprint: str = "h1") -> IdempotencyRecord:
    return IdempotencyRecord(owner, EP, key, fingerprint)


def test_a_key_is_claimed_once_then_held_then_answered(empty_store):
    assert empty_store.claim_idempotency_key(_record(), 60) is None
    held = empty_store.claim_idempotency_key(_record(), 60)
    assert held is not None and held.request_hash == "h1" and held.response is None
    empty_store.finish_idempotency_key("worker-1", EP, "k1", {"status": 201, "body": {"id": 7, "名": "事件"}})
    done = empty_store.claim_idempotency_key(_record(), 60)
    assert done is not None and done.response == {"status": 201, "body": {"id": 7, "名": "事件"}}
    assert empty_store.claim_idempotency_key(_record(owner="worker-2"), 60) is None  # another owner's key


def test_a_released_claim_can_be_claimed_again_but_a_finished_one_stays(empty_store):
    empty_store.claim_idempotency_key(_record(), 60)
    empty_store.release_idempotency_key("worker-1", EP, "k1")
    assert empty_store.claim_idempotency_key(_record(), 60) is None
    empty_store.finish_idempotency_key("worker-1", EP, "k1", {"ok": True})
    empty_store.release_idempotency_key("worker-1", EP, "k1")
    assert empty_store.claim_idempotency_key(_record(), 60).response == {"ok": True}


def test_an_abandoned_claim_is_taken_over_after_its_lease(empty_store):
    empty_store.claim_idempotency_key(_record(fingerprint="old"), 60)
    time.sleep(0.05)
    assert empty_store.claim_idempotency_key(_record(fingerprint="new"), 0.01) is None
    assert empty_store.claim_idempotency_key(_record(), 60).request_hash == "new"


def test_purge_forgets_old_keys(empty_store):
    empty_store.claim_idempotency_key(_record(), 60)
    assert empty_store.purge_idempotency_keys(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert empty_store.purge_idempotency_keys(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert empty_store.claim_idempotency_key(_record(), 60) is None


def test_run_once_replays_refuses_another_request_and_reruns_after_a_failure(empty_store):
    calls = []

    def act():
        calls.append(1)
        return {"id": len(calls)}

    fp = request_hash({"title": "a"})
    assert run_once(empty_store, "u", EP, "k", fp, act) == ({"id": 1}, False)
    assert run_once(empty_store, "u", EP, "k", fp, act) == ({"id": 1}, True)
    with pytest.raises(KeyReused):
        run_once(empty_store, "u", EP, "k", request_hash({"title": "b"}), act)

    def fail():
        raise ValueError("database said no")

    with pytest.raises(ValueError):
        run_once(empty_store, "u", EP, "k2", fp, fail)
    assert run_once(empty_store, "u", EP, "k2", fp, act) == ({"id": 2}, False)


def test_a_retry_waits_for_the_first_request_and_gives_up_with_409(empty_store):
    empty_store.claim_idempotency_key(_record(fingerprint=request_hash("x")), 60)
    with pytest.raises(Conflict):
        run_once(empty_store, "worker-1", EP, "k1", request_hash("x"), lambda: {}, wait_seconds=0.2)


def test_concurrent_callers_on_separate_store_connections_run_the_action_once(empty_store):
    """Each thread opens its own store on the same database, as separate server processes would."""
    threads = 8
    database = str(empty_store.path) if empty_store.kind == "embedded" else empty_store.url
    calls = []
    start = threading.Barrier(threads)
    answers = []

    def act():
        calls.append(1)
        time.sleep(0.2)  # long enough for every other caller to arrive while this one runs
        return {"id": 42}

    def caller():
        with open_store(database, empty_store.catalog) as store:
            start.wait()
            answers.append(run_once(store, "u", EP, "same", request_hash("body"), act))

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1
    assert sorted(replayed for _, replayed in answers) == [False] + [True] * (threads - 1)
    assert {r["id"] for r, _ in answers} == {42}
