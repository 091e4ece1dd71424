"""Spreadsheets written as markup, which Excel opens although they are not workbooks:

- an HTML table (what government web systems export as ".xls", and LibreOffice's / Excel's "web
  page"): title rows, ``<th>`` headers, ``colspan`` / ``rowspan``, the charset it declares;
- SpreadsheetML 2003 XML (Excel 2003's "XML Spreadsheet", LibreOffice's "MS Excel 2003 XML"):
  ``Worksheet`` / ``Table`` / ``Row`` / ``Cell`` / ``Data``, ``ss:Index``, ``ss:MergeAcross`` /
  ``ss:MergeDown``, several worksheets.

Each gives :class:`MarkupSheet` grids of text, merged cells filled as in a workbook (a vertical
merge gives its value to every row it spans; a horizontal one stays in its first column). Both are
parsed with the standard library and no network: HTML by ``html.parser`` (character references
only, no entity expansion), XML by expat with any DOCTYPE refused (no entities, no external
references). Both are bounded: the file size by ``max_unpacked_mb`` and the grid by the same rule
as an .xlsx sheet (``max_columns``, ``max_cells_per_byte``).
"""

from __future__ import annotations

import codecs
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..core.errors import FileProblem
from ..core.i18n import _
from .base import limits
from .sniff import SPREADSHEETML_NS
from .text import _decode


@dataclass
class MarkupSheet:
    """One table: ``rows`` (row 0 = the row the user sees first), the cells that hold a number
    ``(row, col)`` (0-based), and its name (a worksheet's, or "" for an unnamed HTML table)."""

    name: str
    rows: list[list[str | None]] = field(default_factory=list)
    numbers: set[tuple[int, int]] = field(default_factory=set)


def _problem(path: Path, what: str) -> FileProblem:
    return FileProblem(
        path,
        what,
        _("It is not a normal department export; open it in Excel, keep only the list and save it as .xlsx."),
    )


class _Grid:
    """Cells placed by row and column, with spans; bounded by the limits."""

    def __init__(self, path: Path, name: str, size: int):
        self.path, self.sheet = path, MarkupSheet(name)
        lim = limits()
        self.max_cols = lim["max_columns"]
        self.max_cells = max(1_000_000, lim["max_cells_per_byte"] * size)
        self.cells = 0
        self.width = 0

    def put(self, r: int, c: int, value: str | None, *, down: int = 0, across: int = 0, number=False) -> None:
        """Place a value; a vertical span (``down`` more rows) repeats it in the rows below, a
        horizontal span (``across`` more columns) leaves the other columns empty. Empty places
        hold "" (so that later cells skip them) until :meth:`done`."""
        if c + across >= self.max_cols:
            raise _problem(
                self.path,
                _("a value in column {column} (more than {limit} columns)").format(
                    column=c + across + 1, limit=self.max_cols
                ),
            )
        rows = self.sheet.rows
        self.width = max(self.width, c + across + 1)
        self.cells += (down + 1) * (across + 1)
        if self.cells > self.max_cells or (r + down + 1) * self.width > self.max_cells:
            raise _problem(
                self.path,
                _("its table spans {rows:,} rows × {columns:,} columns, far more than it holds").format(
                    rows=r + down + 1, columns=self.width
                ),
            )
        while len(rows) <= r + down:
            rows.append([])
        for rr in range(r, r + down + 1):
            row = rows[rr]
            if len(row) <= c + across:
                row.extend([None] * (c + across + 1 - len(row)))
            for cc in range(c, c + across + 1):
                row[cc] = value if (cc == c and value is not None) else ""
            if number:
                self.sheet.numbers.add((rr, c))

    def done(self) -> MarkupSheet:
        self.sheet.rows = [[v or None for v in row] for row in self.sheet.rows]
        return self.sheet

    def taken(self, r: int, c: int) -> bool:
        rows = self.sheet.rows
        return r < len(rows) and c < len(rows[r]) and rows[r][c] is not None


# ---------------------------------------------------------------- HTML

_CHARSET_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def html_text(path: Path, data: bytes) -> tuple[str, str]:
    """The page as text and its encoding: a byte-order mark, else the charset its ``<meta>``
    declares (GB2312 and GBK read as their superset GB18030), else sniffed like a CSV."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        m = _CHARSET_RE.search(data[:8192])
        if m:
            declared = m.group(1).decode("ascii").lower()
            name = "gb18030" if declared in ("gb2312", "gbk", "gb18030", "x-gbk", "cp936") else declared
            try:
                codecs.lookup(name)
                return data.decode(name), name
            except (LookupError, UnicodeDecodeError):
                pass  # an unknown or wrong declaration: read it like a CSV
    return _decode(path, data)


class _TableParser(HTMLParser):
    """Every ``<table>`` of a page (a table inside a cell is a table of its own), cells as text."""

    def __init__(self, path: Path, size: int):
        super().__init__(convert_charrefs=True)
        self.path, self.size = path, size
        self.sheets: list[MarkupSheet] = []
        self.stack: list[dict] = []  # open tables: grid, row, col, the cell being read
        self.caption: str | None = None  # the text of the last <h1>-<h3> (LibreOffice names sheets so)
        self.heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag in ("h1", "h2", "h3") and not self.stack:
            self.heading = []
        elif tag == "table":
            name = self.caption or ""
            self.stack.append({"grid": _Grid(self.path, name, self.size), "r": -1, "cell": None})
            self.caption = None
        elif not self.stack:
            return
        elif tag == "tr":
            self._end_cell()
            t = self.stack[-1]
            t["r"] += 1
            t["c"] = 0
        elif tag in ("td", "th"):
            self._end_cell()
            t = self.stack[-1]
            if t["r"] < 0:  # a cell before any <tr>
                t["r"], t["c"] = 0, 0
            t["cell"] = {"text": [], "down": _span(a.get("rowspan")) - 1, "across": _span(a.get("colspan")) - 1,
                         "number": "sdval" in a or "x:num" in a}  # fmt: skip
        elif tag == "br" and self.stack[-1]["cell"] is not None:
            self.stack[-1]["cell"]["text"].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self.heading is not None:
            self.caption = " ".join("".join(self.heading).split()) or None
            self.heading = None
        elif tag == "table" and self.stack:
            self._end_cell()
            self.sheets.append(self.stack.pop()["grid"].done())
        elif tag in ("td", "th", "tr") and self.stack:
            self._end_cell()

    def handle_data(self, data: str) -> None:
        if self.heading is not None:
            self.heading.append(data)
        if self.stack and self.stack[-1]["cell"] is not None:
            self.stack[-1]["cell"]["text"].append(data)

    def _end_cell(self) -> None:
        t = self.stack[-1]
        cell, t["cell"] = t["cell"], None
        if cell is None:
            return
        grid: _Grid = t["grid"]
        while grid.taken(t["r"], t["c"]):  # a rowspan from above holds this column
            t["c"] += 1
        text = "".join(cell["text"]).replace("\xa0", " ").strip()
        grid.put(
            t["r"], t["c"], text or None, down=cell["down"], across=cell["across"], number=cell["number"]
        )
        t["c"] += cell["across"] + 1


def _span(value: str | None) -> int:
    """A ``rowspan`` / ``colspan`` as browsers read it: digits, at least 1."""
    m = re.match(r"\s*([0-9]{1,7})", value or "")
    return max(1, int(m.group(1))) if m else 1


def read_html(path: Path, data: bytes) -> tuple[list[MarkupSheet], str]:
    """The tables of an HTML page and its encoding."""
    text, encoding = html_text(path, data)
    parser = _TableParser(path, len(data))
    parser.feed(text)
    parser.close()
    while parser.stack:  # a table never closed: what was read is kept
        parser._end_cell()
        parser.sheets.append(parser.stack.pop()["grid"].done())
    if len(parser.sheets) == 1:
        parser.sheets[0].name = ""  # one table: like a CSV, no sheet name
    else:
        for i, s in enumerate(parser.sheets):
            s.name = s.name or f"表{i + 1}"
    return parser.sheets, encoding


# ---------------------------------------------------------------- SpreadsheetML 2003

_SS = SPREADSHEETML_NS + " "  # expat's namespace separator is the space below


def read_spreadsheetml(path: Path, data: bytes) -> list[MarkupSheet]:
    """The worksheets of a SpreadsheetML 2003 file. A DOCTYPE (entities, external references) is
    refused before parsing."""
    if re.search(rb"<!DOCTYPE|<!ENTITY", data[: 1 << 20], re.IGNORECASE) or b"<!ENTITY" in data:
        raise _problem(path, _("the XML file declares a DOCTYPE or entities, which this tool does not read"))
    sheets: list[MarkupSheet] = []
    state: dict = {"grid": None, "r": -1, "c": 0, "cell": None, "text": None}

    def start(tag: str, attrs: dict) -> None:
        local = tag.rsplit(" ", 1)[-1]
        if local == "Worksheet":
            state["grid"] = _Grid(path, attrs.get(_SS + "Name", ""), len(data))
            state["r"] = -1
        elif state["grid"] is None:
            return
        elif local == "Row":
            state["r"] = _index(attrs, state["r"] + 1)
            state["c"] = 0
        elif local == "Cell":
            if _SS + "Index" in attrs:
                state["c"] = _index(attrs, state["c"])
            else:  # skip the columns a merge from the rows above covers
                while state["grid"].taken(max(state["r"], 0), state["c"]):
                    state["c"] += 1
            state["cell"] = {"down": _int(attrs.get(_SS + "MergeDown")), "across": _int(attrs.get(_SS + "MergeAcross")),
                             "number": False, "text": []}  # fmt: skip
        elif local == "Data" and state["cell"] is not None:
            state["cell"]["number"] = attrs.get(_SS + "Type") == "Number"
            state["text"] = state["cell"]["text"]

    def end(tag: str) -> None:
        local = tag.rsplit(" ", 1)[-1]
        grid = state["grid"]
        if local == "Data":
            state["text"] = None
        elif local == "Cell" and grid is not None and state["cell"] is not None:
            cell, state["cell"] = state["cell"], None
            r = max(state["r"], 0)
            value = "".join(cell["text"]).strip()
            grid.put(r, state["c"], value or None, down=cell["down"], across=cell["across"],
                     number=cell["number"] and bool(value))  # fmt: skip
            state["c"] += cell["across"] + 1
        elif local == "Row" and grid is not None:
            state["r"] = max(state["r"], 0)
        elif local == "Worksheet" and grid is not None:
            sheets.append(grid.done())
            state["grid"] = None

    def chars(text: str) -> None:
        if state["text"] is not None:
            state["text"].append(text)

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = lambda *a: _refuse_doctype(path)
    parser.EntityDeclHandler = lambda *a: _refuse_doctype(path)
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise FileProblem(
            path,
            _("the XML spreadsheet is damaged ({error})").format(error=xml.parsers.expat.ErrorString(e.code)),
            _("Open it in Excel and save it again as .xlsx, or ask for a new export."),
            row=e.lineno,
        ) from None
    return sheets


def _refuse_doctype(path: Path):
    raise _problem(path, _("the XML file declares a DOCTYPE or entities, which this tool does not read"))


def _int(v: str | None) -> int:
    return int(v) if v and v.isdigit() and len(v) <= 7 else 0


def _index(attrs: dict, default: int) -> int:
    """``ss:Index`` (1-based) of a Row or Cell that skips ahead, else the next position."""
    v = attrs.get(_SS + "Index")
    return _int(v) - 1 if v and _int(v) >= 1 else default


def markup_sheets(path: Path, fmt: str) -> tuple[list[MarkupSheet], str]:
    """The sheets of an HTML (``fmt`` "html") or SpreadsheetML ("xml") file, and its encoding."""
    size = path.stat().st_size
    cap = limits()["max_unpacked_mb"] * (1 << 20)
    if size > cap:
        raise _problem(
            path,
            _("the file is {mb:,.0f} MB (limit {limit} MB)").format(
                mb=size / (1 << 20), limit=limits()["max_unpacked_mb"]
            ),
        )
    data = path.read_bytes()
    if not data.strip():
        raise FileProblem(path, _("the file is empty"), _("Ask the department to export it again."))
    if fmt == "xml":
        return read_spreadsheetml(path, data), "utf-8"
    return read_html(path, data)
