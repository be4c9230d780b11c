"""A batch as a ZIP: one PNG per result (settings embedded by the worker) plus settings.csv.

File names come from `nfx.labels.file_stem`, so they carry the settings that vary among the
exported results, the same rule the app's labels follow."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence

import pandas as pd

from nfx.labels import file_stem, result_ref, varying_fields
from nfx.settings import settings_text
from nfx.store.records import ResultRecord


def file_name(result: ResultRecord, varying: Sequence[str] = ()) -> str:
    return file_stem(result_ref(result.id), result.content.name, [s.name for s in result.styles],
                     result.settings, varying) + ".png"


def loss_columns(losses: dict[str, float]) -> dict[str, float]:
    return {f"loss_{term}": value for term, value in sorted(losses.items())}


def settings_table(results: Sequence[ResultRecord], files: Sequence[str]) -> pd.DataFrame:
    """One row per result: file, inputs, every setting, final losses, time."""
    rows = []
    for result, name in zip(results, files):
        row = {"file": name, "result_id": result.id, "job_id": result.job_id,
               "content": result.content.name,
               "styles": ";".join(s.name for s in result.styles)}
        row.update(settings_text(result.settings))
        row.update(loss_columns(result.losses))
        row.update(seconds=result.seconds, device=result.device, precision=result.precision)
        rows.append(row)
    return pd.DataFrame(rows)


def batch_zip(results: Sequence[ResultRecord], png: Callable[[ResultRecord], bytes]) -> bytes:
    varying = varying_fields(r.settings for r in results)
    files = [file_name(r, varying) for r in results]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed
        for result, name in zip(results, files):
            archive.writestr(name, png(result))
        archive.writestr("settings.csv", settings_table(results, files).to_csv(index=False))
    return buffer.getvalue()
