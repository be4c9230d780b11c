"""`Store`: the gallery and queue behind one object, one database URL.

Each public method is one transaction and returns plain records (nfx.store.records), so
callers never hold sessions. Reads use a plain transaction; writes use `write()`, which on
SQLite takes the write lock at BEGIN.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from nfx import budget
from nfx import images as image_io
from nfx import planner
from nfx.budget import work_factors
from nfx.labels import result_ref, varying_fields
from nfx.errors import InputError, NFXError
from nfx.scales import WorkModel
from nfx.settings import Settings
from nfx.store import db, export, gallery, jobs, workers
from nfx.store.blobs import delete_unreferenced, get_blob, put_blob, thumbnail_sha
from nfx.store.models import Batch, Image, Job, Result, ResultTag, Tag, utcnow
from nfx.store.records import (BatchRecord, GalleryCard, ImageRecord, JobRecord,
                               ResultRecord, WorkerRecord)
from nfx.store.status import ACTIVE, STATUSES, JobStatus
from nfx.store.work_queue import WorkQueue

ROLES = ("content", "style")
THUMBNAIL_SIZE = 256


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating as needed) the gallery at `url`, $NFX_DATABASE_URL, or the
    project's data/nfx.db."""
    return Store(db.resolve_url(url))


class Store:
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = db.create_db_engine(url)
        self._writer = db.writer(self.engine)
        self.queue = WorkQueue(self.write)  # what workers call
        if migrate:
            try:
                db.migrate(self.engine)
            except OperationalError as exc:  # unreachable server, unwritable file, ...
                self.engine.dispose()
                reason = " ".join(str(exc.orig).split()) if exc.orig else str(exc)
                raise NFXError(f"cannot open database {self.engine.url.render_as_string()}: "
                               f"{reason}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    # --- images --------------------------------------------------------------------------

    def add_image(self, data: bytes, name: str, role: str) -> ImageRecord:
        """Store an upload (once per picture and role); InputError, and nothing written, if
        it is not a usable image."""
        with self.write() as session:
            return _image_record(_add_image(session, data, name, role))

    def list_images(self, role: str | None = None) -> list[ImageRecord]:
        with self.read() as session:
            query = select(Image).order_by(Image.added_at.desc(), Image.id.desc())
            if role is not None:
                query = query.where(Image.role == _role(role))
            return [_image_record(i) for i in session.scalars(query)]

    def get_image(self, image_id: int) -> ImageRecord:
        with self.read() as session:
            return _image_record(_get(session, Image, image_id, "image"))

    def image_by_sha256(self, sha256: str, role: str | None = None) -> ImageRecord | None:
        """The library image with these bytes (a PNG's recorded input), or None."""
        with self.read() as session:
            query = select(Image).where(Image.sha256 == sha256).order_by(Image.id)
            if role is not None:
                query = query.where(Image.role == _role(role))
            image = session.scalars(query.limit(1)).first()
            return _image_record(image) if image is not None else None

    def blob(self, sha256: str) -> bytes:
        with self.read() as session:
            return get_blob(session, sha256)

    def thumbnail(self, sha256: str) -> bytes:
        with self.read() as session:
            return get_blob(session, thumbnail_sha(session, sha256))

    # --- batches and jobs ----------------------------------------------------------------

    def create_batch(self, content_ids: Sequence[int], style_ids: Sequence[int],
                     base: Settings, sweep: dict[str, Sequence[Any]] | None = None,
                     name: str | None = None, force: bool = False,
                     priority: int = 0, submission: str | None = None) -> BatchRecord:
        """contents × styles × sweep as one batch; jobs identical to a finished one reuse its
        result unless `force`. A `submission` key makes it idempotent: the same key again
        returns the batch it made (`resubmitted`), queueing nothing."""
        plan = planner.plan_batch(content_ids, style_ids, base, sweep)
        return self.create_planned_batch(plan, base, sweep, name, force, priority, submission)

    def create_batch_from_uploads(self, contents: Sequence[tuple[str, bytes]],
                                  styles: Sequence[tuple[str, bytes]], base: Settings,
                                  sweep: dict[str, Sequence[Any]] | None = None,
                                  name: str | None = None, force: bool = False,
                                  priority: int = 0) -> BatchRecord:
        """Uploads and the batch in one transaction: a bad file leaves nothing behind."""
        planner.plan_batch([0] * len(contents), [0] * len(styles), base, sweep)  # validate
        with self.write() as session:
            content_ids = [_add_image(session, d, n, "content").id for n, d in contents]
            style_ids = [_add_image(session, d, n, "style").id for n, d in styles]
            plan = planner.plan_batch(content_ids, style_ids, base, sweep)
            return _create_batch(session, plan, base, sweep, name, force, priority, None)

    def rerun(self, result_id: int, changes: dict[str, Any] | None = None, *,
              force: bool | None = None, priority: int = 0) -> JobRecord:
        """A new queued job from a result's settings with `changes`. With no changes it is
        forced (the user asked to run it again); with changes it may reuse an identical run."""
        changes = dict(changes or {})
        with self.write() as session:
            result = _get(session, Result, result_id, "result")
            source = session.get(Job, result.job_id)
            if source is None:
                raise InputError(f"result {result_id} has lost its job; cannot re-run it")
            settings = Settings.from_json(source.settings_json).with_changes(**changes)
            job = jobs.add_job(session, content=source.content,
                                styles=[s.image for s in source.styles], settings=settings,
                                force=not changes if force is None else force,
                                priority=priority)
            job.source_result_id = result_id
            session.flush()
            return _job_record(session, job)

    def create_planned_batch(self, plan: Sequence[planner.PlannedJob], base: Settings,
                             sweep: dict[str, Sequence[Any]] | None = None,
                             name: str | None = None, force: bool = False,
                             priority: int = 0, submission: str | None = None) -> BatchRecord:
        """A batch of jobs planned by the caller: for entries `plan_batch` cannot express,
        such as a style mix (several styles and their blend weights in one job). See
        create_batch for `submission`."""
        if not plan:
            raise InputError("a batch needs at least one job")
        try:
            with self.write() as session:
                if (earlier := _submitted(session, submission)) is not None:
                    return earlier
                return _create_batch(session, list(plan), base, sweep, name, force, priority,
                                     submission)
        except IntegrityError:  # the same submission committed meanwhile (PostgreSQL)
            with self.read() as session:
                if (earlier := _submitted(session, submission)) is not None:
                    return earlier
            raise

    def batch_varying(self, batch_ids: Sequence[int]) -> dict[int, list[str]]:
        """For each batch, the settings whose values differ between its jobs: what a job's
        label must show to be told apart from its neighbours."""
        ids = sorted(set(batch_ids))
        if not ids:
            return {}
        with self.read() as session:
            rows = session.execute(select(Job.batch_id, Job.settings_json)
                                   .where(Job.batch_id.in_(ids)).distinct()).all()
        settings: dict[int, list[Settings]] = {}
        for batch_id, text in rows:
            settings.setdefault(batch_id, []).append(Settings.from_json(text))
        return {batch_id: varying_fields(group) for batch_id, group in settings.items()}

    def result_settings(self, result_ids: Sequence[int]) -> dict[int, Settings]:
        """Each result's settings (those of the job that made it): what a re-run's label
        compares with. Deleted results are left out."""
        ids = sorted(set(result_ids))
        if not ids:
            return {}
        with self.read() as session:
            rows = session.execute(select(Result.id, Job.settings_json)
                                   .join(Job, Job.id == Result.job_id)
                                   .where(Result.id.in_(ids))).all()
        return {result_id: Settings.from_json(text) for result_id, text in rows}

    def get_batch(self, batch_id: int) -> BatchRecord:
        with self.read() as session:
            return _batch_record(session, _get(session, Batch, batch_id, "batch"))

    def list_batches(self) -> list[BatchRecord]:
        with self.read() as session:
            batches = session.scalars(select(Batch).order_by(Batch.id.desc())).all()
            return [_batch_record(session, b) for b in batches]

    def active_batch_ids(self) -> set[int]:
        """Batches with a job queued or running: what the Queue page follows."""
        with self.read() as session:
            return set(session.scalars(select(Job.batch_id).distinct().where(
                Job.status.in_(ACTIVE), Job.batch_id.is_not(None))))

    def batches(self, batch_ids: Sequence[int]) -> list[BatchRecord]:
        """These batches, newest first (ids that do not exist are left out)."""
        with self.read() as session:
            rows = session.scalars(select(Batch).where(Batch.id.in_(sorted(set(batch_ids))))
                                   .order_by(Batch.id.desc())).all()
            return [_batch_record(session, b) for b in rows]

    def recent_batch_ids(self, limit: int) -> list[int]:
        with self.read() as session:
            return list(session.scalars(select(Batch.id).order_by(Batch.id.desc())
                                        .limit(limit)))

    def list_jobs(self, status: str | Sequence[str] | None = None,
                  batch_id: int | None = None, limit: int | None = 200) -> list[JobRecord]:
        """Jobs in queue order: running, then queued by priority and age, then the rest newest
        first."""
        with self.read() as session:
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
        with self.read() as session:
            return _job_record(session, _get(session, Job, job_id, "job"))

    def cancel_job(self, job_id: int) -> JobRecord:
        """Queued: canceled now. Running: the worker is asked to stop (within a few
        iterations)."""
        return self._job_action(jobs.cancel, job_id)

    def move_to_front(self, job_id: int) -> JobRecord:
        """Raise a queued job's priority above every other queued job."""
        return self._job_action(jobs.move_to_front, job_id)

    def retry_job(self, job_id: int, changes: dict[str, Any] | None = None) -> JobRecord:
        """Failed or canceled → queued, from the start, with a fresh count of attempts; with
        `changes`, under those settings (a memory budget that fits, fewer steps, ...)."""
        return self._job_action(lambda session, i: jobs.retry(session, i, changes), job_id)

    def _job_action(self, action, job_id: int) -> JobRecord:
        with self.write() as session:
            job = action(session, job_id)
            session.flush()
            return _job_record(session, job)

    def count_results(self) -> int:
        """Results in the gallery (a result re-used by several jobs counts once)."""
        with self.read() as session:
            return session.scalar(select(func.count()).select_from(Result))

    def queue_counts(self) -> dict[JobStatus, int]:
        with self.read() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
            counts = dict.fromkeys(STATUSES, 0)
            counts.update({status: n for status, n in rows})
            return counts

    def list_workers(self) -> list[WorkerRecord]:
        with self.read() as session:
            return workers.records(session)

    def work_model(self) -> WorkModel | None:
        """How long runs take here: the workers' measured model, corrected by the median
        ratio of actual to predicted time over recent results; from results alone when no
        worker has measured one; None before either exists."""
        with self.read() as session:
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

    # --- gallery -------------------------------------------------------------------------

    def query_gallery(self, flt: gallery.GalleryFilter | None = None, page: int = 0,
                      page_size: int = 24) -> list[GalleryCard]:
        flt = flt or gallery.GalleryFilter()
        if page < 0 or page_size < 1:
            raise InputError("page must be >= 0 and page_size >= 1")
        with self.read() as session:
            rows = session.execute(gallery.gallery_select(flt)
                                   .options(selectinload(Result.tags))
                                   .offset(page * page_size).limit(page_size)).all()
            return [_card(job, result) for job, result in rows]

    def count_gallery(self, flt: gallery.GalleryFilter | None = None) -> int:
        with self.read() as session:
            return session.scalar(gallery.count_select(flt or gallery.GalleryFilter()))

    def get_result(self, result_id: int) -> ResultRecord:
        with self.read() as session:
            return _result_record(session, _get(session, Result, result_id, "result"))

    def find_result(self, image_sha256: str, content_sha256: str | None = None,
                    style_sha256s: Sequence[str] = (), settings: Settings | None = None
                    ) -> int | None:
        """The gallery's result for a PNG: the one stored with exactly these bytes, else the
        finished run of these inputs and settings (a PNG the CLI made, say); None if none."""
        with self.read() as session:
            found = session.scalar(select(Result.id).where(Result.image_sha256 == image_sha256)
                                   .limit(1))
            if found is None and content_sha256 and settings is not None:
                digest = planner.input_digest(content_sha256, style_sha256s, settings)
                result = jobs.finished_result(session, digest)
                found = result.id if result is not None else None
            return found

    def result_png(self, result_id: int) -> bytes:
        """The output PNG, with its settings embedded (the worker stores it that way)."""
        with self.read() as session:
            result = _get(session, Result, result_id, "result")
            return get_blob(session, result.image_sha256)

    def set_favourite(self, result_id: int, favourite: bool = True) -> None:
        with self.write() as session:
            _get(session, Result, result_id, "result").favourite = bool(favourite)

    def set_tags(self, result_id: int, tags: Sequence[str]) -> tuple[str, ...]:
        """Replace a result's tags (trimmed, lower-cased, unique)."""
        names = sorted({t.strip().lower() for t in tags if t.strip()})
        if any(len(n) > 64 for n in names):
            raise InputError("tags must be at most 64 characters")
        with self.write() as session:
            result = _get(session, Result, result_id, "result")
            existing = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(names)))}
            for name in names:
                if name not in existing:
                    existing[name] = Tag(name=name)
                    session.add(existing[name])
            result.tags = [existing[n] for n in names]
            session.flush()
            session.execute(delete(Tag).where(~Tag.id.in_(select(ResultTag.tag_id))))
            return tuple(names)

    def all_tags(self) -> list[str]:
        with self.read() as session:
            return list(session.scalars(select(Tag.name).order_by(Tag.name)))

    def result_job_ids(self, result_id: int) -> list[int]:
        """The jobs that show a result (its own and re-used runs): they go when it is
        deleted."""
        with self.read() as session:
            _get(session, Result, result_id, "result")
            return list(session.scalars(select(Job.id).where(Job.result_id == result_id)
                                        .order_by(Job.id)))

    def delete_result(self, result_id: int) -> None:
        """Remove a result and the images nothing else uses. The jobs that showed it stay as
        `deleted` (no picture), so that their batch's grid says "deleted" where they were."""
        with self.write() as session:
            result = _get(session, Result, result_id, "result")
            digests = {result.image_sha256, result.thumb_sha256}
            for job in session.scalars(select(Job).where(Job.result_id == result_id)):
                job.status, job.result_id, job.preview_png = JobStatus.DELETED, None, None
                job.error = f"its result {result_ref(result_id)} was deleted"
            session.flush()
            session.delete(result)
            session.flush()
            session.execute(delete(Tag).where(~Tag.id.in_(select(ResultTag.tag_id))))
            delete_unreferenced(session, digests)

    def batch_results(self, batch_id: int) -> list[ResultRecord]:
        with self.read() as session:
            _get(session, Batch, batch_id, "batch")
            rows = session.execute(
                select(Job, Result).join(Result, Job.result_id == Result.id)
                .where(Job.batch_id == batch_id, Job.status == JobStatus.DONE)
                .order_by(Job.id)).all()
            return [_result_record(session, result, job) for job, result in rows]

    def export_results(self, result_ids: Sequence[int]) -> bytes:
        """ZIP of chosen results (a gallery selection), laid out as export_batch does."""
        results = [self.get_result(i) for i in dict.fromkeys(result_ids)]
        if not results:
            raise InputError("no results to export")
        with self.read() as session:
            return export.batch_zip(results, lambda r: get_blob(session, r.image_sha256))

    def export_batch(self, batch_id: int) -> bytes:
        """ZIP of the batch's PNGs (settings embedded) and settings.csv."""
        results = self.batch_results(batch_id)
        if not results:
            raise InputError(f"batch {batch_id} has no finished results to export")
        with self.read() as session:
            return export.batch_zip(results, lambda r: get_blob(session, r.image_sha256))


# --- helpers: one transaction's worth of work, on a session ----------------------------------


def _statuses(status: str | Sequence[str]) -> tuple[JobStatus, ...]:
    """Status names as JobStatus values; InputError naming the valid ones."""
    names = (status,) if isinstance(status, str) else tuple(status)
    try:
        return tuple(JobStatus(name) for name in names)
    except ValueError:
        bad = next(n for n in names if n not in STATUSES)
        raise InputError(f"unknown status {bad!r}; statuses are: "
                         + ", ".join(STATUSES)) from None


def _role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"image role must be 'content' or 'style', not {role!r}")
    return role


def _get(session: Session, model, key: int, what: str):
    row = session.get(model, key)
    if row is None:
        raise InputError(f"no {what} with id {key}")
    return row


def _add_image(session: Session, data: bytes, name: str, role: str) -> Image:
    role = _role(role)
    name = (name or "image").strip()[:255] or "image"
    picture = image_io.load_image(data, name)  # InputError for anything unusable
    digest = put_blob(session, data)
    existing = session.scalar(select(Image).where(Image.sha256 == digest, Image.role == role))
    if existing is not None:
        return existing
    image = Image(sha256=digest, name=name, role=role, width=picture.width,
                  height=picture.height, added_at=utcnow(),
                  thumb_sha256=put_blob(session, image_io.thumbnail_bytes(picture,
                                                                          THUMBNAIL_SIZE)))
    session.add(image)
    session.flush()
    return image


def _submitted(session: Session, submission: str | None) -> BatchRecord | None:
    """The batch an earlier send of this form submission made, if any."""
    if submission is None:
        return None
    batch = session.scalar(select(Batch).where(Batch.submission == submission))
    return None if batch is None else replace(_batch_record(session, batch), resubmitted=True)


def _create_batch(session: Session, plan: list[planner.PlannedJob], base: Settings,
                  sweep: dict[str, Sequence[Any]] | None, name: str | None, force: bool,
                  priority: int, submission: str | None) -> BatchRecord:
    ids = {p.content_id for p in plan} | {s for p in plan for s in p.style_ids}
    images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
    missing = sorted(ids - set(images))
    if missing:
        raise InputError(f"no image with id {missing[0]}")
    for p in plan:  # a job that cannot fit its memory budget is refused now, not at run time
        content = images[p.content_id]
        budget.check_fits((content.width, content.height), p.settings)
    batch = Batch(name=name or f"batch {utcnow():%Y-%m-%d %H:%M:%S}",
                  base_settings_json=base.to_json(), created_at=utcnow(),
                  sweep={k: list(v) for k, v in (sweep or {}).items()}, submission=submission)
    session.add(batch)
    session.flush()
    for p in plan:
        jobs.add_job(session, content=images[p.content_id],
                      styles=[images[s] for s in p.style_ids], settings=p.settings,
                      batch_id=batch.id, force=force, priority=priority)
    session.flush()
    return _batch_record(session, batch)


def _image_record(image: Image) -> ImageRecord:
    return ImageRecord(id=image.id, sha256=image.sha256, name=image.name, role=image.role,
                       width=image.width, height=image.height, added_at=image.added_at)


def _batch_record(session: Session, batch: Batch) -> BatchRecord:
    counts = dict(session.execute(select(Job.status, func.count()).where(
        Job.batch_id == batch.id).group_by(Job.status)).all())
    reused = session.scalar(select(func.count()).where(Job.batch_id == batch.id,
                                                      Job.reused.is_(True)))
    return BatchRecord(id=batch.id, name=batch.name, created_at=batch.created_at,
                       job_count=sum(counts.values()), reused_count=reused, counts=counts,
                       base=Settings.from_json(batch.base_settings_json),
                       sweep=dict(batch.sweep or {}))


def _job_records(session: Session, jobs: Sequence[Job]) -> list[JobRecord]:
    result_ids = {j.result_id for j in jobs if j.result_id is not None}
    seconds = dict(session.execute(select(Result.id, Result.seconds)
                                   .where(Result.id.in_(result_ids))).all()) if result_ids else {}
    return [_job_record(session, j, seconds.get(j.result_id)) for j in jobs]


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
        source_result_id=job.source_result_id)


def _card(job: Job, result: Result | None) -> GalleryCard:
    return GalleryCard(
        job_id=job.id, result_id=result.id if result else None, batch_id=job.batch_id,
        status=job.status, content_id=job.content_id, content_name=job.content.name,
        style_ids=job.style_ids, style_names=tuple(s.image.name for s in job.styles),
        thumb_sha256=result.thumb_sha256 if result else None,
        image_sha256=result.image_sha256 if result else None,
        settings=Settings.from_json(job.settings_json), losses=dict(job.losses or {}),
        seconds=result.seconds if result else None, created_at=job.created_at,
        favourite=bool(result and result.favourite),
        tags=tuple(t.name for t in result.tags) if result else (), progress=job.progress,
        error=job.error, made_at=job.finished_at, source_result_id=job.source_result_id)


def _result_record(session: Session, result: Result, job: Job | None = None) -> ResultRecord:
    job = job or session.get(Job, result.job_id) or session.scalars(
        select(Job).where(Job.result_id == result.id).limit(1)).first()
    if job is None:
        raise InputError(f"result {result.id} has no job")
    return ResultRecord(
        id=result.id, job_id=job.id, batch_id=job.batch_id, image_sha256=result.image_sha256,
        width=result.width, height=result.height, content=_image_record(job.content),
        styles=tuple(_image_record(s.image) for s in job.styles),
        settings=Settings.from_json(job.settings_json), losses=dict(result.losses),
        history=list(result.history), seconds=result.seconds, device=result.device,
        precision=result.precision, created_at=result.created_at, favourite=result.favourite,
        tags=tuple(t.name for t in result.tags),
        resumed_from_scale=result.resumed_from_scale or 0,
        iterations_run=result.iterations_run, source_result_id=job.source_result_id)
