"""A real PostgreSQL server for the tests, started in a temp dir on a free loopback port.

The binaries are required: when they are missing the tests fail (CI installs postgresql), they
are never skipped. initdb refuses to run as root, so as root the cluster runs as `postgres`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def find_bin_dir() -> Path:
    candidates = [os.environ.get("NFX_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    candidates += [str(Path(on_path).parent)] if on_path else []
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    pytest.fail("PostgreSQL server binaries (initdb, postgres) not found: install the "
                "postgresql package or set NFX_PG_BIN", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresServer:
    def __init__(self) -> None:
        self.bin = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="nfx-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.data.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.root, self.data, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        subprocess.run(_as_user([str(self.bin / "initdb"), "-D", str(self.data), "-U",
                                 "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        self.log = open(self.root / "server.log", "ab")
        self._launch()

    def _launch(self) -> None:
        self.process = subprocess.Popen(
            _as_user([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                      "-k", str(self.sockets), "-c", "listen_addresses=127.0.0.1",
                      "-c", "fsync=off", "-c", "max_connections=100"]),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.root / "server.log").read_text())
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("postgres did not start: " + (self.root / "server.log").read_text())

    def _halt(self) -> None:
        """Stop the server at once (every connection is cut), keeping its data."""
        if self.process and self.process.poll() is None:
            # a throwaway cluster: no shutdown checkpoint needed
            stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                    "stop"]
            subprocess.run(_as_user(stop), capture_output=True, timeout=30)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self, down_seconds: float = 0.0) -> None:
        """What an operator's restart (or a crash and recovery) does to the clients: every
        connection cut, the server away for `down_seconds`, then back on the same port."""
        self._halt()
        time.sleep(down_seconds)
        self._launch()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._halt()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres():
    """A server of the test's own, for tests that stop or restart it."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


_counter = iter(range(1, 10_000))


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database(f"nfx_test_{next(_counter)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """The same test on a SQLite file and on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nfx.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(db_url):
    """An open Store on each database kind, closed after the test."""
    from nfx.store import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def queue(store):
    """The queue over the test's Store."""
    from nfx.queue import Queue

    return Queue(store)
