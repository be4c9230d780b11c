"""The app's limits on a shared server: how big an upload may be, how many queued jobs one
person may have. `nfx app --max-upload-mb N --max-queued-jobs N` sets them; they reach the
app's process in its environment (as the database URL does), read here by both sides so the
defaults live once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nfx.errors import InputError

MAX_UPLOAD_MB_VARIABLE = "NFX_MAX_UPLOAD_MB"
MAX_QUEUED_JOBS_VARIABLE = "NFX_MAX_QUEUED_JOBS"
DEFAULT_MAX_UPLOAD_MB = 50
DEFAULT_MAX_QUEUED_JOBS = 200


@dataclass(frozen=True)
class AppLimits:
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB  # a file, as Streamlit's server.maxUploadSize
    max_queued_jobs: int = DEFAULT_MAX_QUEUED_JOBS  # a person; 0: no cap

    def check_upload(self, name: str, data: bytes) -> None:
        """InputError, in one line, for an upload over the cap: refused before it is
        decoded (in a browser Streamlit's server.maxUploadSize stops it first)."""
        if len(data) > self.max_upload_mb * 2 ** 20:
            raise InputError(f"{name}: {len(data) / 2 ** 20:.1f} MB, over the "
                             f"{self.max_upload_mb} MB a file this app takes")

    def environment(self) -> dict[str, str]:
        return {MAX_UPLOAD_MB_VARIABLE: str(self.max_upload_mb),
                MAX_QUEUED_JOBS_VARIABLE: str(self.max_queued_jobs)}


def _whole(text: str, what: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{what} must be a whole number, not {text!r}") from None
    if value < minimum:
        raise InputError(f"{what} must be at least {minimum}, not {value}")
    return value


def checked_limits(max_upload_mb: int, max_queued_jobs: int) -> AppLimits:
    """Limits from the command line; InputError (one line) for a value out of range."""
    return AppLimits(_whole(str(max_upload_mb), "--max-upload-mb", 1),
                     _whole(str(max_queued_jobs), "--max-queued-jobs", 0))


def limits_from_environment(env: Mapping[str, str] | None = None) -> AppLimits:
    """What `nfx app` chose; the defaults for a process it did not start."""
    env = os.environ if env is None else env
    return AppLimits(
        _whole(env.get(MAX_UPLOAD_MB_VARIABLE) or str(DEFAULT_MAX_UPLOAD_MB),
               MAX_UPLOAD_MB_VARIABLE, 1),
        _whole(env.get(MAX_QUEUED_JOBS_VARIABLE) or str(DEFAULT_MAX_QUEUED_JOBS),
               MAX_QUEUED_JOBS_VARIABLE, 0))
