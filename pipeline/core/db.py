"""The run's DuckDB connection and three small helpers around it.

DuckDB 2.0 keeps an undrained result open and blocks the connection, so every
query here is fully fetched before the next one runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

DEFAULT_MEMORY_LIMIT = "1GB"


def connect(
    temp_dir: Path | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    on_disk: bool = False,
):
    """The run's database; its spill files (plain-text IDs!) go to a private folder of the run.

    In memory by default. ``on_disk`` (a city the size of Kunming) keeps the tables in a
    database file in that same private folder instead: DuckDB then holds only what it is
    working on within the memory limit and reads the rest back from the (compressed) file.
    """
    if on_disk and temp_dir is None:
        raise ValueError("on_disk needs the run's private temp_dir")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    con = duckdb.connect((temp_dir / "run.duckdb").as_posix() if on_disk and temp_dir else ":memory:")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = '{temp_dir.as_posix()}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    # DuckDB's own default is 80% of RAM: nothing would spill and every intermediate table
    # would stay resident. A modest default keeps the run's footprint small (it spills to
    # the private temp folder when needed); --memory-limit or KUOMIAN_MEMORY_LIMIT override.
    memory_limit = (
        memory_limit or os.environ.get("KUOMIAN_MEMORY_LIMIT") or (DEFAULT_MEMORY_LIMIT if temp_dir else None)
    )
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    return con


def scalar(con: duckdb.DuckDBPyConnection, query: str, params=None):
    """The first value of the first row."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


def first_row(con: duckdb.DuckDBPyConnection, query: str, params=None) -> tuple:
    rows = con.execute(query, params or []).fetchall()
    return rows[0] if rows else ()


def rows(con: duckdb.DuckDBPyConnection, query: str, params=None) -> list[tuple]:
    return con.execute(query, params or []).fetchall()


def frame(con: duckdb.DuckDBPyConnection, query: str, params=None) -> pl.DataFrame:
    return con.sql(query, params=params).pl() if params else con.sql(query).pl()


def store(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame, *, append: bool = False) -> None:
    """CREATE OR REPLACE TABLE ``table`` from a polars frame (``append``: INSERT, columns by name)."""
    con.register("_kuomian_frame", df)
    try:
        if append:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _kuomian_frame")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _kuomian_frame")
    finally:
        con.unregister("_kuomian_frame")
