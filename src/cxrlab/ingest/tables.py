"""Reading the CSV tables of public releases: columns found by name, bad rows reported with line numbers.

Every release table (VinDr ``annotations_*.csv`` / ``image_labels_*.csv``, the challenge's single file, NIH
``Data_Entry_2017.csv`` / ``BBox_List_2017.csv``) goes through :func:`read_table`:

- ``.csv`` and ``.csv.gz`` (gzip is recognised by its magic bytes, whatever the suffix), UTF-8 with or
  without a byte-order mark; a gzip file is streamed through :func:`cxrlab.runtime.unpack.open_table` and may
  unpack to :func:`~cxrlab.runtime.unpack.max_unpacked` bytes at most (2 GiB by default);
- columns are matched by name (case, surrounding spaces and quotes ignored) against a list of aliases, so
  column order and extra columns do not matter, and NIH's unquoted ``OriginalImage[Width,Height]`` header
  (which splits into ``OriginalImage[Width`` and ``Height]``) and its trailing empty columns are tolerated;
- a row with more fields than the header, an empty required value or a value that is not a number where a
  number is expected is a *bad row*, reported as ``line N: reason``. Line numbers count the header as line 1.
  Messages never quote a value from the file.

pandas' C parser does the reading (112,120 NIH rows in about 0.2 s); bad field counts come from its
``on_bad_lines="warn"`` report, and the surviving rows are mapped back to their line numbers.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cxrlab.errors import FileError
from cxrlab.runtime.unpack import CorruptStreamError, open_table

__all__ = ["BadRows", "Column", "CsvFormatError", "CsvTable", "read_table"]

BadRows = Literal["raise", "warn", "ignore"]
_BAD_ROWS = ("raise", "warn", "ignore")
MAX_LISTED = 10


class CsvFormatError(FileError):
    """A CSV table cannot be used: missing file or columns, empty file, or bad rows (with line numbers)."""

    def __init__(self, path: str | Path, reason: str, *, lines: Sequence[tuple[int, str]] = ()) -> None:
        self.lines = list(lines)
        super().__init__(path, reason)


@dataclass(frozen=True)
class Column:
    """A column to find by name.

    Attributes
    ----------
    name : str
        Name in the returned frame.
    aliases : tuple of str
        Header spellings that mean this column (matched case-insensitively, spaces collapsed).
    required : bool
        A missing column is an error.
    kind : str
        ``str``, ``float`` or ``int``: numbers are parsed, a non-number is a bad row.
    nullable : bool
        An empty value is allowed (else it makes a bad row).
    """

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = True
    kind: str = "str"
    nullable: bool = True


@dataclass
class CsvTable:
    """A parsed table: ``frame`` holds the found columns under their canonical names plus ``line``.

    Importers add their own checks with :meth:`reject`, then call :meth:`finish`, which raises (policy
    ``raise``) or drops the rejected rows and keeps them in ``problems`` (``warn`` / ``ignore``).
    """

    path: Path
    frame: pd.DataFrame
    on_bad_rows: BadRows = "raise"
    problems: list[tuple[int, str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    def reject(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        """Mark the rows where *mask* is true as bad, with *reason* (no file value in it)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        lines = self.frame["line"].to_numpy()[mask]
        self.problems.extend((int(n), reason) for n in lines)
        self.frame = self.frame.loc[~mask].reset_index(drop=True)

    def finish(self) -> pd.DataFrame:
        """Apply the bad-row policy and return the frame of good rows.

        Raises
        ------
        CsvFormatError
            Policy ``raise`` and at least one bad row: the message lists the first lines and reasons.
        """
        self.problems.sort()
        if self.problems and self.on_bad_rows == "raise":
            raise CsvFormatError(self.path, describe_bad_rows(self.problems), lines=self.problems)
        return self.frame


def describe_bad_rows(problems: Sequence[tuple[int, str]]) -> str:
    """``"3 bad row(s): line 4: ...; line 9: ..."`` (the first :data:`MAX_LISTED`)."""
    shown = "; ".join(f"line {n}: {r}" for n, r in problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"{len(problems)} bad row(s): {shown}{more}"


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().strip('"').strip()).lower()


_SKIP = re.compile(r"Skipping line (\d+): (.*)")


def read_table(
    path: str | Path,
    columns: Sequence[Column],
    *,
    on_bad_rows: BadRows = "raise",
    allow_empty: bool = True,
    others: str = "str",
) -> CsvTable:
    """Read a CSV (optionally gzip) and find *columns* by name.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.csv.gz`` file.
    columns : sequence of Column
        The columns to find; other columns are kept in ``extra_columns`` (their header names) and in the
        frame under their own names.
    on_bad_rows : {"raise", "warn", "ignore"}
        ``raise``: any bad row is an error listing line numbers. ``warn`` / ``ignore``: bad rows are dropped
        and listed in ``CsvTable.problems`` (the caller reports them for ``warn``).
    allow_empty : bool
        A header without data rows is accepted (else an error).
    others : {"str", "float"}
        How to read the columns not in *columns* (``float``: the 0/1 label columns of ``image_labels``; a
        value that is not a number leaves that column as text for the caller to report).

    Raises
    ------
    CsvFormatError
        Missing or unreadable file, empty file, missing required column, or bad rows under ``raise``.
    UnpackedTooLargeError
        A gzip file unpacks to more than :func:`~cxrlab.runtime.unpack.max_unpacked` bytes.
    """
    if on_bad_rows not in _BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {_BAD_ROWS}, got {on_bad_rows!r}")
    path = Path(path)
    if not path.exists():
        raise CsvFormatError(path, "file not found")
    if path.is_dir():
        raise CsvFormatError(path, "is a folder, not a CSV file")
    try:
        if path.stat().st_size == 0:
            raise CsvFormatError(path, "empty file (no header row)")
        options = dict(
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            encoding="utf-8-sig",
            compression=None,
            skipinitialspace=True,
        )
        with open_table(path) as fh:
            names = list(pd.read_csv(fh, nrows=0, **options).columns)
        numeric = _numeric_columns(names, columns)
        if others == "float":
            named = _named_columns(names, columns)
            numeric |= {c for c in names if c not in named and not str(c).startswith("Unnamed:")}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                # Fast path: the C parser converts the numeric columns itself.
                with open_table(path) as fh:
                    raw = pd.read_csv(fh, dtype={c: ("float64" if c in numeric else object) for c in names},
                                      on_bad_lines="warn", **options)
            except (ValueError, TypeError):
                # A value that is not a number: read as text, to report its line below.
                caught.clear()
                with open_table(path) as fh:
                    raw = pd.read_csv(fh, dtype=object, on_bad_lines="warn", **options)
    except CsvFormatError:
        raise
    except CorruptStreamError as exc:
        raise CsvFormatError(path, exc.reason) from None
    except pd.errors.EmptyDataError:
        raise CsvFormatError(path, "empty file (no header row)") from None
    except UnicodeDecodeError:
        raise CsvFormatError(path, "not UTF-8 text (is it a CSV file?)") from None
    except (EOFError, OSError) as exc:
        raise CsvFormatError(path, f"cannot read ({type(exc).__name__}: corrupt or truncated file)") from None
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"line {line.group(1)}: " if line else ""
        raise CsvFormatError(path, f"{where}not a well-formed CSV table (unbalanced quotes?)") from None
    skipped: list[tuple[int, str]] = []
    for w in caught:
        for m in _SKIP.finditer(str(w.message)):
            skipped.append((int(m.group(1)), m.group(2).strip()))
    n = len(raw)
    bad_lines = np.array(sorted(s for s, _ in skipped), dtype=np.int64)
    lines = np.setdiff1d(np.arange(2, 2 + n + len(bad_lines), dtype=np.int64), bad_lines)[:n]
    raw.insert(0, "line", lines)
    # Blank lines (every field empty) are not data.
    data_cols = [c for c in raw.columns if c != "line"]
    raw = raw.loc[~raw[data_cols].isna().all(axis=1)].reset_index(drop=True)
    table = CsvTable(path, raw, on_bad_rows, problems=list(skipped), header=[str(c) for c in data_cols])
    _resolve_columns(table, columns)
    if not allow_empty and table.frame.empty and not table.problems:
        raise CsvFormatError(path, "no data rows (header only)")
    return table


def _named_columns(names: list[str], columns: Sequence[Column]) -> set[str]:
    by_norm = {_norm(c): c for c in names}
    return {by_norm[_norm(a)] for spec in columns for a in (spec.name, *spec.aliases) if _norm(a) in by_norm}


def _numeric_columns(names: list[str], columns: Sequence[Column]) -> set[str]:
    by_norm: dict[str, str] = {}
    for col in names:
        by_norm.setdefault(_norm(col), col)
    out = set()
    for spec in columns:
        if spec.kind == "str":
            continue
        found = next((by_norm[_norm(a)] for a in (spec.name, *spec.aliases) if _norm(a) in by_norm), None)
        if found is not None:
            out.add(found)
    return out


def _resolve_columns(table: CsvTable, columns: Sequence[Column]) -> None:
    frame = table.frame
    by_norm: dict[str, str] = {}
    for col in frame.columns:
        if col != "line":
            by_norm.setdefault(_norm(col), col)
    rename: dict[str, str] = {}
    missing = []
    for spec in columns:
        found = next((by_norm[_norm(a)] for a in (spec.name, *spec.aliases) if _norm(a) in by_norm), None)
        if found is None:
            if spec.required:
                missing.append(spec.name)
            continue
        rename[found] = spec.name
    if missing:
        have = ", ".join(h for h in table.header if not h.startswith("Unnamed:")) or "none"
        raise CsvFormatError(table.path, f"missing column(s) {', '.join(missing)} (header has: {have})")
    table.extra_columns = [c for c in table.header if c not in rename and not c.startswith("Unnamed:")]
    frame = frame.rename(columns=rename)
    for spec in columns:
        if spec.name not in frame.columns:
            frame[spec.name] = np.nan if spec.kind != "str" else None
            continue
        values = frame[spec.name]
        if spec.kind == "str":
            empty = values.isna()
        else:
            if values.dtype == object:
                num = pd.to_numeric(values, errors="coerce")
                bad = (num.isna() & values.notna()).to_numpy().copy()
            else:
                num = values
                bad = np.zeros(len(values), dtype=bool)
            bad |= np.isinf(num.to_numpy(dtype=float))
            if bad.any():
                table.frame = frame
                table.reject(bad, f"{spec.name} is not a number")
                frame = table.frame
                num = pd.to_numeric(frame[spec.name], errors="coerce")
            if spec.kind == "int":
                frac = (num.notna() & (num != num.round())).to_numpy()
                if frac.any():
                    table.frame = frame
                    table.reject(frac, f"{spec.name} is not a whole number")
                    frame = table.frame
                    num = pd.to_numeric(frame[spec.name], errors="coerce")
            frame[spec.name] = num
            empty = num.isna()
        if not spec.nullable and empty.any():
            table.frame = frame
            table.reject(empty, f"{spec.name} is empty")
            frame = table.frame
    table.frame = frame
