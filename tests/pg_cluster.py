"""A private PostgreSQL 15 cluster in a test's directory, for tests that stop, crash and restart it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from tests.e2e.live_server import free_port

PGBIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres() -> list[str]:
    """The command prefix that runs PostgreSQL's programs as a user they accept.

    PostgreSQL refuses to run as root. Run by root, it runs as `postgres`; pytest's tmp_path sits under a
    directory only root may enter (0700, and pytest resets it each session), so the `postgres` process also
    gets the one capability to look up paths through directories it does not own (CAP_DAC_READ_SEARCH).
    """
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


class PrivateCluster:
    """A cluster under `root` listening on a free port of 127.0.0.1 (trust auth, superuser `postgres`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()

    def url(self, dbname: str) -> str:
        """The libpq URL of one of its databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _pg(self, program: str, *args: str) -> None:
        cmd = [*_as_postgres(), str(PGBIN / program), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{log}")

    def init(self) -> None:
        """initdb (no fsync of the new files: a test cluster), then start it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()

    def _ctl(self, action: str, *args: str) -> None:
        # TCP only (no Unix socket: its path would be long, and nothing here needs it).
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._pg("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it: `fast` ends sessions cleanly, `immediate` kills them (a crash; WAL recovery on start)."""
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Stop (in `mode`) and start again, waiting until it accepts connections."""
        self._ctl("restart", "-m", mode)

    def create_database(self, name: str) -> str:
        """A new database with PostGIS; its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server at once if it runs (the directory goes with tmp_path)."""
        if (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
