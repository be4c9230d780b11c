"""What a database error means for the caller: gone for now, refusing to store, or a bug.

SQLAlchemy raises one `DBAPIError` family for all of these; callers need to tell them apart:
a server restart or a cut connection (PostgreSQL), or a write lock held past the busy timeout
(SQLite), will pass: wait and run the transaction again (`DatabaseUnavailable`). A full disk
or a read-only database will not pass by itself (`StorageRefused`). Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from nfx.errors import DatabaseUnavailable, NFXError, StorageRefused

# SQLSTATE classes and codes (PostgreSQL appendix A)
UNAVAILABLE_STATES = ("08",  # connection exception
                      "57P01", "57P02", "57P03",  # admin/crash shutdown, cannot connect now
                      "40001", "40P01")  # serialization failure, deadlock: run it again
REFUSED_STATES = {"53100": "the database's disk is full",
                  "53200": "the database server is out of memory",
                  "25006": "the database is read-only",
                  # a role with only the queue's rights (the README's nfx_worker) asked to
                  # do more: to upgrade the schema, say, which needs the database's owner
                  "42501": "the database role lacks a privilege this needs (see the README, "
                           "“Sharing NFX with a team”)"}
SQLITE_REFUSED = {"database or disk is full": "the database's disk is full",
                  "readonly database": "the database is read-only"}
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error",
                      "database is busy")


def classify(exc: DBAPIError) -> NFXError | None:
    """The NFX error `exc` stands for, or None if it is no outage (a bug)."""
    text = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    state = getattr(exc.orig, "sqlstate", None) or ""
    lowered = text.lower()
    for code, meaning in REFUSED_STATES.items():
        if state == code:
            return StorageRefused(f"{meaning}: {text[:200]}")
    for fragment, meaning in SQLITE_REFUSED.items():
        if fragment in lowered:
            return StorageRefused(f"{meaning}: {text[:200]}")
    if (exc.connection_invalidated or state.startswith(UNAVAILABLE_STATES)
            or any(fragment in lowered for fragment in SQLITE_UNAVAILABLE)
            or (state == "" and "connection" in lowered) or "server closed" in lowered):
        return DatabaseUnavailable(f"database unreachable: {text[:200]}")
    return None
