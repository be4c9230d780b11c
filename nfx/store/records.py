"""Plain records the store hands out: detached from sessions, safe to cache and to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nfx.regions import RegionMap
from nfx.people import LOCAL_NAME
from nfx.settings import Settings
from nfx.status import JobStatus


@dataclass(frozen=True)
class ImageRecord:
    id: int
    sha256: str
    name: str
    role: str  # "content" | "style" | "mask"
    width: int
    height: int
    added_at: datetime


@dataclass(frozen=True)
class GalleryCard:
    """One tile of the gallery: a job and, when done, its result."""

    job_id: int
    result_id: int | None
    batch_id: int | None
    status: JobStatus
    content_id: int
    content_name: str
    style_ids: tuple[int, ...]
    style_names: tuple[str, ...]
    thumb_sha256: str | None  # store.thumbnail(...) of it; None until done
    image_sha256: str | None
    settings: Settings
    losses: dict[str, float]
    seconds: float | None
    created_at: datetime
    favourite: bool  # starred by the person looking (GalleryFilter.viewer)
    tags: tuple[str, ...]
    progress: float
    error: str | None
    made_at: datetime | None = None  # when the result was made (the job's finished_at)
    source_result_id: int | None = None  # a re-run: the result it started from
    mask: ImageRecord | None = None  # a run with regions: its mask, what each colour got
    regions: RegionMap | None = None
    owner: str = LOCAL_NAME  # who queued the job (nfx.people)


@dataclass(frozen=True)
class ResultRecord:
    id: int
    job_id: int
    batch_id: int | None
    image_sha256: str
    width: int
    height: int
    content: ImageRecord
    styles: tuple[ImageRecord, ...]
    settings: Settings
    losses: dict[str, float]
    history: list[dict[str, Any]]
    seconds: float
    device: str
    precision: str
    created_at: datetime
    favourite: bool  # starred by the person looking (get_result's viewer)
    tags: tuple[str, ...]
    resumed_from_scale: int = 0  # scales before this one came from a checkpoint
    iterations_run: int | None = None  # None: recorded before runs counted them
    source_result_id: int | None = None  # a re-run: the result it started from
    mask: ImageRecord | None = None  # a run with regions: its mask, what each colour got
    regions: RegionMap | None = None
    owner: str = LOCAL_NAME  # who queued the job that made it (nfx.people)
