"""One file's tables, whatever its format: the general reader behind the load stage and the
commands that read a file back (review, survey, check, progress)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.config import Field, Source
from ..core.errors import FileProblem
from ..core.i18n import _
from ..core.policy import policy
from .base import ROW_COL, HeaderChoice, ReadResult, Table
from .bounds import _check_cells
from .headers import header_finder
from .markup import MarkupSheet, markup_sheets
from .parquet import read_parquet
from .sniff import real_format
from .text import read_csv_tables
from .workbook import WORKBOOK_FORMATS, grid_tables, workbook_tables


def read_tables(path: Path, choose=None, source: Source | None = None) -> ReadResult:
    """Every table of one file, whatever its extension says (:func:`.sniff.real_format`).
    ``choose(rows)`` picks a sheet's header row (None: skip the sheet); ``source`` picks a CSV's
    (None: the first line). The caller closes the result (:meth:`ReadResult.close`)."""
    _refuse_unreadable(path)
    fmt = real_format(path)
    if fmt == "csv":
        table, enc = read_csv_tables(path, source)
        _check_cells(path, table)
        return ReadResult("csv", enc, [table])
    if fmt == "parquet":
        header, df = read_parquet(path)
        return ReadResult("parquet", "", [Table("", 0, header, 1, df, 2)])
    choose = choose or (lambda rows: HeaderChoice(0, rows[0], set()))
    if fmt in ("html", "xml"):
        sheets, enc = markup_sheets(path, fmt)
        tables, skipped = grid_tables(path, (_markup_grid(i, s) for i, s in enumerate(sheets)), choose)
        parts = None
        if not sheets:
            skipped = [(0, "", _("empty"))]
        reader = None
    elif "." + fmt in WORKBOOK_FORMATS:
        enc = ""
        tables, skipped, reader, parts = workbook_tables(path, choose, fmt)
    else:
        raise FileProblem(
            path,
            _("files of type {extension} are not read").format(extension=path.suffix),
            _("Save it as .xlsx or .csv."),
        )
    for t in tables:
        _check_cells(path, t)
    return ReadResult(fmt, enc, tables, skipped, reader, parts)


def _markup_grid(i: int, sheet: MarkupSheet):
    """A markup sheet as :func:`.workbook.grid_tables` takes it (columns c0…, every cell text)."""
    width = max((len(r) for r in sheet.rows), default=0)
    cols = {f"c{j}": [r[j] if j < len(r) else None for r in sheet.rows] for j in range(width)}
    return i, sheet.name, pl.DataFrame(cols, schema={c: pl.String for c in cols}), 0, sheet.numbers, []


def _refuse_unreadable(path: Path) -> None:
    kind = policy().file_rules.cannot_read.get(path.suffix.lower())
    if kind:
        raise FileProblem(
            path,
            _("this is a {kind} file ({extension}), which this tool cannot read").format(
                kind=kind, extension=path.suffix
            ),
            _("Open it and save it as .xlsx (Excel workbook), then run again."),
        )


def read_every(
    path: Path, wanted: set[str] | None = None
) -> tuple[ReadResult, list[tuple[Table, pl.DataFrame]]]:
    """Every table of one file that the tool reads back (a filled-in hand-off, a review, a list):
    with ``wanted`` (header names) each sheet's row holding most of them is its header, and
    sheets holding none are skipped. Each table comes with its body (columns c0… and ``row``,
    the row the user sees)."""
    if wanted and real_format(path) == "csv":
        src = Source("_wanted", "", False, "match_only", (), {w: Field(w, (w,)) for w in wanted})
        res = read_tables(path, source=src)
    else:
        res = read_tables(path, header_finder(wanted) if wanted else None)
    res.close()  # the cell types of an .xlsx are not asked for here
    if not res.tables:
        raise FileProblem(
            path,
            _("no sheet holds the expected column headers") if wanted else _("the workbook is empty"),
            _("Use the file the tool wrote and keep its header row as it is."),
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
