"""Two people, one number inside the household extract (重号, issue 20 item 4), downstream of link.

Uses the golden linkage fixture (tests/golden/link/, see tests/test_link_golden.py): 林伟 and 孔亮
share one number in 户籍人口.csv (rows 43 and 48), 张敏 and 张强 another (rows 51 and 52). Each
holder is a person of their own (person_id: the ID + '#' + name; persons.parquet: the real ID, a
person_key each). Here: the survey loop, the next year's refresh with ``--previous``, the number
later resolved, ``kuomian compare``, ``kuomian check`` and a review decision carried to the next run.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.check import rule_labels
from kuomian.commands.compare import _read_persons, changes_frame
from kuomian.commands.run import refresh
from kuomian.core.ids import person_refs
from tests.conftest import assert_no_full_id, make_id
from tests.test_link_golden import write_sources
from tests.test_review_roundtrip import fill_in

runner = CliRunner()
AS_OF = date(2026, 3, 1)
NEXT = "2027-03-01"
SHARED = make_id("53018119800505031")  # 林伟 and 孔亮
STREET = "530181001000"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The fixture refreshed once, in a state folder (key file) the module keeps."""
    root = tmp_path_factory.mktemp("shared_ids")
    mp = pytest.MonkeyPatch()
    mp.setenv("KUOMIAN_STATE", str(root / "state"))
    mp.delenv("KUOMIAN_KEY_FILE", raising=False)
    mp.delenv("KUOMIAN_FAIL_IN_STAGE", raising=False)
    sources = write_sources(root / "sources")
    refresh(sources, root / "out", as_of=AS_OF)
    yield {"root": root, "sources": sources, "out": root / "out"}
    mp.undo()


@pytest.fixture(autouse=True)
def world_state(world, monkeypatch):
    """Every test runs with the module's state folder (its key file: the same person_keys)."""
    monkeypatch.setenv("KUOMIAN_STATE", str(world["root"] / "state"))


def holder(out: Path, name: str) -> dict:
    p = pl.read_parquet(out / "persons.parquet").filter(
        (pl.col("id_number") == SHARED) & (pl.col("name") == name)
    )
    assert p.height == 1, name
    return p.row(0, named=True)


def copy_out(world, tmp_path: Path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(world["out"], dst)
    return dst


def link_of(out: Path, file: str, row: int) -> dict:
    links = pl.read_parquet(out / "links.parquet").filter((pl.col("file") == file) & (pl.col("row") == row))
    assert links.height == 1
    return links.row(0, named=True)


def survey_both(out: Path, tmp_path: Path, answers_by_name: dict[str, str] | None = None) -> tuple[str, str]:
    """Answer the hand-off for 林伟 (有缴费能力) and 孔亮 (无缴费能力), or as ``answers_by_name``
    says; import it. Their keys."""
    (path,) = (out / "handoff").glob(f"{STREET}_*.csv")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    lin, kong = holder(out, "林伟")["person_key"], holder(out, "孔亮")["person_key"]
    by_name = answers_by_name or {"林伟": "有缴费能力", "孔亮": "无缴费能力"}
    answers = {holder(out, name)["person_key"]: a for name, a in by_name.items()}
    filled = []
    for r in body:
        if r[0] in answers:
            r = list(r)
            r[header.index("缴费能力")] = answers[r[0]]
            r[header.index("调查日期")] = "2026-04-15"
            filled.append(r)
    assert len(filled) == len(answers), "the holders are on the hand-off, each with their own 编号"
    f = tmp_path / f"连然街道_已填_{len(list(tmp_path.glob('连然街道_已填*')))}.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *filled])
    f.write_text(buf.getvalue(), encoding="utf-8-sig")
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    return lin, kong


def test_each_holder_gets_their_own_survey_answers_and_keeps_them_next_year(world, tmp_path):
    out = copy_out(world, tmp_path)
    lin, kong = survey_both(out, tmp_path)
    assert holder(out, "林伟")["ability_to_pay"] == "有缴费能力"
    assert holder(out, "孔亮")["ability_to_pay"] == "无缴费能力"
    # next year, the same household: the same keys, each holder's answers carried to them
    nxt = tmp_path / "next"
    refresh(world["sources"], nxt, as_of=date.fromisoformat(NEXT), previous=out)
    a, b = holder(nxt, "林伟"), holder(nxt, "孔亮")
    assert (a["person_key"], b["person_key"]) == (lin, kong)
    assert (a["ability_to_pay"], b["ability_to_pay"]) == ("有缴费能力", "无缴费能力")
    assert a["first_listed"] == b["first_listed"] == AS_OF
    assert a["change"] in ("unchanged", "group_changed") and b["change"] in ("unchanged", "group_changed")
    # kuomian compare: both holders are the same persons in both registries
    changes = changes_frame(_read_persons(out, "old"), _read_persons(nxt, "new"))
    mine = changes.filter(pl.col("id_number") == SHARED)
    assert mine.height == 2
    assert (
        not mine.select(pl.any_horizontal("newly_listed", "left_registry", "newly_enrolled"))
        .to_series()
        .any()
    )
    res = runner.invoke(app, ["-q", "compare", str(out), str(nxt), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.stderr
    for f in (tmp_path / "cmp").rglob("*"):
        if f.is_file() and f.suffix in (".csv", ".html"):
            assert_no_full_id(f.read_text("utf-8-sig"))


def test_a_number_resolved_later_keeps_the_remaining_holders_answers(world, tmp_path):
    """The bureau gives 孔亮 a new number: 林伟 keeps the old one alone (no longer shared). Last
    year's answers follow 林伟 by ID + name, and none reach 孔亮 under his new number."""
    out = copy_out(world, tmp_path)
    survey_both(out, tmp_path)
    src = tmp_path / "src"
    shutil.copytree(world["sources"], src)
    household = (src / "户籍人口.csv").read_text("utf-8").splitlines()
    new_id = make_id("53018119800707015")
    assert household[47].startswith(SHARED + ",孔亮")
    household[47] = household[47].replace(SHARED, new_id, 1)
    (src / "户籍人口.csv").write_text("\n".join(household) + "\n", "utf-8")
    nxt = tmp_path / "next"
    refresh(src, nxt, as_of=date.fromisoformat(NEXT), previous=out)
    persons = pl.read_parquet(nxt / "persons.parquet")
    lin = persons.filter(pl.col("id_number") == SHARED).row(0, named=True)
    kong = persons.filter(pl.col("id_number") == new_id).row(0, named=True)
    assert persons.filter(pl.col("id_number") == SHARED).height == 1
    assert lin["name"] == "林伟" and not lin["shared_id"]
    assert lin["ability_to_pay"] == "有缴费能力" and lin["first_listed"] == AS_OF
    assert kong["name"] == "孔亮" and kong["ability_to_pay"] is None
    # 孔亮's 低保 row with the old number now meets 林伟 alone: the name differs, reviewed
    assert link_of(nxt, "低保对象.csv", 13)["outcome"] == "review"


def test_check_tells_the_holders_apart_by_name(world, tmp_path):
    persons = pl.read_parquet(world["out"] / "persons.parquet")
    rule = rule_labels()
    lst = tmp_path / "名单.csv"
    lst.write_text(f"姓名,身份证号\n孔亮,{SHARED}\n林伟,{SHARED}\n王五,{SHARED}\n", encoding="utf-8")
    out = tmp_path / "结果.csv"
    res = runner.invoke(app, ["-q", "check", str(lst), "--registry", str(world["out"]), "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [r["匹配结果"] for r in rows] == [rule["shared_id_name"], rule["shared_id_name"], "待人工核实"]
    refs = dict(zip(person_refs(persons), persons["status"], strict=True))
    assert {f"{SHARED}#孔亮", f"{SHARED}#林伟"} <= set(refs)
    assert rows[2]["参保状态"] == ""
    assert_no_full_id(out.read_text("utf-8-sig").replace(SHARED, ""))


def test_a_review_decision_picks_a_holder_next_run(world, tmp_path):
    """低保对象.csv row 15 (王五 with the shared number) is reviewed against both holders; a 是 on
    孔亮 links it to him in the next run, a decision kept by his person_key."""
    out = copy_out(world, tmp_path)
    kong = holder(out, "孔亮")["person_key"]
    lin = holder(out, "林伟")["person_key"]
    xlsx = out / "review.xlsx"
    filled = tmp_path / "review_filled.xlsx"
    shutil.copy(xlsx, filled)
    fill_in(filled, {("低保对象.csv", 15, kong): "是", ("低保对象.csv", 15, lin): "否"})
    res = runner.invoke(app, ["-q", "review", "import", str(filled), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    nxt = tmp_path / "next"
    refresh(world["sources"], nxt, as_of=date.fromisoformat(NEXT), previous=out)
    got = link_of(nxt, "低保对象.csv", 15)
    assert got["outcome"] == "linked" and got["person_key"] == kong and got["match_rule"] == "review_decision"
    assert got["id_number"] == SHARED


def test_the_persons_schema_accepts_one_number_only_for_flagged_holders():
    """schemas/persons.py: two persons of one ID number only where both are flagged shared_id."""
    from kuomian.core.errors import KuomianError
    from kuomian.schemas import check
    from kuomian.schemas.persons import Persons

    other = make_id("53018119800505011")
    base = {"hukou_local": [True] * 3, "status": ["unenrolled"] * 3, "exclusion_reason": [None] * 3,
            "group": [8] * 3, "street_code": [STREET] * 3}  # fmt: skip

    def frame(ids: list[str], shared: list[bool]) -> pl.DataFrame:
        return pl.DataFrame({"person_id": ids, "shared_id": shared, **base})

    check(Persons, frame([f"{SHARED}#林伟", f"{SHARED}#孔亮", other], [True, True, False]), "test")
    bad = {
        "one_person_per_id": frame([f"{SHARED}#林伟", SHARED, other], [True, False, False]),
        "holder_iff_shared": frame([f"{SHARED}#林伟", f"{SHARED}#孔亮", other], [True, False, False]),
        "field_uniqueness": frame([SHARED, SHARED, other], [False, False, False]),
    }
    for failed, df in bad.items():
        with pytest.raises(KuomianError, match=failed):
            check(Persons, df, "test")


def test_a_number_shared_this_year_keeps_last_years_answers_on_the_right_holder(world, tmp_path):
    """Last year the household held 林伟 alone under the number; this year 孔亮 appears with it
    too. Last year's answers follow 林伟 (ID + name), none reach 孔亮."""
    src = tmp_path / "last_year"
    shutil.copytree(world["sources"], src)
    household = (src / "户籍人口.csv").read_text("utf-8").splitlines()
    assert household[47].startswith(SHARED + ",孔亮")
    (src / "户籍人口.csv").write_text("\n".join(household[:47] + household[48:]) + "\n", "utf-8")
    last = tmp_path / "last"
    refresh(src, last, as_of=AS_OF)
    persons = pl.read_parquet(last / "persons.parquet")
    lin = persons.filter(pl.col("id_number") == SHARED).row(0, named=True)
    assert lin["name"] == "林伟" and not lin["shared_id"]
    (path,) = (last / "handoff").glob(f"{STREET}_*.csv")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    header, mine = rows[0], next(r for r in rows[1:] if r[0] == lin["person_key"])
    mine[header.index("缴费能力")], mine[header.index("调查日期")] = "有缴费能力", "2026-04-15"
    f = tmp_path / "连然街道_去年.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, mine])
    f.write_text(buf.getvalue(), encoding="utf-8-sig")
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(last)])
    assert res.exit_code == 0, res.stderr
    nxt = tmp_path / "next"
    refresh(world["sources"], nxt, as_of=date.fromisoformat(NEXT), previous=last)
    a, b = holder(nxt, "林伟"), holder(nxt, "孔亮")
    assert a["shared_id"] and b["shared_id"]
    assert a["ability_to_pay"] == "有缴费能力" and a["first_listed"] == AS_OF
    assert (
        b["ability_to_pay"] is None and b["first_listed"] == date.fromisoformat(NEXT) and b["change"] == "new"
    )


def test_refresh_force_in_place_never_drops_one_holders_answers_for_the_others(world, tmp_path):
    """OUT_DIR holds 林伟's answer; ``--previous`` holds the very same answer for 孔亮 only: 林伟's
    would be dropped, so the refresh refuses (the ID alone would take 孔亮's for his)."""
    from kuomian.commands.survey import keep_imported_answers
    from kuomian.core.errors import KuomianError

    here = copy_out(world, tmp_path)
    survey_both(here, tmp_path, {"林伟": "有缴费能力"})
    prev = tmp_path / "prev"
    shutil.copytree(world["out"], prev)
    survey_both(prev, tmp_path, {"孔亮": "有缴费能力"})
    with pytest.raises(KuomianError, match="survey answers for 1 persons"):
        keep_imported_answers(here, prev)
    keep_imported_answers(here, here)  # the same registry: nothing dropped
