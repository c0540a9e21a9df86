"""A private PostgreSQL 15 cluster in a test's directory, for tests that stop, crash and restart it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from tests.e2e.live_server import free_port

PGBIN = Path("/usr/lib/postgresql/15/bin")
# How each shutdown mode is asked of the postmaster (what pg_ctl -m sends).
SHUTDOWN = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def _as_postgres() -> list[str]:
    """The command prefix that runs PostgreSQL's programs as a user they accept.

    PostgreSQL refuses to run as root. Run by root, it runs as `postgres`; pytest's tmp_path sits under a
    directory only root may enter (0700, and pytest resets it each session), so the `postgres` process also
    gets the one capability to look up paths through directories it does not own (CAP_DAC_READ_SEARCH).
    """
    if os.geteuid() != 0:
        return ["setpriv"]
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


class PrivateCluster:
    """A cluster under `root` listening on a free port of 127.0.0.1 (trust auth, superuser `postgres`).

    The postmaster is a child of the test process (not daemonised by pg_ctl) and gets SIGQUIT (immediate
    shutdown) when that process dies: a test run that is killed leaves no server behind. Start it from the
    thread that lives as long as the cluster should (the death signal follows the thread that started it).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self._server: subprocess.Popen | None = None

    def url(self, dbname: str) -> str:
        """The libpq URL of one of its databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> None:
        """initdb (no fsync of the new files: a test cluster), then start it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        cmd = [*_as_postgres(), str(PGBIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
               "--no-sync"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        self.start()

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections (after crash recovery, if any)."""
        # TCP only (no Unix socket: its path would be long, and nothing here needs it).
        cmd = [*_as_postgres(), "--pdeathsig", "SIGQUIT", str(PGBIN / "postgres"), "-D", str(self.data),
               "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        with open(self.log, "ab") as log:
            self._server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop it and wait: `fast` ends sessions cleanly, `immediate` kills them (a crash; WAL recovery on
        the next start)."""
        if self._server is None:
            return
        self._server.send_signal(SHUTDOWN[mode])
        self._server.wait(timeout=60)
        self._server = None

    def restart(self, mode: str = "fast") -> None:
        """Stop (in `mode`) and start again, waiting until it accepts connections."""
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """A new database with PostGIS; its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server at once if it runs (the directory goes with tmp_path)."""
        self.stop("immediate")
