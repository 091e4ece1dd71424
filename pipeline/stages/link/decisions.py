"""Review decisions carried from earlier registries (``link_fingerprints``, ``link_forbidden``,
``link_confirmed``) and the stage's result, one row per standardised row (``links``)."""

from __future__ import annotations

import duckdb
import polars as pl

from ...core.db import rows, scalar, sql_literal
from ...core.policy import policy
from ...core.privacy import fingerprint_sql, key_params
from .common import _sql_list, person_id_sql
from .population import SHARED_ID_REASON


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


def load_decisions(con: duckdb.DuckDBPyConnection, key: bytes, decisions: pl.DataFrame | None = None) -> int:
    """Review decisions of the registries this run follows: ``link_forbidden`` (否) and
    ``link_confirmed`` (是, only while the candidate's name is the one the reviewer saw)."""
    from ...core.decisions import decisions_for_link

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
    sources = policy().sources
    adding = _sql_list([s.name for s in sources.values() if s.role in ("adds_people", "base")])
    row_person_sql = (
        f"CASE WHEN s.row_state = 'ok' THEN coalesce("
        f"CASE WHEN d.row_id IS NOT NULL THEN {person_id_sql('d', 's')} END, k.person_id, x.person_id) END"
    )
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
            coalesce(s.id_canonical, left(p.person_id, 18)) AS id_number,
            {row_person_sql} AS person_id,
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
                -- a number the household gives to several people (重号): reviewed against its holders
                WHEN x.outcome = 'review' AND sh.id_canonical IS NOT NULL THEN {sql_literal(SHARED_ID_REASON)}
                WHEN x.outcome = 'review' THEN x.review_reason
                WHEN x.outcome IS NULL AND s.source IN ({adding}) THEN
                    CASE WHEN s.id_kind = 'bad_check' THEN 'id_check_failed_no_match'
                         WHEN s.id_kind = 'excel' THEN 'id_damaged_no_match'
                         ELSE 'no_id_no_match' END
            END AS reason,
            -- the key the outputs show for the person (link_persons), carried so that
            -- links.parquet is this table read in its order (no join, no sort when publishing)
            p.person_key
        FROM std_rows s
        LEFT JOIN link_defining d ON d.row_id = s.row_id
        LEFT JOIN link_confirmed k ON k.row_id = s.row_id AND d.row_id IS NULL
        LEFT JOIN link_decisions x ON x.row_id = s.row_id
        LEFT JOIN link_persons p ON p.person_id = {row_person_sql}
        LEFT JOIN link_shared_numbers sh ON sh.id_canonical = s.id_canonical
        ORDER BY s.row_id
        """
    )
