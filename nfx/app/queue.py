"""The Queue page's view: jobs with labels that tell them apart, workers, and the buttons'
actions (a job that changed state meanwhile is a one-line message, not a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from nfx.app.context import STATUSES, store
from nfx.errors import NFXError
from nfx.labels import entry_label, job_ref, run_text

__all__ = ["STATUSES", "QueueSnapshot", "JobRow", "queue_snapshot", "workers_frame",
           "cancel_job", "move_to_front", "retry_job", "job_rows"]

STOPPED_WORKERS_SHOWN = 3  # the queue page lists live workers and the last few stopped ones


@dataclass(frozen=True)
class JobRow:
    job: object  # JobRecord
    label: str  # 'J17 · chelsea × the_scream · Style weight 1e+04'
    runs: str  # '96 px, 2 scales × 20 steps', the scales that will run


@dataclass(frozen=True)
class QueueSnapshot:
    counts: dict[str, int]
    running: list[JobRow]
    queued: list[JobRow]
    failed: list[JobRow]
    workers: list


def job_rows(jobs: Sequence) -> list[JobRow]:
    """Jobs labelled with the settings that vary within each one's batch."""
    varying = store().batch_varying([j.batch_id for j in jobs if j.batch_id is not None])
    sizes = {i.id: (i.width, i.height) for i in store().list_images("content")}
    rows = []
    for job in jobs:
        tail = f" · attempt {job.attempts + 1}" if job.attempts else ""
        rows.append(JobRow(job, entry_label(job_ref(job.id), job.content_name, job.style_names,
                                            job.settings, varying.get(job.batch_id, [])),
                           run_text(job.settings, sizes.get(job.content_id)) + tail))
    return rows


def queue_snapshot(limit: int = 50) -> QueueSnapshot:
    s = store()
    workers = s.list_workers()  # newest first
    recent_stopped = [w for w in workers if not w.alive][:STOPPED_WORKERS_SHOWN]
    return QueueSnapshot(counts=s.queue_counts(),
                         running=job_rows(s.list_jobs(status=JobStatus.RUNNING)),
                         queued=job_rows(s.list_jobs(status=JobStatus.QUEUED, limit=limit)),
                         failed=job_rows(s.list_jobs(status=JobStatus.FAILED, limit=limit)),
                         workers=[w for w in workers if w.alive or w in recent_stopped])


def workers_frame(workers: Sequence) -> pd.DataFrame:
    return pd.DataFrame([{"worker": w.name, "alive": w.alive, "device": w.device,
                          "jobs done": w.jobs_done,
                          "current job": job_ref(w.current_job_id) if w.current_job_id else "",
                          "last seen": w.last_seen} for w in workers])


def _action(action: Callable[[int], object], job_id: int) -> str | None:
    try:
        action(job_id)
    except NFXError as exc:
        return str(exc).replace(f"job {job_id}", job_ref(job_id))
    return None


def cancel_job(job_id: int) -> str | None:
    """None when done, else why not (in one line)."""
    return _action(store().cancel_job, job_id)


def move_to_front(job_id: int) -> str | None:
    return _action(store().move_to_front, job_id)


def retry_job(job_id: int) -> str | None:
    return _action(store().retry_job, job_id)
