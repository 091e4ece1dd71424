"""Merged cells: the ranges as the workbook stores them, and the grid filled from them.

Lists formatted for printing merge the 社区 / 街道 / 户号 cells of consecutive rows; the value is
stored in the top cell only and belongs to every row the range spans. The ranges are read from
the file (``.xlsx`` ``<mergeCell>``, ``.ods`` ``table:number-rows-spanned``, ``.xls``
MERGEDCELLS, see :mod:`.biff`); blanks are never filled by guessing. A range that spans rows
gives its top-left value to the cells below it in its first column; a range that spans only
columns (a title, a group header) is left as it is.
"""

from __future__ import annotations

import re
import zipfile

import polars as pl

from .biff import Range
from .sheetxml import _col_index, _stream

_MERGE_RE = re.compile(rb'<mergeCell\s+ref="([A-Z]{1,3})([0-9]{1,7}):([A-Z]{1,3})([0-9]{1,7})"')


def merge_ranges(buf: bytes) -> list[Range]:
    """The ranges of the ``<mergeCell ref="A3:A5"/>`` tags in a piece of an
    .xlsx sheet's XML (read with the bound checks, :func:`.bounds.check_workbook_bounds`)."""
    out: list[Range] = []
    for m in _MERGE_RE.finditer(buf):
        r0, r1 = int(m.group(2)) - 1, int(m.group(4)) - 1
        c0, c1 = _col_index(m.group(1)), _col_index(m.group(3))
        if (r0 < r1 and c0 <= c1) or (r0 == r1 and c0 < c1):
            out.append((r0, c0, r1, c1))
    return out


_ODS_TAG_RE = re.compile(
    rb"<(/?)table:(table|table-row|table-cell|covered-table-cell)(?=[\s/>])((?:[^>\"]|\"[^\"]*\")*?)(/?)>"
)
_ODS_ATTR_RE = re.compile(rb'table:number-(rows|columns)-(repeated|spanned)="([0-9]{1,7})"')


def ods_merges(z: zipfile.ZipFile) -> dict[int, list[Range]]:
    """Sheet index -> the merged ranges, from an .ods ``content.xml``: the cell
    positions are counted over rows and cells (with their repeats), as the reader places them."""
    if "content.xml" not in z.NameToInfo:
        return {}
    found = {"any": False}

    def probe(buf: bytes) -> None:
        found["any"] = found["any"] or b'-spanned="' in buf

    _stream(z, "content.xml", probe, cut=(b"<table:",))
    if not found["any"]:
        return {}
    out: dict[int, list[Range]] = {}
    st = {"sheet": -1, "row": 0, "col": 0, "row_repeat": 1, "depth": 0}

    def scan(buf: bytes) -> None:
        for m in _ODS_TAG_RE.finditer(buf):
            closing, tag, attrs, empty = m.group(1), m.group(2), m.group(3), m.group(4)
            a = {(k, how): int(v) for k, how, v in _ODS_ATTR_RE.findall(attrs)}
            if tag == b"table":
                if closing:
                    st["depth"] -= 1
                else:
                    st["depth"] += 1
                    if st["depth"] == 1:
                        st.update(sheet=st["sheet"] + 1, row=0, col=0)
            elif st["depth"] != 1:
                continue  # a table inside a cell
            elif tag == b"table-row":
                if closing:
                    st["row"] += st["row_repeat"]
                else:
                    st["col"], st["row_repeat"] = 0, max(1, a.get((b"rows", b"repeated"), 1))
                    if empty:
                        st["row"] += st["row_repeat"]
            elif not closing:  # a cell
                down = a.get((b"rows", b"spanned"), 1)
                across = a.get((b"columns", b"spanned"), 1)
                if (down > 1 or across > 1) and tag == b"table-cell":
                    r, c = st["row"], st["col"]
                    out.setdefault(st["sheet"], []).append((r, c, r + down - 1, c + max(across, 1) - 1))
                st["col"] += max(1, a.get((b"columns", b"repeated"), 1))

    _stream(z, "content.xml", scan, cut=(b"<table:",))
    return out


def fill_merges(grid: pl.DataFrame, ranges: list[Range], col_offset: int) -> pl.DataFrame:
    """``grid`` (row 0 = the sheet's row 1, column c0 = sheet column ``col_offset``) with the
    value of every range that spans rows given to the cells below it in its first column.
    Overlapping ranges (a damaged file) are taken once: the work stays linear in the grid."""
    by_col: dict[int, list[tuple[int, int]]] = {}
    for r0, c0, r1, _c1 in ranges:
        j = c0 - col_offset
        if r1 > r0 and 0 <= j < grid.width and r0 < grid.height:
            by_col.setdefault(j, []).append((r0, min(r1, grid.height - 1)))
    if not by_col:
        return grid
    cols = []
    for j, spans in by_col.items():
        values = grid.get_column(f"c{j}").to_list()
        last = -1
        for r0, r1 in sorted(spans):
            if r0 <= last:
                continue
            top = values[r0]
            for r in range(r0 + 1, r1 + 1):
                values[r] = top
            last = r1
        cols.append(pl.Series(f"c{j}", values, dtype=pl.String))
    return grid.with_columns(cols)


def spread_merged_headers(
    header: list[str], body: pl.DataFrame, ranges: list[Range], row: int, col_offset: int
) -> list[str]:
    """A header cell merged across columns (sheet row ``row``) spans its columns: when exactly one
    column of the span holds data, that column takes the name (the value of a merged cell sits
    in its first column, the data may sit in another). Otherwise the header stays as it is."""
    out = list(header)
    for r0, c0, r1, c1 in ranges:
        if c1 <= c0 or not r0 <= row <= r1:
            continue
        j0, j1 = c0 - col_offset, min(c1 - col_offset, body.width - 1, len(out) - 1)
        if j0 < 0 or j0 >= len(out) or not out[j0] or any(out[j] for j in range(j0 + 1, j1 + 1)):
            continue
        filled = [
            j for j in range(j0, j1 + 1)
            if body.get_column(f"c{j}").str.strip_chars().replace("", None).drop_nulls().len()
        ]  # fmt: skip
        if len(filled) == 1 and filled[0] != j0:
            out[filled[0]], out[j0] = out[j0], ""
    return out
