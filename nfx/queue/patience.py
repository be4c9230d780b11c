"""Waiting out an unreachable database, for a worker: a server restart or a cut connection
must cost a worker a pause, never a job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from nfx.errors import DatabaseUnavailable, NFXError

OUTAGE_FIRST_SECONDS, OUTAGE_MAX_SECONDS = 0.5, 10.0  # retries while the database is away


class Patience:
    """Calls into the queue that wait out an unreachable database: retried with backoff
    until they go through (or the worker is asked to stop), said once when the outage
    starts and once when it ends."""

    def __init__(self, log: Callable[[str], None], stop: threading.Event) -> None:
        self.log, self.stop = log, stop
        self.lock = threading.Lock()  # the heartbeat thread and the loop share the notice
        self.down_since: float | None = None

    def __call__(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        pause = OUTAGE_FIRST_SECONDS
        while True:
            try:
                value = call(*args, **kwargs)
            except DatabaseUnavailable as exc:
                self.failed(exc)
                if self.stop.wait(pause):
                    raise
                pause = min(pause * 2, OUTAGE_MAX_SECONDS)
                continue
            self.worked()
            return value

    def failed(self, exc: NFXError) -> None:
        with self.lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                self.log(f"nfx worker: {exc}; retrying (a running job keeps running)")

    def worked(self) -> None:
        with self.lock:
            if self.down_since is not None:
                self.log(f"nfx worker: the database is back after "
                         f"{time.monotonic() - self.down_since:.1f} s")
                self.down_since = None
