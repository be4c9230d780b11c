"""The workers table: who is working, on what, how fast, and why a worker stopped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nfx.planning.work import WorkModel
from nfx.queue.jobs import requeue_worker_jobs
from nfx.store.models import Worker, utcnow
from nfx.queue.records import WorkerRecord
from nfx.status import WorkerState


def register(session: Session, name: str, host: str, pid: int, device: str, lease: float,
             work: WorkModel | None = None,
             state: WorkerState = WorkerState.IDLE) -> None:
    worker = session.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        worker = Worker(name=name, jobs_done=0)
        session.add(worker)
    now = utcnow()
    worker.host, worker.pid, worker.device, worker.lease_seconds = host, pid, device, lease
    worker.started_at = worker.last_seen = now
    worker.stopped_at, worker.current_job_id, worker.exit_cause = None, None, None
    worker.state = state
    _set_work(worker, work)


def _set_work(worker: Worker, work: WorkModel | None) -> None:
    if work is not None:
        worker.work_per_megapixel_iteration = work.per_megapixel_iteration
        worker.work_per_iteration, worker.work_per_scale = work.per_iteration, work.per_scale


def ready(session: Session, name: str, device: str, work: WorkModel | None) -> None:
    """A registered worker has loaded its engine (and measured its device): it is idle."""
    worker = session.scalar(select(Worker).where(Worker.name == name))
    if worker is not None:
        worker.device, worker.state, worker.last_seen = device, WorkerState.IDLE, utcnow()
        _set_work(worker, work)


def seen(session: Session, name: str, *, stopped: bool = False,
         state: WorkerState | None = None, problem: str | None = None) -> None:
    """The worker is alive (in `state`, paused by `problem` if given)."""
    values: dict[str, Any] = {"last_seen": utcnow()}  # Any: columns of their own types
    if state is not None:
        values["state"], values["problem"] = state, problem
    if stopped:
        values.update(stopped_at=utcnow(), current_job_id=None, state=None)
    session.execute(update(Worker).where(Worker.name == name).values(**values))


@dataclass(frozen=True)
class Exit:
    """What the table knew of a worker when its supervisor saw it exit."""

    requeued: list[int]  # the jobs it held: back in the queue (or failed, if to blame)
    worked: bool  # it had got going (loaded its engine, or claimed a job): not a crash loop


def exited(session: Session, host: str, pid: int, cause: str, signal: str | None = None,
           oom_kills: int | None = None) -> Exit:
    """A worker process is known to have died (its supervisor saw the exit): record why, and
    requeue its running job at once, judged on the evidence (`signal`, the OOM kills in its
    cgroup while it lived; see nfx.queue.deaths)."""
    worker = session.scalar(select(Worker).where(Worker.host == host, Worker.pid == pid,
                                                 Worker.stopped_at.is_(None))
                            .order_by(Worker.started_at.desc()).limit(1))
    if worker is None:  # it died before it registered
        return Exit([], False)
    worked = (worker.current_job_id is not None or worker.jobs_done > 0
              or worker.state not in (None, WorkerState.STARTING))
    worker.stopped_at, worker.exit_cause = utcnow(), cause[:255]
    worker.current_job_id, worker.state = None, None
    requeued = requeue_worker_jobs(session, worker.name, f"its worker {cause}", signal,
                                   oom_kills)
    return Exit(requeued, worked or bool(requeued))


def calibrated(session: Session, host: str | None = None, device: str | None = None
               ) -> WorkModel | None:
    """The newest measured work model (of a worker on `host` and `device`, if given)."""
    query = select(Worker).where(Worker.work_per_megapixel_iteration.is_not(None))
    if host is not None:
        query = query.where(Worker.host == host)
    if device is not None:
        query = query.where(Worker.device == device)
    worker = session.scalar(query.order_by(Worker.started_at.desc()).limit(1))
    if worker is None:
        return None
    assert worker.work_per_megapixel_iteration is not None, "selected for having one"
    return WorkModel(worker.work_per_megapixel_iteration, worker.work_per_iteration or 0.0,
                     worker.work_per_scale or 0.0)


def begin_calibration(session: Session, name: str, host: str, device: str
                      ) -> tuple[WorkModel | None, bool]:
    """(the model measured on this host and device, whether `name` should measure it now):
    a worker measures only if none has and no other live worker here is measuring, so a
    host measures once even when its workers fall idle together."""
    known = calibrated(session, host, device)
    if known is not None:
        return known, False
    now = utcnow()
    others = session.scalars(select(Worker).where(
        Worker.host == host, Worker.name != name, Worker.state == WorkerState.CALIBRATING,
        Worker.stopped_at.is_(None)))
    if any(_alive(other, now) for other in others):
        return None, False
    seen(session, name, state=WorkerState.CALIBRATING)
    return None, True


def records(session: Session) -> list[WorkerRecord]:
    now = utcnow()
    return [WorkerRecord(id=w.id, name=w.name, host=w.host, pid=w.pid, device=w.device,
                         started_at=w.started_at, last_seen=w.last_seen, jobs_done=w.jobs_done,
                         current_job_id=w.current_job_id if _alive(w, now) else None,
                         alive=_alive(w, now), exit_cause=w.exit_cause, stopped_at=w.stopped_at,
                         state=_state(w) if _alive(w, now) else None,
                         problem=w.problem if _alive(w, now) else None)
            for w in session.scalars(select(Worker).order_by(Worker.last_seen.desc()))]


def _state(worker: Worker) -> str:
    """A live worker's state; rows from before workers reported one read off their job."""
    if worker.current_job_id is not None:
        return WorkerState.WORKING
    if worker.state in (None, WorkerState.WORKING):
        return WorkerState.IDLE
    return worker.state


def _alive(worker: Worker, now: datetime) -> bool:
    return (worker.stopped_at is None
            and now - worker.last_seen < timedelta(seconds=worker.lease_seconds))
