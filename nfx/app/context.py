"""The app's Store and Queue and image bytes, kept per server process; and the queue's planning
names the views use, imported here only, so a move of the planner touches one line.

One Store per database URL (engine pool and migrations once), chosen by $NFX_DATABASE_URL.
Blobs are content-addressed, so a cached copy can never be stale. Plain `functools` caches,
so this layer needs no Streamlit.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from nfx.errors import DatabaseUnavailable, StorageRefused
from nfx.limits import limits_from_environment
from nfx.planning.batch import PlannedJob, sweep_variants  # the one place views import them
from nfx.queue import LISTED, STATUSES, JobStatus, Queue, WorkerState
from nfx.store import Store, open_store

__all__ = ["store", "queue", "blob", "thumbnail", "data_url", "STATUSES", "LISTED", "JobStatus",
           "WorkerState", "PlannedJob", "sweep_variants", "OUTAGES", "database_reachable",
           "outage_text"]

APP_PATIENCE_SECONDS = 2.0  # a page waits this long for the database, then says it is away
OUTAGES = (DatabaseUnavailable, StorageRefused)  # a page shows these and retries


@lru_cache(maxsize=16)
def _open_store(url: str | None) -> Store:
    return open_store(url, patience=APP_PATIENCE_SECONDS)


def store() -> Store:
    return _open_store(os.environ.get("NFX_DATABASE_URL") or None)


@lru_cache(maxsize=16)
def _queue(store: Store, max_queued_per_person: int) -> Queue:
    return Queue(store, max_queued_per_person=max_queued_per_person)


def queue() -> Queue:
    """The queue over the app's Store, with the app's cap on each person's queued jobs."""
    return _queue(store(), limits_from_environment().max_queued_jobs)


@lru_cache(maxsize=64)  # full-size PNGs: a dialog's worth, not a gallery's
def blob(sha256: str) -> bytes:
    return store().blob(sha256)


@lru_cache(maxsize=4000)
def thumbnail(sha256: str) -> bytes:
    """The thumbnail of a library image or result, by the full image's sha256."""
    return store().thumbnail(sha256)


def database_reachable() -> bool:
    """Whether a read goes through now (the page's outage notice polls this)."""
    try:
        queue().queue_counts()
    except OUTAGES:
        return False
    return True


def outage_text(exc: Exception) -> str:
    """What a page says while the database is away or refuses to store."""
    if isinstance(exc, StorageRefused):
        return (f"The database refuses to store anything: {exc}. Workers pause and retry; "
                "free disk space or make the database writable.")
    return f"Database unreachable, retrying: {exc}"


def data_url(jpeg_or_png: bytes) -> str:
    """Bytes as a data: URL, for an image inside a button label."""
    kind = "png" if jpeg_or_png[:4] == b"\x89PNG" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(jpeg_or_png).decode()
