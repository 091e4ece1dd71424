"""Stage 3 — link: decide which person every extract row is about.

Entry point: :func:`link`. Reads ``std_rows`` and writes

* ``link_persons``    — the population: household persons by canonical ID,
  plus people whose valid ID appears only in a source that adds people
  (``role: adds_people`` in ``sources/``);
* ``link_candidates`` — (row, person, rule, name score) pairs proposed by the
  cascade of ``rules/matching.yaml``; every rule is an equi-join in DuckDB
  (blocking), so cost grows with the data, never with its square;
* ``link_review``     — rows a person must decide, with their candidates;
* ``links``           — one row per standardised row: outcome, person,
  rule, confidence.

Names are scored with rapidfuzz on candidate pairs only (vectorised).

The cascade itself (:func:`cascade`: trivial links, candidates, name scores, decisions) is a
list of :class:`Step` s over tables named by a :class:`LinkTables`, run in one place
(:func:`run_steps`); the refresh runs it on ``link_rows``/``link_persons``, and
:func:`match_to_persons` runs the very same steps on any standardised rows against a published
population (``kuomian check``, and anything else that matches a list against a registry).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
import polars as pl

from ..core import names
from ..core.config import load_rules, load_sources
from ..core.db import connect, first_row, frame, rows, scalar, sql_literal, store
from ..core.i18n import _
from ..core.privacy import fingerprint_sql, key_params


@dataclass
class LinkReport:
    outcomes: Counter = field(default_factory=Counter)  # (source, outcome) -> rows
    rules: Counter = field(default_factory=Counter)  # (source, rule) -> rows linked by it
    persons: int = 0
    persons_local: int = 0
    review_rows: int = 0
    decisions_applied: int = 0

    def summary(self) -> str:
        by: Counter[str] = Counter()
        for (_source, o), n in self.outcomes.items():
            by[o] += n
        parts = ", ".join(f"{n} {o}" for o, n in by.most_common())
        return _("link: {persons} persons ({household} household); rows {outcomes}").format(
            persons=self.persons, household=self.persons_local, outcomes=parts
        )


def _rules():
    return load_rules("matching")


def _fingerprints(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """A keyed fingerprint per row, for review decisions that outlive a run."""
    # Only rows a decision could concern (``link_rows``): a trusted ID whose owner has the same
    # name key is linked by exact_id whatever anyone decides, and those are ~98% of all rows.
    # Everything that identifies the row, so that a decision applies to this row (and to the
    # same row in next year's extract), not to another row that merely shares a name.
    fp = fingerprint_sql(
        "r.source", "coalesce(r.id_canonical, r.id_digits)", "r.name_key",
        "CAST(r.birth_date_stated AS VARCHAR)", "r.street_code", "r.community",
    )  # fmt: skip
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_fingerprints AS
        SELECT r.row_id, {fp} AS fingerprint
        FROM link_rows r LEFT JOIN link_persons p ON p.person_id = r.id_canonical
        WHERE NOT (p.person_id IS NOT NULL AND p.name_key = r.name_key)
        ORDER BY r.row_id
        """,
        key_params(key),
    )


def build_population(con: duckdb.DuckDBPyConnection) -> None:
    """``link_persons``: household persons, then people that sources adding people bring."""
    sources = load_sources()
    adding = [s.name for s in sources.values() if s.role == "adds_people"]
    base = [s.name for s in sources.values() if s.role == "base"]
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_defining AS
        WITH trusted AS (
            SELECT *, source IN ({_sql_list(base)}) AS is_base
            FROM std_rows
            WHERE row_state = 'ok' AND id_kind IN ('valid', 'upgraded')
              AND (source IN ({_sql_list(base)}) OR source IN ({_sql_list(adding or ["-"])}))
        ),
        first_base AS (
            SELECT id_canonical, min(row_id) AS row_id FROM trusted WHERE is_base GROUP BY id_canonical
        ),
        first_added AS (
            SELECT t.id_canonical, min(t.row_id) AS row_id
            FROM trusted t ANTI JOIN first_base b USING (id_canonical)
            WHERE NOT t.is_base
            GROUP BY t.id_canonical
        )
        SELECT row_id, id_canonical, true AS hukou_local FROM first_base
        UNION ALL
        SELECT row_id, id_canonical, false AS hukou_local FROM first_added
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_persons AS
        SELECT *, {MATCH_COLUMNS} FROM (
            SELECT d.id_canonical AS person_id, d.hukou_local, r.row_id AS defining_row, r.source AS origin,
                   r.name, r.name_key, r.name_py, r.sex, r.birth_date, r.street_code, r.community,
                   nullif(trim(h.household_no), '') AS household_no
            FROM link_defining d JOIN std_rows r USING (row_id)
            LEFT JOIN std_household h ON h.row_id = d.row_id
        )
        """
    )


# Derived keys of ``link_persons`` the rules join on. Excel keeps 15 significant digits of a
# number, rounding the 15th (other programs truncate): both forms of the prefix are kept.
MATCH_COLUMNS = """left(person_id, 15) AS prefix15,
    CAST(CAST(left(person_id, 15) AS BIGINT)
         + CASE WHEN substr(person_id, 16, 1) >= '5' THEN 1 ELSE 0 END AS VARCHAR) AS prefix15_rounded"""


def _sql_list(values: list[str]) -> str:
    return ", ".join(sql_literal(v) for v in values)


# ---------------------------------------------------------------- the cascade, as steps over named tables


@dataclass(frozen=True)
class LinkTables:
    """The tables one run of the cascade reads and writes, by name.

    Read: ``rows`` (standardised rows to resolve: ``row_id`` and the identity columns of
    :data:`..stages.standardise.IDENTITY_COLUMNS`), ``persons`` (the population: ``person_id``,
    ``name``, ``name_key``, ``name_py``, ``sex``, ``birth_date``, ``street_code``, ``community``,
    ``household_no`` and :data:`MATCH_COLUMNS`) and ``forbidden`` ((row_id, person_id) pairs a
    reviewer rejected; None: none). Written: ``{prefix}_trivial``, ``{prefix}_candidates_raw``,
    ``{prefix}_candidates``, ``{prefix}_decisions``, ``{prefix}_review`` (and temporary
    ``_{prefix}_scored``, ``_{prefix}_chosen``, ``_{prefix}_name_differs``).
    """

    rows: str
    persons: str
    forbidden: str | None = None
    prefix: str = "link"

    def out(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def temp(self, name: str) -> str:
        return f"_{self.prefix}_{name}"


# The refresh's tables (see the module docstring).
REFRESH_TABLES = LinkTables(rows="link_rows", persons="link_persons", forbidden="link_forbidden")


@dataclass(frozen=True)
class Step:
    """One step of the cascade: ``CREATE OR REPLACE [TEMP] TABLE table AS sql``."""

    table: str
    sql: str
    temp: bool = False


def run_steps(con: duckdb.DuckDBPyConnection, steps: list[Step]) -> None:
    """Run the steps in order: the one place where the cascade's SQL is executed."""
    for s in steps:
        con.execute(f"CREATE OR REPLACE {'TEMP ' if s.temp else ''}TABLE {s.table} AS {s.sql}")


def trivial_step(t: LinkTables, rows_sql: str | None = None) -> Step:
    """``{prefix}_trivial``: rows (of ``rows_sql``, by default ``t.rows``) whose trusted ID belongs
    to a person with the very same name key.

    Nearly every row is one of these; the first rules of the cascade (exact_id,
    upgraded_id) would link them with a name score of 1.0 whatever else is tried,
    so they are settled by one join and only the rest goes through the cascade
    (the caller leaves them out of ``t.rows``).
    """
    # The first exact-ID rule per ID kind; one with band: review is left to the cascade.
    by_kind: dict[str, dict] = {}
    for r in _rules()["rules"]:
        if r["candidates"] == "id_equal":
            for k in r["id_kinds"]:
                by_kind.setdefault(k, r)
    by_kind = {k: r for k, r in by_kind.items() if r.get("band", "auto") == "auto"}
    if not by_kind:
        return Step(
            t.out("trivial"),
            "SELECT NULL::BIGINT AS row_id, NULL::VARCHAR AS person_id, NULL::VARCHAR AS rule, "
            "NULL::DOUBLE AS confidence WHERE false",
        )
    cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(r['rule'])}" for k, r in by_kind.items())
    conf = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(float(r['confidence']))}" for k, r in by_kind.items()
    )
    return Step(
        t.out("trivial"),
        f"""
        SELECT r.row_id, p.person_id, CASE r.id_kind {cases} END AS rule, CASE r.id_kind {conf} END AS confidence
        FROM {rows_sql or t.rows} r JOIN {t.persons} p ON p.person_id = r.id_canonical AND p.name_key = r.name_key
        WHERE r.id_kind IN ({_sql_list(list(by_kind))})
        """,
    )


# candidates method -> (join clause with {k} for the name key and {p} for the persons table,
# extra WHERE condition)
NAME_JOINS = {
    "name_birth": ("JOIN {p} p ON p.birth_date = r.birth_date_stated AND p.{k} = r.{k}", ""),
    "same_household_name": (
        "JOIN {p} owner ON owner.person_id = r.id_canonical "
        "JOIN {p} p ON p.household_no = owner.household_no AND p.{k} = r.{k}",
        "p.person_id <> owner.person_id",
    ),
    "name_prefix": (
        "JOIN {p} p ON p.{k} = r.{k} AND left(p.person_id, 6) = left(r.id_digits, 6)",
        "length(r.id_digits) >= 6 AND r.street_code IS NULL AND (r.id_kind <> 'excel' "
        "OR starts_with(p.person_id, r.id_digits) OR p.prefix15_rounded = r.id_digits)",
    ),
    "name_place": (
        "JOIN {p} p ON p.street_code = r.street_code AND p.{k} = r.{k}",
        "(r.community IS NULL OR p.community = r.community) "
        "AND (r.id_digits IS NULL OR starts_with(p.person_id, left(r.id_digits, 6)))",
    ),
}


def candidates_step(t: LinkTables) -> Step:
    """``{prefix}_candidates_raw``: every (row, person, rule) the cascade proposes (before names are scored)."""
    rules = _rules()["rules"]
    P = t.persons
    parts = []
    for order, rule in enumerate(rules):
        kinds = _sql_list(rule["id_kinds"])
        name, how = rule["rule"], rule["candidates"]
        head = (
            f"SELECT r.row_id, p.person_id, {sql_literal(name)} AS rule, {sql_literal(order)} AS rule_order"
        )
        rows = f"(SELECT * FROM {t.rows} WHERE id_kind IN ({kinds}))"
        if how == "id_equal":
            parts.append(f"{head} FROM {rows} r JOIN {P} p ON p.person_id = r.id_canonical")
        elif how == "one_edit":
            # One substituted character leaves two of the three 6-character parts intact:
            # three selective equi-joins, then keep Hamming distance exactly 1.
            for a, b in ((1, 7), (1, 13), (7, 13)):
                parts.append(
                    f"{head} FROM {rows} r JOIN {P} p "
                    f"ON substr(p.person_id, {a}, 6) = substr(r.id_digits, {a}, 6) "
                    f"AND substr(p.person_id, {b}, 6) = substr(r.id_digits, {b}, 6) "
                    f"WHERE hamming(p.person_id, r.id_digits) = 1"
                )
            # An adjacent swap: swap each neighbouring pair back and look the result up.
            parts.append(
                f"""{head} FROM (
                    SELECT r0.row_id, substr(r0.id_digits, 1, i - 1) || substr(r0.id_digits, i + 1, 1)
                           || substr(r0.id_digits, i, 1) || substr(r0.id_digits, i + 2) AS swapped
                    FROM {rows} r0, range(1, 18) t(i)
                    WHERE substr(r0.id_digits, i, 1) <> substr(r0.id_digits, i + 1, 1)
                ) r JOIN {P} p ON p.person_id = r.swapped"""
            )
        elif how == "id_prefix":
            n = int(rule.get("min_digits", 15))
            # Excel rounds to 15 significant digits (others truncate): accept either form.
            for prefix in ("p.prefix15", "p.prefix15_rounded"):
                parts.append(
                    f"{head} FROM {rows} r JOIN {P} p ON {prefix} = r.id_digits WHERE length(r.id_digits) >= {sql_literal(n)}"
                )
        elif how in NAME_JOINS:
            # Name-keyed rules: one equi-join on the simplified-character key, one on the pinyin key.
            join, where = NAME_JOINS[how]
            for k in ("name_key", "name_py"):
                parts.append(
                    f"{head} FROM {rows} r {join.format(k=k, p=P)} WHERE r.{k} <> ''"
                    + (f" AND {where}" if where else "")
                )
        else:
            raise ValueError(
                _("rules/matching.yaml: unknown candidates method {method!r} in rule {rule}").format(
                    method=how, rule=name
                )
            )
    return Step(t.out("candidates_raw"), "SELECT DISTINCT * FROM (" + " UNION ALL ".join(parts) + ")")


def score_candidates(con: duckdb.DuckDBPyConnection, t: LinkTables) -> None:
    """``{prefix}_candidates``: ``{prefix}_candidates_raw`` plus ``name_score`` (rapidfuzz, vectorised)."""
    pairs = con.sql(
        f"""
        SELECT c.*, r.name_key AS r_key, r.name_py AS r_py, p.name_key AS p_key, p.name_py AS p_py
        FROM {t.out("candidates_raw")} c JOIN {t.rows} r USING (row_id) JOIN {t.persons} p USING (person_id)
        """
    ).pl()
    scores = names.name_scores(
        pairs["r_key"].to_list(), pairs["r_py"].to_list(), pairs["p_key"].to_list(), pairs["p_py"].to_list()
    )
    scored = pairs.drop("r_key", "r_py", "p_key", "p_py").with_columns(
        name_score=pl.Series(scores, dtype=pl.Float64)
    )
    store(con, t.out("candidates"), scored)


def _rules_values() -> str:
    """The rules of ``rules/matching.yaml`` as an inline table (rule, threshold, band, …)."""
    cfg = _rules()
    agree, same = cfg["name_agreement"]["agree"], cfg["name_agreement"]["same"]
    values = []
    for r in cfg["rules"]:
        threshold = float(same if r.get("name") == "same" else agree)
        band = str(r.get("band", "auto"))
        values.append(
            f"({sql_literal(r['rule'])}, {sql_literal(threshold)}::DOUBLE, {sql_literal(band)}, "
            f"{sql_literal(float(r['confidence']))}::DOUBLE, "
            f"{sql_literal(bool(r.get('prefer_same_street', False)))}, {sql_literal(r['candidates'] == 'id_equal')})"
        )
    return (
        "(SELECT * FROM (VALUES " + ", ".join(values) + ") "
        "v(rule, threshold, band, confidence, prefer_same_street, id_anchored))"
    )


def decide_steps(t: LinkTables) -> list[Step]:
    """``{prefix}_decisions`` (per row: linked or review, rule, confidence, review reason) and
    ``{prefix}_review`` (for review rows, the candidates that made them so)."""
    scored, chosen, differs = t.temp("scored"), t.temp("chosen"), t.temp("name_differs")
    forbidden = f"ANTI JOIN {t.forbidden} f USING (row_id, person_id)" if t.forbidden else ""
    return [
        Step(
            scored,
            f"""
            SELECT c.*, ru.threshold, ru.band, ru.confidence, ru.prefer_same_street, ru.id_anchored,
                   c.name_score >= ru.threshold AS passes,
                   (r.street_code IS NOT NULL AND p.street_code = r.street_code) AS same_street
            FROM {t.out("candidates")} c
            JOIN {_rules_values()} ru USING (rule)
            JOIN {t.rows} r USING (row_id)
            JOIN {t.persons} p USING (person_id)
            {forbidden}
            """,
            temp=True,
        ),
        # The deciding candidates: those of the first rule (in cascade order) whose name agrees.
        Step(
            chosen,
            f"""
            WITH first_rule AS (
                SELECT row_id, min(rule_order) AS rule_order FROM {scored} WHERE passes GROUP BY row_id
            ), chosen AS (
                SELECT c.* FROM {scored} c JOIN first_rule USING (row_id, rule_order) WHERE c.passes
            )
            -- where a rule prefers the row's street, candidates there beat the others
            SELECT * FROM chosen
            QUALIFY NOT prefer_same_street OR NOT bool_or(same_street) OVER (PARTITION BY row_id) OR same_street
            """,
            temp=True,
        ),
        # A trusted ID whose name clearly differs, with no other rule agreeing: never accepted silently.
        Step(
            differs,
            f"""
            SELECT * FROM {scored}
            WHERE id_anchored AND NOT passes AND row_id NOT IN (SELECT row_id FROM {chosen})
            """,
            temp=True,
        ),
        Step(
            t.out("decisions"),
            f"""
            WITH per_row AS (
                SELECT row_id, count(*) AS n, any_value(rule) AS rule, any_value(band) AS band,
                       any_value(confidence) AS confidence, min(person_id) AS person_id,
                       min(name_score) AS name_score
                FROM {chosen} GROUP BY row_id
            )
            SELECT row_id,
                   CASE WHEN n = 1 AND band = 'auto' THEN 'linked' ELSE 'review' END AS outcome,
                   CASE WHEN n = 1 AND band = 'auto' THEN person_id END AS person_id,
                   rule AS match_rule,
                   CASE WHEN n = 1 AND band = 'auto' THEN confidence * (0.9 + 0.1 * name_score) END AS confidence,
                   CASE WHEN n > 1 THEN 'several candidates agree'
                        WHEN band <> 'auto' THEN 'rule needs a person to confirm' END AS review_reason
            FROM per_row
            UNION ALL
            SELECT row_id, 'review', NULL, any_value(rule), NULL, 'ID matches but the name differs'
            FROM {differs} GROUP BY row_id
            UNION ALL
            SELECT row_id, 'linked', person_id, rule, confidence, NULL FROM {t.out("trivial")}
            """,
        ),
        # What a reviewer sees: only the candidates that made the row a review row.
        Step(
            t.out("review"),
            f"""
            SELECT d.row_id, d.match_rule, d.review_reason, c.person_id, c.rule AS candidate_rule, c.name_score
            FROM {t.out("decisions")} d
            JOIN (SELECT row_id, person_id, rule, name_score FROM {chosen}
                  UNION ALL SELECT row_id, person_id, rule, name_score FROM {differs}) c
              ON c.row_id = d.row_id
            WHERE d.outcome = 'review'
            """,
        ),
    ]


def cascade(con: duckdb.DuckDBPyConnection, t: LinkTables, progress=lambda msg: None) -> None:
    """Propose, score and decide for the rows of ``t.rows`` (``{prefix}_trivial`` already built and
    its rows left out of ``t.rows``): writes ``{prefix}_decisions`` and ``{prefix}_review``."""
    progress(_("link: proposing candidates"))
    run_steps(con, [candidates_step(t)])
    progress(_("link: scoring names"))
    score_candidates(con, t)
    run_steps(con, decide_steps(t))


def persons_for_link(persons: pl.DataFrame) -> pl.DataFrame:
    """A published ``persons.parquet`` frame as the cascade's persons table (name keys, match columns
    added by :func:`match_to_persons`)."""
    # the name keys as standardise computes them: every distinct name once, in one vectorised pass
    keyed = names.add_name_keys(persons.with_columns(pl.col("name").fill_null("")), raw_col="name")
    return keyed.select(
        pl.col("id_number").alias("person_id"),
        pl.col("hukou_local"),
        pl.col("name"),
        pl.col("name_key"),
        pl.col("name_py"),
        pl.col("sex"),
        pl.col("birth_date"),
        pl.col("street_code"),
        pl.col("community"),
        # the household number, when the published run carries it (rule relative_id); else unknown
        (pl.col("household_no") if "household_no" in persons.columns else pl.lit(None, dtype=pl.String))
        .cast(pl.String)
        .alias("household_no"),
    )


def match_to_persons(rows: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Match standardised rows against a published population with the refresh's own cascade.

    ``rows``: standardised rows (:func:`..stages.standardise.standardise_frame` plus an Int64
    ``row_id`` unique per row; quarantined rows left out by the caller), at least the columns of
    :data:`..stages.standardise.IDENTITY_COLUMNS`. ``persons``: a published ``persons.parquet``
    (``id_number``, ``name``, ``hukou_local``, ``sex``, ``birth_date``, ``street_code``,
    ``community``, optionally ``household_no``).

    Returns one row per decided row: ``row_id``, ``outcome`` ('linked' or 'review'),
    ``person_id`` (the person's ID when linked), ``match_rule``, ``confidence`` and
    ``review_reason``; a row absent from it matched nobody. Runs in a private in-memory
    DuckDB whose spill folder (plain-text IDs) is a recorded private work folder, removed
    afterwards; no review decisions apply.
    """
    from ..core.fileio import private_workdir
    from .standardise import IDENTITY_COLUMNS

    t = LinkTables(rows="match_rows", persons="match_persons", prefix="match")
    # A recorded private work folder (0700) in the state folder: DuckDB's spill files hold IDs,
    # and a killed run's folder is removed by the next kuomian command.
    with private_workdir("match") as tmp:
        con = connect(temp_dir=tmp / "duckdb")
        try:
            return _match_in(con, t, rows.select(IDENTITY_COLUMNS), persons)
        finally:
            con.close()


def _match_in(
    con: duckdb.DuckDBPyConnection, t: LinkTables, rows: pl.DataFrame, persons: pl.DataFrame
) -> pl.DataFrame:
    store(con, t.rows, rows)
    con.register("_match_persons", persons_for_link(persons))
    run_steps(con, [Step(t.persons, f"SELECT *, {MATCH_COLUMNS} FROM _match_persons")])
    con.unregister("_match_persons")
    run_steps(con, [trivial_step(t)])
    con.execute(f"DELETE FROM {t.rows} WHERE row_id IN (SELECT row_id FROM {t.out('trivial')})")
    cascade(con, t)
    return frame(
        con,
        f"SELECT row_id, outcome, person_id, match_rule, confidence, review_reason FROM {t.out('decisions')}",
    )


def load_decisions(con: duckdb.DuckDBPyConnection, key: bytes, decisions: pl.DataFrame | None = None) -> int:
    """Review decisions of the registries this run follows: ``link_forbidden`` (否) and
    ``link_confirmed`` (是, only while the candidate's name is the one the reviewer saw)."""
    from ..core.decisions import decisions_for_link

    if decisions is not None and decisions.height:
        ids = [r[0] for r in rows(con, "SELECT person_id FROM link_persons")]
        d = decisions_for_link(key, ids, decisions)
    else:
        d = pl.DataFrame(
            schema={
                "fingerprint": pl.String,
                "person_id": pl.String,
                "name_fp": pl.String,
                "decision": pl.String,
            }
        )
    con.register("_dec", d)
    con.execute(
        """
        CREATE OR REPLACE TABLE link_forbidden AS
        SELECT DISTINCT f.row_id, d.person_id FROM _dec d JOIN link_fingerprints f USING (fingerprint)
        WHERE d.decision = '否'
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_confirmed AS
        SELECT f.row_id, min(d.person_id) AS person_id FROM _dec d
        JOIN link_fingerprints f USING (fingerprint)
        JOIN link_persons p USING (person_id)
        WHERE d.decision = '是' AND d.name_fp = {fingerprint_sql("p.name_key")}
        GROUP BY f.row_id
        """,
        key_params(key),
    )
    con.unregister("_dec")
    return scalar(con, "SELECT count(*) FROM link_confirmed")


def finalise(con: duckdb.DuckDBPyConnection) -> None:
    """``links``: one row per standardised row, every row accounted for."""
    sources = load_sources()
    adding = _sql_list([s.name for s in sources.values() if s.role in ("adds_people", "base")])
    con.execute(
        f"""
        CREATE OR REPLACE TABLE links AS
        SELECT s.row_id, s.source, s.file, s.sheet, s.row,
            CASE
                WHEN s.row_state = 'quarantined' THEN 'quarantined'
                WHEN s.row_state = 'duplicate' THEN 'duplicate'
                WHEN d.row_id IS NOT NULL THEN 'new_person'
                WHEN k.row_id IS NOT NULL THEN 'linked'
                WHEN x.outcome IS NOT NULL THEN x.outcome
                WHEN s.source IN ({adding}) THEN 'quarantined'
                ELSE 'unmatched'
            END AS outcome,
            coalesce(s.id_canonical, p.person_id) AS id_number,
            CASE WHEN s.row_state = 'ok' THEN coalesce(
                CASE WHEN d.row_id IS NOT NULL THEN d.id_canonical END, k.person_id, x.person_id) END AS person_id,
            CASE
                WHEN d.row_id IS NOT NULL AND d.hukou_local THEN 'population_base'
                WHEN d.row_id IS NOT NULL THEN 'new_person'
                WHEN k.row_id IS NOT NULL THEN 'review_decision'
                WHEN s.row_state = 'ok' THEN x.match_rule
            END AS match_rule,
            CASE
                WHEN d.row_id IS NOT NULL THEN 1.0
                WHEN k.row_id IS NOT NULL THEN 1.0
                WHEN s.row_state = 'ok' THEN x.confidence
            END AS confidence,
            CASE
                WHEN s.row_state <> 'ok' THEN s.reason
                WHEN d.row_id IS NOT NULL OR k.row_id IS NOT NULL THEN NULL
                WHEN x.outcome = 'review' THEN x.review_reason
                WHEN x.outcome IS NULL AND s.source IN ({adding}) THEN
                    CASE WHEN s.id_kind = 'bad_check' THEN 'id_check_failed_no_match'
                         WHEN s.id_kind = 'excel' THEN 'id_damaged_no_match'
                         ELSE 'no_id_no_match' END
            END AS reason
        FROM std_rows s
        LEFT JOIN link_defining d ON d.row_id = s.row_id
        LEFT JOIN link_confirmed k ON k.row_id = s.row_id AND d.row_id IS NULL
        LEFT JOIN link_decisions x ON x.row_id = s.row_id
        LEFT JOIN link_persons p ON p.person_id = coalesce(k.person_id, x.person_id)
        ORDER BY s.row_id
        """
    )


def link(
    con: duckdb.DuckDBPyConnection,
    key: bytes,
    *,
    progress=lambda msg: None,
    decisions: pl.DataFrame | None = None,
) -> LinkReport:
    """Resolve every standardised row; see the module docstring for the tables written.

    ``decisions``: the review decisions carried from the registries this run follows
    (:func:`kuomian.core.decisions.stored_decisions`)."""
    progress(_("link: building the population"))
    build_population(con)
    t = REFRESH_TABLES
    # Rows that define a person are settled; nearly all others are settled by one join
    # (trivial_step). Only what is left goes through the cascade: ``link_rows``.
    usable = "(SELECT r.* FROM std_rows r ANTI JOIN link_defining d USING (row_id) WHERE r.row_state = 'ok')"
    run_steps(
        con,
        [
            trivial_step(t, usable),
            Step(t.rows, f"SELECT r.* FROM {usable} r ANTI JOIN {t.out('trivial')} t USING (row_id)"),
        ],
    )
    _fingerprints(con, key)
    report = LinkReport()
    report.decisions_applied = load_decisions(con, key, decisions)
    con.execute(f"DELETE FROM {t.rows} WHERE row_id IN (SELECT row_id FROM link_confirmed)")
    cascade(con, t, progress)
    finalise(con)
    # Scratch: everything they hold is in ``links`` now (half a million rows each at Anning's
    # size: dropped, so that classify has DuckDB's memory).
    for scratch in ("link_candidates_raw", "link_rows", "link_defining", "link_trivial", "link_decisions"):
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
    for src, outcome, n in rows(con, "SELECT source, outcome, count(*) FROM links GROUP BY ALL"):
        report.outcomes[(src, outcome)] += n
    for src, rule, n in rows(
        con,
        "SELECT source, match_rule, count(*) FROM links WHERE outcome IN ('linked', 'new_person') GROUP BY ALL",
    ):
        report.rules[(src, rule)] += n
    report.persons, report.persons_local = first_row(
        con, "SELECT count(*), count(*) FILTER (WHERE hukou_local) FROM link_persons"
    )
    report.review_rows = scalar(con, "SELECT count(*) FROM links WHERE outcome = 'review'")
    return report
