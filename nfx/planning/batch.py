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
from nfx.settings import Settings, field


@dataclass(frozen=True)
class PlannedJob:
    content_id: int
    style_ids: tuple[int, ...]
    settings: Settings


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
               sweep: Mapping[str, Sequence[Any]] | None = None) -> list[PlannedJob]:
    """contents × styles × sweep combinations; each job has one content and one style."""
    if not content_ids:
        raise InputError("a batch needs at least one content image")
    if not style_ids:
        raise InputError("a batch needs at least one style image")
    variants = sweep_variants(base, sweep)
    return [PlannedJob(c, (s,), v) for c in content_ids for s in style_ids for v in variants]


def input_digest(content_sha: str, style_shas: Iterable[str], settings: Settings) -> str:
    """Identity of a run: the same pictures and settings give the same picture out."""
    key = json.dumps([content_sha, list(style_shas), settings.digest()])
    return hashlib.sha256(key.encode()).hexdigest()
