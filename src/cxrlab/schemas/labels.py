"""Label schemas as data: the seeds' label lists with their exact spellings and definitions.

Names are kept exactly as the seeds spell them (including "Brocho-pneumonia" and "Diffuse aveolar opacity"),
because released CSV headers use them (docs, "File formats").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALIASES",
    "CHALLENGE_CLASSES",
    "NO_FINDING",
    "SCHEMAS",
    "Label",
    "LabelSchema",
    "get_schema",
    "guess_schema",
]

NO_FINDING = "No finding"


@dataclass(frozen=True)
class Label:
    """One label: seed number, name, ``local`` (boxed finding) or ``global`` (image-level), definition."""

    number: int
    name: str
    kind: str
    definition: str = ""


@dataclass(frozen=True)
class LabelSchema:
    """An ordered label set."""

    name: str
    labels: tuple[Label, ...]
    no_finding: str | None = NO_FINDING

    @property
    def local(self) -> list[Label]:
        """Local labels (marked with boxes), in seed order."""
        return [lb for lb in self.labels if lb.kind == "local"]

    @property
    def global_(self) -> list[Label]:
        """Global labels (image-level impressions), in seed order."""
        return [lb for lb in self.labels if lb.kind == "global"]

    @property
    def names(self) -> list[str]:
        """Every label name in seed order (local first, then global)."""
        return [lb.name for lb in self.labels]

    def class_id(self, name: str) -> int:
        """Class id used in ``annotations_*.csv``: the 0-based position among local labels; "No finding"
        takes the id after the last local label (as class 14 after the 14 boxed classes of the VinDr-CXR
        challenge)."""
        local = [lb.name for lb in self.local]
        if name in local:
            return local.index(name)
        if name == self.no_finding:
            return len(local)
        raise KeyError(f"{name!r} is not a local label of schema {self.name!r}")

    def resolve(self, name: str) -> str | None:
        """The schema's spelling of *name*: exact, then case-insensitive, then a known alias
        (:data:`ALIASES`, e.g. the public challenge's "ILD"); None when it is not a label of this schema."""
        return self._lookup.get(name) or self._lookup.get(str(name).strip().lower())

    @property
    def _lookup(self) -> dict[str, str]:
        table = _LOOKUPS.get(self.name)
        if table is None:
            table = {}
            names = [*self.names, *([self.no_finding] if self.no_finding else [])]
            for n in names:
                table[n] = n
                table[n.lower()] = n
            for alias, target in ALIASES.get(self.name, {}).items():
                table[alias] = target
                table[alias.lower()] = target
            _LOOKUPS[self.name] = table
        return table


_LOOKUPS: dict[str, dict[str, str]] = {}


def _labels(kind: str, start: int, rows: list[tuple[str, str]] | list[str]) -> list[Label]:
    out = []
    for i, row in enumerate(rows):
        name, definition = (row, "") if isinstance(row, str) else row
        out.append(Label(start + i, name, kind, definition))
    return out


# VinDr-CXR data descriptor, Table 2 (names) and Table 3 (definitions).
_VINDR_CXR_LOCAL = [
    ("Aortic enlargement", "An abnormal bulge that occurs in the wall of the major blood vessel."),
    (
        "Atelectasis",
        "Collapse of a part of the lung due to a decrease in the amount of air in the alveoli "
        "resulting in volume loss and increased density.",
    ),
    (
        "Cardiomegaly",
        "Enlargement of the heart, occurs when the heart of an adult patient is larger than normal "
        "and the cardiothoracic ratio is greater than 0.5.",
    ),
    ("Calcification", "Deposition of calcium salts in the lung."),
    ("Clavicle fracture", "A break in the collarbone."),
    (
        "Consolidation",
        "Any pathologic process that fills the alveoli with fluid, pus, blood, cells (including "
        "tumor cells) or other substances resulting in lobar, diffuse or multifocal ill-defined opacities.",
    ),
    ("Edema", "Fluid accumulation in the tissue and air space of the lungs."),
    (
        "Emphysema",
        "A condition of the lung characterized by an abnormal increase in the size of air spaces "
        "distal to the terminal bronchioles.",
    ),
    (
        "Enlarged PA",
        "Dilatation of the pulmonary artery - a defect characterized by a wider than normal main "
        "pulmonary artery.",
    ),
    (
        "Interstitial lung disease (ILD)",
        "Involvement of the supporting tissue of the lung parenchyma resulting "
        "in fine or coarse reticular opacities or small nodules.",
    ),
    (
        "Infiltration",
        "An abnormal substance that accumulates gradually within cells or body tissues or any "
        "substance or type of cell that occurs within or spreads as through the interstices (interstitium and/or "
        "alveoli) of the lung, that is foreign to the lung, or that accumulates in greater than normal quantity "
        "within it.",
    ),
    (
        "Lung cavity",
        "Thick-walled abnormal gas-filled spaces within the lung. They are usually associated with "
        "a nodule, mass, or area of consolidation. A fluid level within the space may be present.",
    ),
    ("Lung cyst", "Lung cysts refer to round, thin-walled, low attenuation spaces/lucencies in the lung."),
    (
        "Lung opacity",
        "Any abnormal focal or generalized opacity or opacities in lung fields (blanket tag "
        "including but not limited to consolidation, cavity, fibrosis, nodule, mass, calcification, interstitial "
        "thickening, etc.).",
    ),
    (
        "Mediastinal shift",
        "The deviation of the mediastinal structures towards one side of the chest cavity.",
    ),
    ("Nodule/Mass", "Any space occupying lesion either solitary or multiple."),
    ("Pulmonary fibrosis", "An excess of fibrotic tissue in the lung."),
    ("Pneumothorax", "The presence of gas (air) in the pleural space."),
    ("Pleural thickening", "Any form of thickening involving either the parietal or visceral pleura."),
    ("Pleural effusion", "Abnormal accumulations of fluid within the pleural space."),
    ("Rib fracture", "A common injury that occurs when one of the bones in your rib cage breaks or cracks."),
    ("Other lesion", "Other lesions that are not on the list of findings or abnormalities mentioned above."),
]
_VINDR_CXR_GLOBAL = [
    (
        "Lung tumor",
        "The result of abnormal rates of cell division or cell death in lung tissue, or in the "
        "airways that lead to the lungs.",
    ),
    ("Pneumonia", "An infection that inflames the air sacs in one or both lungs."),
    ("Tuberculosis", "Any sign suggesting pulmonary or extrapulmonary tuberculosis."),
    ("Other diseases", "Other diseases that are not on the list of diseases mentioned above."),
    (
        "COPD",
        "Chronic obstructive pulmonary disease (COPD) is defined as a condition characterized by persistent "
        "airflow limitation that is usually progressive and associated with an enhanced chronic inflammatory "
        "response in the airways and the lung to noxious particles or gases.",
    ),
    (NO_FINDING, "The absence of all pathologies from the chest radiograph."),
]

# VinDr-PCXR data descriptor, Table 2 (the seed numbers global labels 37, 38, 40-52: there is no 39).
_VINDR_PCXR_LOCAL = [
    "Boot-shaped heart",
    "Peribronchovascular interstitial opacity",
    "Reticulonodular opacity",
    "Bronchial thickening",
    "Enlarged PA",
    "Cardiomegaly",
    "Other opacity",
    "Intrathoracic digestive structure",
    "Diffuse aveolar opacity",
    "Other lesion",
    "Consolidation",
    "Mediastinal shift",
    "Anterior mediastinal mass",
    "Other nodule/mass",
    "Dextro cardia",
    "Aortic enlargement",
    "Pleural effusion",
    "Stomach on the right side",
    "Atelectasis",
    "Calcification",
    "Interstitial lung disease - ILD",
    "Lung hyperinflation",
    "Egg on string sign",
    "Pulmonary fibrosis",
    "Infiltration",
    "Lung cavity",
    "Pneumothorax",
    "Edema",
    "Pleural thickening",
    "Clavicle fracture",
    "Chest wall mass",
    "Lung cyst",
    "Emphysema",
    "Bronchiectasis",
    "Expanded edges of the anterior ribs",
    "Paravertebral mass",
]
_VINDR_PCXR_GLOBAL = [
    (37, NO_FINDING),
    (38, "Bronchitis"),
    (40, "Brocho-pneumonia"),
    (41, "Other diseases"),
    (42, "Bronchiolitis"),
    (43, "Situs inversus"),
    (44, "Pneumonia"),
    (45, "Pleuro-pneumonia"),
    (46, "Diaphragmatic hernia"),
    (47, "Tuberculosis"),
    (48, "Congenital emphysema"),
    (49, "CPAM"),
    (50, "Hyaline membrane disease"),
    (51, "Mediastinal tumor"),
    (52, "Lung tumor"),
]

# NIH ChestX-ray14 README: "(1, Atelectasis; 2, Cardiomegaly; ... 14 Hernia)"; all image-level labels.
_NIH14 = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
]

SCHEMAS: dict[str, LabelSchema] = {
    "vindr-cxr": LabelSchema(
        "vindr-cxr", tuple(_labels("local", 1, _VINDR_CXR_LOCAL) + _labels("global", 23, _VINDR_CXR_GLOBAL))
    ),
    "vindr-pcxr": LabelSchema(
        "vindr-pcxr",
        tuple(
            _labels("local", 1, _VINDR_PCXR_LOCAL)
            + [Label(n, name, "global") for n, name in _VINDR_PCXR_GLOBAL]
        ),
    ),
    "nih14": LabelSchema("nih14", tuple(_labels("global", 1, _NIH14)), no_finding="No Finding"),
}


#: Other spellings found in public files, per schema: the VinDr-CXR public challenge's ``train.csv`` names two
#: classes differently ("ILD", "Lung Opacity"); NIH's ``BBox_List_2017.csv`` writes "Infiltrate" for the
#: "Infiltration" of ``Data_Entry_2017.csv``.
ALIASES: dict[str, dict[str, str]] = {
    "vindr-cxr": {"ILD": "Interstitial lung disease (ILD)", "Lung Opacity": "Lung opacity"},
    "vindr-pcxr": {
        "Peribronchovascular interstitial opacity or PIO": "Peribronchovascular interstitial opacity",
        "PIO": "Peribronchovascular interstitial opacity",
        "Interstitial lung disease (ILD)": "Interstitial lung disease - ILD",
    },
    "nih14": {"Infiltrate": "Infiltration", "Pleural Thickening": "Pleural_Thickening"},
}

#: The 15 classes of the VinDr-CXR public challenge's ``train.csv`` (``class_id`` 0-14, 14 = "No finding").
CHALLENGE_CLASSES = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
    "No finding",
)


def guess_schema(names: set[str] | list[str], *, prefer: str | None = None) -> LabelSchema:
    """Pick the schema that knows the most of *names* (label names or CSV headers).

    Ties go to *prefer*, then to the order of :data:`SCHEMAS` (VinDr-CXR first).

    Raises
    ------
    KeyError
        No schema knows at least half of the names.
    """
    names = [n for n in dict.fromkeys(names) if n]
    if prefer is not None:
        return get_schema(prefer)
    scores = {key: sum(s.resolve(n) is not None for n in names) for key, s in SCHEMAS.items()}
    best = max(scores, key=lambda k: scores[k])
    if not names or scores[best] * 2 < len(names):
        raise KeyError("cannot tell the label schema from the class names; name it (--schema)")
    return SCHEMAS[best]


def get_schema(name: str) -> LabelSchema:
    """Return the schema called *name*.

    Raises
    ------
    KeyError
        With the list of known schema names.
    """
    try:
        return SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown label schema {name!r} (known: {', '.join(SCHEMAS)})") from None
