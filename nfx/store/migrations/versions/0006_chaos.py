"""A queue that survives chaos: memory evidence with every heartbeat, a record of each worker
death and its verdict, and the reason a worker has paused.

- jobs.rss_bytes, memory_limit_bytes, available_bytes: the running attempt's last reading
  of its worker's memory, its limit (cgroup or RAM) and the memory left on the machine;
- jobs.deaths: one entry per worker death while holding the job (the evidence, the verdict);
- jobs.blamed_deaths: the deaths whose evidence pointed at the job (the poison-job count);
- workers.problem: why a live worker has paused (a full disk, a read-only database).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("rss_bytes", sa.BigInteger()))
    op.add_column("jobs", sa.Column("memory_limit_bytes", sa.BigInteger()))
    op.add_column("jobs", sa.Column("available_bytes", sa.BigInteger()))
    op.add_column("jobs", sa.Column("deaths", sa.JSON()))
    op.add_column("jobs", sa.Column("blamed_deaths", sa.Integer(), nullable=False,
                                    server_default="0"))
    op.add_column("workers", sa.Column("problem", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        workers.drop_column("problem")
    with op.batch_alter_table("jobs") as jobs:
        for name in ("blamed_deaths", "deaths", "available_bytes", "memory_limit_bytes",
                     "rss_bytes"):
            jobs.drop_column(name)
