"""Background jobs: periodic work, each job run by exactly one server process at a time, under a lease.

Every process runs a JobRunner over the same list of jobs. Before a run, a process takes (or renews) the
job's lease in the store -- a row in `job_leases`, in PostGIS and in the GeoPackage alike -- and only the
holder of a live lease runs the job. A process that dies stops renewing; once its lease expires another
process takes the job over. A job that fails is logged and tried again at its next turn; it never stops the
runner or the server.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from geoserver.store.base import Store

log = logging.getLogger("onemap.jobs")


@dataclass
class Job:
    """A named piece of periodic work: `run(store)` every `every` seconds.

    The lease lasts `lease` seconds (default: three periods, at least 10 s): how long another process waits
    before taking the job over from a holder that stopped renewing it. A job that keeps something running
    between runs (the MQTT consumer) gives `lost`: called when this process does not hold the lease (another
    took it, the store cannot say) and when the runner stops, before the lease is given back.
    """

    name: str
    every: float
    run: Callable[[Store], object]
    lease: float | None = None
    lost: Callable[[], None] | None = None
    last_run: float = field(default=0.0, compare=False)
    last_error: str | None = field(default=None, compare=False)
    runs: int = field(default=0, compare=False)

    @property
    def lease_seconds(self) -> float:
        """How long a taken lease lasts."""
        return self.lease if self.lease is not None else max(10.0, 3 * self.every)


def holder_id() -> str:
    """This process's name on the leases it takes: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    """Runs the jobs whose lease this process holds, in a daemon thread, until stopped."""

    def __init__(self, store: Store, jobs: list[Job], *, tick: float = 1.0, holder: str | None = None) -> None:
        self.store = store
        self.jobs = jobs
        self.tick = tick
        self.holder = holder or holder_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the runner thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="onemap-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give the leases back, so another process takes the jobs over at once."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
        for job in self.jobs:
            self._lost(job)
            try:
                self.store.release_lease(job.name, self.holder)
            except Exception:  # the store is away: the lease expires on its own
                pass

    def run_due(self, now: float | None = None) -> list[str]:
        """Run every job that is due and whose lease this process gets; returns the names run."""
        now = time.monotonic() if now is None else now
        ran = []
        for job in self.jobs:
            if now - job.last_run < job.every:
                continue
            try:
                if not self.store.acquire_lease(job.name, self.holder, job.lease_seconds):
                    job.last_run = now  # another process has it; ask again next period
                    self._lost(job)
                    continue
            except Exception as exc:
                log.warning("job %s: cannot take its lease: %s", job.name, exc)
                self._lost(job)
                continue
            job.last_run = now
            try:
                result = job.run(self.store)
                job.runs += 1
                job.last_error = None
                if result:
                    log.info("job %s: %s", job.name, result)
            except Exception as exc:
                job.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("job %s failed; it runs again in %.0f s", job.name, job.every)
            ran.append(job.name)
        return ran

    def _lost(self, job: Job) -> None:
        if job.lost is not None:
            try:
                job.lost()
            except Exception:
                log.exception("job %s: stopping it after losing its lease failed", job.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(self.tick)


def purge_idempotency_keys(hours: float) -> Job:
    """Forget Idempotency-Key records older than `hours` (a retry after that runs again)."""
    def run(store: Store) -> str | None:
        n = store.purge_idempotency_keys(datetime.now(UTC) - timedelta(hours=hours))
        return f"forgot {n} idempotency keys" if n else None
    return Job("purge-idempotency-keys", every=600.0, run=run)


def purge_changes(hours: float) -> Job:
    """Drop change-log rows older than `hours` (a stream reconnecting from before that gets a reset)."""
    def run(store: Store) -> str | None:
        n = store.purge_changes(datetime.now(UTC) - timedelta(hours=hours))
        return f"purged {n} change-log rows" if n else None
    return Job("purge-changes", every=600.0, run=run)
