"""The Compare page's view: results side by side, and a batch as an X/Y(/Z) grid.

The grid opens on the axes that vary in the batch, refuses the same axis twice, notes why a
cell is empty (canceled, failed, still queued), and can split into one grid per value of a
third axis, like an X/Y/Z plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from nfx import grid
from nfx.app.context import JobStatus, blob, store, thumbnail
from nfx.app.gallery import gallery_filter, label_cards
from nfx.errors import InputError
from nfx.images import load_image
from nfx.labels import (batch_label, field_label, plural, result_ref, settings_summary, stem,
                        styles_text, varying_fields)
from nfx.settings import FIELDS, settings_text

__all__ = ["InputError", "Choice", "compare_choices", "Comparison", "compare", "batches_with_results",
           "batch_label", "field_label", "GridAxes", "batch_axes", "Sheet", "batch_grids",
           "NO_AXIS", "thumbnail", "image_bytes", "settings_summary", "plural",
           "batch_zip", "batch_zip_name"]

NO_AXIS = ""  # "none" in the column and split pickers
THUMBNAIL_EDGE = 256  # the store's thumbnails: grids with cells this small draw from them


def image_bytes(sha256: str) -> bytes:
    return blob(sha256)


@dataclass(frozen=True)
class Choice:
    result_id: int
    label: str  # with the settings that vary within its batch
    thumb_sha256: str


def compare_choices(limit: int = 500) -> dict[int, Choice]:
    """Recent done results by id, labelled so that no two read alike."""
    cards = store().query_gallery(gallery_filter(), page=0, page_size=limit)
    return {c.result_id: Choice(c.result_id, text, c.image_sha256)
            for c, text in label_cards(cards)}


@dataclass(frozen=True)
class Comparison:
    records: list
    frame: pd.DataFrame  # rows: inputs and settings; columns: "R<result id>"
    differing: list[str]  # row labels that differ
    differing_fields: list[str]  # setting names that differ


def compare(result_ids: Sequence[int]) -> Comparison:
    """Results side by side: their inputs and every setting, and which of those differ."""
    records = [store().get_result(i) for i in result_ids]
    columns = {}
    for r in records:
        column = {"Content": r.content.name,
                  "Style": styles_text([s.name for s in r.styles], r.settings.style_blend)}
        column.update(settings_text(r.settings, labels=True))
        columns[result_ref(r.id)] = column
    frame = pd.DataFrame(columns)
    fields = varying_fields(r.settings for r in records)
    inputs = [label for label in ("Content", "Style") if frame.loc[label].nunique() > 1]
    return Comparison(records, frame, inputs + [FIELDS[n].label for n in fields], fields)


def batches_with_results() -> list:
    """Batches that have at least one finished result, newest first."""
    return [b for b in store().list_batches() if b.counts.get(JobStatus.DONE, 0)]


def _axis_value(job, axis: str) -> str:
    if axis == "content":
        return stem(job.content_name)
    if axis == "style":
        return styles_text(job.style_names, job.settings.style_blend)
    return FIELDS[axis].text_of(job.settings)


@dataclass(frozen=True)
class GridAxes:
    choices: list[str]  # every axis the batch could be laid out on
    varying: list[str]  # those with more than one value in this batch
    rows: str
    columns: str  # NO_AXIS when only one thing varies
    split: str  # the third axis (one grid per value) when three things vary, else NO_AXIS


def batch_axes(batch_id: int) -> GridAxes:
    """Content, style and every setting; the defaults are the ones that vary in this batch
    (rows, columns, then one grid per value of the third), so none of its results hides."""
    jobs = store().list_jobs(batch_id=batch_id, limit=None)
    varying = [axis for axis in ("content", "style")
               if len({_axis_value(j, axis) for j in jobs}) > 1]
    varying += varying_fields(j.settings for j in jobs)
    choices = ["content", "style"] + [n for n in FIELDS if n in varying]
    defaults = (varying + [a for a in choices if a not in varying])[:3]
    return GridAxes(choices, varying, defaults[0],
                    defaults[1] if len(varying) > 1 else NO_AXIS,
                    defaults[2] if len(varying) > 2 else NO_AXIS)


@dataclass(frozen=True)
class Sheet:
    title: str  # the split axis' value, or the batch
    png: bytes
    shown: int  # results drawn
    empty: int  # cells with no result


def batch_grids(batch_id: int, rows: str, columns: str = NO_AXIS, split: str = NO_AXIS,
                cell_size: int = 192) -> list[Sheet]:
    """One labelled contact sheet per value of `split` (one sheet without it)."""
    chosen = [a for a in (rows, columns, split) if a]
    if len(set(chosen)) < len(chosen):
        twice = next(a for a in chosen if chosen.count(a) > 1)
        raise InputError(f"{field_label(twice)} is on two axes; pick a different setting "
                         "for one of them.")
    jobs = store().list_jobs(batch_id=batch_id, limit=None)
    results = {r.job_id: r for r in store().batch_results(batch_id)}
    if not results:
        raise InputError(f"Batch {batch_id} has no results yet.")
    title = batch_label(store().get_batch(batch_id))
    values = {axis: sorted({_axis_value(j, axis) for j in jobs}, key=_natural)
              for axis in chosen}
    sheets = []
    for part in (values[split] if split else [None]):
        subset = [j for j in jobs if part is None or _axis_value(j, split) == part]
        sheets.append(_sheet(subset, results, rows, columns, values, cell_size,
                             title if part is None else f"{title} · {field_label(split)} {part}"))
    return sheets


def _sheet(jobs, results, rows, columns, values, cell_size, title) -> Sheet:
    row_values = values[rows]
    column_values = values[columns] if columns else [""]
    cells, notes = {}, {}
    for job in sorted(jobs, key=lambda j: j.id, reverse=True):  # the newest wins a cell
        where = (row_values.index(_axis_value(job, rows)),
                 column_values.index(_axis_value(job, columns)) if columns else 0)
        if job.id in results and where not in cells:
            sha = results[job.id].image_sha256  # the thumbnail is enough for small cells
            cells[where] = load_image(thumbnail(sha) if cell_size <= THUMBNAIL_EDGE else blob(sha))
        elif job.id not in results and where not in notes:
            notes[where] = job.status
    image = grid.contact_sheet(cells, row_values, column_values, cell_size=cell_size,
                               row_title=field_label(rows),
                               column_title=field_label(columns) if columns else "",
                               title=title, notes=notes)
    empty = len(row_values) * len(column_values) - len(cells)
    return Sheet(title, grid.png(image), len(cells), empty)


def _natural(text: str):
    """Numbers sort by value (1e3 before 1e4), everything else alphabetically."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def batch_zip(batch_id: int) -> bytes:
    """The batch as `nfx export` makes it: PNGs named by what varies, and settings.csv."""
    return store().export_batch(batch_id)


def batch_zip_name(batch_id: int) -> str:
    return f"nfx-batch-{batch_id}.zip"
