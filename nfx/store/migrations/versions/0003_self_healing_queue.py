"""Self-healing queue: resume checkpoints, worker exit causes and speed, one copy of settings,
ids that are never reused.

- jobs: the image after the last finished scale (checkpoint_*), so a requeued job resumes;
- results: resumed_from_scale and iterations_run; settings_json dropped (a result's settings
  are its job's: stored once);
- workers: exit_cause, and the engine's measured speed (work_*) for time estimates;
- SQLite: batches, jobs and results rebuilt with AUTOINCREMENT, so a deleted id never comes
  back (PostgreSQL's sequences never reuse one).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def _table(name: str):
    """Alter a table; on SQLite rebuild it with AUTOINCREMENT (foreign keys are off while
    migrating, see nfx.store.db.migrate)."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table(name, recreate="always", table_kwargs=NEVER_REUSE_IDS)
    return op.batch_alter_table(name)


def upgrade() -> None:
    with _table("batches"):
        pass
    with _table("jobs") as jobs:
        jobs.add_column(sa.Column("checkpoint_scales", sa.Integer(), nullable=False,
                                  server_default="0"))
        jobs.add_column(sa.Column("checkpoint_sha256", sa.String(64)))
        jobs.add_column(sa.Column("checkpoint_history", sa.JSON()))
    with _table("results") as results:
        results.add_column(sa.Column("resumed_from_scale", sa.Integer(), nullable=False,
                                     server_default="0"))
        results.add_column(sa.Column("iterations_run", sa.Integer()))
        results.drop_column("settings_json")
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("exit_cause", sa.String(255)))
        for name in ("work_per_megapixel_iteration", "work_per_iteration", "work_per_scale"):
            workers.add_column(sa.Column(name, sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        for name in ("work_per_scale", "work_per_iteration", "work_per_megapixel_iteration",
                     "exit_cause"):
            workers.drop_column(name)
    with op.batch_alter_table("results") as results:
        results.add_column(sa.Column("settings_json", sa.Text(), nullable=False,
                                     server_default="{}"))
        results.drop_column("iterations_run")
        results.drop_column("resumed_from_scale")
    with op.batch_alter_table("jobs") as jobs:
        for name in ("checkpoint_history", "checkpoint_sha256", "checkpoint_scales"):
            jobs.drop_column(name)
