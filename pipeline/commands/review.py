"""The review queue: ``review.xlsx`` out, decisions back in.

Each line of the sheet is one (extract row, candidate person) pair, side by
side field by field, with the rule that proposed it and a 决定 column
(是 / 否 / 不确定, a drop-down). IDs are masked; a 身份证号差异 column says
where the two numbers differ, which is what a reviewer needs.

Decisions are kept per registry, in OUT_DIR's state folder
(``OUT_DIR/state/review_decisions.parquet``, keyed by a keyed fingerprint of
the row and the candidate's ``person_key``), carried into the next OUT_DIR by
a refresh with ``--previous`` (or ``--force`` in place) and applied there: 是
links the row to that person, 否 forbids the pair. 不确定 and blank lines stay
in review. Only what the review offered is accepted: each refresh records the
pairs it showed (``state/review_offers.parquet``: row fingerprint, candidate
``person_key`` and a keyed fingerprint of the candidate's name); a line whose
复核编号 and 候选人编号 are not such a pair (a changed key, a made-up row, a
formula) is rejected with its row number, and a 是 is applied only while the
candidate's name is still the one the reviewer saw.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..core import fileio
from ..core.db import frame
from ..core.errors import KuomianError
from ..core.fileio import output_lock, published_persons, write_parquet_atomically
from ..core.ids import mask_id
from ..core.labels import REVIEW_COLUMNS as COLUMNS
from ..core.labels import REVIEW_DECISIONS as DECISIONS
from ..core.privacy import fingerprint_sql, key_params

STATE = "state"
DECISION_SCHEMA = {
    "fingerprint": pl.String, "person_key": pl.String, "name_fp": pl.String, "decision": pl.String,
    "decided_on": pl.Date,
}  # fmt: skip


def decisions_path(registry: Path) -> Path:
    """A registry's review decisions (its state folder)."""
    return Path(registry) / STATE / "review_decisions.parquet"


def offers_path(registry: Path) -> Path:
    """The (row, candidate) pairs a registry's review.xlsx offered."""
    return Path(registry) / STATE / "review_offers.parquet"


def _read_decisions(path: Path) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame(schema=DECISION_SCHEMA)
    d = pl.read_parquet(path)
    if "name_fp" not in d.columns:  # decisions of an older version: no name to check, never applied
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return d.select([pl.col(c).cast(t) for c, t in DECISION_SCHEMA.items()])


def stored_decisions(*registries: Path | None, progress=lambda m: None) -> pl.DataFrame:
    """The decisions of these registries (a later one wins for the same pair): what a refresh
    carries from ``--previous`` and from the OUT_DIR it replaces."""
    from ..core.privacy import state_dir

    legacy = state_dir() / "review_decisions.parquet"
    if legacy.exists():
        progress(
            f"note: {legacy} holds review decisions of an older version that are no longer used "
            "(decisions are kept per registry now): import the filled-in review.xlsx into its OUT_DIR again"
        )
    out = pl.DataFrame(schema=DECISION_SCHEMA)
    for reg in registries:
        if reg is None:
            continue
        d = _read_decisions(decisions_path(reg))
        out = pl.concat([out.join(d, on=["fingerprint", "person_key"], how="anti"), d], how="vertical")
    return out


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
               p.person_id AS p_id_full, r.birth_date AS r_birth, p.birth_date AS p_birth,
               r.street_code AS r_street, p.street_code AS p_street, r.community AS r_community,
               p.community AS p_community, round(v.name_score, 2) AS name_score, v.person_id
        FROM link_review v JOIN std_rows r USING (row_id) JOIN link_persons p USING (person_id)
        JOIN link_fingerprints f USING (row_id)
        ORDER BY r.source, r.file, r.sheet, r.row, v.name_score DESC
        """,
        key_params(key),
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


def import_decisions(file: Path, registry: Path) -> dict:
    """Read a filled-in review.xlsx; store its 是/否 decisions in the registry's state folder.

    A line is accepted only if its (复核编号, 候选人编号) is a pair this registry's review offered;
    anything else is rejected with its row number. The OUT_DIR lock is held (waiting up to 30 s),
    so two imports never lose each other's decisions.
    """
    from ..core.errors import FileProblem
    from ..readers import ROW_COL, read_any

    registry = Path(registry)
    published_persons(registry, name="--registry", hint="Point it at the OUT_DIR whose review.xlsx this is.")
    if not offers_path(registry).exists():
        raise KuomianError(
            f"--registry {registry}: it has no record of the review it offered (state/review_offers.parquet). "
            "Run the refresh again with this version of kuomian and review its review.xlsx."
        )
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
        pl.col(ROW_COL).alias("line"),  # the row the reviewer sees
        pl.col(f"c{idx['review_id']}").str.strip_chars().alias("fingerprint"),
        pl.col(f"c{idx['person_key']}").str.strip_chars().alias("person_key"),
        pl.col(f"c{idx['decision']}").str.strip_chars().alias("decision"),
    )
    offered = {
        (fp, pk): nf for fp, pk, nf in pl.read_parquet(offers_path(registry)).select(
            "fingerprint", "person_key", "name_fp").iter_rows()
    }  # fmt: skip
    counts = {"是": 0, "否": 0, "不确定": 0, "blank": 0, "rejected": 0}
    problems = []
    good = {}
    for line, fp, pk, dec in df.iter_rows():
        if not dec:
            counts["blank"] += 1
        elif dec not in DECISIONS:
            counts["rejected"] += 1
            problems.append(f"row {line}: {dec[:40]!r} is not one of 是 / 否 / 不确定")
        elif not fp or not pk:
            counts["rejected"] += 1
            problems.append(f"row {line}: 复核编号 or 候选人编号 is empty")
        elif (fp, pk) not in offered:
            counts["rejected"] += 1
            problems.append(
                f"row {line}: 复核编号 and 候选人编号 are not a pair this review offered "
                "(changed or made up); not stored"
            )
        else:
            counts[dec] += 1
            if dec != "不确定":
                good[(fp, pk)] = {
                    "fingerprint": fp,
                    "person_key": pk,
                    "name_fp": offered[(fp, pk)],
                    "decision": dec,
                }
    new = pl.DataFrame(list(good.values()), schema={c: pl.String for c in list(DECISION_SCHEMA)[:4]})
    new = new.with_columns(decided_on=pl.lit(date.today()))
    store = decisions_path(registry)
    with output_lock(
        registry.resolve(),
        wait=fileio.IMPORT_WAIT,
        what="another kuomian command is using this folder right now",
    ):
        store.parent.mkdir(exist_ok=True, mode=0o700)
        old = _read_decisions(store)
        new = pl.concat([old.join(new, on=["fingerprint", "person_key"], how="anti"), new], how="vertical")
        write_parquet_atomically(new, store)
    return {"counts": counts, "problems": problems, "stored": new.height, "store": str(store)}


def decisions_for_link(key: bytes, person_ids: list[str], decisions: pl.DataFrame) -> pl.DataFrame:
    """Stored decisions with person_key mapped back to the canonical ID of this run's persons."""
    from ..core.privacy import person_keys

    m = pl.DataFrame({"person_id": person_ids, "person_key": person_keys(person_ids, key)})
    return decisions.join(m, on="person_key", how="inner").select(
        "fingerprint", "person_id", "name_fp", "decision"
    )
