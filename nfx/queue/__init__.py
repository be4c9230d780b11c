"""The queue: job statuses and their rules, the workers table, the worker loop and its
supervisor. `Queue` is the one object callers use (the app, the CLI, a worker)."""

from nfx.queue.queue import Queue, open_queue
from nfx.queue.records import BatchRecord, JobRecord, WorkerRecord
from nfx.status import LISTED, STATUSES, JobStatus, WorkerState

__all__ = ["Queue", "open_queue", "BatchRecord", "JobRecord", "WorkerRecord", "JobStatus",
           "WorkerState", "STATUSES", "LISTED"]
