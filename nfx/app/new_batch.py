"""The New batch page's view: the library, uploads, samples, style mixes, the planned jobs.

A style axis entry is one style or a *mix* (several styles with blend weights, one job each
combination); the plan is content × style entries × sweep.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from nfx.app import samples
from nfx.app.context import PlannedJob, queue, store, sweep_variants, thumbnail
from nfx.app.masks import KEEP_PHOTO, MaskChoice
from nfx.planning.batch import MaskPlan, masked_job
from nfx.regions import RegionMap
from nfx.planning.budget import check_fits
from nfx.app.estimates import batch_estimate, job_seconds, work_model
from nfx.errors import InputError, NFXError
from nfx.images import load_image, thumbnail_bytes
from nfx.labels import (batch_ref, inputs_text, plural, regions_text, run_text, stem,
                        styles_text)
from nfx.limits import limits_from_environment
from nfx.people import LOCAL, Person
from nfx.queue.records import BatchRecord
from nfx.settings import Settings, settings_text
from nfx.store.records import ImageRecord, ResultRecord

__all__ = ["InputError", "library", "library_counts", "image_label", "thumbnail", "add_uploads",
           "add_sample_images", "sample_previews", "StyleEntry", "parse_mix", "plan_jobs",
           "plan_frame", "queue_batch", "queued_message", "batch_estimate", "plural",
           "BatchDraft", "draft_from_result", "draft_from_batch",
           "new_form_token", "submission_key"]


def library(role: str) -> list[ImageRecord]:
    return store().list_images(role=role)


def library_counts() -> dict[str, int]:
    return {role: len(library(role)) for role in ("content", "style")}


def image_label(record: ImageRecord) -> str:
    return f"{record.name} · {record.width}×{record.height}"


def add_uploads(files: Iterable[tuple[str, bytes]], role: str
                ) -> tuple[list[ImageRecord], list[str]]:
    """Store each uploaded file; returns (records added, one error line per refused file).

    A bad file never stops the good ones; a file over the app's upload cap is refused
    before it is decoded."""
    added: list[ImageRecord] = []
    errors: list[str] = []
    limits = limits_from_environment()
    for name, data in files:
        try:
            limits.check_upload(name, data)
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


@lru_cache(maxsize=1)
def sample_previews() -> list[tuple[str, str, bytes]]:
    """(name, role, JPEG thumbnail) of each built-in sample, to show before adding them;
    drawn once per process (drawing them takes a second or two)."""
    return [(s.name, s.role, thumbnail_bytes(load_image(s.png()), 192))
            for s in samples.SAMPLES]


@dataclass(frozen=True)
class StyleEntry:
    """One entry of the style axis: a single style, or a mix with blend weights."""

    style_ids: tuple[int, ...]
    blend: tuple[float, ...] = ()

    def label(self, names: dict[int, str]) -> str:
        return styles_text([names[i] for i in self.style_ids], self.blend)


def cell_label(content_name: str, entry: StyleEntry, style_names: dict[int, str]) -> str:
    """'chelsea × the_scream': a grid cell's pairing."""
    return inputs_text(content_name, [style_names[i] for i in entry.style_ids], entry.blend)


def parse_mix(style_ids: Sequence[int], weights_text: str) -> StyleEntry:
    """A mix from two or more styles and their weights ('0.7, 0.3'; empty = equal)."""
    if len(style_ids) < 2:
        raise InputError("A mix needs two or more style images.")
    items = [t.strip() for t in weights_text.split(",") if t.strip()]
    try:
        weights = tuple(float(t) for t in items) if items else (1.0,) * len(style_ids)
    except ValueError:
        raise InputError("Blend weights are numbers separated by commas, "
                         "like “0.7, 0.3”.") from None
    if len(weights) != len(style_ids):
        raise InputError(f"Give one weight per style: {len(style_ids)} styles, "
                         f"{len(weights)} weights.")
    if any(w < 0 for w in weights) or not sum(weights):
        raise InputError("Blend weights must be zero or more, and not all zero.")
    return StyleEntry(tuple(style_ids), weights)


@dataclass(frozen=True)
class BatchDraft:
    """What the New batch form holds, as plain values: "Use these settings" on a result and
    "Duplicate batch" on the Queue page fill the form with one."""

    content_ids: tuple[int, ...]
    entries: tuple[StyleEntry, ...]
    settings: Settings  # the base settings (a mix's weights live in its entry)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    name: str = ""
    masks: dict[int, MaskChoice] = field(default_factory=dict)  # by content id

    @property
    def style_ids(self) -> list[int]:
        """The single styles (not mixes) of the style axis."""
        return [e.style_ids[0] for e in self.entries if not e.blend]

    @property
    def mixes(self) -> list[StyleEntry]:
        return [e for e in self.entries if e.blend]


def _entry(style_ids: Sequence[int], blend: Sequence[float]) -> StyleEntry:
    return StyleEntry(tuple(style_ids), tuple(blend) if len(style_ids) > 1 else ())


def draft_from_result(record: ResultRecord) -> BatchDraft:
    """A result's content, style (or mix) and settings, to start a new batch from; a run
    with regions gives each region's styles an entry and the photo its mask."""
    run = _DraftRun(record.content.id, tuple(s.id for s in record.styles),
                    record.settings.style_blend, record.regions,
                    record.mask.id if record.mask else None)
    entries, masks = _draft_entries([run])
    return BatchDraft((record.content.id,), entries,
                      record.settings.with_changes(style_blend=()), masks=masks)


def draft_from_batch(batch_id: int) -> BatchDraft:
    """A batch's contents, style entries, base settings and sweep, to queue it again with
    changes."""
    batch = queue().get_batch(batch_id)
    jobs = queue().list_jobs(batch_id=batch_id, limit=None)
    contents = tuple(dict.fromkeys(j.content_id for j in jobs))
    entries, masks = _draft_entries([_DraftRun(j.content_id, j.style_ids, j.settings.style_blend,
                                               j.regions, j.mask_id) for j in jobs])
    return BatchDraft(contents, entries, (batch.base or Settings()).with_changes(style_blend=()),
                      dict(batch.sweep), f"{batch.name} (again)", masks)


@dataclass(frozen=True)
class _DraftRun:
    """What a draft needs of a job or result."""

    content_id: int
    style_ids: tuple[int, ...]
    blend: tuple[float, ...]
    regions: RegionMap | None
    mask_id: int | None


def _draft_entries(runs: Sequence[_DraftRun]
                   ) -> tuple[tuple[StyleEntry, ...], dict[int, MaskChoice]]:
    """The style entries of some runs, single styles first and then mixes (as the form lists
    them), and each masked photo's mask with every colour's entry number among them."""
    wanted: dict[int, tuple[int, dict[str, StyleEntry | None]]] = {}
    found: list[StyleEntry] = []
    for run in runs:
        if run.regions is None or run.mask_id is None:
            found.append(_entry(run.style_ids, run.blend))
            continue
        weights = list(run.blend) or [1.0] * len(run.style_ids)
        colours: dict[str, StyleEntry | None] = {}
        for region in run.regions.regions:
            colours[region.colour] = None
            if region.styles:
                entry = _entry([run.style_ids[i - 1] for i in region.styles],
                               [weights[i - 1] for i in region.styles])
                colours[region.colour] = entry
                found.append(entry)
        wanted[run.content_id] = (run.mask_id, colours)
    unique = list(dict.fromkeys(found))
    entries = tuple([e for e in unique if not e.blend] + [e for e in unique if e.blend])
    masks = {content_id: MaskChoice(mask_id, {
        colour: entries.index(entry) + 1 if entry is not None else KEEP_PHOTO
        for colour, entry in colours.items()}) for content_id, (mask_id, colours) in wanted.items()}
    return entries, masks


def new_form_token() -> str:
    """A fresh token for one browser session's form: with the plan, it names a submission."""
    return uuid.uuid4().hex


Masks = Mapping[int, MaskPlan]  # a masked photo's regions, by its content id


def submission_key(token: str, content_ids: Sequence[int], entries: Sequence[StyleEntry],
                   base: Settings, sweep: dict[str, list[Any]], name: str | None,
                   masks: Masks | None = None) -> str:
    """The same form, sent twice from one session (a double click, a resent request), is
    one submission: the store queues it once."""
    plan = [token, list(content_ids), [[list(e.style_ids), list(e.blend)] for e in entries],
            base.digest(masked=bool(masks)),
            {k: [repr(v) for v in values] for k, values in sorted(sweep.items())}, name or "",
            sorted([c, m.mask_id, m.regions.as_json()] for c, m in (masks or {}).items())]
    return hashlib.sha256(json.dumps(plan).encode()).hexdigest()


def plan_jobs(content_ids: Sequence[int], entries: Sequence[StyleEntry], base: Settings,
              sweep: dict[str, list[Any]], masks: Masks | None = None) -> list[PlannedJob]:
    """content × style entries × sweep; a mix's weights go in its jobs' style_blend. A
    masked photo makes one job per sweep combination, its regions sharing out the entries
    they name."""
    variants = sweep_variants(base, sweep)
    masks = masks or {}
    pairs = [(e.style_ids, e.blend) for e in entries]
    jobs = []
    for c in content_ids:
        if c in masks:
            jobs += [masked_job(c, masks[c], pairs, v) for v in variants]
        else:
            jobs += [PlannedJob(c, e.style_ids,
                                v.with_changes(style_blend=e.blend) if e.blend else v)
                     for e in entries for v in variants]
    return jobs


def plan_frame(content_ids: Sequence[int], entries: Sequence[StyleEntry], base: Settings,
               sweep: dict[str, list[Any]], masks: Masks | None = None) -> pd.DataFrame:
    """The jobs a batch would queue, one row each, with what will run and an estimate."""
    columns = ["content", "style", "runs", "estimate (s)"]
    if not content_ids or not entries:
        return pd.DataFrame(columns=columns)
    images = {r.id: r for role in ("content", "style") for r in library(role)}
    model = work_model()  # None until a worker has measured this machine
    rows = []
    for job in plan_jobs(content_ids, entries, base, sweep, masks):
        content = images[job.content_id]
        size = (content.width, content.height)
        try:  # refused now, with the size that fits, rather than failing at once when run
            check_fits(size, job.settings)
        except InputError as exc:
            raise InputError(f"{stem(content.name)}: {exc}") from None
        style = styles_text([images[i].name for i in job.style_ids], job.settings.style_blend)
        if job.regions is not None:
            style = regions_text(job.regions, [images[i].name for i in job.style_ids])
        row: dict[str, str | float | None] = {"content": stem(content.name), "style": style}
        row.update(settings_text(job.settings, sweep, labels=True))
        row["runs"] = run_text(job.settings, size)
        row["estimate (s)"] = (None if model is None else
                               round(job_seconds(size, job.settings, model), 1))
        rows.append(row)
    return pd.DataFrame(rows)


def queue_batch(content_ids: Sequence[int], entries: Sequence[StyleEntry], base: Settings,
                sweep: dict[str, list[Any]], name: str | None = None,
                submission: str | None = None, masks: Masks | None = None,
                person: Person = LOCAL) -> BatchRecord:
    """Queue the planned batch as `person`'s (once per `submission`); InputError when
    nothing is picked, a job cannot fit its memory budget, or it takes the person over the
    cap on queued jobs."""
    if not content_ids or not entries:
        raise InputError("Pick at least one content image and one style (or mix).")
    return queue().create_planned_batch(plan_jobs(content_ids, entries, base, sweep, masks),
                                        base,
                                        sweep=sweep or None, name=name or None,
                                        submission=submission, person=person)


def queued_message(batch: BatchRecord) -> str:
    if batch.resubmitted:
        return (f"This batch is already queued as {batch_ref(batch.id)} "
                f"({plural(batch.job_count, 'job')}); change something to queue another.")
    reused = f", {batch.reused_count} already done" if batch.reused_count else ""
    return f"Queued batch {batch_ref(batch.id)}: {plural(batch.job_count, 'job')}{reused}."

