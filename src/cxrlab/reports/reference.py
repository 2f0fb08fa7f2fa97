"""Reference labels of the OpenI reports: their manual MeSH indexing mapped to the NIH ChestX-ray14 labels.

The Indiana University chest X-ray collection (Demner-Fushman et al., "Preparing a collection of radiology
examinations for distribution and retrieval", JAMIA 2016) was indexed by hand with MeSH terms (and a few
collection terms such as "Opacity" or "Airspace Disease"); each ``<major>`` element of the XML holds one finding as
``Heading/qualifier/qualifier...`` ("Pleural Effusion/left/small"). The NIH ChestX-ray14 authors measured their
labeler against this indexing (Wang et al., CVPR 2017, section 3.2 and Table 1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

from cxrlab.reports.exceptions import ReportError, ReportFileError
from cxrlab.reports.readers import _natural_key

__all__ = ["OPENI_NIH14", "mesh_to_nih14", "read_openi_reference"]

#: NIH label -> the MeSH headings that make it positive. A label is positive when one of the report's ``<major>``
#: terms starts with one of its headings (compared on the heading: the text before the first "/", ignoring
#: case). Pleural_Thickening needs the heading "Thickening" with "pleura" in the term ("Thickening/pleura/apex");
#: "Thickening/lung/.../bronchi" is no pleural thickening. Other headings, e.g. "Opacity", "Airspace Disease",
#: "Calcified Granuloma", "Pulmonary Congestion", "Subcutaneous Emphysema" or "Hydropneumothorax", map to no label.
OPENI_NIH14: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("Pulmonary Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Effusion": ("Pleural Effusion",),
    "Infiltration": ("Infiltrate",),
    "Mass": ("Mass",),
    "Nodule": ("Nodule",),
    "Pneumonia": ("Pneumonia",),
    "Pneumothorax": ("Pneumothorax",),
    "Consolidation": ("Consolidation",),
    "Edema": ("Pulmonary Edema",),
    "Emphysema": ("Emphysema", "Pulmonary Emphysema"),
    "Fibrosis": ("Pulmonary Fibrosis",),
    "Pleural_Thickening": ("Thickening",),
    "Hernia": ("Hernia, Hiatal", "Hernia, Diaphragmatic"),
}
_NEEDS = {"Pleural_Thickening": "pleura"}


def mesh_to_nih14(terms: Iterable[str]) -> dict[str, int]:
    """The 14 NIH labels (1/0) of one report's ``<major>`` MeSH terms (see :data:`OPENI_NIH14`)."""
    out = dict.fromkeys(OPENI_NIH14, 0)
    for term in terms:
        low = term.strip().lower()
        heading = low.split("/", 1)[0].strip()
        for label, headings in OPENI_NIH14.items():
            if any(heading.startswith(h.lower()) for h in headings) and _NEEDS.get(label, "") in low:
                out[label] = 1
    return out


def read_openi_reference(folder: Path | str) -> Iterator[tuple[str, dict[str, int]] | ReportFileError]:
    """``(report_id, labels)`` for every OpenI XML file of *folder* (a :class:`ReportFileError` for a file that
    cannot be read; the batch goes on). The id is the file name without ``.xml``, as in
    :func:`cxrlab.reports.read_openi_report`.

    Raises
    ------
    ReportError
        *folder* is no folder of ``*.xml`` files.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.xml"), key=_natural_key) if folder.is_dir() else []
    if not files:
        raise ReportError(f"{folder}: no folder of OpenI *.xml reports")
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            line = exc.position[0] if getattr(exc, "position", None) else None
            yield ReportFileError(str(path), "not well-formed XML", line=line)
            continue
        except OSError as exc:
            yield ReportFileError(str(path), f"cannot read ({exc.strerror or type(exc).__name__})")
            continue
        mesh = root.find("MeSH")
        if mesh is None:
            yield ReportFileError(str(path), "no MeSH element (not an indexed OpenI report)")
            continue
        yield path.stem, mesh_to_nih14("".join(m.itertext()) for m in mesh.findall("major"))
