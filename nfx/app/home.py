"""The Home page's view: counts, recent results (opened in the result dialog), samples."""

from __future__ import annotations

from nfx.app.context import store
from nfx.app.gallery import Card, gallery_cards, gallery_filter
from nfx.app.new_batch import add_sample_images, library_counts, sample_previews

__all__ = ["queue_counts", "library_counts", "recent_results", "add_sample_images",
           "sample_previews", "Card"]


def queue_counts() -> dict[str, int]:
    return store().queue_counts()


def recent_results(limit: int = 6) -> list[Card]:
    return gallery_cards(gallery_filter(), 0, limit)
