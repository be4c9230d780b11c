"""The queue: batches and their jobs, what users do to jobs, the workers, and each worker's
calls, behind one object over a Store's database (one transaction a call).

The rules of a job's life live in `nfx.queue.jobs`, those of the workers table in
`nfx.queue.workers`; this only opens the transaction around each step and hands out plain
records (`nfx.queue.records`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nfx.errors import InputError
from nfx.labels import plural
from nfx.people import LOCAL, Person
from nfx.planning import batch as planner
from nfx.planning import budget
from nfx.planning.budget import work_factors
from nfx.planning.work import WorkModel
from nfx.queue import jobs, workers
from nfx.queue.jobs import Claim, Ownership
from nfx.queue.records import BatchRecord, JobRecord, WorkerRecord
from nfx.run_record import RunRecord
from nfx.regions import RegionMap
from nfx.settings import Settings
from nfx.status import ACTIVE, STATUSES, JobStatus, WorkerState
from nfx.store import Store, open_store
from nfx.store.models import Batch, Image, Job, Result, utcnow
from nfx.store.store import add_image_row, get_row


def open_queue(url: str | None = None) -> Queue:
    """The queue of the gallery at `url` (see nfx.store.open_store)."""
    return Queue(open_store(url))


class Queue:
    def __init__(self, store: Store, max_queued_per_person: int | None = None) -> None:
        """`max_queued_per_person`: how many queued jobs one person may have at once (the
        app's cap on a shared server); None or 0: no cap (the command line's)."""
        self.store = store
        self.max_queued = max_queued_per_person or None

    def __repr__(self) -> str:
        return f"Queue({self.store!r})"

    # --- batches and jobs ----------------------------------------------------------------

    def create_batch(self, content_ids: Sequence[int], style_ids: Sequence[int],
                     base: Settings, sweep: Mapping[str, Sequence[Any]] | None = None,
                     name: str | None = None, force: bool = False,
                     priority: int = 0, submission: str | None = None,
                     person: Person = LOCAL) -> BatchRecord:
        """contents × styles × sweep as one batch, `person`'s; jobs identical to a finished
        one reuse its result unless `force`. A `submission` key makes it idempotent: the same
        key again returns the batch it made (`resubmitted`), queueing nothing."""
        plan = planner.plan_batch(content_ids, style_ids, base, sweep)
        return self.create_planned_batch(plan, base, sweep, name, force, priority, submission,
                                         person=person)

    def create_batch_from_uploads(self, contents: Sequence[tuple[str, bytes]],
                                  styles: Sequence[tuple[str, bytes]], base: Settings,
                                  sweep: Mapping[str, Sequence[Any]] | None = None,
                                  name: str | None = None, force: bool = False,
                                  priority: int = 0,
                                  masks: Mapping[int, tuple[str, bytes]] | None = None,
                                  regions: RegionMap | None = None,
                                  person: Person = LOCAL) -> BatchRecord:
        """Uploads and the batch in one transaction, `person`'s: a bad file leaves nothing
        behind. `masks` (name, bytes) by the position of their photo in `contents` share
        `regions` out: each colour's number names a style of `styles`."""
        planner.plan_batch([0] * len(contents), [0] * len(styles), base, sweep)  # validate
        masks = masks or {}
        if masks and regions is None:
            raise InputError("a mask needs its regions' assignments, like --region "
                             "'#ff0000=1'")
        with self.store.write() as session:
            content_ids = [add_image_row(session, d, n, "content").id for n, d in contents]
            style_ids = [add_image_row(session, d, n, "style").id for n, d in styles]
            plans = {content_ids[i]: planner.MaskPlan(add_image_row(session, d, n, "mask").id,
                                                      regions)
                     for i, (n, d) in masks.items() if regions is not None}
            plan = planner.plan_batch(content_ids, style_ids, base, sweep, plans)
            batch = _create_batch(session, plan, base, sweep, name, force, priority, None,
                                  person.name)
            self._check_cap(session, person.name, batch.counts.get(JobStatus.QUEUED, 0))
            return batch

    def rerun(self, result_id: int, changes: dict[str, Any] | None = None, *,
              force: bool | None = None, priority: int = 0,
              person: Person = LOCAL) -> JobRecord:
        """A new queued job of `person`'s from a result's settings with `changes` (anyone's
        result: re-running it takes nothing from its owner). With no changes it is forced
        (the user asked to run it again); with changes it may reuse an identical run."""
        changes = dict(changes or {})
        with self.store.write() as session:
            result = get_row(session, Result, result_id, "result")
            source = session.get(Job, result.job_id)
            if source is None:
                raise InputError(f"result {result_id} has lost its job; cannot re-run it")
            settings = Settings.from_json(source.settings_json).with_changes(**changes)
            job = jobs.add_job(session, content=source.content,
                                styles=[s.image for s in source.styles], settings=settings,
                                force=not changes if force is None else force,
                                priority=priority, mask=source.mask,
                                regions=jobs.job_regions(source), owner=person.name)
            job.source_result_id = result_id
            session.flush()
            self._check_cap(session, person.name, int(job.status == JobStatus.QUEUED))
            return _job_record(session, job)

    def create_planned_batch(self, plan: Sequence[planner.PlannedJob], base: Settings,
                             sweep: Mapping[str, Sequence[Any]] | None = None,
                             name: str | None = None, force: bool = False,
                             priority: int = 0, submission: str | None = None,
                             person: Person = LOCAL) -> BatchRecord:
        """A batch of jobs planned by the caller: for entries `plan_batch` cannot express,
        such as a style mix (several styles and their blend weights in one job). See
        create_batch for `submission`."""
        if not plan:
            raise InputError("a batch needs at least one job")
        try:
            with self.store.write() as session:
                if (earlier := _submitted(session, submission)) is not None:
                    return earlier
                batch = _create_batch(session, list(plan), base, sweep, name, force,
                                      priority, submission, person.name)
                self._check_cap(session, person.name, batch.counts.get(JobStatus.QUEUED, 0))
                return batch
        except IntegrityError:  # the same submission committed meanwhile (PostgreSQL)
            with self.store.read() as session:
                if (earlier := _submitted(session, submission)) is not None:
                    return earlier
            raise

    def get_batch(self, batch_id: int) -> BatchRecord:
        with self.store.read() as session:
            return _batch_record(session, get_row(session, Batch, batch_id, "batch"))

    def list_batches(self) -> list[BatchRecord]:
        with self.store.read() as session:
            batches = session.scalars(select(Batch).order_by(Batch.id.desc())).all()
            return [_batch_record(session, b) for b in batches]

    def active_batch_ids(self) -> set[int]:
        """Batches with a job queued or running: what the Queue page follows."""
        with self.store.read() as session:
            return set(session.scalars(select(Job.batch_id).distinct().where(
                Job.status.in_(ACTIVE), Job.batch_id.is_not(None))))

    def batches(self, batch_ids: Sequence[int]) -> list[BatchRecord]:
        """These batches, newest first (ids that do not exist are left out)."""
        with self.store.read() as session:
            rows = session.scalars(select(Batch).where(Batch.id.in_(sorted(set(batch_ids))))
                                   .order_by(Batch.id.desc())).all()
            return [_batch_record(session, b) for b in rows]

    def recent_batch_ids(self, limit: int) -> list[int]:
        with self.store.read() as session:
            return list(session.scalars(select(Batch.id).order_by(Batch.id.desc())
                                        .limit(limit)))

    def list_jobs(self, status: str | Sequence[str] | None = None,
                  batch_id: int | None = None, limit: int | None = 200) -> list[JobRecord]:
        """Jobs in queue order: running, then queued by priority and age, then the rest newest
        first."""
        with self.store.read() as session:
            query = select(Job)
            if status is not None:
                query = query.where(Job.status.in_(_statuses(status)))
            if batch_id is not None:
                query = query.where(Job.batch_id == batch_id)
            query = query.order_by((Job.status != JobStatus.RUNNING),
                                   (Job.status != JobStatus.QUEUED),
                                   Job.priority.desc(), Job.created_at, Job.id).limit(limit)
            jobs = session.scalars(query).all()
            return _job_records(session, jobs)

    def get_job(self, job_id: int) -> JobRecord:
        with self.store.read() as session:
            return _job_record(session, get_row(session, Job, job_id, "job"))

    def cancel_job(self, job_id: int, person: Person = LOCAL) -> JobRecord:
        """Queued: canceled now. Running: the worker is asked to stop (within a few
        iterations). Only the job's owner or an admin may (NotPermitted); so for the rest."""
        return self._job_action(lambda session, i: jobs.cancel(session, i, person), job_id)

    def move_to_front(self, job_id: int, person: Person = LOCAL) -> JobRecord:
        """Raise a queued job's priority above every other queued job."""
        return self._job_action(lambda session, i: jobs.move_to_front(session, i, person),
                                job_id)

    def retry_job(self, job_id: int, changes: dict[str, Any] | None = None,
                  person: Person = LOCAL) -> JobRecord:
        """Failed or canceled → queued, from the start, with a fresh count of attempts; with
        `changes`, under those settings (a memory budget that fits, fewer steps, ...)."""
        def retry(session: Session, i: int) -> Job:
            job = jobs.retry(session, i, changes, person)
            session.flush()
            self._check_cap(session, job.owner, int(job.status == JobStatus.QUEUED))
            return job
        return self._job_action(retry, job_id)

    def _job_action(self, action: Callable[[Session, int], Job], job_id: int) -> JobRecord:
        with self.store.write() as session:
            job = action(session, job_id)
            session.flush()
            return _job_record(session, job)

    def _check_cap(self, session: Session, owner: str, added: int) -> None:
        """Refuse, in one line (the transaction rolls back), what takes `owner` over the
        cap on queued jobs a person may have."""
        if self.max_queued is None or not added:
            return
        queued = session.scalar(select(func.count()).select_from(Job).where(
            Job.owner == owner, Job.status == JobStatus.QUEUED)) or 0
        if queued > self.max_queued:
            raise InputError(f"{owner} has {plural(queued - added, 'job')} queued and may "
                             f"have at most {self.max_queued}: this would queue "
                             f"{added} more. Wait for some to run, or cancel some.")

    def queue_counts(self) -> dict[JobStatus, int]:
        with self.store.read() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
            counts = dict.fromkeys(STATUSES, 0)
            counts.update({status: n for status, n in rows})
            return counts

    def list_workers(self) -> list[WorkerRecord]:
        with self.store.read() as session:
            return workers.records(session)

    def work_model(self) -> WorkModel | None:
        """How long runs take here: the workers' measured model, corrected by the median
        ratio of actual to predicted time over recent results; from results alone when no
        worker has measured one; None before either exists."""
        with self.store.read() as session:
            model = workers.calibrated(session)
            rows = session.execute(select(Result.width, Result.height, Result.seconds,
                                          Job.settings_json)
                                   .join(Job, Job.id == Result.job_id)
                                   .where(Result.resumed_from_scale == 0)  # whole runs only
                                   .order_by(Result.id.desc()).limit(50)).all()
        measured = []
        for width, height, seconds, settings_json in rows:
            settings = Settings.from_json(settings_json)
            predicted = (model or WorkModel(1.0)).seconds((width, height), settings,
                                                          work_factors(settings))
            if predicted > 0 and seconds > 0:
                measured.append(seconds / predicted)
        if not measured:
            return model
        return (model or WorkModel(1.0)).scaled(statistics.median(measured))

    # --- a worker's calls ----------------------------------------------------------------

    def claim_next(self, worker: str, lease: float = jobs.DEFAULT_LEASE_SECONDS,
                   **memory: int | None) -> Claim | None:
        with self.store.write() as session:
            return jobs.claim_next(session, worker, lease, **memory)

    def heartbeat(self, claim: Claim, lease: float, **progress: Any) -> Ownership:
        with self.store.write() as session:
            return jobs.heartbeat(session, claim, lease, **progress)

    def save_checkpoint(self, claim: Claim, scales_done: int, png: bytes,
                        history: list[dict[str, Any]]) -> bool:
        with self.store.write() as session:
            return jobs.save_checkpoint(session, claim, scales_done, png, history)

    def finish(self, claim: Claim, run: RunRecord, png: bytes, thumbnail: bytes) -> int | None:
        with self.store.write() as session:
            return jobs.finish(session, claim, run, png, thumbnail)

    def fail(self, claim: Claim, message: str) -> bool:
        with self.store.write() as session:
            return jobs.fail(session, claim, message)

    def canceled(self, claim: Claim) -> bool:
        with self.store.write() as session:
            return jobs.canceled(session, claim)

    def release(self, claim: Claim, reason: str | None = None) -> bool:
        with self.store.write() as session:
            return jobs.release(session, claim, reason)

    def requeue_expired(self) -> int:
        with self.store.write() as session:
            return jobs.requeue_expired(session)

    def work_remaining(self) -> bool:
        with self.store.write() as session:
            return jobs.work_remaining(session)

    # --- the workers table ---------------------------------------------------------------

    def register_worker(self, name: str, host: str, pid: int, device: str, lease: float,
                        work: WorkModel | None = None,
                        state: WorkerState = WorkerState.IDLE) -> None:
        with self.store.write() as session:
            workers.register(session, name, host, pid, device, lease, work, state)

    def worker_ready(self, name: str, device: str, work: WorkModel | None) -> None:
        with self.store.write() as session:
            workers.ready(session, name, device, work)

    def worker_seen(self, name: str, *, stopped: bool = False,
                    state: WorkerState | None = None, problem: str | None = None) -> None:
        with self.store.write() as session:
            workers.seen(session, name, stopped=stopped, state=state, problem=problem)

    def worker_exited(self, host: str, pid: int, cause: str, signal: str | None = None,
                      oom_kills: int | None = None) -> workers.Exit:
        with self.store.write() as session:
            return workers.exited(session, host, pid, cause, signal, oom_kills)

    def begin_calibration(self, name: str, host: str, device: str
                          ) -> tuple[WorkModel | None, bool]:
        with self.store.write() as session:
            return workers.begin_calibration(session, name, host, device)

    def calibrated(self, host: str | None = None, device: str | None = None
                   ) -> WorkModel | None:
        with self.store.write() as session:
            return workers.calibrated(session, host, device)


# --- helpers: one transaction's worth of work, on a session ---------------------------------


def _statuses(status: str | Sequence[str]) -> tuple[JobStatus, ...]:
    """Status names as JobStatus values; InputError naming the valid ones."""
    names = (status,) if isinstance(status, str) else tuple(status)
    try:
        return tuple(JobStatus(name) for name in names)
    except ValueError:
        bad = next(n for n in names if n not in STATUSES)
        raise InputError(f"unknown status {bad!r}; statuses are: "
                         + ", ".join(STATUSES)) from None


def _submitted(session: Session, submission: str | None) -> BatchRecord | None:
    """The batch an earlier send of this form submission made, if any."""
    if submission is None:
        return None
    batch = session.scalar(select(Batch).where(Batch.submission == submission))
    return None if batch is None else replace(_batch_record(session, batch), resubmitted=True)


def _create_batch(session: Session, plan: list[planner.PlannedJob], base: Settings,
                  sweep: Mapping[str, Sequence[Any]] | None, name: str | None, force: bool,
                  priority: int, submission: str | None, owner: str) -> BatchRecord:
    ids = ({p.content_id for p in plan} | {s for p in plan for s in p.style_ids}
           | {p.mask_id for p in plan if p.mask_id is not None})
    images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
    missing = sorted(ids - set(images))
    if missing:
        raise InputError(f"no image with id {missing[0]}")
    for p in plan:  # a job that cannot fit its memory budget is refused now, not at run time
        content = images[p.content_id]
        budget.check_fits((content.width, content.height), p.settings)
    batch = Batch(name=name or f"batch {utcnow():%Y-%m-%d %H:%M:%S}",
                  base_settings_json=base.to_json(), created_at=utcnow(),
                  sweep={k: list(v) for k, v in (sweep or {}).items()}, submission=submission,
                  owner=owner)
    session.add(batch)
    session.flush()
    for p in plan:
        jobs.add_job(session, content=images[p.content_id],
                      styles=[images[s] for s in p.style_ids], settings=p.settings,
                      batch_id=batch.id, force=force, priority=priority,
                      mask=images[p.mask_id] if p.mask_id is not None else None,
                      regions=p.regions, owner=owner)
    session.flush()
    return _batch_record(session, batch)


def _batch_record(session: Session, batch: Batch) -> BatchRecord:
    counts = dict(session.execute(select(Job.status, func.count()).where(
        Job.batch_id == batch.id).group_by(Job.status)).all())
    reused = session.scalar(select(func.count()).where(Job.batch_id == batch.id,
                                                      Job.reused.is_(True)))
    assert reused is not None, "COUNT always returns a row"
    return BatchRecord(id=batch.id, name=batch.name, created_at=batch.created_at,
                       job_count=sum(counts.values()), reused_count=reused, counts=counts,
                       base=Settings.from_json(batch.base_settings_json),
                       sweep=dict(batch.sweep or {}), owner=batch.owner)


def _job_records(session: Session, jobs: Sequence[Job]) -> list[JobRecord]:
    result_ids = {j.result_id for j in jobs if j.result_id is not None}
    seconds = dict(session.execute(select(Result.id, Result.seconds)
                                   .where(Result.id.in_(result_ids))).all()) if result_ids else {}
    return [_job_record(session, j, seconds.get(j.result_id) if j.result_id is not None else None)
            for j in jobs]


def _job_record(session: Session, job: Job, seconds: float | None = None) -> JobRecord:
    if seconds is None and job.result_id is not None:
        seconds = session.scalar(select(Result.seconds).where(Result.id == job.result_id))
    return JobRecord(
        id=job.id, batch_id=job.batch_id, status=job.status, priority=job.priority,
        attempts=job.attempts, error=job.error, progress=job.progress, iteration=job.iteration,
        total_iterations=job.total_iterations, losses=dict(job.losses or {}),
        preview_png=job.preview_png, worker=job.worker, content_id=job.content_id,
        style_ids=job.style_ids, settings=Settings.from_json(job.settings_json),
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        result_id=job.result_id, content_name=job.content.name,
        style_names=tuple(s.image.name for s in job.styles), reused=job.reused,
        cancel_requested=job.cancel_requested, max_attempts=job.max_attempts,
        heartbeat_at=job.heartbeat_at, seconds=seconds, lease_until=job.lease_until,
        checkpoint_scales=job.checkpoint_scales or 0, seconds_left=job.seconds_left,
        source_result_id=job.source_result_id, blamed_deaths=job.blamed_deaths or 0,
        deaths=tuple(job.deaths or ()), mask_id=job.mask_id,
        mask_name=job.mask.name if job.mask else None, regions=jobs.job_regions(job),
        owner=job.owner)
