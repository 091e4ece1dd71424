"""The cascade on any standardised rows against a published population (``kuomian check``)."""

from __future__ import annotations

import duckdb
import polars as pl

from ...core import names
from ...core.db import connect, frame, store
from ...core.ids import person_refs
from .cascade import cascade, trivial_step
from .common import MATCH_COLUMNS, LinkTables, Step, run_steps


def persons_for_link(persons: pl.DataFrame) -> pl.DataFrame:
    """A published ``persons.parquet`` frame as the cascade's persons table (name keys, match columns
    added by :func:`match_to_persons`)."""
    # the name keys as standardise computes them: every distinct name once, in one vectorised pass
    keyed = names.add_name_keys(persons.with_columns(pl.col("name").fill_null("")), raw_col="name")
    return keyed.select(
        # the refresh's person_id: the ID; a holder of a shared household number's ID#name (重号)
        person_refs(persons).alias("person_id"),
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
    ``review_reason``; a row absent from it matched nobody. ``person_id`` is
    :func:`kuomian.core.ids.person_refs` of the person (the ID, or a shared number's holder's ID#name). Runs in a private in-memory
    DuckDB whose spill folder (plain-text IDs) is a recorded private work folder, removed
    afterwards; no review decisions apply.
    """
    from ...core.fileio import private_workdir
    from ..standardise import IDENTITY_COLUMNS

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
