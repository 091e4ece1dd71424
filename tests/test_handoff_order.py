"""Hand-off order (issue 23): community, then address with numbers as numbers, households together."""

from __future__ import annotations

from datetime import date

import polars as pl

from kuomian.core.text import natural_key
from kuomian.report.handoff import handoff_frame, visit_order

BASE = "云南省安宁市连然街道金湖社区"


def person(key: str, community: str | None, address: str | None, household: str | None) -> dict:
    return {
        "person_key": key,
        "id_number": "530181199001070031",
        "name": "张" + key,
        "sex": "男",
        "age": 36,
        "street_code": "530181001000",
        "street_name": "连然街道",
        "community": community,
        "address": address,
        "household_no": household,
        "status": "unenrolled",
        "group": 8,
        "sources": ["household"],
        "pension_date": date(2050, 1, 7),
        "measure": "入户宣传",
    }


def test_natural_key_orders_numbers_as_numbers():
    values = ["11组", "2组", "1组", "3号10栋", "3号2栋", "12号", "3号", "", None, "10组5号", "10组12号"]
    got = pl.DataFrame({"a": values}).sort(natural_key(pl.col("a")), nulls_last=True)["a"].to_list()
    assert got == ["", "1组", "2组", "3号", "3号2栋", "3号10栋", "10组5号", "10组12号", "11组", "12号", None]


def test_visit_order_walks_communities_addresses_and_households():
    rows = [
        person("A", "金湖社区", BASE + "11组", "H11"),
        person("B", "金湖社区", BASE + "2组", "H2"),
        person("C", "金湖社区", BASE + "1组", "H1"),
        # one household, its members' addresses written differently: together, at the first one
        person("D", "金湖社区", BASE + "12组", "H3"),
        person("E", "金湖社区", BASE + "3组", "H3"),
        person("F", "东湖社区", BASE + "5组", "H5"),
        person("G", "金湖社区", BASE + "2组8号", None),  # no household number: alone, by address
        person("H", "金湖社区", None, "H9"),  # no address: last of its community
        person("I", None, BASE + "1组", "H7"),  # no community: after the communities
    ]
    df = pl.DataFrame(rows)
    assert visit_order(df)["person_key"].to_list() == ["F", "C", "B", "G", "E", "D", "A", "H", "I"]
    # the hand-off itself (the CSV and workbook rows) is in that order
    out = handoff_frame(df)
    assert out["编号"].to_list() == ["F", "C", "B", "G", "E", "D", "A", "H", "I"]


def test_keys_before_the_address_keep_households_together():
    """A rank before the address (the survey's priority levels) orders households by their
    members' best rank; a household is never split."""
    rows = [
        {**person("A", "金湖社区", BASE + "1组", "H1"), "rank": 2},
        {**person("B", "金湖社区", BASE + "2组", "H2"), "rank": 2},
        {**person("C", "金湖社区", BASE + "2组", "H2"), "rank": 0},
        {**person("D", "金湖社区", BASE + "3组", "H3"), "rank": 1},
        {**person("E", "东湖社区", BASE + "9组", "H9"), "rank": 5},
    ]
    got = visit_order(pl.DataFrame(rows), first=[pl.col("rank")])["person_key"].to_list()
    assert got == ["E", "B", "C", "D", "A"]


def test_a_persons_column_is_shown_by_its_label_alone(monkeypatch):
    """Item 5 of issue 22: a persons.parquet column reaches the hand-off by its header in
    core/labels.py HANDOFF_HEADERS, nothing else; 身份证重号 (shared_id) is shown that way, a
    true/false column as 是 or blank, beside 复核提示."""
    from kuomian.core.labels import HANDOFF_HEADERS

    rows = [person("A", "金湖社区", BASE + "1组", "H1"), person("B", "金湖社区", BASE + "2组", "H2")]
    rows[0] |= {"review_evidence": "可能重号: 户籍人口.csv 第48行", "shared_id": True}
    rows[1] |= {"review_evidence": None, "shared_id": False}
    out = handoff_frame(pl.DataFrame(rows))
    assert out["身份证重号"].to_list() == ["是", None]
    assert out.columns.index("身份证重号") == out.columns.index("复核提示") + 1
    # a registry written before the column: the hand-off has it, blank
    old = handoff_frame(pl.DataFrame(rows).drop("shared_id", "review_evidence"))
    assert old.columns == out.columns and old["身份证重号"].null_count() == 2
    # any other column of persons.parquet: one label, and the hand-off shows it in that place
    monkeypatch.setitem(HANDOFF_HEADERS, "household_no", "户号")
    shown = handoff_frame(pl.DataFrame(rows))
    assert (
        shown["户号"].to_list() == ["H1", "H2"]
        and shown.columns.index("户号") == out.columns.index("建议措施") + 1
    )
