"""A small, fast .xlsx writer for the sheets people fill in (hand-offs, review, check results).

xlsxwriter costs ~10 µs per cell in Python; a city's hand-offs are millions of
cells. An .xlsx is a zip of a few XML parts, so this writes them directly, the
sheet XML built column-wise by polars: one or more sheets, text as shared strings
(every cell text, so Excel never turns an ID or a code into a number; a text cell
is never a formula), numbers where asked, a bold frozen header row, column
widths, an autofilter and drop-down lists (data validation). The package has the
parts Excel itself writes (a theme, a shared-strings table, document properties),
so Excel opens it without "repairing" it and does not rewrite it on save
(``openxml-audit`` reports no error and no warning; tests/test_xlsx.py). Excel, WPS,
LibreOffice and calamine/fastexcel read it.

A sheet with a :class:`PrintSetup` prints ready for a visit: A4 landscape, every
column fitted to the page width (``fitToWidth=1``, as many pages down as needed),
the header row repeated on every page (``_xlnm.Print_Titles``), grid lines, long
columns wrapped, and a footer (street, community, 第 N 页 共 M 页).
:func:`fit_widths` sizes the columns to their text, a CJK character counting as two.
"""

from __future__ import annotations

import itertools
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl

from .cells import cap_expr
from .i18n import _

_ILLEGAL = {i: None for i in range(32) if i not in (9, 10, 13)}  # XML 1.0 forbids other C0 controls


def _col(idx: int) -> str:
    s, idx = "", idx + 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def _text(v: str) -> str:
    return escape(v.translate(_ILLEGAL), {'"': "&quot;"})


def _content_types(n: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(n)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        f"{sheets}"
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/xl/theme/theme1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    )


_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>
</Relationships>"""

_CORE = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>kuomian</dc:creator></cp:coreProperties>"""

_APP = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>kuomian</Application></Properties>"""

# The default Office theme (as xlsxwriter and Excel write it): Excel repairs a workbook without one.
_THEME = (Path(__file__).parent / "xlsx_theme.xml").read_text(encoding="utf-8")


def _wb_rels(n: int) -> str:
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    sheets = "".join(
        f'<Relationship Id="rId{i + 1}" Type="{rel}/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
        for i in range(n)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'{sheets}<Relationship Id="rId{n + 1}" Type="{rel}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId{n + 2}" Type="{rel}/theme" Target="theme/theme1.xml"/>'
        f'<Relationship Id="rId{n + 3}" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    )


# Style 0: default; 1: bold header with fill and border (wrapped); 2: text format (@);
# 3: text format, wrapped, top-aligned (long columns of a printed sheet); 4: numbers, top-aligned.
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="2"><font><sz val="11"/><name val="等线"/></font><font><b/><sz val="11"/><name val="等线"/></font></fonts>
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>
<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/><bgColor indexed="64"/></patternFill></fill></fills>
<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>
<border><left style="thin"/><right style="thin"/><top style="thin"/><bottom style="thin"/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="49" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1" applyNumberFormat="1" applyAlignment="1"><alignment vertical="center" wrapText="1"/></xf>
<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>
<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1"><alignment vertical="top"/></xf></cellXfs>
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


_CJK = r"[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6]"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


LINE_HEIGHT = 15  # points per line of 11-point text


def _width_expr(col: pl.Expr) -> pl.Expr:
    """display_width as a polars expression, without a regular expression: in UTF-8 a CJK
    character is 3 bytes and an ASCII one 1, so (bytes + characters) / 2 counts them 2 and 1."""
    c = col.cast(pl.String)
    return (c.str.len_bytes() + c.str.len_chars()) / 2


def _per_line(width: float) -> float:
    """Display columns that fit on one line of a column this wide (measured in LibreOffice's PDF)."""
    return max(1.0, (width - 1) * 0.85)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a sheet: a CJK (full-width) character counts as two."""
    return len(text) + len(re.findall(_CJK, text))


def fit_widths(
    df: pl.DataFrame, *, floor: float = 4, cap: float = 40, caps: Mapping[int, float] | None = None
) -> dict[int, float]:
    """Column widths (Excel units) that fit the header and the longest value, CJK counted as two.

    A column is at most ``cap`` wide (``caps`` per column index): longer text wraps.
    """
    caps = caps or {}
    if df.height:
        longest = df.select([_width_expr(pl.col(c)).max().alias(c) for c in df.columns]).row(0)
    else:
        longest = (0,) * df.width
    out = {}
    for j, (c, n) in enumerate(zip(df.columns, longest, strict=True)):
        want = max(display_width(str(c)) + 2, (n or 0) + 2, floor)  # +2: the filter arrow and a margin
        out[j] = float(min(math.ceil(want), caps.get(j, cap)))
    return out


def sheet_name(name: str, taken: set[str]) -> str:
    r"""A valid, unique sheet name (no []:*?/\, at most 31 characters)."""
    base = _SHEET_BAD.sub("_", name or "未命名").strip("'") or "未命名"
    out, k = base[:31], 2
    while out.lower() in {t.lower() for t in taken}:
        suffix = f"({k})"
        out, k = base[: 31 - len(suffix)] + suffix, k + 1
    taken.add(out)
    return out


def _hf(text: str) -> str:
    """Text inside a header/footer: & is a code there, so a literal one is doubled."""
    return text.replace("&", "&&")


@dataclass(frozen=True)
class PrintSetup:
    """How a sheet prints: A4 landscape, fitted to one page wide, header row on every page."""

    footer_left: str = ""  # e.g. the street
    footer_center: str = ""  # e.g. the community
    wrap: frozenset[int] = frozenset()  # columns whose text wraps (long addresses, measures)
    landscape: bool = True

    def footer(self) -> str:
        return f"&L{_hf(self.footer_left)}&C{_hf(self.footer_center)}&R第 &P 页 共 &N 页"


@dataclass
class Sheet:
    """One sheet of a workbook (see :func:`write_xlsx` for the meaning of the fields)."""

    name: str
    df: pl.DataFrame
    widths: dict[int, float] | None = None
    dropdowns: dict[int, Sequence[str]] | None = None
    freeze_cols: int = 0
    print_setup: PrintSetup | None = None
    autofilter: bool = True
    cells: pl.DataFrame | None = None  # this sheet's rows as built by row_cells (to share them)
    validations: Mapping[str, Sequence[str]] | None = None  # drop-downs by column name

    def drop_downs(self) -> dict[int, Sequence[str]]:
        """``dropdowns`` and ``validations`` together, by column index."""
        out = dict(self.dropdowns or {})
        for col, allowed in (self.validations or {}).items():
            if col not in self.df.columns:
                raise ValueError(
                    _("a drop-down list names the column {col!r}, which the sheet does not have").format(
                        col=col
                    )
                )
            out[self.df.columns.index(col)] = allowed
        return out


_ROW_CELLS_CALLS = itertools.count()


def _cell_name(j: int) -> str:
    return f"c{j}"


def row_cells(
    df: pl.DataFrame, wrap: frozenset[int] = frozenset(), widths: dict[int, float] | None = None
) -> pl.DataFrame:
    """Per data row of ``df``: its cells as they are stored (``c0``, ``c1``, …) and its height in
    points (``ht``; null: the default height).

    A text cell is the text cut at Excel's 32,767 characters and rid of the control characters
    XML forbids, null when blank; a number stays a number. :func:`write_workbook` turns the
    texts into shared strings and writes the XML. Built once, the same rows can go into several
    sheets (a street's full sheet and its community sheets): ``_src`` (this call) and ``_row``
    (the row's place in ``df``) let the writer render each row once however many sheets show
    it. Wrapped rows get the height of their longest wrapped text: Excel and LibreOffice do not
    grow a row when they open a file.
    """
    header = df.columns
    cells = []
    for j, c in enumerate(header):
        col = pl.col(c)
        if df.schema[c].is_numeric():
            cells.append(col.alias(_cell_name(j)))
        else:
            text = cap_expr(col.cast(pl.String)).str.replace_all(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "")
            cells.append(pl.when(text != "").then(text).alias(_cell_name(j)))
    text_wrap = [j for j in sorted(wrap) if not df.schema[header[j]].is_numeric()]
    if text_wrap:
        widths = widths or {}
        lines = pl.max_horizontal(
            [
                (_width_expr(pl.col(header[j])) / _per_line(widths.get(j, 14))).ceil().fill_null(1)
                for j in text_wrap
            ]
            + [pl.lit(1.0)]
        ).cast(pl.Int64)
        ht: pl.Expr = pl.when(lines > 1).then(lines * LINE_HEIGHT)
    else:
        ht = pl.lit(None, dtype=pl.Int64)
    return df.select(
        *cells,
        ht.cast(pl.Int64).alias("ht"),
        pl.lit(next(_ROW_CELLS_CALLS), dtype=pl.UInt64).alias("_src"),
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
    )


def _text_cols(rows: pl.DataFrame, ncols: int) -> list[int]:
    schema = rows.schema
    return [j for j in range(ncols) if schema[_cell_name(j)] == pl.String]


def _render(
    sheets: Sequence[Sheet], rows: Sequence[pl.DataFrame]
) -> tuple[list[list[int]], list[pl.DataFrame], str]:
    """Every sheet's cells as XML, and the workbook's shared-strings table.

    Returns per sheet the headers' shared-string indexes and a frame aligned with its rows:
    ``xml`` (the row's cells) and ``ht``; and ``sharedStrings.xml`` (every distinct header and
    text once, in order of first use). Sheets whose rows one :func:`row_cells` call built (a
    street and its communities) are rendered together: each row once (``_row``), then gathered.
    """
    groups: dict[tuple, list[int]] = {}
    for i, (sh, r) in enumerate(zip(sheets, rows, strict=True)):
        wrap = sh.print_setup.wrap if sh.print_setup else frozenset()
        key = (r["_src"][0], wrap, tuple(r.schema.items())) if r.height else ("empty", i)
        groups.setdefault(key, []).append(i)
    bases: list[pl.DataFrame] = []
    for idx in groups.values():
        if len(idx) == 1:
            bases.append(rows[idx[0]])
        else:
            bases.append(pl.concat([rows[i] for i in idx]).unique("_row", keep="first", maintain_order=True))
    layouts = [
        _text_cols(base, sheets[idx[0]].df.width) for base, idx in zip(bases, groups.values(), strict=True)
    ]

    # one hashing pass over the headers and the distinct rows' texts gives the indexes
    pieces = [pl.Series([str(h) for h in sh.df.columns], dtype=pl.String) for sh in sheets]
    for base, texts in zip(bases, layouts, strict=True):
        pieces.extend(base[_cell_name(j)] for j in texts)
    every = pl.concat(pieces, rechunk=True)
    strings = every.drop_nulls().unique(maintain_order=True)
    ranks = every.replace_strict(
        strings, pl.int_range(0, strings.len(), dtype=pl.UInt32, eager=True), default=None
    )
    heads: list[list[int]] = []
    at = 0
    for sh in sheets:
        heads.append(ranks.slice(at, sh.df.width).to_list())
        at += sh.df.width
    count = at  # references to the table: the headers, then every text cell of every sheet

    # The cells carry no reference (``r`` is optional: a cell without one takes the next
    # column), so a blank cell is an empty <c/>.
    out: dict[int, pl.DataFrame] = {}
    for base, texts, idx in zip(bases, layouts, groups.values(), strict=True):
        sh = sheets[idx[0]]
        wrap = sh.print_setup.wrap if sh.print_setup else frozenset()
        cells = []
        for j in range(sh.df.width):
            col = pl.col(_cell_name(j))
            if j in texts:
                style = "3" if j in wrap else "2"
                cell = pl.lit(f'<c s="{style}" t="s"><v>') + col.cast(pl.String) + pl.lit("</v></c>")
                cells.append(pl.when(col.is_null()).then(pl.lit(f'<c s="{style}"/>')).otherwise(cell))
            else:
                cell = pl.lit('<c s="4"><v>') + col.cast(pl.String) + pl.lit("</v></c>")
                cells.append(pl.when(col.is_null()).then(pl.lit("<c/>")).otherwise(cell))
        replaced = []
        for j in texts:
            replaced.append(ranks.slice(at, base.height).alias(_cell_name(j)))
            at += base.height
        indexed = base.with_columns(replaced) if replaced else base
        rendered = indexed.select("_row", "ht", pl.concat_str(cells).alias("xml"))
        for i in idx:
            r = rows[i]
            count += sum(r.height - r[_cell_name(j)].null_count() for j in texts)
            same = len(idx) == 1 or r.height == base.height and r["_row"].equals(base["_row"])
            out[i] = (
                rendered
                if same
                else r.select("_row").join(rendered, on="_row", how="left", maintain_order="left")
            )
    t = pl.col("s")
    # leading/trailing blanks and line breaks are kept only with xml:space="preserve"
    keep = t.str.contains(r"^\s|\s$|\n")
    si = (
        pl.when(keep).then(pl.lit('<si><t xml:space="preserve">')).otherwise(pl.lit("<si><t>"))
        + _escape_expr(t)
        + pl.lit("</t></si>")
    )
    body = pl.DataFrame({"s": strings}).select(si.str.join("")).item() if strings.len() else ""
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{count}" uniqueCount="{strings.len()}">{body}</sst>'
    )
    return heads, [out[i] for i in range(len(sheets))], xml


def _validation_formula(allowed: Sequence[str]) -> str:
    """A drop-down's list as a formula: "a,b,c", quotes doubled; Excel allows 255 characters."""
    if any("," in a for a in allowed):
        raise ValueError(
            _("a drop-down value may not contain a comma: {values!r}").format(values=list(allowed))
        )
    formula = '"' + ",".join(a.replace('"', '""') for a in allowed) + '"'
    if len(formula) > 257:
        raise ValueError(
            _("a drop-down list is longer than Excel's 255 characters: {values!r}").format(
                values=list(allowed)
            )
        )
    return _text(formula)


def _sheet_xml(sh: Sheet, rendered: pl.DataFrame, head_ids: list[int], first: bool = False) -> str:
    """One worksheet's XML; ``rendered`` holds its rows' cells (``xml``) and heights (``ht``)."""
    df = sh.df
    header = df.columns
    ncols = len(header)
    head = "".join(f'<c r="{_col(j)}1" s="1" t="s"><v>{k}</v></c>' for j, k in enumerate(head_ids))
    n = df.height
    body = ""
    if n:
        r = pl.int_range(2, n + 2, dtype=pl.Int64).cast(pl.String)
        row_open = (
            pl.when(pl.col("ht").is_null())
            .then(pl.lit('<row r="') + r + pl.lit('">'))
            .otherwise(
                pl.lit('<row r="')
                + r
                + pl.lit('" ht="')
                + pl.col("ht").cast(pl.String)
                + pl.lit('" customHeight="1">')
            )
        )
        body = rendered.select(pl.concat_str([row_open, pl.col("xml"), pl.lit("</row>")]).str.join("")).item()
    widths = sh.widths or {}
    head_lines = max(
        [math.ceil(display_width(str(h)) / _per_line(widths.get(j, 14))) for j, h in enumerate(header)] + [1]
    )
    head_ht = f' ht="{head_lines * LINE_HEIGHT}" customHeight="1"' if head_lines > 1 else ""
    out = [f'<row r="1"{head_ht}>{head}</row>', body]
    last_row = n + 1
    cols = [_col(j) for j in range(ncols)]
    col_xml = "".join(
        f'<col min="{j + 1}" max="{j + 1}" width="{widths.get(j, 14)}" customWidth="1"/>'
        for j in range(ncols)
    )
    freeze_cols = sh.freeze_cols
    pane = (
        f'<pane xSplit="{freeze_cols}" ySplit="1" topLeftCell="{_col(freeze_cols)}2" activePane="bottomRight" state="frozen"/>'
        f'<selection pane="bottomRight" activeCell="{_col(freeze_cols)}2" sqref="{_col(freeze_cols)}2"/>'
        if freeze_cols
        else '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
    )
    validations = ""
    drop_downs = sh.drop_downs()
    if drop_downs and n:
        items = []
        for j, allowed in sorted(drop_downs.items()):
            items.append(
                f'<dataValidation type="list" allowBlank="1" showErrorMessage="1" '
                f'sqref="{cols[j]}2:{cols[j]}{last_row}"><formula1>{_validation_formula(allowed)}</formula1>'
                "</dataValidation>"
            )
        validations = f'<dataValidations count="{len(items)}">{"".join(items)}</dataValidations>'
    sheet_pr, printing = "", ""
    ps = sh.print_setup
    if ps is not None:
        # Element order is fixed by the schema: sheetPr first; printOptions, pageMargins,
        # pageSetup, headerFooter after dataValidations.
        sheet_pr = '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        orientation = "landscape" if ps.landscape else "portrait"
        printing = (
            '<printOptions gridLines="1" horizontalCentered="1"/>'
            '<pageMargins left="0.4" right="0.4" top="0.5" bottom="0.6" header="0.3" footer="0.3"/>'
            f'<pageSetup paperSize="9" orientation="{orientation}" fitToWidth="1" fitToHeight="0"/>'
            f"<headerFooter><oddFooter>{_text(ps.footer())}</oddFooter></headerFooter>"
        )
    else:
        printing = '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    selected = ' tabSelected="1"' if first else ""
    autofilter = f'<autoFilter ref="A1:{_col(ncols - 1)}{last_row}"/>' if sh.autofilter else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f"{sheet_pr}"
        f'<dimension ref="A1:{_col(ncols - 1)}{last_row}"/>'
        f'<sheetViews><sheetView workbookViewId="0"{selected}>{pane}</sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{col_xml}</cols><sheetData>{''.join(out)}</sheetData>"
        f"{autofilter}{validations}{printing}</worksheet>"
    )


def write_workbook(path: Path, sheets: Sequence[Sheet]) -> int:
    """Write several sheets into one workbook (the first is the one that opens); returns the data rows."""
    if not sheets:
        raise ValueError(_("a workbook needs at least one sheet"))
    names: list[str] = []
    defined: list[str] = []
    taken: set[str] = set()
    for i, sh in enumerate(sheets):
        name = sheet_name(sh.name, taken)
        names.append(name)
        q = "'" + _text(name.replace("'", "''")) + "'"
        last = _col(sh.df.width - 1)
        if sh.autofilter:
            defined.append(
                f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                f"{q}!$A$1:${last}${sh.df.height + 1}</definedName>"
            )
        if sh.print_setup is not None:
            defined.append(
                f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{q}!$1:$1</definedName>'
            )
    sheet_list = "".join(
        f'<sheet name="{_text(nm)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, nm in enumerate(names)
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{sheet_list}</sheets>"
        + (f"<definedNames>{''.join(defined)}</definedNames>" if defined else "")
        + "</workbook>"
    )
    rows = [
        sh.cells
        if sh.cells is not None
        else row_cells(sh.df, sh.print_setup.wrap if sh.print_setup else frozenset(), sh.widths)
        for sh in sheets
    ]
    heads, rendered, sst_xml = _render(sheets, rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", _content_types(len(sheets)))
        z.writestr("_rels/.rels", _RELS)
        z.writestr("docProps/core.xml", _CORE)
        z.writestr("docProps/app.xml", _APP)
        z.writestr("xl/workbook.xml", workbook)
        z.writestr("xl/_rels/workbook.xml.rels", _wb_rels(len(sheets)))
        z.writestr("xl/styles.xml", _STYLES)
        z.writestr("xl/theme/theme1.xml", _THEME)
        for i, sh in enumerate(sheets):
            xml = _sheet_xml(sh, rendered[i], heads[i], first=i == 0)
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml", xml)
        z.writestr("xl/sharedStrings.xml", sst_xml)
    return sum(sh.df.height for sh in sheets[:1])


def write_xlsx(
    path: Path,
    df: pl.DataFrame,
    *,
    sheet_name: str = "Sheet1",
    widths: dict[int, float] | None = None,
    dropdowns: dict[int, Sequence[str]] | None = None,
    freeze_cols: int = 0,
    print_setup: PrintSetup | None = None,
    validations: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """Write one sheet from a frame (its column names are the header); returns the data rows.

    Numeric columns become number cells, everything else text cells. The sheet XML
    is built column-wise by polars, so a million cells take about a second.
    ``dropdowns`` (by column index) and ``validations`` (by column name) give a column a
    drop-down list of its allowed values; ``print_setup`` makes it print-ready.
    """
    sheet = Sheet(sheet_name, df, widths, dropdowns, freeze_cols, print_setup, validations=validations)
    return write_workbook(path, [sheet])
