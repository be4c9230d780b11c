"""Keep jobs.s_<field> columns in step with `INDEXED_FIELDS`.

Migrations are history and must not change, but the set of indexed settings follows the
settings object. After every upgrade, any indexed setting without a column gets one (with its
index), filled from the JSON that every job keeps, so old galleries gain new filters.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Table, bindparam, inspect, select, update

from nfx.settings import INDEXED_FIELDS, Settings
from nfx.store.models import Job, setting_column_name, setting_column_type


def setting_values(settings: Settings) -> dict[str, Any]:
    """The indexed columns' values for a job with these settings."""
    return {setting_column_name(f): getattr(settings, f) for f in INDEXED_FIELDS}


def sync_setting_columns(connection: Connection) -> list[str]:
    """Add and backfill the missing columns; returns the settings that were added."""
    have = {c["name"] for c in inspect(connection).get_columns("jobs")}
    missing = [f for f in INDEXED_FIELDS if setting_column_name(f) not in have]
    if not missing:
        return []
    ops = Operations(MigrationContext.configure(connection))
    for field in missing:
        name = setting_column_name(field)
        ops.add_column("jobs", Column(name, setting_column_type(field), nullable=True))
        ops.create_index(f"ix_jobs_{name}", "jobs", [name])
    rows = connection.execute(select(Job.__table__.c.id, Job.__table__.c.settings_json)).all()
    if rows:
        table = Job.__table__
        assert isinstance(table, Table), "a declarative model's __table__ is a Table"
        statement = (update(table).where(table.c.id == bindparam("job_id"))
                     .values({setting_column_name(f): bindparam(f"v_{f}") for f in missing}))
        params = []
        for job_id, text in rows:
            settings = Settings.from_json(text)
            params.append({"job_id": job_id,
                           **{f"v_{f}": getattr(settings, f) for f in missing}})
        connection.execute(statement, params)
    return missing
