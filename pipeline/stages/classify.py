"""Stage 4 — classify: status, exclusion reason, group tags and group per person.

Entry point: :func:`classify`. Reads ``link_persons``, ``links`` and the
``std_<source>`` tables; evaluates ``rules/statuses.yaml`` and
``rules/groups.yaml`` (compiled to SQL by :mod:`pipeline.rules_engine`) at the
as-of date, and writes ``cls_persons`` (one row per person), ``cls_indicators``
(per street and city) and ``cls_employers`` (the enforcement list).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from ..core.db import frame, ident, rows, sql_literal, store
from ..core.errors import KuomianError
from ..core.i18n import _
from ..core.labels import CITY, CITY_CODE, UNASSIGNED_STREET
from ..core.policy import Groups, Policy, policy
from ..core.rules_engine import compile_condition, literal, strip_no_other_group, uses_no_other_group

MATCHED = "('linked', 'new_person')"


@dataclass(frozen=True)
class PersonColumn:
    """A column computed per person here and kept in ``cls_persons``, persons.parquet and
    registry/ (publish.py takes :data:`PERSON_COLUMNS` in order); the hand-off shows it when
    core/labels.py ``HANDOFF_HEADERS`` gives it a header."""

    name: str
    # code-owned SQL over build_features' joins: p (link_persons), h (its household row),
    # srcs (its sources), review (review and unaccepted-enrolment evidence), sh (link_shared_ids)
    sql: str


# A new output column is one declaration here (its SQL) plus its label in core/labels.py.
PERSON_COLUMNS = (
    PersonColumn("match_confidence", "coalesce(srcs.match_confidence, 1.0)"),
    PersonColumn("needs_review", "review.person_id IS NOT NULL OR sh.id_canonical IS NOT NULL"),
    PersonColumn(
        "review_evidence",
        "coalesce(review.evidence, CASE WHEN sh.id_canonical IS NOT NULL "
        "THEN '重号: 户籍中另有一人使用此身份证号, 请核实' END)",
    ),
    PersonColumn("shared_id", "sh.id_canonical IS NOT NULL"),  # 重号: another household person has this ID
)


def person_columns_sql() -> str:
    """``<sql> AS <name>`` of every :data:`PERSON_COLUMNS`, for ``cls_base``."""
    return ",\n               ".join(f"{c.sql} AS {ident(c.name)}" for c in PERSON_COLUMNS)


@dataclass
class ClassifyReport:
    statuses: Counter = field(default_factory=Counter)
    exclusion_reasons: Counter = field(default_factory=Counter)
    groups: Counter = field(default_factory=Counter)
    registry: int = 0
    employers: int = 0

    def summary(self) -> str:
        return _("classify: registry {persons} persons; statuses {statuses}").format(
            persons=self.registry, statuses=", ".join(f"{k} {v}" for k, v in self.statuses.most_common())
        )


def build_features(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """``cls_rows_<source>`` (rows with their person) and ``cls_base`` (one row per person)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE cls_matched AS SELECT row_id, person_id, source, confidence "
        f"FROM links WHERE outcome IN {MATCHED}"
    )
    for name, src in policy().sources.items():
        # Only the fields rules can name, not the identity columns: narrow tables, fast to build.
        # source and field names are identifiers checked by core/policy.py (IDENT); the source
        # filter is a parameter.
        fields = ", ".join(f"s.{ident(f)}" for f in src.fields if f not in ("id_number", "name"))
        con.execute(
            f"""CREATE OR REPLACE TABLE {ident("cls_rows_" + name)} AS
            SELECT l.person_id, s.row_id, {fields} FROM {ident("std_" + name)} s
            JOIN (SELECT row_id, person_id FROM cls_matched WHERE source = ?) l USING (row_id)""",
            [name],
        )
    _build_entities(con)
    as_of_sql = literal(as_of, as_of)
    names = sorted(policy().sources)  # a person's sources are listed in this (alphabetical) order
    source_bits = " ".join(f"WHEN {sql_literal(n)} THEN {i}" for i, n in enumerate(names))
    source_names = "[" + ", ".join(sql_literal(n) for n in names) + "]"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE cls_base AS
        WITH places AS (
            -- a person's street and community: the household's, else the most frequent in their rows
            SELECT person_id, street_code, community, n, first_row,
                   row_number() OVER (PARTITION BY person_id ORDER BY n DESC, first_row) AS rk
            FROM (
                SELECT l.person_id, s.street_code, any_value(s.community ORDER BY s.row_id) AS community,
                       count(*) AS n, min(s.row_id) AS first_row
                FROM (SELECT m.row_id, m.person_id FROM cls_matched m
                      JOIN link_persons lp ON lp.person_id = m.person_id AND NOT lp.hukou_local) l
                JOIN std_rows s USING (row_id)
                WHERE s.street_code IS NOT NULL
                GROUP BY ALL
            )
        ), srcs AS (
            -- the sources a person appears in, as a bit mask (a list aggregate per person is slow)
            SELECT person_id, bit_or(1 << CASE source {source_bits} END) AS source_mask,
                   min(confidence) AS match_confidence
            FROM cls_matched GROUP BY person_id
        ), review AS (
            -- a candidate of a review row, or a person with an unaccepted enrolment row (link_evidence)
            SELECT person_id, any_value(evidence) AS evidence FROM (
                SELECT person_id, NULL AS evidence FROM link_review
                UNION ALL SELECT person_id, evidence FROM link_evidence
            ) GROUP BY person_id
        )
        SELECT p.person_id, p.person_key, p.hukou_local, p.name, p.sex, p.birth_date,
               year({as_of_sql}) - year(p.birth_date)
                 - CASE WHEN (month({as_of_sql}), day({as_of_sql})) < (month(p.birth_date), day(p.birth_date))
                        THEN 1 ELSE 0 END AS age,
               h.hukou_type, coalesce(h.person_status, CASE WHEN p.hukou_local THEN '正常' END) AS person_status,
               h.address, h.ethnicity, h.household_no,
               CASE WHEN p.hukou_local THEN p.street_code ELSE pl.street_code END AS street_code,
               CASE WHEN p.hukou_local THEN p.community ELSE pl.community END AS community,
               CASE WHEN srcs.source_mask IS NULL THEN []::VARCHAR[]
                    ELSE list_filter({source_names}, lambda x, i: (srcs.source_mask >> (i - 1)) & 1 = 1)
               END AS sources,
               {person_columns_sql()}
        FROM link_persons p
        LEFT JOIN link_shared_ids sh ON sh.person_id = p.person_id
        LEFT JOIN std_household h ON h.row_id = p.defining_row
        LEFT JOIN places pl ON pl.person_id = p.person_id AND pl.rk = 1
        LEFT JOIN srcs ON srcs.person_id = p.person_id
        LEFT JOIN review ON review.person_id = p.person_id
        """
    )


def _build_entities(con: duckdb.DuckDBPyConnection) -> None:
    """``cls_entities`` (tax ∪ market by 统一社会信用代码) and ``cls_person_entities`` (a person's
    entities), from ``std_tax``, ``std_market``, ``cls_rows_tax`` and ``cls_rows_market``."""
    con.execute(
        """
        CREATE OR REPLACE TABLE cls_entities AS
        WITH t AS (
            SELECT entity_id, any_value(entity_type ORDER BY row_id) AS tax_entity_type,
                   any_value(entity_size ORDER BY row_id) AS tax_entity_size,
                   any_value(tax_status ORDER BY row_id) AS tax_status
            FROM std_tax WHERE row_state = 'ok' AND entity_id IS NOT NULL GROUP BY entity_id
        ), m AS (
            SELECT entity_id, any_value(entity_type ORDER BY row_id) AS market_entity_type,
                   min(established) AS established, bool_or(established IS NULL) AS established_blank
            FROM std_market WHERE row_state = 'ok' AND entity_id IS NOT NULL GROUP BY entity_id
        )
        SELECT entity_id, t.entity_id IS NOT NULL AS in_tax, m.entity_id IS NOT NULL AS in_market,
               tax_entity_type, tax_entity_size, tax_status, market_entity_type,
               CASE WHEN established_blank THEN NULL ELSE established END AS established
        FROM t FULL OUTER JOIN m USING (entity_id)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE cls_person_entities AS
        SELECT DISTINCT pe.person_id, e.* FROM (
            SELECT person_id, entity_id FROM cls_rows_tax
            UNION SELECT person_id, entity_id FROM cls_rows_market
        ) pe JOIN cls_entities e USING (entity_id)
        """
    )


def classify(con: duckdb.DuckDBPyConnection, as_of: date, progress=lambda msg: None) -> ClassifyReport:
    """Evaluate statuses and groups; write ``cls_persons``, ``cls_indicators``, ``cls_employers``."""
    from ..schemas.persons import validate_persons

    progress(_("classify: person features"))
    build_features(con, as_of)
    _check_as_of(con, as_of)
    pol = policy()
    fallback = _flag_groups(con, pol.groups, as_of)
    _assign_statuses(con, pol, as_of)
    _build_persons(con, _group_tags(pol, fallback, as_of), as_of)
    validate_persons(
        frame(
            con,
            'SELECT person_id, hukou_local, status, exclusion_reason, "group", street_code, shared_id FROM cls_persons',
        )
    )
    report = ClassifyReport()
    for status, reason, grp, n in rows(
        con, 'SELECT status, exclusion_reason, "group", count(*) FROM cls_persons GROUP BY ALL ORDER BY ALL'
    ):
        report.statuses[status] += n
        if reason:
            report.exclusion_reasons[reason] += n
        if grp is not None:
            report.groups[grp] += n
            report.registry += n
    build_indicators(con)
    build_employers(con)
    report.employers = rows(con, "SELECT count(*) FROM cls_employers")[0][0]
    # The features are scratch once the persons are classified (publish reads cls_persons,
    # cls_indicators and cls_employers only).
    for view in ("cls_status2", "cls_flags"):
        con.execute(f"DROP VIEW IF EXISTS {ident(view)}")
    scratch = [
        "cls_street_names",
        "cls_base",
        "cls_matched",
        "cls_person_entities",
        "cls_entities",
    ]
    for name in [*scratch, *(f"cls_rows_{s}" for s in pol.sources)]:
        con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    return report


def _check_as_of(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """An as-of date before most household persons were born (``cls_base``) is a mistyped date."""
    born_later, with_birth = rows(
        con, "SELECT count(*) FILTER (WHERE age < 0), count(age) FROM cls_base WHERE hukou_local"
    )[0]
    if with_birth and born_later * 2 > with_birth:
        # An as-of date before most people were born is a mistyped date, not a registry.
        raise KuomianError(
            _(
                "--as-of {as_of}: {born_later} of {with_birth} household persons were born after it. "
                "Give the reference date of the extracts (e.g. the day they were drawn)."
            ).format(as_of=as_of, born_later=born_later, with_birth=with_birth)
        )


def _flag_groups(con: duckdb.DuckDBPyConnection, groups: Groups, as_of: date) -> int | None:
    """``cls_flags`` (a view): ``cls_base`` with one column ``c<group>`` per group (its condition holds).
    Returns the group that uses ``no_other_group`` (the fallback), if any."""
    flag_sql = []
    fallback = None
    for g in groups.groups:  # in priority order
        # coalesce: a missing field (NULL) means the condition does not hold
        flag_sql.append(
            f"coalesce({compile_condition(strip_no_other_group(g.when), as_of)}, false) AS c{g.group}"
        )
        if uses_no_other_group(g.when):
            fallback = g.group
    # a view: cls_persons reads it once, so the wide rows are never written out in between
    con.execute(f"CREATE OR REPLACE TEMP VIEW cls_flags AS SELECT p.*, {', '.join(flag_sql)} FROM cls_base p")
    return fallback


def _assign_statuses(con: duckdb.DuckDBPyConnection, pol: Policy, as_of: date) -> None:
    """``cls_status2`` (a view): ``cls_flags`` with the exclusion reason, then the status (one pass)."""
    group_flags = {g.group: f"p.c{g.group}" for g in pol.groups.groups}
    st = pol.statuses
    reason_cases = " ".join(
        f"WHEN {compile_condition(r.when, as_of)} THEN {sql_literal(r.reason)}" for r in st.reasons
    )
    status_cases = " ".join(
        f"WHEN {compile_condition(s.when, as_of, group_flags=group_flags)} THEN {sql_literal(s.status)}"
        for s in st.statuses
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW cls_status2 AS
        SELECT p.*, CASE WHEN p.exclusion_reason IS NOT NULL THEN {sql_literal(st.excluded)} {status_cases} END AS status
        FROM (SELECT p.*, CASE {reason_cases} END AS exclusion_reason FROM cls_flags p) p
        """
    )


def _group_tags(pol: Policy, fallback: int | None, as_of: date) -> list[str]:
    """One SQL item per group, in priority order: the group's number when a registry person's
    flag holds (the fallback: or no other group's), else NULL."""
    groups = pol.groups.groups
    in_registry = f"status IN ({', '.join(literal(s, as_of) for s in pol.statuses.registry)})"
    allowed_for_upgradable = ", ".join(str(g) for g in sorted(set(pol.groups.upgradable)))
    other = " OR ".join(f"c{g.group}" for g in groups if g.group != fallback) or "FALSE"
    tag_items = []
    for g in groups:
        n = g.group
        cond = f"c{n}"
        if n == fallback:
            cond = f"(c{n} OR NOT ({other}))"
        tag_items.append(
            f"CASE WHEN {in_registry} AND {cond} AND (status <> 'resident_upgradable' OR {n} IN ({allowed_for_upgradable})) "
            f"THEN {n} END"
        )
    return tag_items


def _street_names() -> dict[str, str]:
    """12-digit code -> street name (rules/streets.csv)."""
    return policy().street_names


def _build_persons(con: duckdb.DuckDBPyConnection, tag_items: list[str], as_of: date) -> None:
    """``cls_persons`` from ``cls_status2`` (the group first by priority, the tags, the street's
    name from ``cls_street_names``, the pension date and the measure)."""
    # The street names (rules/streets.csv) go in as a table, never as SQL text.
    names = _street_names()
    store(
        con,
        "cls_street_names",
        pl.DataFrame(
            {"street_code": list(names), "street_name": list(names.values())},
            schema={"street_code": pl.String, "street_name": pl.String},
        ),
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE cls_persons AS
        SELECT s.*, {measure_sql(as_of)} AS measure FROM (
            SELECT s.person_id, s.person_key, s.name, s.sex, s.birth_date, s.age, s.hukou_local, s.hukou_type,
                   s.street_code, (SELECT n.street_name FROM cls_street_names n WHERE n.street_code = s.street_code) AS street_name,
                   s.community, s.address, s.ethnicity, s.household_no, s.person_status,
                   s.status, s.exclusion_reason,
                   CASE WHEN len(s.by_priority) > 0 THEN s.by_priority[1] END AS "group",
                   list_sort(s.by_priority) AS group_tags,
                   s.sources, {", ".join(f"s.{ident(c.name)}" for c in PERSON_COLUMNS)},
                   {pension_date_sql("s.sex", "s.birth_date")} AS pension_date
            FROM (
                SELECT *, list_filter([{", ".join(tag_items)}], lambda x: x IS NOT NULL) AS by_priority
                FROM cls_status2
            ) s
        ) s
        ORDER BY s.street_code NULLS LAST, s.community, s.person_id
        """
    )


def pension_date_sql(sex: str, birth: str) -> str:
    """SQL for ``pension_date`` (rules/retirement.yaml): the birth date plus the statutory age of
    the person's track in months (DuckDB clamps the day to the month's end); NULL without a
    birth date or a sex that names a track."""
    r = policy().retirement
    cases = []
    for sex_value, track_name in r.track_by_sex.items():
        t = r.tracks[track_name]
        idx = f"((year({birth}) - {t.first_cohort[0]}) * 12 + month({birth}) - {t.first_cohort[1]})"
        delay = f"CASE WHEN {idx} < 0 THEN 0 ELSE least({idx} // {t.birth_months_per_month} + 1, {(t.cap_age - t.old_age) * 12}) END"
        cases.append(f"WHEN {literal(sex_value, date.min)} THEN {t.old_age * 12} + {delay}")
    months = f"CASE {sex} {' '.join(cases)} END" if cases else "NULL"
    return f"CAST({birth} + to_months(CAST({months} AS INTEGER)) AS DATE)"


def minimum_months_sql(on: str) -> str:
    """SQL for the minimum contribution period (months) that applies on date ``on``."""
    r = policy().retirement
    base, top, rf = round(r.minimum_years * 12), round(r.maximum_years * 12), r.rise_from
    steps = f"(year({on}) - {rf.year} + CASE WHEN (month({on}), day({on})) >= ({rf.month}, {rf.day}) THEN 1 ELSE 0 END)"
    return f"CASE WHEN {on} < {sql_literal(rf)} THEN {base} ELSE least({top}, {base} + {steps} * {r.rise_months_per_year}) END"


def measure_sql(as_of: date) -> str:
    """SQL for ``measure`` (建议措施) of a registry person (rules.md; rules/retirement.yaml), the first
    that applies: elderly and unenrolled → back-payment into the resident scheme; past the
    pension date → the resident-scheme measure (some groups keep their own action); fewer years
    left than the minimum contribution period then in force → the group's action with a note;
    otherwise the group's action (rules/groups.yaml). NULL outside the registry."""
    p = policy()
    r = p.retirement
    d = literal(as_of, as_of)
    action = (
        'CASE s."group" '
        + " ".join(f"WHEN {g.group} THEN {literal(g.action, as_of)}" for g in p.groups.groups)
        + " END"
    )
    keep = ", ".join(str(g) for g in r.past_pension_keep_group_action) or "NULL"
    elderly = ", ".join(literal(x, as_of) for x in r.elderly_statuses)
    registry = ", ".join(literal(x, as_of) for x in p.statuses.registry)
    return f"""CASE
        WHEN s.status NOT IN ({registry}) THEN NULL
        WHEN s.age >= {r.elderly_age} AND s.status IN ({elderly}) THEN {literal(r.elderly_measure, as_of)}
        WHEN s.pension_date <= {d} THEN
            CASE WHEN s."group" IN ({keep}) THEN {action} ELSE {literal(r.past_pension_measure, as_of)} END
        WHEN {d} + to_months({minimum_months_sql("s.pension_date")}) > s.pension_date
            THEN {action} || {literal(r.short_note, as_of)}
        ELSE {action} END"""


def _gap(target: float, numerator: int, denominator: int) -> int:
    """Persons still needed so that numerator/denominator reaches the target."""
    return max(0, math.ceil(round(target * denominator - numerator, 9)))


def build_indicators(con: duckdb.DuckDBPyConnection) -> None:
    """``cls_indicators``: one row per street (and 未分配街道) plus the city (household population only)."""
    ind = policy().indicators
    groups = sorted(g.group for g in policy().groups.groups)

    def q(values):
        return ", ".join(sql_literal(v) for v in values)

    base = frame(
        con,
        f"""
        SELECT coalesce(street_code, '') AS street_code, count(*) AS household_persons,
               count(*) FILTER (WHERE status <> 'excluded') AS eligible,
               count(*) FILTER (WHERE status IN ({q(ind.enrolled)})) AS enrolled,
               count(*) FILTER (WHERE status IN ({q(ind.contribution)})) AS contribution_stage,
               count(*) FILTER (WHERE status IN ({q(ind.employee)})) AS employee
        FROM cls_persons WHERE hukou_local GROUP BY 1
        """,
    )
    # rules.md: indicators cover the household population; `registry_all` adds the
    # non-local registry persons (the street's full visiting list).
    reg = frame(
        con,
        """SELECT coalesce(street_code, '') AS street_code, "group", count(*) AS n FROM cls_persons
           WHERE "group" IS NOT NULL AND hukou_local GROUP BY ALL""",
    )
    reg_all = dict(
        rows(
            con,
            """SELECT coalesce(street_code, ''), count(*) FROM cls_persons WHERE "group" IS NOT NULL GROUP BY 1""",
        )
    )
    names = _street_names()
    codes = sorted(set(base["street_code"].to_list()) | set(reg_all) | set(names), key=lambda c: (c == "", c))
    records = []
    for code in [*codes, "city"]:
        if code == "city":
            b = base.select(pl.exclude("street_code").sum())
            r = reg
        else:
            b = base.filter(pl.col("street_code") == code).drop("street_code")
            r = reg.filter(pl.col("street_code") == code)
        vals = b.row(0, named=True) if b.height else {k: 0 for k in base.columns if k != "street_code"}
        vals = {k: int(v or 0) for k, v in vals.items()}
        rec = {
            "street_code": CITY_CODE if code == "city" else code,
            "street_name": CITY if code == "city" else names.get(code, UNASSIGNED_STREET),
            **vals,
            "coverage_rate": vals["enrolled"] / vals["eligible"] if vals["eligible"] else None,
            "employee_share": vals["employee"] / vals["contribution_stage"]
            if vals["contribution_stage"]
            else None,
        }
        for year, t in ind.coverage_targets.items():
            rec[f"coverage_gap_{year}"] = _gap(t, vals["enrolled"], vals["eligible"])
        for year, t in ind.employee_share_targets.items():
            rec[f"employee_gap_{year}"] = _gap(t, vals["employee"], vals["contribution_stage"])
        by_group = dict(zip(r["group"].to_list(), r["n"].to_list(), strict=True)) if r.height else {}
        if code == "city":
            by_group = Counter()
            for g, n in zip(reg["group"].to_list(), reg["n"].to_list(), strict=True):
                by_group[g] += n
        rec["registry"] = int(sum(by_group.values()))
        rec["registry_all"] = int(sum(reg_all.values()) if code == "city" else reg_all.get(code, 0))
        for g in groups:
            rec[f"registry_group_{g}"] = int(by_group.get(g, 0))
        records.append(rec)
    store(con, "cls_indicators", pl.DataFrame(records, infer_schema_length=None))


def build_employers(con: duckdb.DuckDBPyConnection) -> None:
    months = int(policy().groups.employer_min_withheld_months)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE cls_employers AS
        SELECT r.employer, count(DISTINCT r.person_id) AS registry_persons
        FROM cls_rows_income r JOIN cls_persons p USING (person_id)
        WHERE p."group" IS NOT NULL AND r.withheld_months >= {sql_literal(months)} AND r.employer IS NOT NULL AND r.employer <> ''
        GROUP BY r.employer ORDER BY registry_persons DESC, r.employer
        """
    )
