"""The Compare page's view: results side by side, and a batch as an X/Y(/Z) grid.

The grid opens on the axes that vary in the batch, refuses the same axis twice, notes why a
cell is empty (canceled, failed, still queued), and can split into one grid per value of a
third axis, like an X/Y/Z plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from nfx import sheets
from nfx.app.context import JobStatus, blob, data_url, queue, store, thumbnail
from nfx.app.gallery import gallery_filter, label_cards
from nfx.errors import InputError
from nfx.images import load_image, thumbnail_bytes
from nfx.labels import (batch_label, batch_ref, field_label, plural, result_ref,
                        settings_summary, stem, styles_text, varying_fields)
from nfx.queue.records import BatchRecord, JobRecord
from nfx.settings import FIELDS, settings_text
from nfx.store.records import ResultRecord

__all__ = ["InputError", "Choice", "compare_choices", "Comparison", "compare",
           "batches_with_results", "batch_label", "field_label", "GridAxes", "batch_axes",
           "AXES", "swap_axes", "GridPart", "Cell", "batch_parts", "Sheet", "batch_grids",
           "grid_png", "grid_file_name", "NO_AXIS", "thumbnail", "image_bytes",
           "settings_summary", "plural", "batch_zip", "batch_zip_name", "wipe_html"]

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
    choices = {}
    for c, text in label_cards(cards):
        assert c.result_id is not None and c.image_sha256 is not None, \
            "the filter's cards are done: each has its result"
        choices[c.result_id] = Choice(c.result_id, text, c.image_sha256)
    return choices


@dataclass(frozen=True)
class Comparison:
    records: list[ResultRecord]
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


def batches_with_results() -> list[BatchRecord]:
    """Batches that have at least one finished result, newest first."""
    return [b for b in queue().list_batches() if b.counts.get(JobStatus.DONE, 0)]


def _axis_value(job: JobRecord, axis: str) -> str:
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
    """Content, style and every setting. The defaults put what varies on the axes, a swept
    setting always on one: the inputs on the rows and the first swept setting across the
    columns; a third axis that varies splits the grid (one per value), so no result hides."""
    jobs = queue().list_jobs(batch_id=batch_id, limit=None)
    inputs = [axis for axis in ("content", "style")
              if len({_axis_value(j, axis) for j in jobs}) > 1]
    swept = varying_fields(j.settings for j in jobs)
    choices = ["content", "style"] + [n for n in FIELDS if n in swept]
    if inputs and swept:
        order = [inputs[0], swept[0], *inputs[1:], *swept[1:]]
    else:
        order = swept or inputs or ["content"]
    return GridAxes(choices, inputs + swept, order[0],
                    order[1] if len(order) > 1 else NO_AXIS,
                    order[2] if len(order) > 2 else NO_AXIS)


AXES = ("rows", "columns", "split")


def swap_axes(axes: dict[str, str], which: str, chosen: str,
              before: dict[str, str]) -> dict[str, str]:
    """The axes after `which` was set to `chosen`: an axis already in use swaps with it (its
    old place gets what `which` held before), so no choice is ever refused."""
    after = dict(axes)
    after[which] = chosen
    for other in AXES:
        if other != which and chosen and after[other] == chosen:
            after[other] = before[which]
    if not after["rows"]:  # rows cannot be "none": the columns move up
        after["rows"], after["columns"] = after["columns"], NO_AXIS
    return after


@dataclass(frozen=True)
class Cell:
    result_id: int
    image_sha256: str
    label: str  # the result's label, as the gallery shows it

    @property
    def thumb(self) -> bytes:
        return thumbnail(self.image_sha256)


@dataclass(frozen=True)
class GridPart:
    """One grid of a batch (one value of the split axis, or the whole batch): what the page
    lays out as clickable cells and what the PNG draws."""

    title: str
    rows: list[str]  # row axis values
    columns: list[str]  # column axis values ([""] with no column axis)
    cells: dict[tuple[int, int], Cell]
    notes: dict[tuple[int, int], str]  # why an empty cell is empty: canceled, deleted, ...

    @property
    def shown(self) -> int:
        return len(self.cells)

    @property
    def empty(self) -> int:
        return len(self.rows) * len(self.columns) - len(self.cells)


@dataclass(frozen=True)
class Sheet:
    title: str  # the split axis' value, or the batch
    png: bytes
    shown: int  # results drawn
    empty: int  # cells with no result


def _check_axes(rows: str, columns: str, split: str) -> list[str]:
    chosen = [a for a in (rows, columns, split) if a]
    if len(set(chosen)) < len(chosen):
        twice = next(a for a in chosen if chosen.count(a) > 1)
        raise InputError(f"{field_label(twice)} is on two axes; pick a different setting "
                         "for one of them.")
    return chosen


def batch_parts(batch_id: int, rows: str, columns: str = NO_AXIS,
                split: str = NO_AXIS) -> list[GridPart]:
    """The batch's grids: one per value of `split` (one without it). Every job of the
    batch has a cell, so a deleted result's cell says "deleted"; the newest job wins a
    cell that several share (a setting that is on no axis)."""
    chosen = _check_axes(rows, columns, split)
    jobs = queue().list_jobs(batch_id=batch_id, limit=None)
    results = {r.job_id: r for r in store().batch_results(batch_id)}
    if not results:
        raise InputError(f"Batch {batch_id} has no results yet.")
    cards = store().query_gallery(gallery_filter(batch_ids=(batch_id,)), page=0,
                                  page_size=max(len(jobs), 1))
    by_result = {card.result_id: text for card, text in label_cards(cards)
                 if card.result_id is not None}
    title = batch_label(queue().get_batch(batch_id))
    values = {axis: sorted({_axis_value(j, axis) for j in jobs}, key=_natural)
              for axis in chosen}
    parts = []
    for part in (values[split] if split else [None]):
        subset = [j for j in jobs if part is None or _axis_value(j, split) == part]
        parts.append(_part(subset, results, by_result, rows, columns, values,
                           title if part is None else f"{title} · {field_label(split)} {part}"))
    return parts


def _part(jobs: Sequence[JobRecord], results: dict[int, ResultRecord], labels: dict[int, str],
          rows: str, columns: str, values: dict[str, list[str]], title: str) -> GridPart:
    row_values = values[rows]
    column_values = values[columns] if columns else [""]
    cells: dict[tuple[int, int], Cell] = {}
    notes: dict[tuple[int, int], str] = {}
    for job in sorted(jobs, key=lambda j: j.id, reverse=True):  # the newest wins a cell
        where = (row_values.index(_axis_value(job, rows)),
                 column_values.index(_axis_value(job, columns)) if columns else 0)
        if where in cells:
            continue
        result = results.get(job.id)
        if result is not None:
            cells[where] = Cell(result.id, result.image_sha256,
                                labels.get(result.id, result_ref(result.id)))
        elif where not in notes:
            notes[where] = str(job.status)
    return GridPart(title, row_values, column_values, cells, notes)


def part_sheet(part: GridPart, rows: str, columns: str, cell_size: int = 192) -> Sheet:
    """One grid as a labelled contact sheet."""
    cells = {where: load_image(thumbnail(cell.image_sha256) if cell_size <= THUMBNAIL_EDGE
                               else blob(cell.image_sha256))
             for where, cell in part.cells.items()}
    image = sheets.contact_sheet(cells, part.rows, part.columns, cell_size=cell_size,
                               row_title=field_label(rows),
                               column_title=field_label(columns) if columns else "",
                               title=part.title, notes=part.notes)
    return Sheet(part.title, sheets.png(image), part.shown, part.empty)


def batch_grids(batch_id: int, rows: str, columns: str = NO_AXIS, split: str = NO_AXIS,
                cell_size: int = 192) -> list[Sheet]:
    """One labelled contact sheet per value of `split` (one sheet without it)."""
    return [part_sheet(part, rows, columns, cell_size)
            for part in batch_parts(batch_id, rows, columns, split)]


def grid_png(batch_id: int, rows: str, columns: str = NO_AXIS, split: str = NO_AXIS,
             cell_size: int = 256) -> bytes:
    """The whole layout as one labelled PNG: the grids of a split one under another."""
    images = [load_image(s.png) for s in batch_grids(batch_id, rows, columns, split,
                                                     cell_size)]
    return sheets.png(sheets.stack(images))


def grid_file_name(batch_id: int) -> str:
    return f"nfx-{batch_ref(batch_id)}-grid.png"


def _natural(text: str) -> tuple[int, float, str]:
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


WIPE_EDGE = 1024  # px: the wipe shows both results at most this large (a 4096 px PNG is MBs)
WIPE_HTML = """<div class="nfx-wipe" style="position:relative;width:min(100%%, %(edge)spx,
 calc(70vh * %(ratio)s));aspect-ratio:%(ratio)s;user-select:none;">
 <img src="%(b)s" alt="%(b_alt)s" style="position:absolute;inset:0;width:100%%;height:100%%;
  object-fit:contain;">
 <img class="nfx-wipe-a" src="%(a)s" alt="%(a_alt)s" style="position:absolute;inset:0;
  width:100%%;height:100%%;object-fit:contain;clip-path:inset(0 50%% 0 0);">
 <div class="nfx-wipe-line" style="position:absolute;top:0;bottom:0;left:50%%;width:2px;
  background:#ff4b4b;pointer-events:none;"></div>
 <span style="position:absolute;top:6px;left:8px;background:#000a;color:#fff;padding:1px 6px;
  border-radius:4px;font-size:0.8rem;">A · %(a_ref)s</span>
 <span style="position:absolute;top:6px;right:8px;background:#000a;color:#fff;padding:1px 6px;
  border-radius:4px;font-size:0.8rem;">B · %(b_ref)s</span>
</div>
<input class="nfx-wipe-range" type="range" min="0" max="100" value="50" step="0.5"
 aria-label="Wipe between A (%(a_ref)s) and B (%(b_ref)s)"
 style="width:min(100%%, %(edge)spx, calc(70vh * %(ratio)s));">
<script>
document.querySelectorAll("input.nfx-wipe-range").forEach((range) => {
  if (range.dataset.ready) return;
  range.dataset.ready = "1";
  range.addEventListener("input", () => {
    const wipe = range.previousElementSibling;
    wipe.querySelector(".nfx-wipe-a").style.clipPath = `inset(0 ${100 - range.value}%% 0 0)`;
    wipe.querySelector(".nfx-wipe-line").style.left = `${range.value}%%`;
  });
});
</script>
"""


@lru_cache(maxsize=16)
def _wipe_image(sha256: str) -> tuple[str, float]:
    """A result as a data URL at most WIPE_EDGE px, and its aspect ratio."""
    picture = load_image(blob(sha256))
    return data_url(thumbnail_bytes(picture, WIPE_EDGE)), picture.width / picture.height


def wipe_html(first: int, second: int) -> str:
    """An A/B wipe of two results: B under A, a slider moves the edge between them."""
    records = [store().get_result(i) for i in (first, second)]
    (a, ratio), (b, _) = (_wipe_image(r.image_sha256) for r in records)
    return WIPE_HTML % {"a": a, "b": b, "ratio": f"{ratio:.4f}", "edge": WIPE_EDGE,
                        "a_ref": result_ref(first), "b_ref": result_ref(second),
                        "a_alt": f"A: {result_ref(first)}", "b_alt": f"B: {result_ref(second)}"}
