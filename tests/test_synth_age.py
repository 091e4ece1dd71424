"""The generator ages a world year by year: determinism, identities, every kind of change, transitions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from kuomian.synth import generate, generate_years
from kuomian.synth.age import CATEGORIES, age_world, next_year
from kuomian.synth.world import LOCAL, _Gen

AS_OF = date(2026, 3, 1)
PEOPLE = 3000
SEED = 7
REGISTRY = {"unenrolled", "resident_upgradable"}
ENROLLED = {"receiving", "enrolled_employee", "enrolled_resident"}


@pytest.fixture(scope="module")
def years(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("years")
    return out, generate_years(out, people=PEOPLE, seed=SEED, as_of=AS_OF, years=3)


def persons(out: Path, k: int) -> pl.DataFrame:
    return pl.read_parquet(out / f"year{k}" / "truth" / "persons.parquet")


def rows(out: Path, k: int) -> pl.DataFrame:
    return pl.read_parquet(out / f"year{k}" / "truth" / "rows.parquet")


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".xlsx"):
            fa = fastexcel.read_excel(str(a / name)).load_sheet(0, dtypes="string").to_polars()
            fb = fastexcel.read_excel(str(b / name)).load_sheet(0, dtypes="string").to_polars()
            assert fa.equals(fb), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{a.name}/{name} differs"


# --------------------------------------------------------------------------- layout and determinism


def test_layout_dates_and_summaries(years):
    out, summaries = years
    assert [s["year"] for s in summaries] == [1, 2, 3]
    assert [s["as_of"] for s in summaries] == ["2026-03-01", "2027-03-01", "2028-03-01"]
    for k in (1, 2, 3):
        assert (out / f"year{k}" / "sources").is_dir()
        truth = {p.name for p in (out / f"year{k}" / "truth").iterdir()}
        assert {"persons.parquet", "rows.parquet", "files.csv"} <= truth
        assert ("transitions.parquet" in truth) == (k > 1)
    for s in summaries[1:]:
        assert set(s["transitions"]) == set(CATEGORIES)
        assert s["changes"]
    assert next_year(date(2028, 2, 29)) == date(2029, 2, 28)
    assert next_year(date(2026, 3, 1)) == date(2027, 3, 1)


def test_year1_is_generate_and_same_seed_same_years(tmp_path, years):
    out, _ = years
    plain = tmp_path / "plain"
    generate(plain, people=PEOPLE, seed=SEED, as_of=AS_OF)
    for sub in ("sources", "truth"):
        same_files(out / "year1" / sub, plain / sub)
    again = tmp_path / "again"
    generate_years(again, people=PEOPLE, seed=SEED, as_of=AS_OF, years=2)
    for sub in ("sources", "truth"):
        same_files(out / "year2" / sub, again / "year2" / sub)
    other = tmp_path / "other"
    generate_years(other, people=PEOPLE, seed=SEED + 1, as_of=AS_OF, years=2)
    assert (other / "year2" / "truth" / "transitions.parquet").read_bytes() != (
        out / "year2" / "truth" / "transitions.parquet"
    ).read_bytes()


def test_world_identities_preserved():
    g = _Gen(1200, 11, AS_OF)
    w = g.run()
    before = (list(w.pid), list(w.name), list(w.sex), list(w.birth), list(w.kind))
    n1 = w.n
    changes = age_world(g, 2)
    assert w.as_of == date(2027, 3, 1)
    assert w.n > n1 and changes["births"] > 0
    assert (w.pid[:n1], w.name[:n1], w.sex[:n1], w.birth[:n1], w.kind[:n1]) == before
    assert len(set(w.pid)) == w.n
    for p in range(n1, w.n):  # newcomers: babies (household) or non-locals, none born before
        if w.kind[p] == LOCAL:
            assert AS_OF.toordinal() < w.birth[p] <= w.as_of.toordinal()
            assert p in w.households[w.hh[p]][1]


# --------------------------------------------------------------------------- identities in the files


def test_ids_and_names_stay_person_for_person(years):
    out, _ = years
    for k in (1, 2):
        old, new = persons(out, k), persons(out, k + 1)
        j = old.join(new, on="id_number", how="inner", suffix="_n")
        assert j.height > 0.95 * old.height
        for c in ("name", "sex", "birth_date", "hukou_local"):
            assert (j[c] == j[f"{c}_n"]).all(), c
        gone = old.filter(~pl.col("id_number").is_in(new["id_number"].implode()))
        assert gone.filter(pl.col("hukou_local")).height == 0  # household people never vanish
        # every person of the truth appears in some row, every row's person is in the truth
        ids = set(new["id_number"])
        assert ids == set(rows(out, k + 1)["person_id"].drop_nulls())


# --------------------------------------------------------------------------- every kind of change


def test_every_kind_of_change_occurs(years):
    out, summaries = years
    a, b = persons(out, 1), persons(out, 2)
    j = a.join(b, on="id_number", how="inner", suffix="_2")

    def count(expr: pl.Expr) -> int:
        return j.filter(expr).height

    reason, reason2 = pl.col("exclusion_reason"), pl.col("exclusion_reason_2")
    kinds = {
        "died": count(reason.ne_missing("deceased") & (reason2 == "deceased")),
        "moved_out": count(reason.ne_missing("moved_out") & (reason2 == "moved_out")),
        "moved_street": count(pl.col("hukou_local") & (pl.col("street_code") != pl.col("street_code_2"))),
        "moved_community": count(
            pl.col("hukou_local")
            & (pl.col("street_code") == pl.col("street_code_2"))
            & (pl.col("community") != pl.col("community_2"))
        ),
        "turned_16": count((reason == "under_16") & reason2.ne_missing("under_16")),
        "graduated": count((reason == "student") & reason2.is_null()),
        "enrolled_employee": count(pl.col("registry") & (pl.col("status_2") == "enrolled_employee")),
        "enrolled_resident": count(pl.col("registry") & (pl.col("status_2") == "enrolled_resident")),
        "enrolled_receiving": count(pl.col("registry") & (pl.col("status_2") == "receiving")),
        "resident_to_employee": count(
            (pl.col("status") == "enrolled_resident") & (pl.col("status_2") == "enrolled_employee")
        ),
        "upgradable_to_employee": count(
            (pl.col("status") == "resident_upgradable") & (pl.col("status_2") == "enrolled_employee")
        ),
    }
    births = b.filter(pl.col("hukou_local") & ~pl.col("id_number").is_in(a["id_number"].implode()))
    kinds["births"] = births.height
    assert (births["birth_date"] > AS_OF).all() and (births["exclusion_reason"] == "under_16").all()
    new_nonlocal = b.filter(
        ~pl.col("hukou_local")
        & pl.col("in_population")
        & ~pl.col("id_number").is_in(a["id_number"].implode())
    )
    kinds["new_nonlocal"] = new_nonlocal.height

    ra, rb = rows(out, 1), rows(out, 2)

    def ids(r: pl.DataFrame, source: str) -> set[str]:
        return set(r.filter((pl.col("source") == source) & (pl.col("expected") == "person"))["person_id"])

    kinds["new_market_operators"] = len(ids(rb, "market") - ids(ra, "market"))
    kinds["new_platform_workers"] = len(ids(rb, "platform") - ids(ra, "platform"))
    kinds["left_platform"] = len(ids(ra, "platform") - ids(rb, "platform"))
    alive2 = set(b.filter(pl.col("exclusion_reason").is_null())["id_number"])
    kinds["left_lowincome"] = len((ids(ra, "lowincome") - ids(rb, "lowincome")) & alive2)
    kinds["new_tax_operators"] = len(ids(rb, "tax") - ids(ra, "tax"))
    print("changes year1 → year2:", kinds)
    assert all(v > 0 for v in kinds.values()), kinds
    for s in summaries[1:]:
        for key in ("births", "died", "moved_out", "household_moved_street", "turned_16", "graduated",
                    "enrolled_employee", "enrolled_resident", "enrolled_upgradable_to_employee",
                    "resident_switched_to_employee", "new_market_entities", "new_platform_local",
                    "new_platform_nonlocal", "lowincome_left"):  # fmt: skip
            assert s["changes"].get(key, 0) > 0, key
        assert all(v > 0 for v in s["transitions"].values()), s["transitions"]


# --------------------------------------------------------------------------- transitions


def expected_transitions(old: pl.DataFrame, new: pl.DataFrame) -> dict[str, dict]:
    """Straightforward re-derivation of transitions.parquet from the two truths."""
    o = {r["id_number"]: r for r in old.filter(pl.col("in_population")).iter_rows(named=True)}
    n = {r["id_number"]: r for r in new.filter(pl.col("in_population")).iter_rows(named=True)}
    out = {}
    for pid in set(o) | set(n):
        ro, rn = o.get(pid), n.get(pid)
        was = ro is not None and ro["status"] in REGISTRY
        now = rn is not None and rn["status"] in REGISTRY
        if not (was or now):
            continue
        enrolled = rn is not None and rn["status"] in ENROLLED
        flags = {
            "newly_enrolled": was and enrolled,
            "newly_listed": now and not was,
            "left_other": was and not now and not enrolled,
            "group_changed": was and now and ro["group"] != rn["group"],
            "street_changed": was and now and ro["street_code"] != rn["street_code"],
        }
        category = next((c for c in CATEGORIES if flags[c]), "unchanged")
        if rn is None:
            change = None
        elif now and not was:
            change = "new"
        elif now:
            change = "group_changed" if flags["group_changed"] else "unchanged"
        else:
            change = "enrolled" if enrolled else "left"
        out[pid] = {**flags, "category": category, "change": change}
    return out


def test_transitions_consistent_with_the_two_truths(years):
    out, summaries = years
    for k in (2, 3):
        tr = pl.read_parquet(out / f"year{k}" / "truth" / "transitions.parquet")
        exp = expected_transitions(persons(out, k - 1), persons(out, k))
        assert tr["id_number"].is_unique().all()
        assert set(tr["id_number"]) == set(exp)
        for r in tr.iter_rows(named=True):
            e = exp[r["id_number"]]
            assert {c: r[c] for c in e} == e, r
            assert sum(r[c] for c in ("newly_enrolled", "newly_listed", "left_other", "group_changed")) <= 1
        assert summaries[k - 1]["transitions"] == {c: int(tr[c].sum()) for c in CATEGORIES}
        # the categories need the right statuses on each side
        left = tr.filter(pl.col("left_other"))
        assert (
            left["exclusion_reason_new"].is_not_null().sum() + left["status_new"].is_null().sum()
            == left.height
        )
        assert set(tr.filter(pl.col("newly_enrolled"))["status_new"]) <= ENROLLED
