"""A small, fast .xlsx writer for the sheets people fill in (hand-offs, review, check results).

xlsxwriter costs ~10 µs per cell in Python; a city's hand-offs are millions of
cells. An .xlsx is a zip of a few XML parts, so this writes them directly:
one sheet, inline strings (every cell text, so Excel never turns an ID or a
code into a number, and no cell is ever a formula; cut at Excel's 32,767
characters), numbers where asked, a bold frozen header row, column
widths, an autofilter and drop-down lists (data validation). Excel, WPS,
LibreOffice and calamine/fastexcel read it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl

from .cells import cap_expr

_ILLEGAL = {i: None for i in range(32) if i not in (9, 10, 13)}  # XML 1.0 forbids other C0 controls


def _col(idx: int) -> str:
    s, idx = "", idx + 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def _text(v: str) -> str:
    return escape(v.translate(_ILLEGAL), {'"': "&quot;"})


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
_WB_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""
# Style 0: default; 1: bold header with fill and border; 2: text format (@).
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="2"><font><sz val="11"/><name val="等线"/></font><font><b/><sz val="11"/><name val="等线"/></font></fonts>
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>
<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/><bgColor indexed="64"/></patternFill></fill></fills>
<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>
<border><left style="thin"/><right style="thin"/><top style="thin"/><bottom style="thin"/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="49" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1" applyNumberFormat="1"/>
<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


def _escape_expr(e: pl.Expr) -> pl.Expr:
    return (
        e.str.replace_all(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "")
        .str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
        .str.replace_all('"', "&quot;", literal=True)
    )


def write_xlsx(
    path: Path,
    df: pl.DataFrame,
    *,
    sheet_name: str = "Sheet1",
    widths: dict[int, float] | None = None,
    dropdowns: dict[int, Sequence[str]] | None = None,
    freeze_cols: int = 0,
) -> int:
    """Write one sheet from a frame (its column names are the header); returns the data rows.

    Numeric columns become number cells, everything else text cells. The sheet XML
    is built column-wise by polars, so a million cells take about a second.
    ``dropdowns`` maps a column index to its allowed values.
    """
    header = df.columns
    ncols = len(header)
    head = "".join(
        f'<c r="{_col(j)}1" s="1" t="inlineStr"><is><t>{_text(str(h))}</t></is></c>'
        for j, h in enumerate(header)
    )
    n = df.height
    body = ""
    if n:
        r = pl.int_range(2, n + 2, dtype=pl.Int64).cast(pl.String)
        cells = []
        for j, c in enumerate(header):
            col = pl.col(c)
            ref = pl.lit(f'<c r="{_col(j)}') + r
            if df.schema[c].is_numeric():
                cell = ref + pl.lit('"><v>') + col.cast(pl.String) + pl.lit("</v></c>")
                cells.append(pl.when(col.is_null()).then(pl.lit("")).otherwise(cell))
            else:
                text = _escape_expr(cap_expr(col.cast(pl.String)))
                cell = ref + pl.lit('" s="2" t="inlineStr"><is><t>') + text + pl.lit("</t></is></c>")
                cells.append(
                    pl.when(col.is_null() | (col.cast(pl.String) == "")).then(pl.lit("")).otherwise(cell)
                )
        rows_xml = df.select(
            pl.concat_str([pl.lit('<row r="') + r + pl.lit('">'), *cells, pl.lit("</row>")]).alias("x")
        )
        body = rows_xml.select(pl.col("x").str.join("")).item()
    out = [f'<row r="1">{head}</row>', body]
    last_row = n + 1
    cols = [_col(j) for j in range(ncols)]
    widths = widths or {}
    col_xml = "".join(
        f'<col min="{j + 1}" max="{j + 1}" width="{widths.get(j, 14)}" customWidth="1"/>'
        for j in range(ncols)
    )
    pane = (
        f'<pane xSplit="{freeze_cols}" ySplit="1" topLeftCell="{_col(freeze_cols)}2" activePane="bottomRight" state="frozen"/>'
        if freeze_cols
        else '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    )
    validations = ""
    if dropdowns and n:
        items = []
        for j, allowed in dropdowns.items():
            formula = _text('"' + ",".join(allowed) + '"')
            items.append(
                f'<dataValidation type="list" allowBlank="1" showErrorMessage="1" '
                f'sqref="{cols[j]}2:{cols[j]}{last_row}"><formula1>{formula}</formula1></dataValidation>'
            )
        validations = f'<dataValidations count="{len(items)}">{"".join(items)}</dataValidations>'
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<dimension ref="A1:{_col(ncols - 1)}{last_row}"/>'
        f'<sheetViews><sheetView workbookViewId="0">{pane}</sheetView></sheetViews>'
        f"<cols>{col_xml}</cols><sheetData>{''.join(out)}</sheetData>"
        f'<autoFilter ref="A1:{_col(ncols - 1)}{last_row}"/>{validations}</worksheet>'
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{_text(sheet_name)}" sheetId="1" r:id="rId1"/></sheets>'
        '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"'{_text(sheet_name)}'!$A$1:${_col(ncols - 1)}${last_row}</definedName></definedNames></workbook>"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", workbook)
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        z.writestr("xl/styles.xml", _STYLES)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    return n
