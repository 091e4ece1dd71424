"""The run's DuckDB connection and three small helpers around it.

DuckDB 2.0 keeps an undrained result open and blocks the connection, so every
query here is fully fetched before the next one runs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from .errors import KuomianError
from .i18n import _

DEFAULT_MEMORY_LIMIT = "1GB"
MIN_MEMORY_LIMIT = 256 * 1000**2  # bytes; below this DuckDB runs out of memory on the smallest world
# What DuckDB's SET memory_limit takes, and nothing else: a number and a unit.
MEMORY_LIMIT_RE = re.compile(r"^\d{1,6}(\.\d{1,3})?\s?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
# A name kuomian puts into SQL as an identifier (a table, a column): a code-owned word, or a
# policy name that core/policy.py checked against the same form.
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_literal(value) -> str:
    """The one way a value becomes SQL text where DuckDB takes no parameter (``SET``, paths in
    ``COPY``/``read_*``, constants compiled from rules/): a SQL literal, never code.

    Text (and a path) is quoted with every ``'`` doubled; a NUL character is refused (DuckDB
    would cut the text there). Numbers must be finite; booleans and dates become their literals.
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                _("a number that is not finite ({value!r}) cannot go into SQL").format(value=value)
            )
        return repr(float(value))
    if isinstance(value, date):  # a datetime too: its date
        return f"DATE '{value.isoformat()[:10]}'"
    if isinstance(value, Path):
        value = value.as_posix()
    if not isinstance(value, str):
        raise TypeError(_("{name} cannot go into SQL as a literal").format(name=type(value).__name__))
    if "\x00" in value:
        raise ValueError(_("a text holding a NUL character cannot go into SQL"))
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a SQL identifier, after checking it is a plain word (letters, digits, _)."""
    if not isinstance(name, str) or not IDENT_RE.match(name):
        raise ValueError(_("{name!r} is not a plain identifier and cannot go into SQL").format(name=name))
    return name


def check_memory_limit(value: str, where: str = "--memory-limit") -> str:
    """``value`` if it is a DuckDB memory size such as ``4GB`` or ``512 MiB``; else one line, exit 1."""
    text = str(value).strip()
    m = MEMORY_LIMIT_RE.match(text)
    if not m:
        raise KuomianError(
            _("{where} {value!r}: not a memory size. Write a number and a unit, e.g. 4GB or 512MiB.").format(
                where=where, value=value
            )
        )
    if memory_bytes(text) < MIN_MEMORY_LIMIT:
        raise KuomianError(
            _("{where} {value!r}: too little for a run. Give at least 256MB, e.g. 4GB.").format(
                where=where, value=value
            )
        )
    return text


def memory_bytes(size: str) -> float:
    """Bytes of a memory size DuckDB writes or reads (``4GB``, ``512 MiB``, ``5.5 GiB``)."""
    m = MEMORY_LIMIT_RE.match(size.strip())
    if not m:
        raise ValueError(size)
    unit = m.group(2)
    step = 1024 if "i" in unit else 1000
    return float(size.strip()[: m.start(2)]) * step ** ("KMGT".index(unit[0]) + 1)


@contextmanager
def memory_at_most(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory limit lowered to ``limit`` for the block (if it is higher), then restored.

    Lowering it makes DuckDB let go of the pages it keeps cached from a database file: the
    memory is the process's again while Python holds big frames (a Kunming run's publish)."""
    was = str(scalar(con, "SELECT current_setting('memory_limit')"))
    lower = memory_bytes(limit) < memory_bytes(was)
    if lower:
        con.execute(f"SET memory_limit = {sql_literal(limit)}")
    try:
        yield
    finally:
        if lower:
            con.execute(f"SET memory_limit = {sql_literal(was)}")


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
        raise ValueError(_("on_disk needs the run's private temp_dir"))
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    con = duckdb.connect((temp_dir / "run.duckdb").as_posix() if on_disk and temp_dir else ":memory:")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = {sql_literal(temp_dir)}")
    if threads:
        con.execute(f"SET threads = {sql_literal(int(threads))}")
    # DuckDB's own default is 80% of RAM: nothing would spill and every intermediate table
    # would stay resident. A modest default keeps the run's footprint small (it spills to
    # the private temp folder when needed); --memory-limit or KUOMIAN_MEMORY_LIMIT override.
    if memory_limit:
        memory_limit = check_memory_limit(memory_limit)
    elif os.environ.get("KUOMIAN_MEMORY_LIMIT"):
        memory_limit = check_memory_limit(os.environ["KUOMIAN_MEMORY_LIMIT"], "KUOMIAN_MEMORY_LIMIT")
    elif temp_dir:
        memory_limit = DEFAULT_MEMORY_LIMIT
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
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
            con.execute(f"INSERT INTO {ident(table)} BY NAME SELECT * FROM _kuomian_frame")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {ident(table)} AS SELECT * FROM _kuomian_frame")
    finally:
        con.unregister("_kuomian_frame")
