"""The Queue page's view: jobs with labels that tell them apart, workers, and the buttons'
actions (a job that changed state meanwhile is a one-line message, not a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from nfx.app.context import STATUSES, JobStatus, store
from nfx.errors import NFXError
from nfx.images import size_for_long_edge
from nfx.labels import entry_label, format_duration, job_ref, run_text
from nfx.scales import scale_sizes
from nfx.store.models import utcnow

__all__ = ["STATUSES", "JobStatus", "QueueSnapshot", "JobRow", "queue_snapshot",
           "workers_frame", "cancel_job", "move_to_front", "retry_job", "job_rows"]

STOPPED_WORKERS_SHOWN = 3  # the queue page lists live workers and the last few stopped ones
NO_WORKER = ("No worker is running, so the queued jobs will wait. Restart `python -m nfx app` "
             "(it keeps a worker running), or start one with `python -m nfx worker` or "
             "`python -m nfx workers N`.")


@dataclass(frozen=True)
class JobRow:
    job: object  # JobRecord
    label: str  # 'J17 · chelsea × the_scream · Style weight 1e+04'
    runs: str  # '96 px, 2 scales × 20 steps', the scales that will run
    note: str = ""  # what happened to its worker, if anything: never a frozen "Running"
    progress: str = ""  # 'scale 3 of 3 (4096×3072) · iteration 150 of 210 · about 40 min left'


@dataclass(frozen=True)
class QueueSnapshot:
    counts: dict[str, int]
    running: list[JobRow]
    queued: list[JobRow]
    failed: list[JobRow]
    canceled: list[JobRow]
    workers: list
    warning: str | None  # jobs wait and no worker is alive to run them


def job_note(job, now: datetime) -> str:
    """'worker lost at iteration 40 (…); requeued', or for a running job whose heartbeats
    stopped, 'worker not responding: requeued in 12 s'."""
    if job.status == JobStatus.RUNNING and job.heartbeat_at and job.lease_until:
        lease = (job.lease_until - job.heartbeat_at).total_seconds()
        silent = (now - job.heartbeat_at).total_seconds()
        if silent > max(lease / 2, 5.0):  # two heartbeats missed
            left = max((job.lease_until - now).total_seconds(), 0.0)
            return f"worker not responding: requeued in {left:.0f} s unless it comes back"
        return ""
    notes = []
    if job.status == JobStatus.QUEUED and job.error:  # why it is back in the queue
        notes.append(job.error)
    if job.status == JobStatus.QUEUED and job.checkpoint_scales:
        notes.append(f"resumes after scale {job.checkpoint_scales}")
    return " · ".join(notes)


def progress_text(job, content_size: tuple[int, int] | None) -> str:
    """Where a running job is: its scale and that scale's size, the iteration, and the time
    left as its worker measures it (its pace over the work done, weighted by cost)."""
    if not job.total_iterations:
        return "starting: loading the images and the network"
    parts = []
    settings = job.settings
    if content_size:
        sizes = scale_sizes(size_for_long_edge(content_size, settings.size), settings.scales)
        scale = min((max(job.iteration, 1) - 1) // settings.steps, len(sizes) - 1)
        width, height = sizes[scale]
        parts.append(f"scale {scale + 1} of {len(sizes)} ({width}×{height})")
    parts.append(f"iteration {job.iteration} of {job.total_iterations}")
    if job.seconds_left is not None:
        parts.append(f"about {format_duration(job.seconds_left)} left")
    return " · ".join(parts)


def job_rows(jobs: Sequence) -> list[JobRow]:
    """Jobs labelled with the settings that vary within each one's batch."""
    varying = store().batch_varying([j.batch_id for j in jobs if j.batch_id is not None])
    sizes = {i.id: (i.width, i.height) for i in store().list_images("content")}
    now = utcnow()
    rows = []
    for job in jobs:
        tail = f" · attempt {job.attempts + 1}" if job.attempts else ""
        rows.append(JobRow(job, entry_label(job_ref(job.id), job.content_name, job.style_names,
                                            job.settings, varying.get(job.batch_id, [])),
                           run_text(job.settings, sizes.get(job.content_id)) + tail,
                           job_note(job, now),
                           progress_text(job, sizes.get(job.content_id))
                           if job.status == JobStatus.RUNNING else ""))
    return rows


def queue_snapshot(limit: int = 50) -> QueueSnapshot:
    s = store()
    s.queue.requeue_expired()  # a job whose worker vanished goes back now, not at next claim
    workers = s.list_workers()  # newest first
    recent_stopped = [w for w in workers if not w.alive][:STOPPED_WORKERS_SHOWN]
    counts = s.queue_counts()
    waiting = counts.get(JobStatus.QUEUED, 0) > 0
    return QueueSnapshot(counts=counts,
                         running=job_rows(s.list_jobs(status=JobStatus.RUNNING)),
                         queued=job_rows(s.list_jobs(status=JobStatus.QUEUED, limit=limit)),
                         failed=job_rows(s.list_jobs(status=JobStatus.FAILED, limit=limit)),
                         canceled=job_rows(s.list_jobs(status=JobStatus.CANCELED,
                                                       limit=limit)),
                         workers=[w for w in workers if w.alive or w in recent_stopped],
                         warning=NO_WORKER if waiting and not any(w.alive for w in workers)
                         else None)


def workers_frame(workers: Sequence) -> pd.DataFrame:
    """Live workers and the last few stopped ones; a stopped one shows why it stopped."""
    return pd.DataFrame([{"worker": w.name, "state": "working" if w.alive else "stopped",
                          "device": w.device, "jobs done": w.jobs_done,
                          "current job": job_ref(w.current_job_id) if w.current_job_id else "—",
                          "exit": _exit_text(w),
                          "last seen": w.last_seen} for w in workers])


def _exit_text(worker) -> str:
    if worker.alive:
        return ""
    if worker.exit_cause:
        return worker.exit_cause
    return "stopped" if worker.stopped_at else "not responding (its lease ran out)"


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
