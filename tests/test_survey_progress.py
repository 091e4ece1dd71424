"""report.html's survey tables (``report/survey_progress.py``) counted by hand on a small frame:
street codes the policy does not know and persons without a street are one row (未分配街道),
the city's row is the sum of the streets', a persons frame without the survey's columns (no
``--previous``, no answers) counts zeros, and no persons give no rows."""

from __future__ import annotations

import polars as pl
import pytest

from kuomian.core.policy import load_policy
from kuomian.report.survey_progress import survey_effects_table, survey_table

LIANRAN, JINFANG = "530181001000", "530181002000"


@pytest.fixture(scope="module", autouse=True)
def _policy():
    load_policy()


def persons() -> pl.DataFrame:
    rows = [
        # street_code, community, status, exclusion_reason, target, prev_target, change, flag, ability, surveyed_on
        (LIANRAN, "甲社区", "unenrolled", None, "A", None, "new", None, "有缴费能力", "2026-05-01"),
        (LIANRAN, "甲社区", "unenrolled", None, "B", "B", "unchanged", "not found on two visits", None, None),
        (LIANRAN, "乙社区", "enrolled_elsewhere", None, None, "A", None, None, None, "2026-05-02"),
        (LIANRAN, None, "enrolled", None, None, "A", "enrolled", None, None, None),
        (JINFANG, "丙社区", "excluded", "survey_deceased", None, "B", "left", None, None, None),
        (JINFANG, "丙社区", "resident_upgradable", None, "A", None, "new", None, None, None),
        (None, None, "unenrolled", None, "C", None, "new", None, None, None),
        ("999999999999", "丁社区", "unenrolled", None, "A", None, "new", None, None, "2026-06-01"),
        ("999999999999", "丁社区", "excluded", "survey_moved_out", None, "B", "enrolled", None, None, None),
    ]
    cols = ["street_code", "community", "status", "exclusion_reason", "target_priority", "prev_target_priority",
            "change", "survey_flag", "ability_to_pay", "surveyed_on"]  # fmt: skip
    df = pl.DataFrame(rows, schema=dict.fromkeys(cols, pl.String), orient="row")
    return df.with_columns(
        pl.col("surveyed_on").str.to_date(),
        willingness=pl.lit(None, dtype=pl.String),
        reason_not_enrolled=pl.lit(None, dtype=pl.String),
    )


def by_street(df: pl.DataFrame) -> dict[str, dict]:
    return {r["street_name"]: r for r in df.iter_rows(named=True)}


def test_effects_counted_per_street_and_for_the_city():
    t = survey_effects_table(persons())
    assert t["street_name"].to_list() == ["连然街道", "金方街道", "未分配街道", "全市"]  # the policy's order
    assert t["is_city"].to_list() == [False, False, False, True]
    s = by_street(t)
    assert (s["连然街道"]["target_A"], s["连然街道"]["target_B"], s["连然街道"]["target_A_enrolled"]) == (
        1,
        1,
        1,
    )
    assert (s["连然街道"]["enrolled_elsewhere"], s["连然街道"]["not_found"]) == (1, 1)
    assert (s["金方街道"]["target_A"], s["金方街道"]["survey_deceased"]) == (1, 1)
    # no street and an unknown code: one row, both counted
    assert (s["未分配街道"]["target_A"], s["未分配街道"]["target_C"]) == (1, 1)
    assert (s["未分配街道"]["survey_moved_out"], s["未分配街道"]["target_B_enrolled"]) == (1, 1)
    counts = [c for c in t.columns if c not in ("street_name", "is_city")]
    assert all(t.schema[c] == pl.Int64 for c in counts)
    streets = t.filter(~pl.col("is_city")).select(pl.col(counts).sum()).row(0)
    assert t.filter(pl.col("is_city")).select(counts).row(0) == streets
    assert s["全市"]["target_A"] == 3


def test_effects_without_the_survey_columns_count_zeros():
    t = survey_effects_table(
        persons().drop("target_priority", "prev_target_priority", "change", "survey_flag")
    )
    s = by_street(t)
    assert s["全市"]["target_A"] == 0 and s["全市"]["not_found"] == 0 and s["全市"]["target_B_enrolled"] == 0
    assert s["全市"]["enrolled_elsewhere"] == 1 and s["全市"]["survey_deceased"] == 1


def test_no_persons_no_rows():
    assert survey_effects_table(persons().head(0)).height == 0
    streets, communities = survey_table(persons().head(0))
    assert streets.height == 0 and communities.height == 0


def test_progress_counts_the_registry_only():
    streets, communities = survey_table(persons())
    s = by_street(streets)
    # registry: unenrolled + resident_upgradable (rules/statuses.yaml); visited: a date or an answer
    assert (s["连然街道"]["registry"], s["连然街道"]["visited"], s["连然街道"]["answered"]) == (2, 1, 1)
    assert (s["金方街道"]["registry"], s["金方街道"]["visited"]) == (1, 0)
    assert (s["未分配街道"]["registry"], s["未分配街道"]["visited"]) == (2, 1)
    assert (s["全市"]["registry"], s["全市"]["visited"], s["全市"]["left_to_visit"]) == (5, 2, 3)
    c = {(r["street_name"], r["community"]): r["registry"] for r in communities.iter_rows(named=True)}
    assert c[("连然街道", "甲社区")] == 2 and ("连然街道", "乙社区") not in c
