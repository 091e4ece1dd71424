"""Workbooks (.xlsx, .xlsm, .xls, .ods) through fastexcel: every sheet as a grid of text, the
header row chosen per sheet, chart sheets skipped, and which ID cells were stored as numbers."""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

import polars as pl

from ..core.errors import FileProblem
from ..core.i18n import _
from ..core.policy import policy
from .base import Table, _cell_text, _reraise_interrupts
from .biff import xls_merges
from .bounds import _check_width, check_workbook_bounds
from .merges import fill_merges, ods_merges, spread_merged_headers
from .sheetxml import _col_letter, _stream, _xlsx_sheet_parts

_TEXT_TYPE_RE = re.compile(rb'\bt="(?:s|str|inlineStr|b|e)"')


WORKBOOK_FORMATS = (".xlsx", ".xlsm", ".xls", ".ods")


class XlsxParts:
    """An .xlsx's zip, opened once for one read: its sheet parts (in fastexcel's order), chart
    sheets, merged ranges and number cells are all looked up in it (reopening the zip per sheet
    made a workbook of 5,000 sheets take minutes)."""

    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path)
        try:
            self.parts = _xlsx_sheet_parts(self.zip)
        except (zipfile.BadZipFile, OSError, KeyError, UnicodeDecodeError):
            self.parts = []

    def part(self, index: int) -> str | None:
        """The XML part of sheet ``index``, when the zip holds it."""
        if index < len(self.parts) and self.parts[index] in self.zip.NameToInfo:
            return self.parts[index]
        return None

    def charts(self) -> set[int]:
        return {i for i, part in enumerate(self.parts) if "/chartsheets/" in part}

    def close(self) -> None:
        self.zip.close()


def _open_parts(path: Path, fmt: str) -> XlsxParts | None:
    if fmt not in ("xlsx", "xlsm"):
        return None
    try:
        return XlsxParts(path)
    except (zipfile.BadZipFile, OSError):
        return None  # the reader says what is wrong


def numeric_cells(
    path: Path, sheet_index: int, col_indices: list[int], parts: XlsxParts | None = None
) -> set[int]:
    """Row numbers (as the user sees them) whose cell in one of these sheet columns (0 = A) is
    stored as a number, in an .xlsx: the cell types are read from the sheet XML (streamed, regex
    only); fastexcel returns a number cell as text indistinguishable from a typed one."""
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

    own = parts is None
    try:
        parts = parts or XlsxParts(path)
        try:
            part = parts.part(sheet_index)
            if part is not None:
                _stream(parts.zip, part, scan)
        finally:
            if own:
                parts.close()
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, zlib.error):
        return set()
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
    problem = _(
        "the workbook cannot be read ({error}: it is damaged, truncated or not really a spreadsheet)"
    ).format(error=type(e).__name__)
    if sheet:
        problem = _("sheet {sheet!r}: {problem}").format(sheet=sheet, problem=problem)
    return FileProblem(
        path,
        problem,
        _("Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export."),
    )


def open_workbook(path: Path, fmt: str | None = None, merges: dict | None = None):
    """A fastexcel reader for an .xlsx / .xls / .ods, after the size checks. ``fmt``: what the
    file really is (:func:`.sniff.real_format`) when its extension says otherwise; ``merges``
    receives an .xlsx's merged ranges per sheet part (read with the size checks)."""
    import fastexcel

    if path.stat().st_size == 0:
        raise FileProblem(path, _("the file is empty (0 bytes)"), _("Ask the department to export it again."))
    fmt = fmt or path.suffix.lower().lstrip(".")
    check_workbook_bounds(path, fmt, merges)
    try:
        if fmt != path.suffix.lower().lstrip("."):  # the reader goes by the extension: give it the bytes
            return fastexcel.read_excel(path.read_bytes())
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


def workbook_tables(
    path: Path, choose, fmt: str | None = None
) -> tuple[list[Table], list[tuple[int, str, str]], object, XlsxParts | None]:
    """Every sheet of a workbook with a header row ``choose`` recognises, the sheets skipped
    (index, name, why), the reader and the open .xlsx parts (the caller closes them).
    ``choose(rows) -> HeaderChoice | None``. Merged ranges that span rows are filled first."""
    fmt = fmt or path.suffix.lower().lstrip(".")
    xlsx_merges: dict[str, list] = {}
    reader = open_workbook(path, fmt, xlsx_merges)
    parts = _open_parts(path, fmt)
    try:
        charts = parts.charts() if parts else set()
        ods = _ods_merges(path) if fmt == "ods" else {}
        xls = xls_merges(path) if fmt == "xls" else {}

        def sheets():
            for i, name in enumerate(reader.sheet_names):
                if i in charts:
                    yield i, name, _("a chart"), 0, None, []
                    continue
                grid, offset = read_sheet_grid(reader, path, i, name)
                part = parts.part(i) if parts else None
                ranges = xlsx_merges.get(part, []) if part else ods.get(i) or xls.get(name) or []
                yield i, name, fill_merges(grid, ranges, offset) if ranges else grid, offset, None, ranges

        tables, skipped = grid_tables(path, sheets(), choose)
    except BaseException:
        if parts:
            parts.close()
        raise
    return tables, skipped, reader, parts


def _ods_merges(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as z:
            return ods_merges(z)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, zlib.error):
        return {}


def grid_tables(path: Path, sheets, choose) -> tuple[list[Table], list[tuple[int, str, str]]]:
    """The tables of ``sheets`` — (index, name, grid or why it is skipped, column of c0, number
    cells or None, merged ranges) — whose header row ``choose`` recognises, and the sheets skipped."""
    n = policy().file_rules.search_rows
    tables: list[Table] = []
    skipped: list[tuple[int, str, str]] = []  # (index, name, why)
    for i, name, grid, offset, numbers, ranges in sheets:
        if isinstance(grid, str):
            skipped.append((i, name, grid))
            continue
        _check_width(path, grid, name)
        if grid.height == 0 or grid.width == 0:
            skipped.append((i, name, _("empty")))
            continue
        head = [[_cell_text(v) for v in r] for r in grid.head(n).rows()]
        choice = choose(head)
        if choice is None:
            skipped.append((i, name, _("no header row recognised in its first rows")))
            continue
        if isinstance(choice, str):  # a reason to skip it
            skipped.append((i, name, choice))
            continue
        body = grid.slice(choice.k + 1)
        if ranges:
            choice.cells = spread_merged_headers(choice.cells, body, ranges, choice.k, offset)
        cells = None if numbers is None else {(r + 1, c) for r, c in numbers if r > choice.k}
        tables.append(Table(name, i, choice.cells, choice.k + 1, body, choice.k + 2, offset, cells))
    return tables, skipped
