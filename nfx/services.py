"""What the app's pages call: thin glue over the store, the queue planner and the grid.

Pages hold layout only. Every query and action they need is a function here, returning plain
records, pandas frames or bytes, so the pages stay free of SQL, torch and store internals, and
the same calls can be tested without a browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

from nfx import grid, samples
from nfx.errors import InputError, NFXError
from nfx.images import load_image, size_for_long_edge
from nfx.planner import plan_batch
from nfx.scales import WorkModel
from nfx.settings import FIELDS, FieldSpec, Settings, parse_sweep, settings_text
from nfx.store import SORTS as STORE_SORTS
from nfx.store import STATUSES, GalleryFilter, Store, open_store

PAGE_SIZES = (12, 24, 48, 96)
# Before anything has run on this machine: a mid-range CPU's VGG-19 L-BFGS cost, rough.
FALLBACK_SECONDS_PER_MEGAPIXEL_ITERATION = 3.0
SORT_LABELS = {"newest": "Date", "loss": "Final loss", "seconds": "Run time"}
SORTS = {key: SORT_LABELS.get(key) or FIELDS[key].label  # the store's sorts, labelled
         for key in STORE_SORTS if key != "id"}
STOPPED_WORKERS_SHOWN = 3  # the queue page lists live workers and the last few stopped ones


# --- the store ----------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _open_store(url: str | None) -> Store:
    return open_store(url)


def store() -> Store:
    """One Store per database URL per server process (engine pool and migrations once)."""
    return _open_store(os.environ.get("NFX_DATABASE_URL") or None)


# --- settings, as the widgets need them ---------------------------------------------------


def settings_groups() -> dict[str, list[FieldSpec]]:
    """FIELDS by widget group, in declaration order."""
    groups: dict[str, list[FieldSpec]] = {}
    for spec in FIELDS.values():
        groups.setdefault(spec.group, []).append(spec)
    return groups


def sweepable_fields() -> list[str]:
    return [name for name, spec in FIELDS.items() if spec.sweepable]


def field_label(name: str) -> str:
    return FIELDS[name].label if name in FIELDS else name.capitalize()


def build_settings(values: dict[str, Any], base: Settings | None = None) -> Settings:
    """Settings from widget values (list fields arrive as text); InputError with one line."""
    parsed = {name: FIELDS[name].parse(value) if isinstance(value, str) else value
              for name, value in values.items()}
    return (base or Settings()).with_changes(**parsed)


def parse_sweeps(texts: dict[str, str]) -> dict[str, list[Any]]:
    """{'style_weight': '1e3, 1e4'} -> {'style_weight': [1000.0, 10000.0]}, range-checked."""
    sweep = {}
    for name, text in texts.items():
        field_name, values = parse_sweep(f"{name}={text}")
        if not values:
            raise InputError(f"{name}: give at least one value to sweep")
        sweep[field_name] = values
    return sweep


def settings_frame(settings: Settings) -> pd.DataFrame:
    """Every setting with its value and group, for a read-only table."""
    rows = [{"setting": spec.label, "value": spec.text_of(settings), "group": spec.group}
            for spec in FIELDS.values()]
    return pd.DataFrame(rows).set_index("setting")


# --- the image library --------------------------------------------------------------------


def library(role: str) -> list:
    return store().list_images(role=role)


def library_counts() -> dict[str, int]:
    return {role: len(library(role)) for role in ("content", "style")}


def image_label(record) -> str:
    return f"{record.name} · {record.width}×{record.height}"


@st.cache_data(max_entries=4000, show_spinner=False)
def _blob(sha256: str) -> bytes:
    """Blobs are content-addressed, so a cached copy can never be stale."""
    return store().blob(sha256)


@st.cache_data(max_entries=4000, show_spinner=False)
def thumbnail(sha256: str) -> bytes:
    """The thumbnail of a library image or result, by the full image's sha256."""
    return store().thumbnail(sha256)


def add_uploads(files: Iterable[tuple[str, bytes]], role: str) -> tuple[list, list[str]]:
    """Store each uploaded file; returns (records added, one error line per refused file).

    A bad file never stops the good ones."""
    added, errors = [], []
    for name, data in files:
        try:
            added.append(store().add_image(data, name=name, role=role))
        except NFXError as exc:
            errors.append(str(exc) if name in str(exc) else f"{name}: {exc}")
    return added, errors


def add_sample_images() -> int:
    """Put the code-drawn samples in the library; returns how many were new."""
    before = sum(library_counts().values())
    for sample in samples.SAMPLES:
        store().add_image(sample.png(), name=sample.name, role=sample.role)
    return sum(library_counts().values()) - before


# --- planning and queueing batches --------------------------------------------------------


def work_model() -> tuple[WorkModel, bool]:
    """(model, measured): this machine's, once a worker has measured it or anything has run,
    else a rough fallback."""
    measured = store().work_model()
    if measured:
        return measured, True
    return WorkModel(FALLBACK_SECONDS_PER_MEGAPIXEL_ITERATION), False


ESTIMATE_SPREAD = (0.75, 1.3)  # the range shown around an estimate


def estimate_text(seconds: float) -> tuple[str, bool]:
    """'2 min 10 s – 3 min 45 s' around an estimate, and whether it is measured."""
    _, measured = work_model()
    low, high = (seconds * f for f in ESTIMATE_SPREAD)
    return f"{format_duration(low)} – {format_duration(high)}", measured


def plan_frame(content_ids: Sequence[int], style_ids: Sequence[int], base: Settings,
               sweep: dict[str, list]) -> pd.DataFrame:
    """The jobs a batch would queue (content × style × sweep), one row each, with estimates."""
    if not content_ids or not style_ids:
        return pd.DataFrame(columns=["content", "style", "size", "estimate (s)"])
    images = {record.id: record for role in ("content", "style") for record in library(role)}
    model, _ = work_model()
    rows = []
    for job in plan_batch(list(content_ids), list(style_ids), base, sweep):
        content = images[job.content_id]
        row = {"content": content.name,
               "style": " + ".join(images[i].name for i in job.style_ids)}
        row.update(settings_text(job.settings, sweep, labels=True))
        row["size"] = job.settings.size
        row["estimate (s)"] = round(model.seconds(
            size_for_long_edge((content.width, content.height), job.settings.size),
            job.settings), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def queue_batch(content_ids: Sequence[int], style_ids: Sequence[int], base: Settings,
                sweep: dict[str, list], name: str | None = None):
    if not content_ids or not style_ids:
        raise InputError("pick at least one content and one style image")
    return store().create_batch(list(content_ids), list(style_ids), base, sweep=sweep or None,
                                name=name or None)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --- gallery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    contents: list
    styles: list
    batches: list
    tags: list[str]


def filter_options() -> FilterOptions:
    return FilterOptions(contents=library("content"), styles=library("style"),
                         batches=store().list_batches(), tags=store().all_tags())


def batch_label(batch) -> str:
    return f"#{batch.id} {batch.name} ({batch.job_count} jobs)"


def gallery_filter(*, content_ids=(), style_ids=(), batch_ids=(), statuses=("done",), tags=(),
                   favourites_only=False, dates: Sequence[date] = (),
                   ranges: dict[str, tuple] | None = None,
                   choices: dict[str, list] | None = None, sort="newest",
                   descending=True) -> GalleryFilter:
    """A gallery query from the sidebar's values; full-range ranges and empty choices are
    dropped so they cost nothing."""
    ranges = {name: (lo, hi) for name, (lo, hi) in (ranges or {}).items()
              if (lo, hi) != (FIELDS[name].minimum, FIELDS[name].maximum)}
    choices = {name: list(values) for name, values in (choices or {}).items() if values}
    date_from = dates[0] if len(dates) > 0 else None  # dates mean whole days
    date_to = dates[-1] if len(dates) > 0 else None
    return GalleryFilter(content_ids=tuple(content_ids), style_ids=tuple(style_ids),
                         batch_ids=tuple(batch_ids), statuses=tuple(statuses or STATUSES),
                         tags=tuple(tags), favourites_only=favourites_only,
                         date_from=date_from, date_to=date_to, ranges=ranges, choices=choices,
                         sort=sort, descending=descending)


def gallery_count(flt: GalleryFilter) -> int:
    return store().count_gallery(flt)


def gallery_cards(flt: GalleryFilter, page: int, page_size: int) -> list:
    """The cards of one page (0-based): only the page shown is fetched."""
    return store().query_gallery(flt, page=page, page_size=page_size)


def recent_results(limit: int = 6) -> list:
    return store().query_gallery(gallery_filter(), page=0, page_size=limit)


def result(result_id: int):
    return store().get_result(result_id)


def result_png(result_id: int) -> bytes:
    return store().result_png(result_id)


def image_bytes(sha256: str) -> bytes:
    return _blob(sha256)


def history_frame(record) -> pd.DataFrame:
    """Each loss term per iteration divided by its largest value, for one st.line_chart:
    the terms differ by orders of magnitude, so raw values would flatten all but one."""
    frame = pd.DataFrame(record.history or [])
    if frame.empty or "iteration" not in frame:
        return pd.DataFrame()
    columns = [c for c in ("total", "content", "style", "tv") if c in frame]
    frame = frame.groupby("iteration")[columns].last()
    return frame / frame.abs().max().replace(0, 1)


def set_favourite(result_id: int, favourite: bool) -> None:
    store().set_favourite(result_id, favourite)


def set_tags(result_id: int, tags: Sequence[str]) -> None:
    store().set_tags(result_id, [t.strip() for t in tags if t.strip()])


def delete_result(result_id: int) -> None:
    store().delete_result(result_id)


def rerun(result_id: int, values: dict[str, Any]):
    """Queue a new job from a result's settings with the widget values that changed."""
    original = result(result_id).settings
    changed = build_settings(values, base=original)
    changes = {name: mine for name, (mine, _) in changed.differences(original).items()}
    return store().rerun(result_id, changes)


def card_thumbnail(card) -> bytes | None:
    """A gallery card's thumbnail, or None while its job has no result."""
    return _blob(card.thumb_sha256) if card.thumb_sha256 else None


def varying_settings(records: Sequence) -> list[str]:
    """The settings whose values differ between these cards or results: what tells them
    apart."""
    return [name for name in FIELDS
            if len({repr(getattr(record.settings, name)) for record in records}) > 1]


def settings_summary(settings: Settings, names: Sequence[str]) -> str:
    return " · ".join(f"{label} {value}"
                      for label, value in settings_text(settings, names, labels=True).items())


def result_label(card) -> str:
    """'#12 landscape.png × swirls.png' for a gallery card or a result record."""
    if hasattr(card, "content_name"):
        number, content, styles = card.result_id or card.job_id, card.content_name, card.style_names
    else:
        number, content, styles = card.id, card.content.name, [s.name for s in card.styles]
    return f"#{number} {_stem(content)} × {' + '.join(_stem(s) for s in styles)}"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


# --- queue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSnapshot:
    counts: dict[str, int]
    running: list
    queued: list
    failed: list
    workers: list


def queue_snapshot(limit: int = 50) -> QueueSnapshot:
    s = store()
    s.queue.requeue_expired()  # a job whose worker vanished goes back now, not at next claim
    workers = s.list_workers()  # newest first
    recent_stopped = [w for w in workers if not w.alive][:STOPPED_WORKERS_SHOWN]
    return QueueSnapshot(counts=s.queue_counts(), running=s.list_jobs(status="running"),
                         queued=s.list_jobs(status="queued", limit=limit),
                         failed=s.list_jobs(status="failed", limit=limit),
                         workers=[w for w in workers if w.alive or w in recent_stopped])


def job_label(job) -> str:
    styles = " + ".join(_stem(s) for s in job.style_names)
    return f"Job #{job.id}: {_stem(job.content_name)} × {styles}"


def job_summary(job) -> str:
    s = job.settings
    tries = f" · attempt {job.attempts + 1}" if job.attempts else ""
    return f"{s.size} px, {s.scales} scales × {s.steps} steps{tries}"


def workers_frame(workers: Sequence) -> pd.DataFrame:
    return pd.DataFrame([{"worker": w.name, "alive": w.alive, "device": w.device,
                          "jobs done": w.jobs_done, "current job": w.current_job_id,
                          "last seen": w.last_seen} for w in workers])


def _queue_action(action, job_id: int) -> None:
    """Run a button's queue action; a job that changed state meanwhile (it finished while
    the user clicked Cancel, say) is one line in a toast, not a traceback."""
    try:
        action(job_id)
    except NFXError as exc:
        st.toast(str(exc), icon=":material/info:")


def cancel_job(job_id: int) -> None:
    _queue_action(store().cancel_job, job_id)


def move_to_front(job_id: int) -> None:
    _queue_action(store().move_to_front, job_id)


def retry_job(job_id: int) -> None:
    _queue_action(store().retry_job, job_id)


# --- compare ------------------------------------------------------------------------------


def compare_choices(limit: int = 500) -> dict[int, str]:
    """Recent done results by id, labelled, for the compare picker."""
    cards = store().query_gallery(gallery_filter(), page=0, page_size=limit)
    return {card.result_id: result_label(card) for card in cards}


@dataclass(frozen=True)
class Comparison:
    records: list
    frame: pd.DataFrame  # rows: inputs and settings; columns: "#<result id>"
    differing: list[str]  # row labels that differ
    differing_fields: list[str]  # setting names that differ


def compare(result_ids: Sequence[int]) -> Comparison:
    """Results side by side: their inputs and every setting, and which of those differ."""
    records = [result(i) for i in result_ids]
    columns = {}
    for r in records:
        column = {"Content": r.content.name, "Style": " + ".join(s.name for s in r.styles)}
        column.update(settings_text(r.settings, labels=True))
        columns[f"#{r.id}"] = column
    frame = pd.DataFrame(columns)
    changed = {name for r in records[1:] for name in records[0].settings.differences(r.settings)}
    fields = [name for name in FIELDS if name in changed]
    inputs = [label for label in ("Content", "Style") if frame.loc[label].nunique() > 1]
    return Comparison(records, frame, inputs + [FIELDS[n].label for n in fields], fields)


def batch_axes(batch_id: int) -> list[str]:
    """Axes a batch varies along: content, style, and each setting with several values."""
    records = store().batch_results(batch_id)
    return ["content", "style"] + varying_settings(records)


def _axis_value(record, axis: str) -> str:
    if axis == "content":
        return record.content.name
    if axis == "style":
        return " + ".join(s.name for s in record.styles)
    return FIELDS[axis].text_of(record.settings)


def batch_grid(batch_id: int, row_axis: str, column_axis: str,
               cell_size: int = 192) -> tuple[bytes, int]:
    """A labelled contact sheet of a batch's results as PNG bytes, and how many results it
    shows (one per cell: the newest when other settings also vary)."""
    records = sorted(store().batch_results(batch_id), key=lambda r: r.id, reverse=True)
    if not records:
        raise InputError(f"batch {batch_id} has no results yet")
    rows = sorted({_axis_value(r, row_axis) for r in records}, key=_natural)
    columns = sorted({_axis_value(r, column_axis) for r in records}, key=_natural)
    cells: dict[tuple[int, int], Image.Image] = {}
    for record in records:
        where = (rows.index(_axis_value(record, row_axis)),
                 columns.index(_axis_value(record, column_axis)))
        if where not in cells:
            cells[where] = load_image(_blob(record.image_sha256))
    sheet = grid.contact_sheet(cells, rows, columns, cell_size=cell_size,
                               row_title=field_label(row_axis),
                               column_title=field_label(column_axis),
                               title=f"Batch #{batch_id}")
    return grid.png(sheet), len(cells)


def _natural(text: str):
    """Numbers sort by value (1e3 before 1e4), everything else alphabetically."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def queue_counts() -> dict[str, int]:
    return store().queue_counts()


def all_tags() -> list[str]:
    return store().all_tags()


def batches_with_results() -> list:
    """Batches that have at least one finished result, newest first."""
    return [b for b in store().list_batches() if b.counts.get("done", 0)]
