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
from ..core.config import normalise_header
from ..core.dates import parse_date
from ..core.errors import FileProblem, KuomianError
from ..core.fileio import output_lock, published_persons, write_parquet_atomically
from ..core.i18n import _
from ..core.ids import person_refs, redact_ids, shared_numbers
from ..core.labels import HANDOFF_HEADERS, UNASSIGNED_STREET
from ..core.policy import SurveyColumn, policy
from ..report.handoff import REGISTRY_HEADER
from ..stages.after_survey import (
    EVIDENCE_SCHEMA,
    apply_effects,
    note_visits,
    with_evidence_columns,
    with_targets,
)
from ..stages.publish import SURVEY_FIELDS

KEY_HEADERS = (HANDOFF_HEADERS["person_key"], "person_key")
DATE_RANGE = (date(2000, 1, 1), date(2100, 12, 31))
UNASSIGNED_STEM = "unassigned"


# ---------------------------------------------------------------- which street a file is from


def file_street(path: Path) -> tuple[bool, str | None]:
    """(named, street_code) of a hand-off file, from its name as the refresh wrote it
    (``<street_code>_<street_name>.csv``) or as a street renamed it (``连然街道_已填.xlsx``).
    ``(True, None)``: the file of people with no street; ``(False, None)``: the name names none."""
    name = unicodedata.normalize("NFKC", Path(path).name)
    names = policy().street_names
    m = re.match(r"^([0-9]{12})(?![0-9])", name)
    if m and m.group(1) in names:
        return True, m.group(1)
    if name.startswith(UNASSIGNED_STEM) or UNASSIGNED_STREET in name:
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


def survey_columns() -> tuple[SurveyColumn, ...]:
    """The stored survey columns of rules/survey.yaml (调查人 is not stored; the policy check
    holds every stored one to persons.parquet's survey fields)."""
    return policy().survey.stored


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
            return None, _("{column} {value} is not an allowed answer ({allowed})").format(
                column=col.header, value=repr(raw), allowed=" / ".join(col.allowed)
            )
        return hit, None
    if col.type == "date":
        d = parse_date(raw)
        if d is None:
            return None, _("{column} {value} is not a date (write it like 2026-04-15)").format(
                column=col.header, value=repr(raw)
            )
        if not DATE_RANGE[0] <= d <= DATE_RANGE[1]:
            return None, _("{column} {value} is not a plausible survey date").format(
                column=col.header, value=repr(raw)
            )
        return d, None
    return raw, None


@dataclass
class FileAnswers:
    answers: list[AnswerRow] = field(default_factory=list)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    blank: int = 0
    rows: int = 0
    registry_ids: set[str] = field(default_factory=set)  # the 实名库批次 of its rows


def read_answers(path: Path) -> FileAnswers:
    """The answers of one filled-in hand-off (every cell as text, any encoding Excel writes).

    Every sheet holding the hand-off's columns is read: the street's full sheet and the one
    sheet per community that the refresh writes, so answers typed into either count (a row
    left blank in one sheet is not an answer, so the same person answered in one sheet only is
    no conflict)."""
    from ..readers import read_every

    path = Path(path)
    if not path.is_file():
        raise KuomianError(
            _("{path}: no such file. Give the filled-in hand-off (.csv or .xlsx).").format(path=path)
        )
    expected = {*KEY_HEADERS, *(c.header for c in survey_columns())}
    _header, tables = read_every(path, expected)  # each sheet's header row holding these columns
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
            path, _("there is no 编号 column (the person_key of the hand-off) in {where}").format(where=label),
            _("Use the hand-off the refresh wrote and keep its header row as it is."),
        )  # fmt: skip
    cols = [
        (c, norm.index(normalise_header(c.header)))
        for c in survey_columns()
        if normalise_header(c.header) in norm
    ]
    if not cols:
        raise FileProblem(
            path,
            _("none of the survey columns ({columns}) is in {where}").format(
                columns=" / ".join(c.header for c in survey_columns()), where=label
            ),
            _("Use the hand-off the refresh wrote and keep its header row as it is."),
        )
    reg_j = next((j for j, h in enumerate(norm) if h == normalise_header(REGISTRY_HEADER)), None)
    if reg_j is not None:
        ids = body.select(pl.col(f"c{reg_j}").cast(pl.String)).to_series().drop_nulls().unique().to_list()
        out.registry_ids.update(_cell(v) for v in ids if _cell(v))
    wanted = [key_j] + [j for _c, j in cols]
    records = body.select([pl.col(f"c{j}") for j in wanted] + [pl.col(ROW_COL)]).rows()
    for rec in records:
        row, rec = rec[-1], rec[:-1]  # as the user sees it in the sheet (header = 1 when it is row 1)
        key = _cell(rec[0]).upper()
        raws = {c.field: _cell(v) for (c, _j), v in zip(cols, rec[1:], strict=True)}
        given = {f: v for f, v in raws.items() if v}
        if not key and not given:
            continue  # an empty line
        out.rows += 1
        if not given:
            out.blank += 1
            continue
        if not key:
            out.rejected.append((label, row, _("编号 is empty: the row cannot be matched to a person")))
            continue
        values, reasons = {}, []
        for c, _j in cols:
            if not raws[c.field]:
                continue
            v, why = _check_value(c, raws[c.field])
            if why:
                reasons.append(why)
            else:
                values[c.field] = v
        if reasons:
            out.rejected.append((label, row, _("; ").join(reasons)))
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
    # (file, row, date): dated before the registry's as-of date, not applied
    too_early: list[tuple[str, int, str]] = field(default_factory=list)
    # (file, row, date): older than the answer already stored (a later visit is kept)
    superseded: list[tuple[str, int, str]] = field(default_factory=list)
    # (file, its registry): written from another registry, let in by --any-registry
    other_registry: list[tuple[str, str]] = field(default_factory=list)
    effects: dict[str, int] = field(default_factory=dict)  # persons per status/flag the answers give now
    persons_changed: int = 0
    files_written: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return _(
            "survey: {rows} rows read, {applied} applied, {unchanged} unchanged, "
            "{rejected} rejected, {not_found} not found, {blank} without answers"
        ).format(
            rows=self.rows, applied=len(self.applied), unchanged=self.unchanged, rejected=len(self.rejected),
            not_found=len(self.not_found), blank=self.blank,
        )  # fmt: skip


def _schema_cast(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        *[pl.col(f).cast(pl.String) for f in SURVEY_FIELDS if f != "surveyed_on"],
        pl.col("surveyed_on").cast(pl.Date),
    )


def _apply(df: pl.DataFrame, updates: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """``df`` with the non-null values of ``updates`` (by person_key) written in (the not-found
    visits and their date as they are: a found person's count goes back to zero)."""
    if "person_key" not in df.columns or not all(f in df.columns for f in SURVEY_FIELDS):
        raise KuomianError(
            _("the registry files lack the survey columns: re-run the refresh with this version of kuomian.")
        )
    cols = list(df.columns)
    up = updates.rename({f: f"_new_{f}" for f in fields}).with_columns(_hit=pl.lit(True))
    joined = df.with_row_index("_pos").join(up, on="person_key", how="left").sort("_pos")
    exact = ("not_found_visits", "not_found_on")
    return joined.with_columns(
        [pl.coalesce(f"_new_{f}", f).alias(f) for f in fields if f not in exact]
        + [pl.when(pl.col("_hit")).then(pl.col(f"_new_{f}")).otherwise(pl.col(f)).alias(f) for f in exact]
    ).select(cols)


def _column_order(persons: pl.DataFrame) -> list[str]:
    return list(persons.columns)


def _changed_rows(old: pl.DataFrame, new: pl.DataFrame) -> int:
    """How many persons differ between two persons frames of the same rows."""
    if old.columns != new.columns or old.height != new.height:
        return new.height
    cols = [
        c
        for c in new.columns
        if new.schema[c] != pl.List(pl.String) and not isinstance(new.schema[c], pl.List)
    ]
    diff = pl.any_horizontal([old[c].ne_missing(new[c].cast(old.schema[c])) for c in cols])
    return int(pl.select(diff.sum()).item())


def _effects_counts(persons: pl.DataFrame) -> dict[str, int]:
    sv = policy().survey
    out = {x.reason: int((persons["exclusion_reason"] == x.reason).sum()) for x in sv.exclude}
    out[sv.elsewhere_status] = int((persons["status"] == sv.elsewhere_status).sum())
    out["not_found"] = int(persons["survey_flag"].is_not_null().sum())
    return out


def _write_indicators(registry: Path, persons: pl.DataFrame, report: SurveyReport) -> None:
    """indicators.csv again, counting the statuses the answers gave (已在外地参保 is insured)."""
    import os
    import tempfile

    from ..core.labels import indicator_headers
    from ..stages.publish import indicators_from_persons, write_frame_csv

    path = registry / "indicators.csv"
    fd, tmp = tempfile.mkstemp(prefix=".indicators.tmp-", dir=registry)
    os.close(fd)
    try:
        write_frame_csv(Path(tmp), indicators_from_persons(persons), indicator_headers())
        if path.exists() and Path(tmp).read_bytes() == path.read_bytes():
            return
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
        report.files_written.append("indicators.csv")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def registry_identity(registry: Path) -> tuple[str | None, date | None]:
    """(registry_id, as-of date) from OUT_DIR/manifest.json (None for a registry written before
    hand-offs carried their registry)."""
    import json

    try:
        m = json.loads((registry / "manifest.json").read_text("utf-8"))
        as_of = date.fromisoformat(m["as_of"]) if m.get("as_of") else None
        return m.get("registry_id"), as_of
    except (OSError, ValueError, TypeError, KeyError):
        return None, None


def check_registry(path: Path, fa: FileAnswers, registry: Path, reg_id: str, as_of: date | None) -> None:
    """Refuse a hand-off written from another registry (outputs.md), naming both."""
    mine = _("{registry} (实名库批次 {batch}, as-of {as_of})").format(
        registry=registry, batch=reg_id, as_of=as_of
    )
    if not fa.registry_ids:
        if not fa.answers:
            return  # nothing to apply
        raise KuomianError(
            _(
                "{path}: the file carries no registry identity (no {column} column), so it cannot be "
                "checked against --registry {mine}. Use a hand-off that registry wrote, or add --any-registry."
            ).format(path=path, column=REGISTRY_HEADER, mine=mine)
        )
    if fa.registry_ids != {reg_id}:
        theirs = " / ".join(sorted(fa.registry_ids))
        raise KuomianError(
            _(
                "{path}: this hand-off belongs to registry {theirs}, not to --registry {mine}. Import it into "
                "the registry that wrote it, or add --any-registry if the answers are meant for this one."
            ).format(path=path, theirs=theirs, mine=mine)
        )


def import_answers(
    files: list[Path],
    registry: Path,
    *,
    any_street: bool = False,
    any_registry: bool = False,
    progress=lambda msg: None,
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
        registry, name="--registry", hint=_("Point it at the OUT_DIR the hand-offs came from.")
    )
    if not files:
        raise KuomianError(_("give at least one filled-in hand-off file (.csv or .xlsx)."))
    policy()  # the policy (survey.yaml's answers and effects, targets.yaml) is checked before any file is read
    report = SurveyReport(files=[Path(f).name for f in files])
    reg_id, as_of = registry_identity(registry)
    answers = _read_all(files, registry, reg_id, as_of, report, any_street, any_registry, progress)

    what = _("another kuomian command is using this folder right now (an import, or a refresh reading it)")
    with output_lock(registry.resolve(), wait=fileio.IMPORT_WAIT, what=what):
        persons = with_evidence_columns(_schema_cast(pl.read_parquet(persons_path)))
        stored = ["person_key", "street_code", *SURVEY_FIELDS, "not_found_visits", "not_found_on"]
        current = {r["person_key"]: r for r in persons.select(stored).iter_rows(named=True)}
        merged = _merge_answers(answers, current, report, any_street)
        carried, updates = _updates(merged)
        new_persons = _apply(persons, updates, carried)
        # the answers act (rules.md "After the survey"), and this year's key targets follow them
        new_persons = with_targets(apply_effects(new_persons), as_of or date.today())
        new_persons = new_persons.select(_column_order(persons))
        old_persons = pl.read_parquet(persons_path)
        changed = _changed_rows(old_persons, new_persons)
        report.persons_changed = changed
        report.effects = _effects_counts(new_persons)
        # The registry partitions and indicators.csv first, persons.parquet last: if a run is
        # killed in between, importing the same files again finishes the job (every file is
        # compared with what it should hold, not assumed).
        _write_registry_parts(registry, new_persons, report)
        if changed or not (registry / "indicators.csv").exists():
            _write_indicators(registry, new_persons, report)
        if not old_persons.equals(new_persons):
            write_parquet_atomically(new_persons, persons_path)
            report.files_written.append("persons.parquet")
    report.rejected = [(f, r, redact_ids(why)) for f, r, why in report.rejected]
    return report


def _read_all(
    files: list[Path], registry: Path, reg_id: str | None, as_of: date | None, report: SurveyReport,
    any_street: bool, any_registry: bool, progress,
) -> list[AnswerRow]:  # fmt: skip
    """Every file's answers (each file checked against the registry and its street named); the
    rows' counts, rejections and answers dated before the registry go into ``report``."""
    answers: list[AnswerRow] = []
    for f in files:
        progress(_("reading {file}").format(file=Path(f).name))
        fa = read_answers(Path(f))
        if reg_id is not None and not any_registry:
            check_registry(Path(f), fa, registry, reg_id, as_of)
        elif reg_id is not None and fa.registry_ids != {reg_id}:
            report.other_registry.append((Path(f).name, " / ".join(sorted(fa.registry_ids)) or "none"))
        named, street = file_street(Path(f))
        if not named and not any_street:
            raise KuomianError(
                _(
                    "{path}: the file name does not say which street it is from, so its rows cannot be checked "
                    "against that street. Keep the hand-off's name (<street_code>_<street>.csv, or a name "
                    "holding the street such as 连然街道_已填.xlsx), or add --any-street."
                ).format(path=f)
            )
        report.rows += fa.rows
        report.blank += fa.blank
        report.rejected.extend(fa.rejected)
        for a in fa.answers:
            a.street = street
            on = a.values.get("surveyed_on")
            if as_of is not None and isinstance(on, date) and on < as_of:
                # an answer older than the registry was given about last year's list (issue 21)
                report.too_early.append((a.file, a.row, on.isoformat()))
                continue
            answers.append(a)
    return answers


def _merge_answers(
    answers: list[AnswerRow], current: dict[str, dict], report: SurveyReport, any_street: bool
) -> dict[str, dict]:
    """person_key -> the answer to store (with its evidence and visits), against the stored
    ``current``; not found, other street, conflicts, earlier visits and unchanged rows go into
    ``report``."""
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
        old = current[key]
        on, stored_on = a.values.get("surveyed_on"), old.get("surveyed_on")
        if isinstance(on, date) and isinstance(stored_on, date) and on < stored_on:
            # an earlier visit never overwrites a later one (a first round imported again)
            report.superseded.extend((r.file, r.row, on.isoformat()) for r in rows)
            continue
        visits, last = note_visits(old, a.values)
        if all(old[k] == v for k, v in a.values.items()):
            report.unchanged += len(rows)
            continue
        # the evidence of the answer: its file ([sheet]) and row; its date is surveyed_on
        merged[key] = {**a.values, "survey_file": redact_ids(a.file), "survey_row": a.row,
                       "not_found_visits": visits, "not_found_on": last}  # fmt: skip
        report.applied.append((a.file, a.row, key))
        report.unchanged += len(rows) - 1
    return merged


def _updates(merged: dict[str, dict]) -> tuple[list[str], pl.DataFrame]:
    """The columns carried from the answers, and the answers as a frame of them (one row per person)."""
    carried = [*SURVEY_FIELDS, "survey_file", "survey_row", "not_found_visits", "not_found_on"]
    schema: dict[str, pl.DataType] = {"person_key": pl.String()}
    schema.update({f: pl.String() for f in SURVEY_FIELDS if f != "surveyed_on"})
    schema["surveyed_on"] = pl.Date()
    schema.update({c: EVIDENCE_SCHEMA[c] for c in carried[len(SURVEY_FIELDS) :]})
    updates = pl.DataFrame(
        [{"person_key": k, **{f: v.get(f) for f in carried}} for k, v in merged.items()], schema=schema
    )
    return carried, updates


def _write_registry_parts(registry: Path, new_persons: pl.DataFrame, report: SurveyReport) -> None:
    """``registry/street_code=*/part-0.parquet``: each street's registry persons, written only
    where it changed."""
    in_registry = new_persons.filter(pl.col("status").is_in(list(policy().statuses.registry)))
    parts = {p.parent.name.removeprefix("street_code="): p
             for p in sorted((registry / "registry").glob("street_code=*/part-0.parquet"))}  # fmt: skip
    codes = set(parts) | set(in_registry["street_code"].fill_null(UNASSIGNED_STEM).unique().to_list())
    for code in sorted(codes):
        part = in_registry.filter(pl.col("street_code").fill_null(UNASSIGNED_STEM) == code).drop(
            "street_code"
        )
        path = parts.get(code) or registry / "registry" / f"street_code={code}" / "part-0.parquet"
        if path.exists() and pl.read_parquet(path).equals(part):
            continue
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_parquet_atomically(part, path)
        report.files_written.append(str(path.relative_to(registry)))


def _who_and_answers(path: Path) -> pl.DataFrame:
    """A persons.parquet's id_number, name, shared_id (where it has one) and survey answers."""
    have = pl.read_parquet_schema(path)
    return pl.read_parquet(
        path, columns=["id_number", "name", *(["shared_id"] if "shared_id" in have else []), *SURVEY_FIELDS]
    )


def keep_imported_answers(out_dir: Path, previous: Path | None) -> None:
    """Before ``refresh --force`` replaces OUT_DIR: refuse if it holds survey answers that the run
    would drop (imported into it, and not carried from ``previous``)."""
    p = Path(out_dir) / "persons.parquet"
    if not p.exists() or (previous is not None and Path(previous).resolve() == Path(out_dir).resolve()):
        return
    try:
        have = _who_and_answers(p)
    except Exception:  # noqa: BLE001 - not a readable registry: nothing of value to keep
        return
    answered = have.filter(pl.any_horizontal([pl.col(f).is_not_null() for f in SURVEY_FIELDS]))
    if answered.is_empty():
        return
    if previous is not None:
        carried = _schema_cast(_who_and_answers(Path(previous) / "persons.parquet"))
        # who is who: the ID, told apart by name where either registry has it shared (重号)
        both = shared_numbers(answered, carried)
        answered = _schema_cast(answered).with_columns(_ref=person_refs(answered, both))
        carried = carried.with_columns(_ref=person_refs(carried, both))
        answered = answered.join(
            carried.select("_ref", *SURVEY_FIELDS), on=["_ref", *SURVEY_FIELDS], how="anti", nulls_equal=True
        )
    if answered.height:
        raise KuomianError(
            _(
                "--out {out}: it holds survey answers for {n} persons that this run would drop. "
                "Add --previous {out} to carry them forward, or choose another --out."
            ).format(out=out_dir, n=answered.height)
        )
