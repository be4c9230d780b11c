"""The queue as a worker (and its supervisor) sees it: each call one transaction.

`store.queue` is one of these. The rules themselves live in `nfx.store.jobs` and
`nfx.store.workers`; this only opens the transaction around each step.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from nfx.run_record import RunRecord
from nfx.scales import WorkModel
from nfx.store import jobs, workers
from nfx.store.jobs import Claim, JobState
from nfx.store.status import WorkerState


class WorkQueue:
    def __init__(self, write: Callable[[], AbstractContextManager[Session]]) -> None:
        self._write = write

    def claim_next(self, worker: str, lease: float = jobs.DEFAULT_LEASE_SECONDS
                   ) -> Claim | None:
        with self._write() as session:
            return jobs.claim_next(session, worker, lease)

    def heartbeat(self, claim: Claim, lease: float, **progress: Any) -> JobState:
        with self._write() as session:
            return jobs.heartbeat(session, claim, lease, **progress)

    def save_checkpoint(self, claim: Claim, scales_done: int, png: bytes,
                        history: list[dict[str, Any]]) -> bool:
        with self._write() as session:
            return jobs.save_checkpoint(session, claim, scales_done, png, history)

    def finish(self, claim: Claim, run: RunRecord, png: bytes, thumbnail: bytes) -> int | None:
        with self._write() as session:
            return jobs.finish(session, claim, run, png, thumbnail)

    def fail(self, claim: Claim, message: str) -> bool:
        with self._write() as session:
            return jobs.fail(session, claim, message)

    def cancelled(self, claim: Claim) -> bool:
        with self._write() as session:
            return jobs.cancelled(session, claim)

    def release(self, claim: Claim) -> bool:
        with self._write() as session:
            return jobs.release(session, claim)

    def requeue_expired(self) -> int:
        with self._write() as session:
            return jobs.requeue_expired(session)

    def work_remaining(self) -> bool:
        with self._write() as session:
            return jobs.work_remaining(session)

    # --- the workers table ---------------------------------------------------------------

    def register_worker(self, name: str, host: str, pid: int, device: str, lease: float,
                        work: WorkModel | None = None,
                        state: WorkerState = WorkerState.IDLE) -> None:
        with self._write() as session:
            workers.register(session, name, host, pid, device, lease, work, state)

    def worker_ready(self, name: str, device: str, work: WorkModel | None) -> None:
        with self._write() as session:
            workers.ready(session, name, device, work)

    def worker_seen(self, name: str, *, stopped: bool = False,
                    state: WorkerState | None = None) -> None:
        with self._write() as session:
            workers.seen(session, name, stopped=stopped, state=state)

    def worker_exited(self, host: str, pid: int, cause: str) -> list[int]:
        with self._write() as session:
            return workers.exited(session, host, pid, cause)

    def calibrated(self, host: str | None = None, device: str | None = None
                   ) -> WorkModel | None:
        with self._write() as session:
            return workers.calibrated(session, host, device)


