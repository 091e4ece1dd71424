"""The review queue round trip: refresh → review.xlsx filled in by a person → ``kuomian review import`` → refresh.

Uses the golden linkage fixture (tests/golden/link/, see tests/test_link_golden.py). Three review rows:

* 平台从业人员.csv row 6 — 张伟 without ID, a birth date both 张伟 share, no street (two candidates):
  the reviewer writes 是 on the 金方街道 张伟 → next run: linked to him, rule ``review_decision``;
* 参保信息.csv row 34 — a 15-digit ID whose upgrade is 周敏's, name 马超 (one candidate, 周敏):
  the reviewer writes 否 → next run: the pair is never proposed again (the row goes unmatched);
* 特殊人员名单.csv row 2 — 冯娟 without ID, by name + street + community: left blank → still in review.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.run import refresh
from tests.conftest import assert_no_full_id, make_id
from tests.test_link_golden import read_review, write_sources

AS_OF = date(2026, 3, 1)
ZHANG_JINFANG = make_id("53018119920315273")  # 张伟, 金方街道
ZHANG_LIANRAN = make_id("53018119920315051")  # 张伟, 连然街道
ZHOU_MIN = make_id("53018119780214022")  # 周敏 (her 15-digit ID is typed for 马超)
FENG_JUAN = make_id("53018119760811048")  # 冯娟

YES = ("平台从业人员.csv", 6)
SAME_IDENTITY_OTHER_STREET = ("平台从业人员.csv", 11)  # 张伟, no ID, same birth date as YES, street 连然街道
NO = ("参保信息.csv", 34)
BLANK = ("特殊人员名单.csv", 2)

FILE, ROW, KEY, DECISION = "文件", "行号", "候选人编号", "决定(是/否/不确定)"
MASKED = re.compile(r"^[0-9]{6}\*+[0-9X]{4}$|^\*+$")


def keys_of(out: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(person_key -> ID, ID -> person_key) of a published run."""
    p = pl.read_parquet(out / "persons.parquet")
    return dict(zip(p["person_key"], p["id_number"], strict=True)), dict(
        zip(p["id_number"], p["person_key"], strict=True)
    )


def link_of(out: Path, where: tuple[str, int]) -> dict:
    links = pl.read_parquet(out / "links.parquet").filter(
        (pl.col("file") == where[0]) & (pl.col("row") == where[1])
    )
    assert links.height == 1, where
    return links.row(0, named=True)


def candidates(out: Path, where: tuple[str, int]) -> set[str]:
    id_of, _ = keys_of(out)
    return {id_of[r[KEY]] for r in read_review(out / "review.xlsx") if (r[FILE], int(r[ROW])) == where}


def fill_in(xlsx: Path, decisions: dict[tuple[str, int, str], str]) -> dict[tuple[str, int, str], int]:
    """Write decisions on the lines (file, row, person_key); save with openpyxl. Returns each line's sheet row."""
    wb = openpyxl.load_workbook(xlsx)
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    col = {h: i for i, h in enumerate(header)}
    written = {}
    for r in range(2, ws.max_row + 1):
        line = (
            ws.cell(r, col[FILE] + 1).value,
            int(ws.cell(r, col[ROW] + 1).value),
            ws.cell(r, col[KEY] + 1).value,
        )
        if line in decisions:
            ws.cell(r, col[DECISION] + 1).value = decisions[line]
            written[line] = r
    assert set(written) == set(decisions), f"lines not found in review.xlsx: {set(decisions) - set(written)}"
    wb.save(xlsx)
    return written


def review_import(xlsx: Path, registry: Path, *, code: int | None = None):
    """``review import``; exit 0, or 1 when the output says rows were rejected (issue 21)."""
    res = CliRunner().invoke(app, ["review", "import", str(xlsx), "--registry", str(registry)])
    rejected = "rejected 0" not in res.stdout
    assert res.exit_code == (code if code is not None else (1 if rejected else 0)), (res.stdout, res.stderr)
    if rejected:
        assert "rows rejected (the other decisions were stored)" in res.stderr
    return res


def assert_review_masked(xlsx: Path) -> None:
    for r in read_review(xlsx):
        assert_no_full_id(" | ".join("" if v is None else str(v) for v in r.values()))
        for col in ("记录身份证号", "候选人身份证号"):
            if r[col]:
                assert MASKED.match(str(r[col])), (col, r[col])


def test_decisions_are_honoured_by_the_next_refresh(tmp_path):
    sources = write_sources(tmp_path / "sources")
    out1 = tmp_path / "out1"
    refresh(sources, out1, as_of=AS_OF)
    _, key_of = keys_of(out1)

    # the three rows are in review with the candidates the scenario needs
    for where in (YES, NO, BLANK):
        assert link_of(out1, where)["outcome"] == "review", where
    assert candidates(out1, YES) == {ZHANG_JINFANG, ZHANG_LIANRAN}
    assert candidates(out1, NO) == {ZHOU_MIN}
    assert candidates(out1, BLANK) == {FENG_JUAN}
    assert_review_masked(out1 / "review.xlsx")

    fill_in(out1 / "review.xlsx", {(*YES, key_of[ZHANG_JINFANG]): "是", (*NO, key_of[ZHOU_MIN]): "否"})
    res = review_import(out1 / "review.xlsx", out1)
    assert "decisions: 是 1, 否 1, 不确定 0," in res.stdout
    assert "rejected 0" in res.stdout
    assert "stored 2 decisions" in res.stdout
    assert_no_full_id(res.stdout + res.stderr)

    out2 = tmp_path / "out2"
    refresh(sources, out2, as_of=AS_OF, previous=out1)  # decisions are kept per registry
    id_of2, key_of2 = keys_of(out2)

    # 是: linked to that person by the decision
    yes = link_of(out2, YES)
    assert yes["outcome"] == "linked", yes
    assert id_of2[yes["person_key"]] == ZHANG_JINFANG, yes
    assert yes["match_rule"] == "review_decision", yes
    assert candidates(out2, YES) == set()

    # 否: the pair is never proposed again, and the row is not linked to that person
    no = link_of(out2, NO)
    assert ZHOU_MIN not in candidates(out2, NO)
    assert no["person_key"] != key_of2[ZHOU_MIN], no
    assert no["outcome"] == "unmatched", no  # enrollment adds nobody; no other candidate exists

    # blank: still in review, with the same candidate
    blank = link_of(out2, BLANK)
    assert blank["outcome"] == "review", blank
    assert candidates(out2, BLANK) == {FENG_JUAN}

    assert_review_masked(out2 / "review.xlsx")

    # the decisions outlive a further run
    out3 = tmp_path / "out3"
    refresh(sources, out3, as_of=AS_OF, previous=out2)
    assert link_of(out3, YES)["match_rule"] == "review_decision"
    assert ZHOU_MIN not in candidates(out3, NO)


# Regression: rows that share source, ID, name and birth date but not the street
# (平台从业人员.csv rows 6, 7 and 11) once shared one fingerprint, so a decision on
# one relinked the others. The fingerprint now includes street and community.


def test_a_decision_changes_only_the_row_it_was_made_on(tmp_path):
    """是 on one row, 否 on another: every other row resolves exactly as before (outcome, person, rule)."""
    sources = write_sources(tmp_path / "sources")
    out1 = tmp_path / "out1"
    refresh(sources, out1, as_of=AS_OF)
    _, key_of = keys_of(out1)
    fill_in(out1 / "review.xlsx", {(*YES, key_of[ZHANG_JINFANG]): "是", (*NO, key_of[ZHOU_MIN]): "否"})
    review_import(out1 / "review.xlsx", out1)
    out2 = tmp_path / "out2"
    refresh(sources, out2, as_of=AS_OF, previous=out1)  # decisions are kept per registry

    # the trap: the 连然街道 张伟 row must stay with the 连然 张伟
    other = link_of(out2, SAME_IDENTITY_OTHER_STREET)
    assert (other["outcome"], other["person_key"], other["match_rule"]) == (
        "linked",
        key_of[ZHANG_LIANRAN],
        "name_birth",
    ), other

    def resolved(out):
        return (
            pl.read_parquet(out / "links.parquet")
            .filter(~pl.struct("file", "row").is_in([{"file": f, "row": r} for f, r in (YES, NO)]))
            .select("file", "row", "outcome", "person_key", "match_rule")
            .sort("file", "row")
        )

    before, after = resolved(out1), resolved(out2)
    moved = before.join(after, on=["file", "row"], suffix="_after").filter(
        pl.col("outcome").ne_missing(pl.col("outcome_after"))
        | pl.col("person_key").ne_missing(pl.col("person_key_after"))
        | pl.col("match_rule").ne_missing(pl.col("match_rule_after"))
    )
    assert moved.is_empty(), moved.to_dicts()


def test_invalid_decision_is_rejected_with_its_row(tmp_path):
    sources = write_sources(tmp_path / "sources")
    out = tmp_path / "out"
    refresh(sources, out, as_of=AS_OF)
    _, key_of = keys_of(out)
    lines = fill_in(
        out / "review.xlsx",
        {(*BLANK, key_of[FENG_JUAN]): "可能", (*NO, key_of[ZHOU_MIN]): "否"},
    )
    res = review_import(out / "review.xlsx", out)
    assert "rejected 1" in res.stdout, res.stdout
    assert "否 1" in res.stdout, res.stdout
    sheet_row = lines[(*BLANK, key_of[FENG_JUAN])]
    assert f"row {sheet_row}: '可能' is not one of 是 / 否 / 不确定" in res.stdout, res.stdout
    assert "stored 1 decisions" in res.stdout, res.stdout

    # the rejected line stays in review; the valid 否 beside it is applied
    out2 = tmp_path / "out2"
    refresh(sources, out2, as_of=AS_OF, previous=out)
    assert link_of(out2, BLANK)["outcome"] == "review"
    assert candidates(out2, BLANK) == {FENG_JUAN}
    assert ZHOU_MIN not in candidates(out2, NO)
