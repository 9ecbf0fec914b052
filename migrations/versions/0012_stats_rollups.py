"""Statistics rollups: counters per period and group, participants counted once per period

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PEOPLE = (("gender", 32), ("age_band", 32), ("language", 16), ("channel", 8), ("community", 64))


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "stats_counts",
        sa.Column("metric", sa.String(24), nullable=False),
        sa.Column("grain", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        *(sa.Column(name, sa.String(length), nullable=False) for name, length in PEOPLE),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "metric",
            "grain",
            "period_start",
            "subject",
            "detail",
            "service",
            *(name for name, _ in PEOPLE),
            name=op.f("pk_stats_counts"),
        ),
    )
    op.create_table(
        "stats_members",
        sa.Column("grain", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("is_new", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("came_back", sa.Boolean(), server_default=sa.false(), nullable=False),
        *(sa.Column(name, sa.String(length), nullable=False) for name, length in PEOPLE),
        sa.PrimaryKeyConstraint(
            "grain", "period_start", "caller_id", "service", name=op.f("pk_stats_members")
        ),
    )
    op.create_index(op.f("ix_stats_members_owner"), "stats_members", ["owner"])
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stats", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("stats")
    op.drop_index(op.f("ix_stats_members_owner"), table_name="stats_members")
    op.drop_table("stats_members")
    op.drop_table("stats_counts")
