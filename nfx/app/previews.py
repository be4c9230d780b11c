"""Feed-forward previews of every content × style cell of the New batch form (issue #21).

Before a user queues minutes of optimisation per cell, the form shows each pairing as the
feed-forward network renders it (nfx.feedforward: onnxruntime, never torch, so the app's
process may run it): a few hundred milliseconds a cell. Cells are cached by the inputs'
hashes and the settings the network reads, so changing a setting it ignores redraws nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nfx.app.context import blob
from nfx.app.new_batch import StyleEntry, queue_batch
from nfx.feedforward import stylize
from nfx.images import load_image, thumbnail_bytes
from nfx.people import LOCAL, Person
from nfx.queue.records import BatchRecord
from nfx.settings import Settings

CELL_EDGE = 256  # px: a cell's long edge (a grid column is ~190 px wide); the cost grows
# with the pixels
MAX_ROWS, MAX_COLUMNS = 8, 6  # a larger grid shows its first cells only
PREVIEW_THREADS = 2  # cells rendered at once (more gained nothing on 2 cores)


@dataclass(frozen=True)
class Cell:
    """One content × style entry of the grid."""

    content_id: int
    content_sha: str
    entry: StyleEntry
    style_shas: tuple[str, ...]


@lru_cache(maxsize=16)  # a form's worth of full-size pictures, not a library's
def _picture(sha256: str) -> Any:  # a PIL image; decoded once per process
    return load_image(blob(sha256))


@lru_cache(maxsize=1024)
def preview_jpeg(content_sha: str, style_shas: tuple[str, ...], blend: tuple[float, ...],
                 style_scale: float, preserve_color: str, strength: float) -> bytes:
    """One cell's preview as a JPEG; InputError (one line) if the models are missing or
    changed."""
    image = stylize(_picture(content_sha), [_picture(sha) for sha in style_shas],
                    size=CELL_EDGE, style_scale=style_scale, blend=blend,
                    preserve_color=preserve_color, strength=strength)
    return thumbnail_bytes(image, CELL_EDGE)


def cell_preview(cell: Cell, settings: Settings) -> bytes:
    """The cell as the feed-forward method renders it with the form's style settings."""
    return preview_jpeg(cell.content_sha, cell.style_shas, cell.entry.blend,
                        settings.style_scale, settings.preserve_color, settings.strength)


def cell_previews(cells: Sequence[Cell], settings: Settings) -> list[bytes]:
    """Every cell's preview, rendered two at a time: onnxruntime, the resizes and the JPEG
    encoder release the GIL, so a 4 × 4 grid takes about 0.7 of the time one after another
    (0.62 s against 0.85 s on this 2-core CPU). InputError as cell_preview."""
    workers = min(PREVIEW_THREADS, len(cells)) or 1
    with ThreadPoolExecutor(workers, thread_name_prefix="nfx-preview") as pool:
        return list(pool.map(lambda cell: cell_preview(cell, settings), cells))


def queue_cell(cell: Cell, base: Settings, sweep: dict[str, list[Any]],
               submission: str | None = None, person: Person = LOCAL) -> BatchRecord:
    """Queue the full optimisation of one cell (for every swept value but the method's),
    named after it."""
    optimise = base.with_changes(method="gatys")
    sweep = {name: values for name, values in sweep.items() if name != "method"}
    return queue_batch([cell.content_id], [cell.entry], optimise, sweep, submission=submission,
                       person=person)


def grid_cells(contents: Sequence[tuple[int, str]], entries: Sequence[StyleEntry],
               style_shas: dict[int, str]) -> list[list[Cell]]:
    """Rows of cells: one row per (content id, sha256), one cell per style entry."""
    return [[Cell(content_id, sha, entry, tuple(style_shas[i] for i in entry.style_ids))
             for entry in entries] for content_id, sha in contents]
