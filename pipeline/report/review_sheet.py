"""review.xlsx: one line per (extract row, candidate person) pair, side by side field by field.

Reads the link stage's tables ``link_review``, ``link_persons`` and ``link_fingerprints``, and
the rows under review that publishing kept (``pub_review_rows``); IDs are masked and a
身份证号差异 column says where the two numbers differ.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ..core.db import frame
from ..core.ids import mask_id
from ..core.labels import REVIEW_COLUMNS as COLUMNS
from ..core.labels import REVIEW_DECISIONS as DECISIONS
from ..core.policy import policy
from ..core.privacy import fingerprint_sql, key_params


def id_difference(a: str | None, b: str | None) -> str:
    """Where two ID strings differ, without showing them."""
    if not a or not b:
        return "记录无可用身份证号"
    if a == b:
        return "相同"
    if len(a) == len(b):
        diff = [i + 1 for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0] - 1] == b[diff[1] - 1]:
            return f"第{diff[0]}、{diff[1]}位互换"
        return f"{len(diff)}位不同(第{'、'.join(map(str, diff[:4]))}位)"
    if b.startswith(a):
        return f"仅前{len(a)}位可用,且相同"
    return "长度不同"


def review_frame(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, key: bytes) -> pl.DataFrame:
    df = frame(
        con,
        f"""
        SELECT {fingerprint_sql("p.name_key")} AS name_fp, f.fingerprint AS review_id, r.source, r.file, r.sheet,
               r.row, v.match_rule, v.review_reason,
               r.name AS r_name, p.name AS p_name, coalesce(r.id_canonical, r.id_digits) AS r_id_full,
               left(p.person_id, 18) AS p_id_full, r.birth_date AS r_birth, p.birth_date AS p_birth,
               r.street_code AS r_street, p.street_code AS p_street, r.community AS r_community,
               p.community AS p_community, round(v.name_score, 2) AS name_score, v.person_id
        FROM link_review v JOIN pub_review_rows r USING (row_id) JOIN link_persons p USING (person_id)
        JOIN link_fingerprints f USING (row_id)
        ORDER BY r.source, r.file, r.sheet, r.row, v.name_score DESC, v.person_id
        """,
        key_params(key),
    )
    df = df.join(keys, on="person_id", how="left", maintain_order="left")
    names = policy().street_names
    return df.with_columns(
        id_diff=pl.Series(
            [id_difference(a, b) for a, b in zip(df["r_id_full"], df["p_id_full"], strict=True)],
            dtype=pl.String,
        ),
        r_id=pl.Series([mask_id(v) for v in df["r_id_full"]], dtype=pl.String),
        p_id=pl.Series([mask_id(v) for v in df["p_id_full"]], dtype=pl.String),
        r_street=pl.col("r_street").replace_strict(names, default=None, return_dtype=pl.String),
        p_street=pl.col("p_street").replace_strict(names, default=None, return_dtype=pl.String),
        decision=pl.lit("", dtype=pl.String),
    ).select("name_fp", *[c for c, _ in COLUMNS])


def write_review_xlsx(
    con: duckdb.DuckDBPyConnection, path: Path, keys: pl.DataFrame, key: bytes, offers: Path | None = None
) -> int:
    """review.xlsx (text cells; any ID typed into a text field masked) and, in ``offers``, the
    pairs it shows."""
    from ..core.cells import people_frame
    from ..core.xlsx import write_xlsx

    df = review_frame(con, keys, key)
    if offers is not None:
        offers.parent.mkdir(exist_ok=True)
        df.select(fingerprint="review_id", person_key="person_key", name_fp="name_fp").write_parquet(offers)
    df = people_frame(df.drop("name_fp"), csv=False, keep=("r_id", "p_id")).rename(dict(COLUMNS))
    last = len(COLUMNS) - 1
    return write_xlsx(
        path,
        df,
        sheet_name="待复核",
        widths={0: 24, 7: 12, 8: 12, 11: 22, last: 16},
        dropdowns={last: list(DECISIONS)},
    )
