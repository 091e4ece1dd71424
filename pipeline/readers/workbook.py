"""Workbooks (.xlsx, .xlsm, .xls, .ods) through fastexcel: every sheet as a grid of text, the
header row chosen per sheet, chart sheets skipped, and which ID cells were stored as numbers."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import polars as pl

from ..core.errors import FileProblem
from .base import Table, _cell_text, _reraise_interrupts, file_rules
from .bounds import _check_width, check_workbook_bounds
from .sheetxml import _col_letter, _stream, _xlsx_sheet_parts

_TEXT_TYPE_RE = re.compile(rb'\bt="(?:s|str|inlineStr|b|e)"')


WORKBOOK_FORMATS = (".xlsx", ".xlsm", ".xls", ".ods")


def numeric_cells(
    path: Path, sheet_index: int, col_indices: list[int], opened: dict | None = None
) -> set[int]:
    """Row numbers (as the user sees them) whose cell in one of these sheet columns (0 = A) is
    stored as a number, in an .xlsx: the cell types are read from the sheet XML (streamed, regex
    only); fastexcel returns a number cell as text indistinguishable from a typed one.
    ``opened`` (a :class:`ReadResult`'s): the zip is opened and its sheet list read once for all
    the sheets of the file (per sheet, a 5,000-sheet workbook took minutes); its owner closes it."""
    letters = sorted({_col_letter(i).encode() for i in col_indices})
    if not letters:
        return set()
    cell_re = re.compile(
        rb'<c r="(?:' + b"|".join(map(re.escape, letters)) + rb')([0-9]+)"((?:(?!/>)[^>])*)>'
    )
    out: set[int] = set()

    def scan(buf: bytes) -> None:
        for m in cell_re.finditer(buf):
            if not _TEXT_TYPE_RE.search(m.group(2)):  # no t="…" or t="n": a number cell
                out.add(int(m.group(1)))

    own = opened is None
    opened = {} if opened is None else opened
    try:
        if "zip" not in opened:
            opened["zip"] = zipfile.ZipFile(path)
            opened["parts"] = _xlsx_sheet_parts(opened["zip"])
            opened["present"] = set(opened["zip"].namelist())
        z, parts = opened["zip"], opened["parts"]
        if sheet_index >= len(parts) or parts[sheet_index] not in opened["present"]:
            return out
        _stream(z, parts[sheet_index], scan)
    except (zipfile.BadZipFile, OSError, KeyError):
        return set()
    finally:
        if own and "zip" in opened:
            opened["zip"].close()
    return out


def _number_cells_by_type(reader, path: Path, sheet: int, col: int) -> set[int]:
    """Row numbers whose cell in column ``col`` of the loaded grid is a number (or a boolean):
    asked of fastexcel by coercing the column to booleans, which leaves text cells empty."""
    try:
        s = reader.load_sheet(sheet, header_row=None, skip_rows=0, use_columns=[col], dtypes={col: "boolean"})
        flags = s.to_polars().to_series().is_not_null()
    except BaseException as e:
        _reraise_interrupts(e)
        return set()
    return {i + 1 for i in flags.arg_true().to_list()}


def _workbook_problem(path: Path, e: BaseException, sheet: str | None = None) -> FileProblem:
    _reraise_interrupts(e)
    where = f"sheet {sheet!r}: " if sheet else ""
    return FileProblem(
        path,
        f"{where}the workbook cannot be read ({type(e).__name__}: it is damaged, truncated or not really "
        "a spreadsheet)",
        "Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export.",
    )


def open_workbook(path: Path):
    """A fastexcel reader for an .xlsx / .xls / .ods, after the size checks."""
    import fastexcel

    if path.stat().st_size == 0:
        raise FileProblem(path, "the file is empty (0 bytes)", "Ask the department to export it again.")
    check_workbook_bounds(path)
    try:
        return fastexcel.read_excel(str(path))
    except BaseException as e:  # fastexcel's own errors for every kind of damage, and Rust panics
        raise _workbook_problem(path, e) from None


def read_sheet_grid(reader, path: Path, i: int, name: str) -> tuple[pl.DataFrame, int]:
    """Every cell of one sheet as text (row 0 = the sheet's row 1) and the column of c0."""
    try:
        sheet = reader.load_sheet(i, header_row=None, dtypes="string", skip_rows=0)
        cols = sheet.available_columns()
        offset = cols[0].absolute_index if cols else 0
        raw = sheet.to_polars()
    except BaseException as e:
        raise _workbook_problem(path, e, name) from None
    raw.columns = [f"c{j}" for j in range(raw.width)]
    return raw, offset


def _chart_sheets(path: Path) -> set[int]:
    """Indexes of an .xlsx's chart sheets (no cells; the reader complains on stderr if asked)."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return set()
    try:
        with zipfile.ZipFile(path) as z:
            return {i for i, part in enumerate(_xlsx_sheet_parts(z)) if "/chartsheets/" in part}
    except (zipfile.BadZipFile, OSError, KeyError):
        return set()


def workbook_tables(path: Path, choose) -> tuple[list[Table], list[tuple[int, str, str]], object]:
    """Every sheet of a workbook with a header row ``choose`` recognises, the sheets skipped
    (index, name, why) and the reader. ``choose(rows) -> HeaderChoice | None``."""
    reader = open_workbook(path)
    n = file_rules()["header"]["search_rows"]
    tables: list[Table] = []
    skipped: list[tuple[int, str, str]] = []  # (index, name, why)
    charts = _chart_sheets(path)
    for i, name in enumerate(reader.sheet_names):
        if i in charts:
            skipped.append((i, name, "a chart"))
            continue
        grid, offset = read_sheet_grid(reader, path, i, name)
        _check_width(path, grid, name)
        if grid.height == 0 or grid.width == 0:
            skipped.append((i, name, "empty"))
            continue
        head = [[_cell_text(v) for v in r] for r in grid.head(n).rows()]
        choice = choose(head)
        if choice is None:
            skipped.append((i, name, "no header row recognised in its first rows"))
            continue
        if isinstance(choice, str):  # a reason to skip it
            skipped.append((i, name, choice))
            continue
        body = grid.slice(choice.k + 1)
        tables.append(Table(name, i, choice.cells, choice.k + 1, body, choice.k + 2, offset))
    return tables, skipped, reader
