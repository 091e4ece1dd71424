"""What every part of the link stage shares: the policy of ``rules/matching.yaml``, SQL
fragments over code-owned columns (near birth dates, placeholders as LIKE patterns, masked
IDs), the cascade's table names (:class:`LinkTables`) and steps (:class:`Step`, :func:`run_steps`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from ...core import names
from ...core.db import frame, sql_literal, store
from ...core.policy import Matching, policy


def _rules() -> Matching:
    """rules/matching.yaml, as the typed policy in force has checked it."""
    return policy().matching


def _base_sources() -> list[str]:
    """The sources that define the population (``role: base``: the household extract)."""
    return [s.name for s in policy().sources.values() if s.role == "base"] or ["-"]


def _near_days() -> int:
    return _rules().corrected_birth_days


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


def holder_id_sql(id_sql: str, name_sql: str) -> str:
    """SQL: the person_id of a holder of a shared household number (重号): the ID, ``#`` and the
    name of the household row that defines them (stable while the household keeps the names;
    every other person's person_id is the ID itself). :func:`kuomian.core.ids.person_ref_expr`
    computes the same from persons.parquet (``id_number``, ``name``, ``shared_id``)."""
    return f"{id_sql} || '#' || {name_sql}"


def person_id_sql(defining: str, row: str) -> str:
    """SQL: the person_id of the person a ``link_defining`` row (alias ``defining``) defines, its
    std_rows row aliased ``row``: the ID, or for a holder of a shared number :func:`holder_id_sql`."""
    return (
        f"CASE WHEN {defining}.holder THEN {holder_id_sql(f'{defining}.id_canonical', f'{row}.name')} "
        f"ELSE {defining}.id_canonical END"
    )


def holders_sql(persons: str) -> str:
    """SQL: the persons of ``persons`` who hold a shared household number, with ``holder_of``
    (that number)."""
    return f"(SELECT *, left(person_id, 18) AS holder_of FROM {persons} WHERE contains(person_id, '#'))"


# Derived keys of ``link_persons`` the rules join on. Excel keeps 15 significant digits of a
# number, rounding the 15th (other programs truncate): both forms of the prefix are kept.
MATCH_COLUMNS = """left(person_id, 15) AS prefix15,
    CAST(CAST(left(person_id, 15) AS BIGINT)
         + CASE WHEN substr(person_id, 16, 1) >= '5' THEN 1 ELSE 0 END AS VARCHAR) AS prefix15_rounded"""


def _sql_list(values: list[str]) -> str:
    return ", ".join(sql_literal(v) for v in values)


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


def _masked_sql(col: str) -> str:
    """SQL masking an ID (first 6 and last 4 characters), as :func:`..core.ids.mask_id`."""
    return (
        f"CASE WHEN length({col}) <= 10 THEN repeat('*', length({col})) "
        f"ELSE left({col}, 6) || repeat('*', length({col}) - 10) || right({col}, 4) END"
    )


def _composed_names(con: duckdb.DuckDBPyConnection, rows_sql: str, table: str = "_link_composed") -> None:
    """``table`` (row_id, composed): the rows of ``rows_sql`` whose name key changes once the parts
    of a rare character are put back together (name_parts; each distinct name once, in Python)."""
    parts = {k: list(vs) for k, vs in _rules().name_parts.items()}
    # a key holding none of the spellings is left as it is: only those holding one go to Python
    forms = sorted({form for sps in parts.values() for sp in sps for form in ("+".join(sp), sp)})
    got = frame(con, f"SELECT row_id, name_key FROM {rows_sql} s WHERE s.name_key <> ''")
    got = got.filter(pl.col("name_key").str.contains_any(forms)) if forms else got.clear()
    plan = names.parts_plan(parts)
    composed = {k: names.compose_by_plan(k, plan) for k in got["name_key"].unique().to_list()}
    out = got.with_columns(composed=pl.col("name_key").replace_strict(composed, return_dtype=pl.String))
    out = out.filter(pl.col("composed") != pl.col("name_key")).select("row_id", "composed")
    store(con, table, out.cast({"row_id": pl.Int64}))
