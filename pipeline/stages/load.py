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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import polars as pl

from ..core.config import Source, normalise_header
from ..core.errors import FileProblem, KuomianError
from ..core.i18n import _
from ..core.ids import redact_ids
from ..core.policy import policy
from ..readers.base import (
    EXTRA_COL,
    NUMERIC_ID_COL,
    ROW_COL,
    FileInfo,
    ReadResult,
    SheetInfo,
    Table,
    _reraise_interrupts,
)
from ..readers.headers import _first_rows_text, _source_chooser
from ..readers.recognise import _sha256, recognise
from ..readers.tables import read_tables
from ..readers.workbook import XlsxParts, _number_cells_by_type, numeric_cells


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
        return _("load: {files} files, {rows} rows, sources {sources}").format(
            files=len(used), rows=sum(self.rows_by_source.values()), sources=", ".join(self.sources_present)
        )


def _sheet_label(path: Path, sheet: str) -> str:
    return _("sheet {sheet!r}, ").format(sheet=sheet) if sheet else ""


def load_file(path: Path, source: Source, info: FileInfo, tables_out: list | None = None) -> pl.DataFrame:
    """Read one file of a known source into canonical columns (all text): every sheet with a
    recognisable header, one after the other, each row with its sheet and row number.
    ``tables_out``: a list that receives the :class:`Table` of every sheet read (as read)."""
    res = read_tables(path, _source_chooser(source), source)
    try:
        return _load_tables(path, source, info, res, tables_out)
    finally:
        res.close()


def _load_tables(path: Path, source: Source, info: FileInfo, res: ReadResult, tables_out) -> pl.DataFrame:
    if tables_out is not None:
        tables_out.extend(res.tables)
    info.format, info.encoding = res.format, res.encoding
    info.sheets = [SheetInfo(name, index=i, skipped=why) for i, name, why in res.skipped]
    if not res.tables:
        if all(why == _("empty") for _i, _n, why in res.skipped):
            raise FileProblem(
                path,
                _("the workbook is empty (no sheet holds anything)"),
                _("Ask the department to export it again."),
            )
        raise FileProblem(
            path,
            _(
                "recognised as {source} ({label}) but no sheet has its column headers ({sheets}); "
                "the required column {column} is missing (accepted headers: {accepted})"
            ).format(
                source=source.name,
                label=source.label,
                sheets="; ".join(_("{sheet!r}: {why}").format(sheet=n, why=w) for _i, n, w in res.skipped),
                column=source.required_fields[0].name,
                accepted=" / ".join(source.required_fields[0].aliases),
            ),
            _(
                "Put the column names in one row near the top of the sheet, or point --source at the right file."
            ),
            source=source.name,
        )
    frames = []
    try:
        for t in res.tables:
            df, sheet_info = _load_table(path, source, t, res, info.name)
            info.sheets.append(sheet_info)
            frames.append(df)
    finally:
        res.close()
    info.sheets.sort(key=lambda s: s.index)
    read = [s for s in info.sheets if s.skipped is None]
    info.rows = sum(s.rows for s in read)
    info.columns = {h: f for s in read for h, f in s.columns.items()}
    info.extra_columns = list(dict.fromkeys(c for s in read for c in s.extra_columns))
    if info.rows == 0:
        raise FileProblem(
            path,
            _("the file has column headers but no data rows"),
            _("Ask the department for the full export."),
            source=source.name,
        )
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def _load_table(
    path: Path, source: Source, t: Table, res: ReadResult, shown: str
) -> tuple[pl.DataFrame, SheetInfo]:
    """One table as the source's canonical columns (every cell text), its extra columns as JSON,
    and which rows hold the ID as a number (Excel-damaged); and its :class:`SheetInfo`."""
    header, body = t.header, t.body
    mapping, field_cols, extra = _map_header(path, source, t)
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
    numeric_rows = _numeric_id_rows(path, t, res, field_cols)
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


def _map_header(path: Path, source: Source, t: Table) -> tuple[dict[str, str], dict[str, int], list[int]]:
    """The header row read against the source: (header -> field, field -> column, the columns of
    no field that hold something). Raises :class:`FileProblem` on an empty header, a header
    named twice, two columns of one field, or a required field missing."""
    header, body = t.header, t.body
    where = _sheet_label(path, t.sheet)
    row_txt = _("{where}row {row}").format(where=where, row=t.header_row)
    if not any(h for h in header):
        raise FileProblem(
            path,
            _("{where}the first row holds no column headers").format(where=where),
            _("Put the column names in the first row."),
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
            _("{where}the column name {name!r} appears {times} times (header taken from row {row})").format(
                where=where, name=dups[0], times=seen[dups[0]], row=t.header_row
            ),
            _("Rename or delete the extra column so each header is unique."),
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
                _("{where}columns {first!r} and {second!r} both mean {field}").format(
                    where=where, first=header[field_cols[f]], second=h, field=f
                ),
                _("Keep one of them and run again."),
                source=source.name,
            )
        field_cols[f] = j
        mapping[h] = f
    missing = [f for f in source.required_fields if f.name not in field_cols]
    if missing:
        req = missing[0]
        raise FileProblem(
            path,
            _(
                "recognised as {source} ({label}) but the required column {column} is missing "
                "(accepted headers: {accepted}); the header was taken from {row}, which holds {cells}"
            ).format(
                source=source.name,
                label=source.label,
                column=req.name,
                accepted=" / ".join(req.aliases),
                row=row_txt,
                cells=_first_rows_text(header),
            ),
            _("Add or rename the column, or point --source at the right file."),
            source=source.name,
        )
    return mapping, field_cols, extra


def _numeric_id_rows(path: Path, t: Table, res: ReadResult, field_cols: dict[str, int]) -> set[int]:
    """Rows (from the table's first data row) whose ID cell a workbook stores as a number."""
    numeric_rows: set[int] = set()
    if "id_number" in field_cols and t.number_cells is not None:
        numeric_rows = {r for r, c in t.number_cells if c == field_cols["id_number"]}
    elif "id_number" in field_cols and res.format in ("xlsx", "xlsm"):
        numeric_rows = numeric_cells(
            path, t.index, [t.col_offset + field_cols["id_number"]], cast(XlsxParts | None, res.parts)
        )
    elif "id_number" in field_cols and res.format in ("xls", "ods"):
        numeric_rows = _number_cells_by_type(res.reader, path, t.index, field_cols["id_number"])
    numeric_rows = {r for r in numeric_rows if r >= t.first_row}
    return numeric_rows


def load(
    sources_dir: Path,
    *,
    overrides: dict[Path, str] | None = None,
    skip_bad_files: bool = False,
    progress=lambda msg: None,
) -> LoadReport:
    """Read every extract as text, one frame per file. Raises :class:`FileProblem` on a bad file."""
    sources = policy().sources
    infos = recognise(Path(sources_dir), overrides)
    frames: dict[str, list[pl.DataFrame]] = {name: [] for name in sources}
    todo = [info for info in infos if info.source is not None]

    def read(info: FileInfo) -> pl.DataFrame:
        progress(_("reading {file} as {source}").format(file=info.name, source=info.source))
        df = load_file(info.path, sources[cast(str, info.source)], info)
        info.sha256 = info.sha256 or _sha256(
            info.path
        )  # after the reader's bounds: a 3 GB file is refused, not hashed
        return df

    # Files are handled in order: the first bad one (in file order) is the one reported.
    for info, (df, problem) in zip(todo, in_parallel(read, todo), strict=True):
        name = cast(str, info.source)  # todo: recognised files only
        if problem is None:
            frames[name].append(cast(pl.DataFrame, df))
        elif isinstance(problem, FileProblem) and skip_bad_files and not sources[name].required:
            info.how, info.problem = "skipped", str(problem)
            progress(_("skipped {file}: {problem}").format(file=info.name, problem=problem.problem))
        else:
            raise problem
    present = [s for s in sources if frames[s]]
    missing = [s for s in sources if not frames[s]]
    for s in missing:
        if sources[s].required:
            raise KuomianError(
                _(
                    "{folder}: no file for the required source {source} ({label}); "
                    "expected a file named like {globs}. "
                    "Add it, or name it with --source {source}=PATH."
                ).format(
                    folder=sources_dir,
                    source=s,
                    label=sources[s].label,
                    globs=_(" or ").join(sources[s].globs),
                )
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
                _("the file cannot be read (the reader failed: {error})").format(error=type(e).__name__),
                _("Open it in Excel; if it opens, save it again as .xlsx, otherwise ask for a new export."),
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
