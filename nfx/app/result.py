"""The result dialog's view (gallery, home): one result, its neighbours, and what can be done
with it. Deleting is two steps: `delete_summary` says what goes, then `delete_result`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nfx.app.access import owner_text
from nfx.app.charts import LossChart, loss_chart
from nfx.app.context import JobStatus, blob, queue, store, thumbnail
from nfx.app.forms import changed_values, settings_frame
from nfx.app.new_batch import BatchDraft, draft_from_result
from nfx.errors import InputError, NotPermitted
from nfx.labels import entry_label, file_stem, job_ref, regions_text, result_ref
from nfx.people import LOCAL, Person
from nfx.queue.records import JobRecord
from nfx.settings import Settings
from nfx.store.records import ResultRecord

__all__ = ["InputError", "result", "image_bytes", "thumbnail", "label", "caption", "neighbours",
           "result_png", "png_file_name", "history_chart", "LossChart", "settings_frame",
           "all_tags", "set_favourite", "set_tags", "delete_summary", "delete_result",
           "rerun", "rerun_message", "draft", "BatchDraft", "regions_caption"]


def result(result_id: int, person: Person = LOCAL) -> ResultRecord:
    """A result as `person` sees it: `favourite` is their own star."""
    return store().get_result(result_id, viewer=person.name)


def image_bytes(sha256: str) -> bytes:
    return blob(sha256)


def _varying(record: ResultRecord) -> list[str]:
    if record.batch_id is None:
        return []
    return store().batch_varying([record.batch_id]).get(record.batch_id, [])


def _source(record: ResultRecord) -> Settings | None:
    """A re-run's source settings (None when it is not one, or its source was deleted)."""
    if record.source_result_id is None:
        return None
    return store().result_settings([record.source_result_id]).get(record.source_result_id)


def label(record: ResultRecord) -> str:
    """'R12 · tubingen × starry_night · Style weight 1e+04'; a re-run says what it changed
    ('R21 · chelsea × starry_night · Style weight 10 → 30')."""
    return entry_label(result_ref(record.id), record.content.name,
                       [s.name for s in record.styles], record.settings, _varying(record),
                       _source(record), record.regions)


def regions_caption(record: ResultRecord) -> str | None:
    """'#ff0000 starry_night · #000000 photo kept': what each colour of the mask got."""
    if record.regions is None:
        return None
    return regions_text(record.regions, [s.name for s in record.styles])


def caption(record: ResultRecord) -> str:
    resumed = (f" · resumed after scale {record.resumed_from_scale} (a worker was lost)"
               if record.resumed_from_scale else "")
    return (f"{record.width}×{record.height} · {record.seconds:.1f} s on {record.device} "
            f"({record.precision}) · {record.created_at:%Y-%m-%d %H:%M} · "
            f"made by {job_ref(record.job_id)}{resumed}"
            + (f" · {owner}" if (owner := owner_text(record.owner)) else ""))


def neighbours(result_id: int, ids: Sequence[int]) -> tuple[int | None, int | None]:
    """(previous, next) of result_id in the list the dialog was opened from."""
    ids = list(ids)
    if result_id not in ids:
        return None, None
    i = ids.index(result_id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)


def result_png(result_id: int) -> bytes:
    return store().result_png(result_id)


def png_file_name(record: ResultRecord) -> str:
    """'nfx-R20_chelsea_the-scream_style_weight-30.png': the result's label, never the
    number of the job that made it."""
    return "nfx-" + file_stem(result_ref(record.id), record.content.name,
                              [s.name for s in record.styles], record.settings,
                              _varying(record)) + ".png"


def draft(result_id: int) -> BatchDraft:
    """"Use these settings": the result's inputs and settings, for the New batch form."""
    return draft_from_result(result(result_id))


def history_chart(record: ResultRecord) -> LossChart:
    return loss_chart(record.history)


def all_tags() -> list[str]:
    return store().all_tags()


def set_favourite(result_id: int, favourite: bool, person: Person = LOCAL) -> None:
    """Star or unstar for this person alone (tags, below, are everyone's)."""
    store().set_favourite(result_id, favourite, person)


def set_tags(result_id: int, tags: Sequence[str]) -> None:
    store().set_tags(result_id, [t.strip() for t in tags if t.strip()])


def delete_summary(result_id: int) -> str:
    """What deleting a result takes with it, for the confirmation."""
    record = result(result_id)
    jobs = store().result_job_ids(result_id)
    parts = [f"Delete {result_ref(result_id)}: its PNG, thumbnail, losses and settings"]
    if record.tags:
        parts.append(f"its tags ({', '.join(record.tags)})")
    text = " and ".join(parts) + "."
    text += (f" {'The job' if len(jobs) == 1 else 'The jobs'} that showed it "
             f"({', '.join(job_ref(j) for j in jobs)}) stay in "
             f"{'its batch' if len(jobs) == 1 else 'their batches'}, marked “deleted”.")
    return text + " The content and style images stay in the library. This cannot be undone."


def delete_result(result_id: int, person: Person = LOCAL) -> str | None:
    """None when deleted, else why not, in one line (someone else's result)."""
    try:
        store().delete_result(result_id, person)
    except NotPermitted as exc:
        return str(exc)
    return None


def rerun(result_id: int, values: dict[str, Any], person: Person = LOCAL) -> JobRecord:
    """Queue a new job of `person`'s from a result's settings with the widget values that
    changed."""
    changes = changed_values(values, result(result_id).settings)
    return queue().rerun(result_id, changes, person=person)


def rerun_message(job: JobRecord) -> str:
    if job.status == JobStatus.DONE:
        assert job.result_id is not None, "a done job has its result"
        return f"Same as an earlier run: {job_ref(job.id)} re-uses {result_ref(job.result_id)}."
    return f"Queued {job_ref(job.id)}; follow it on the Queue page."
