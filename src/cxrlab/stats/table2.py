"""Table 2 of the seeds: dataset characteristics and label prevalence.

Layout of VinDr-CXR / VinDr-PCXR data descriptors, Table 2: years, number of scans, annotators per scan,
median image size (rows x columns), median age (years), male and female % (only over scans whose sex and age
are known, the seeds' "*" note), data size, then every label in the seed's order with the count and % of
images positive "based on the majority vote of the participating radiologists" (VinDr-CXR Table 2 note).

Positives per image: the consensus labels when the image has them (test sets, review decisions, a workspace
after ``cxrlab consensus``), else the majority vote of its readers' labels (:func:`cxrlab.consensus.majority_vote`,
positive when more than *threshold* of the readers marked the label; a tie is negative).
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cxrlab.consensus.vote import image_positives
from cxrlab.schemas import LabelSchema, ReleaseTables

__all__ = ["Table2", "compute_table2", "render_table2", "table2_from_tables"]

FORMATS = ("md", "csv", "json", "html")


@dataclass
class Table2:
    """Computed Table 2 values of one set; :meth:`to_markdown` renders the seed layout.

    ``labels`` holds one dict per label: ``number``, ``name``, ``kind`` (``local``/``global``), ``count`` and
    ``percent`` (None when the sources did not say, e.g. global labels read from an annotations file alone).
    """

    schema: str
    n_images: int
    years: str
    annotators_per_scan: str
    median_size: str
    median_age: float | None
    male_pct: float | None
    female_pct: float | None
    data_size_gb: float | None
    labels: list[dict]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    def to_markdown(self, *, title: str = "Training set") -> str:
        """Render as a Markdown table in the seeds' order."""
        return render_table2([(title, self)], "md")


def _fmt(v: float | None, nd: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def _rows(columns: list[tuple[str, Table2]]) -> list[tuple[str, str, list[str]]]:
    """(section, characteristic, one cell per set) in the seed's order."""
    sets = [t for _, t in columns]
    out = [
        ("Collection statistics", "Years", [t.years for t in sets]),
        ("", "Number of scans", [f"{t.n_images:,}" for t in sets]),
        ("", "Number of human annotators per scan", [t.annotators_per_scan for t in sets]),
        ("", "Image size (pixel×pixel, median)", [t.median_size for t in sets]),
        ("", "Age (years, median)*", [_fmt(t.median_age) for t in sets]),
        ("", "Male (%)*", [_fmt(t.male_pct) for t in sets]),
        ("", "Female (%)*", [_fmt(t.female_pct) for t in sets]),
        ("", "Data size (GB)", ["-" if t.data_size_gb is None else f"{t.data_size_gb:.3g}" for t in sets]),
    ]
    first = sets[0]
    for kind, heading in (("local", "Local labels"), ("global", "Global labels")):
        head = heading
        for i, lb in enumerate(first.labels):
            if lb["kind"] != kind:
                continue
            cells = []
            for t in sets:
                x = t.labels[i]
                cells.append("-" if x["count"] is None else f"{x['count']:,} ({x['percent']:.2f}%)")
            number = f"{lb['number']}. " if lb.get("number") is not None else ""
            out.append((head, f"{number}{lb['name']} (%)", cells))
            head = ""
    return out


NOTE = "Positive labels by majority vote of the readers. (*) Only scans whose sex and age are known."


def render_table2(columns: list[tuple[str, Table2]], fmt: str = "md") -> str:
    """Render one or more sets (e.g. ``[("Training set", t1), ("Test set", t2)]``) side by side.

    Parameters
    ----------
    fmt : {"md", "csv", "json", "html"}
        ``json`` gives the :class:`Table2` dict of a single set, or ``{"sets": [{"title": ..., ...}]}``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        if len(columns) == 1:
            return json.dumps(columns[0][1].to_dict(), indent=2) + "\n"
        return json.dumps({"sets": [{"title": t, **tab.to_dict()} for t, tab in columns]}, indent=2) + "\n"
    titles = [t for t, _ in columns]
    rows = _rows(columns)
    if fmt == "md":
        lines = [
            "| Characteristics | | " + " | ".join(titles) + " |",
            "|---|---|" + "---|" * len(titles),
        ]
        lines += [f"| {s} | {c} | " + " | ".join(cells) + " |" for s, c, cells in rows]
        return "\n".join([*lines, "", NOTE]) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        frame = pd.DataFrame([[s, c, *cells] for s, c, cells in rows], columns=["section", "characteristic", *titles])
        frame.to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue()
    body = "\n".join(
        "<tr><th>" + html.escape(s) + "</th><td>" + html.escape(c) + "</td>"
        + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>"
        for s, c, cells in rows
    )
    head = "".join(f"<th>{html.escape(t)}</th>" for t in titles)
    return (
        "<table class=\"table2\">\n<thead><tr><th>Characteristics</th><th></th>" + head + "</tr></thead>\n<tbody>\n"
        + body + "\n</tbody>\n</table>\n<p>" + html.escape(NOTE) + "</p>\n"
    )


def _label_entries(schema: LabelSchema) -> list[tuple[int | None, str, str]]:
    entries = [(lb.number, lb.name, lb.kind) for lb in schema.labels]
    if schema.no_finding and schema.no_finding not in schema.names:
        # NIH: "No Finding" is not one of the 14 labels but the README counts it; shown last, unnumbered.
        entries.append((None, schema.no_finding, "global"))
    return entries


def compute_table2(
    images: pd.DataFrame,
    positives: pd.DataFrame,
    schema: LabelSchema,
    *,
    annotators: pd.Series | str | None = None,
    known_labels: list[str] | None = None,
) -> Table2:
    """Compute Table 2 of one set.

    Parameters
    ----------
    images : DataFrame
        One row per image: ``image_id`` and any of ``rows``, ``columns``, ``age_years``, ``sex``,
        ``study_year``, ``file_size`` (bytes).
    positives : DataFrame
        ``image_id`` and one 0/1 column per label (majority vote).
    schema : LabelSchema
        Label order and kinds.
    annotators : Series or str, optional
        Readers per image (shown as ``3`` or ``1-3``), or the text to show.
    known_labels : list of str, optional
        Labels whose values are known (others get ``count = None``); default all.
    """
    n = len(images)

    def col(name: str) -> pd.Series:
        return images[name] if name in images else pd.Series([np.nan] * n, index=images.index)

    years = pd.to_numeric(col("study_year"), errors="coerce").dropna().astype(int)
    age = pd.to_numeric(col("age_years"), errors="coerce")
    sex = col("sex")
    known = age.notna() & sex.isin(["M", "F"])
    male = float((sex[known] == "M").mean() * 100) if known.any() else None
    rows, cols = pd.to_numeric(col("rows"), errors="coerce"), pd.to_numeric(col("columns"), errors="coerce")
    sized = rows.notna() & cols.notna()
    median_size = f"{rows[sized].median():,.0f} × {cols[sized].median():,.0f}" if sized.any() else "-"
    if isinstance(annotators, str):
        ann = annotators
    else:
        per = annotators.dropna().astype(int) if annotators is not None else pd.Series(dtype=int)
        ann = "-" if per.empty else (str(per.min()) if per.min() == per.max() else f"{per.min()}-{per.max()}")
    sizes = pd.to_numeric(col("file_size"), errors="coerce")
    merged = images[["image_id"]].merge(positives, on="image_id", how="left")
    known_set = set(schema.names if known_labels is None else known_labels)
    labels = []
    for number, name, kind in _label_entries(schema):
        if name in schema.names:
            have = name in known_set
            count = int(merged[name].fillna(0).sum()) if have and name in merged else (0 if have else None)
        else:
            present = [c for c in schema.names if c in merged]
            count = int((merged[present].fillna(0).sum(axis=1) == 0).sum()) if present else None
        labels.append(
            {
                "number": number,
                "name": name,
                "kind": kind,
                "count": count,
                "percent": None if count is None else (100.0 * count / n if n else 0.0),
            }
        )
    return Table2(
        schema=schema.name,
        n_images=n,
        years=f"{years.min()} to {years.max()}" if len(years) else "-",
        annotators_per_scan=ann,
        median_size=median_size,
        median_age=float(age[known].median()) if known.any() else None,
        male_pct=male,
        female_pct=None if male is None else 100.0 - male,
        data_size_gb=float(sizes.sum()) / 1e9 if sizes.notna().any() else None,
        labels=labels,
    )


def table2_from_tables(tables: ReleaseTables, split: str | None = None, *, threshold: float = 0.5) -> Table2:
    """Table 2 of one split (all images when *split* is None) of a release."""
    images = tables.images
    if split is not None:
        images = images.loc[images["split"] == split]
    ids = list(images["image_id"])
    positives = image_positives(tables, ids, threshold=threshold)
    readers = tables.reader_labels
    per = readers.loc[readers["image_id"].isin(set(ids))].groupby("image_id")["rad_id"].nunique()
    if per.empty:
        cons = tables.consensus_labels
        annotators: pd.Series | str = "consensus" if cons["image_id"].isin(set(ids)).any() else "-"
        if tables.source == "nih":
            annotators = "- (NLP-mined labels)"
    else:
        annotators = per
    return compute_table2(images, positives, tables.schema, annotators=annotators, known_labels=tables.known_labels)
