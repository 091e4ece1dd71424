"""``kuomian survey import``: the door-to-door answers of the street hand-offs, back into OUT_DIR.

Entry point: :func:`import_answers`. Each filled-in hand-off (the CSV as the
refresh wrote it, the same sheet saved by Excel as CSV in GBK/GB18030 or
UTF-8 with BOM, or as ``.xlsx``) is read as text; rows are matched by 编号
(``person_key``) to ``OUT_DIR/persons.parquet``; each answer is checked
against ``rules/survey.yaml`` (allowed values; 调查日期 in any date format of
:mod:`pipeline.dates`). A blank cell is not an answer: it never erases one.
A row with a wrong answer is rejected as a whole (with its row number and the
reason) so that the street corrects it and imports the file again.

The answers are written into ``persons.parquet`` and into the registry
partitions ``registry/street_code=*/part-0.parquet``, each file replaced
atomically (temporary file beside it, fsync, ``os.replace``) with its
permissions kept (owner-only by default). The OUT_DIR lock is held meanwhile,
so a refresh cannot replace the folder under the import. Importing the same
file again changes nothing and says so (``unchanged``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import polars as pl

from ..core.config import load_rules, normalise_header
from ..core.dates import parse_date
from ..core.errors import FileProblem, KuomianError
from ..core.ids import redact_ids
from ..stages.publish import SURVEY_FIELDS

KEY_HEADERS = ("编号", "person_key")
DATE_RANGE = (date(2000, 1, 1), date(2100, 12, 31))


# ---------------------------------------------------------------- atomic files


def _default_mode() -> int:
    if os.environ.get("KUOMIAN_SHARED_OUTPUT") == "1":
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
    return 0o600


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, write: Callable[[BinaryIO], None], mode: int | None = None) -> None:
    """Write ``path`` through a temporary file beside it: fsync, then ``os.replace``.

    The new file gets the permissions of the file it replaces (owner-only for a
    new file unless ``KUOMIAN_SHARED_OUTPUT=1``); it is never readable by others
    while it is written.
    """
    path = Path(path)
    if mode is None:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _default_mode()
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_parquet_atomically(df: pl.DataFrame, path: Path) -> None:
    write_atomically(path, lambda fh: df.write_parquet(fh))


# ---------------------------------------------------------------- reading answers


@dataclass(frozen=True)
class SurveyColumn:
    field: str
    header: str
    allowed: tuple[str, ...] = ()
    type: str = "text"


def survey_columns() -> list[SurveyColumn]:
    """The stored survey columns of rules/survey.yaml (调查人 is not stored)."""
    out = []
    for c in load_rules("survey")["columns"]:
        if c.get("stored", True) is False or c["field"] not in SURVEY_FIELDS:
            continue
        out.append(
            SurveyColumn(c["field"], c["header"], tuple(c.get("allowed") or ()), c.get("type", "text"))
        )
    return out


@dataclass
class AnswerRow:
    file: str
    row: int
    person_key: str
    values: dict[str, object]  # field -> canonical answer (only non-blank cells)


def _cell(v) -> str:
    if v is None:
        return ""
    s = unicodedata.normalize("NFKC", str(v))
    return s.strip().strip("'\u200b\ufeff").strip()


def _check_value(col: SurveyColumn, raw: str) -> tuple[object | None, str | None]:
    """(canonical value, None) or (None, reason)."""
    if col.allowed:
        want = {normalise_header(a): a for a in col.allowed}
        hit = want.get(normalise_header(raw))
        if hit is None:
            return None, f"{col.header} {raw!r} is not an allowed answer ({' / '.join(col.allowed)})"
        return hit, None
    if col.type == "date":
        d = parse_date(raw)
        if d is None:
            return None, f"{col.header} {raw!r} is not a date (write it like 2026-04-15)"
        if not DATE_RANGE[0] <= d <= DATE_RANGE[1]:
            return None, f"{col.header} {raw!r} is not a plausible survey date"
        return d, None
    return raw, None


@dataclass
class FileAnswers:
    answers: list[AnswerRow] = field(default_factory=list)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    blank: int = 0
    rows: int = 0


def read_answers(path: Path) -> FileAnswers:
    """The answers of one filled-in hand-off (every cell as text, any encoding Excel writes)."""
    from ..stages.load import ROW_COL, read_any

    path = Path(path)
    if not path.is_file():
        raise KuomianError(f"{path}: no such file. Give the filled-in hand-off (.csv or .xlsx).")
    expected = {*KEY_HEADERS, *(c.header for c in survey_columns())}
    header, body, *_ = read_any(path, expected)  # the sheet and header row holding these columns
    norm = [normalise_header(h) for h in header]
    key_j = next((j for j, h in enumerate(norm) if h in {normalise_header(k) for k in KEY_HEADERS}), None)
    if key_j is None:
        raise FileProblem(
            path, "there is no 编号 column (the person_key of the hand-off)",
            "Use the hand-off the refresh wrote and keep its header row as it is.",
        )  # fmt: skip
    cols = [
        (c, norm.index(normalise_header(c.header)))
        for c in survey_columns()
        if normalise_header(c.header) in norm
    ]
    if not cols:
        raise FileProblem(
            path,
            "none of the survey columns (" + " / ".join(c.header for c in survey_columns()) + ") is there",
            "Use the hand-off the refresh wrote and keep its header row as it is.",
        )
    out = FileAnswers()
    wanted = [key_j] + [j for _, j in cols]
    records = body.select([pl.col(f"c{j}") for j in wanted] + [pl.col(ROW_COL)]).rows()
    for rec in records:
        row, rec = rec[-1], rec[:-1]  # as the user sees it in the sheet (header = 1 when it is row 1)
        key = _cell(rec[0]).upper()
        raws = {c.field: _cell(v) for (c, _), v in zip(cols, rec[1:], strict=True)}
        given = {f: v for f, v in raws.items() if v}
        if not key and not given:
            continue  # an empty line
        out.rows += 1
        if not given:
            out.blank += 1
            continue
        if not key:
            out.rejected.append((path.name, row, "编号 is empty: the row cannot be matched to a person"))
            continue
        values, reasons = {}, []
        for c, _ in cols:
            if not raws[c.field]:
                continue
            v, why = _check_value(c, raws[c.field])
            if why:
                reasons.append(why)
            else:
                values[c.field] = v
        if reasons:
            out.rejected.append((path.name, row, "; ".join(reasons)))
            continue
        out.answers.append(AnswerRow(path.name, row, key, values))
    return out


# ---------------------------------------------------------------- writing answers


@dataclass
class SurveyReport:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    applied: list[tuple[str, int, str]] = field(default_factory=list)  # (file, row, person_key)
    unchanged: int = 0
    blank: int = 0
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # (file, row, reason)
    not_found: list[tuple[str, int, str]] = field(default_factory=list)  # (file, row, 编号)
    superseded: list[tuple[str, int, str, int]] = field(default_factory=list)  # (file, row, by file, by row)
    persons_changed: int = 0
    files_written: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"survey: {self.rows} rows read, {len(self.applied)} applied, {self.unchanged} unchanged, "
            f"{len(self.rejected)} rejected, {len(self.not_found)} not found, {self.blank} without answers"
        )


def _schema_cast(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        *[pl.col(f).cast(pl.String) for f in SURVEY_FIELDS if f != "surveyed_on"],
        pl.col("surveyed_on").cast(pl.Date),
    )


def _apply(df: pl.DataFrame, updates: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """``df`` with the non-null values of ``updates`` (by person_key) written in; and how many rows changed."""
    if "person_key" not in df.columns or not all(f in df.columns for f in SURVEY_FIELDS):
        raise KuomianError(
            "the registry files lack the survey columns: re-run the refresh with this version of kuomian."
        )
    cols = list(df.columns)
    df = _schema_cast(df)
    up = updates.rename({f: f"_new_{f}" for f in SURVEY_FIELDS})
    joined = df.with_row_index("_pos").join(up, on="person_key", how="left").sort("_pos")
    changed = pl.lit(False)
    for f in SURVEY_FIELDS:
        changed = changed | (pl.col(f"_new_{f}").is_not_null() & pl.col(f).ne_missing(pl.col(f"_new_{f}")))
    n = int(joined.select(changed.sum()).item())
    out = joined.with_columns([pl.coalesce(f"_new_{f}", f).alias(f) for f in SURVEY_FIELDS]).select(cols)
    return out, n


def import_answers(files: list[Path], registry: Path, *, progress=lambda msg: None) -> SurveyReport:
    """Read filled-in hand-offs and write their answers into OUT_DIR (see the module docstring)."""
    from ..stages.publish import OutputLock

    registry = Path(registry)
    persons_path = registry / "persons.parquet"
    if not registry.is_dir():
        raise KuomianError(
            f"--registry {registry}: no such folder. Point it at the OUT_DIR the hand-offs came from."
        )
    if not persons_path.exists():
        raise KuomianError(
            f"--registry {registry}: not a kuomian output folder (no persons.parquet). "
            "Point it at the OUT_DIR the hand-offs came from."
        )
    if not files:
        raise KuomianError("give at least one filled-in hand-off file (.csv or .xlsx).")
    report = SurveyReport(files=[Path(f).name for f in files])
    answers: list[AnswerRow] = []
    for f in files:
        progress(f"reading {Path(f).name}")
        fa = read_answers(Path(f))
        report.rows += fa.rows
        report.blank += fa.blank
        report.rejected.extend(fa.rejected)
        answers.extend(fa.answers)

    with OutputLock(registry.resolve()):
        persons = _schema_cast(pl.read_parquet(persons_path))
        current = {
            r["person_key"]: r for r in persons.select("person_key", *SURVEY_FIELDS).iter_rows(named=True)
        }
        merged: dict[str, dict] = {}
        last_row: dict[str, tuple[str, int]] = {}
        for a in answers:
            if a.person_key not in current:
                report.not_found.append((a.file, a.row, a.person_key))
                continue
            if a.person_key in last_row:
                f0, r0 = last_row[a.person_key]
                report.superseded.append((f0, r0, a.file, a.row))
            last_row[a.person_key] = (a.file, a.row)
            merged.setdefault(a.person_key, {}).update(a.values)
            if all(current[a.person_key][k] == v for k, v in a.values.items()):
                report.unchanged += 1
            else:
                report.applied.append((a.file, a.row, a.person_key))

        updates = pl.DataFrame(
            [{"person_key": k, **{f: v.get(f) for f in SURVEY_FIELDS}} for k, v in merged.items()],
            schema={"person_key": pl.String, **{f: pl.String for f in SURVEY_FIELDS if f != "surveyed_on"},
                    "surveyed_on": pl.Date},
        )  # fmt: skip
        new_persons, n = _apply(persons, updates)
        report.persons_changed = n
        # The registry partitions first, persons.parquet last: if a run is killed in between,
        # importing the same files again finishes the job (every file is compared, not assumed).
        for part in sorted((registry / "registry").glob("street_code=*/part-*.parquet")):
            df = pl.read_parquet(part)
            new_df, k = _apply(df, updates)
            if k:
                write_parquet_atomically(new_df, part)
                report.files_written.append(str(part.relative_to(registry)))
        if n:
            write_parquet_atomically(new_persons, persons_path)
            report.files_written.append("persons.parquet")
    report.rejected = [(f, r, redact_ids(why)) for f, r, why in report.rejected]
    return report
