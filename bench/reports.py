"""Report labels on OpenI: cxrlab's labeler against a keyword matcher and negspacy, quality and speed.

Reads the OpenI dev set (``../shared/data/openi-dev`` or ``--data``), scores each labeler against the reports'
MeSH reference (``cxrlab reports reference openi``) and prints, side by side, precision/recall/F1 per label and the
micro averages over the NIH-8 (ChestX-ray8's eight labels) and all 14 labels, on the whole set and on its two
halves (odd and even ``id // 4``: the vocabulary was tuned on the odd half and checked on the even one), then
reports a second on one core (labeling only, reading excluded; best of ``--repeat``).

- ``cxrlab``: :class:`cxrlab.reports.Labeler` with the ``nih14`` vocabulary; an uncertain label counts as 0.
- ``keyword``: one keyword per label and a sentence-level "no ... X" rule (``keyword_labels`` below).
- ``negspacy``: cxrlab's concept spans, negated by negspacy (NegEx, default ``en_clinical`` termset) on a blank
  spaCy English pipeline with its rule sentencizer (no model download); negspacy has no uncertainty. Needs the
  ``[bench]`` extra; skipped with a message when absent.

Usage: ``python bench/reports.py [--data DIR] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cxrlab.reports import NIH8, Labeler, open_reports, read_openi_reference, score_labels
from cxrlab.reports.labeler import normalise_text
from cxrlab.reports.sections import select_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/support: where the real test data is
from tests.support.data import TEST_DATA  # noqa: E402

DEFAULT_DATA = TEST_DATA / "openi-dev"

# The plain keyword matcher: a label is positive when its keyword is in a sentence without a "no" before it.
KEYWORDS = {
    "Atelectasis": "atelecta", "Cardiomegaly": "cardiomegaly", "Effusion": "effusion", "Infiltration": "infiltrat",
    "Mass": "mass", "Nodule": "nodul", "Pneumonia": "pneumonia", "Pneumothorax": "pneumothora",
    "Consolidation": "consolidat", "Edema": "edema", "Emphysema": "emphysema", "Fibrosis": "fibros",
    "Pleural_Thickening": "pleural thickening", "Hernia": "hernia",
}
_NEGATION = re.compile(r"\b(?:no|not|without|negative for|free of|clear of)\b")


def keyword_labels(text: str) -> dict[str, int]:
    """Keyword matcher with a sentence-level "no ... X" negation rule."""
    out = dict.fromkeys(KEYWORDS, 0)
    for sentence in re.split(r"[.!?\n]+", text.lower()):
        for label, word in KEYWORDS.items():
            at = sentence.find(word)
            if at >= 0 and not _NEGATION.search(sentence, 0, at):
                out[label] = 1
    return out


def negspacy_labeler(labeler: Labeler) -> Callable[[str], dict[str, int]] | None:
    """negspacy on cxrlab's concept spans, or None when spaCy/negspacy are not installed."""
    try:
        import spacy
        from negspacy.negation import Negex  # noqa: F401 - registers the "negex" factory
        from spacy.util import filter_spans  # noqa: F401
    except ImportError:
        return None
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    negex = nlp.add_pipe("negex", config={"span_keys": ["concepts"]})  # default termset: en_clinical

    def label(text: str) -> dict[str, int]:
        norm = normalise_text(text)
        doc = nlp.make_doc(norm)
        for _, proc in nlp.pipeline[:-1]:
            doc = proc(doc)
        spans = []
        for m in labeler.mentions(norm):
            span = doc.char_span(m.start, m.end, label=m.label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.spans["concepts"] = spans
        doc = negex(doc)
        out = dict.fromkeys(labeler.names, 0)
        for span in doc.spans["concepts"]:
            if not span._.negex:
                out[span.label_] = 1
        return out

    return label


def best_rate(fn: Callable[[str], dict], texts: list[str], repeat: int) -> float:
    """Reports per second (best of *repeat* passes over *texts*)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for text in texts:
            fn(text)
        best = min(best, time.perf_counter() - t)
    return len(texts) / best


def fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder of OpenI *.xml reports.")
    ap.add_argument("--repeat", type=int, default=3, help="Timing passes (the best is kept).")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no OpenI folder at {args.data} (pass --data)", file=sys.stderr)
        return 2
    labeler = Labeler.from_schema("nih14")
    reports = [r for r in open_reports(args.data) if not isinstance(r, Exception)]
    texts = {r.report_id: select_text(r.sections, labeler.sections) for r in reports}
    texts = {rid: t for rid, t in texts.items() if t.strip()}
    reference = dict(x for x in read_openi_reference(args.data) if not isinstance(x, Exception))
    systems: dict[str, Callable[[str], dict]] = {"cxrlab": labeler.label_text, "keyword": keyword_labels}
    neg = negspacy_labeler(labeler)
    if neg is None:
        print("negspacy: not installed (pip install -e '.[bench]'), skipped", file=sys.stderr)
    else:
        systems["negspacy"] = neg
    names = labeler.names
    preds = {s: {rid: fn(t) for rid, t in texts.items()} for s, fn in systems.items()}
    halves = {
        "all": reference,
        "odd (tuned)": {k: v for k, v in reference.items() if (int(k) // 4) % 2 == 1},
        "even (check)": {k: v for k, v in reference.items() if (int(k) // 4) % 2 == 0},
    }
    scores = {(s, h): score_labels(ref, preds[s], names) for s in systems for h, ref in halves.items()}
    print(f"OpenI dev set: {len(reference)} reports ({len(texts)} with findings or impression text)\n")
    head = "".join(f" | {s:^23}" for s in systems)
    print(f"{'label':20} {'n':>4}{head}")
    print(f"{'':20} {'':>4}" + " | prec   rec    F1    " * len(systems))
    for n in names:
        row = "".join(
            f" | {fmt(sc.precision)}  {fmt(sc.recall)}  {fmt(sc.f1)}"
            for sc in (scores[s, "all"].per_label[n] for s in systems)
        )
        print(f"{n:20} {scores['cxrlab', 'all'].per_label[n].support:>4}{row}")
    for h in halves:
        for group, labels in (("NIH-8", NIH8), ("all 14", None)):
            row = "".join(
                f" | {fmt(m.precision)}  {fmt(m.recall)}  {fmt(m.f1)}"
                for m in (scores[s, h].micro(labels) for s in systems)
            )
            print(f"{'micro ' + group + ' ' + h:20.20} {scores['cxrlab', h].micro(labels).support:>4}{row}")
    values = list(texts.values())
    rates = {s: best_rate(fn, values, args.repeat) for s, fn in systems.items()}
    print("\nreports/s (one core):", ", ".join(f"{s} {r:,.0f}" for s, r in rates.items()))
    ok = rates["cxrlab"] >= 1000
    print(f"goal >= 1,000 reports/s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
