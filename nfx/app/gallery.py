"""The Gallery page's view: filter choices, the query from the sidebar's values, labelled
cards, and the ZIP of the current selection."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from nfx.app.access import owner_text
from nfx.app.context import LISTED, JobStatus, data_url, queue, store, thumbnail
from nfx.errors import InputError
from nfx.labels import batch_label, entry_label, job_ref, plural, result_ref, varying_fields
from nfx.people import LOCAL, Person
from nfx.queue.records import BatchRecord
from nfx.settings import FIELDS, INDEXED_FIELDS
from nfx.store import SORTS as STORE_SORTS
from nfx.store import GalleryCard, GalleryFilter, ImageRecord

__all__ = ["InputError", "PAGE_SIZES", "SORTS", "STATUSES", "JobStatus", "FilterOptions",
           "RangeFilter", "filter_options", "range_filters", "gallery_filter", "gallery_count",
           "Card", "gallery_cards", "result_ids", "export_zip", "export_label", "batch_label",
           "EXPORT_LIMIT", "REFRESH_SECONDS"]

STATUSES = LISTED  # what the status filter offers (a deleted result's job has no picture)
REFRESH_SECONDS = 5  # the cards refresh themselves this often, keeping filters and scroll

PAGE_SIZES = (12, 24, 48, 96)
SORT_LABELS = {"newest": "Date", "loss": "Final loss", "seconds": "Run time"}
SORTS = {key: SORT_LABELS.get(key) or FIELDS[key].label  # the store's sorts, labelled
         for key in STORE_SORTS if key != "id"}
EXPORT_LIMIT = 500  # results in one selection ZIP


@dataclass(frozen=True)
class FilterOptions:
    contents: list[ImageRecord]
    styles: list[ImageRecord]
    batches: list[BatchRecord]
    tags: list[str]
    people: list[str]  # everyone who has queued something


def filter_options() -> FilterOptions:
    return FilterOptions(contents=store().list_images("content"),
                         styles=store().list_images("style"),
                         batches=queue().list_batches(), tags=store().all_tags(),
                         people=store().owners())


@dataclass(frozen=True)
class RangeFilter:
    """One setting's range widget: a slider over whole numbers, or over a 1-2-5 ladder of
    values for floats spanning decades (so 1e9 fits and 1e-4 is reachable)."""

    name: str
    label: str
    help: str
    kind: str  # "int" | "ladder" | "choice"
    minimum: float = 0
    maximum: float = 0
    options: tuple[str, ...] | tuple[float, ...] = ()  # the choices, or the ladder's values

    def text(self, value: float | str) -> str:
        return FIELDS[self.name].format(value)


def _ladder(minimum: float, maximum: float) -> tuple[float, ...]:
    start = minimum if minimum > 0 else maximum / 1e9
    values = {minimum, maximum}
    for exponent in range(math.floor(math.log10(start)), math.ceil(math.log10(maximum)) + 1):
        for mantissa in (1, 2, 5):
            value = float(f"{mantissa}e{exponent}")
            if minimum <= value <= maximum and value >= start:
                values.add(value)
    return tuple(sorted(values))


def range_filters() -> list[RangeFilter]:
    """A widget per indexed setting, derived from FIELDS."""
    filters = []
    for name in INDEXED_FIELDS:
        spec = FIELDS[name]
        if spec.kind == "choice":
            filters.append(RangeFilter(name, spec.label, spec.help, "choice",
                                       options=spec.choices))
            continue
        assert spec.minimum is not None and spec.maximum is not None, \
            "every indexed number has its range"
        if spec.kind == "int":
            filters.append(RangeFilter(name, spec.label, spec.help, "int", int(spec.minimum),
                                       int(spec.maximum)))
        else:
            filters.append(RangeFilter(name, spec.label, spec.help, "ladder", spec.minimum,
                                       spec.maximum, _ladder(spec.minimum, spec.maximum)))
    return filters


def gallery_filter(*, content_ids: Iterable[int] = (), style_ids: Iterable[int] = (),
                   batch_ids: Iterable[int] = (),
                   statuses: Sequence[str] = (JobStatus.DONE,), tags: Iterable[str] = (),
                   favourites_only: bool = False, dates: Sequence[date] = (),
                   ranges: dict[str, tuple[float, float]] | None = None,
                   choices: dict[str, Sequence[Any]] | None = None, sort: str = "newest",
                   descending: bool = True, people: Iterable[str] = (),
                   viewer: Person = LOCAL) -> GalleryFilter:
    """A gallery query from the sidebar's values, as `viewer` sees it (their stars);
    full-range ranges and empty choices are dropped so they cost nothing; an inverted range
    is refused in one line."""
    for name, (lo, hi) in (ranges or {}).items():
        if lo > hi:
            spec = FIELDS[name]
            raise InputError(f"{spec.label}: “from” {spec.format(lo)} is above “to” "
                             f"{spec.format(hi)}; swap them to see results.")
    narrowed: dict[str, tuple[float | None, float | None]] = {
        name: (lo, hi) for name, (lo, hi) in (ranges or {}).items()
        if (lo, hi) != (FIELDS[name].minimum, FIELDS[name].maximum)}
    chosen = {name: list(values) for name, values in (choices or {}).items() if values}
    date_from = dates[0] if len(dates) > 0 else None  # dates mean whole days
    date_to = dates[-1] if len(dates) > 0 else None
    return GalleryFilter(content_ids=tuple(content_ids), style_ids=tuple(style_ids),
                         batch_ids=tuple(batch_ids), statuses=tuple(statuses or STATUSES),
                         tags=tuple(tags), favourites_only=favourites_only,
                         date_from=date_from, date_to=date_to, ranges=narrowed, choices=chosen,
                         sort=sort, descending=descending, owners=tuple(people),
                         viewer=viewer.name)


def gallery_count(flt: GalleryFilter) -> int:
    return store().count_gallery(flt)


@dataclass(frozen=True)
class Card:
    card: GalleryCard
    label: str  # 'R12 · tubingen × starry_night · Style weight 1e+04' (J17 until done)
    thumb: bytes | None

    @property
    def owner(self) -> str:
        """'queued by alice@example.org' (nothing for local without sign-in)."""
        return owner_text(self.card.owner)

    @property
    def thumb_url(self) -> str | None:
        return data_url(self.thumb) if self.thumb else None


def label_cards(cards: Sequence[GalleryCard]) -> list[tuple[GalleryCard, str]]:
    """Each card with its label: for a re-run, what it changed from its source result;
    else the settings that vary within its batch (or, outside any batch, among those
    shown)."""
    varying = store().batch_varying([c.batch_id for c in cards if c.batch_id is not None])
    sources = store().result_settings([c.source_result_id for c in cards
                                       if c.source_result_id is not None])
    loose = varying_fields(c.settings for c in cards
                           if c.batch_id is None and c.source_result_id not in sources)
    out = []
    for c in cards:
        ref = result_ref(c.result_id) if c.result_id else job_ref(c.job_id)
        names = varying.get(c.batch_id, []) if c.batch_id is not None else loose
        source = sources.get(c.source_result_id) if c.source_result_id is not None else None
        out.append((c, entry_label(ref, c.content_name, c.style_names, c.settings, names,
                                   source, c.regions)))
    return out


def gallery_cards(flt: GalleryFilter, page: int, page_size: int) -> list[Card]:
    """The cards of one page (0-based): only the page shown is fetched."""
    cards = store().query_gallery(flt, page=page, page_size=page_size)
    return [Card(c, text, thumbnail(c.image_sha256) if c.image_sha256 else None)
            for c, text in label_cards(cards)]


def result_ids(flt: GalleryFilter, limit: int = EXPORT_LIMIT) -> list[int]:
    """Result ids of the whole selection (every page), in its order: what the result
    dialog pages through and what a ZIP takes."""
    cards = store().query_gallery(flt, page=0, page_size=limit)
    return [c.result_id for c in cards if c.result_id]


def export_label(picked: Sequence[int], total: int) -> str:
    """The download button's words: the picked results, else the whole selection."""
    if picked:
        return f"Download {plural(len(picked), 'picked result')} (ZIP)"
    return f"Download all {min(total, EXPORT_LIMIT)} (ZIP)"


def export_zip(flt: GalleryFilter, picked: Sequence[int] = ()) -> bytes:
    """The picked results, else the whole selection, as the ZIP `nfx export` makes: PNGs
    named by their label and what varies, and settings.csv."""
    ids = list(picked) or result_ids(flt)
    if not ids:
        raise InputError("No finished results in this selection to export.")
    return store().export_results(ids)
