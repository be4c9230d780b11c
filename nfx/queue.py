"""Batches and the job queue: expansion, dedup, claim, heartbeat, requeue.

Claiming is atomic on both databases: on SQLite the whole claim runs in one BEGIN IMMEDIATE
transaction (one writer at a time); on PostgreSQL the chosen row is locked with
`FOR UPDATE SKIP LOCKED`, so concurrent workers each take a different job. Every write a worker
makes afterwards is conditional on still owning the job (status running, same worker, same
attempt), so a worker that lost its lease can never overwrite the job's next run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nfx.errors import InputError
from nfx.settings import Settings, field
from nfx.store.blobs import put_blob
from nfx.store.models import Image, Job, JobStyle, Result, Worker, utcnow
from nfx.store.setting_columns import setting_values

if TYPE_CHECKING:
    from nfx.store import Store

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 2.0  # a worker's pause between looks at an empty queue
DEFAULT_MAX_ATTEMPTS = 3
STATUSES = ("queued", "running", "done", "failed", "canceled")


# --- planning (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedJob:
    content_id: int
    style_ids: tuple[int, ...]
    settings: Settings


def sweep_variants(base: Settings, sweep: dict[str, Sequence[Any]] | None) -> list[Settings]:
    """Every combination of the swept values applied to `base` (validated)."""
    sweep = {name: list(values) for name, values in (sweep or {}).items()}
    for name, values in sweep.items():
        if not field(name).sweepable:
            raise InputError(f"{name} cannot be swept; set it once instead")
        if not values:
            raise InputError(f"sweep {name} has no values")
    names = list(sweep)
    return [base.with_changes(**dict(zip(names, combo)))
            for combo in itertools.product(*(sweep[n] for n in names))]


def plan_batch(content_ids: Sequence[int], style_ids: Sequence[int], base: Settings,
               sweep: dict[str, Sequence[Any]] | None = None) -> list[PlannedJob]:
    """contents × styles × sweep combinations; each job has one content and one style."""
    if not content_ids:
        raise InputError("a batch needs at least one content image")
    if not style_ids:
        raise InputError("a batch needs at least one style image")
    variants = sweep_variants(base, sweep)
    return [PlannedJob(c, (s,), v) for c in content_ids for s in style_ids for v in variants]


def input_digest(content_sha: str, style_shas: Iterable[str], settings: Settings) -> str:
    """Identity of a run: the same pictures and settings give the same picture out."""
    key = json.dumps([content_sha, list(style_shas), settings.digest()])
    return hashlib.sha256(key.encode()).hexdigest()


# --- creating jobs (inside a store transaction) ------------------------------------------


def finished_result(session: Session, digest: str) -> Result | None:
    """A result some finished job with these inputs already made."""
    return session.scalars(
        select(Result).join(Job, Job.result_id == Result.id)
        .where(Job.input_digest == digest, Job.status == "done").limit(1)).first()


def mark_reused(job: Job, result: Result) -> None:
    job.status, job.result_id, job.reused = "done", result.id, True
    job.losses, job.progress, job.finished_at = dict(result.losses), 1.0, utcnow()


def add_job(session: Session, *, content: Image, styles: Sequence[Image], settings: Settings,
            batch_id: int | None = None, force: bool = False, priority: int = 0,
            max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
    """Queue one job, or record it as done at once when an identical run already finished."""
    if content.role != "content" or any(s.role != "style" for s in styles):
        raise InputError("jobs take one content image and style images")
    digest = input_digest(content.sha256, [s.sha256 for s in styles], settings)
    job = Job(batch_id=batch_id, content_id=content.id, settings_json=settings.to_json(),
              input_digest=digest, force=force, priority=priority, max_attempts=max_attempts,
              status="queued", attempts=0, cancel_requested=False, progress=0.0, iteration=0,
              total_iterations=0, losses={}, reused=False, created_at=utcnow(),
              **setting_values(settings))
    job.styles = [JobStyle(position=i, image_id=s.id) for i, s in enumerate(styles)]
    if not force and (result := finished_result(session, digest)) is not None:
        mark_reused(job, result)
    session.add(job)
    return job


# --- workers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it runs a job."""

    job_id: int
    attempt: int
    worker: str
    content_sha256: str
    style_sha256s: tuple[str, ...]
    settings: Settings


class JobState(Enum):
    OWNED = "owned"  # carry on
    CANCEL = "cancel"  # someone asked to cancel
    LOST = "lost"  # lease expired and the job was requeued or finished elsewhere


def register_worker(store: Store, name: str, host: str, pid: int, device: str,
                    lease: float) -> None:
    with store.write() as session:
        worker = session.scalar(select(Worker).where(Worker.name == name))
        if worker is None:
            worker = Worker(name=name, jobs_done=0)
            session.add(worker)
        now = utcnow()
        worker.host, worker.pid, worker.device, worker.lease_seconds = host, pid, device, lease
        worker.started_at = worker.last_seen = now
        worker.stopped_at, worker.current_job_id = None, None


def worker_seen(store: Store, name: str, *, stopped: bool = False) -> None:
    with store.write() as session:
        values: dict[str, Any] = {"last_seen": utcnow()}
        if stopped:
            values.update(stopped_at=utcnow(), current_job_id=None)
        session.execute(update(Worker).where(Worker.name == name).values(**values))


def requeue_expired(session: Session) -> int:
    """Jobs whose worker stopped heartbeating go back to the queue, or fail after too many
    attempts. Returns how many were touched."""
    now = utcnow()
    expired = (Job.status == "running") & (Job.lease_until < now)
    failed = session.execute(
        update(Job).where(expired, Job.attempts >= Job.max_attempts)
        .values(status="failed", finished_at=now, lease_until=None,
                error="its worker stopped responding on every attempt; giving up")).rowcount
    requeued = session.execute(
        update(Job).where(expired, Job.attempts < Job.max_attempts)
        .values(status="queued", worker=None, lease_until=None, progress=0.0, iteration=0,
                preview_png=None, started_at=None)).rowcount
    return failed + requeued


def claim_next(store: Store, worker: str, lease: float = DEFAULT_LEASE_SECONDS) -> Claim | None:
    """Take the most urgent queued job (priority, then age) for this worker, atomically."""
    with store.write() as session:
        requeue_expired(session)
        while True:
            pick = (select(Job.id).where(Job.status == "queued")
                    .order_by(Job.priority.desc(), Job.created_at, Job.id).limit(1))
            if session.bind.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            job_id = session.scalar(pick)
            if job_id is None:
                return None
            job = session.get(Job, job_id)
            if not job.force and (result := finished_result(session, job.input_digest)):
                mark_reused(job, result)  # an identical job finished while this one waited
                session.flush()
                continue
            now = utcnow()
            job.status, job.worker, job.attempts = "running", worker, job.attempts + 1
            job.started_at, job.heartbeat_at = now, now
            job.lease_until = now + timedelta(seconds=lease)
            job.error, job.progress, job.iteration, job.preview_png = None, 0.0, 0, None
            session.execute(update(Worker).where(Worker.name == worker)
                            .values(current_job_id=job.id, last_seen=now))
            return Claim(job_id=job.id, attempt=job.attempts, worker=worker,
                         content_sha256=job.content.sha256,
                         style_sha256s=tuple(s.image.sha256 for s in job.styles),
                         settings=Settings.from_json(job.settings_json))


def _owned(claim: Claim):
    return ((Job.id == claim.job_id) & (Job.status == "running")
            & (Job.worker == claim.worker) & (Job.attempts == claim.attempt))


def heartbeat(store: Store, claim: Claim, lease: float, **progress: Any) -> JobState:
    """Extend the lease (and record progress, if given); say whether to go on."""
    now = utcnow()
    with store.write() as session:
        owned = session.execute(
            update(Job).where(_owned(claim))
            .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease), **progress)
        ).rowcount
        session.execute(update(Worker).where(Worker.name == claim.worker)
                        .values(last_seen=now))
        if not owned:
            return JobState.LOST
        cancel = session.scalar(select(Job.cancel_requested).where(Job.id == claim.job_id))
        return JobState.CANCEL if cancel else JobState.OWNED


def _end(store: Store, claim: Claim, **values: Any) -> bool:
    with store.write() as session:
        owned = session.execute(update(Job).where(_owned(claim)).values(**values)).rowcount
        session.execute(update(Worker).where(Worker.name == claim.worker)
                        .values(current_job_id=None, last_seen=utcnow()))
        return bool(owned)


def fail(store: Store, claim: Claim, message: str) -> bool:
    return _end(store, claim, status="failed", error=message[:2000], finished_at=utcnow(),
                lease_until=None)


def cancelled(store: Store, claim: Claim) -> bool:
    return _end(store, claim, status="canceled", error="canceled while running",
                finished_at=utcnow(), lease_until=None)


def release(store: Store, claim: Claim) -> bool:
    """Put a job back in the queue untouched (the worker is stopping); the attempt is not
    counted against it."""
    return _end(store, claim, status="queued", worker=None, attempts=Job.attempts - 1,
                lease_until=None, progress=0.0, iteration=0, preview_png=None, started_at=None)


@dataclass(frozen=True)
class Finished:
    """A result ready to store, encoded outside the transaction."""

    png: bytes
    thumbnail: bytes
    width: int
    height: int
    settings: Settings
    losses: dict[str, float]
    history: list[dict[str, Any]]
    seconds: float
    device: str
    precision: str


def finish(store: Store, claim: Claim, done: Finished) -> int | None:
    """Store the result, its images and the job's new status in one transaction. Returns the
    result id, or None if the job is no longer this worker's (then nothing is written)."""
    with store.write() as session:
        pick = select(Job).where(_owned(claim))
        if session.bind.dialect.name == "postgresql":
            pick = pick.with_for_update(of=Job)
        job = session.scalars(pick).first()
        if job is None:
            return None
        result = Result(job_id=job.id, image_sha256=put_blob(session, done.png),
                        thumb_sha256=put_blob(session, done.thumbnail), width=done.width,
                        height=done.height, settings_json=done.settings.to_json(),
                        losses=done.losses, loss_total=done.losses.get("total"),
                        history=done.history, seconds=done.seconds, device=done.device,
                        precision=done.precision, created_at=utcnow(), favourite=False)
        session.add(result)
        session.flush()
        now = utcnow()
        job.status, job.result_id, job.losses = "done", result.id, done.losses
        job.progress, job.finished_at, job.lease_until = 1.0, now, None
        job.iteration = job.total_iterations or job.iteration
        session.execute(update(Worker).where(Worker.name == claim.worker)
                        .values(current_job_id=None, last_seen=now,
                                jobs_done=Worker.jobs_done + 1))
        return result.id


def work_remaining(store: Store) -> bool:
    """Anything queued, or running (a running job may yet come back to the queue)."""
    with store.read() as session:
        return bool(session.scalar(select(func.count()).select_from(Job)
                                   .where(Job.status.in_(("queued", "running")))))
