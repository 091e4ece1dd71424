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
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
import polars as pl

from ..core import names
from ..core.config import load_rules, load_sources
from ..core.db import first_row, rows, scalar, store
from ..core.privacy import fingerprint_sql, key_params

OUTCOMES = ("linked", "new_person", "duplicate", "quarantined", "review", "unmatched")


@dataclass
class LinkReport:
    outcomes: Counter = field(default_factory=Counter)  # (source, outcome) -> rows
    rules: Counter = field(default_factory=Counter)  # (source, rule) -> rows linked by it
    persons: int = 0
    persons_local: int = 0
    review_rows: int = 0
    decisions_applied: int = 0

    def summary(self) -> str:
        by = Counter()
        for (_, o), n in self.outcomes.items():
            by[o] += n
        parts = ", ".join(f"{n} {o}" for o, n in by.most_common())
        return f"link: {self.persons} persons ({self.persons_local} household); rows {parts}"


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


def add_match_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Add :data:`MATCH_COLUMNS` to a ``link_persons`` built elsewhere (``kuomian check``)."""
    con.execute(f"CREATE OR REPLACE TABLE link_persons AS SELECT *, {MATCH_COLUMNS} FROM link_persons")


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def resolve_trivial(con: duckdb.DuckDBPyConnection, rows_sql: str = "link_rows") -> None:
    """``link_trivial``: rows (of ``rows_sql``) whose trusted ID belongs to a person with the very
    same name key.

    Nearly every row is one of these; the first rules of the cascade (exact_id,
    upgraded_id) would link them with a name score of 1.0 whatever else is tried,
    so they are settled by one join and only the rest goes through the cascade
    (the caller leaves them out of ``link_rows``).
    """
    # The first exact-ID rule per ID kind; one with band: review is left to the cascade.
    by_kind: dict[str, dict] = {}
    for r in _rules()["rules"]:
        if r["candidates"] == "id_equal":
            for k in r["id_kinds"]:
                by_kind.setdefault(k, r)
    by_kind = {k: r for k, r in by_kind.items() if r.get("band", "auto") == "auto"}
    if not by_kind:
        con.execute(
            "CREATE OR REPLACE TABLE link_trivial (row_id BIGINT, person_id VARCHAR, rule VARCHAR, confidence DOUBLE)"
        )
        return
    cases = " ".join(f"WHEN '{k}' THEN '{r['rule']}'" for k, r in by_kind.items())
    conf = " ".join(f"WHEN '{k}' THEN {float(r['confidence'])}" for k, r in by_kind.items())
    kinds = _sql_list(list(by_kind))
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_trivial AS
        SELECT r.row_id, p.person_id, CASE r.id_kind {cases} END AS rule, CASE r.id_kind {conf} END AS confidence
        FROM {rows_sql} r JOIN link_persons p ON p.person_id = r.id_canonical AND p.name_key = r.name_key
        WHERE r.id_kind IN ({kinds})
        """
    )


# candidates method -> (join clause with {k} for the name key, extra WHERE condition)
NAME_JOINS = {
    "name_birth": ("JOIN link_persons p ON p.birth_date = r.birth_date_stated AND p.{k} = r.{k}", ""),
    "same_household_name": (
        "JOIN link_persons owner ON owner.person_id = r.id_canonical "
        "JOIN link_persons p ON p.household_no = owner.household_no AND p.{k} = r.{k}",
        "p.person_id <> owner.person_id",
    ),
    "name_prefix": (
        "JOIN link_persons p ON p.{k} = r.{k} AND left(p.person_id, 6) = left(r.id_digits, 6)",
        "length(r.id_digits) >= 6 AND r.street_code IS NULL AND (r.id_kind <> 'excel' "
        "OR starts_with(p.person_id, r.id_digits) OR p.prefix15_rounded = r.id_digits)",
    ),
    "name_place": (
        "JOIN link_persons p ON p.street_code = r.street_code AND p.{k} = r.{k}",
        "(r.community IS NULL OR p.community = r.community) "
        "AND (r.id_digits IS NULL OR starts_with(p.person_id, left(r.id_digits, 6)))",
    ),
}


def generate_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """``link_candidates``: every (row, person, rule) the cascade proposes (before names are scored)."""
    rules = _rules()["rules"]
    parts = []
    for order, rule in enumerate(rules):
        kinds = _sql_list(rule["id_kinds"])
        name, how = rule["rule"], rule["candidates"]
        head = f"SELECT r.row_id, p.person_id, '{name}' AS rule, {order} AS rule_order"
        rows = f"(SELECT * FROM link_rows WHERE id_kind IN ({kinds}))"
        if how == "id_equal":
            parts.append(f"{head} FROM {rows} r JOIN link_persons p ON p.person_id = r.id_canonical")
        elif how == "one_edit":
            # One substituted character leaves two of the three 6-character parts intact:
            # three selective equi-joins, then keep Hamming distance exactly 1.
            for a, b in ((1, 7), (1, 13), (7, 13)):
                parts.append(
                    f"{head} FROM {rows} r JOIN link_persons p "
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
                ) r JOIN link_persons p ON p.person_id = r.swapped"""
            )
        elif how == "id_prefix":
            n = int(rule.get("min_digits", 15))
            # Excel rounds to 15 significant digits (others truncate): accept either form.
            for prefix in ("p.prefix15", "p.prefix15_rounded"):
                parts.append(
                    f"{head} FROM {rows} r JOIN link_persons p "
                    f"ON {prefix} = r.id_digits WHERE length(r.id_digits) >= {n}"
                )
        elif how in NAME_JOINS:
            # Name-keyed rules: one equi-join on the simplified-character key, one on the pinyin key.
            join, where = NAME_JOINS[how]
            for k in ("name_key", "name_py"):
                parts.append(
                    f"{head} FROM {rows} r {join.format(k=k)} WHERE r.{k} <> ''"
                    + (f" AND {where}" if where else "")
                )
        else:
            raise ValueError(f"rules/matching.yaml: unknown candidates method {how!r} in rule {name}")
    con.execute(
        "CREATE OR REPLACE TABLE link_candidates_raw AS SELECT DISTINCT * FROM ("
        + " UNION ALL ".join(parts)
        + ")"
    )


def score_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``name_score`` to every candidate pair (rapidfuzz, vectorised)."""
    pairs = con.sql(
        """
        SELECT c.*, r.name_key AS r_key, r.name_py AS r_py, p.name_key AS p_key, p.name_py AS p_py
        FROM link_candidates_raw c JOIN link_rows r USING (row_id) JOIN link_persons p USING (person_id)
        """
    ).pl()
    scores = names.name_scores(
        pairs["r_key"].to_list(), pairs["r_py"].to_list(), pairs["p_key"].to_list(), pairs["p_py"].to_list()
    )
    scored = pairs.drop("r_key", "r_py", "p_key", "p_py").with_columns(
        name_score=pl.Series(scores, dtype=pl.Float64)
    )
    store(con, "link_candidates", scored)


def decide(con: duckdb.DuckDBPyConnection) -> None:
    """``link_decisions``: per row, linked or review, and for review the candidates shown."""
    cfg = _rules()
    agree, same = cfg["name_agreement"]["agree"], cfg["name_agreement"]["same"]
    rules = pl.DataFrame(
        [
            {
                "rule": r["rule"],
                "threshold": same if r.get("name") == "same" else agree,
                "band": r.get("band", "auto"),
                "confidence": float(r["confidence"]),
                "prefer_same_street": bool(r.get("prefer_same_street", False)),
                "id_anchored": r["candidates"] == "id_equal",
            }
            for r in cfg["rules"]
        ]
    )
    con.register("_rules", rules)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _link_scored AS
        SELECT c.*, ru.threshold, ru.band, ru.confidence, ru.prefer_same_street, ru.id_anchored,
               c.name_score >= ru.threshold AS passes,
               (r.street_code IS NOT NULL AND p.street_code = r.street_code) AS same_street
        FROM link_candidates c
        JOIN _rules ru USING (rule)
        JOIN link_rows r USING (row_id)
        JOIN link_persons p USING (person_id)
        ANTI JOIN link_forbidden f USING (row_id, person_id)
        """
    )
    con.unregister("_rules")
    # The deciding candidates: those of the first rule (in cascade order) whose name agrees.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _link_chosen AS
        WITH first_rule AS (
            SELECT row_id, min(rule_order) AS rule_order FROM _link_scored WHERE passes GROUP BY row_id
        ), chosen AS (
            SELECT c.* FROM _link_scored c JOIN first_rule USING (row_id, rule_order) WHERE c.passes
        )
        -- where a rule prefers the row's street, candidates there beat the others
        SELECT * FROM chosen
        QUALIFY NOT prefer_same_street OR NOT bool_or(same_street) OVER (PARTITION BY row_id) OR same_street
        """
    )
    # A trusted ID whose name clearly differs, with no other rule agreeing: never accepted silently.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _link_name_differs AS
        SELECT * FROM _link_scored
        WHERE id_anchored AND NOT passes AND row_id NOT IN (SELECT row_id FROM _link_chosen)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE link_decisions AS
        WITH per_row AS (
            SELECT row_id, count(*) AS n, any_value(rule) AS rule, any_value(band) AS band,
                   any_value(confidence) AS confidence, min(person_id) AS person_id,
                   min(name_score) AS name_score
            FROM _link_chosen GROUP BY row_id
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
        FROM _link_name_differs GROUP BY row_id
        UNION ALL
        SELECT row_id, 'linked', person_id, rule, confidence, NULL FROM link_trivial
        """
    )
    # What a reviewer sees: only the candidates that made the row a review row.
    con.execute(
        """
        CREATE OR REPLACE TABLE link_review AS
        SELECT d.row_id, d.match_rule, d.review_reason, c.person_id, c.rule AS candidate_rule, c.name_score
        FROM link_decisions d
        JOIN (SELECT row_id, person_id, rule, name_score FROM _link_chosen
              UNION ALL SELECT row_id, person_id, rule, name_score FROM _link_name_differs) c
          ON c.row_id = d.row_id
        WHERE d.outcome = 'review'
        """
    )


def load_decisions(con: duckdb.DuckDBPyConnection, key: bytes, decisions: pl.DataFrame | None = None) -> int:
    """Review decisions of the registries this run follows: ``link_forbidden`` (否) and
    ``link_confirmed`` (是, only while the candidate's name is the one the reviewer saw)."""
    from ..commands.review import decisions_for_link

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
    (:func:`kuomian.commands.review.stored_decisions`)."""
    progress("link: building the population")
    build_population(con)
    # Rows that define a person are settled; nearly all others are settled by one join
    # (resolve_trivial). Only what is left goes through the cascade: ``link_rows``.
    usable = "(SELECT r.* FROM std_rows r ANTI JOIN link_defining d USING (row_id) WHERE r.row_state = 'ok')"
    resolve_trivial(con, usable)
    con.execute(
        f"CREATE OR REPLACE TABLE link_rows AS SELECT r.* FROM {usable} r ANTI JOIN link_trivial t USING (row_id)"
    )
    _fingerprints(con, key)
    report = LinkReport()
    report.decisions_applied = load_decisions(con, key, decisions)
    progress("link: proposing candidates")
    con.execute("DELETE FROM link_rows WHERE row_id IN (SELECT row_id FROM link_confirmed)")
    generate_candidates(con)
    progress("link: scoring names")
    score_candidates(con)
    decide(con)
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
