"""Plain records the queue hands out: detached from sessions, safe to cache and to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nfx.regions import RegionMap
from nfx.people import LOCAL_NAME
from nfx.settings import Settings
from nfx.status import JobStatus


@dataclass(frozen=True)
class BatchRecord:
    id: int
    name: str
    created_at: datetime
    job_count: int
    reused_count: int
    counts: dict[JobStatus, int] = field(default_factory=dict)  # jobs by status
    resubmitted: bool = False  # this form submission had queued it already: nothing new
    base: Settings | None = None  # the settings it was planned from
    sweep: dict[str, list[Any]] = field(default_factory=dict)  # and the values swept
    owner: str = LOCAL_NAME  # who queued it (nfx.people)


@dataclass(frozen=True)
class JobRecord:
    id: int
    batch_id: int | None
    status: JobStatus
    priority: int
    attempts: int
    error: str | None
    progress: float  # 0..1
    iteration: int
    total_iterations: int
    losses: dict[str, float]
    preview_png: bytes | None
    worker: str | None
    content_id: int
    style_ids: tuple[int, ...]
    settings: Settings
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_id: int | None
    # beyond the contract's list: what the list command and the queue page also show
    content_name: str = ""
    style_names: tuple[str, ...] = ()
    reused: bool = False
    cancel_requested: bool = False
    max_attempts: int = 3
    heartbeat_at: datetime | None = None
    seconds: float | None = None
    lease_until: datetime | None = None  # a running job past this has lost its worker
    checkpoint_scales: int = 0  # scales finished and kept: a requeued job resumes after them
    seconds_left: float | None = None  # the running attempt's own estimate (see the worker)
    source_result_id: int | None = None  # a re-run: the result it started from
    blamed_deaths: int = 0  # worker deaths the evidence blamed on it (nfx.queue.deaths)
    deaths: tuple[dict[str, Any], ...] = ()  # every worker death while it ran: evidence
    mask_id: int | None = None  # regions: the mask picture, and what each colour gets
    mask_name: str | None = None
    regions: RegionMap | None = None
    owner: str = LOCAL_NAME  # who queued it (nfx.people)


@dataclass(frozen=True)
class WorkerRecord:
    id: int
    name: str
    host: str
    pid: int
    device: str
    started_at: datetime
    last_seen: datetime
    jobs_done: int
    alive: bool
    current_job_id: int | None  # only while alive: a dead worker's last job is history
    exit_cause: str | None = None  # "was killed by SIGKILL", "exited with code 1", ...
    stopped_at: datetime | None = None
    state: str | None = None  # while alive: starting, calibrating, idle, working or paused
    problem: str | None = None  # while paused: why (a full disk, a read-only database)
