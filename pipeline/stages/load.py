"""Stage 1 — load: find the extracts, recognise each one, read it as text.

Entry point: :func:`load`. For every file in SOURCES_DIR it decides which
source it is (``--source NAME=PATH`` first, then the file-name globs, then the
headers), reads every cell as text (an ID never passes through a number),
maps the headers to canonical field names through the aliases in
``sources/*.yaml``, and keeps the file name and the row number as Excel shows
it (header = 1). The result is a :class:`LoadReport` that holds, per source,
the frames read (one per file, in file order) until the standardise stage takes
them: the raw text goes straight from the reader to the standardiser, never
copied into DuckDB (a quarantined row's raw values are kept there by
standardise, in ``std_quarantine_raw``).
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import io
import re
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, cast

import polars as pl

from ..core.config import Source, load_sources, normalise_header
from ..core.errors import FileProblem, KuomianError
from ..core.ids import redact_ids

READABLE = {".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".parquet"}
ROW_COL = "_row"
EXTRA_COL = "_extra"
NUMERIC_ID_COL = "_id_numeric"


@dataclass
class FileInfo:
    path: Path
    source: str | None
    how: str  # override | glob | headers | unrecognised | skipped
    format: str = ""
    encoding: str = ""
    rows: int = 0
    size: int = 0
    sha256: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # original header -> canonical field
    extra_columns: list[str] = field(default_factory=list)
    problem: str | None = None  # set when a bad optional file was skipped
    shown_as: str = ""  # set by recognise() when the file name alone is ambiguous

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
    """Every readable file below SOURCES_DIR, in a stable order; Office lock files and hidden files skipped."""
    if not sources_dir.is_dir():
        raise KuomianError(f"{sources_dir}: no such folder. Give the folder that holds the extracts.")
    out = []
    for p in sorted(sources_dir.rglob("*")):
        if not p.is_file() or p.name.startswith((".", "~$")):
            continue
        if p.suffix.lower() in READABLE:
            out.append(p)
    return out


def sources_by_glob(name: str, sources: dict[str, Source]) -> list[str]:
    low = name.lower()
    return [s.name for s in sources.values() if any(fnmatch.fnmatch(low, g.lower()) for g in s.globs)]


def sources_by_headers(headers: list[str], sources: dict[str, Source]) -> list[str]:
    """Sources all of whose required fields are named by the headers."""
    hits = []
    for s in sources.values():
        mapped = {s.match_header(h) for h in headers}
        if all(f.name in mapped for f in s.required_fields):
            hits.append((len(mapped - {None}), s.name))
    if not hits:
        return []
    best = max(n for n, _ in hits)
    return [name for n, name in hits if n == best]


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


def read_csv(path: Path) -> tuple[list[str], pl.DataFrame, str]:
    data = path.read_bytes()
    if not data.strip():
        raise FileProblem(path, "the file is empty", "Ask the department to export it again.")
    text, encoding = _decode(path, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    first_line = text.split("\n", 1)[0]
    delim = _sniff_delimiter(first_line)
    header = [h.strip() for h in next(csv.reader([first_line], delimiter=delim))]
    width = len(header)
    if not text.endswith("\n"):
        last_line = text.rsplit("\n", 1)[-1]
        last = next(csv.reader([last_line], delimiter=delim), [])
        if len(last) < width and text.count("\n") >= 1:
            raise FileProblem(
                path,
                f"the file looks cut off: its last line has {len(last)} of {width} columns",
                "The export or copy was interrupted; export the file again.",
                row=text.count("\n") + 1,
            )
    try:
        df = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            has_header=False,
            skip_rows=1,
            infer_schema=False,
            separator=delim,
            new_columns=[f"c{j}" for j in range(width)],
            schema={f"c{j}": pl.String for j in range(width)},
        )
    except pl.exceptions.PolarsError:
        # Find the offending row with the slow reader, to name it.
        for i, r in enumerate(csv.reader(io.StringIO(text), delimiter=delim)):
            if len(r) > width and any(c.strip() for c in r[width:]):
                raise FileProblem(
                    path,
                    f"this row has {len(r)} values but the header has {width} columns",
                    "Check for a stray comma or a shifted column, fix the row and run again.",
                    row=i + 1,
                ) from None
        raise FileProblem(
            path, "the CSV cannot be parsed", "Open it in Excel and save it again as .xlsx."
        ) from None
    return header, df, encoding


_TEXT_TYPE_RE = re.compile(rb'\bt="(?:s|str|inlineStr|b|e)"')


def _col_letter(idx: int) -> str:
    s = ""
    idx += 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def numeric_cells(path: Path, sheet_index: int, col_indices: list[int]) -> set[int]:
    """Excel row numbers whose cell in one of these columns is stored as a number.

    fastexcel returns a number cell as text indistinguishable from a typed one,
    but an 18-digit ID stored as a number has already lost its last digits, so
    we look at the cell types in the sheet XML directly (streamed, regex only).
    """
    letters = sorted({_col_letter(i).encode() for i in col_indices})
    if not letters:
        return set()
    # Only the cells of these columns (a non-empty cell: not self-closing); the regex runs in C
    # and yields a match per ID cell, not per cell of the sheet.
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
            names = sorted(
                (n for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet[0-9]+\.xml", n)),
                key=lambda n: int(n.rsplit("sheet", 1)[1].removesuffix(".xml")),
            )
            if sheet_index >= len(names):
                return out
            with z.open(names[sheet_index]) as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    buf = tail + chunk
                    last = buf.rfind(b"<c ")
                    body, tail = (buf[:last], buf[last:]) if last > 0 else (buf, b"")
                    scan(body)
                scan(tail)
    except (zipfile.BadZipFile, OSError, KeyError):
        return set()
    return out


def read_excel(path: Path) -> tuple[list[str], pl.DataFrame, int]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        sheet_index = 0
        for i, _name in enumerate(reader.sheet_names):
            sheet = reader.load_sheet(i, header_row=None, dtypes="string", n_rows=1)
            if sheet.height > 0:
                sheet_index = i
                break
        sheet = reader.load_sheet(sheet_index, header_row=None, dtypes="string")
        raw = sheet.to_polars()
    except Exception as e:  # fastexcel raises its own error types for every kind of damage
        raise FileProblem(
            path,
            f"the workbook cannot be read ({type(e).__name__}: it is damaged, truncated or not really Excel)",
            "Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export.",
        ) from None
    if raw.height == 0:
        raise FileProblem(
            path, "the workbook's first sheet is empty", "Ask the department to export it again."
        )
    header = ["" if v is None else str(v).strip() for v in raw.row(0)]
    body = raw.slice(1)
    body.columns = [f"c{j}" for j in range(len(header))]
    return header, body, sheet_index


def read_parquet(path: Path) -> tuple[list[str], pl.DataFrame]:
    try:
        df = pl.read_parquet(path)
    except Exception as e:
        raise FileProblem(
            path, f"the Parquet file cannot be read ({type(e).__name__})", "Ask for a new export."
        ) from None
    header = list(df.columns)
    df = df.select([pl.col(c).cast(pl.String) for c in header])
    df.columns = [f"c{j}" for j in range(len(header))]
    return header, df


def read_any(path: Path) -> tuple[list[str], pl.DataFrame, str, str, int]:
    """(header, body with columns c0…, format, encoding, sheet index) for one file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        header, df, enc = read_csv(path)
        return header, df, "csv", enc, 0
    if suffix in (".xlsx", ".xlsm", ".xls"):
        if path.stat().st_size == 0:
            raise FileProblem(path, "the file is empty (0 bytes)", "Ask the department to export it again.")
        header, df, sheet = read_excel(path)
        return header, df, suffix.lstrip("."), "", sheet
    if suffix == ".parquet":
        header, df = read_parquet(path)
        return header, df, "parquet", "", 0
    raise FileProblem(path, f"files of type {suffix} are not read", "Save it as .xlsx or .csv.")


def read_headers(path: Path) -> list[str]:
    header, *_ = read_any(path)
    return header


# ---------------------------------------------------------------- one file


def load_file(path: Path, source: Source, info: FileInfo) -> pl.DataFrame:
    """Read one file of a known source into canonical columns (all text)."""
    header, body, fmt, encoding, sheet = read_any(path)
    info.format, info.encoding = fmt, encoding
    if not any(h for h in header):
        raise FileProblem(
            path, "the first row holds no column headers", "Put the column names in the first row."
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
            f"the column name {dups[0]!r} appears {seen[dups[0]]} times",
            "Rename or delete the extra column so each header is unique.",
            source=source.name,
        )
    mapping: dict[str, str] = {}
    field_cols: dict[str, int] = {}
    extra: list[int] = []
    for j, h in enumerate(header):
        f = source.match_header(h) if h else None
        if f is None:
            if h or body.get_column(f"c{j}").drop_nulls().len():
                extra.append(j)
            continue
        if f in field_cols:
            raise FileProblem(
                path,
                f"columns {header[field_cols[f]]!r} and {h!r} both mean {f}",
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
            f"(accepted headers: {' / '.join(req.aliases)})",
            "Add or rename the column, or point --source at the right file.",
            source=source.name,
        )
    if body.height == 0:
        raise FileProblem(
            path,
            "the file has column headers but no data rows",
            "Ask the department for the full export.",
            source=source.name,
        )
    info.columns = mapping
    info.extra_columns = [header[j] or f"(列{j + 1})" for j in extra]
    info.rows = body.height

    exprs = [pl.col(f"c{j}").alias(f) for f, j in field_cols.items()]
    for f in source.fields:
        if f not in field_cols:
            exprs.append(pl.lit(None, dtype=pl.String).alias(f))
    if extra:
        names = [header[j] or f"列{j + 1}" for j in extra]
        exprs.append(
            pl.struct([pl.col(f"c{j}").alias(n) for j, n in zip(extra, names, strict=True)])
            .struct.json_encode()
            .alias(EXTRA_COL)
        )
    else:
        exprs.append(pl.lit(None, dtype=pl.String).alias(EXTRA_COL))
    numeric_rows: set[int] = set()
    if fmt in ("xlsx", "xlsm") and "id_number" in field_cols:
        numeric_rows = numeric_cells(path, sheet, [field_cols["id_number"]])
    out = body.with_row_index(ROW_COL, offset=2).select(
        pl.lit(source.name).alias("source"),
        pl.lit(info.name).alias("file"),
        pl.col(ROW_COL).cast(pl.Int64).alias("row"),
        *exprs,
        pl.col(ROW_COL).cast(pl.Int64).is_in(list(numeric_rows)).alias(NUMERIC_ID_COL),
    )
    return out.select(["source", "file", "row", *source.fields.keys(), EXTRA_COL, NUMERIC_ID_COL])


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
        if rp in overrides:
            infos.append(FileInfo(p, overrides[rp], "override"))
            continue
        hits = sources_by_glob(p.name, sources)
        if len(hits) > 1:
            raise KuomianError(
                f"{p}: the file name fits more than one source ({', '.join(hits)}). "
                f"Rename the file or say which it is with --source {hits[0]}={p}."
            )
        if hits:
            infos.append(FileInfo(p, hits[0], "glob"))
            continue
        try:
            header = read_headers(p)
        except FileProblem:
            infos.append(FileInfo(p, None, "unrecognised", problem="unreadable, and its name fits no source"))
            continue
        hits = sources_by_headers(header, sources)
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
        }
        for f in report.files
    ]
