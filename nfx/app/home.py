"""The Home page's view: counts, recent results (opened in the result dialog), samples."""

from __future__ import annotations

from nfx.app.context import JobStatus, store
from nfx.app.gallery import Card, gallery_cards, gallery_filter
from nfx.app.new_batch import add_sample_images, library_counts, sample_previews

__all__ = ["queue_counts", "status_metrics", "library_counts", "recent_results", "add_sample_images",
           "sample_previews", "Card"]


def queue_counts() -> dict[str, int]:
    return store().queue_counts()


def status_metrics() -> list[tuple[str, int]]:
    """The queue at a glance: (label, count) for results, queued, running and failed."""
    counts = queue_counts()
    return [(label, counts.get(status, 0)) for label, status in
            (("Results", JobStatus.DONE), ("Queued", JobStatus.QUEUED),
             ("Running", JobStatus.RUNNING), ("Failed", JobStatus.FAILED))]


def recent_results(limit: int = 6) -> list[Card]:
    return gallery_cards(gallery_filter(), 0, limit)
