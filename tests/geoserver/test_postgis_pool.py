"""The PostGIS connection pool against a private PostgreSQL that is restarted and stopped: no request gets a
dead connection, requests fail at once while the server is down, work again as soon as it is back, and a
merely busy pool makes requests wait instead of failing them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from geoserver.errors import StoreUnavailable
from geoserver.store.postgis_pool import PostgresPool
from tests.pg_cluster import PrivateCluster

pytestmark = pytest.mark.postgis

MAX_SIZE = 3
WAIT = 2.0  # seconds a request waits for a connection of a busy pool


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[PrivateCluster]:
    """A private PostgreSQL 15 cluster, running (each test leaves it running)."""
    c = PrivateCluster(tmp_path_factory.mktemp("pool") / "pg")
    c.init()
    yield c
    c.destroy()


@pytest.fixture
def pool(cluster) -> Iterator[PostgresPool]:
    p = PostgresPool(cluster.url("postgres"), "the test cluster", min_size=1, max_size=MAX_SIZE,
                     connect_timeout=5, wait_timeout=WAIT, configure=lambda conn: None)
    p.open()
    yield p
    p.close()


def _select(pool: PostgresPool, sql: str = "SELECT 1") -> int:
    with pool.connection() as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_after_a_restart_no_request_is_handed_a_dead_connection(cluster, pool, mode):
    with pool.connection(), pool.connection(), pool.connection():
        pass  # the pool now keeps three idle connections, which the restart kills
    assert pool.stats()["idle"] == MAX_SIZE
    cluster.restart(mode)
    assert [_select(pool) for _ in range(2 * MAX_SIZE)] == [1] * (2 * MAX_SIZE)
    assert pool.outage() is None


def test_while_down_requests_fail_at_once_and_work_again_when_it_is_back(cluster, pool):
    assert _select(pool) == 1
    cluster.stop()
    for _ in range(5):
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable) as err:
            _select(pool)
        assert time.monotonic() - t0 < 1.0
        assert err.value.retry_after and err.value.retry_after >= 1
    assert "unreachable" in err.value.message and "the test cluster" in err.value.message
    assert pool.outage() is not None
    cluster.start()
    back = time.monotonic()
    while True:  # the server accepts connections again: within a second, so does the pool
        try:
            assert _select(pool) == 1
            break
        except StoreUnavailable:
            assert time.monotonic() - back < 1.0, "still failing a second after PostgreSQL came back"
            time.sleep(0.02)
    assert pool.outage() is None


def test_a_busy_pool_makes_requests_wait_for_a_connection_not_fail(pool):
    holding = threading.Barrier(MAX_SIZE + 1)

    def hold(seconds: float) -> None:
        with pool.connection() as conn:
            holding.wait()
            conn.execute("SELECT pg_sleep(%s)", [seconds])

    threads = [threading.Thread(target=hold, args=(0.8,)) for _ in range(MAX_SIZE)]
    for t in threads:
        t.start()
    holding.wait()  # every connection is in use now
    t0 = time.monotonic()
    assert _select(pool) == 1  # it waited for a connection to come back
    assert time.monotonic() - t0 >= 0.3
    for t in threads:
        t.join()
    assert pool.outage() is None


def test_a_pool_busy_past_the_wait_answers_busy_with_retry_after_not_down(pool):
    holding = threading.Barrier(MAX_SIZE + 1)

    def hold() -> None:
        with pool.connection() as conn:
            holding.wait()
            conn.execute("SELECT pg_sleep(%s)", [WAIT + 1])

    threads = [threading.Thread(target=hold) for _ in range(MAX_SIZE)]
    for t in threads:
        t.start()
    holding.wait()
    with pytest.raises(StoreUnavailable) as err:
        _select(pool)
    assert "busy" in err.value.message and err.value.retry_after
    assert pool.outage() is None
    for t in threads:
        t.join()
    assert _select(pool) == 1
