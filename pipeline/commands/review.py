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

import polars as pl

from ..core import fileio
from ..core.decisions import DECISION_SCHEMA, decisions_path, offers_path, read_decisions
from ..core.errors import KuomianError
from ..core.fileio import output_lock, published_persons, write_parquet_atomically
from ..core.i18n import _
from ..core.labels import REVIEW_COLUMNS as COLUMNS
from ..core.labels import REVIEW_DECISIONS as DECISIONS


def import_decisions(file: Path, registry: Path) -> dict:
    """Read a filled-in review.xlsx; store its 是/否 decisions in the registry's state folder.

    A line is accepted only if its (复核编号, 候选人编号) is a pair this registry's review offered;
    anything else is rejected with its row number. The OUT_DIR lock is held (waiting up to 30 s),
    so two imports never lose each other's decisions.
    """
    from ..core.errors import FileProblem
    from ..readers import ROW_COL, read_any

    registry = Path(registry)
    published_persons(
        registry, name="--registry", hint=_("Point it at the OUT_DIR whose review.xlsx this is.")
    )
    if not offers_path(registry).exists():
        raise KuomianError(
            _(
                "--registry {registry}: it has no record of the review it offered (state/review_offers.parquet). "
                "Run the refresh again with this version of kuomian and review its review.xlsx."
            ).format(registry=registry)
        )
    header, body, *_rest = read_any(file, {h for _c, h in COLUMNS})
    want = {h: c for c, h in COLUMNS}
    idx = {want[h]: j for j, h in enumerate(header) if h in want}
    for needed in ("review_id", "person_key", "decision"):
        if needed not in idx:
            raise FileProblem(
                file,
                _("the column {column} is missing").format(column=dict(COLUMNS)[needed]),
                _("Use the review.xlsx the refresh wrote."),
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
            problems.append(
                _("row {row}: {value} is not one of 是 / 否 / 不确定").format(row=line, value=repr(dec[:40]))
            )
        elif not fp or not pk:
            counts["rejected"] += 1
            problems.append(_("row {row}: 复核编号 or 候选人编号 is empty").format(row=line))
        elif (fp, pk) not in offered:
            counts["rejected"] += 1
            problems.append(
                _(
                    "row {row}: 复核编号 and 候选人编号 are not a pair this review offered "
                    "(changed or made up); not stored"
                ).format(row=line)
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
        what=_("another kuomian command is using this folder right now"),
    ):
        store.parent.mkdir(exist_ok=True, mode=0o700)
        old = read_decisions(store)
        new = pl.concat([old.join(new, on=["fingerprint", "person_key"], how="anti"), new], how="vertical")
        write_parquet_atomically(new, store)
    return {"counts": counts, "problems": problems, "stored": new.height, "store": str(store)}
