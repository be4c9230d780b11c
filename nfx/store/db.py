"""Opening a database: URL choice, SQLite pragmas, and migrations on open.

SQLite runs in WAL mode (readers never wait for the worker's writes) with foreign keys on and a
busy timeout; write transactions start with BEGIN IMMEDIATE so that two processes never both
read-then-write the same rows (the queue's claim depends on it).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

import nfx
from nfx.errors import InputError
from nfx.store.setting_columns import sync_setting_columns

MIGRATIONS = Path(__file__).parent / "migrations"
DATA_DIR = Path(nfx.__file__).resolve().parent.parent / "data"
BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_KEY = 0x4E4658  # pg_advisory_xact_lock key: "NFX"


def default_url() -> str:
    return f"sqlite:///{DATA_DIR / 'nfx.db'}"


def resolve_url(url: str | None = None, *, create: bool = True) -> str:
    """--db, else $NFX_DATABASE_URL, else the project's data/nfx.db. With `create`, a SQLite
    file's folder is made, so that opening the store can create the file."""
    url = url or os.environ.get("NFX_DATABASE_URL") or default_url()
    try:
        parsed = make_url(url)
    except Exception:
        raise InputError(f"database URL {url!r} is not a valid URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
    if create and (path := sqlite_path(parsed)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


def exists(url: str) -> bool:
    """Whether there is a gallery to look in (a server database is assumed to exist)."""
    path = sqlite_path(url)
    return path is None or path.is_file()


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise InputError(f"unsupported database {parsed.get_backend_name()!r}: "
                     "use sqlite:///FILE or postgresql://...")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: Engine) -> Engine:
    """The same pool, with transactions that take SQLite's write lock at BEGIN."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "the migrations have a head (one branch, never empty)"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade to `revision` under a lock, so several workers starting at once are safe.

    On SQLite, foreign keys are off while migrating (a table rebuild must not fire ON DELETE
    actions) and checked before commit."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with writer(engine).connect() as connection:
        if sqlite:  # only outside a transaction does this pragma take effect
            driver = connection.connection.driver_connection
            assert driver is not None, "an open connection has the driver's"
            driver.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                       {"key": MIGRATION_LOCK_KEY})
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if revision == "head":
                    sync_setting_columns(connection)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("migration left rows with broken foreign keys")
        finally:
            if sqlite:
                driver = connection.connection.driver_connection
                assert driver is not None, "an open connection has the driver's"
                driver.execute("PRAGMA foreign_keys = ON")
