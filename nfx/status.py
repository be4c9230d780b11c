"""The one name for each state a job can be in."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """A job's state. A `str` enum, so it is stored and compared as its plain value."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a worker holds its lease
    DONE = "done"  # has a result (its own, or an identical earlier run's)
    FAILED = "failed"  # gave up, with the reason in `error`
    CANCELED = "canceled"  # a user stopped it
    DELETED = "deleted"  # it was done, and a user deleted its result: its batch remembers it

    def __str__(self) -> str:
        return self.value

    # Enum hashes by member name; hash by value instead, so that "done" and JobStatus.DONE
    # find the same entry in a dict (they are already equal as strings).
    __hash__ = str.__hash__


STATUSES: tuple[JobStatus, ...] = tuple(JobStatus)
LISTED: tuple[JobStatus, ...] = tuple(s for s in JobStatus if s is not JobStatus.DELETED)
ACTIVE: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)  # may still run
RETRYABLE: tuple[JobStatus, ...] = (JobStatus.FAILED, JobStatus.CANCELED)


class WorkerState(str, Enum):
    """What a live worker is doing, as it reports it (a stopped one has none)."""

    STARTING = "starting"  # loading the network
    CALIBRATING = "calibrating"  # measuring its device's speed, once per host and device
    IDLE = "idle"  # waiting for work
    WORKING = "working"  # running a job
    PAUSED = "paused"  # the database refused to store its result (full disk): retrying

    def __str__(self) -> str:
        return self.value
