"""The app's third pass: idempotent queueing, re-runs that know their source, worker states,
and the gallery sorted by when a result was made.

- batches.submission: the form submission that made a batch (unique), so a double click or
  a resent form queues it once;
- jobs.source_result_id: the result a re-run started from, so its label says what changed;
- jobs (status, finished_at) index: the gallery's "Date" is when a result was made;
- workers.state: starting, calibrating, idle or working, as the worker itself reports it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _batches():
    """Alter batches; on SQLite the rebuild keeps AUTOINCREMENT (ids are never reused)."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table("batches", recreate="always",
                                    table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table("batches")


def upgrade() -> None:
    with _batches() as batches:
        batches.add_column(sa.Column("submission", sa.String(64)))
        batches.create_unique_constraint("uq_batches_submission", ["submission"])
    op.add_column("jobs", sa.Column("source_result_id", sa.Integer()))
    op.create_index("ix_jobs_status_finished", "jobs", ["status", "finished_at"])
    op.add_column("workers", sa.Column("state", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        workers.drop_column("state")
    op.drop_index("ix_jobs_status_finished", "jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("source_result_id")
    with _batches() as batches:
        batches.drop_constraint("uq_batches_submission", type_="unique")
        batches.drop_column("submission")
