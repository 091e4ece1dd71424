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
from datetime import date

import duckdb
import polars as pl

from ..core import names
from ..core.config import load_rules, load_sources
from ..core.db import connect, first_row, frame, ident, rows, scalar, sql_literal, store
from ..core.i18n import _
from ..core.labels import EVIDENCE_LABELS, REVIEW_REASON_LABELS
from ..core.privacy import fingerprint_sql, key_params


@dataclass
class LinkReport:
    outcomes: Counter = field(default_factory=Counter)  # (source, outcome) -> rows
    rules: Counter = field(default_factory=Counter)  # (source, rule) -> rows linked by it
    persons: int = 0
    persons_local: int = 0
    review_rows: int = 0
    decisions_applied: int = 0
    shared_ids: int = 0  # ID numbers the household extract gives to two people (重号)

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


def _near_days() -> int:
    return int((_rules().get("plausibility") or {}).get("corrected_birth_days", 0))


def _near_sql(a_id: str, a_birth: str, b_id: str, b_birth: str) -> str:
    """SQL: the same address code, and the same birth date or one at most ``corrected_birth_days``
    apart or one digit apart (a number corrected after a birth-date or a sequence error)."""
    return (
        f"(left({a_id}, 6) = left({b_id}, 6) AND ({a_birth} = {b_birth} "
        f"OR abs(date_diff('day', {a_birth}, {b_birth})) <= {int(_near_days())} "
        f"OR hamming(strftime({a_birth}, '%Y%m%d'), strftime({b_birth}, '%Y%m%d')) = 1))"
    )


def _wildcard_like(col: str) -> str:
    """SQL: a name key with placeholders as a LIKE pattern (ESCAPE '!'): each ? or * one character."""
    return f"replace(replace(replace(replace(replace({col}, '!', '!!'), '%', '!%'), '_', '!_'), '?', '_'), '*', '_')"


def _wild_join_sql(holder: str, other: str, id_col: str) -> str:
    """SQL join condition: ``holder``'s name key has placeholders (? *) that ``other``'s fills, on
    the same surname character, name length and address code (``id_col``: each side's ID)."""
    return (
        f"left({holder}.name_key, 1) = left({other}.name_key, 1) "
        f"AND length({holder}.name_key) = length({other}.name_key) "
        f"AND left({holder}.{id_col}, 6) = left({other}.{id_col}, 6) "
        f"AND regexp_matches({holder}.name_key, '[?*]') AND left({holder}.name_key, 1) NOT IN ('?', '*') "
        f"AND {other}.name_key LIKE {_wildcard_like(f'{holder}.name_key')} ESCAPE '!'"
    )


SHARED_ID_REASON = "two people with one ID number in the household extract (重号)"


def shared_ids(con: duckdb.DuckDBPyConnection) -> None:
    """``link_shared_ids`` (id_canonical): numbers the household extract gives to people of
    different names (neither the characters nor the sound agree): 重号. The first holder is the
    person; the other holders' rows go to review with :data:`SHARED_ID_REASON` (never dropped in
    silence), and the person is flagged ``shared_id`` and ``needs_review``."""
    base = _sql_list([s.name for s in load_sources().values() if s.role == "base"])
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_shared_ids AS
        SELECT id_canonical FROM std_rows
        WHERE source IN ({base}) AND row_state = 'ok' AND id_canonical IS NOT NULL AND name_key <> ''
        GROUP BY id_canonical
        HAVING count(DISTINCT name_key) > 1 AND count(DISTINCT name_py) > 1
        """
    )


def build_former(con: duckdb.DuckDBPyConnection) -> None:
    """``link_former_ids`` (the trusted former IDs the household rows carry) and, once the
    population is built, ``link_former``: person_id, former_id, former_key, former_py, former_name
    (曾用身份证号码 / 曾用名 of the household row that defines the person)."""
    from ..core import ids

    raw = frame(
        con,
        """SELECT row_id, id_canonical, former_id_number, former_name FROM std_household
           WHERE row_state = 'ok' AND id_canonical IS NOT NULL
             AND (nullif(trim(former_id_number), '') IS NOT NULL OR nullif(trim(former_name), '') IS NOT NULL)""",
    )
    if raw.height:
        raw = ids.add_id_columns(raw.rename({"id_canonical": "_own"}), "former_id_number")
        raw = names.add_name_keys(raw.with_columns(pl.col("former_name").fill_null("")), "former_name")
    else:
        raw = raw.rename({"id_canonical": "_own"}).with_columns(
            id_canonical=pl.lit(None, pl.String),
            name_key=pl.lit(None, pl.String),
            name_py=pl.lit(None, pl.String),
        )
    former = raw.select(
        "row_id",
        pl.col("_own").alias("own_id"),
        pl.col("id_canonical").alias("former_id"),
        pl.col("name_key").alias("former_key"),
        pl.col("name_py").alias("former_py"),
        pl.col("former_name").cast(pl.String),
    )
    store(con, "link_former_raw", former)
    con.execute(
        "CREATE OR REPLACE TABLE link_former_ids AS SELECT DISTINCT former_id FROM link_former_raw "
        "WHERE former_id IS NOT NULL AND former_id <> own_id"
    )


def build_population(con: duckdb.DuckDBPyConnection) -> None:
    """``link_persons``: household persons, then people that sources adding people bring;
    ``link_former`` (see :func:`build_former`)."""
    build_former(con)
    sources = load_sources()
    adding = [s.name for s in sources.values() if s.role == "adds_people"]
    base = [s.name for s in sources.values() if s.role == "base"]
    run_steps(
        con,
        [
            Step(
                "_lp_trusted",
                f"""SELECT row_id, id_canonical, source IN ({_sql_list(base)}) AS is_base, name_key, name_py, birth_date
                    FROM std_rows
                    WHERE row_state = 'ok' AND id_kind IN ('valid', 'upgraded')
                      AND (source IN ({_sql_list(base)}) OR source IN ({_sql_list(adding or ["-"])}))""",
                temp=True,
            ),
            Step(
                "_lp_first_base",
                "SELECT id_canonical, min(row_id) AS row_id FROM _lp_trusted WHERE is_base GROUP BY id_canonical",
                temp=True,
            ),
            Step(
                "_lp_base_people",
                "SELECT t.id_canonical, t.name_key, t.name_py, t.birth_date FROM _lp_trusted t "
                "JOIN _lp_first_base USING (row_id)",
                temp=True,
            ),
            # the rows that could add a person: a valid ID the household does not hold
            Step(
                "_lp_new",
                "SELECT t.* FROM _lp_trusted t ANTI JOIN _lp_first_base b USING (id_canonical) WHERE NOT t.is_base",
                temp=True,
            ),
        ],
    )
    # names written as parts among them, put back together
    _composed_names(con, "_lp_new", "_link_new_composed")
    near = _near_sql("b.id_canonical", "b.birth_date", "t.id_canonical", "t.birth_date")

    def wild(table: str) -> str:
        return f"regexp_matches({ident(table)}.name_key, '[?*]')"

    # An ID that is nobody's in the household but whose row points to a household person (a former
    # ID; the same name, address code and the same or a near birth date: possibly a corrected
    # number) adds nobody: its rows go to the cascade (corrected_id, former_id).
    suspect = " UNION ".join(
        f"SELECT t.id_canonical FROM {t_from} JOIN {b_from} ON {on} WHERE t.name_key <> '' AND {near}"
        for t_from, b_from, on in (
            ("_lp_new t", "_lp_base_people b", "b.name_key = t.name_key"),
            ("_lp_new t", "_lp_base_people b", "b.name_py = t.name_py"),
            (
                "_lp_new t",
                f"(SELECT * FROM _lp_base_people WHERE {wild('_lp_base_people')}) b",
                _wild_join_sql("b", "t", "id_canonical"),
            ),
            (
                f"(SELECT * FROM _lp_new WHERE {wild('_lp_new')}) t",
                "_lp_base_people b",
                _wild_join_sql("t", "b", "id_canonical"),
            ),
            (
                "_lp_new t JOIN _link_new_composed c USING (row_id)",
                "_lp_base_people b",
                "b.name_key = c.composed",
            ),
        )
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_defining AS
        WITH suspect AS (
            {suspect}
            UNION SELECT former_id FROM link_former_ids
        ),
        first_added AS (
            SELECT t.id_canonical, min(t.row_id) AS row_id
            FROM _lp_new t ANTI JOIN suspect s USING (id_canonical)
            GROUP BY t.id_canonical
        )
        SELECT row_id, id_canonical, true AS hukou_local FROM _lp_first_base
        UNION ALL
        SELECT row_id, id_canonical, false AS hukou_local FROM first_added
        """
    )
    for scratch in ("_lp_trusted", "_lp_first_base", "_lp_base_people", "_lp_new"):
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
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
    con.execute(
        """
        CREATE OR REPLACE TABLE link_former AS
        SELECT p.person_id, nullif(f.former_id, p.person_id) AS former_id,
               CASE WHEN f.former_key <> '' AND f.former_key <> p.name_key THEN f.former_key END AS former_key,
               CASE WHEN f.former_key <> '' AND f.former_key <> p.name_key THEN f.former_py END AS former_py,
               f.former_name
        FROM link_former_raw f JOIN link_persons p ON p.defining_row = f.row_id
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
    # the persons' former IDs and names (see :func:`build_former`); None: rules former_id and
    # former_name propose nobody
    former: str | None = None
    # the run's date (the age of a person, for plausibility); None: today
    as_of: date | None = None

    def out(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def temp(self, name: str) -> str:
        return f"_{self.prefix}_{name}"


# The refresh's tables (see the module docstring).
REFRESH_TABLES = LinkTables(
    rows="link_rows", persons="link_persons", forbidden="link_forbidden", former="link_former"
)


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
        WHERE r.id_kind IN ({_sql_list(list(by_kind))}) AND NOT regexp_matches(r.name, {sql_literal(NOTE_SQL)})
        """,
    )


# A name that carries a note (张三(已故), 王五 备注:迁出): resolved by the cascade, which shows it.
NOTE_SQL = r"[(（\[【〔]|备注|注\s*[:：]"


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
    "same_birth_place_name": (
        "JOIN {p} owner ON owner.person_id = r.id_canonical "
        "JOIN {p} p ON p.birth_date = owner.birth_date AND left(p.person_id, 6) = left(owner.person_id, 6) "
        "AND p.{k} = r.{k}",
        "p.person_id <> owner.person_id",
    ),
    "name_place": (
        "JOIN {p} p ON p.street_code = r.street_code AND p.{k} = r.{k}",
        "(r.community IS NULL OR p.community = r.community) "
        "AND (r.id_digits IS NULL OR starts_with(p.person_id, left(r.id_digits, 6)))",
    ),
}


def _home_codes_sql(persons: str) -> str:
    """SQL: the address codes (6 digits) of at least ``plausibility.home_code_share`` of the
    household persons of ``persons`` (the codes whose people the population mostly holds)."""
    share = float((_rules().get("plausibility") or {}).get("home_code_share", 0.0))
    return (
        f"SELECT left(person_id, 6) FROM {persons} WHERE hukou_local GROUP BY 1 "
        f"HAVING count(*) >= {sql_literal(share)} * (SELECT count(*) FROM {persons} WHERE hukou_local)"
    )


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
        none = "NULL::VARCHAR AS alt_key, NULL::VARCHAR AS alt_py, NULL::VARCHAR AS alt_name"
        former = "f.former_key AS alt_key, f.former_py AS alt_py, f.former_name AS alt_name"
        rows = f"(SELECT * FROM {t.rows} WHERE id_kind IN ({kinds}))"
        if how in ("former_id_equal", "id_equal_former_name") and t.former is None:
            continue
        if how == "id_equal":
            parts.append(f"{head}, {none} FROM {rows} r JOIN {P} p ON p.person_id = r.id_canonical")
        elif how == "former_id_equal":
            # the row's ID is a person's former ID: the name may be the current or the former one
            for alt in (none, former):
                parts.append(
                    f"{head}, {alt} FROM {rows} r JOIN {t.former} f ON f.former_id = r.id_canonical "
                    f"JOIN {P} p ON p.person_id = f.person_id"
                )
        elif how == "id_equal_former_name":
            parts.append(
                f"{head}, {former} FROM {rows} r JOIN {P} p ON p.person_id = r.id_canonical "
                f"JOIN {t.former} f ON f.person_id = p.person_id WHERE f.former_key IS NOT NULL"
            )
        elif how == "name_birth_near":
            # a valid ID that is nobody's: the same name and birth date, or the same name, address
            # code and a birth date at most corrected_birth_days away (a corrected number)
            near = _near_sql("p.person_id", "p.birth_date", "r.id_canonical", "r.birth_date")
            wild = [
                f"left(p.name_key, 1) = left(r.name_key, 1) AND length(p.name_key) = length(r.name_key) "
                f"AND regexp_matches({h}.name_key, '[?*]') AND left({h}.name_key, 1) NOT IN ('?', '*') "
                f"AND {o}.name_key LIKE {_wildcard_like(f'{h}.name_key')} ESCAPE '!'"
                for h, o in (("p", "r"), ("r", "p"))
            ]  # a placeholder on either side
            for on in ("p.name_key = r.name_key", "p.name_py = r.name_py", *wild):
                parts.append(
                    f"{head}, {none} FROM {rows} r ANTI JOIN {P} o ON o.person_id = r.id_canonical "
                    f"JOIN {P} p ON {on} AND {near} WHERE r.name_key <> ''"
                )
        elif how == "birth_corrected":
            # a valid ID that is nobody's and differs from one person's only in the birth-date digits
            # (the same address code and sequence code: a number re-issued after a birth-date
            # correction), a birth date at most corrected_birth_days away, the very same name
            parts.append(
                f"{head}, {none} FROM {rows} r ANTI JOIN {P} o ON o.person_id = r.id_canonical "
                f"JOIN {P} p ON p.name_key = r.name_key AND left(p.person_id, 6) = left(r.id_canonical, 6) "
                f"AND substr(p.person_id, 15, 3) = substr(r.id_canonical, 15, 3) "
                f"WHERE r.name_key <> '' AND abs(date_diff('day', p.birth_date, r.birth_date)) <= {int(_near_days())}"
            )
        elif how == "one_edit":
            # One substituted character leaves two of the three 6-character parts intact:
            # three selective equi-joins, then keep Hamming distance exactly 1.
            for a, b in ((1, 7), (1, 13), (7, 13)):
                parts.append(
                    f"{head}, {none} FROM {rows} r JOIN {P} p "
                    f"ON substr(p.person_id, {a}, 6) = substr(r.id_digits, {a}, 6) "
                    f"AND substr(p.person_id, {b}, 6) = substr(r.id_digits, {b}, 6) "
                    f"WHERE hamming(p.person_id, r.id_digits) = 1"
                )
            # An adjacent swap: swap each neighbouring pair back and look the result up.
            parts.append(
                f"""{head}, {none} FROM (
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
                    f"{head}, {none} FROM {rows} r JOIN {P} p ON {prefix} = r.id_digits WHERE length(r.id_digits) >= {sql_literal(n)}"
                )
        elif how in NAME_JOINS:
            # Name-keyed rules: one equi-join on the simplified-character key, one on the pinyin key.
            join, where = NAME_JOINS[how]
            if how == "name_prefix":
                # only the address code survives (5.30121E+17): name + code point to one person only
                # where the population holds most people of that code (its home codes); for another
                # code the extract's outsiders of that code and name are as likely
                where += f" AND left(p.person_id, 6) IN ({_home_codes_sql(P)})"
            for k in ("name_key", "name_py"):
                parts.append(
                    f"{head}, {none} FROM {rows} r {join.format(k=k, p=P)} WHERE r.{k} <> ''"
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
        SELECT c.row_id, c.person_id, c.rule, c.rule_order,
               r.name_key AS r_key, r.name_py AS r_py, r.name AS r_name,
               coalesce(c.alt_key, p.name_key) AS p_key, coalesce(c.alt_py, p.name_py) AS p_py,
               coalesce(c.alt_name, p.name) AS p_name
        FROM {t.out("candidates_raw")} c JOIN {t.rows} r USING (row_id) JOIN {t.persons} p USING (person_id)
        """
    ).pl()
    cfg = _rules()
    scores, evidence = names.name_agreement(
        pairs["r_key"].to_list(), pairs["r_py"].to_list(), pairs["p_key"].to_list(), pairs["p_py"].to_list(),
        pairs["r_name"].fill_null("").to_list(), pairs["p_name"].fill_null("").to_list(),
        understood=float(cfg["name_agreement"].get("understood", cfg["name_agreement"]["agree"])),
        parts={k: [str(v) for v in vs] for k, vs in (cfg.get("name_parts") or {}).items()},
    )  # fmt: skip
    scored = (
        pairs.select("row_id", "person_id", "rule", "rule_order")
        .with_columns(
            name_score=pl.Series(scores, dtype=pl.Float64),
            name_evidence=pl.Series([str(e) for e in evidence], dtype=pl.String),
        )
        # a pair proposed with the current and with the former name: the better agreement counts
        .sort("name_score", descending=True, maintain_order=True)
        .unique(["row_id", "person_id", "rule", "rule_order"], keep="first", maintain_order=True)
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
        why = str(r.get("review_reason") or "rule needs a person to confirm")
        values.append(
            f"({sql_literal(r['rule'])}, {sql_literal(threshold)}::DOUBLE, {sql_literal(band)}, {sql_literal(why)}, "
            f"{sql_literal(float(r['confidence']))}::DOUBLE, "
            f"{sql_literal(bool(r.get('prefer_same_street', False)))}, {sql_literal(r['candidates'] == 'id_equal')}, "
            f"{sql_literal(r['candidates'] in EXACT_ID_METHODS)})"
        )
    return (
        "(SELECT * FROM (VALUES " + ", ".join(values) + ") "
        "v(rule, threshold, band, review_reason, confidence, prefer_same_street, id_anchored, exact_id))"
    )


# Candidate methods resting on an exact ID (the row's own, or a person's registered former one):
# only they count a name that agrees once a placeholder, mask, pinyin or parts are understood, and
# only the others must pass the plausibility checks (birth date, adults-only sources).
EXACT_ID_METHODS = ("id_equal", "former_id_equal", "id_equal_former_name")
SPECIAL_EVIDENCE_SQL = _sql_list(list(names.SPECIAL_EVIDENCE))
SHOWN_EVIDENCE_SQL = _sql_list([*names.SPECIAL_EVIDENCE, "note"])


def _plausible_sql(t: LinkTables) -> str:
    """SQL (over ``r`` the row, ``p`` the candidate, ``ru`` the rule) true when the pair is plausible."""
    cfg = _rules().get("plausibility") or {}
    adults = list(cfg.get("adult_only_sources") or [])
    age = int(cfg.get("adult_age", 0))
    as_of = f"DATE {sql_literal(t.as_of.isoformat())}" if t.as_of else "current_date"
    child = (
        f"(r.source IN ({_sql_list(adults)}) AND p.birth_date > {as_of} - INTERVAL {int(age)} YEAR)"
        if adults and age
        else "false"
    )
    birth = "(r.birth_date_stated IS NULL OR p.birth_date IS NULL OR r.birth_date_stated = p.birth_date)"
    return f"(ru.exact_id OR (NOT coalesce({child}, false) AND (ru.band <> 'auto' OR {birth})))"


def _rivals_sql(t: LinkTables, chosen: str) -> str:
    """SQL: for each automatic candidate of ``chosen`` whose name agreed only once understood
    (placeholder, mask, pinyin), every other person of the same birth date and address code who
    fits as well (see :func:`decide_steps`)."""
    fits = (
        f"((regexp_matches(r.name_key, '[?*]') AND q.name_key LIKE {_wildcard_like('r.name_key')} ESCAPE '!') "
        "OR (c.name_evidence = 'latin' AND q.name_py = r.name_py) "
        # a name that only resembles the owner's while it is exactly someone else's (twins 张勇 / 张勇华)
        "OR (c.name_evidence = 'fuzzy' AND (q.name_key = r.name_key OR q.name_py = r.name_py)))"
    )
    P = t.persons
    return " UNION ".join(
        f"""SELECT c.* REPLACE (q.person_id AS person_id) FROM {chosen} c
            JOIN {t.rows} r USING (row_id) JOIN {P} o ON o.person_id = c.person_id
            JOIN {P} q ON {on} AND q.person_id <> c.person_id
            WHERE c.band = 'auto' AND c.name_evidence IN ({SPECIAL_EVIDENCE_SQL}, 'fuzzy') AND {fits}"""
        # (not the owner's household: a relative's row carrying the owner's ID is rare, a masked
        # name 张** fits most of a family, and the exact ID is the stronger evidence)
        for on in ("left(q.person_id, 14) = left(o.person_id, 14)",)
    )


def decide_steps(t: LinkTables) -> list[Step]:
    """``{prefix}_decisions`` (per row: linked or review, rule, confidence, review reason) and
    ``{prefix}_review`` (for review rows, the candidates that made them so)."""
    scored, chosen, differs = t.temp("scored"), t.temp("chosen"), t.temp("name_differs")
    chosen0 = t.temp("chosen0")
    forbidden = f"ANTI JOIN {t.forbidden} f USING (row_id, person_id)" if t.forbidden else ""
    return [
        Step(
            scored,
            f"""
            SELECT c.*, ru.threshold, ru.band, ru.review_reason, ru.confidence, ru.prefer_same_street,
                   ru.id_anchored,
                   (c.name_score >= ru.threshold OR (ru.band <> 'auto' AND c.name_evidence IN ({SPECIAL_EVIDENCE_SQL})))
                     AND (ru.exact_id OR ru.band <> 'auto' OR c.name_evidence NOT IN ({SPECIAL_EVIDENCE_SQL}))
                     AND {_plausible_sql(t)} AS passes,
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
            chosen0,
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
        # A name that agrees only once a placeholder, mask or pinyin is understood must not let two
        # people agree: another person of the same birth date and address code (twins: their numbers
        # differ in the sequence digits only) whose name fits it too makes the row a review row with both.
        Step(chosen, f"SELECT * FROM {chosen0} UNION ALL {_rivals_sql(t, chosen0)}", temp=True),
        # A trusted ID whose name clearly differs, with no other rule linking it: never accepted
        # silently (a rule of the review band proposing someone else: reviewed against both).
        Step(
            differs,
            f"""
            SELECT * FROM {scored}
            WHERE id_anchored AND NOT passes AND row_id NOT IN (SELECT row_id FROM {chosen} WHERE band = 'auto')
            """,
            temp=True,
        ),
        Step(
            t.out("decisions"),
            f"""
            WITH per_row AS (
                SELECT row_id, count(*) AS n, any_value(rule) AS rule, any_value(band) AS band,
                       any_value(review_reason) AS why,
                       any_value(confidence) AS confidence, min(person_id) AS person_id,
                       min(name_score) AS name_score, min(name_evidence) AS name_evidence
                FROM {chosen} GROUP BY row_id
            )
            SELECT row_id,
                   CASE WHEN n = 1 AND band = 'auto' THEN 'linked' ELSE 'review' END AS outcome,
                   CASE WHEN n = 1 AND band = 'auto' THEN person_id END AS person_id,
                   -- what made the name agree, where it was more than its characters and sound
                   rule || CASE WHEN name_evidence IN ({SHOWN_EVIDENCE_SQL}) THEN '+' || name_evidence ELSE '' END
                     AS match_rule,
                   CASE WHEN n = 1 AND band = 'auto' THEN confidence * (0.9 + 0.1 * name_score) END AS confidence,
                   CASE WHEN n > 1 THEN 'several candidates agree'
                        WHEN band <> 'auto' THEN why END AS review_reason
            FROM per_row
            UNION ALL
            SELECT row_id, 'review', NULL, any_value(rule), NULL, 'ID matches but the name differs'
            FROM {differs} WHERE row_id NOT IN (SELECT row_id FROM {chosen}) GROUP BY row_id
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
    base = _sql_list([s.name for s in sources.values() if s.role == "base"])
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
                WHEN x.outcome = 'review' AND s.source IN ({base}) AND sh.id_canonical IS NOT NULL
                    THEN {sql_literal(SHARED_ID_REASON)}
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
        LEFT JOIN link_shared_ids sh ON sh.id_canonical = s.id_canonical
        ORDER BY s.row_id
        """
    )


def _masked_sql(col: str) -> str:
    """SQL masking an ID (first 6 and last 4 characters), as :func:`..core.ids.mask_id`."""
    return (
        f"CASE WHEN length({col}) <= 10 THEN repeat('*', length({col})) "
        f"ELSE left({col}, 6) || repeat('*', length({col}) - 10) || right({col}, 4) END"
    )


def _composed_names(con: duckdb.DuckDBPyConnection, rows_sql: str, table: str = "_link_composed") -> None:
    """``table`` (row_id, composed): the rows of ``rows_sql`` whose name key changes once the parts
    of a rare character are put back together (name_parts; each distinct name once, in Python)."""
    parts = {k: [str(v) for v in vs] for k, vs in (_rules().get("name_parts") or {}).items()}
    got = frame(con, f"SELECT row_id, name_key FROM {rows_sql} s WHERE s.name_key <> ''")
    composed: dict[str, str] = {}
    out = []
    for rid, key in got.iter_rows():
        if key not in composed:
            composed[key] = names.compose_parts(key, parts) if parts else key
        if composed[key] != key:
            out.append((rid, composed[key]))
    store(con, table, pl.DataFrame(out, schema={"row_id": pl.Int64, "composed": pl.String}, orient="row"))


def listing_evidence(con: duckdb.DuckDBPyConnection) -> None:
    """``link_evidence`` (person_id, evidence): rows of the sources of ``no_silent_listing`` in
    rules/matching.yaml that could be a person's and were not accepted — in review with them as
    a candidate; in review or unmatched with the same name (characters or sound) and the same
    birth date, or the same address code and a near birth date (a corrected number); unmatched
    with an ID one character from theirs; or with a name whose placeholders or mask fit theirs
    and an ID that begins like theirs (or the same birth date). Such a person is never listed
    without a flag (classify: needs_review; the hand-off shows the evidence, IDs masked)."""
    watched = list((_rules().get("no_silent_listing") or {}).get("sources") or [])
    src = _sql_list(watched or ["-"])
    masked = f"coalesce({_masked_sql('s.id_digits')}, '-')"
    # the few rows concerned, once (every part below reads them)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _le_rows AS
            SELECT l.row_id, l.file, l.row, l.outcome, l.reason, s.id_digits, s.id_canonical,
                   s.name_key, s.name_py, s.birth_date
            FROM links l JOIN std_rows s USING (row_id)
            WHERE l.source IN ({src}) AND l.outcome IN ('review', 'unmatched')"""
    )
    rows_sql = "_le_rows"
    head = f"SELECT p.person_id, s.row_id, s.file, s.row, {masked} AS id_masked"
    parts = [
        f"""{head}, s.reason AS why, 1 AS prio FROM {rows_sql} s JOIN link_review v USING (row_id)
            JOIN link_persons p USING (person_id) WHERE s.outcome = 'review'""",
        *(
            f"""{head}, 'not accepted: same name, same or near birth date' AS why, 2 AS prio FROM {rows_sql} s
            JOIN link_persons p ON p.{k} = s.{k}
             AND {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")}
            WHERE s.{k} <> ''"""
            for k in ("name_key", "name_py")
        ),
        # a placeholder or mask (? *) stands for one character: the rest of the name, its length
        # and the surviving ID digits (or the birth date) agree
    ]
    # (either name may hold the placeholders: the household's or the extract's)
    for holder, other in (("s", "p"), ("p", "s")):
        parts.append(
            f"""{head}, 'not accepted: name with placeholders fits, ID begins alike' AS why, 3 AS prio
            FROM {rows_sql} s JOIN link_persons p
              ON left(p.name_key, 1) = left(s.name_key, 1) AND length(p.name_key) = length(s.name_key)
            WHERE regexp_matches({holder}.name_key, '[?*]') AND left(s.name_key, 1) NOT IN ('?', '*')
              AND {other}.name_key LIKE {_wildcard_like(f"{holder}.name_key")} ESCAPE '!'
              AND (starts_with(p.person_id, left(s.id_digits, 6)) OR p.birth_date = s.birth_date)"""
        )
    # the same name (characters or sound) and an ID two characters or fewer from theirs (a typo, a swap)
    parts.append(
        f"""{head}, 'not accepted: same name, ID two characters or fewer from theirs' AS why, 4 AS prio
            FROM {rows_sql} s JOIN link_persons p ON p.name_key = s.name_key
            WHERE length(s.id_digits) = 18 AND hamming(p.person_id, s.id_digits) <= 2
            UNION ALL
            {head}, 'not accepted: same name, ID two characters or fewer from theirs', 4
            FROM {rows_sql} s JOIN link_persons p ON p.name_py = s.name_py
            WHERE length(s.id_digits) = 18 AND hamming(p.person_id, s.id_digits) <= 2 AND s.name_py <> ''"""
    )
    # a damaged ID (Excel): the same name (characters or sound) and every surviving digit
    for k in ("name_key", "name_py"):
        parts.append(
            f"""{head}, 'not accepted: same name, the surviving ID digits agree' AS why, 4 AS prio
                FROM {rows_sql} s JOIN link_persons p ON p.{k} = s.{k}
                WHERE s.{k} <> '' AND s.id_canonical IS NULL AND length(s.id_digits) >= 6
                  AND starts_with(p.person_id, s.id_digits)"""
        )
    # a relative's row with the ID's owner's number: the member of the owner's household of that name;
    # a name the household lists as someone's former name (曾用名), with an ID that begins alike
    for k, former_k in (("name_key", "former_key"), ("name_py", "former_py")):
        parts.append(
            f"""{head}, 'not accepted: a member of the household of the ID''s owner with that name' AS why, 3 AS prio
                FROM {rows_sql} s JOIN link_persons o ON o.person_id = s.id_canonical
                JOIN link_persons p ON p.household_no = o.household_no AND p.person_id <> o.person_id
                 AND p.{k} = s.{k}
                WHERE s.{k} <> ''"""
        )
        parts.append(
            f"""{head}, 'not accepted: their former name, ID begins alike' AS why, 3 AS prio
                FROM {rows_sql} s JOIN link_former f ON f.{former_k} = s.{k}
                JOIN link_persons p ON p.person_id = f.person_id
                WHERE s.{k} <> '' AND (starts_with(p.person_id, left(s.id_digits, 6))
                                       OR {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")})"""
        )
    # a rare character written as its parts (name_parts of rules/matching.yaml): the name put back together
    _composed_names(con, rows_sql)
    parts.append(
        f"""{head}, 'not accepted: same name once its parts are put together' AS why, 3 AS prio
            FROM {rows_sql} s JOIN _link_composed c USING (row_id) JOIN link_persons p ON p.name_key = c.composed
            WHERE {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")}
               OR starts_with(p.person_id, left(s.id_digits, 6))"""
    )
    for a, b in ((1, 7), (1, 13), (7, 13)):
        parts.append(
            f"""{head}, 'not accepted: ID one character from theirs' AS why, 4 AS prio
                FROM {rows_sql} s JOIN link_persons p ON substr(p.person_id, {a}, 6) = substr(s.id_digits, {a}, 6)
                 AND substr(p.person_id, {b}, 6) = substr(s.id_digits, {b}, 6)
                WHERE s.outcome = 'unmatched' AND length(s.id_digits) = 18 AND hamming(p.person_id, s.id_digits) = 1"""
        )
    # the reasons in Chinese for the hand-off (core/labels.py), as a table of parameters
    con.execute("CREATE OR REPLACE TEMP TABLE _le_labels (why VARCHAR, shown VARCHAR)")
    con.executemany(
        "INSERT INTO _le_labels VALUES (?, ?)", list({**REVIEW_REASON_LABELS, **EVIDENCE_LABELS}.items())
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_evidence AS
        WITH e AS (
            SELECT * FROM ({" UNION ALL ".join(parts)})
            QUALIFY row_number() OVER (PARTITION BY person_id, row_id ORDER BY prio) = 1
        )
        SELECT person_id,
               '可能已参保: ' || string_agg(file || ' 第' || row || '行 ' || id_masked || ' (' || coalesce(lb.shown, e.why) || ')',
                                        '; ' ORDER BY row_id) AS evidence
        FROM e LEFT JOIN _le_labels lb ON lb.why = e.why GROUP BY person_id
        """
    )
    con.execute("DROP TABLE IF EXISTS _le_labels")
    con.execute("DROP TABLE IF EXISTS _le_rows")


def link(
    con: duckdb.DuckDBPyConnection,
    key: bytes,
    *,
    progress=lambda msg: None,
    decisions: pl.DataFrame | None = None,
    as_of: date | None = None,
) -> LinkReport:
    """Resolve every standardised row; see the module docstring for the tables written.

    ``decisions``: the review decisions carried from the registries this run follows
    (:func:`kuomian.core.decisions.stored_decisions`). ``as_of``: the run's date (a person's
    age, for the plausibility checks; None: today)."""
    from dataclasses import replace

    progress(_("link: building the population"))
    build_population(con)
    shared_ids(con)
    t = replace(REFRESH_TABLES, as_of=as_of)
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
    listing_evidence(con)
    # Scratch: everything they hold is in ``links`` now (half a million rows each at Anning's
    # size: dropped, so that classify has DuckDB's memory).
    for scratch in (
        "link_candidates_raw", "link_rows", "link_defining", "link_trivial", "link_decisions", "link_former_raw",
        "_link_composed", "_link_new_composed",
    ):  # fmt: skip
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
    report.shared_ids = scalar(con, "SELECT count(*) FROM link_shared_ids")
    return report
