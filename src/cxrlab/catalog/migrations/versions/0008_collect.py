"""collecting from a PACS or DICOMweb: query results, per-study progress, and each image's origin

``collect_studies`` and ``collect_instances`` keep what a query found and how far its retrieval got, so a rerun
after ``kill -9`` retrieves only what is missing; ``images.origin`` says where each image came from (no PHI).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("origin", sa.Text(), nullable=True))
    op.create_table(
        "collect_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "study_uid", name="uq_collect_study_source_uid"),
    )
    op.create_index(op.f("ix_collect_studies_source"), "collect_studies", ["source"], unique=False)
    op.create_table(
        "collect_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["collect_studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "sop_instance_uid", name="uq_collect_instance_study_sop"),
    )
    op.create_index(op.f("ix_collect_instances_study_id"), "collect_instances", ["study_id"], unique=False)
    op.create_index("ix_collect_instances_sop", "collect_instances", ["sop_instance_uid"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_collect_instances_sop", table_name="collect_instances")
    op.drop_index(op.f("ix_collect_instances_study_id"), table_name="collect_instances")
    op.drop_table("collect_instances")
    op.drop_index(op.f("ix_collect_studies_source"), table_name="collect_studies")
    op.drop_table("collect_studies")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("origin")
