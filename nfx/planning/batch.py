"""Batch planning: contents × styles × swept settings, as plain records.

Pure: no database, no engine. The store turns a plan into queued jobs; the app shows a plan
(with time estimates) before anything is queued.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nfx.errors import InputError
from nfx.regions import Region, RegionMap
from nfx.settings import Settings, field


@dataclass(frozen=True)
class PlannedJob:
    content_id: int
    style_ids: tuple[int, ...]
    settings: Settings
    # regions (nfx.regions): the mask picture's id and each colour's style positions in
    # `style_ids` (1-based), or None: the style covers the whole photo
    mask_id: int | None = None
    regions: RegionMap | None = None


@dataclass(frozen=True)
class MaskPlan:
    """A photo's mask in a batch: its picture's id, and each colour's style *entry*, by its
    1-based position on the batch's style axis (an entry is one style or a mix)."""

    mask_id: int
    regions: RegionMap


Entry = tuple[tuple[int, ...], tuple[float, ...]]  # a style entry: its style ids, its weights


def masked_job(content_id: int, mask: MaskPlan, entries: Sequence[Entry], settings: Settings
               ) -> PlannedJob:
    """One job for a masked photo: the styles of the entries its regions use, in order of
    use, each region renumbered to its entry's positions among them; a mix's weights go in
    style_blend (left empty when every weight is equal)."""
    style_ids: list[int] = []
    weights: list[float] = []
    positions: dict[int, tuple[int, ...]] = {}
    for number in mask.regions.style_positions:  # in the batch's order
        if number > len(entries):
            raise InputError(f"a region names style {number}, but the batch has "
                             f"{len(entries)} style entr{'y' if len(entries) == 1 else 'ies'}")
        ids, blend = entries[number - 1]
        positions[number] = tuple(range(len(style_ids) + 1, len(style_ids) + len(ids) + 1))
        style_ids += ids
        weights += blend or (1.0,) * len(ids)
    regions = [Region(r.colour, tuple(p for n in r.styles for p in positions[n]))
               for r in mask.regions.regions]
    blend = tuple(weights) if len(set(weights)) > 1 else ()
    return PlannedJob(content_id, tuple(style_ids), settings.with_changes(style_blend=blend),
                      mask.mask_id, RegionMap.of(regions))

def sweep_variants(base: Settings, sweep: Mapping[str, Sequence[Any]] | None) -> list[Settings]:
    """Every combination of the swept values applied to `base` (validated)."""
    sweep = {name: list(values) for name, values in (sweep or {}).items()}
    for name, values in sweep.items():
        if not field(name).sweepable:
            raise InputError(f"{name} cannot be swept; set it once instead")
        if not values:
            raise InputError(f"sweep {name} has no values")
    names = list(sweep)
    return [base.with_changes(**dict(zip(names, combo)))
            for combo in itertools.product(*(sweep[n] for n in names))]


def plan_batch(content_ids: Sequence[int], style_ids: Sequence[int], base: Settings,
               sweep: Mapping[str, Sequence[Any]] | None = None,
               masks: Mapping[int, MaskPlan] | None = None) -> list[PlannedJob]:
    """contents × styles × sweep combinations; each job has one content and one style, but a
    masked content (`masks`, by content id), whose regions share its styles out: one job
    per sweep combination, its regions' style numbers naming the batch's styles (a mix
    `1+2` weighted by style_blend)."""
    if not content_ids:
        raise InputError("a batch needs at least one content image")
    if not style_ids:
        raise InputError("a batch needs at least one style image")
    variants = sweep_variants(base, sweep)
    masks = masks or {}
    blend = base.style_blend
    if blend and len(blend) != len(style_ids):
        blend = ()  # a plain batch's styles run one at a time: their weights mean nothing
    entries: list[Entry] = [((s,), ((blend[i],) if blend else ())) for i, s in
                            enumerate(style_ids)]
    jobs = []
    for c in content_ids:
        if c in masks:
            jobs += [masked_job(c, masks[c], entries, v) for v in variants]
        else:
            jobs += [PlannedJob(c, (s,), v) for s in style_ids for v in variants]
    return jobs


def input_digest(content_sha: str, style_shas: Iterable[str], settings: Settings,
                 regions: Sequence[object] | None = None) -> str:
    """Identity of a run: the same pictures and settings give the same picture out. A run
    with regions adds them (nfx.regions.identity: the mask's sha256 and every
    colour's assignment) and the settings only masks read; a run without keeps the identity
    it always had."""
    parts: list[object] = [content_sha, list(style_shas), settings.digest(bool(regions))]
    if regions:
        parts.append(list(regions))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
