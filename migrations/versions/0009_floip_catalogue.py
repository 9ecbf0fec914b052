"""Published Flow Results packages and their questions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "floip_packages",
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("survey", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "survey", name=op.f("pk_floip_packages")),
    )
    op.create_table(
        "floip_questions",
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("survey", sa.String(length=64), nullable=False),
        sa.Column("question_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id", "survey"],
            ["floip_packages.flow_id", "floip_packages.survey"],
            name="fk_floip_questions_flow_id_floip_packages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flow_id", "survey", "question_id", name=op.f("pk_floip_questions")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("floip_questions")
    op.drop_table("floip_packages")
