"""The gallery's database: images as blobs, results, tags, and the tables the queue keeps
(batches, jobs, workers). One SQLite file, or one PostgreSQL URL, is the whole gallery. Open it
with `open_store()`; migrations run on open.
"""

from nfx.store.gallery import SORTS, GalleryFilter
from nfx.store.records import GalleryCard, ImageRecord, ResultRecord
from nfx.store.store import Store, open_store

__all__ = ["Store", "open_store", "GalleryFilter", "SORTS", "ImageRecord", "GalleryCard",
           "ResultRecord"]
