"""Background jobs in both stores: one process at a time runs each job, another takes over when it dies, and
a failing job is retried without stopping anything."""

from __future__ import annotations

import time

from geoserver import jobs
from geoserver.jobs import Job, JobRunner
from geoserver.store import IdempotencyRecord


def test_each_job_runs_in_one_process_at_a_time_and_is_taken_over_when_its_holder_dies(empty_store):
    runs = []

    def job(who):
        return Job("tally", every=0.0, lease=0.5, run=lambda store: runs.append(who))

    a = JobRunner(empty_store, [job("a")], holder="process-a")
    b = JobRunner(empty_store, [job("b")], holder="process-b")
    for _ in range(3):
        a.run_due()
        b.run_due()
    assert runs == ["a", "a", "a"]
    # process-a dies without giving its lease back: b takes the job over once the lease has run out.
    time.sleep(0.7)
    b.run_due()
    a_is_back = a.run_due()
    assert runs[-1] == "b" and a_is_back == []


def test_a_stopped_runner_hands_its_jobs_over_at_once(empty_store):
    runs = []
    a = JobRunner(empty_store, [Job("tally", every=0.0, lease=60, run=lambda s: runs.append("a"))], holder="a")
    b = JobRunner(empty_store, [Job("tally", every=0.0, lease=60, run=lambda s: runs.append("b"))], holder="b")
    a.run_due()
    a.stop()
    b.run_due()
    assert runs == ["a", "b"]


def test_a_job_that_keeps_running_is_told_when_its_process_does_not_hold_the_lease(empty_store):
    events = []

    def job(who):
        return Job("consumer", every=0.0, lease=60, run=lambda s: events.append(f"{who} runs"),
                   lost=lambda: events.append(f"{who} lost"))

    a = JobRunner(empty_store, [job("a")], holder="a")
    b = JobRunner(empty_store, [job("b")], holder="b")
    a.run_due()
    b.run_due()  # a holds it: b must not keep anything running
    a.stop()  # a stops what it runs before giving the lease back
    b.run_due()
    assert events == ["a runs", "b lost", "a lost", "b runs"]


def test_a_failing_job_is_logged_and_retried_and_the_others_still_run(empty_store, caplog):
    calls = {"bad": 0, "good": 0}

    def bad(store):
        calls["bad"] += 1
        if calls["bad"] == 1:
            raise RuntimeError("the disk hiccuped")

    runner = JobRunner(empty_store, [Job("bad", 0.0, bad), Job("good", 0.0, lambda s: calls.update(good=calls["good"] + 1))],
                       holder="p")
    runner.run_due()
    assert runner.jobs[0].last_error == "RuntimeError: the disk hiccuped"
    assert "job bad failed" in caplog.text
    runner.run_due()
    assert calls == {"bad": 2, "good": 2} and runner.jobs[0].last_error is None


def test_the_purge_jobs_forget_old_keys_and_old_changes(empty_store):
    with empty_store.transaction():
        empty_store.claim_idempotency_key(IdempotencyRecord("u", "POST /x", "k1", "h"), 60)
        empty_store.finish_idempotency_key("u", "POST /x", "k1", {"status": 201})
    runner = JobRunner(empty_store, [jobs.purge_idempotency_keys(hours=-1), jobs.purge_changes(hours=-1)],
                       holder="p")
    empty_store.bulk_load("events", [])  # two change rows at least
    empty_store.bulk_load("events", [])
    runner.run_due()
    with empty_store.transaction():
        held = empty_store.claim_idempotency_key(IdempotencyRecord("u", "POST /x", "k1", "h2"), 60)
    assert held is None  # forgotten: the key could be claimed anew
    oldest, latest = empty_store.change_bounds()
    assert oldest == latest  # only the newest change is kept
