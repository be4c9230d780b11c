"""The Home page's view: counts, recent results (opened in the result dialog), samples."""

from __future__ import annotations

from nfx.app.context import JobStatus, queue, store
from nfx.app.gallery import Card, gallery_cards, gallery_filter
from nfx.app.new_batch import add_sample_images, library_counts, sample_previews

__all__ = ["queue_counts", "status_metrics", "library_counts", "recent_results",
           "add_sample_images", "sample_previews", "Card"]


def queue_counts() -> dict[JobStatus, int]:
    return queue().queue_counts()


def status_metrics() -> list[tuple[str, int]]:
    """The gallery and the queue at a glance: results (each once, however many jobs show
    it), then queued, running and failed jobs."""
    counts = queue_counts()
    return [("Results", store().count_results())] + [
        (label, counts.get(status, 0)) for label, status in
        (("Queued", JobStatus.QUEUED), ("Running", JobStatus.RUNNING),
         ("Failed", JobStatus.FAILED))]


def recent_results(limit: int = 6) -> list[Card]:
    return gallery_cards(gallery_filter(), 0, limit)
