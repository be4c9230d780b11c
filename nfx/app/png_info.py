"""PNG info (the A1111 habit): what an NFX PNG was made from, and queueing it again.

Every NFX PNG carries its settings (`nfx:settings`) and its inputs (`nfx:info`: "content"
and "styles", each with sha256 and name). The inputs are found in the library by sha256; a
re-run needs both, so the view says which one is missing otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from nfx.app.context import JobStatus, PlannedJob, queue, store, thumbnail
from nfx.app.forms import changed_values, settings_frame
from nfx.errors import InputError
from nfx.images import read_png_info
from nfx.labels import batch_ref, format_duration, inputs_text, job_ref, plural, result_ref
from nfx.limits import limits_from_environment
from nfx.people import LOCAL, Person
from nfx.regions import RegionMap, identity
from nfx.run_record import InputRef, read_run_png
from nfx.settings import Settings
from nfx.store.records import ImageRecord

__all__ = ["InputError", "PngInputs", "inspect", "queue_again", "settings_frame", "thumbnail",
           "facts_text", "same_run_note"]


@dataclass(frozen=True)
class PngInputs:
    settings: Settings
    content_name: str | None  # as recorded in the PNG
    style_names: list[str]
    content: ImageRecord | None  # found in the library
    styles: list[ImageRecord | None]  # per recorded style
    facts: dict[str, Any]  # the rest of nfx:info (losses, seconds, device...)
    result_id: int | None = None  # this run's result in the gallery, if it is there
    recorded: tuple[InputRef, ...] = ()  # what the PNG records (name, sha256, colour profile)
    mask_name: str | None = None  # a run with regions: its mask as recorded,
    mask: ImageRecord | None = None  # found in the library,
    regions: RegionMap | None = None  # and what each colour got

    @property
    def title(self) -> str:
        if self.content_name and self.style_names:
            return inputs_text(self.content_name, self.style_names, self.settings.style_blend)
        return "an NFX image"

    @property
    def missing(self) -> list[str]:
        """Lines saying which inputs are not in the gallery (empty: it can be queued)."""
        if self.content_name is None or not self.style_names:
            return ["This PNG does not record its inputs (made by an older NFX), so it "
                    "cannot be queued again from here; its settings are below."]
        lines = []
        if self.content is None:
            lines.append(f"Content “{self.content_name}” is not in the gallery: add it on "
                         "New batch first.")
        for name, found in zip(self.style_names, self.styles):
            if found is None:
                lines.append(f"Style “{name}” is not in the gallery: add it on New batch "
                             "first.")
        if self.mask_name is not None and self.mask is None:
            lines.append(f"Mask “{self.mask_name}” is not in the gallery: give the photo "
                         "that mask on New batch first.")
        return lines


def inspect(data: bytes, name: str = "image") -> PngInputs:
    """Settings and inputs of a PNG; InputError (one line) for anything that is not one."""
    limits_from_environment().check_upload(name, data)
    try:
        stored = read_run_png(data)
    except InputError:
        raise InputError(f"{name}: no NFX settings in this file; PNG info reads PNGs that "
                         "NFX made.") from None
    def find(ref: InputRef, role: str) -> ImageRecord | None:
        return store().image_by_sha256(ref.sha256, role) if ref.sha256 else None

    regions = (identity(stored.mask.sha256, stored.regions)
               if stored.mask is not None and stored.regions is not None else None)
    result_id = store().find_result(
        hashlib.sha256(data).hexdigest(),
        stored.content.sha256 if stored.content else None,
        [s.sha256 for s in stored.styles], stored.settings, regions)
    return PngInputs(
        settings=stored.settings,
        content_name=stored.content.name if stored.content else None,
        style_names=[s.name for s in stored.styles],
        content=find(stored.content, "content") if stored.content else None,
        styles=[find(s, "style") for s in stored.styles],
        facts={k: v for k, v in read_png_info(data).items()
               if k not in ("content", "styles", "mask", "regions")},
        result_id=result_id,
        recorded=(stored.content, *stored.styles) if stored.content else (),
        mask_name=stored.mask.name if stored.mask else None,
        mask=find(stored.mask, "mask") if stored.mask else None, regions=stored.regions)


def facts_text(found: PngInputs) -> str:
    """The run's facts in words: 'Made in 1 min 16 s on cpu (bf16), 210 iterations; final
    losses content 0.56, style 0.041 · resumed after scale 2 (a worker was lost)'."""
    facts = found.facts
    parts = []
    made = "Made"
    if facts.get("job_id") is not None:
        made += f" by {job_ref(int(facts['job_id']))}"
    if isinstance(facts.get("seconds"), (int, float)):
        made += f" in {format_duration(float(facts['seconds']))}"
    if facts.get("device"):
        made += f" on {facts['device']}" + (f" ({facts['precision']})"
                                              if facts.get("precision") else "")
    if isinstance(facts.get("iterations_run"), int) and facts["iterations_run"]:
        made += f", {plural(facts['iterations_run'], 'iteration')}"
    parts.append(made)
    losses = facts.get("losses")
    if isinstance(losses, dict) and losses:
        parts.append("final losses " + ", ".join(
            f"{term} {value:.3g}" for term, value in losses.items()
            if isinstance(value, (int, float))))
    if facts.get("resumed_from_scale"):
        parts.append(f"resumed after scale {facts['resumed_from_scale']} (a worker was lost)")
    profiles = [f"{ref.name}'s {ref.profile}" for ref in found.recorded if ref.profile]
    if profiles:
        parts.append("colour profile converted to sRGB: " + ", ".join(profiles))
    if facts.get("optimizers"):
        parts.append("optimisers per scale: " + ", ".join(map(str, facts["optimizers"])))
    return " · ".join(parts)


def same_run_note(found: PngInputs) -> str | None:
    """Said before "Queue again": the run is in the gallery already, and queueing it with
    no change computes it again."""
    if found.result_id is None:
        return None
    return (f"This run is in the gallery as {result_ref(found.result_id)}. Queueing it again "
            "without changes computes the same run once more; change a setting below to try "
            "something new.")


def queue_again(found: PngInputs, values: dict[str, Any], person: Person = LOCAL) -> str:
    """Queue the PNG's run, as `person`'s, with the widget values that changed; the message
    to show."""
    if found.missing:
        raise InputError(found.missing[0])
    content, styles = found.content, [s for s in found.styles if s is not None]
    assert content is not None and len(styles) == len(found.styles), "none is missing"
    changes = changed_values(values, found.settings)
    settings = found.settings.with_changes(**changes)
    batch = queue().create_planned_batch(
        [PlannedJob(content.id, tuple(s.id for s in styles), settings,
                    found.mask.id if found.mask else None, found.regions)], settings,
        name=f"again: {found.title}", force=not changes, person=person)
    (job,) = queue().list_jobs(batch_id=batch.id, limit=1)
    if job.status == JobStatus.DONE:
        return f"Same as an earlier run: {job_ref(job.id)} re-uses its result."
    return f"Queued {job_ref(job.id)} (batch {batch_ref(batch.id)}); follow it on the Queue page."
