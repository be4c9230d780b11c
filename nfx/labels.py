"""How NFX names jobs, results and runs, in one place for every page, export and command.

A job is "J17", a result "R12" and a batch "B3" everywhere, so one number never means two
things. A label shows the inputs and the settings that vary among its neighbours (its batch,
or what is shown with it), so two jobs of a sweep never read alike, and "N scales" counts the
scales that will run, not the ones asked for. Plain text only: the store's export and the app
both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from nfx.images import size_for_long_edge
from nfx.planning.pyramid import scale_sizes
from nfx.regions import RegionMap
from nfx.settings import FIELDS, Settings, settings_text

if TYPE_CHECKING:  # only for annotations: importing the queue package loads the store
    from nfx.queue.records import BatchRecord


def job_ref(job_id: int) -> str:
    return f"J{job_id}"


def result_ref(result_id: int) -> str:
    return f"R{result_id}"


def batch_ref(batch_id: int) -> str:
    return f"B{batch_id}"


def batch_label(batch: BatchRecord) -> str:
    """'B3 tiny (4 jobs)' for a BatchRecord."""
    return f"{batch_ref(batch.id)} {batch.name} ({plural(batch.job_count, 'job')})"


def stem(name: str) -> str:
    """'tubingen.jpg' -> 'tubingen'."""
    return name.rsplit(".", 1)[0]


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


def format_span(low: float, high: float) -> str:
    """A range of durations in few characters, for a narrow box: '10–20 s', '4–7 min',
    '40 s – 2 min', '1.2–2.5 h'."""
    def unit(seconds: float) -> str:
        return "s" if seconds < 60 else "min" if seconds < 3600 else "h"

    def number(seconds: float, of: str) -> str:
        value = seconds / {"s": 1, "min": 60, "h": 3600}[of]
        return f"{value:.1f}" if of == "h" else f"{max(round(value), 1)}"

    if high < 1:
        return "under 1 s"
    low_unit, high_unit = unit(low), unit(high)
    if low_unit == high_unit:
        first, last = number(low, low_unit), number(high, high_unit)
        return f"about {last} {high_unit}" if first == last else \
            f"{first}–{last} {high_unit}"
    return f"{number(low, low_unit)} {low_unit} – {number(high, high_unit)} {high_unit}"


def field_label(name: str) -> str:
    """'style_weight' -> 'Style weight'; the grid's 'content'/'style' axes -> 'Content'."""
    return FIELDS[name].label if name in FIELDS else name.capitalize()


def varying_fields(settings: Iterable[Settings]) -> list[str]:
    """The settings whose values differ among these: what tells them apart. style_blend is
    left out: a mix shows its weights with its style names."""
    values: dict[str, set[str]] = {}
    for s in settings:
        for name in FIELDS:  # what a method ignores tells nothing apart
            values.setdefault(name, set()).add(repr(getattr(s, name)) if s.applies(name)
                                               else "")
    return [name for name, seen in values.items() if len(seen) > 1 and name != "style_blend"]


def settings_summary(settings: Settings, names: Sequence[str]) -> str:
    """'Style weight 100 · Steps 20': those of `names` that the run's method reads."""
    names = [name for name in names if settings.applies(name)]
    return " · ".join(f"{label} {value}"
                      for label, value in settings_text(settings, names, labels=True).items())


def styles_text(style_names: Sequence[str], blend: Sequence[float] = ()) -> str:
    """'the_scream', or a mix: 'the_scream 0.7 + starry_night 0.3'."""
    if len(style_names) > 1 and blend:
        return " + ".join(f"{stem(n)} {w:g}" for n, w in zip(style_names, blend))
    return " + ".join(stem(n) for n in style_names)


def regions_text(regions: RegionMap, style_names: Sequence[str]) -> str:
    """'#ff0000 starry_night · #0000ff the_scream · #000000 photo kept': what each region of
    a mask gets (style names by the job's style positions)."""
    parts = []
    for region in regions.regions:
        what = (styles_text([style_names[i - 1] for i in region.styles])
                if region.styles else "photo kept")
        parts.append(f"{region.colour} {what}")
    return " · ".join(parts)


def region_styles_text(regions: RegionMap, style_names: Sequence[str]) -> str:
    """'starry_night | the_scream | photo kept (regions)': the short form, for labels."""
    named = [styles_text([style_names[i - 1] for i in r.styles]) for r in regions.regions
             if r.styles]
    kept = ["photo kept"] if any(r.keeps_photo for r in regions.regions) else []
    return " | ".join(named + kept) + " (regions)"


def inputs_text(content_name: str, style_names: Sequence[str],
                blend: Sequence[float] = ()) -> str:
    """'chelsea × the_scream': names in full, never cut."""
    return f"{stem(content_name)} × {styles_text(style_names, blend)}"


def run_text(settings: Settings, content_size: tuple[int, int] | None = None) -> str:
    """'96 px, 2 scales × 20 steps': the scales that will run for this content (coarse scales
    below the engine's minimum are dropped, so asking for 3 may run 2); '512 px,
    feed-forward'."""
    if settings.method == "feedforward":
        return f"{settings.size} px, feed-forward"
    scales = settings.scales
    if content_size:
        scales = len(scale_sizes(size_for_long_edge(content_size, settings.size), scales))
    return f"{settings.size} px, {plural(scales, 'scale')} × {settings.steps} steps"


def changes_text(settings: Settings, source: Settings) -> str:
    """'Style weight 10 → 30 · Steps 70 → 100': what a re-run changed from its source."""
    return " · ".join(f"{FIELDS[name].label} {FIELDS[name].format(before)} → "
                      f"{FIELDS[name].format(after)}"
                      for name, (after, before) in settings.differences(source).items())


def entry_label(ref: str, content_name: str, style_names: Sequence[str], settings: Settings,
                varying: Sequence[str], source: Settings | None = None,
                regions: RegionMap | None = None) -> str:
    """'J17 · chelsea × the_scream · Style weight 1e+04': the one label of a job or result,
    with the values that vary within its batch (or among what is shown beside it); for a
    re-run, what it changed from the result it started from ('Style weight 10 → 30'); a run
    with regions names each region's style ('chelsea × starry_night | the_scream | photo
    kept (regions)')."""
    inputs = (inputs_text(content_name, style_names, settings.style_blend) if regions is None
              else f"{stem(content_name)} × {region_styles_text(regions, style_names)}")
    parts = [ref, inputs]
    if source is not None:
        shown = changes_text(settings, source) or "run again"
    else:
        shown = settings_summary(settings, [n for n in varying if n in FIELDS])
    return " · ".join(parts + ([shown] if shown else []))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-")[:40] or "x"


def file_stem(ref: str, content_name: str, style_names: Sequence[str], settings: Settings,
              varying: Sequence[str]) -> str:
    """'R12_chelsea_the-scream_style_weight-1e+04': an export file name that starts with the
    result's label and carries the values that vary within the batch."""
    styles = "+".join(_slug(stem(n)) for n in style_names)
    parts = [ref, _slug(stem(content_name)), styles]
    parts += [f"{name}-{_slug(FIELDS[name].text_of(settings))}" for name in varying
              if name in FIELDS and settings.applies(name)]
    return "_".join(parts)
