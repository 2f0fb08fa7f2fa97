"""Table 2 of the seeds: dataset characteristics and label prevalence.

Layout of VinDr-CXR / VinDr-PCXR data descriptors, Table 2: years, number of scans, annotators per scan,
median image size (rows x columns), median age (years), male and female % (only over scans whose sex and age
are known, the seeds' "*" note), data size, then every label in the seed's order with the count and % of
images positive by majority vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cxrlab.schemas import LabelSchema

__all__ = ["Table2", "compute_table2"]


@dataclass
class Table2:
    """Computed Table 2 values; :meth:`to_markdown` renders the seed layout."""

    schema: str
    n_images: int
    years: str
    annotators_per_scan: str
    median_size: str
    median_age: float | None
    male_pct: float | None
    female_pct: float | None
    data_size_gb: float
    labels: list[dict]

    def to_markdown(self, *, title: str = "Training set") -> str:
        """Render as a Markdown table in the seeds' order."""

        def fmt(v: float | None, nd: int = 2) -> str:
            return "-" if v is None else f"{v:.{nd}f}"

        lines = [
            f"| Characteristics | | {title} |",
            "|---|---|---|",
            f"| Collection statistics | Years | {self.years} |",
            f"| | Number of scans | {self.n_images:,} |",
            f"| | Number of human annotators per scan | {self.annotators_per_scan} |",
            f"| | Image size (pixel×pixel, median) | {self.median_size} |",
            f"| | Age (years, median)* | {fmt(self.median_age)} |",
            f"| | Male (%)* | {fmt(self.male_pct)} |",
            f"| | Female (%)* | {fmt(self.female_pct)} |",
            f"| | Data size (GB) | {self.data_size_gb:.3g} |",
        ]
        for kind, heading in (("local", "Local labels"), ("global", "Global labels")):
            first = True
            for lb in (x for x in self.labels if x["kind"] == kind):
                lines.append(
                    f"| {heading if first else ''} | {lb['number']}. {lb['name']} (%) | "
                    f"{lb['count']:,} ({lb['percent']:.2f}%) |"
                )
                first = False
        lines.append("")
        lines.append(
            "Positive labels by majority vote of the readers. (*) Only scans whose sex and age are known."
        )
        return "\n".join(lines) + "\n"


def compute_table2(
    images: pd.DataFrame, positives: pd.DataFrame, schema: LabelSchema, *, annotators: pd.Series | None = None
) -> Table2:
    """Compute Table 2.

    Parameters
    ----------
    images : DataFrame
        One row per image: ``image_id``, ``rows``, ``columns``, ``age_years``, ``sex``, ``study_year``,
        ``file_size`` (bytes).
    positives : DataFrame
        ``image_id`` and one 0/1 column per label (majority vote).
    schema : LabelSchema
        Label order and kinds.
    annotators : Series, optional
        Readers per image.
    """
    n = len(images)
    years = images["study_year"].dropna().astype(int)
    known = images.dropna(subset=["age_years"])
    known = known[known["sex"].isin(["M", "F"])]
    male = float((known["sex"] == "M").mean() * 100) if len(known) else None
    sizes = images.dropna(subset=["rows", "columns"])
    median_size = f"{sizes['rows'].median():,.0f} × {sizes['columns'].median():,.0f}" if len(sizes) else "-"
    per = annotators.dropna().astype(int) if annotators is not None else pd.Series(dtype=int)
    ann = "-" if per.empty else (str(per.min()) if per.min() == per.max() else f"{per.min()}-{per.max()}")
    labels = []
    merged = images[["image_id"]].merge(positives, on="image_id", how="left").fillna(0)
    for lb in schema.labels:
        count = int(merged[lb.name].sum()) if lb.name in merged else 0
        labels.append(
            {
                "number": lb.number,
                "name": lb.name,
                "kind": lb.kind,
                "count": count,
                "percent": 100.0 * count / n if n else 0.0,
            }
        )
    return Table2(
        schema=schema.name,
        n_images=n,
        years=f"{years.min()} to {years.max()}" if len(years) else "-",
        annotators_per_scan=ann,
        median_size=median_size,
        median_age=float(known["age_years"].median()) if len(known) else None,
        male_pct=male,
        female_pct=None if male is None else 100.0 - male,
        data_size_gb=float(images["file_size"].fillna(0).sum()) / 1e9,
        labels=labels,
    )
