"""Stage 1 — load: find the extracts, recognise each one, read it as text.

Entry point: :func:`load`. For every file in SOURCES_DIR it decides which
source it is (``--source NAME=PATH`` first, then the file-name globs, then the
headers), reads every sheet of a workbook (``.xlsx``, ``.xls``, ``.ods``), a CSV
in any encoding or a Parquet file, with every cell as text (an ID never passes
through a number). In each sheet the header row is the one among the first rows
(``rules/files.yaml``) that names the most columns of the source; title rows and
merged group headers above it are not data. Headers map to canonical field
names through the aliases in ``sources/*.yaml``; every row keeps its file, its
sheet and the row number the user sees there. Sheets without a recognisable
header, and files that are not extracts, are listed, never skipped silently.
Reading is bounded (``rules/files.yaml`` ``limits``): a workbook that unpacks
too far, a row too wide or a cell too big is refused before the heavy read.

The result is a :class:`LoadReport` that holds, per source, the frames read
(one per file, its sheets one after the other) until the standardise stage
takes them: the raw text goes straight from the reader to the standardiser,
never copied into DuckDB (a quarantined row's raw values are kept there by
standardise, in ``std_quarantine_raw``).
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import io
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, cast

import polars as pl

from ..core.config import Field, Source, defaults_home, home, load_rules, load_sources, normalise_header
from ..core.errors import FileProblem, KuomianError
from ..core.ids import redact_ids

READABLE = {".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods", ".parquet"}
ROW_COL = "_row"
EXTRA_COL = "_extra"
NUMERIC_ID_COL = "_id_numeric"


@dataclass
class SheetInfo:
    """One sheet of a workbook (name "" for a CSV or Parquet file): read, or skipped and why."""

    name: str
    index: int = 0
    header_row: int = 0  # the row the header was found in (1 = first)
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    numeric_ids: int = 0  # ID cells stored as numbers (Excel-damaged)
    skipped: str | None = None


@dataclass
class FileInfo:
    path: Path
    source: str | None
    how: str  # override | glob | headers | unrecognised | ignored | skipped
    format: str = ""
    encoding: str = ""
    rows: int = 0
    size: int = 0
    sha256: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # original header -> canonical field
    extra_columns: list[str] = field(default_factory=list)
    problem: str | None = None  # set when a bad optional file was skipped
    shown_as: str = ""  # set by recognise() when the file name alone is ambiguous
    sheets: list[SheetInfo] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The name every output (``file`` columns, reconciliation, manifest) shows: an ID number in it masked."""
        return self.shown_as or redact_ids(self.path.name)


@dataclass
class LoadReport:
    files: list[FileInfo]
    sources_present: list[str]
    sources_missing: list[str]
    rows_by_source: dict[str, int]
    # source -> one frame per file (an empty frame for a source with no file); emptied by
    # take_frames() so that each file's text is freed once it is standardised
    frames: dict[str, list[pl.DataFrame]] = field(default_factory=dict, repr=False)

    def take_frames(self, source: str) -> list[pl.DataFrame]:
        """Hand over (and forget) the frames of one source."""
        return self.frames.pop(source, [])

    def summary(self) -> str:
        used = [f for f in self.files if f.source and f.how != "skipped"]
        return f"load: {len(used)} files, {sum(self.rows_by_source.values())} rows, sources {', '.join(self.sources_present)}"


# ---------------------------------------------------------------- recognition


def discover(sources_dir: Path) -> list[Path]:
    """Every file below SOURCES_DIR, in a stable order; Office lock files and hidden files skipped."""
    if not sources_dir.is_dir():
        raise KuomianError(f"{sources_dir}: no such folder. Give the folder that holds the extracts.")
    out = []
    for p in sorted(sources_dir.rglob("*")):
        if not p.is_file() or p.name.startswith((".", "~$")):
            continue
        out.append(p)
    return out


def sources_by_glob(name: str, sources: dict[str, Source]) -> list[str]:
    low = name.lower()
    return [s.name for s in sources.values() if any(fnmatch.fnmatch(low, g.lower()) for g in s.globs)]


def sources_in_file(path: Path, sources: dict[str, Source]) -> list[str]:
    """The sources whose required columns some sheet of the file names in one of its first rows
    (the best-matching source per sheet)."""
    n = file_rules()["header"]["search_rows"]
    heads: list[list[list[str]]] = []
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        data = path.read_bytes()
        if not data.strip():
            raise FileProblem(path, "the file is empty", "Ask the department to export it again.")
        text, _ = _decode(path, data)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        first = text[: text.find("\n")] if "\n" in text else text
        heads.append(_csv_records(path, text, _sniff_delimiter(first[:100_000]), n)[0])
    elif suffix in WORKBOOK_FORMATS:
        reader = open_workbook(path)
        charts = _chart_sheets(path)
        for i, name in enumerate(reader.sheet_names):
            if i in charts:
                continue
            grid, _ = read_sheet_grid(reader, path, i, name)
            _check_width(path, grid, name)
            heads.append([[_cell_text(v) for v in r] for r in grid.head(n).rows()])
    else:
        header, _ = read_parquet(path)
        heads.append([header])
    found: set[str] = set()
    for rows in heads:
        hits = []
        for s in sources.values():
            c = choose_header(rows, s)
            if c is not None and all(f.name in c.fields for f in s.required_fields):
                hits.append((len(c.fields), s.name))
        if hits:
            best = max(k for k, _ in hits)
            found.update(name for k, name in hits if k == best)
    return sorted(found, key=list(sources).index)


def parse_overrides(pairs: list[str]) -> dict[Path, str]:
    """``--source NAME=PATH`` values → {resolved path: source}."""
    sources = load_sources()
    out: dict[Path, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise KuomianError(f"--source {pair!r}: write it as NAME=PATH, e.g. --source tax=纳税2025.xlsx.")
        name, path = pair.split("=", 1)
        if name not in sources:
            raise KuomianError(f"--source {pair!r}: unknown source {name!r}. Known: {', '.join(sources)}.")
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise KuomianError(f"--source {pair!r}: {path} is not a file.")
        out[p] = name
    return out


# ---------------------------------------------------------------- readers


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """Text and encoding name, or a FileProblem saying what is wrong."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise FileProblem(
                path,
                "the file starts with a UTF-8 marker (BOM) but its content is not UTF-8",
                "Open it in Excel and save it again as 'CSV UTF-8', or as .xlsx.",
            ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise FileProblem(
                path, "the file claims UTF-16 but cannot be decoded", "Save it again as .xlsx."
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
            "the file is neither UTF-8 nor GBK/GB18030 text (an encoding this tool does not read)",
            "Open it in Excel and save it as .xlsx or 'CSV UTF-8'.",
        ) from None


def _cut_in_a_character(path: Path, data: bytes) -> FileProblem:
    """Valid text up to a character cut in half at the very end: a truncated copy."""
    return FileProblem(
        path,
        "the file looks cut off (it ends in the middle of a character)",
        "The export or copy was interrupted; export the file again.",
        row=data.count(b"\n") + (0 if data.endswith(b"\n") else 1),
    )


def _reject_binary(path: Path, data: bytes) -> NoReturn:
    """Text never holds NUL bytes: UTF-16 without its BOM, a workbook named .csv, or a damaged file."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FileProblem(
            path, "the file is an Excel workbook, not CSV text", "Rename it to .xlsx (or .xls) and run again."
        )
    even, odd = data[0::2].count(0), data[1::2].count(0)
    if max(even, odd) > 4 * min(even, odd):
        raise FileProblem(
            path,
            "the file is UTF-16 text without a byte-order mark (an encoding this tool does not read)",
            "Open it in Excel and save it as .xlsx or 'CSV UTF-8'.",
        )
    raise FileProblem(
        path,
        "the file holds binary data (NUL bytes), not text: it is damaged or not a CSV",
        "Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export.",
    )


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else ","


# ---------------------------------------------------------------- limits and header rows


def file_rules() -> dict:
    """``rules/files.yaml`` of the policy folder in force (the installed default when a bureau's
    folder predates it): header search, footer patterns, unreadable formats, limits, damage guard."""
    root = home()
    if not (root / "rules" / "files.yaml").is_file():
        root = defaults_home()
    return load_rules("files", root)


def limits() -> dict:
    return file_rules()["limits"]


def _footer_re() -> re.Pattern:
    """Any total or footer row pattern of ``rules/files.yaml`` (``rows``)."""
    return re.compile("|".join(f"(?:{p})" for p in file_rules()["rows"].values()))


@dataclass
class Table:
    """One sheet of a workbook, or a whole CSV / Parquet file, as text.

    ``body`` has columns c0… (every cell a string); its first row is the user's row
    ``first_row`` (title rows and the header counted). ``col_offset`` is the sheet column
    of c0 (a workbook reader drops empty columns on the left)."""

    sheet: str
    index: int
    header: list[str]
    header_row: int  # the row the user sees the header in (1 = first)
    body: pl.DataFrame
    first_row: int
    col_offset: int = 0


@dataclass
class HeaderChoice:
    k: int  # index among the rows searched
    cells: list[str]
    fields: set[str]


def _cell_text(v) -> str:
    return "" if v is None else str(v).strip()


def choose_header(rows: list[list[str]], source: Source) -> HeaderChoice | None:
    """The header row among ``rows`` (the first rows of a sheet): the one naming the most columns
    of ``source``; a blank cell under a vertically merged header (序号, 姓名 over two rows) takes
    the name above it. The earliest wins a tie. None when no row names any column."""
    best: HeaderChoice | None = None
    for k, row in enumerate(rows):
        cells = list(row)
        if k > 0:
            above = rows[k - 1]
            for j, c in enumerate(cells):
                if not c and j < len(above) and above[j]:
                    cells[j] = above[j]
        fields = {f for c in cells if c for f in [source.match_header(c)] if f}
        if fields and (best is None or len(fields) > len(best.fields)):
            best = HeaderChoice(k, cells, fields)
    return best


def _first_rows_text(rows) -> str:
    """What a row holds, for a message: its first non-blank cells."""
    vals = [c for c in rows if c][:6]
    return "、".join(repr(v[:20]) for v in vals) if vals else "nothing"


# ---------------------------------------------------------------- CSV


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
    try:
        for rec in reader:
            if len(rec) > limits()["max_columns"]:
                raise FileProblem(
                    path,
                    f"this row has {len(rec)} values (more than {limits()['max_columns']} columns)",
                    "This is not an extract as departments export them; ask for the file again as .xlsx.",
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
        f'a cell starting in this row is longer than {limits()["max_cell_mb"]:g} MB: a quote (") opened '
        "here is never closed, or the cell really is that long"
        if "field larger" in str(e)
        else f"this row cannot be read as CSV ({e})",
        "Open the file in Excel, check this row and save it again as .xlsx or 'CSV UTF-8'.",
        row=row,
    )


def read_csv_tables(path: Path, source: Source | None = None) -> tuple[Table, str]:
    """A CSV as one table. With ``source`` the header row is searched for among the first
    rows; without, it is the first line."""
    data = path.read_bytes()
    if not data.strip():
        raise FileProblem(path, "the file is empty", "Ask the department to export it again.")
    text, encoding = _decode(path, data)
    del data
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    first_line = text[: text.find("\n")] if "\n" in text else text
    delim = _sniff_delimiter(first_line[:100_000])
    n = file_rules()["header"]["search_rows"] if source is not None else 1
    records, ends = _csv_records(path, text, delim, n)
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
    for _ in range(header_line):
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
                f"the file looks cut off: its last line has {len(last)} of {width} columns",
                "The export or copy was interrupted; export the file again.",
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
    return Table("", 0, header, header_line, df, header_line + 1), encoding


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
                    f"this row has {len(r)} values but the header has {width} columns",
                    "Check for a stray comma or a shifted column, fix the row and run again.",
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
            'a quote (") opened in this row is not closed on its line (it runs over the next lines)',
            "Open the file in Excel, check this row and save it again as .xlsx or 'CSV UTF-8'.",
            row=header_line + spanning,
        )
    return FileProblem(path, "the CSV cannot be parsed", "Open it in Excel and save it again as .xlsx.")


def read_csv(path: Path) -> tuple[list[str], pl.DataFrame, str]:
    """(header = the first line, body with columns c0…, encoding) of a CSV."""
    table, encoding = read_csv_tables(path)
    return table.header, table.body, encoding


def _reraise_interrupts(e: BaseException) -> None:
    if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise e


# ---------------------------------------------------------------- workbooks

_TEXT_TYPE_RE = re.compile(rb'\bt="(?:s|str|inlineStr|b|e)"')
WORKBOOK_FORMATS = (".xlsx", ".xlsm", ".xls", ".ods")


def _col_letter(idx: int) -> str:
    s = ""
    idx += 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n - 1


def _xlsx_sheet_parts(z: zipfile.ZipFile) -> list[str]:
    """The worksheet XML part of every sheet, in the workbook's order (as fastexcel lists them)."""
    try:
        wb = z.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except KeyError:
        return []
    targets = {}
    for m in re.finditer(r"<Relationship\b[^>]*>", rels):
        tag = m.group(0)
        rid, tgt = re.search(r'\bId="([^"]+)"', tag), re.search(r'\bTarget="([^"]+)"', tag)
        if rid and tgt:
            t = tgt.group(1).lstrip("/")
            targets[rid.group(1)] = t if t.startswith("xl/") else "xl/" + t
    parts = []
    for m in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", wb):
        rid = re.search(r'\br:id="([^"]+)"|\b\w+:id="([^"]+)"', m.group(0))
        parts.append(targets.get((rid.group(1) or rid.group(2)) if rid else "", ""))
    return parts


def _stream(z: zipfile.ZipFile, part: str, fn) -> None:
    """Feed a zip entry to ``fn`` in 1 MB pieces cut before a ``<c `` or ``<row`` tag."""
    with z.open(part) as fh:
        tail = b""
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            last = max(buf.rfind(b"<c "), buf.rfind(b"<row"))
            body, tail = (buf[:last], buf[last:]) if last > 0 else (buf, b"")
            fn(body)
        fn(tail)


def numeric_cells(path: Path, sheet_index: int, col_indices: list[int]) -> set[int]:
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

    try:
        with zipfile.ZipFile(path) as z:
            parts = _xlsx_sheet_parts(z)
            if sheet_index >= len(parts) or parts[sheet_index] not in z.namelist():
                return out
            _stream(z, parts[sheet_index], scan)
    except (zipfile.BadZipFile, OSError, KeyError):
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


def _too_big(path: Path, problem: str, sheet: str | None = None, row: int | None = None) -> FileProblem:
    where = f"sheet {sheet!r}: " if sheet else ""
    return FileProblem(
        path,
        where + problem,
        "It is not a normal department export; open it in Excel, keep only the list and save it as .xlsx.",
        row=row,
    )


def check_workbook_bounds(path: Path) -> None:
    """Refuse, before the heavy read, a workbook whose parts unpack past the limits, a sheet grid
    far bigger than its XML (a few cells very far apart) or a row with too many columns."""
    lim = limits()
    if path.suffix.lower() == ".xls":
        return  # a BIFF file holds its cells as they are: its size is its size
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
                f"the workbook unpacks to {unpacked / (1 << 20):,.0f} MB "
                f"(limit {lim['max_unpacked_mb']} MB, at most {lim['max_compression_ratio']} times its size)",
            )
        try:
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                names = dict(zip(_xlsx_sheet_parts(z), _xlsx_sheet_names(z), strict=False))
                for part, name in names.items():
                    if part in z.namelist():
                        _check_sheet_xml(path, z, part, name, lim)
            elif path.suffix.lower() == ".ods" and "content.xml" in z.namelist():
                _check_ods(path, z, lim)
        except (KeyError, zipfile.BadZipFile, OSError, EOFError, zlib.error):
            return  # a damaged workbook: the reader says what is wrong


def _xlsx_sheet_names(z: zipfile.ZipFile) -> list[str]:
    wb = z.read("xl/workbook.xml").decode("utf-8", "replace")
    return [
        (found.group(1) if (found := re.search(r'\bname="([^"]*)"', m.group(0))) else "")
        for m in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", wb)
    ]


_ROW_RE = re.compile(rb'<row\b[^>]*?\br="([0-9]+)"')
_WIDE_RE = re.compile(rb'<c r="([A-Z]{2,})([0-9]+)"')


def _has_cells_without_reference(buf: bytes) -> bool:
    """A ``<c>`` whose first attribute is not its reference (counted at memchr speed)."""
    return b"<c>" in buf or b"<c/>" in buf or buf.count(b"<c ") != buf.count(b'<c r="')


def _check_sheet_xml(path: Path, z: zipfile.ZipFile, part: str, sheet: str, lim: dict) -> None:
    size = z.getinfo(part).file_size
    state = {"rows": 0, "cols": 26, "noref": False}

    def scan(buf: bytes) -> None:
        rows = _ROW_RE.findall(buf)
        if rows:
            state["rows"] = max(state["rows"], max(map(int, rows)))
        for letters in set(m for m, _ in _WIDE_RE.findall(buf)):
            c = _col_index(letters) + 1
            if c > state["cols"]:
                state["cols"] = c
                if c > lim["max_columns"]:
                    cell = re.search(rb'<c r="' + letters + rb'([0-9]+)"', buf)
                    row = int(cell.group(1)) if cell else None
                    raise _too_big(
                        path, f"a value in column {c} (more than {lim['max_columns']} columns)", sheet, row
                    )
        if not state["noref"] and _has_cells_without_reference(buf):
            state["noref"] = True

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
                path, f"a row holds {widest['n']} values (more than {lim['max_columns']} columns)", sheet
            )
        state["cols"] = max(state["cols"], widest["n"])
    grid = state["rows"] * state["cols"]
    if grid > max(1_000_000, lim["max_cells_per_byte"] * size):
        raise _too_big(
            path,
            f"its cells are spread over {state['rows']:,} rows × {state['cols']:,} columns, "
            "far more than the values it holds",
            sheet,
        )


_ODS_REPEAT_RE = re.compile(rb'number-(columns|rows)-repeated="([0-9]+)"((?:(?!/>)[^>])*)(/?)>')


def _check_ods(path: Path, z: zipfile.ZipFile, lim: dict) -> None:
    """A repeated cell or row that holds a value (not the empty filler LibreOffice writes) and
    would make a huge grid."""

    def scan(buf: bytes) -> None:
        for m in _ODS_REPEAT_RE.finditer(buf):
            n = int(m.group(2))
            if m.group(1) == b"columns" and n > lim["max_columns"] and not m.group(4):
                raise _too_big(path, f"a value repeated over {n:,} columns (more than {lim['max_columns']})")
            if m.group(1) == b"rows" and n > 100_000:
                end = buf.find(b"</table:table-row>", m.end())
                inside = buf[m.end() : end if end > 0 else m.end() + 4096]
                if b"office:value-type" in inside or b"<text:p" in inside:
                    raise _too_big(path, f"a row with values repeated {n:,} times")

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


def _check_width(path: Path, grid: pl.DataFrame, sheet: str) -> None:
    if grid.width > limits()["max_columns"]:
        raise _too_big(path, f"it has {grid.width} columns (more than {limits()['max_columns']})", sheet)


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
        where = f"sheet {table.sheet!r}: " if table.sheet else ""
        raise FileProblem(
            path,
            f"{where}a cell holds {longest[i] / (1 << 20):,.1f} MB of text (more than "
            f"{limits()['max_cell_mb']:g} MB)",
            "No field of an extract is that long; check the row (an unclosed quote?) and export the file again.",
            row=table.first_row + i,
        )


def read_parquet(path: Path) -> tuple[list[str], pl.DataFrame]:
    try:
        df = pl.read_parquet(path)
    except BaseException as e:
        _reraise_interrupts(e)
        raise FileProblem(
            path, f"the Parquet file cannot be read ({type(e).__name__})", "Ask for a new export."
        ) from None
    header = list(df.columns)
    df = df.select([pl.col(c).cast(pl.String) for c in header])
    df.columns = [f"c{j}" for j in range(len(header))]
    return header, df


@dataclass
class ReadResult:
    format: str
    encoding: str
    tables: list[Table]
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (sheet index, name, why)
    reader: object = None  # a workbook's fastexcel reader (for the cell types)


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


def header_finder(wanted: set[str]):
    """A ``choose`` for files with known headers (review, survey): the row among the first
    rows holding the most of ``wanted`` (normalised header names)."""
    norm = {normalise_header(w) for w in wanted}

    def choose(rows: list[list[str]]) -> HeaderChoice | None:
        best = None
        for k, row in enumerate(rows):
            hits = {normalise_header(c) for c in row if c} & norm
            if hits and (best is None or len(hits) > len(best.fields)):
                best = HeaderChoice(k, list(row), hits)
        return best

    return choose


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


# ---------------------------------------------------------------- one file


def _source_chooser(source: Source):
    """The ``choose`` of a source's files: a sheet is read when its best row names every required
    column; skipped (with a reason) when it names few columns; a row naming several columns but
    lacking a required one is kept, for the missing-column message."""
    n = file_rules()["header"]["data_sheet_matches"]
    required = {f.name for f in source.required_fields}

    def choose(rows: list[list[str]]):
        c = choose_header(rows, source)
        if c is None:
            return None
        if required <= c.fields or len(c.fields) >= n:
            return c
        return f"no header row of {source.name} in its first rows (best: row {c.k + 1}, {_first_rows_text(c.cells)})"

    return choose


def _sheet_label(path: Path, sheet: str) -> str:
    return f"sheet {sheet!r}, " if sheet else ""


def load_file(path: Path, source: Source, info: FileInfo, tables_out: list | None = None) -> pl.DataFrame:
    """Read one file of a known source into canonical columns (all text): every sheet with a
    recognisable header, one after the other, each row with its sheet and row number.
    ``tables_out``: a list that receives the :class:`Table` of every sheet read (as read)."""
    res = read_tables(path, _source_chooser(source), source)
    if tables_out is not None:
        tables_out.extend(res.tables)
    info.format, info.encoding = res.format, res.encoding
    info.sheets = [SheetInfo(name, index=i, skipped=why) for i, name, why in res.skipped]
    if not res.tables:
        if all(why == "empty" for _, _, why in res.skipped):
            raise FileProblem(
                path,
                "the workbook is empty (no sheet holds anything)",
                "Ask the department to export it again.",
            )
        raise FileProblem(
            path,
            f"recognised as {source.name} ({source.label}) but no sheet has its column headers "
            f"({'; '.join(f'{n!r}: {w}' for _, n, w in res.skipped)}); the required column "
            f"{source.required_fields[0].name} is missing "
            f"(accepted headers: {' / '.join(source.required_fields[0].aliases)})",
            "Put the column names in one row near the top of the sheet, or point --source at the right file.",
            source=source.name,
        )
    frames = []
    for t in res.tables:
        df, sheet_info = _load_table(path, source, t, res, info.name)
        info.sheets.append(sheet_info)
        frames.append(df)
    info.sheets.sort(key=lambda s: s.index)
    read = [s for s in info.sheets if s.skipped is None]
    info.rows = sum(s.rows for s in read)
    info.columns = {h: f for s in read for h, f in s.columns.items()}
    info.extra_columns = list(dict.fromkeys(c for s in read for c in s.extra_columns))
    if info.rows == 0:
        raise FileProblem(
            path,
            "the file has column headers but no data rows",
            "Ask the department for the full export.",
            source=source.name,
        )
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def _load_table(
    path: Path, source: Source, t: Table, res: ReadResult, shown: str
) -> tuple[pl.DataFrame, SheetInfo]:
    header, body = t.header, t.body
    where = _sheet_label(path, t.sheet)
    row_txt = f"{where}row {t.header_row}"
    if not any(h for h in header):
        raise FileProblem(
            path, f"{where}the first row holds no column headers", "Put the column names in the first row."
        )
    seen: dict[str, int] = {}
    for h in header:
        if h:
            key = normalise_header(h)
            seen[key] = seen.get(key, 0) + 1
    dups = [h for h, n in seen.items() if n > 1]
    if dups:
        raise FileProblem(
            path,
            f"{where}the column name {dups[0]!r} appears {seen[dups[0]]} times (header taken from row {t.header_row})",
            "Rename or delete the extra column so each header is unique.",
            source=source.name,
        )
    mapping: dict[str, str] = {}
    field_cols: dict[str, int] = {}
    extra: list[int] = []
    for j, h in enumerate(header):
        f = source.match_header(h) if h else None
        if f is None:
            if j < body.width and (h or body.get_column(f"c{j}").drop_nulls().len()):
                extra.append(j)
            continue
        if f in field_cols:
            raise FileProblem(
                path,
                f"{where}columns {header[field_cols[f]]!r} and {h!r} both mean {f}",
                "Keep one of them and run again.",
                source=source.name,
            )
        field_cols[f] = j
        mapping[h] = f
    missing = [f for f in source.required_fields if f.name not in field_cols]
    if missing:
        req = missing[0]
        raise FileProblem(
            path,
            f"recognised as {source.name} ({source.label}) but the required column {req.name} is missing "
            f"(accepted headers: {' / '.join(req.aliases)}); the header was taken from {row_txt}, which holds "
            f"{_first_rows_text(header)}",
            "Add or rename the column, or point --source at the right file.",
            source=source.name,
        )
    for j in range(len(header), body.width):  # values right of the last header: kept as extra
        if body.get_column(f"c{j}").drop_nulls().len():
            extra.append(j)
    names = {j: (header[j] if j < len(header) and header[j] else f"列{j + 1}") for j in extra}
    exprs = [pl.col(f"c{j}").alias(f) for f, j in field_cols.items()]
    for f in source.fields:
        if f not in field_cols:
            exprs.append(pl.lit(None, dtype=pl.String).alias(f))
    if extra:
        exprs.append(
            pl.struct([pl.col(f"c{j}").alias(names[j]) for j in extra]).struct.json_encode().alias(EXTRA_COL)
        )
    else:
        exprs.append(pl.lit(None, dtype=pl.String).alias(EXTRA_COL))
    numeric_rows: set[int] = set()
    if "id_number" in field_cols and res.format in ("xlsx", "xlsm"):
        numeric_rows = numeric_cells(path, t.index, [t.col_offset + field_cols["id_number"]])
    elif "id_number" in field_cols and res.format in ("xls", "ods"):
        numeric_rows = _number_cells_by_type(res.reader, path, t.index, field_cols["id_number"])
    numeric_rows = {r for r in numeric_rows if r >= t.first_row}
    out = body.with_row_index(ROW_COL, offset=t.first_row).select(
        pl.lit(source.name).alias("source"),
        pl.lit(shown).alias("file"),
        pl.lit(t.sheet).alias("sheet"),
        pl.col(ROW_COL).cast(pl.Int64).alias("row"),
        *exprs,
        pl.col(ROW_COL).cast(pl.Int64).is_in(list(numeric_rows)).alias(NUMERIC_ID_COL),
    )
    info = SheetInfo(
        t.sheet,
        index=t.index,
        header_row=t.header_row,
        rows=out.height,
        columns=mapping,
        extra_columns=[names[j] if j < len(header) and header[j] else f"(列{j + 1})" for j in extra],
        numeric_ids=len(numeric_rows),
    )
    return out.select(
        ["source", "file", "sheet", "row", *source.fields.keys(), EXTRA_COL, NUMERIC_ID_COL]
    ), info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- the stage


def recognise(sources_dir: Path, overrides: dict[Path, str] | None = None) -> list[FileInfo]:
    """Decide the source of every file (no data read beyond headers)."""
    sources = load_sources()
    overrides = overrides or {}
    infos: list[FileInfo] = []
    files = discover(sources_dir)
    seen = set()
    for p in files:
        rp = p.resolve()
        seen.add(rp)
        hits = sources_by_glob(p.name, sources)
        if p.suffix.lower() not in READABLE:
            kind = file_rules()["cannot_read"].get(p.suffix.lower())
            if kind and (hits or rp in overrides):
                _refuse_unreadable(p)
            what = f"{kind} file" if kind else f"{p.suffix or 'no extension'}"
            infos.append(FileInfo(p, None, "ignored", problem=f"not an extract ({what})"))
            continue
        if rp in overrides:
            infos.append(FileInfo(p, overrides[rp], "override"))
            continue
        if len(hits) > 1:
            raise KuomianError(
                f"{p}: the file name fits more than one source ({', '.join(hits)}). "
                f"Rename the file or say which it is with --source {hits[0]}={p}."
            )
        if hits:
            infos.append(FileInfo(p, hits[0], "glob"))
            continue
        try:
            hits = sources_in_file(p, sources)
        except FileProblem:
            infos.append(FileInfo(p, None, "unrecognised", problem="unreadable, and its name fits no source"))
            continue
        if len(hits) > 1:
            raise KuomianError(
                f"{p}: the headers fit more than one source ({', '.join(hits)}). "
                f"Say which it is with --source {hits[0]}={p}."
            )
        infos.append(FileInfo(p, hits[0] if hits else None, "headers" if hits else "unrecognised"))
    for rp, name in overrides.items():
        if rp not in seen:
            infos.append(FileInfo(rp, name, "override"))
    for info in infos:
        info.size = info.path.stat().st_size
    _disambiguate(infos, sources_dir)
    return infos


def _disambiguate(infos: list[FileInfo], sources_dir: Path) -> None:
    """Two files shown under one name (the same name in two folders, or names that differ only in a
    masked ID) would share their rows' ``file``: show those by their path below SOURCES_DIR, numbered
    if that still collides."""
    names = Counter(i.name for i in infos)
    for info in infos:
        if names[info.name] > 1:
            try:
                info.shown_as = redact_ids(info.path.relative_to(sources_dir).as_posix())
            except ValueError:  # an --source file outside SOURCES_DIR
                info.shown_as = redact_ids(info.path.as_posix())
    seen: Counter[str] = Counter()
    for info in infos:
        seen[info.name] += 1
        if seen[info.name] > 1:
            info.shown_as = f"{info.name} ({seen[info.name]})"


def load(
    sources_dir: Path,
    *,
    overrides: dict[Path, str] | None = None,
    skip_bad_files: bool = False,
    progress=lambda msg: None,
) -> LoadReport:
    """Read every extract as text, one frame per file. Raises :class:`FileProblem` on a bad file."""
    sources = load_sources()
    infos = recognise(Path(sources_dir), overrides)
    frames: dict[str, list[pl.DataFrame]] = {name: [] for name in sources}
    todo = [info for info in infos if info.source is not None]

    def read(info: FileInfo) -> pl.DataFrame:
        progress(f"reading {info.name} as {info.source}")
        info.sha256 = _sha256(info.path)
        return load_file(info.path, sources[cast(str, info.source)], info)

    # Files are handled in order: the first bad one (in file order) is the one reported.
    for info, (df, problem) in zip(todo, in_parallel(read, todo), strict=True):
        name = cast(str, info.source)  # todo: recognised files only
        if problem is None:
            frames[name].append(cast(pl.DataFrame, df))
        elif isinstance(problem, FileProblem) and skip_bad_files and not sources[name].required:
            info.how, info.problem = "skipped", str(problem)
            progress(f"skipped {info.name}: {problem.problem}")
        else:
            raise problem
    present = [s for s in sources if frames[s]]
    missing = [s for s in sources if not frames[s]]
    for s in missing:
        if sources[s].required:
            raise KuomianError(
                f"{sources_dir}: no file for the required source {s} ({sources[s].label}); "
                f"expected a file named like {' or '.join(sources[s].globs)}. "
                f"Add it, or name it with --source {s}=PATH."
            )
    for s in missing:
        frames[s] = [empty_frame(sources[s])]
    rows = {s: sum(df.height for df in frames[s]) for s in sources}
    return LoadReport(
        files=infos, sources_present=present, sources_missing=missing, rows_by_source=rows, frames=frames
    )


READ_WORKERS = 2  # files read at once: the readers (polars, fastexcel) work outside the GIL


def in_parallel(fn, items: list, workers: int = READ_WORKERS) -> list[tuple[object, BaseException | None]]:
    """``fn`` over ``items`` in a few threads: (result, None) or (None, exception) per item, in order.

    Every item is tried, so the caller can report the first failure in item order."""

    def attempt(item):
        try:
            return fn(item), None
        except Exception as e:  # handed back to the caller, which raises or skips it
            return None, e
        except BaseException as e:  # a Rust panic in a reader (pyo3 PanicException)
            _reraise_interrupts(e)
            path = getattr(item, "path", item)
            return None, FileProblem(
                path,
                f"the file cannot be read (the reader failed: {type(e).__name__})",
                "Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export.",
            )

    if workers <= 1 or len(items) <= 1:
        return [attempt(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(attempt, items))


def empty_frame(source: Source) -> pl.DataFrame:
    """What :func:`load_file` returns, with no rows (a source that has no file)."""
    return pl.DataFrame(
        schema={
            "source": pl.String,
            "file": pl.String,
            "sheet": pl.String,
            "row": pl.Int64,
            **{f: pl.String for f in source.fields},
            EXTRA_COL: pl.String,
            NUMERIC_ID_COL: pl.Boolean,
        }
    )


def file_manifest(report: LoadReport) -> list[dict]:
    return [
        {
            "path": redact_ids(str(f.path)),
            "file": f.name,
            "source": f.source,
            "recognised_by": f.how,
            "format": f.format,
            "encoding": f.encoding,
            "size": f.size,
            "sha256": f.sha256,
            "rows": f.rows,
            "extra_columns": f.extra_columns,
            "problem": f.problem,
            "sheets": [
                {
                    "sheet": redact_ids(s.name),
                    "header_row": s.header_row,
                    "rows": s.rows,
                    "numeric_ids": s.numeric_ids,
                }
                if s.skipped is None
                else {"sheet": redact_ids(s.name), "skipped": redact_ids(s.skipped)}
                for s in f.sheets
            ],
        }
        for f in report.files
    ]
