"""The Queue page's view: jobs with labels that tell them apart, batches with their progress,
what finished recently, workers as they report themselves, and the buttons' actions (a job
that changed state meanwhile is a one-line message, not a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from nfx.app.access import owner_text
from nfx.app.context import LISTED, JobStatus, WorkerState, queue, store
from nfx.app.forms import changed_values
from nfx.app.gallery import Card, gallery_cards, gallery_filter
from nfx.app.new_batch import draft_from_batch
from nfx.errors import NFXError
from nfx.images import size_for_long_edge
from nfx.labels import (batch_label, batch_ref, entry_label, format_duration, job_ref,
                        run_text, settings_summary)
from nfx.people import LOCAL, Person
from nfx.planning.pyramid import scale_sizes
from nfx.queue.records import BatchRecord, JobRecord, WorkerRecord
from nfx.settings import Settings
from nfx.store.models import utcnow

__all__ = ["STATUSES", "JobStatus", "QueueSnapshot", "JobRow", "BatchProgress",
           "queue_snapshot", "workers_frame", "cancel_job", "move_to_front", "retry_job",
           "job_rows", "recent_results", "batch_notices", "finished_notice", "retried_message",
           "followed_batches", "Card", "settings_text_of", "job", "draft_from_batch"]

STATUSES = LISTED  # the counts the page shows
STOPPED_WORKERS_SHOWN = 3  # the queue page lists live workers and the last few stopped ones
FINISHED_BATCHES_SHOWN = 3  # batches with nothing left to run, besides the active ones
RECENT_RESULTS_SHOWN = 8
RESTART_WINDOW = timedelta(seconds=90)  # a worker that died this recently is being restarted
NO_WORKER = ("No worker is running, so the queued jobs will wait. Restart `python -m nfx app` "
             "(it keeps a worker running), or start one with `python -m nfx worker` or "
             "`python -m nfx workers N`.")


@dataclass(frozen=True)
class JobRow:
    job: JobRecord
    label: str  # 'J17 · chelsea × the_scream · Style weight 1e+04'
    runs: str  # '96 px, 2 scales × 20 steps', the scales that will run
    note: str = ""  # what happened to its worker, if anything: never a frozen "Running"
    progress: str = ""  # 'scale 3 of 3 (4096×3072) · iteration 150 of 210 · about 40 min left'
    settings: str = ""  # the settings that differ from the defaults (failed rows show them)
    owner: str = ""  # 'queued by alice@example.org' (nothing for local without sign-in)


@dataclass(frozen=True)
class BatchProgress:
    """One batch's jobs by state, for its progress bar."""

    batch: BatchRecord
    label: str

    @property
    def owner(self) -> str:
        """'queued by alice@example.org' (nothing for local without sign-in)."""
        return owner_text(self.batch.owner)

    def count(self, status: JobStatus) -> int:
        return self.batch.counts.get(status, 0)

    @property
    def total(self) -> int:
        return self.batch.job_count

    @property
    def finished(self) -> bool:
        return not (self.count(JobStatus.QUEUED) or self.count(JobStatus.RUNNING))

    @property
    def fraction(self) -> float:
        ended = self.total - self.count(JobStatus.QUEUED) - self.count(JobStatus.RUNNING)
        return ended / self.total if self.total else 1.0

    @property
    def text(self) -> str:
        """'8 done · 1 running · 3 queued · 1 failed' (states with no job left out)."""
        parts = [f"{self.count(status)} {status}" for status in (
            JobStatus.DONE, JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED,
            JobStatus.CANCELED, JobStatus.DELETED) if self.count(status)]
        return " · ".join(parts) or "no jobs"


@dataclass(frozen=True)
class QueueSnapshot:
    counts: dict[JobStatus, int]
    running: list[JobRow]
    queued: list[JobRow]
    failed: list[JobRow]
    canceled: list[JobRow]
    workers: list[WorkerRecord]
    warning: str | None  # jobs wait and no worker is alive, nor being restarted, to run them
    notice: str | None  # a worker is starting, calibrating or being restarted
    batches: list[BatchProgress]


def job_note(job: JobRecord, now: datetime) -> str:
    """'worker lost at iteration 40 (…); requeued', or for a running job whose heartbeats
    stopped, 'worker not responding: requeued in 12 s'."""
    if job.status == JobStatus.RUNNING and job.heartbeat_at and job.lease_until:
        lease = (job.lease_until - job.heartbeat_at).total_seconds()
        silent = (now - job.heartbeat_at).total_seconds()
        if silent > max(lease / 2, 5.0):  # two heartbeats missed
            left = max((job.lease_until - now).total_seconds(), 0.0)
            return f"worker not responding: requeued in {left:.0f} s unless it comes back"
        return ""
    notes: list[str] = []
    if job.status == JobStatus.QUEUED and job.error:  # why it is back in the queue
        notes.append(job.error)
    if job.status == JobStatus.QUEUED and job.checkpoint_scales:
        notes.append(f"resumes after scale {job.checkpoint_scales}")
    return " · ".join(notes)


def progress_text(job: JobRecord, content_size: tuple[int, int] | None) -> str:
    """Where a running job is: its scale and that scale's size, the iteration, and the time
    left as its worker measures it (its pace over the work done, weighted by cost)."""
    if not job.total_iterations:
        return "starting: loading the images and the network"
    parts: list[str] = []
    settings = job.settings
    if content_size:
        sizes = scale_sizes(size_for_long_edge(content_size, settings.size), settings.scales)
        scale = min(max(job.iteration - 1, 0) // settings.steps, len(sizes) - 1)
        width, height = sizes[scale]
        parts.append(f"scale {scale + 1} of {len(sizes)} ({width}×{height})")
    parts.append(f"iteration {job.iteration} of {job.total_iterations}")
    if job.seconds_left is not None:
        parts.append(f"about {format_duration(job.seconds_left)} left")
    return " · ".join(parts)


def attempt_text(job: JobRecord) -> str:
    """' · attempt 2' for a job that has run before (a running job's attempt is the one
    under way, a queued job's the one it will make next), with the worker deaths the
    evidence blamed on it: after `max_attempts` of those it fails (nfx.queue.deaths)."""
    blamed = (f" · {job.blamed_deaths} of {job.max_attempts} worker deaths blamed on it"
              if job.blamed_deaths else "")
    if job.status == JobStatus.RUNNING and job.attempts > 1:
        return f" · attempt {job.attempts}{blamed}"
    if job.status == JobStatus.QUEUED and job.attempts:
        return f" · attempt {job.attempts + 1} next{blamed}"
    return ""


def settings_text_of(settings: Settings) -> str:
    """'Size 4096 · Memory budget 0.05': the settings that differ from the defaults."""
    return settings_summary(settings, list(settings.differences(Settings())))


def job_rows(jobs: Sequence[JobRecord]) -> list[JobRow]:
    """Jobs labelled with the settings that vary within each one's batch (a re-run: what it
    changed from its source)."""
    varying = store().batch_varying([j.batch_id for j in jobs if j.batch_id is not None])
    sources = store().result_settings([j.source_result_id for j in jobs
                                       if j.source_result_id is not None])
    sizes = {i.id: (i.width, i.height) for i in store().list_images("content")}
    now = utcnow()
    rows = []
    for job in jobs:
        size = sizes.get(job.content_id)
        batch_varying = varying.get(job.batch_id, []) if job.batch_id is not None else []
        source = (sources.get(job.source_result_id) if job.source_result_id is not None
                  else None)
        rows.append(JobRow(job, entry_label(job_ref(job.id), job.content_name, job.style_names,
                                            job.settings, batch_varying, source),
                           run_text(job.settings, size) + attempt_text(job),
                           job_note(job, now),
                           progress_text(job, size) if job.status == JobStatus.RUNNING else "",
                           settings_text_of(job.settings), owner_text(job.owner)))
    return rows


def worker_notice(workers: Sequence[WorkerRecord], waiting: bool, now: datetime
                  ) -> tuple[str | None, str | None]:
    """(warning, notice): a warning only when queued jobs wait and no worker is alive or
    being restarted; a notice while a worker starts, measures its device, or was just lost
    and is being restarted by its supervisor."""
    alive = [w for w in workers if w.alive]
    paused = [w for w in alive if w.state == WorkerState.PAUSED and w.problem]
    if paused:
        return (f"Worker {paused[0].name} has paused: {paused[0].problem}. Its job is back "
                "in the queue; the worker retries by itself once the database can store "
                "results again (free disk space, or make the database writable)."), None
    if alive:
        busy = [w for w in alive if w.state in (WorkerState.IDLE, WorkerState.WORKING)]
        if busy:
            return None, None
        if any(w.state == WorkerState.CALIBRATING for w in alive):
            return None, ("The worker is measuring this machine's speed for time estimates "
                          "(a few seconds, once per machine); then it starts on the queue.")
        return None, "The worker is starting: loading the network (a few seconds)."
    died = [(w.stopped_at, w) for w in workers if w.stopped_at and w.exit_cause
            and now - w.stopped_at < RESTART_WINDOW]
    if died:
        stopped_at, last = max(died, key=lambda found: found[0])
        ago = format_duration((now - stopped_at).total_seconds())
        return None, (f"Worker {last.name} {last.exit_cause} {ago} ago; its supervisor "
                      "restarts it, and its job goes on from the last finished scale.")
    return (NO_WORKER if waiting else None), None


def batch_progress(batch_ids: Iterable[int]) -> list[BatchProgress]:
    return [BatchProgress(b, batch_label(b)) for b in queue().batches(list(batch_ids))]


def followed_batches() -> list[BatchProgress]:
    """Every batch with work left, and the last few that finished."""
    active = queue().active_batch_ids()
    recent = [i for i in queue().recent_batch_ids(len(active) + FINISHED_BATCHES_SHOWN)
              if i not in active][:FINISHED_BATCHES_SHOWN]
    return batch_progress(active | set(recent))


def batch_notices(followed: set[int], person: Person = LOCAL
                  ) -> tuple[set[int], list[BatchProgress]]:
    """The person's batches with work left now, and those of `followed` (the ones that had
    work left at the last look) that have finished since: a notice for each. Someone
    else's batch finishing is not news to this person."""
    active = queue().active_batch_ids()
    if active and person != LOCAL:
        active = {b.id for b in queue().batches(sorted(active)) if b.owner == person.name}
    return active, [p for p in batch_progress(followed - active) if p.finished]


def finished_notice(progress: BatchProgress) -> str:
    """'B6 finished: 12 done, 1 failed'."""
    return f"{batch_ref(progress.batch.id)} {progress.batch.name} finished: {progress.text}"


def recent_results(limit: int = RECENT_RESULTS_SHOWN) -> list[Card]:
    """The newest results, by when they were made: the Queue page's "recently finished"."""
    return gallery_cards(gallery_filter(), 0, limit)


def queue_snapshot(limit: int = 50) -> QueueSnapshot:
    s = queue()
    s.requeue_expired()  # a job whose worker vanished goes back now, not at next claim
    workers = s.list_workers()  # newest first
    recent_stopped = [w for w in workers if not w.alive][:STOPPED_WORKERS_SHOWN]
    counts = s.queue_counts()
    warning, notice = worker_notice(workers, counts.get(JobStatus.QUEUED, 0) > 0, utcnow())
    return QueueSnapshot(counts=counts,
                         running=job_rows(s.list_jobs(status=JobStatus.RUNNING)),
                         queued=job_rows(s.list_jobs(status=JobStatus.QUEUED, limit=limit)),
                         failed=job_rows(s.list_jobs(status=JobStatus.FAILED, limit=limit)),
                         canceled=job_rows(s.list_jobs(status=JobStatus.CANCELED,
                                                       limit=limit)),
                         workers=[w for w in workers if w.alive or w in recent_stopped],
                         warning=warning, notice=notice, batches=followed_batches())


def workers_frame(workers: Sequence[WorkerRecord]) -> pd.DataFrame:
    """Live workers with what they report doing, and the last few stopped ones with why
    they stopped."""
    return pd.DataFrame([{"worker": w.name, "state": str(w.state) if w.alive else "stopped",
                          "device": w.device, "jobs done": w.jobs_done,
                          "current job": job_ref(w.current_job_id) if w.current_job_id else "",
                          "exit": _exit_text(w), "problem": w.problem or "",
                          "last seen": w.last_seen} for w in workers])


def _exit_text(worker: WorkerRecord) -> str:
    if worker.alive:
        return ""
    if worker.exit_cause:
        return worker.exit_cause
    return "stopped" if worker.stopped_at else "not responding (its lease ran out)"


def job(job_id: int) -> JobRecord:
    return queue().get_job(job_id)


def _action(action: Callable[[int], object], job_id: int) -> str | None:
    try:
        action(job_id)
    except NFXError as exc:
        return str(exc).replace(f"job {job_id}", job_ref(job_id))
    return None


def cancel_job(job_id: int, person: Person = LOCAL) -> str | None:
    """None when done, else why not, in one line (it has ended; it is someone else's)."""
    return _action(lambda i: queue().cancel_job(i, person), job_id)


def move_to_front(job_id: int, person: Person = LOCAL) -> str | None:
    return _action(lambda i: queue().move_to_front(i, person), job_id)


def retry_job(job_id: int, values: dict[str, Any] | None = None,
              person: Person = LOCAL) -> str | None:
    """Queue a failed or canceled job again; with widget `values`, under the settings that
    changed. None when done, else why not (in one line)."""
    def retry(i: int) -> JobRecord:
        changes = changed_values(values, queue().get_job(i).settings) if values else None
        return queue().retry_job(i, changes, person)
    return _action(retry, job_id)


def retried_message(job_id: int) -> str:
    job = queue().get_job(job_id)
    if job.status == JobStatus.DONE:
        return f"{job_ref(job_id)} is the same as an earlier run: it re-uses its result."
    return f"{job_ref(job_id)} is queued again, from the start."
