"""The gallery database: images as blobs, batches, jobs, results, tags, workers.

One SQLite file, or one PostgreSQL URL, is the whole gallery. Open it with `open_store()`;
migrations run on open.
"""

from nfx.store.gallery import SORTS, GalleryFilter
from nfx.store.records import (BatchRecord, GalleryCard, ImageRecord, JobRecord, ResultRecord,
                               WorkerRecord)
from nfx.store.status import LISTED, STATUSES, JobStatus, WorkerState
from nfx.store.store import Store, open_store

__all__ = ["Store", "open_store", "GalleryFilter", "SORTS", "ImageRecord", "BatchRecord",
           "JobRecord", "WorkerRecord", "GalleryCard", "ResultRecord", "JobStatus", "STATUSES", "LISTED",
           "WorkerState"]
