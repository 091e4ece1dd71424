"""core/db.in_background: a COPY that runs while Python goes on must never outlive or hide a failure."""

from __future__ import annotations

import threading
import time

import duckdb
import polars as pl
import pytest

from kuomian.core.db import in_background, sql_literal


def test_the_statement_runs_while_the_block_does_and_is_done_on_leaving(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS i FROM range(200000)")
    out = tmp_path / "t.parquet"
    with in_background(con, f"COPY (SELECT * FROM t ORDER BY i) TO {sql_literal(out)} (FORMAT parquet)"):
        busy = con.execute("SELECT count(*) FROM t").fetchone()  # the connection stays usable
    assert busy == (200000,)
    assert pl.read_parquet(out).get_column("i").to_list() == list(range(200000))


def test_an_error_of_the_statement_is_raised_on_leaving(tmp_path):
    con = duckdb.connect()
    with (
        pytest.raises(duckdb.CatalogException),
        in_background(con, "COPY (SELECT * FROM nowhere) TO 'x.parquet'"),
    ):
        pass


def test_a_failing_block_interrupts_the_statement_and_waits_for_it():
    con = duckdb.connect()
    before = threading.active_count()
    t0 = time.perf_counter()
    # hours if left alone; KeyboardInterrupt is what Ctrl-C raises in the block
    with pytest.raises(KeyboardInterrupt), in_background(con, "SELECT count(*) FROM range(1000000000000) a"):
        time.sleep(0.2)
        raise KeyboardInterrupt
    assert time.perf_counter() - t0 < 30
    assert threading.active_count() == before  # nothing of it runs on


def test_not_enabled_the_statement_runs_first_in_this_thread(tmp_path):
    con = duckdb.connect()
    out = tmp_path / "one.parquet"
    with in_background(con, f"COPY (SELECT 1 AS i) TO {sql_literal(out)} (FORMAT parquet)", enabled=False):
        assert out.exists()  # written before the block runs
        assert threading.active_count() == 1 or all(t.name != "kuomian-query" for t in threading.enumerate())
