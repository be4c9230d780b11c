"""Every change of a job's status, in one place.

A job is queued → running → done | failed | canceled; failed and canceled jobs can be retried,
and a running job goes back to the queue when its worker is lost. Each function here is one
step of that life on an open session (the caller owns the transaction), so the rules live
once: what "lost" resets, how many times a job may kill its worker, what a retry clears.

Claiming is atomic on both databases: on SQLite the whole claim runs in one BEGIN IMMEDIATE
transaction (one writer at a time); on PostgreSQL the chosen row is locked with
`FOR UPDATE SKIP LOCKED`, so concurrent workers each take a different job. Every write a worker
makes afterwards is conditional on still owning the job (status running, same worker, same
attempt), so a worker that lost its lease can never overwrite the job's next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, func, select, update
from sqlalchemy.orm import Session

from nfx.errors import InputError
from nfx.images import load_image
from nfx.queue import deaths
from nfx.people import LOCAL, LOCAL_NAME, Person
from nfx.planning.batch import input_digest
from nfx.regions import RegionMap, identity, read_mask
from nfx.run_record import InputRef, RunRecord
from nfx.settings import Settings
from nfx.store.blobs import delete_unreferenced, get_blob, put_blob
from nfx.store.gallery import finished_result
from nfx.store.models import Image, Job, JobStyle, Result, Worker, utcnow
from nfx.store.setting_columns import setting_values
from nfx.status import ACTIVE, RETRYABLE, JobStatus, WorkerState

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 0.5  # a worker's pause between looks at an empty queue: a batch queued
# for an idle worker waits half of it on average (2 s made a 0.3 s job take 2.2 s)
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Checkpoint:
    """The image after the last finished scale, so that a requeued job resumes there."""

    scales_done: int  # 1: the first (coarsest) scale is done
    image_sha256: str
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it runs a job."""

    job_id: int
    attempt: int
    worker: str
    content: InputRef
    styles: tuple[InputRef, ...]
    settings: Settings
    checkpoint: Checkpoint | None = None
    mask: InputRef | None = None  # a job with regions: its mask, and each colour's styles
    regions: RegionMap | None = None


class Ownership(Enum):
    """What a heartbeat tells the worker that holds a job (not the job's status: that is
    `JobStatus`, in the database)."""

    OWNED = "owned"  # carry on
    CANCEL = "cancel"  # someone asked to cancel
    LOST = "lost"  # lease expired and the job was requeued or finished elsewhere


# --- the fields one run of a job writes -------------------------------------------------------


def run_fields_reset(*, keep_checkpoint: bool) -> dict[str, Any]:
    """Column values that forget a run: for a requeue (which keeps the last finished scale,
    to resume there) and for a retry or cancel (which start over)."""
    values: dict[str, Any] = dict(worker=None, lease_until=None, heartbeat_at=None,
                                  started_at=None, progress=0.0, iteration=0, preview_png=None,
                                  seconds_left=None, cancel_requested=False, rss_bytes=None,
                                  memory_limit_bytes=None, available_bytes=None)
    if not keep_checkpoint:
        values.update(checkpoint_scales=0, checkpoint_sha256=None, checkpoint_history=None)
    return values


def _reset(session: Session, job: Job, *, keep_checkpoint: bool) -> None:
    """Forget the job's run (see run_fields_reset)."""
    stale = job.checkpoint_sha256
    for name, value in run_fields_reset(keep_checkpoint=keep_checkpoint).items():
        setattr(job, name, value)
    if stale and not keep_checkpoint:
        session.flush()
        delete_unreferenced(session, {stale})


def _close(session: Session, job: Job, status: JobStatus, error: str | None) -> None:
    """A run's end (done, failed, canceled): the lease and the checkpoint go; who ran it and
    when stay on the record."""
    stale = job.checkpoint_sha256
    job.status, job.error, job.finished_at = status, error, utcnow()
    job.lease_until, job.preview_png, job.seconds_left = None, None, None
    job.checkpoint_scales, job.checkpoint_sha256, job.checkpoint_history = 0, None, None
    if stale:
        session.flush()
        delete_unreferenced(session, {stale})


# --- creating jobs ----------------------------------------------------------------------------


def mark_reused(job: Job, result: Result) -> None:
    job.status, job.result_id, job.reused = JobStatus.DONE, result.id, True
    job.losses, job.progress, job.finished_at = dict(result.losses), 1.0, utcnow()


def add_job(session: Session, *, content: Image, styles: Sequence[Image], settings: Settings,
            batch_id: int | None = None, force: bool = False, priority: int = 0,
            max_attempts: int = DEFAULT_MAX_ATTEMPTS, mask: Image | None = None,
            regions: RegionMap | None = None, owner: str = LOCAL_NAME) -> Job:
    """Queue one job for `owner`, or record it as done at once when an identical run already
    finished. A job with regions (`mask` and `regions`) is checked against its photo and
    styles now: a bad mask is refused in one line and nothing is queued."""
    if content.role != "content" or any(s.role != "style" for s in styles):
        raise InputError("jobs take one content image and style images")
    if (mask is None) != (regions is None):
        raise InputError("a mask needs its regions' assignments, and regions a mask")
    if mask is not None and regions is not None:
        if mask.role != "mask":
            raise InputError(f"image {mask.id} is a {mask.role} image, not a mask")
        refuse_regions(settings)
        read_mask(load_image(get_blob(session, mask.sha256), mask.name), regions,
                  (content.width, content.height), len(styles))
    digest = input_digest(content.sha256, [s.sha256 for s in styles], settings,
                          _identity(mask, regions))
    job = Job(batch_id=batch_id, content=content, settings_json=settings.to_json(),
              input_digest=digest, force=force, priority=priority, max_attempts=max_attempts,
              status=JobStatus.QUEUED, attempts=0, total_iterations=0, losses={},
              reused=False, created_at=utcnow(), owner=owner,
              **run_fields_reset(keep_checkpoint=False),
              **setting_values(settings), mask=mask,
              regions=regions.as_json() if regions is not None else None)
    job.styles = [JobStyle(position=i, image=s) for i, s in enumerate(styles)]
    if not force and (result := finished_result(session, digest)) is not None:
        mark_reused(job, result)
    session.add(job)
    return job


# --- user actions -----------------------------------------------------------------------------


def _get(session: Session, job_id: int, person: Person, verb: str) -> Job:
    """The job a person acts on; InputError if there is none, NotPermitted unless they may
    (nfx.people: their own jobs, or anyone's for an admin)."""
    job = session.get(Job, job_id)
    if job is None:
        raise InputError(f"no job with id {job_id}")
    person.check(job.owner, f"job {job_id}", verb)
    return job


def cancel(session: Session, job_id: int, person: Person = LOCAL) -> Job:
    """Queued: canceled now (its checkpoint goes). Running: the worker is asked to stop
    within a few iterations."""
    job = _get(session, job_id, person, "cancel")
    if job.status == JobStatus.QUEUED:
        _close(session, job, JobStatus.CANCELED, "canceled")
    elif job.status == JobStatus.RUNNING:
        job.cancel_requested = True
    else:
        raise InputError(f"job {job_id} is {job.status}; only queued or running jobs can be "
                         "canceled")
    return job


def retry(session: Session, job_id: int, changes: dict[str, Any] | None = None,
          person: Person = LOCAL) -> Job:
    """Failed or canceled → queued, from the start, with a fresh count of attempts; with
    `changes`, under the changed settings (and re-using an identical finished run's result,
    as a new job would)."""
    job = _get(session, job_id, person, "retry")
    if job.status not in RETRYABLE:
        raise InputError(f"job {job_id} is {job.status}; only failed or canceled jobs can be "
                         "retried")
    if changes:
        settings = Settings.from_json(job.settings_json).with_changes(**changes)
        _set_settings(job, settings)
    _reset(session, job, keep_checkpoint=False)
    job.status, job.attempts, job.error, job.finished_at = JobStatus.QUEUED, 0, None, None
    job.blamed_deaths = 0
    if changes and not job.force and (result := finished_result(session, job.input_digest)):
        mark_reused(job, result)
    return job


def refuse_regions(settings: Settings) -> None:
    """Regions are the optimiser's: one line for the settings that cannot take a mask."""
    if settings.method == "feedforward":
        raise InputError("regions need method gatys: the feed-forward network styles the "
                         "whole picture")
    if settings.init == "preview":
        raise InputError("init: preview does not take a region mask; use init: content")


def _identity(mask: Image | None, regions: RegionMap | None) -> list[object] | None:
    """What regions add to a run's identity (nfx.regions.identity), None without."""
    if mask is None or regions is None:
        return None
    return identity(mask.sha256, regions)


def job_regions(job: Job) -> RegionMap | None:
    return RegionMap.from_json(job.regions) if job.regions else None


def _set_settings(job: Job, settings: Settings) -> None:
    """A job's settings, with what derives from them: its identity and the indexed columns."""
    job.settings_json = settings.to_json()
    job.input_digest = input_digest(job.content.sha256, [s.image.sha256 for s in job.styles],
                                    settings, _identity(job.mask, job_regions(job)))
    for name, value in setting_values(settings).items():
        setattr(job, name, value)


def move_to_front(session: Session, job_id: int, person: Person = LOCAL) -> Job:
    """Raise a queued job's priority above every other queued job."""
    job = _get(session, job_id, person, "reorder")
    if job.status != JobStatus.QUEUED:
        raise InputError(f"job {job_id} is {job.status}; only queued jobs can move")
    top = session.scalar(select(func.max(Job.priority)).where(
        Job.status == JobStatus.QUEUED, Job.id != job_id))
    job.priority = max(job.priority, (top if top is not None else job.priority) + 1)
    return job


# --- lost workers -----------------------------------------------------------------------------


def _lost(session: Session, job: Job, why: str, now: datetime, signal: str | None = None,
          oom_kills: int | None = None) -> None:
    """The job's worker is gone: judge the death on its evidence (nfx.queue.deaths) and
    record it with the job. Bad luck (an outside kill) requeues it, keeping its checkpoint,
    however often it happens. A death the evidence blames on the job counts against it: a
    memory death requeues it with a smaller memory budget; after `max_attempts` such deaths
    it fails, with the evidence, since a job that kills its worker every time would
    otherwise kill every worker in turn."""
    session.execute(update(Worker).values(current_job_id=None)
                    .where(Worker.name == job.worker, Worker.current_job_id == job.id))
    settings = Settings.from_json(job.settings_json)
    evidence = deaths.Evidence(
        cause=why, signal=signal, oom_kills=oom_kills, rss=job.rss_bytes,
        limit=job.memory_limit_bytes, available=job.available_bytes, iteration=job.iteration,
        scale=min(job.iteration // max(settings.steps, 1), settings.scales - 1),
        scales_kept=job.checkpoint_scales or 0)
    verdict = deaths.judge(evidence)
    changes: dict[str, Any] = {}
    if verdict.blames_job:
        job.blamed_deaths = (job.blamed_deaths or 0) + 1
        if verdict.out_of_memory and settings.method == "gatys":
            changes = {"memory_budget": deaths.smaller_budget(settings, evidence)}
    job.deaths = [*(job.deaths or []),
                  deaths.record(evidence, verdict, now.isoformat(timespec="seconds"),
                                job.worker, changes)]
    iteration = job.iteration
    if job.cancel_requested:  # the user wanted it stopped anyway
        _close(session, job, JobStatus.CANCELED, f"canceled (its worker was lost: {why})")
    elif verdict.blames_job and job.blamed_deaths >= job.max_attempts:
        _close(session, job, JobStatus.FAILED,
               f"its worker died {job.blamed_deaths} times on this job, each time with the "
               f"evidence against the job (last: {why} at iteration {iteration}; "
               f"{verdict.reason}); giving up")
    else:
        _reset(session, job, keep_checkpoint=True)
        job.status = JobStatus.QUEUED
        remedy = ""
        if changes:  # tiles give the same image: the checkpoint stays valid
            _set_settings(job, settings.with_changes(**changes))
            remedy = f"; retrying with a memory budget of {changes['memory_budget']:g} GiB"
        job.error = f"worker lost at iteration {iteration} ({why}: {verdict.reason}); " + (
            f"requeued{remedy}" if verdict.blames_job else "requeued, not counted against it")


def _locked(session: Session, query: Select[Job]) -> Sequence[Job]:
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Job, skip_locked=True)
    return session.scalars(query).all()


def requeue_expired(session: Session) -> int:
    """Running jobs whose lease ran out (their worker stopped heartbeating) go back to the
    queue, or fail after too many attempts. Any process that looks at the queue calls this:
    workers when they poll, the app when it shows the queue. Returns how many it touched."""
    now = utcnow()
    jobs = _locked(session, select(Job).where(Job.status == JobStatus.RUNNING,
                                              Job.lease_until < now))
    for job in jobs:
        _lost(session, job, "its worker stopped responding", now)
    return len(jobs)


def requeue_worker_jobs(session: Session, worker: str, why: str, signal: str | None = None,
                        oom_kills: int | None = None) -> list[int]:
    """A worker is known dead (its supervisor saw it exit, with its signal and the cgroup's
    OOM kills): its running jobs go back at once, without waiting for their leases. Returns
    their ids."""
    jobs = _locked(session, select(Job).where(Job.status == JobStatus.RUNNING,
                                              Job.worker == worker))
    for job in jobs:
        _lost(session, job, why, utcnow(), signal, oom_kills)
    return [job.id for job in jobs]


# --- a worker's run of a job ------------------------------------------------------------------


def claim_next(session: Session, worker: str, lease: float = DEFAULT_LEASE_SECONDS,
               **memory: int | None) -> Claim | None:
    """Take the most urgent queued job (priority, then age) for this worker, atomically.

    `memory` is the worker's memory reading (the heartbeat's columns): recorded with the
    claim, so that a worker killed before its first heartbeat still leaves its memory limit
    as evidence (nfx.queue.deaths; on a fast machine a job too big for it dies in its first
    second)."""
    requeue_expired(session)
    while True:
        pick = (select(Job.id).where(Job.status == JobStatus.QUEUED)
                .order_by(Job.priority.desc(), Job.created_at, Job.id).limit(1))
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        job_id = session.scalar(pick)
        if job_id is None:
            return None
        job = session.get(Job, job_id)
        assert job is not None, "the id was just selected, in this transaction"
        if not job.force and (result := finished_result(session, job.input_digest)):
            mark_reused(job, result)  # an identical job finished while this one waited
            session.flush()
            continue
        now = utcnow()
        job.status, job.worker, job.attempts = JobStatus.RUNNING, worker, job.attempts + 1
        job.started_at, job.heartbeat_at = now, now
        job.lease_until = now + timedelta(seconds=lease)
        job.error, job.progress, job.preview_png = None, 0.0, None
        job.seconds_left = None
        for column, value in memory.items():
            setattr(job, column, value)
        session.execute(update(Worker).where(Worker.name == worker)
                        .values(current_job_id=job.id, last_seen=now,
                                state=WorkerState.WORKING))
        checkpoint = None
        if job.checkpoint_sha256 and job.checkpoint_scales:
            checkpoint = Checkpoint(job.checkpoint_scales, job.checkpoint_sha256,
                                    list(job.checkpoint_history or []))
        # where this attempt starts: after the checkpoint's iterations, with their last
        # losses (a resumed job is not at "iteration 0" with the last attempt's numbers)
        done = checkpoint.history if checkpoint else []
        job.iteration = len(done)
        job.losses = ({k: v for k, v in done[-1].items() if k not in ("iteration", "scale")}
                      if done else {})
        return Claim(job_id=job.id, attempt=job.attempts, worker=worker,
                     content=InputRef(job.content.name, job.content.sha256),
                     styles=tuple(InputRef(s.image.name, s.image.sha256) for s in job.styles),
                     settings=Settings.from_json(job.settings_json), checkpoint=checkpoint,
                     mask=InputRef(job.mask.name, job.mask.sha256) if job.mask else None,
                     regions=job_regions(job))


def _owned(claim: Claim) -> ColumnElement[bool]:
    return ((Job.id == claim.job_id) & (Job.status == JobStatus.RUNNING)
            & (Job.worker == claim.worker) & (Job.attempts == claim.attempt))


def _owned_job(session: Session, claim: Claim) -> Job | None:
    pick = select(Job).where(_owned(claim))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(of=Job)
    return session.scalars(pick).first()


def heartbeat(session: Session, claim: Claim, lease: float, **progress: Any) -> Ownership:
    """Extend the lease (and record progress, if given); say whether to go on."""
    now = utcnow()
    # an UPDATE's result is a CursorResult (it has rowcount), which Session.execute's
    # signature does not say
    owned = cast(CursorResult, session.execute(
        update(Job).where(_owned(claim))
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease), **progress)
    )).rowcount
    session.execute(update(Worker).where(Worker.name == claim.worker).values(last_seen=now))
    if not owned:
        return Ownership.LOST
    cancel_requested = session.scalar(select(Job.cancel_requested)
                                      .where(Job.id == claim.job_id))
    return Ownership.CANCEL if cancel_requested else Ownership.OWNED


def save_checkpoint(session: Session, claim: Claim, scales_done: int, png: bytes,
                    history: list[dict[str, Any]]) -> bool:
    """Keep the image of the scale just finished with the job (replacing the last one)."""
    job = _owned_job(session, claim)
    if job is None:
        return False
    stale = job.checkpoint_sha256
    job.checkpoint_sha256 = put_blob(session, png)
    job.checkpoint_scales, job.checkpoint_history = scales_done, history
    if stale and stale != job.checkpoint_sha256:
        session.flush()
        delete_unreferenced(session, {stale})
    return True


def _worker_idle(session: Session, claim: Claim, **values: Any) -> None:
    session.execute(update(Worker).where(Worker.name == claim.worker)
                    .values(current_job_id=None, last_seen=utcnow(), state=WorkerState.IDLE,
                            problem=None, **values))


def _end(session: Session, claim: Claim, status: JobStatus, error: str) -> bool:
    job = _owned_job(session, claim)
    _worker_idle(session, claim)
    if job is None:
        return False
    _close(session, job, status, error)
    return True


def fail(session: Session, claim: Claim, message: str) -> bool:
    return _end(session, claim, JobStatus.FAILED, message[:2000])


def canceled(session: Session, claim: Claim) -> bool:
    return _end(session, claim, JobStatus.CANCELED, "canceled while running")


def release(session: Session, claim: Claim, reason: str | None = None) -> bool:
    """Put a job back in the queue (its worker is stopping, or the database would not store
    its result: `reason`); the attempt is not counted against it, and it resumes from its
    last finished scale."""
    job = _owned_job(session, claim)
    _worker_idle(session, claim)
    if job is None:
        return False
    _reset(session, job, keep_checkpoint=True)
    job.status, job.attempts = JobStatus.QUEUED, job.attempts - 1
    if reason:
        job.error = f"released: {reason}; it runs again when the database can store it"
    return True


def finish(session: Session, claim: Claim, run: RunRecord, png: bytes,
           thumbnail: bytes) -> int | None:
    """Store the result and the job's new status together. Returns the result id, or None if
    the job is no longer this worker's (then nothing is written)."""
    job = _owned_job(session, claim)
    if job is None:
        return None
    result = Result(job_id=job.id, image_sha256=put_blob(session, png),
                    thumb_sha256=put_blob(session, thumbnail), width=run.image.width,
                    height=run.image.height, losses=run.losses,
                    loss_total=run.losses.get("total"), history=run.history,
                    seconds=run.seconds, device=run.device, precision=run.precision,
                    resumed_from_scale=run.resumed_from_scale,
                    iterations_run=run.iterations_run, created_at=utcnow())
    session.add(result)
    session.flush()
    _close(session, job, JobStatus.DONE, None)
    job.result_id, job.losses, job.progress = result.id, run.losses, 1.0
    job.iteration = job.total_iterations or job.iteration
    _worker_idle(session, claim, jobs_done=Worker.jobs_done + 1)
    return result.id


def work_remaining(session: Session) -> bool:
    """Anything queued, or running (a running job may yet come back to the queue)."""
    return bool(session.scalar(select(func.count()).select_from(Job)
                               .where(Job.status.in_(ACTIVE))))
