"""The ground truth of one phantom: what was planted where, as a JSON-ready record (``truth.json``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["PhantomTruth"]


@dataclass
class PhantomTruth:
    """JSON-serialisable ground truth for one phantom file.

    Attributes
    ----------
    file : str
        File name relative to the output directory (POSIX separators).
    sop_instance_uid : str
        SOP Instance UID of the file.
    phi : list of str
        Every identifying string planted in the header (names as written in the PN value, IDs, dates as
        ``YYYYMMDD``, institution, address, station, serial numbers, free-text comments...). Each is at least
        6 characters long and occurs in the file bytes in the file's character set encoding, except that in
        ISO 2022 IR 87 files pydicom escapes each PN component separately, so a whole multi-group Japanese
        PN is only found in the decoded values (its alphabetic group is listed too and is greppable).
        Burned-in text lines are drawn from the same identity but are not listed here.
    text_boxes : list of tuple of int
        Burned-in text line boxes ``(x_min, y_min, x_max, y_max)`` in pixel coordinates, PIL-style: the max
        coordinates are exclusive, so ``pixels[y_min:y_max, x_min:x_max]`` is exactly the tight box.
    outlier : str or None
        ``None`` or one of :data:`OUTLIER_CLASSES`.
    sex : str
        PatientSex as written (``"M"``, ``"F"``, ``"O"`` or ``""``).
    age_years : float
        Exact age at the study date in years (PatientAge holds the DICOM AS rendering of it).
    rows, columns : int
        Image size.
    photometric : str
        ``"MONOCHROME1"`` or ``"MONOCHROME2"``.
    modality : str
        ``"CR"`` or ``"DX"``.
    patient_id : str
        PatientID as planted; files of one patient share it.
    header_mislabelled : bool
        The outlier's header was made to look like an adult frontal chest film's
        (:func:`~cxrlab.dicom.phantom.outliers.mislabel_header`): only its pixels tell.
    findings : list of dict
        Planted findings (:mod:`cxrlab.dicom.phantom.findings`): ``{"label", "box"}`` with the VinDr-CXR label
        name and ``[x_min, y_min, x_max, y_max]`` in pixels (float, max exclusive). Empty without findings.
    """

    file: str
    sop_instance_uid: str
    phi: list[str]
    text_boxes: list[tuple[int, int, int, int]]
    outlier: str | None
    sex: str
    age_years: float
    rows: int
    columns: int
    photometric: str
    modality: str
    patient_id: str
    header_mislabelled: bool = False
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists).

        Returns
        -------
        dict
            The dataclass fields.
        """
        d = dataclasses.asdict(self)
        d["text_boxes"] = [list(b) for b in self.text_boxes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhantomTruth:
        """Build a truth record from :meth:`to_dict` output (or one entry of ``truth.json``).

        Parameters
        ----------
        d : dict
            Field values.

        Returns
        -------
        PhantomTruth
            The record, with text boxes as tuples.
        """
        kw = dict(d)
        kw["text_boxes"] = [tuple(int(v) for v in b) for b in d.get("text_boxes", [])]
        return cls(**kw)
