"""The review queue: ``review.xlsx`` out, decisions back in.

Each line of the sheet is one (extract row, candidate person) pair, side by
side field by field, with the rule that proposed it and a 决定 column
(是 / 否 / 不确定, a drop-down). IDs are masked; a 身份证号差异 column says
where the two numbers differ, which is what a reviewer needs.

Decisions are stored in the state folder (``review_decisions.parquet``, keyed
by a keyed fingerprint of the row and the candidate's ``person_key``) and
applied by every later refresh: 是 links the row to that person, 否 forbids
the pair. 不确定 and blank lines stay in review.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..core.db import frame
from ..core.errors import KuomianError
from ..core.ids import mask_id
from ..core.privacy import state_dir

DECISIONS = ("是", "否", "不确定")
COLUMNS = [
    ("review_id", "复核编号"), ("source", "来源"), ("file", "文件"), ("sheet", "工作表"), ("row", "行号"),
    ("match_rule", "提出规则"), ("review_reason", "复核原因"),
    ("r_name", "记录姓名"), ("p_name", "候选人姓名"),
    ("r_id", "记录身份证号"), ("p_id", "候选人身份证号"), ("id_diff", "身份证号差异"),
    ("r_birth", "记录出生日期"), ("p_birth", "候选人出生日期"),
    ("r_street", "记录街道"), ("p_street", "候选人街道"),
    ("r_community", "记录社区"), ("p_community", "候选人社区"),
    ("name_score", "姓名相似度"), ("person_key", "候选人编号"), ("decision", "决定(是/否/不确定)"),
]  # fmt: skip


def decisions_path() -> Path:
    return state_dir() / "review_decisions.parquet"


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


def review_frame(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
    df = frame(
        con,
        """
        SELECT f.fingerprint AS review_id, r.source, r.file, r.sheet, r.row, v.match_rule, v.review_reason,
               r.name AS r_name, p.name AS p_name, coalesce(r.id_canonical, r.id_digits) AS r_id_full,
               p.person_id AS p_id_full, r.birth_date AS r_birth, p.birth_date AS p_birth,
               r.street_code AS r_street, p.street_code AS p_street, r.community AS r_community,
               p.community AS p_community, round(v.name_score, 2) AS name_score, v.person_id
        FROM link_review v JOIN std_rows r USING (row_id) JOIN link_persons p USING (person_id)
        JOIN link_fingerprints f USING (row_id)
        ORDER BY r.source, r.file, r.sheet, r.row, v.name_score DESC
        """,
    )
    df = df.join(keys.rename({"id_number": "person_id"}), on="person_id", how="left")
    from ..core.config import street_names

    names = street_names()
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
    ).select([c for c, _ in COLUMNS])


def write_review_xlsx(con: duckdb.DuckDBPyConnection, path: Path, keys: pl.DataFrame) -> int:
    from ..core.xlsx import write_xlsx

    df = review_frame(con, keys).rename(dict(COLUMNS))
    last = len(COLUMNS) - 1
    return write_xlsx(
        path,
        df,
        sheet_name="待复核",
        widths={0: 24, 7: 12, 8: 12, 11: 22, last: 16},
        dropdowns={last: list(DECISIONS)},
    )


def import_decisions(file: Path, registry: Path) -> dict:
    """Read a filled-in review.xlsx; store 是/否 decisions for every later refresh."""
    from ..stages.load import ROW_COL, FileProblem, read_any

    if not (registry / "persons.parquet").exists():
        raise KuomianError(f"--registry {registry}: not a kuomian output folder (no persons.parquet).")
    header, body, *_ = read_any(file, {h for _, h in COLUMNS})
    want = {h: c for c, h in COLUMNS}
    idx = {want[h]: j for j, h in enumerate(header) if h in want}
    for needed in ("review_id", "person_key", "decision"):
        if needed not in idx:
            raise FileProblem(
                file,
                f"the column {dict(COLUMNS)[needed]} is missing",
                "Use the review.xlsx the refresh wrote.",
            )
    df = body.select(
        pl.col(ROW_COL).alias("line"),
        pl.col(f"c{idx['review_id']}").alias("fingerprint"),
        pl.col(f"c{idx['person_key']}").alias("person_key"),
        pl.col(f"c{idx['decision']}").str.strip_chars().alias("decision"),
    )
    counts = {"是": 0, "否": 0, "不确定": 0, "blank": 0, "rejected": 0}
    problems = []
    good = []
    for line, fp, pk, dec in df.iter_rows():
        if not dec:
            counts["blank"] += 1
        elif dec not in DECISIONS:
            counts["rejected"] += 1
            problems.append(f"row {line}: {dec!r} is not one of 是 / 否 / 不确定")
        elif not fp or not pk:
            counts["rejected"] += 1
            problems.append(f"row {line}: 复核编号 or 候选人编号 is empty")
        else:
            counts[dec] += 1
            if dec != "不确定":
                good.append({"fingerprint": fp, "person_key": pk, "decision": dec})
    new = pl.DataFrame(
        good, schema={"fingerprint": pl.String, "person_key": pl.String, "decision": pl.String}
    )
    new = new.with_columns(decided_on=pl.lit(date.today()))
    store = decisions_path()
    if store.exists():
        old = pl.read_parquet(store)
        new = pl.concat([old.join(new, on=["fingerprint", "person_key"], how="anti"), new], how="vertical")
    tmp = store.with_suffix(".tmp")
    new.write_parquet(tmp)
    tmp.replace(store)
    return {"counts": counts, "problems": problems, "stored": new.height, "store": str(store)}


def decisions_for_link(key: bytes, person_ids: list[str]) -> pl.DataFrame:
    """Stored decisions with person_key mapped back to the canonical ID of this run's persons."""
    from ..core.privacy import person_keys

    path = decisions_path()
    if not path.exists():
        return pl.DataFrame(schema={"fingerprint": pl.String, "person_id": pl.String, "decision": pl.String})
    d = pl.read_parquet(path)
    m = pl.DataFrame({"person_id": person_ids, "person_key": person_keys(person_ids, key)})
    return d.join(m, on="person_key", how="inner").select("fingerprint", "person_id", "decision")
