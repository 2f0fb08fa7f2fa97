"""leaderboard: benchmarks, their public/private test images, submissions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "benchmarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("iou", sa.Float(), nullable=True),
        sa.Column("classes", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("public_fraction", sa.Float(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("open", "closed", name="benchmarkstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("gt_path", sa.Text(), nullable=True),
        sa.Column("gt_sha256", sa.String(length=64), nullable=True),
        sa.Column("gt_uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "benchmark_images",
        sa.Column("benchmark_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.String(length=128), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmarks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("benchmark_id", "image_id"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued", "scoring", "scored", "invalid", "failed",
                name="submissionstate", native_enum=False, length=16,
            ),
            nullable=False,
        ),
        sa.Column("messages", sa.JSON(), nullable=True),
        sa.Column("public_score", sa.Float(), nullable=True),
        sa.Column("private_score", sa.Float(), nullable=True),
        sa.Column("per_class", sa.JSON(), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmarks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_submissions_benchmark_user", "submissions", ["benchmark_id", "user_id", "created_at"], unique=False
    )
    op.create_index("ix_submissions_state", "submissions", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_submissions_state", table_name="submissions")
    op.drop_index("ix_submissions_benchmark_user", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("benchmark_images")
    op.drop_table("benchmarks")
