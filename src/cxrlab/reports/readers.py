"""Readers of report collections: a CSV or JSONL table, or a folder of OpenI XML reports.

Every reader yields :class:`Report` objects and, in the same stream, a :class:`ReportFileError` for each record
it cannot read, so one bad record never stops a batch. Messages name the file and the line, never the text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from cxrlab.reports.exceptions import ReportError, ReportFileError
from cxrlab.reports.sections import split_sections

__all__ = ["Report", "ReportSource", "open_reports", "read_openi_report"]

_TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Characters Python's "surrogateescape" error handler puts in place of bytes that do not decode.
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Report:
    """One report: its id, its text by section, and where it came from (for messages).

    Attributes
    ----------
    report_id : str
        The id written in the output (OpenI: the file name without ``.xml``).
    sections : dict of str to str
        Canonical section name (see :mod:`cxrlab.reports.sections`) -> text.
    source : str
        ``file`` or ``file:line``; never the text.
    key : str or None
        The identifier that links the report to its images (an Accession Number or a Study Instance UID), when
        the source was opened with a ``key_column``; None otherwise.
    """

    report_id: str
    sections: dict[str, str] = field(repr=False)
    source: str = ""
    key: str | None = field(default=None, repr=False)


def _natural_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))


def read_openi_report(path: Path) -> Report:
    """Read one OpenI (Indiana University chest X-ray collection) report.

    The OpenI XML keeps the report in ``MedlineCitation/Article/Abstract/AbstractText`` elements whose ``Label``
    attribute is the heading (COMPARISON, INDICATION, FINDINGS, IMPRESSION). The report id is the file name
    without ``.xml``.

    Raises
    ------
    ReportFileError
        Not well-formed XML (with the line), or no ``AbstractText`` element.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise ReportFileError(str(path), "not well-formed XML", line=line) from None
    except OSError as exc:
        raise ReportFileError(str(path), f"cannot read ({exc.strerror or type(exc).__name__})") from None
    parts = root.findall(".//AbstractText")
    if not parts:
        raise ReportFileError(str(path), "no AbstractText element (not an OpenI report)")
    sections: dict[str, str] = {}
    for el in parts:
        name = (el.get("Label") or "body").strip().lower()
        text = "".join(el.itertext()).strip()
        if text:
            sections[name] = f"{sections[name]}\n{text}" if name in sections else text
    return Report(path.stem, sections, str(path))


class ReportSource:
    """The reports of one input: a folder of OpenI ``*.xml``, one ``.xml``, or a CSV/TSV/JSONL table (``.gz``
    accepted).

    Iterate to get :class:`Report` and :class:`ReportFileError` items in input order. ``total`` is the number of
    files of a folder, None for a table (its record count is known only once read). With *key_column*, each
    report also carries the identifier that links it to its images (:attr:`Report.key`): that column of a table,
    the report id (the file name) of an OpenI file.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        id_column: str = "report_id",
        text_column: str = "text",
        encoding: str = "utf-8",
        key_column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.id_column = id_column
        self.text_column = text_column
        self.encoding = encoding
        self.key_column = key_column
        if self.path.is_dir():
            self.kind = "openi"
            self._files = sorted(self.path.glob("*.xml"), key=_natural_key)
            if not self._files:
                raise ReportError(f"{self.path}: no *.xml report in this folder")
            self.total: int | None = len(self._files)
            return
        if not self.path.is_file():
            raise ReportError(f"{self.path}: no such file or folder")
        suffixes = [s.lower() for s in self.path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        last = suffixes[-1] if suffixes else ""
        if last == ".xml":
            self.kind, self._files, self.total = "openi", [self.path], 1
        elif last in _TABLE_SUFFIXES:
            self.kind, self.total = _TABLE_SUFFIXES[last], None
        else:
            raise ReportError(f"{self.path}: unknown report format (expected a folder of .xml, .xml, .csv, .tsv or "
                              ".jsonl)")

    def __iter__(self) -> Iterator[Report | ReportFileError]:
        if self.kind == "openi":
            for path in self._files:
                try:
                    report = read_openi_report(path)
                except ReportFileError as exc:
                    yield exc
                    continue
                yield replace(report, key=report.report_id) if self.key_column else report
        else:
            try:
                if self.kind == "jsonl":
                    yield from self._read_jsonl()
                else:
                    yield from self._read_table(delimiter="\t" if self.kind == "tsv" else ",")
            except (OSError, EOFError) as exc:  # a truncated or corrupt .gz, a disk error
                reason = getattr(exc, "strerror", None) or (
                    "corrupt or truncated gzip data" if isinstance(exc, EOFError | gzip.BadGzipFile) else
                    type(exc).__name__
                )
                raise ReportError(f"{self.path}: cannot read ({reason})") from None

    def _open(self) -> IO[bytes]:
        try:
            return gzip.open(self.path, "rb") if self.path.suffix.lower() == ".gz" else open(self.path, "rb")
        except OSError as exc:
            raise ReportError(f"{self.path}: cannot read ({exc.strerror or type(exc).__name__})") from None

    @property
    def _columns(self) -> tuple[str, ...]:
        """The columns (keys) every record needs."""
        return (self.id_column, self.text_column, *((self.key_column,) if self.key_column else ()))

    def _record(
        self, line: int, report_id: object, text: object, key: object = None, *, seen: dict[str, int]
    ) -> Report | ReportFileError:
        """Check one table record; *seen* maps the ids met so far to their line."""
        where = str(self.path)
        if not isinstance(text, str) or not _is_id(report_id) or (self.key_column and not _is_id(key)):
            what = "the id and the key" if self.key_column else "the id"
            return ReportFileError(where, f"{what} must be a string or a number and the text a string", line=line)
        report_id = str(report_id).strip()
        key = str(key).strip() if self.key_column else None
        if _UNDECODED.search(text) or _UNDECODED.search(report_id) or (key and _UNDECODED.search(key)):
            return ReportFileError(where, f"not valid {self.encoding} (pass the file's encoding)", line=line)
        if not report_id:
            return ReportFileError(where, "empty report id", line=line)
        if self.key_column and not key:
            return ReportFileError(where, f"empty {self.key_column!r}", line=line)
        if report_id in seen:
            return ReportFileError(where, f"duplicate report id (first on line {seen[report_id]})", line=line)
        seen[report_id] = line
        return Report(report_id, split_sections(text), f"{where}:{line}", key)

    def _read_table(self, *, delimiter: str) -> Iterator[Report | ReportFileError]:
        where = str(self.path)
        with self._open() as raw:
            fh = io.TextIOWrapper(raw, encoding=_with_bom(self.encoding), errors="surrogateescape", newline="")
            reader = csv.reader(fh, delimiter=delimiter)
            try:
                header = next(reader)
            except StopIteration:
                raise ReportError(f"{where}: empty file (no header line)") from None
            except (csv.Error, UnicodeError):
                raise ReportError(f"{where}:1: malformed header line") from None
            header = [h.strip() for h in header]
            missing = [c for c in self._columns if c not in header]
            if missing:
                options = "--id-column/--text-column" + ("/--key-column" if self.key_column else "")
                raise ReportError(f"{where}: no column {', '.join(map(repr, missing))} (columns: "
                                  f"{', '.join(map(repr, header[:20]))}); use {options}")
            indexes = [header.index(c) for c in self._columns]
            seen: dict[str, int] = {}
            line = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error:
                    yield ReportFileError(where, "malformed CSV record", line=line)
                    line = reader.line_num + 1
                    continue
                if not row or not any(cell.strip() for cell in row):
                    line = reader.line_num + 1
                    continue
                if len(row) <= max(indexes):
                    yield ReportFileError(where, f"{len(row)} field(s), expected {len(header)}", line=line)
                else:
                    yield self._record(line, *(row[i] for i in indexes), seen=seen)
                line = reader.line_num + 1

    def _read_jsonl(self) -> Iterator[Report | ReportFileError]:
        where = str(self.path)
        seen: dict[str, int] = {}
        with self._open() as raw:
            for line, data in enumerate(raw, start=1):
                if not data.strip():
                    continue
                try:
                    obj = json.loads(data.decode(_with_bom(self.encoding) if line == 1 else self.encoding))
                except UnicodeDecodeError:
                    yield ReportFileError(where, f"not valid {self.encoding} (pass the file's encoding)", line=line)
                    continue
                except json.JSONDecodeError:
                    yield ReportFileError(where, "not valid JSON", line=line)
                    continue
                if not isinstance(obj, dict) or any(c not in obj for c in self._columns):
                    keys = ", ".join(map(repr, self._columns))
                    yield ReportFileError(where, f"not an object with keys {keys}", line=line)
                    continue
                yield self._record(line, *(obj[c] for c in self._columns), seen=seen)


def _is_id(value: object) -> bool:
    """An id or a key is a string or a number (a JSON number, not ``true``)."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def _with_bom(encoding: str) -> str:
    """UTF-8 tables often start with a byte order mark (Excel writes one): read it as such."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def open_reports(
    path: Path | str,
    *,
    id_column: str = "report_id",
    text_column: str = "text",
    encoding: str = "utf-8",
    key_column: str | None = None,
) -> ReportSource:
    """The reports at *path* (see :class:`ReportSource`).

    Raises
    ------
    ReportError
        The path does not exist, has an unknown format, an empty folder, or a table lacks the columns.
    """
    return ReportSource(path, id_column=id_column, text_column=text_column, encoding=encoding, key_column=key_column)
