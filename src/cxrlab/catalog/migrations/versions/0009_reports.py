"""radiology reports: their text (PHI, kept here only), the labels mined from them, and the keys that link them

``reports`` holds each imported report's text by section with keyed hashes of its id and of the identifier that
links it to its images; ``report_labels`` the image labels mined from them (``source = report``, a label source
beside readers and consensus); ``images.accession_key`` and ``images.study_key`` are keyed hashes of the
original Accession Number and Study Instance UID (images ingested before this revision get them from their raw
originals on the first ``cxrlab reports import``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("accession_key", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("study_key", sa.String(length=32), nullable=True))
        batch.create_index(batch.f("ix_images_accession_key"), ["accession_key"], unique=False)
        batch.create_index(batch.f("ix_images_study_key"), ["study_key"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_key", sa.String(length=32), nullable=False),
        sa.Column("match", sa.String(length=16), nullable=False),
        sa.Column("match_key", sa.String(length=32), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_key"),
    )
    op.create_index(op.f("ix_reports_match_key"), "reports", ["match_key"], unique=False)
    op.create_table(
        "report_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_pk", sa.Integer(), nullable=False),
        sa.Column("schema", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("labeled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_pk"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_pk", "label", name="uq_report_label_image_label"),
    )
    op.create_index(op.f("ix_report_labels_image_pk"), "report_labels", ["image_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_report_labels_image_pk"), table_name="report_labels")
    op.drop_table("report_labels")
    op.drop_index(op.f("ix_reports_match_key"), table_name="reports")
    op.drop_table("reports")
    with op.batch_alter_table("images") as batch:
        batch.drop_index(batch.f("ix_images_study_key"))
        batch.drop_index(batch.f("ix_images_accession_key"))
        batch.drop_column("study_key")
        batch.drop_column("accession_key")
