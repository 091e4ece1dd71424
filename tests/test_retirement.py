"""The retirement-age reform on a generated world (rules/retirement.yaml; rules.md "Age, the statutory
pension age and the suggested measure"). The spec's worked checks are the golden case
tests/golden/classify/retirement_measure; here every registry person of a demo world is checked
against a plain-Python reading of the same policy, and the hand-off shows the same values."""

from __future__ import annotations

import calendar
import csv
from datetime import date

import polars as pl
import pytest

from kuomian.commands.run import refresh
from kuomian.core.policy import policy
from kuomian.synth import generate

AS_OF = date(2026, 3, 1)
ELDERLY = "补缴纳入城乡居民养老"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("retirement_world")
    generate(root, people=3000, seed=5, as_of=AS_OF)
    refresh(root / "sources", root / "out", as_of=AS_OF)
    return root / "out"


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def expected_measure(p: dict) -> str:
    """The spec's order, read from the policy in Python (the stage evaluates it in SQL)."""
    pol = policy()
    r = pol.retirement
    action = pol.groups.by_id()[p["group"]].action
    if p["age"] >= r.elderly_age and p["status"] in r.elderly_statuses:
        return r.elderly_measure
    if p["pension_date"] <= AS_OF:
        return action if p["group"] in r.past_pension_keep_group_action else r.past_pension_measure
    if add_months(AS_OF, r.minimum_months(p["pension_date"])) > p["pension_date"]:
        return action + r.short_note
    return action


def test_every_registry_person_has_pension_date_and_measure(demo):
    persons = pl.read_parquet(demo / "persons.parquet")
    reg = persons.filter(pl.col("status").is_in(list(policy().statuses.registry)))
    assert reg.height > 200
    assert reg["pension_date"].null_count() == 0 and reg["measure"].null_count() == 0
    assert (
        persons.filter(pl.col("group").is_null())["measure"].null_count()
        == persons.filter(pl.col("group").is_null()).height
    ), "measure only for registry persons"
    elderly = reg.filter((pl.col("age") >= 60) & (pl.col("status") == "unenrolled"))
    assert elderly.height > 0 and (elderly["measure"] == ELDERLY).all()
    assert set(reg.filter(pl.col("measure") == ELDERLY)["status"].to_list()) == {"unenrolled"}


def test_pension_date_and_measure_agree_with_the_policy_read_in_python(demo):
    r = policy().retirement
    persons = pl.read_parquet(demo / "persons.parquet").filter(pl.col("birth_date").is_not_null())
    seen = set()
    for p in persons.iter_rows(named=True):
        track = r.tracks.get(r.track_by_sex.get(p["sex"], ""))
        want = add_months(p["birth_date"], track.age_months(p["birth_date"])) if track else None
        assert p["pension_date"] == want, (p["sex"], p["birth_date"])
        if p["group"] is not None:
            got = p["measure"]
            assert got == expected_measure(p), (p["age"], p["status"], p["group"], p["pension_date"])
            seen.add("note" if got.endswith(r.short_note) else got)
    # the world shows every branch: back-payment, past the pension date, the note, the group's action
    assert {ELDERLY, r.past_pension_measure, "note"} <= seen and len(seen) >= 6


def test_handoff_shows_pension_date_and_measure(demo):
    persons = pl.read_parquet(demo / "persons.parquet").filter(pl.col("group").is_not_null())
    by_key = {p["person_key"]: p for p in persons.iter_rows(named=True)}
    n = 0
    for f in (demo / "handoff").glob("*.csv"):
        with open(f, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            assert cols[cols.index("信息来源") + 1 : cols.index("信息来源") + 4] == [
                "法定退休时间",
                "建议措施",
                "重点等级",  # this year's key target (issue 25), before the survey columns
            ]
            for row in reader:
                p = by_key[row["编号"]]
                assert row["法定退休时间"] == p["pension_date"].isoformat()
                assert row["建议措施"] == p["measure"]
                n += 1
    assert n == persons.height


def test_report_counts_registry_persons_by_measure_per_street(demo):
    page = (demo / "report.html").read_text("utf-8")
    assert "实名库人员按建议措施(各街道)" in page
    persons = pl.read_parquet(demo / "persons.parquet").filter(pl.col("measure").is_not_null())
    counts = persons.group_by("measure").len()
    section = page[page.index("实名库人员按建议措施(各街道)") :]
    for measure, n in counts.iter_rows():
        row = section[section.index(f"<td>{measure}</td>") :].split("</tr>", 1)[0]
        assert row.endswith(f"<td>{n}</td>"), measure  # the 合计 column
