"""`Store`: the gallery's database behind one object, one URL: the picture library, the
results with their tags and favourites, the gallery's queries and exports. The queue that
fills it is `nfx.queue.Queue`, over the same Store.

Each public method is one transaction and returns plain records (nfx.store.records), so
callers never hold sessions. Reads use a plain transaction; writes use `write()`, which on
SQLite takes the write lock at BEGIN.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, selectinload

from nfx import images as image_io
from nfx.errors import DatabaseUnavailable, InputError, StorageRefused
from nfx.labels import result_ref, varying_fields
from nfx.people import LOCAL, LOCAL_NAME, Person
from nfx.planning import batch as planner
from nfx.regions import RegionMap
from nfx.settings import Settings
from nfx.status import JobStatus
from nfx.store import db, export, gallery, outages
from nfx.store.blobs import delete_unreferenced, get_blob, put_blob, thumbnail_sha
from nfx.store.models import Batch, Image, Job, Result, ResultTag, Star, Tag, utcnow
from nfx.store.records import GalleryCard, ImageRecord, ResultRecord

ROLES = ("content", "style", "mask")  # a mask: a picture of regions (nfx.regions)
PATIENCE_SECONDS = 5.0  # how long one transaction waits for an unreachable database
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.1, 2.0
THUMBNAIL_SIZE = 256


def open_store(url: str | None = None, patience: float = PATIENCE_SECONDS) -> Store:
    """Open (creating and migrating as needed) the gallery at `url`, $NFX_DATABASE_URL, or the
    project's data/nfx.db; `patience`: seconds one transaction waits out an outage."""
    return Store(db.resolve_url(url), patience=patience)


class Store:
    def __init__(self, url: str, *, migrate: bool = True,
                 patience: float = PATIENCE_SECONDS) -> None:
        self.url, self.patience = url, patience
        # "database", not "engine": in NFX the engine is the style-transfer one
        self.database: sqlalchemy.Engine = db.create_db_engine(url)
        self._writer = db.writer(self.database)
        if migrate:
            try:
                db.migrate(self.database)
            except OperationalError as exc:  # unreachable server, unwritable file, ...
                self.database.dispose()
                reason = " ".join(str(exc.orig).split()) if exc.orig else str(exc)
                raise DatabaseUnavailable(
                    f"cannot open database {self.database.url.render_as_string()}: "
                    f"{reason}") from None
            except ProgrammingError as exc:  # a role that may not upgrade the schema
                self.database.dispose()
                if (refused := outages.classify(exc)) is None:
                    raise
                raise StorageRefused(f"cannot upgrade database {self!r}: {refused}") from None

    def close(self) -> None:
        self.database.dispose()

    def __repr__(self) -> str:
        return f"Store({self.database.url.render_as_string(hide_password=True)!r})"

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._transaction(self.database) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with self._transaction(self._writer) as session:
            yield session

    @contextmanager
    def _transaction(self, bind: sqlalchemy.Engine) -> Iterator[Session]:
        """A transaction whose connection is taken at once, retried for `patience` seconds
        while the database is away (a server restart, SQLite's write lock held by another
        process); an outage that lasts raises DatabaseUnavailable, a full disk or read-only
        database StorageRefused (nfx.store.outages), nothing written either way."""
        deadline, pause = time.monotonic() + self.patience, RETRY_FIRST_SECONDS
        while True:
            session = Session(bind, expire_on_commit=False)
            try:
                transaction = session.begin()
                session.connection()  # connect (pre-pinged) and BEGIN now, where it is safe
                break                 # to retry: nothing has run yet
            except DBAPIError as exc:
                session.close()
                outage = outages.classify(exc)
                if not isinstance(outage, DatabaseUnavailable) or time.monotonic() > deadline:
                    raise (outage or exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_SECONDS)
        try:
            with session:
                try:
                    yield session
                except BaseException:
                    with contextlib.suppress(DBAPIError):  # a dead connection cannot roll back
                        transaction.rollback()
                    raise
                transaction.commit()
        except DBAPIError as exc:
            outage = outages.classify(exc)
            if outage is None:
                raise
            raise outage from exc

    # --- images --------------------------------------------------------------------------

    def add_image(self, data: bytes, name: str, role: str) -> ImageRecord:
        """Store an upload (once per picture and role); InputError, and nothing written, if
        it is not a usable image."""
        with self.write() as session:
            return image_record(add_image_row(session, data, name, role))

    def list_images(self, role: str | None = None) -> list[ImageRecord]:
        with self.read() as session:
            query = select(Image).order_by(Image.added_at.desc(), Image.id.desc())
            if role is not None:
                query = query.where(Image.role == _role(role))
            return [image_record(i) for i in session.scalars(query)]

    def get_image(self, image_id: int) -> ImageRecord:
        with self.read() as session:
            return image_record(get_row(session, Image, image_id, "image"))

    def image_by_sha256(self, sha256: str, role: str | None = None) -> ImageRecord | None:
        """The library image with these bytes (a PNG's recorded input), or None."""
        with self.read() as session:
            query = select(Image).where(Image.sha256 == sha256).order_by(Image.id)
            if role is not None:
                query = query.where(Image.role == _role(role))
            image = session.scalars(query.limit(1)).first()
            return image_record(image) if image is not None else None

    def blob(self, sha256: str) -> bytes:
        with self.read() as session:
            return get_blob(session, sha256)

    def thumbnail(self, sha256: str) -> bytes:
        with self.read() as session:
            return get_blob(session, thumbnail_sha(session, sha256))

    # --- what the gallery shows of the jobs ---------------------------------------------

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
            assert batch_id is not None, "only jobs of these batches were selected"
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

    def count_results(self) -> int:
        """Results in the gallery (a result re-used by several jobs counts once)."""
        with self.read() as session:
            count = session.scalar(select(func.count()).select_from(Result))
        assert count is not None, "COUNT always returns a row"
        return count

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
            starred = _starred(session, flt.viewer, [r.id for _, r in rows if r is not None])
            return [_card(job, result, result is not None and result.id in starred)
                    for job, result in rows]

    def count_gallery(self, flt: gallery.GalleryFilter | None = None) -> int:
        with self.read() as session:
            return session.scalar(gallery.count_select(flt or gallery.GalleryFilter()))

    def get_result(self, result_id: int, viewer: str = LOCAL_NAME) -> ResultRecord:
        """A result, with `favourite` meaning the viewer's star."""
        with self.read() as session:
            return _result_record(session, get_row(session, Result, result_id, "result"),
                                  viewer=viewer)

    def owners(self) -> list[str]:
        """Everyone who has queued something: what the gallery's person filter offers."""
        with self.read() as session:
            return list(session.scalars(select(Job.owner).distinct().order_by(Job.owner)))

    def find_result(self, image_sha256: str, content_sha256: str | None = None,
                    style_sha256s: Sequence[str] = (), settings: Settings | None = None,
                    regions: Sequence[object] | None = None) -> int | None:
        """The gallery's result for a PNG: the one stored with exactly these bytes, else the
        finished run of these inputs, settings and regions (nfx.planning.batch.input_digest;
        a PNG the CLI made, say); None if none."""
        with self.read() as session:
            found = session.scalar(select(Result.id).where(Result.image_sha256 == image_sha256)
                                   .limit(1))
            if found is None and content_sha256 and settings is not None:
                digest = planner.input_digest(content_sha256, style_sha256s, settings, regions)
                result = gallery.finished_result(session, digest)
                found = result.id if result is not None else None
            return found

    def result_png(self, result_id: int) -> bytes:
        """The output PNG, with its settings embedded (the worker stores it that way)."""
        with self.read() as session:
            result = get_row(session, Result, result_id, "result")
            return get_blob(session, result.image_sha256)

    def set_favourite(self, result_id: int, favourite: bool = True,
                      person: Person = LOCAL) -> None:
        """Star (or unstar) a result for this person alone: anyone may star anything."""
        with self.write() as session:
            get_row(session, Result, result_id, "result")
            star = session.get(Star, (result_id, person.name))
            if favourite and star is None:
                session.add(Star(result_id=result_id, person=person.name))
            elif not favourite and star is not None:
                session.delete(star)

    def set_tags(self, result_id: int, tags: Sequence[str]) -> tuple[str, ...]:
        """Replace a result's tags (trimmed, lower-cased, unique)."""
        names = sorted({t.strip().lower() for t in tags if t.strip()})
        if any(len(n) > 64 for n in names):
            raise InputError("tags must be at most 64 characters")
        with self.write() as session:
            result = get_row(session, Result, result_id, "result")
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
            get_row(session, Result, result_id, "result")
            return list(session.scalars(select(Job.id).where(Job.result_id == result_id)
                                        .order_by(Job.id)))

    def delete_result(self, result_id: int, person: Person = LOCAL) -> None:
        """Remove a result and the images nothing else uses. The jobs that showed it stay as
        `deleted` (no picture), so that their batch's grid says "deleted" where they were.
        Only whoever queued the job that made it, or an admin, may (NotPermitted)."""
        with self.write() as session:
            result = get_row(session, Result, result_id, "result")
            person.check(result_owner(session, result), result_ref(result_id), "delete")
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
            get_row(session, Batch, batch_id, "batch")
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


def _role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"image role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def get_row(session: Session, model: Any, key: int, what: str) -> Any:
    """A row by primary key, or InputError naming what is missing."""
    row = session.get(model, key)
    if row is None:
        raise InputError(f"no {what} with id {key}")
    return row


def picture_name(name: str | None) -> str:
    """An upload's name as the library keeps it: only ever a label, never a path (what a
    browser sends may hold folders, '..' or control characters)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable()).strip().lstrip(".")
    return base[:255] or "image"


def add_image_row(session: Session, data: bytes, name: str, role: str) -> Image:
    """Store an upload's bytes and its row, once per picture and role; InputError (nothing
    written) for anything that is not a usable image."""
    role = _role(role)
    name = picture_name(name)
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


def image_record(image: Image) -> ImageRecord:
    return ImageRecord(id=image.id, sha256=image.sha256, name=image.name, role=image.role,
                       width=image.width, height=image.height, added_at=image.added_at)


def _starred(session: Session, person: str, result_ids: Sequence[int]) -> set[int]:
    """Which of these results this person has starred."""
    if not result_ids:
        return set()
    return set(session.scalars(select(Star.result_id).where(
        Star.person == person, Star.result_id.in_(sorted(set(result_ids))))))


def result_owner(session: Session, result: Result) -> str:
    """Who a result belongs to: whoever queued the job that made it."""
    maker = session.get(Job, result.job_id)
    return maker.owner if maker is not None else LOCAL_NAME


def _card(job: Job, result: Result | None, favourite: bool) -> GalleryCard:
    return GalleryCard(
        job_id=job.id, result_id=result.id if result else None, batch_id=job.batch_id,
        status=job.status, content_id=job.content_id, content_name=job.content.name,
        style_ids=job.style_ids, style_names=tuple(s.image.name for s in job.styles),
        thumb_sha256=result.thumb_sha256 if result else None,
        image_sha256=result.image_sha256 if result else None,
        settings=Settings.from_json(job.settings_json), losses=dict(job.losses or {}),
        seconds=result.seconds if result else None, created_at=job.created_at,
        favourite=favourite,
        tags=tuple(t.name for t in result.tags) if result else (), progress=job.progress,
        error=job.error, made_at=job.finished_at, source_result_id=job.source_result_id,
        owner=job.owner, **_regions(job))


def _regions(job: Job) -> dict[str, Any]:
    """A job's mask and assignments, as its records carry them."""
    if job.mask is None or not job.regions:
        return {}
    return {"mask": image_record(job.mask), "regions": RegionMap.from_json(job.regions)}


def _result_record(session: Session, result: Result, job: Job | None = None,
                   viewer: str = LOCAL_NAME) -> ResultRecord:
    job = job or session.get(Job, result.job_id) or session.scalars(
        select(Job).where(Job.result_id == result.id).limit(1)).first()
    if job is None:
        raise InputError(f"result {result.id} has no job")
    return ResultRecord(
        id=result.id, job_id=job.id, batch_id=job.batch_id, image_sha256=result.image_sha256,
        width=result.width, height=result.height, content=image_record(job.content),
        styles=tuple(image_record(s.image) for s in job.styles),
        settings=Settings.from_json(job.settings_json), losses=dict(result.losses),
        history=list(result.history), seconds=result.seconds, device=result.device,
        precision=result.precision, created_at=result.created_at,
        favourite=bool(_starred(session, viewer, [result.id])),
        tags=tuple(t.name for t in result.tags),
        resumed_from_scale=result.resumed_from_scale or 0,
        iterations_run=result.iterations_run, source_result_id=job.source_result_id,
        owner=result_owner(session, result), **_regions(job))
