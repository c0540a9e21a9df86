"""PostgreSQL restarted, crashed and stopped under concurrent writes: nothing lost, nothing twice, no hangs.

A private cluster (tests/e2e/pg_cluster.py) holds the tiny county; the app serves it over HTTP. Four writers
POST events, each with its own Idempotency-Key, retrying a failed one with the same key until it succeeds;
two readers page and fetch events; a monitor polls /healthz. Meanwhile the cluster gets a fast restart, an
immediate (crash) restart and a 10 s stop.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.conftest import filled_database
from tests.e2e.live_server import live_server
from tests.pg_cluster import PrivateCluster

pytestmark = [pytest.mark.postgis, pytest.mark.e2e]

ITEMS = "/collections/events/items"
GJ = {"Content-Type": "application/geo+json"}
WRITERS = ("worker-A1", "leader-A", "operator", "admin")
DOWN_BOUND = 1.5  # s: while PostgreSQL is down a request fails within about a second (the feature)
RECOVERY_BOUND = 2.0  # s: after PostgreSQL accepts connections again, requests succeed within this
HANG_BOUND = 5.0  # s: no request at all takes this long (psycopg_pool alone made them wait 10 s)
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Call:
    """One HTTP request as a client saw it (status None: no answer within the client's timeout)."""

    kind: str
    start: float
    end: float
    status: int | None
    retry_after: str | None = None
    problem: bool = False
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Recorder:
    """The calls of every client thread, and what went wrong inside the threads themselves."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.crashes: list[str] = []
        self._lock = threading.Lock()

    def call(self, client: httpx.Client, kind: str, method: str, url: str, **kw) -> httpx.Response | None:
        t0 = time.monotonic()
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self._add(Call(kind, t0, time.monotonic(), None, detail=repr(exc)))
            return None
        problem = r.headers.get("content-type", "").startswith("application/problem+json")
        detail = r.json().get("detail", "") if problem else ""
        self._add(Call(kind, t0, time.monotonic(), r.status_code, r.headers.get("retry-after"), problem,
                       detail))
        return r

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def thread(self, target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except Exception as exc:  # reported by the test, never lost in a thread
                self.crashes.append(repr(exc))
        return threading.Thread(target=run, daemon=True)


@pytest.fixture
def cluster(tmp_path) -> Iterator[PrivateCluster]:
    """A private PostgreSQL 15 cluster, running."""
    c = PrivateCluster(tmp_path / "pg")
    c.init()
    yield c
    c.destroy()


def _event(title: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.1, 33.2]},
            "properties": {"title": title, "type": "road_damage", "reported_at": "2024-06-01T08:00:00Z"}}


def _token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": username, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_restarts_under_writes_lose_nothing_duplicate_nothing_and_fail_fast(cluster, catalog, tmp_path):
    url = filled_database("postgis", catalog, tmp_path, cluster.create_database("county"), county.fill)
    app = create_app(Settings(database=url, secret="outage-secret-of-at-least-thirty-two-bytes"))
    rec = Recorder()
    stop = threading.Event()
    acked: dict[str, int] = {}  # title of each logical write -> the id its 201 carried
    retried: set[str] = set()  # titles of writes that failed at least once and were retried with their key

    with live_server(app) as base:
        tokens = {name: _token(base, name) for name in WRITERS}

        def writer(name: str) -> None:
            with httpx.Client(base_url=base, timeout=15) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    title = f"outage {name} #{n} {uuid.uuid4().hex[:6]}"
                    headers = {**tokens[name], **GJ, "Idempotency-Key": str(uuid.uuid4())}
                    give_up = time.monotonic() + 60
                    while time.monotonic() < give_up:  # the same key until it succeeds
                        r = rec.call(client, "write", "POST", ITEMS, json=_event(title), headers=headers)
                        if r is not None and r.status_code == 201:
                            acked[title] = r.json()["id"]
                            break
                        retried.add(title)
                        time.sleep(0.05)
                    time.sleep(0.02)

        def reader() -> None:
            with httpx.Client(base_url=base, timeout=15, headers=tokens["admin"]) as client:
                while not stop.is_set():
                    rec.call(client, "read", "GET", ITEMS, params={"limit": 5})
                    rec.call(client, "read", "GET", f"{ITEMS}/1")
                    time.sleep(0.02)

        def monitor() -> None:
            with httpx.Client(base_url=base, timeout=15) as client:
                while not stop.is_set():
                    rec.call(client, "health", "GET", "/healthz")
                    time.sleep(0.1)

        threads = [rec.thread(lambda n=n: writer(n)) for n in WRITERS]
        threads += [rec.thread(reader) for _ in range(2)] + [rec.thread(monitor)]
        for t in threads:
            t.start()

        windows: list[tuple[str, float, float]] = []  # (phase, down from, accepting again at)
        time.sleep(1.5)
        for mode in ("fast", "immediate"):
            t0 = time.monotonic()
            cluster.restart(mode)
            windows.append((f"{mode} restart", t0, time.monotonic()))
            time.sleep(2.5)
        t0 = time.monotonic()
        cluster.stop("fast")
        stopped = time.monotonic()
        time.sleep(STOP_SECONDS)
        starting = time.monotonic()
        cluster.start()
        windows.append(("10 s stop", t0, time.monotonic()))
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(timeout=90)

    assert not rec.crashes, rec.crashes
    calls = sorted(rec.calls, key=lambda c: c.start)
    _every_write_stored_once(url, acked, retried)
    figures = _failures_fast_and_recovery_prompt(calls, windows)
    down_health = _health_says_what_is_wrong(calls, stopped, starting, windows[-1][2])
    failed = [c for c in calls if c.status == 503]
    print(f"\n{len(acked)} writes acknowledged ({len(retried)} retried after a failure),"
          f" {sum(c.kind == 'read' for c in calls)} reads, {len(failed)} 503s"
          f" (slowest {max(c.seconds for c in failed) * 1000:.0f} ms); " + "; ".join(figures)
          + f"; /healthz while stopped: {down_health[0].detail!r}")


def _every_write_stored_once(url: str, acked: dict[str, int], retried: set[str]) -> None:
    """Every logical write ended acknowledged and exactly one row carries its title: the acknowledged ones
    are all there, and a write that failed and was retried with its key was not written twice."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT title, count(*), min(fid) FROM events WHERE title LIKE 'outage %'"
                            " GROUP BY title").fetchall()
    stored = {title: (n, fid) for title, n, fid in rows}
    assert retried, "no write failed: the restarts did not happen under load"
    assert retried <= set(acked), f"writes never acknowledged: {sorted(retried - set(acked))[:5]}"
    missing = [t for t in acked if t not in stored]
    assert not missing, f"{len(missing)} acknowledged writes are gone, e.g. {missing[:3]}"
    twice = {t: n for t, (n, _) in stored.items() if n != 1}
    assert not twice, f"{len(twice)} of {len(retried)} retried writes stored twice: {list(twice.items())[:5]}"
    assert all(stored[t][1] == fid for t, fid in acked.items()), "a 201 carried another id than the row's"
    assert len(stored) == len(acked)


def _failures_fast_and_recovery_prompt(calls: list[Call], windows: list[tuple[str, float, float]],
                                       ) -> list[str]:
    """Failures are 503 problem+json with Retry-After and come fast; nothing else went wrong, nothing hung;
    once PostgreSQL accepts connections again, requests succeed within RECOVERY_BOUND. The figures."""
    unexpected = [c for c in calls if c.status not in (200, 201, 503)]
    assert not unexpected, unexpected[:5]
    failed = [c for c in calls if c.status == 503]
    assert failed, "no request failed: PostgreSQL was never down"
    assert all(c.problem and c.retry_after and int(c.retry_after) >= 1 for c in failed), failed[:3]
    assert max(c.seconds for c in failed) <= DOWN_BOUND, max(failed, key=lambda c: c.seconds)
    assert max(c.seconds for c in calls) <= HANG_BOUND, max(calls, key=lambda c: c.seconds)
    figures = []
    for (phase, down, up), following in zip(windows, [w[1] for w in windows[1:]] + [math.inf], strict=True):
        during = [c for c in calls if down <= c.start <= up]
        assert during, f"no request during the {phase}"
        slowest = max(during, key=lambda c: c.seconds)
        assert slowest.seconds <= DOWN_BOUND, (phase, slowest)
        late = [c for c in failed if c.start >= up + RECOVERY_BOUND and c.end < following]
        assert not late, (phase, late[:3])
        first = next(c for c in calls if c.start >= up and c.status in (200, 201))
        assert first.end - up <= RECOVERY_BOUND, (phase, first)
        figures.append(f"{phase}: slowest request while down {slowest.seconds * 1000:.0f} ms, first success"
                       f" {(first.end - up) * 1000:.0f} ms after PostgreSQL accepted connections")
    return figures


def _health_says_what_is_wrong(calls: list[Call], stopped: float, starting: float, up: float) -> list[Call]:
    """/healthz is 503 with the reason and Retry-After, quickly, while PostgreSQL is stopped; 200 after."""
    health = [c for c in calls if c.kind == "health"]
    down = [c for c in health if stopped <= c.start and c.end <= starting]
    assert len(down) >= 5
    assert all(c.status == 503 and c.retry_after and "unreachable" in c.detail for c in down), down[:3]
    assert max(c.seconds for c in down) <= DOWN_BOUND
    back = [c.status for c in health if c.start >= up + RECOVERY_BOUND]
    assert back and set(back) == {200}, back
    return down
