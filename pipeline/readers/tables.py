"""One file's tables, whatever its format: the general reader behind the load stage and the
commands that read a file back (review, survey, check, progress)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.config import Field, Source
from ..core.errors import FileProblem
from .base import ROW_COL, HeaderChoice, ReadResult, Table, file_rules
from .bounds import _check_cells
from .headers import header_finder
from .parquet import read_parquet
from .text import read_csv_tables
from .workbook import WORKBOOK_FORMATS, workbook_tables


def read_tables(path: Path, choose=None, source: Source | None = None) -> ReadResult:
    """Every table of one file. ``choose(rows)`` picks a workbook sheet's header row (None: skip
    the sheet); ``source`` picks a CSV's (None: the first line)."""
    suffix = path.suffix.lower()
    _refuse_unreadable(path)
    if suffix in (".csv", ".txt"):
        table, enc = read_csv_tables(path, source)
        _check_cells(path, table)
        return ReadResult("csv", enc, [table])
    if suffix in WORKBOOK_FORMATS:
        choose = choose or (lambda rows: HeaderChoice(0, rows[0], set()))
        tables, skipped, reader = workbook_tables(path, choose)
        for t in tables:
            _check_cells(path, t)
        return ReadResult(suffix.lstrip("."), "", tables, skipped, reader)
    if suffix == ".parquet":
        header, df = read_parquet(path)
        return ReadResult("parquet", "", [Table("", 0, header, 1, df, 2)])
    raise FileProblem(path, f"files of type {suffix} are not read", "Save it as .xlsx or .csv.")


def _refuse_unreadable(path: Path) -> None:
    kind = file_rules()["cannot_read"].get(path.suffix.lower())
    if kind:
        raise FileProblem(
            path,
            f"this is a {kind} file ({path.suffix}), which this tool cannot read",
            "Open it and save it as .xlsx (Excel workbook), then run again.",
        )


def read_every(
    path: Path, wanted: set[str] | None = None
) -> tuple[ReadResult, list[tuple[Table, pl.DataFrame]]]:
    """Every table of one file that the tool reads back (a filled-in hand-off, a review, a list):
    with ``wanted`` (header names) each sheet's row holding most of them is its header, and
    sheets holding none are skipped. Each table comes with its body (columns c0… and ``row``,
    the row the user sees)."""
    if wanted and path.suffix.lower() in (".csv", ".txt"):
        src = Source("_wanted", "", False, "match_only", (), {w: Field(w, (w,)) for w in wanted})
        res = read_tables(path, source=src)
    else:
        res = read_tables(path, header_finder(wanted) if wanted else None)
    if not res.tables:
        raise FileProblem(
            path,
            "no sheet holds the expected column headers" if wanted else "the workbook is empty",
            "Use the file the tool wrote and keep its header row as it is.",
        )
    bodies = [
        (
            t,
            t.body.with_columns(
                pl.int_range(t.first_row, t.first_row + t.body.height, dtype=pl.Int64).alias(ROW_COL)
            ),
        )
        for t in res.tables
    ]
    return res, bodies


def read_any(path: Path, wanted: set[str] | None = None) -> tuple[list[str], pl.DataFrame, str, str, int]:
    """(header, body with columns c0… and ``row``, format, encoding, sheet index) of one file's
    first table: with ``wanted`` (header names) the sheet and row holding most of them."""
    res, bodies = read_every(path, wanted)
    t, body = bodies[0]
    return t.header, body, res.format, res.encoding, t.index
