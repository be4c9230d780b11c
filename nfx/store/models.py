"""ORM models: the gallery's tables.

Jobs carry one column per `INDEXED_FIELDS` setting (named `s_<field>`), derived from the
settings object so the gallery can filter and sort on them with an index. Those columns are a
copy of `settings_json`; `nfx.store.setting_columns` adds any that a database lacks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Enum, Float, ForeignKey, Index,
                        Integer, LargeBinary, String, Text, UniqueConstraint)
from sqlalchemy.orm import (DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column,
                            relationship)
from sqlalchemy.types import TypeEngine

from nfx.people import LOCAL_NAME
from nfx.settings import FIELDS, INDEXED_FIELDS
from nfx.status import JobStatus

# Ids are never reused after a delete: "job 12" must not name a different job next week.
# (PostgreSQL's sequences never reuse ids; SQLite needs AUTOINCREMENT for that.)
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}
OWNER_LENGTH = 320  # an email address at its longest


def owner_column() -> Mapped[str]:
    """Who queued a row (nfx.people): the signed-in email, or `local`."""
    return mapped_column(String(OWNER_LENGTH), default=LOCAL_NAME, server_default=LOCAL_NAME,
                         index=True)


def utcnow() -> datetime:
    """Naive UTC: SQLite and PostgreSQL store it the same way, machines agree on it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Blob(Base):
    """Bytes addressed by their sha256: the same picture is stored once."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    """An uploaded content or style picture."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("sha256", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    thumb_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    base_settings_json: Mapped[str] = mapped_column(Text)
    sweep: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the form submission that made it: the same submission twice (a double click) is one batch
    submission: Mapped[str | None] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = owner_column()
    jobs: Mapped[list[Job]] = relationship(back_populates="batch")


class JobStyle(Base):
    """Which style images a job uses, in blend order (a table so the gallery can filter)."""

    __tablename__ = "job_styles"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"),
                                        primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    image: Mapped[Image] = relationship(lazy="joined")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "priority", "created_at"),
                      Index("ix_jobs_status_created", "status", "created_at"),
                      Index("ix_jobs_status_finished", "status", "finished_at"), NEVER_REUSE_IDS)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    settings_json: Mapped[str] = mapped_column(Text)
    input_digest: Mapped[str] = mapped_column(String(64), index=True)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, create_constraint=False,
             values_callable=lambda statuses: [s.value for s in statuses]),
        default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    iteration: Mapped[int] = mapped_column(Integer, default=0)
    total_iterations: Mapped[int] = mapped_column(Integer, default=0)
    # the running attempt's time left, from its pace over the work done (Progress.fraction)
    seconds_left: Mapped[float | None] = mapped_column(Float)
    losses: Mapped[dict[str, Any]] = mapped_column(default=dict)
    preview_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)  # requeue after this
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("results.id", ondelete="SET NULL"),
                                                  index=True)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)
    # a re-run: the result whose settings it started from (its label says what changed)
    source_result_id: Mapped[int | None] = mapped_column(Integer)
    # the image after the last finished scale: a requeued job resumes from it
    checkpoint_scales: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    checkpoint_history: Mapped[list[Any] | None] = mapped_column()
    # the running attempt's last memory reading: its RSS, its limit (cgroup or RAM), the
    # machine's memory left; what a worker death is judged by (nfx.queue.deaths)
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    memory_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    available_bytes: Mapped[int | None] = mapped_column(BigInteger)
    deaths: Mapped[list[Any] | None] = mapped_column()  # each worker death: evidence, verdict
    blamed_deaths: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # regions (nfx.regions): the mask, a picture like the photo, and each colour's assignment
    mask_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    regions: Mapped[list[Any] | None] = mapped_column()
    owner: Mapped[str] = owner_column()  # a batch's jobs are its owner's; a re-run its own

    batch: Mapped[Batch | None] = relationship(back_populates="jobs")
    content: Mapped[Image] = relationship(lazy="joined", foreign_keys=[content_id])
    mask: Mapped[Image | None] = relationship(lazy="joined", foreign_keys=[mask_id])
    styles: Mapped[list[JobStyle]] = relationship(order_by=JobStyle.position, lazy="selectin",
                                                  cascade="all, delete-orphan")
    result: Mapped[Result | None] = relationship(foreign_keys=[result_id])

    @property
    def style_ids(self) -> tuple[int, ...]:
        return tuple(s.image_id for s in self.styles)


class Result(Base):
    """A run's output. Its settings are its job's (`Job.settings_json`), stored once."""

    __tablename__ = "results"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer, unique=True)  # the job that ran it
    image_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    thumb_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    losses: Mapped[dict[str, Any]] = mapped_column(default=dict)
    loss_total: Mapped[float | None] = mapped_column(Float, index=True)
    history: Mapped[list[Any]] = mapped_column(default=list)
    seconds: Mapped[float] = mapped_column(Float)
    device: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16))
    resumed_from_scale: Mapped[int] = mapped_column(Integer, default=0)
    iterations_run: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    tags: Mapped[list[Tag]] = relationship(secondary="result_tags", lazy="selectin",
                                           order_by="Tag.name")


class Star(Base):
    """A person's favourite: stars are each person's own (tags are shared)."""

    __tablename__ = "stars"
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"),
                                           primary_key=True)
    person: Mapped[str] = mapped_column(String(OWNER_LENGTH), primary_key=True, index=True)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class ResultTag(Base):
    __tablename__ = "result_tags"
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"),
                                           primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"),
                                        primary_key=True, index=True)


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(64))
    lease_seconds: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    current_job_id: Mapped[int | None] = mapped_column(Integer)
    exit_cause: Mapped[str | None] = mapped_column(String(255))  # why it stopped, if it died
    state: Mapped[str | None] = mapped_column(String(16))  # WORKER_STATES, as it reports it
    problem: Mapped[str | None] = mapped_column(String(500))  # why it paused (a full disk)
    # the engine's speed on this worker's device, measured at start (nfx.planning.work.WorkModel)
    work_per_megapixel_iteration: Mapped[float | None] = mapped_column(Float)
    work_per_iteration: Mapped[float | None] = mapped_column(Float)
    work_per_scale: Mapped[float | None] = mapped_column(Float)


# --- one indexed column per INDEXED_FIELDS setting ------------------------------------------

# Any: the columns hold ints, floats or strings, by the setting
SETTING_TYPES: dict[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "int": Integer, "float": Float, "choice": String(32)}


def setting_column_name(field: str) -> str:
    return f"s_{field}"


def setting_column_type(field: str) -> type[TypeEngine[Any]] | TypeEngine[Any]:
    return SETTING_TYPES[FIELDS[field].kind]


for _field in INDEXED_FIELDS:
    setattr(Job, setting_column_name(_field),
            mapped_column(setting_column_name(_field), setting_column_type(_field), index=True,
                          nullable=True))


def setting_column(field: str) -> InstrumentedAttribute[Any]:
    """The Job attribute holding an indexed setting."""
    return getattr(Job, setting_column_name(field))
