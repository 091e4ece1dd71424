"""Reading is bounded (``rules/files.yaml`` ``limits``): a workbook that unpacks too far, a sheet
grid far bigger than its XML, a row too wide or a cell too big is refused with one line."""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from typing import cast

import polars as pl

from ..core.errors import FileProblem
from ..core.i18n import _
from .base import Table, limits
from .merges import merge_ranges
from .sheetxml import _col_index, _stream, _xlsx_sheet_names, _xlsx_sheet_parts
from .xls import OLE_SIGNATURE, check_xls, too_many_sheets


def _too_big(path: Path, problem: str, sheet: str | None = None, row: int | None = None) -> FileProblem:
    return FileProblem(
        path,
        _("sheet {sheet!r}: {problem}").format(sheet=sheet, problem=problem) if sheet else problem,
        _("It is not a normal department export; open it in Excel, keep only the list and save it as .xlsx."),
        row=row,
    )


def check_workbook_bounds(path: Path, fmt: str | None = None, merges: dict | None = None) -> None:
    """Refuse, before the heavy read, a workbook whose parts unpack past the limits, a sheet grid
    far bigger than its XML (a few cells very far apart) or a row with too many columns.
    ``fmt``: what the file really is (``xlsx``, ``ods``, ``xls``…), by default its extension.
    ``merges``: a dict that receives each .xlsx sheet part's merged ranges, read in the same pass
    (a sheet's XML is inflated once for both)."""
    lim = limits()
    fmt = fmt or path.suffix.lower().lstrip(".")
    with open(path, "rb") as fh:
        start = fh.read(8)
    if start == OLE_SIGNATURE:  # an .xls (whatever its name): calamine reads it whole, then every sheet
        size = path.stat().st_size
        if size > lim["max_unpacked_mb"] * (1 << 20):
            raise _too_big(
                path,
                _("the workbook is {mb:,.0f} MB (limit {limit} MB)").format(
                    mb=size / (1 << 20), limit=lim["max_unpacked_mb"]
                ),
            )
        check_xls(path, path.read_bytes(), lim["max_cells_per_byte"], lim["max_sheets"])
        return
    if fmt == "xls":
        return  # not an OLE file: the reader says what it is
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # the reader says what is wrong
    with z:
        infos = z.infolist()
        unpacked = sum(i.file_size for i in infos)
        packed = max(1, sum(i.compress_size for i in infos))
        cap = lim["max_unpacked_mb"] * (1 << 20)
        if unpacked > cap or (unpacked > (1 << 24) and unpacked / packed > lim["max_compression_ratio"]):
            raise _too_big(
                path,
                _(
                    "the workbook unpacks to {mb:,.0f} MB (limit {limit} MB, at most {ratio} times its size)"
                ).format(
                    mb=unpacked / (1 << 20), limit=lim["max_unpacked_mb"], ratio=lim["max_compression_ratio"]
                ),
            )
        try:
            if fmt in ("xlsx", "xlsm"):
                parts = _xlsx_sheet_parts(z)
                _check_sheet_count(path, len(parts), lim)
                names = dict(zip(parts, _xlsx_sheet_names(z), strict=False))
                for part, name in names.items():
                    if part in z.NameToInfo:  # a dict: namelist() per sheet was quadratic
                        _check_sheet_xml(path, z, part, name, lim, merges)
            elif fmt == "ods" and "content.xml" in z.NameToInfo:
                _check_ods(path, z, lim)
        except (KeyError, zipfile.BadZipFile, OSError, EOFError, zlib.error):
            return  # a damaged workbook: the reader says what is wrong


_ROW_RE = re.compile(rb'<row\b[^>]*?\br="([0-9]+)"')


_WIDE_RE = re.compile(rb'<c r="([A-Z]{2,})([0-9]+)"')


def _has_cells_without_reference(buf: bytes) -> bool:
    """A ``<c>`` whose first attribute is not its reference (counted at memchr speed)."""
    return b"<c>" in buf or b"<c/>" in buf or buf.count(b"<c ") != buf.count(b'<c r="')


def _check_sheet_xml(
    path: Path, z: zipfile.ZipFile, part: str, sheet: str, lim: dict, merges: dict | None = None
) -> None:
    size = z.getinfo(part).file_size
    state = {"rows": 0, "cols": 26, "noref": False}

    def scan(buf: bytes) -> None:
        rows = _ROW_RE.findall(buf)
        if rows:
            state["rows"] = max(state["rows"], max(map(int, rows)))
        for letters in set(m for m, _row in _WIDE_RE.findall(buf)):
            c = _col_index(letters) + 1
            if c > state["cols"]:
                state["cols"] = c
                if c > lim["max_columns"]:
                    cell = re.search(rb'<c r="' + letters + rb'([0-9]+)"', buf)
                    row = int(cell.group(1)) if cell else None
                    raise _too_big(
                        path,
                        _("a value in column {column} (more than {limit} columns)").format(
                            column=c, limit=lim["max_columns"]
                        ),
                        sheet,
                        row,
                    )
        if not state["noref"] and _has_cells_without_reference(buf):
            state["noref"] = True

    if merges is not None:
        ranges = merges.setdefault(part, [])

        def scan_all(buf: bytes) -> None:
            scan(buf)
            if b"<mergeCell" in buf:
                ranges.extend(merge_ranges(buf))

        _stream(z, part, scan_all, cut=(b"<c ", b"<row", b"<mergeCell"))
    else:
        _stream(z, part, scan)
    if state["noref"]:
        # cells without a reference: count them row by row
        widest = {"n": 0}

        def count(buf: bytes) -> None:
            for seg in buf.split(b"<row"):
                widest["n"] = max(widest["n"], seg.count(b"<c>") + seg.count(b"<c ") + seg.count(b"<c/"))

        _stream(z, part, count)
        if widest["n"] > lim["max_columns"]:
            raise _too_big(
                path,
                _("a row holds {values} values (more than {limit} columns)").format(
                    values=widest["n"], limit=lim["max_columns"]
                ),
                sheet,
            )
        state["cols"] = max(state["cols"], widest["n"])
    grid = state["rows"] * state["cols"]
    if grid > max(1_000_000, lim["max_cells_per_byte"] * size):
        raise _too_big(
            path,
            _(
                "its cells are spread over {rows:,} rows × {columns:,} columns, far more than the values it holds"
            ).format(rows=state["rows"], columns=state["cols"]),
            sheet,
        )


_ODS_REPEAT_RE = re.compile(rb'number-(columns|rows)-repeated="([0-9]+)"((?:(?!/>)[^>])*)(/?)>')


def _check_sheet_count(path: Path, n: int, lim: dict) -> None:
    if n > lim["max_sheets"]:
        raise too_many_sheets(path, n, lim["max_sheets"])


def _check_ods(path: Path, z: zipfile.ZipFile, lim: dict) -> None:
    """More sheets than the limit, or a repeated cell or row that holds a value (not the empty
    filler LibreOffice writes) and would make a huge grid."""
    sheets = [0]

    def scan(buf: bytes) -> None:
        sheets[0] += buf.count(b"<table:table ") + buf.count(b"<table:table>")
        _check_sheet_count(path, sheets[0], lim)
        for m in _ODS_REPEAT_RE.finditer(buf):
            n = int(m.group(2))
            if m.group(1) == b"columns" and n > lim["max_columns"] and not m.group(4):
                raise _too_big(
                    path,
                    _("a value repeated over {n:,} columns (more than {limit})").format(
                        n=n, limit=lim["max_columns"]
                    ),
                )
            if m.group(1) == b"rows" and n > 100_000:
                end = buf.find(b"</table:table-row>", m.end())
                inside = buf[m.end() : end if end > 0 else m.end() + 4096]
                if b"office:value-type" in inside or b"<text:p" in inside:
                    raise _too_big(path, _("a row with values repeated {n:,} times").format(n=n))

    with z.open("content.xml") as fh:
        tail = b""
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            last = buf.rfind(b"<table:table-row")
            body, tail = (buf[:last], buf[last:]) if last > 0 else (buf, b"")
            if len(tail) > (8 << 20):
                body, tail = buf, b""
            scan(body)
        scan(tail)


def _check_width(path: Path, grid: pl.DataFrame, sheet: str) -> None:
    if grid.width > limits()["max_columns"]:
        raise _too_big(
            path,
            _("it has {columns} columns (more than {limit})").format(
                columns=grid.width, limit=limits()["max_columns"]
            ),
            sheet,
        )


def _check_cells(path: Path, table: Table) -> None:
    """Refuse a cell longer than the limit (one line: file, sheet, row)."""
    if table.body.height == 0 or table.body.width == 0:
        return
    cap = int(limits()["max_cell_mb"] * (1 << 20))
    longest = table.body.select(
        pl.max_horizontal(pl.all().str.len_bytes().fill_null(0)).alias("n")
    ).get_column("n")
    if cast(int, longest.max()) > cap:
        i = int(longest.arg_max() or 0)
        problem = _("a cell holds {mb:,.1f} MB of text (more than {limit:g} MB)").format(
            mb=longest[i] / (1 << 20), limit=limits()["max_cell_mb"]
        )
        if table.sheet:
            problem = _("sheet {sheet!r}: {problem}").format(sheet=table.sheet, problem=problem)
        raise FileProblem(
            path,
            problem,
            _(
                "No field of an extract is that long; check the row (an unclosed quote?) and export the file again."
            ),
            row=table.first_row + i,
        )
