"""Stage 5 — publish: write OUT_DIR atomically.

Entry point: :func:`publish`. Everything is written into a private staging
folder beside OUT_DIR (``.OUT_DIR.staging-<pid>``), every file fsynced, then
moved into place with renames (:mod:`kuomian.core.fileio`). A run that fails or
is killed leaves the old OUT_DIR untouched (or none); the staging folder is
removed by the next kuomian command. A lock beside OUT_DIR makes a second
concurrent run fail at once. Every CSV for people is written through
:mod:`kuomian.core.cells` (no formula from data). ``OUT_DIR/state/`` holds the
review pairs offered and the review decisions carried forward.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..core.cells import write_people_csv
from ..core.db import frame, ident, scalar, sql_literal, store
from ..core.errors import KuomianError
from ..core.fileio import (  # noqa: F401 - the atomic-output API, re-exported for callers of publish
    clean_leftovers,
    move_into_place,
    output_lock,
    staging_dir,
)
from ..core.i18n import _
from ..core.ids import person_refs, shared_numbers
from ..core.labels import RECON_HEADERS, employer_headers, indicator_headers
from ..core.policy import SURVEY_FIELDS as POLICY_SURVEY_FIELDS
from ..core.policy import policy
from .after_survey import EVIDENCE_COLUMNS, EVIDENCE_SCHEMA, apply_effects, disagreements, with_targets
from .classify import PERSON_COLUMNS


def __getattr__(name: str):
    """``REGISTRY_STATUSES``: the registry statuses of the policy in force (rules/statuses.yaml)."""
    if name == "REGISTRY_STATUSES":
        return policy().statuses.registry
    raise AttributeError(name)


# The stored survey answers (rules/survey.yaml; persons.parquet), surveyed_on last.
SURVEY_FIELDS = list(POLICY_SURVEY_FIELDS)
ANSWER_FIELDS = [f for f in SURVEY_FIELDS if f != "surveyed_on"]
# Carried from last year's persons with the answers (their evidence, the visits not found).
CARRIED_EVIDENCE = ["survey_file", "survey_row", "not_found_visits", "not_found_on"]
UNASSIGNED = "unassigned"


@dataclass
class PublishReport:
    files: dict[str, int] = field(default_factory=dict)  # relative path -> rows
    disagreements: int = 0  # carried survey answers this year's extracts contradict
    survey_statuses: int = 0  # persons whose status a carried answer gives

    def summary(self) -> str:
        return _("publish: {files} files").format(files=len(self.files))


# ---------------------------------------------------------------- writers


def write_frame_csv(path: Path, df: pl.DataFrame, headers: dict[str, str]) -> int:
    """A CSV for people with Chinese headers, through the one safe writer (:mod:`kuomian.core.cells`)."""
    return write_people_csv(path, df.select([pl.col(c).alias(h) for c, h in headers.items()]))


def _previous_persons(previous: Path | None) -> pl.DataFrame | None:
    if previous is None:
        return None
    p = previous / "persons.parquet"
    if not p.exists():
        raise KuomianError(
            _("--previous {folder}: no persons.parquet there. Point it at last year's OUT_DIR.").format(
                folder=previous
            )
        )
    return pl.read_parquet(p)


def persons_frame(con: duckdb.DuckDBPyConnection, as_of: date, previous: Path | None) -> pl.DataFrame:
    """persons.parquet as outputs.md lists it (plus address, used by the hand-offs)."""
    return persons_and_disagreements(con, as_of, previous)[0]


def persons_and_disagreements(
    con: duckdb.DuckDBPyConnection, as_of: date, previous: Path | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """persons.parquet (answers carried with ``--previous`` acting again, rules.md "After the
    survey"; this year's key targets) and the carried answers this year's extracts contradict."""
    df = frame(con, "SELECT * FROM cls_persons")  # person_key: link_persons' (link/population.py)
    # person_id is the ID; a holder of a shared household number's is the ID + '#' + name (重号)
    shared = df["shared_id"].any()
    df = df.with_columns(id_number=pl.col("person_id").str.slice(0, 18) if shared else pl.col("person_id"))
    registry_statuses = list(policy().statuses.registry)
    in_registry = pl.col("status").is_in(registry_statuses)
    prev = _previous_persons(previous)
    if prev is None:
        df = df.with_columns(
            first_listed=pl.when(in_registry).then(pl.lit(as_of)).otherwise(None).cast(pl.Date),
            change=pl.lit(None, dtype=pl.String),
            **{f: pl.lit(None, dtype=pl.String) for f in ANSWER_FIELDS},
            surveyed_on=pl.lit(None, dtype=pl.Date),
        )
    else:
        keep = ["id_number", "status", "extract_status", "group", "extract_group", "first_listed", "target_priority",
                *SURVEY_FIELDS,
                *CARRIED_EVIDENCE]  # fmt: skip
        # who is who: the ID, told apart by name where either year has it shared (重号)
        both = shared_numbers(df, prev)
        prev = (
            prev.with_columns(_ref=person_refs(prev, both))
            .select("_ref", *[c for c in keep if c != "id_number" and c in prev.columns])
            .rename({c: f"prev_{c}" for c in keep if c != "id_number" and c in prev.columns})
        )
        df = df.with_columns(_ref=person_refs(df, both)).join(prev, on="_ref", how="left").drop("_ref")
        if (
            "prev_extract_status" in df.columns
        ):  # last year's status from its extracts, before the answers acted
            df = df.with_columns(
                prev_status=pl.coalesce("prev_extract_status", "prev_status"),
                prev_group=pl.when(pl.col("prev_extract_status").is_not_null())
                .then(pl.col("prev_extract_group").cast(pl.Int8))
                .otherwise(pl.col("prev_group").cast(pl.Int8)),
            )
        was = pl.col("prev_status").is_in(registry_statuses).fill_null(False)
        enrolled_now = pl.col("status").is_in(list(policy().enrolled_outside_registry))
        df = df.with_columns(
            first_listed=pl.when(in_registry)
            .then(pl.when(was).then(pl.coalesce("prev_first_listed", pl.lit(as_of))).otherwise(pl.lit(as_of)))
            .cast(pl.Date),
            change=pl.when(in_registry & ~was)
            .then(pl.lit("new"))
            .when(in_registry & was & (pl.col("group") == pl.col("prev_group")))
            .then(pl.lit("unchanged"))
            .when(in_registry & was)
            .then(pl.lit("group_changed"))
            .when(was & enrolled_now)
            .then(pl.lit("enrolled"))
            .when(was)
            .then(pl.lit("left"))
            .otherwise(None),
            # every answer is carried; those of persons out of the registry that act on
            # nothing are dropped below, once the answers have acted
            **{
                f: pl.col(f"prev_{f}") if f"prev_{f}" in df.columns else pl.lit(None)
                for f in [*SURVEY_FIELDS, *CARRIED_EVIDENCE]
            },
        )
        if "prev_target_priority" in df.columns:
            df = df.rename({"prev_target_priority": "_listed_priority"})
        df = df.drop([c for c in df.columns if c.startswith("prev_")])
        if "_listed_priority" in df.columns:
            df = df.rename({"_listed_priority": "prev_target_priority"})
    df = df.with_columns(
        pl.col("surveyed_on").cast(pl.Date), *[pl.col(f).cast(pl.String) for f in ANSWER_FIELDS],
        *[pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
          for c, t in EVIDENCE_SCHEMA.items()],
    )  # fmt: skip
    df = apply_effects(df.with_columns(pl.col("group").cast(pl.Int8)))
    found = disagreements(df.with_columns(pl.col("surveyed_on")))
    # answers of persons out of the registry whose answers act on nothing are not kept
    acted = (pl.col("status") != pl.col("extract_status")) | pl.col("survey_flag").is_not_null()
    keep_answers = pl.col("extract_status").is_in(registry_statuses) | acted
    df = df.with_columns(
        [pl.when(keep_answers).then(pl.col(c)).alias(c) for c in [*SURVEY_FIELDS, *CARRIED_EVIDENCE]]
    )
    df = with_targets(df, as_of)
    order = [
        "person_key", "id_number", "name", "sex", "birth_date", "age", "hukou_local", "hukou_type",
        "street_code", "street_name", "community", "address", "household_no", "status", "exclusion_reason", "group",
        "group_tags", "sources", *(c.name for c in PERSON_COLUMNS), "pension_date",
        "measure", "first_listed", "change", *SURVEY_FIELDS, *EVIDENCE_COLUMNS,
    ]  # fmt: skip
    persons = df.select(order).with_columns(pl.col("group").cast(pl.Int8), pl.col("age").cast(pl.Int16))
    return persons, found


def indicators_from_persons(persons: pl.DataFrame) -> pl.DataFrame:
    """indicators.csv's rows (classify's ``build_indicators``) from a persons frame: after a
    survey import, or when carried answers changed statuses at the refresh."""
    from ..core.db import connect
    from .classify import build_indicators

    con = connect()
    try:
        store(con, "cls_persons", persons.select(person_refs(persons).alias("person_id"),
            "hukou_local", "street_code", "status", "group"))  # fmt: skip
        build_indicators(con)
        return frame(con, "SELECT * FROM cls_indicators")
    finally:
        con.close()


def _survey_statuses_into(con: duckdb.DuckDBPyConnection, persons: pl.DataFrame) -> int:
    """Write the statuses the carried answers gave into ``cls_persons`` and rebuild
    ``cls_indicators``, so that report.html and indicators.csv count them; how many changed."""
    changed = persons.filter(pl.col("status") != pl.col("extract_status"))
    changed = changed.select(person_refs(changed).alias("person_id"), "status", "exclusion_reason", "group")
    if changed.height:
        store(con, "pub_survey_status", changed)
        con.execute(
            """UPDATE cls_persons SET status = s.status, exclusion_reason = s.exclusion_reason, "group" = s."group"
               FROM pub_survey_status s WHERE cls_persons.person_id = s.person_id"""
        )
        store(con, "cls_indicators", indicators_from_persons(persons))
    return changed.height


def write_registry(stage: Path, persons: pl.DataFrame) -> int:
    reg = persons.filter(pl.col("status").is_in(list(policy().statuses.registry)))
    root = stage / "registry"
    root.mkdir()
    for code in sorted(reg["street_code"].fill_null(UNASSIGNED).unique().to_list()):
        part = reg.filter(pl.col("street_code").fill_null(UNASSIGNED) == code).drop("street_code")
        d = root / f"street_code={code}"
        d.mkdir()
        part.write_parquet(d / "part-0.parquet")
    return reg.height


def _drop_standardised_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Of the standardised rows publishing reads only the ID kinds per source (report.html) and
    the rows under review (review.xlsx): ``pub_id_kinds`` and ``pub_review_rows`` keep them, and
    the ``std_<source>`` tables go, so that the persons and the hand-offs have their memory
    (500k: ~400 MB of DuckDB's tables). ``std_quarantine_raw`` stays (quarantine.parquet)."""
    con.execute(
        "CREATE OR REPLACE TABLE pub_id_kinds AS SELECT source, id_kind, count(*) AS n FROM std_rows GROUP BY ALL"
    )
    con.execute(
        """CREATE OR REPLACE TABLE pub_review_rows AS
           SELECT r.row_id, r.source, r.file, r.sheet, r.row, r.name, r.id_canonical, r.id_digits, r.birth_date,
                  r.street_code, r.community
           FROM std_rows r SEMI JOIN link_review v USING (row_id)"""
    )
    con.execute("DROP VIEW IF EXISTS std_rows")
    for name in policy().sources:
        con.execute(f"DROP TABLE IF EXISTS {ident('std_' + name)}")


def publish(
    con: duckdb.DuckDBPyConnection,
    stage: Path,
    *,
    key: bytes,
    as_of: date,
    previous: Path | None,
    manifest: dict,
    decisions: pl.DataFrame | None = None,
    overlap: bool = True,
) -> PublishReport:
    """Write every output file into ``stage`` (the caller moves it into place).

    ``overlap``: the hand-offs are written on a thread of their own while the main thread
    writes the rest; without it, one after the other (less memory at once).

    ``stage/state/`` keeps what the next run and the imports need: the review pairs offered and
    the review ``decisions`` carried forward."""
    from ..report.handoff import write_handoffs
    from ..report.html import write_report

    report = PublishReport()
    _drop_standardised_rows(con)
    # links.parquet straight from DuckDB: a million rows never pass through Python. ``links`` is
    # stored in row order with each row's person_key (link/decisions.py), and DuckDB keeps a
    # single table's order: no join and no sort (Kunming: 54 s within publishing's 2 GB), and
    # written first, before Python holds the persons (Kunming's peak: the two at once, +566 MiB).
    links_copy = f"""
        COPY (
            SELECT source, file, sheet, row, outcome, id_number, person_key, match_rule, confidence, reason
            FROM links
        ) TO {sql_literal(stage / "links.parquet")} (FORMAT parquet)
        """
    con.execute(links_copy)
    persons, found = persons_and_disagreements(con, as_of, previous)
    report.survey_statuses = _survey_statuses_into(con, persons)
    keys = persons.select(person_refs(persons).alias("person_id"), "person_key")
    manifest["registry_id"] = registry_id(manifest, as_of)
    with ThreadPoolExecutor(1, thread_name_prefix="kuomian-handoffs") as pool:
        # the hand-offs, the most Python of publishing, on a thread of their own meanwhile
        handoffs = functools.partial(
            write_handoffs, stage / "handoff", persons, registry_id=manifest["registry_id"]
        )
        running = pool.submit(handoffs) if overlap else None
        persons.write_parquet(stage / "persons.parquet")
        if previous is not None:
            from .after_survey import DISAGREEMENT_COLUMNS

            report.disagreements = found.height
            report.files["survey_disagreements.csv"] = write_frame_csv(
                stage / "survey_disagreements.csv", found, DISAGREEMENT_COLUMNS
            )
        report.files["persons.parquet"] = persons.height
        report.files["registry/"] = write_registry(stage, persons)
        recon = _write_lists_and_sheets(con, stage, keys, key, manifest, decisions, report)
        # the page reads none of the outputs' counts: written while the hand-offs finish
        write_report(stage / "report.html", con, manifest, recon, persons)
        report.files["handoff/"] = running.result() if running else handoffs()
        manifest["outputs"] = dict(report.files)
        (stage / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1, default=str), "utf-8"
        )
        report.files["report.html"] = 1
    return report


def _write_lists_and_sheets(
    con: duckdb.DuckDBPyConnection,
    stage: Path,
    keys: pl.DataFrame,
    key: bytes,
    manifest: dict,
    decisions: pl.DataFrame | None,
    report: PublishReport,
) -> pl.DataFrame:
    """quarantine.parquet, the CSVs, review.xlsx and the decisions kept; returns the
    reconciliation (report.html shows it)."""
    from ..core.decisions import decisions_path, offers_path
    from ..core.reconcile import reconciliation_frame
    from ..report.review_sheet import write_review_xlsx

    report.files["links.parquet"] = scalar(con, "SELECT count(*) FROM links")
    links = frame(con, "SELECT source, file, sheet, outcome, count(*) AS n FROM links GROUP BY ALL")

    quarantine = quarantine_frame(con)
    quarantine.write_parquet(stage / "quarantine.parquet")
    report.files["quarantine.parquet"] = quarantine.height

    rows_read: dict[tuple[str, str, str], int] = {}
    not_read: list[dict] = []  # skipped sheets, ignored and unrecognised files: listed with the reason
    for f in manifest["inputs"]:
        if f["source"] and f["recognised_by"] != "skipped":
            for s in f.get("sheets") or [{"sheet": "", "rows": f["rows"]}]:
                if "skipped" in s:
                    not_read.append(
                        {"source": f["source"], "file": f["file"], "sheet": s["sheet"], "note": s["skipped"]}
                    )
                else:
                    part = (f["source"], f["file"], s["sheet"])
                    rows_read[part] = rows_read.get(part, 0) + s["rows"]
        else:
            note = f.get("problem") or _("not recognised: its name and headers fit no source")
            not_read.append({"source": f["source"] or "", "file": f["file"], "sheet": "", "note": note})
    recon = reconciliation_frame(links, rows_read, not_read)
    report.files["reconciliation.csv"] = write_frame_csv(stage / "reconciliation.csv", recon, RECON_HEADERS)

    report.files["indicators.csv"] = write_frame_csv(
        stage / "indicators.csv", frame(con, "SELECT * FROM cls_indicators"), indicator_headers()
    )
    report.files["employers.csv"] = write_frame_csv(
        stage / "employers.csv",
        frame(con, "SELECT * FROM cls_employers"),
        employer_headers(),
    )
    report.files["review.xlsx"] = write_review_xlsx(con, stage / "review.xlsx", keys, key, offers_path(stage))
    if decisions is not None and decisions.height:
        decisions.write_parquet(decisions_path(stage))
    return recon


def registry_id(manifest: dict, as_of: date) -> str:
    """The registry's identity (outputs.md: a hand-off belongs to its registry): the as-of date
    and a digest of the inputs' SHA-256 and the rules in force, e.g. ``20260301-1f0c9a2b``. The
    same extracts and rules give the same registry, hence the same identity."""
    import hashlib

    what = {
        "as_of": as_of.isoformat(),
        "inputs": sorted(str(f.get("sha256", "")) for f in manifest.get("inputs", [])),
        "rules": manifest.get("rules"),
    }
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
    return f"{as_of:%Y%m%d}-{digest[:8]}"


def quarantine_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every quarantined row with its raw values (as JSON: the original fields, then unknown columns)."""
    return frame(
        con,
        """SELECT l.source, l.file, l.sheet, l.row, l.reason, q.raw, q.raw_extra
           FROM links l JOIN std_quarantine_raw q USING (source, file, sheet, row)
           WHERE l.outcome = 'quarantined' ORDER BY l.source, l.file, l.sheet, l.row""",
    )
