"""CSV and other delimited text: the encoding (UTF-8 with or without BOM, UTF-16 with BOM,
GBK/GB18030), the delimiter, the records, a file cut off; every cell read as text."""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from pathlib import Path
from typing import NoReturn

import polars as pl

from ..core.config import Source
from ..core.errors import FileProblem
from ..core.i18n import _
from ..core.policy import policy
from .base import Table, _footer_re, _reraise_interrupts, limits
from .headers import choose_header


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """Text and encoding name, or a FileProblem saying what is wrong."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise FileProblem(
                path,
                _("the file starts with a UTF-8 marker (BOM) but its content is not UTF-8"),
                _("Open it in Excel and save it again as 'CSV UTF-8', or as .xlsx."),
            ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise FileProblem(
                path, _("the file claims UTF-16 but cannot be decoded"), _("Save it again as .xlsx.")
            ) from None
    if b"\x00" in data:
        _reject_binary(path, data)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.start >= len(data) - 3:
            raise _cut_in_a_character(path, data) from None
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as e:
        if e.reason == "incomplete multibyte sequence" and e.start >= len(data) - 3:
            raise _cut_in_a_character(path, data) from None
        raise FileProblem(
            path,
            _("the file is neither UTF-8 nor GBK/GB18030 text (an encoding this tool does not read)"),
            _("Open it in Excel and save it as .xlsx or 'CSV UTF-8'."),
        ) from None


def _cut_in_a_character(path: Path, data: bytes) -> FileProblem:
    """Valid text up to a character cut in half at the very end: a truncated copy."""
    return FileProblem(
        path,
        _("the file looks cut off (it ends in the middle of a character)"),
        _("The export or copy was interrupted; export the file again."),
        row=data.count(b"\n") + (0 if data.endswith(b"\n") else 1),
    )


def _reject_binary(path: Path, data: bytes) -> NoReturn:
    """Text never holds NUL bytes: UTF-16 without its BOM, a workbook named .csv, or a damaged file."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FileProblem(
            path,
            _("the file is an Excel workbook, not CSV text"),
            _("Rename it to .xlsx (or .xls) and run again."),
        )
    even, odd = data[0::2].count(0), data[1::2].count(0)
    if max(even, odd) > 4 * min(even, odd):
        raise FileProblem(
            path,
            _("the file is UTF-16 text without a byte-order mark (an encoding this tool does not read)"),
            _("Open it in Excel and save it as .xlsx or 'CSV UTF-8'."),
        )
    raise FileProblem(
        path,
        _("the file holds binary data (NUL bytes), not text: it is damaged or not a CSV"),
        _("Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export."),
    )


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def check_text_bounds(path: Path) -> None:
    """Refuse, before a CSV / TSV / TXT / HTML file is read whole, one that holds binary data in its
    first bytes (a workbook or a disk image named .csv), is larger than ``max_text_mb`` or has a
    line longer than ``max_line_mb`` (the file is streamed 1 MB at a time for that)."""
    lim = limits()
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head and not head.startswith(_UTF16_BOMS):
        _reject_binary(path, head)
    size = path.stat().st_size
    if size > lim["max_text_mb"] * (1 << 20):
        raise FileProblem(
            path,
            _("the file is {mb:,.0f} MB, more than the {limit:g} MB a text extract may be").format(
                mb=size / (1 << 20), limit=lim["max_text_mb"]
            ),
            _("Check it is the right file; a list this long should come as .xlsx, or split by street."),
        )
    cap = int(lim["max_line_mb"] * (1 << 20))
    step = max(1, min(1 << 20, cap))  # a line wholly inside one piece is shorter than the cap
    since = 0  # bytes since the last line break
    line = 1
    with open(path, "rb") as fh:
        while piece := fh.read(step):
            first = min((i for i in (piece.find(b"\n"), piece.find(b"\r")) if i >= 0), default=-1)
            if first < 0:
                since += len(piece)
            else:
                since += first
            if since > cap:
                raise FileProblem(
                    path,
                    _("a line longer than {limit:g} MB (no line break in it)").format(
                        limit=lim["max_line_mb"]
                    ),
                    _(
                        "This is not an extract as departments export them; check it is the right file "
                        "and export it again as .xlsx."
                    ),
                    row=line,
                )
            if first >= 0:
                since = len(piece) - 1 - max(piece.rfind(b"\n"), piece.rfind(b"\r"))
                line += piece.count(b"\n") + piece.count(b"\r") - piece.count(b"\r\n")


def text_of(path: Path, data: bytes) -> tuple[str, str]:
    """The text of a CSV / TSV / TXT file with ``\\n`` newlines, and its encoding. A DOS end-of-file
    mark (Ctrl-Z, 0x1A) at the very end, which old tools append, is removed."""
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = data.rstrip(b"\x1a")
    text, encoding = _decode(path, data)
    text = text.rstrip("\x1a").replace("\r\n", "\n").replace("\r", "\n")
    return text, encoding


def unwrap_text_formula(cell: str) -> str:
    """``="530181…"`` (Excel's way of keeping a value as text in a CSV) -> ``530181…``."""
    if cell.startswith('="') and cell.endswith('"') and len(cell) >= 3:
        return cell[2:-1].replace('""', '"')
    return cell


def unwrap_text_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """:func:`unwrap_text_formula` over every cell of a body, touching only the columns that hold one."""
    cols = [c for c in df.columns if df.get_column(c).str.starts_with('="').any()]
    if not cols:
        return df
    return df.with_columns(
        pl.when(pl.col(c).str.contains(r'^=".*"$'))
        .then(pl.col(c).str.slice(2).str.head(-1).str.replace_all('""', '"', literal=True))
        .otherwise(pl.col(c))
        .alias(c)
        for c in cols
    )


def _sniff_delimiter(first_line: str, path: Path | None = None) -> str:
    if path is not None and path.suffix.lower() == ".tsv" and "\t" in first_line:
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else ","


def _lines(text: str):
    """The lines of ``text`` one at a time, each with its newline (``io.StringIO`` would hold a copy
    of the whole text at four bytes a character)."""
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end + 1
        yield text[pos:end]
        pos = end


def _csv_records(path: Path, text: str, delim: str, n: int) -> tuple[list[list[str]], list[int]]:
    """The first ``n`` records of a CSV and the line each ends on (a quote may span lines)."""
    cap = int(limits()["max_cell_mb"] * (1 << 20))
    csv.field_size_limit(cap)
    reader = csv.reader(_lines(text), delimiter=delim)
    records, ends = [], []
    max_columns = limits()["max_columns"]
    try:
        for rec in reader:
            if len(rec) > max_columns:
                raise FileProblem(
                    path,
                    _("this row has {values} values (more than {limit} columns)").format(
                        values=len(rec), limit=max_columns
                    ),
                    _("This is not an extract as departments export them; ask for the file again as .xlsx."),
                    row=reader.line_num,
                )
            records.append([c.strip() for c in rec])
            ends.append(reader.line_num)
            if len(records) >= n:
                break
    except csv.Error as e:
        raise _unclosed_quote(path, (ends[-1] if ends else 0) + 1, e) from None
    return records, ends


def _unclosed_quote(path: Path, row: int, e: csv.Error) -> FileProblem:
    """The csv module stops at a field past the cell limit: a huge cell, or a quote never closed
    (which swallows the rest of the file) when the field spans lines."""
    return FileProblem(
        path,
        _(
            'a cell starting in this row is longer than {limit:g} MB: a quote (") opened '
            "here is never closed, or the cell really is that long"
        ).format(limit=limits()["max_cell_mb"])
        if "field larger" in str(e)
        else _("this row cannot be read as CSV ({error})").format(error=e),
        _("Open the file in Excel, check this row and save it again as .xlsx or 'CSV UTF-8'."),
        row=row,
    )


def read_csv_tables(path: Path, source: Source | None = None) -> tuple[Table, str]:
    """A CSV as one table. With ``source`` the header row is searched for among the first
    rows; without, it is the first line."""
    check_text_bounds(path)
    data = path.read_bytes()
    if not data.strip():
        raise FileProblem(path, _("the file is empty"), _("Ask the department to export it again."))
    text, encoding = text_of(path, data)
    del data
    first_line = text[: text.find("\n")] if "\n" in text else text
    delim = _sniff_delimiter(first_line[:100_000], path)
    n = policy().file_rules.search_rows if source is not None else 1
    records, ends = _csv_records(path, text, delim, n)
    records = [[unwrap_text_formula(c) for c in r] for r in records]
    k = 0
    if source is not None:
        choice = choose_header(records, source)
        if choice is not None:
            k = choice.k
            records[k] = choice.cells
    header = records[k] if records else []
    header_line = ends[k] if ends else 1
    width = len(header)
    # the text after the header row
    pos = 0
    for _line in range(header_line):
        nxt = text.find("\n", pos)
        if nxt < 0:
            pos = len(text)
            break
        pos = nxt + 1
    body_text = text[pos:]
    del text
    if body_text and not body_text.endswith("\n"):
        last_line = body_text.rsplit("\n", 1)[-1]
        try:
            last = next(csv.reader([last_line], delimiter=delim), [])
        except csv.Error:
            last = []
        footer = _footer_re().search(unicodedata.normalize("NFKC", last[0])) if last else None
        if len(last) < width and footer is None:
            raise FileProblem(
                path,
                _("the file looks cut off: its last line has {values} of {width} columns").format(
                    values=len(last), width=width
                ),
                _("The export or copy was interrupted; export the file again."),
                row=header_line + body_text.count("\n") + 1,
            )
    if not body_text.strip():
        df = pl.DataFrame(schema={f"c{j}": pl.String for j in range(width)})
    else:
        try:
            df = pl.read_csv(
                io.BytesIO(body_text.encode("utf-8")),
                has_header=False,
                infer_schema=False,
                separator=delim,
                new_columns=[f"c{j}" for j in range(width)],
                schema={f"c{j}": pl.String for j in range(width)},
            )
        except pl.exceptions.PolarsError:
            raise _csv_slow_problem(path, body_text, delim, width, header_line) from None
        except BaseException as e:  # a Rust panic (pyo3 PanicException) is a BaseException
            _reraise_interrupts(e)
            raise _csv_slow_problem(path, body_text, delim, width, header_line) from None
    return Table("", 0, header, header_line, unwrap_text_formulas(df), header_line + 1), encoding


def _csv_slow_problem(path: Path, body_text: str, delim: str, width: int, header_line: int) -> FileProblem:
    """Find the offending row with the slow reader, to name it."""
    csv.field_size_limit(int(limits()["max_cell_mb"] * (1 << 20)))
    reader = csv.reader(_lines(body_text), delimiter=delim)
    start, spanning = 1, None  # the first row whose quoted value runs over several lines
    try:
        for r in reader:
            if len(r) > width and any(c.strip() for c in r[width:]):
                return FileProblem(
                    path,
                    _("this row has {values} values but the header has {width} columns").format(
                        values=len(r), width=width
                    ),
                    _("Check for a stray comma or a shifted column, fix the row and run again."),
                    row=header_line + start,
                )
            if spanning is None and reader.line_num > start:
                spanning = start
            start = reader.line_num + 1
    except csv.Error as e:
        return _unclosed_quote(path, header_line + start, e)
    if spanning is not None:
        return FileProblem(
            path,
            _('a quote (") opened in this row is not closed on its line (it runs over the next lines)'),
            _("Open the file in Excel, check this row and save it again as .xlsx or 'CSV UTF-8'."),
            row=header_line + spanning,
        )
    return FileProblem(path, _("the CSV cannot be parsed"), _("Open it in Excel and save it again as .xlsx."))


def read_csv(path: Path) -> tuple[list[str], pl.DataFrame, str]:
    """(header = the first line, body with columns c0…, encoding) of a CSV."""
    table, encoding = read_csv_tables(path)
    return table.header, table.body, encoding
