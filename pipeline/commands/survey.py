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
so a refresh cannot replace the folder under the import (nor read it half-done as
``--previous``). Importing the same file again changes nothing and says so
(``unchanged``). A file changes only its own street, named by its file name; two
rows for one person with different answers are a conflict: both reported,
neither applied.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from ..core import fileio
from ..core.config import load_rules, normalise_header
from ..core.dates import parse_date
from ..core.errors import FileProblem, KuomianError
from ..core.fileio import output_lock, published_persons, write_parquet_atomically
from ..core.ids import redact_ids
from ..stages.publish import SURVEY_FIELDS

KEY_HEADERS = ("编号", "person_key")
DATE_RANGE = (date(2000, 1, 1), date(2100, 12, 31))
UNASSIGNED_STEM = "unassigned"


# ---------------------------------------------------------------- which street a file is from


def file_street(path: Path) -> tuple[bool, str | None]:
    """(named, street_code) of a hand-off file, from its name as the refresh wrote it
    (``<street_code>_<street_name>.csv``) or as a street renamed it (``连然街道_已填.xlsx``).
    ``(True, None)``: the file of people with no street; ``(False, None)``: the name names none."""
    from ..core.config import street_names

    name = unicodedata.normalize("NFKC", Path(path).name)
    names = street_names()
    m = re.match(r"^([0-9]{12})(?![0-9])", name)
    if m and m.group(1) in names:
        return True, m.group(1)
    if name.startswith(UNASSIGNED_STEM) or "未分配街道" in name:
        return True, None
    hits = {code for code, street in names.items() if street and street in name}
    if not hits:  # 连然_已填.csv: the name without 街道/镇/乡
        hits = {
            code for code, street in names.items()
            if len(short := re.sub("(街道|镇|乡)$", "", street or "")) >= 2 and short in name
        }  # fmt: skip
    if len(hits) == 1:
        return True, hits.pop()
    return False, None


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
    street: str | None = None  # the street the file is from (None: people with no street)


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
    """The answers of one filled-in hand-off (every cell as text, any encoding Excel writes).

    Every sheet holding the hand-off's columns is read: the street's full sheet and the one
    sheet per community that the refresh writes, so answers typed into either count (a row
    left blank in one sheet is not an answer, so the same person answered in one sheet only is
    no conflict)."""
    from ..readers import read_every

    path = Path(path)
    if not path.is_file():
        raise KuomianError(f"{path}: no such file. Give the filled-in hand-off (.csv or .xlsx).")
    expected = {*KEY_HEADERS, *(c.header for c in survey_columns())}
    _, tables = read_every(path, expected)  # each sheet's header row holding these columns
    out = FileAnswers()
    for table, body in tables:
        label = f"{path.name} [{table.sheet}]" if len(tables) > 1 else path.name
        _read_sheet_answers(path, label, table.header, body, out)
    return out


def _read_sheet_answers(
    path: Path, label: str, header: list[str], body: pl.DataFrame, out: FileAnswers
) -> None:
    from ..readers import ROW_COL

    norm = [normalise_header(h) for h in header]
    key_j = next((j for j, h in enumerate(norm) if h in {normalise_header(k) for k in KEY_HEADERS}), None)
    if key_j is None:
        raise FileProblem(
            path, f"there is no 编号 column (the person_key of the hand-off) in {label}",
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
            "none of the survey columns ("
            + " / ".join(c.header for c in survey_columns())
            + f") is in {label}",
            "Use the hand-off the refresh wrote and keep its header row as it is.",
        )
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
            out.rejected.append((label, row, "编号 is empty: the row cannot be matched to a person"))
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
            out.rejected.append((label, row, "; ".join(reasons)))
            continue
        out.answers.append(AnswerRow(label, row, key, values))


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
    other_street: list[tuple[str, int, str]] = field(default_factory=list)  # (file, row, 编号): not written
    conflicts: list[tuple[str, int, str, int]] = field(default_factory=list)  # (file, row, other file, row)
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


def import_answers(
    files: list[Path], registry: Path, *, any_street: bool = False, progress=lambda msg: None
) -> SurveyReport:
    """Read filled-in hand-offs and write their answers into OUT_DIR (see the module docstring).

    A file changes only its own street (its name says which, :func:`file_street`): a row for a
    person of another street is reported in ``other_street`` and not written, unless
    ``any_street``. Two rows for one person with different answers are both reported in
    ``conflicts`` and neither is applied. The OUT_DIR lock is held (waiting up to 30 s for another
    import, or for a refresh reading OUT_DIR as ``--previous``).
    """
    registry = Path(registry)
    persons_path = published_persons(
        registry, name="--registry", hint="Point it at the OUT_DIR the hand-offs came from."
    )
    if not files:
        raise KuomianError("give at least one filled-in hand-off file (.csv or .xlsx).")
    report = SurveyReport(files=[Path(f).name for f in files])
    answers: list[AnswerRow] = []
    for f in files:
        progress(f"reading {Path(f).name}")
        fa = read_answers(Path(f))
        named, street = file_street(Path(f))
        if not named and not any_street:
            raise KuomianError(
                f"{f}: the file name does not say which street it is from, so its rows cannot be checked "
                "against that street. Keep the hand-off's name (<street_code>_<street>.csv, or a name "
                "holding the street such as 连然街道_已填.xlsx), or add --any-street."
            )
        report.rows += fa.rows
        report.blank += fa.blank
        report.rejected.extend(fa.rejected)
        for a in fa.answers:
            a.street = street
        answers.extend(fa.answers)

    what = "another kuomian command is using this folder right now (an import, or a refresh reading it)"
    with output_lock(registry.resolve(), wait=fileio.IMPORT_WAIT, what=what):
        persons = _schema_cast(pl.read_parquet(persons_path))
        current = {
            r["person_key"]: r
            for r in persons.select("person_key", "street_code", *SURVEY_FIELDS).iter_rows(named=True)
        }
        by_person: dict[str, list[AnswerRow]] = {}
        for a in answers:
            if a.person_key not in current:
                report.not_found.append((a.file, a.row, a.person_key))
            elif not any_street and current[a.person_key]["street_code"] != a.street:
                report.other_street.append((a.file, a.row, a.person_key))
            else:
                by_person.setdefault(a.person_key, []).append(a)
        merged: dict[str, dict] = {}
        for key, rows in by_person.items():
            if any(r.values != rows[0].values for r in rows[1:]):
                first = rows[0]
                for r in rows[1:]:
                    report.conflicts.append((first.file, first.row, r.file, r.row))
                continue
            a = rows[0]
            merged[key] = a.values
            if all(current[key][k] == v for k, v in a.values.items()):
                report.unchanged += len(rows)
            else:
                report.applied.append((a.file, a.row, key))
                report.unchanged += len(rows) - 1

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


def keep_imported_answers(out_dir: Path, previous: Path | None) -> None:
    """Before ``refresh --force`` replaces OUT_DIR: refuse if it holds survey answers that the run
    would drop (imported into it, and not carried from ``previous``)."""
    p = Path(out_dir) / "persons.parquet"
    if not p.exists() or (previous is not None and Path(previous).resolve() == Path(out_dir).resolve()):
        return
    try:
        have = pl.read_parquet(p, columns=["id_number", *SURVEY_FIELDS])
    except Exception:  # noqa: BLE001 - not a readable registry: nothing of value to keep
        return
    answered = have.filter(pl.any_horizontal([pl.col(f).is_not_null() for f in SURVEY_FIELDS]))
    if answered.is_empty():
        return
    if previous is not None:
        carried = _schema_cast(
            pl.read_parquet(Path(previous) / "persons.parquet", columns=["id_number", *SURVEY_FIELDS])
        )
        answered = _schema_cast(answered).join(
            carried, on=["id_number", *SURVEY_FIELDS], how="anti", nulls_equal=True
        )
    if answered.height:
        raise KuomianError(
            f"--out {out_dir}: it holds survey answers for {answered.height} persons that this run would drop. "
            f"Add --previous {out_dir} to carry them forward, or choose another --out."
        )
