"""``kuomian compare`` on a realistic pair of years from the generator, checked against its truth.

Two years of one synthetic world (~3000 household people, default dirt) are refreshed
(year 2 with ``previous`` = year 1) and compared; the five lists of the comparison and the
``change`` column of year 2's persons.parquet are checked against ``transitions.parquet``.
A mismatch is tolerated only for a person whose status is uncertain because of linkage
review (``needs_review`` in either run, or the true person of a row sent to review).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kuomian.commands.compare import LISTS, compare_runs
from kuomian.commands.run import refresh
from kuomian.synth import generate_years

AS_OF = date(2026, 3, 1)
# compare's file name -> transitions.parquet column
TRUTH_COLUMN = {
    "newly_enrolled": "newly_enrolled",
    "newly_listed": "newly_listed",
    "left_registry": "left_other",
    "group_changed": "group_changed",
    "street_changed": "street_changed",
}
MIN_SCORE = 0.98


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("compare_years")
    timings = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))  # one person-key file for both runs
        t = time.perf_counter()
        summaries = generate_years(root / "gen", people=3000, seed=1, as_of=AS_OF, years=2)
        timings["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        refresh(root / "gen" / "year1" / "sources", root / "run1", as_of=AS_OF)
        timings["refresh1"] = time.perf_counter() - t
        t = time.perf_counter()
        refresh(
            root / "gen" / "year2" / "sources", root / "run2", as_of=date(2027, 3, 1), previous=root / "run1"
        )
        timings["refresh2"] = time.perf_counter() - t
        t = time.perf_counter()
        report = compare_runs(root / "run1", root / "run2", root / "diff")
        timings["compare"] = time.perf_counter() - t
    print("timings (s):", {k: round(v, 2) for k, v in timings.items()})
    assert summaries[1]["as_of"] == "2027-03-01"
    return {"root": root, "report": report, "summaries": summaries}


def read_csv(path: Path) -> pl.DataFrame:
    df = pl.read_csv(path, infer_schema=False)
    return df.rename({c: c.lstrip("\ufeff") for c in df.columns})


def key_to_id(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for run in ("run1", "run2"):
        p = pl.read_parquet(root / run / "persons.parquet", columns=["person_key", "id_number"])
        out.update(zip(p["person_key"], p["id_number"], strict=True))
    return out


def uncertain_ids(root: Path) -> set[str]:
    """People whose status the linkage left uncertain: needs_review, or the true person of a review row."""
    out: set[str] = set()
    for k in (1, 2):
        p = pl.read_parquet(root / f"run{k}" / "persons.parquet", columns=["id_number", "needs_review"])
        out |= set(p.filter(pl.col("needs_review"))["id_number"])
        links = pl.read_parquet(root / f"run{k}" / "links.parquet", columns=["file", "row", "outcome"])
        truth = pl.read_parquet(
            root / "gen" / f"year{k}" / "truth" / "rows.parquet", columns=["file", "row", "person_id"]
        )
        review = links.filter(pl.col("outcome") == "review").join(truth, on=["file", "row"], how="inner")
        out |= set(review["person_id"].drop_nulls())
    return out


def score(name: str, got: set[str], expected: set[str], uncertain: set[str]) -> tuple[int, int, int]:
    tp, fp, fn = len(got & expected), len(got - expected), len(expected - got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    unexplained = ((got - expected) | (expected - got)) - uncertain
    print(f"{name:15s} expected {len(expected):4d} got {len(got):4d}  precision {precision:.3f} recall {recall:.3f}"
          f"  unexplained {len(unexplained)}")  # fmt: skip
    assert not unexplained, f"{name}: {len(unexplained)} mismatches not explained by linkage review"
    return tp, fp, fn


def test_compare_lists_match_transitions(pair):
    root = pair["root"]
    tr = pl.read_parquet(root / "gen" / "year2" / "truth" / "transitions.parquet")
    keys = key_to_id(root)
    uncertain = uncertain_ids(root)
    total = [0, 0, 0]
    for name, col in TRUTH_COLUMN.items():
        lst = read_csv(root / "diff" / f"{name}.csv")
        assert lst["编号"].is_unique().all()
        got = {keys[k] for k in lst["编号"]}
        expected = set(tr.filter(pl.col(col))["id_number"])
        assert expected, f"the generated pair has no {name}"
        assert pair["report"].counts[name] == lst.height
        for i, v in enumerate(score(name, got, expected, uncertain)):
            total[i] += v
    tp, fp, fn = total
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"all lists: precision {precision:.4f} recall {recall:.4f} ({len(uncertain)} uncertain persons)")
    assert precision >= MIN_SCORE and recall >= MIN_SCORE
    assert set(LISTS) == set(TRUTH_COLUMN)


def test_change_column_matches_transitions(pair):
    root = pair["root"]
    tr = pl.read_parquet(root / "gen" / "year2" / "truth" / "transitions.parquet")
    expected = {i: c for i, c in zip(tr["id_number"], tr["change"], strict=True) if c is not None}
    got_df = pl.read_parquet(root / "run2" / "persons.parquet", columns=["id_number", "change"])
    got = {i: c for i, c in got_df.iter_rows() if c is not None}
    assert set(got.values()) == {"new", "unchanged", "group_changed", "enrolled", "left"}
    uncertain = uncertain_ids(root)
    wrong = {i for i in set(got) | set(expected) if got.get(i) != expected.get(i)}
    agree = len(set(got) | set(expected)) - len(wrong)
    share = agree / len(set(got) | set(expected))
    print(f"change column: {agree} agree, {len(wrong)} differ ({share:.4f})")
    assert not wrong - uncertain
    assert share >= MIN_SCORE
    # year 1 (no previous): no change values
    assert pl.read_parquet(root / "run1" / "persons.parquet", columns=["change"])["change"].null_count() > 0
    assert (
        pl.read_parquet(root / "run1" / "persons.parquet", columns=["change"])["change"].drop_nulls().len()
        == 0
    )


def test_runs_agree_with_the_truth_of_each_year(pair):
    root = pair["root"]
    for k in (1, 2):
        truth = pl.read_parquet(root / "gen" / f"year{k}" / "truth" / "persons.parquet").filter(
            pl.col("in_population")
        )
        run = pl.read_parquet(root / f"run{k}" / "persons.parquet")
        j = truth.select("id_number", "status", "group", "street_code").join(
            run.select("id_number", "status", pl.col("group").cast(pl.Int64), "street_code"),
            on="id_number",
            how="full",
            coalesce=True,
            suffix="_run",
        )
        same = (
            pl.col("status").eq_missing(pl.col("status_run"))
            & pl.col("group").eq_missing(pl.col("group_run"))
            & pl.col("street_code").eq_missing(pl.col("street_code_run"))
        )
        share = j.filter(same).height / j.height
        print(f"year {k}: {j.height} persons, status/group/street agree for {share:.4f}")
        assert share >= MIN_SCORE


def test_street_totals_add_up(pair):
    root = pair["root"]
    streets = read_csv(root / "diff" / "streets.csv")
    city = streets.filter(pl.col("街道") == "全市").row(0, named=True)
    counts = pair["report"].counts
    assert int(city["新参保"]) == counts["newly_enrolled"]
    assert int(city["新入库"]) == counts["newly_listed"]
    assert int(city["其他原因出库"]) == counts["left_registry"]
    assert int(city["迁入"]) == int(city["迁出"]) == counts["street_changed"]
    assert (root / "diff" / "compare.html").exists()
