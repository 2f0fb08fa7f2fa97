"""SQLAlchemy 2 models of the catalog: one row per image, its state, and every human or stage decision.

The catalog keeps only non-identifying metadata (DESIGN.md, "Workspace"): the original SOP Instance UID is
kept to recognise duplicates and to build the private mapping to ``image_id``; it is never exported.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "REVIEW_METHOD",
    "Base",
    "ConsensusBox",
    "ConsensusLabel",
    "Event",
    "Image",
    "ImageState",
    "QuarantineItem",
    "Reading",
    "ReadingBox",
    "ReadingLabel",
    "Redaction",
    "UidMap",
]


#: ``method`` of ``consensus_labels`` / ``consensus_boxes`` rows decided by people (the labeling platform's
#: review, or an imported release's consensus): automatic stages never overwrite them.
REVIEW_METHOD = "review"


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


class ImageState(enum.StrEnum):
    """Catalog image states (DESIGN.md, "Stage contract")."""

    INGESTED = "ingested"
    DEIDENTIFIED = "deidentified"
    FLAGGED_TEXT = "flagged_text"
    FILTERED_OUT = "filtered_out"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    LABELED = "labeled"
    REVIEWED = "reviewed"
    RELEASED = "released"


class Base(DeclarativeBase):
    """Declarative base of every catalog table."""


class Image(Base):
    """One ingested DICOM instance and its non-identifying metadata."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    image_id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_path: Mapped[str] = mapped_column(Text)
    deid_path: Mapped[str | None] = mapped_column(Text)
    state: Mapped[ImageState] = mapped_column(
        Enum(ImageState, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=ImageState.INGESTED,
        index=True,
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    split: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str | None] = mapped_column(String(1))
    age_years: Mapped[float | None] = mapped_column(Float)
    study_year: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    pixel_spacing_row: Mapped[float | None] = mapped_column(Float)
    pixel_spacing_col: Mapped[float | None] = mapped_column(Float)
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    view_position: Mapped[str | None] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    photometric: Mapped[str | None] = mapped_column(String(16))
    transfer_syntax: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(Integer)
    deid_file_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    readings: Mapped[list[Reading]] = relationship(back_populates="image", cascade="all, delete-orphan")


class Event(Base):
    """Audit row: what a stage or a person did to an image, and when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(64), default="system")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuarantineItem(Base):
    """An input that failed a stage; the reason never contains PHI."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("sha256", "stage", name="uq_quarantine_sha_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reading(Base):
    """One reader's complete read of one image (image-level labels plus boxes)."""

    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("image_pk", "rad_id", name="uq_reading_image_reader"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    rad_id: Mapped[str] = mapped_column(String(32))
    schema: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    image: Mapped[Image] = relationship(back_populates="readings")
    labels: Mapped[list[ReadingLabel]] = relationship(cascade="all, delete-orphan")
    boxes: Mapped[list[ReadingBox]] = relationship(cascade="all, delete-orphan")


class ReadingLabel(Base):
    """A positive image-level label in a reading (absent label = 0)."""

    __tablename__ = "reading_labels"
    __table_args__ = (UniqueConstraint("reading_id", "label", name="uq_reading_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128))


class ReadingBox(Base):
    """A bounding box for a local label, in pixel coordinates of the original image."""

    __tablename__ = "reading_boxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(128))
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)


class ConsensusLabel(Base):
    """The aggregated image-level label (majority vote of readers, or a review decision)."""

    __tablename__ = "consensus_labels"
    __table_args__ = (
        UniqueConstraint("image_pk", "label", name="uq_consensus_image_label"),
        Index("ix_consensus_label", "label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128))
    positive: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer)
    readers: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32), default="majority")


class ConsensusBox(Base):
    """An aggregated box of a local finding (box fusion of readers' boxes, or a reviewer's final box).

    These are the rows of the test set's ``annotations_test.csv`` (empty ``rad_id``: consensus), VinDr-CXR data
    descriptor, "Data Records".
    """

    __tablename__ = "consensus_boxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(128))
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    votes: Mapped[int] = mapped_column(Integer, default=1)
    method: Mapped[str] = mapped_column(String(32), default="wbf")
    author: Mapped[str] = mapped_column(String(64), default="system")


class UidMap(Base):
    """Original identifier -> de-identified identifier (kind ``image_id`` or ``uid``).

    Stays in the workspace (or beside the key file for ``cxrlab deid folder``); never part of a release. Exported
    only by ``cxrlab deid export-mapping`` for the hospital's own records.
    """

    __tablename__ = "uid_map"

    original: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    new: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Redaction(Base):
    """Burned-in text boxes redacted in a de-identified image (stored pixel coordinates, margin included)."""

    __tablename__ = "redactions"

    image_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    boxes: Mapped[list] = mapped_column(JSON)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    reencoded: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
