"""The population (``link_persons``, ``link_defining``), the household's former IDs and names
(``link_former``) and its shared numbers (``link_shared_numbers``, ``link_shared_ids``, 重号).

A person's ``person_id`` is their ID number; a number the household extract gives to people of
different names makes each of them a person, ``person_id`` the ID + '#' + name
(:func:`.common.holder_id_sql`)."""

from __future__ import annotations

import duckdb
import polars as pl

from ...core import names
from ...core.db import frame, ident, store
from ...core.policy import policy
from ...core.privacy import key_params, person_key_sql
from .common import (
    MATCH_COLUMNS,
    Step,
    _composed_names,
    _near_sql,
    _sql_list,
    _wild_join_sql,
    person_id_sql,
    run_steps,
)

SHARED_ID_REASON = (
    "the ID number belongs to several people in the household extract (重号) and the name does not tell which"
)


def shared_numbers(con: duckdb.DuckDBPyConnection) -> None:
    """``link_shared_numbers`` (id_canonical): numbers the household extract gives to people of
    different names (neither the characters nor the sound agree): 重号. Each holder (each name
    sound among the household rows of the number) becomes a person of their own
    (:func:`build_population`); from ``_lp_trusted``."""
    con.execute(
        """
        CREATE OR REPLACE TABLE link_shared_numbers AS
        SELECT id_canonical FROM _lp_trusted
        WHERE is_base AND name_key <> ''
        GROUP BY id_canonical
        -- more than one name key and more than one sound (min <> max: a third of count(DISTINCT)'s time)
        HAVING min(name_key) <> max(name_key) AND min(name_py) <> max(name_py)
        """
    )


def shared_ids(con: duckdb.DuckDBPyConnection) -> None:
    """``link_shared_ids`` (id_canonical, person_id): one row per holder of a shared household
    number (see :func:`shared_numbers`), from ``link_persons``. Each holder is a person, flagged
    ``shared_id`` and ``needs_review`` by classify; rows of other extracts with the number are
    linked by name among the holders (rule ``shared_id_name``) or reviewed against them."""
    con.execute(
        """
        CREATE OR REPLACE TABLE link_shared_ids AS
        SELECT left(person_id, 18) AS id_canonical, person_id FROM link_persons WHERE contains(person_id, '#')
        """
    )


def build_former(con: duckdb.DuckDBPyConnection) -> None:
    """``link_former_ids`` (the trusted former IDs the household rows carry) and, once the
    population is built, ``link_former``: person_id, former_id, former_key, former_py, former_name
    (曾用身份证号码 / 曾用名 of the household row that defines the person)."""
    from ...core import ids

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


def build_population(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """``link_persons``: household persons (each holder of a shared number a person of their own,
    ``link_shared_numbers``, ``link_shared_ids``), then people that sources adding people bring,
    each with the ``person_key`` the outputs show (``key``: the person key's secret);
    ``link_former`` (see :func:`build_former`)."""
    build_former(con)
    sources = policy().sources
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
        ],
    )
    shared_numbers(con)
    run_steps(
        con,
        [
            # the first household row per ID; for a shared number (重号) the first per name sound
            # (a row without a name defines nobody there: the cascade reviews it against the holders)
            Step(
                "_lp_first_base",
                """SELECT id_canonical, min(row_id) AS row_id FROM _lp_trusted
                   WHERE is_base AND id_canonical NOT IN (SELECT id_canonical FROM link_shared_numbers)
                   GROUP BY id_canonical
                   UNION ALL
                   SELECT t.id_canonical, min(t.row_id) FROM _lp_trusted t SEMI JOIN link_shared_numbers USING (id_canonical)
                   WHERE t.is_base AND t.name_key <> '' GROUP BY t.id_canonical, t.name_py""",
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
    _defining(con)
    for scratch in ("_lp_trusted", "_lp_first_base", "_lp_base_people", "_lp_new"):
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_persons AS
        SELECT *, {MATCH_COLUMNS}, {person_key_sql("person_id")} AS person_key FROM (
            SELECT {person_id_sql("d", "r")} AS person_id, d.hukou_local, r.row_id AS defining_row, r.source AS origin,
                   r.name, r.name_key, r.name_py, r.sex, r.birth_date, r.street_code, r.community,
                   nullif(trim(h.household_no), '') AS household_no
            FROM link_defining d JOIN std_rows r USING (row_id)
            LEFT JOIN std_household h ON h.row_id = d.row_id
        )
        """,
        key_params(key),
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE link_former AS
        SELECT p.person_id, nullif(f.former_id, f.own_id) AS former_id,
               CASE WHEN f.former_key <> '' AND f.former_key <> p.name_key THEN f.former_key END AS former_key,
               CASE WHEN f.former_key <> '' AND f.former_key <> p.name_key THEN f.former_py END AS former_py,
               f.former_name
        FROM link_former_raw f JOIN link_persons p ON p.defining_row = f.row_id
        """
    )
    shared_ids(con)


def _defining(con: duckdb.DuckDBPyConnection) -> None:
    """``link_defining`` (row_id, id_canonical, holder, hukou_local): the row that defines each
    person (``holder``: of a shared number, whose person_id is :func:`person_id_sql`'s), from
    :func:`build_population`'s scratch tables (``_lp_*``): the first household row per ID, then the
    first row per valid ID a source adding people brings that points to nobody of the household."""
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
        SELECT row_id, id_canonical, id_canonical IN (SELECT id_canonical FROM link_shared_numbers) AS holder,
               true AS hukou_local
        FROM _lp_first_base
        UNION ALL
        SELECT row_id, id_canonical, false AS holder, false AS hukou_local FROM first_added
        """
    )
