"""The synthetic-data generator: determinism, valid IDs, complete row truth, dirt and rule coverage."""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import fastexcel
import polars as pl
import pytest
import yaml

from kuomian.synth import DIRT_KINDS, DirtConfig, build_world, generate, generate_sharded, write_bad_files
from kuomian.synth.world import anniversary

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 3, 1)
W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
EXTRA_HEADERS = {"序号", "备注", "经办人", "数据日期"}
ID_CHANGING_KINDS = {
    "id_lower_x", "id_fullwidth", "id_spaces", "id_apostrophe", "id_quotes", "id_15", "id_typo", "id_swap",
    "id_excel_sci", "id_blank", "id_relative",
}  # fmt: skip


def valid_id(v: str) -> bool:
    return (
        len(v) == 18
        and v[:17].isdigit()
        and "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], W, strict=True)) % 11] == v[17]
    )


# --------------------------------------------------------------------------- source declarations


def load_sources() -> dict[str, dict]:
    common = yaml.safe_load((ROOT / "sources" / "_common.yaml").read_text(encoding="utf-8"))
    out = {}
    for f in sorted((ROOT / "sources").glob("*.yaml")):
        if f.name.startswith("_"):
            continue
        d = yaml.safe_load(f.read_text(encoding="utf-8"))
        fields = {k: common[k] for k in d.get("common", [])}
        fields.update(d.get("fields", {}))
        aliases = {a: k for k, v in fields.items() for a in v["aliases"]}
        required = {k for k, v in fields.items() if v.get("required")}
        out[d["source"]] = {"globs": d["globs"], "aliases": aliases, "required": required}
    return out


SOURCES = load_sources()


def sources_for_name(name: str) -> list[str]:
    return [
        s for s, d in SOURCES.items() if any(fnmatch.fnmatch(name.lower(), g.lower()) for g in d["globs"])
    ]


def header_field(source: str, header: str) -> str | None:
    h = unicodedata.normalize("NFKC", header).strip()
    aliases = SOURCES[source]["aliases"]
    if h in aliases:
        return aliases[h]
    h2 = re.sub(r"\([^()]*\)$", "", h).strip()
    return aliases.get(h2)


# --------------------------------------------------------------------------- reading back


def read_back(path: Path, fmt: str, encoding: str) -> pl.DataFrame:
    if fmt == "csv":
        text = path.read_bytes().decode(encoding)
        return pl.read_csv(text.encode("utf-8"), infer_schema=False)
    if fmt == "xlsx":
        return fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_polars()
    return pl.read_parquet(path)


def load_out(out: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    files = pl.read_csv(out / "truth" / "files.csv", infer_schema=False).with_columns(
        pl.col("encoding").fill_null("")
    )
    rows = pl.read_parquet(out / "truth" / "rows.parquet")
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    return files, rows, persons


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def heavy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heavy")
    generate(out, people=2500, seed=3, dirt=DirtConfig.heavy())
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, people=2000, seed=4, dirt=DirtConfig.none())
    return out


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("city")
    summary = generate(out, people=20000, seed=1, as_of=AS_OF)
    return out, summary


# --------------------------------------------------------------------------- tests


def test_determinism(tmp_path, heavy):
    again = tmp_path / "again"
    generate(again, people=2500, seed=3, dirt=DirtConfig.heavy(), workers=2)  # forked workers: same bytes
    for sub in ("sources", "truth"):
        names = sorted(p.name for p in (heavy / sub).iterdir())
        assert names == sorted(p.name for p in (again / sub).iterdir())
        for name in names:
            a, b = (heavy / sub / name).read_bytes(), (again / sub / name).read_bytes()
            if name.endswith(".xlsx"):
                fa = fastexcel.read_excel(str(heavy / sub / name)).load_sheet(0, dtypes="string").to_polars()
                fb = fastexcel.read_excel(str(again / sub / name)).load_sheet(0, dtypes="string").to_polars()
                assert fa.equals(fb), name
            else:
                assert a == b, f"{sub}/{name} differs between two runs with the same seed"
    other = tmp_path / "other"
    generate(other, people=2500, seed=4, dirt=DirtConfig.heavy())
    assert (other / "truth" / "persons.parquet").read_bytes() != (
        heavy / "truth" / "persons.parquet"
    ).read_bytes()


def test_file_names_and_headers_match_exactly_one_source(heavy):
    files, _, _ = load_out(heavy)
    formats = set()
    encodings = set()
    for f in files.iter_rows(named=True):
        assert sources_for_name(f["file"]) == [f["source"]], f["file"]
        formats.add(f["format"])
        encodings.add(f["encoding"])
        df = read_back(heavy / "sources" / f["file"], f["format"], f["encoding"])
        fields = []
        for h in df.columns:
            fld = header_field(f["source"], h)
            assert fld is not None or h.strip() in EXTRA_HEADERS, (f["file"], h)
            fields.append(fld)
        assert len([x for x in fields if x]) == len({x for x in fields if x}), (
            f"two columns for one field: {f['file']}"
        )
        missing = SOURCES[f["source"]]["required"] - set(fields)
        assert not missing, (f["file"], missing)
    assert formats == {"csv", "xlsx", "parquet"}
    assert {"utf-8", "utf-8-sig", "gb18030"} <= encodings
    assert len(files.filter(pl.col("source") == "household")) == 9
    assert set(files.filter(pl.col("source") == "household")["format"]) == {"csv", "xlsx"}


def _id_and_name_columns(source: str, columns: list[str]) -> tuple[str, str]:
    idc = next(c for c in columns if header_field(source, c) == "id_number")
    nmc = next(c for c in columns if header_field(source, c) == "name")
    return idc, nmc


def test_rows_truth_covers_every_data_row(heavy):
    files, rows, persons = load_out(heavy)
    names = dict(zip(persons["id_number"], persons["name"], strict=True))
    assert rows.select(["file", "row"]).is_duplicated().sum() == 0
    assert set(rows["expected"]) <= {"person", "unmatched", "duplicate", "quarantined"}
    checked_clean = 0
    for f in files.iter_rows(named=True):
        df = read_back(heavy / "sources" / f["file"], f["format"], f["encoding"])
        truth = rows.filter(pl.col("file") == f["file"]).sort("row")
        assert df.height == truth.height == int(f["rows"]), f["file"]
        assert truth["row"].to_list() == list(range(2, df.height + 2))
        for k in ("person", "unmatched", "duplicate", "quarantined"):
            assert int(f[k]) == (truth["expected"] == k).sum()
        idc, nmc = _id_and_name_columns(f["source"], df.columns)
        ids, nms = df[idc].to_list(), df[nmc].to_list()
        first = df[df.columns[0]].to_list()
        for i, t in enumerate(truth.iter_rows(named=True)):
            kinds = set(filter(None, t["dirt"].split(",")))
            if t["quarantine_reason"] == "empty_row":
                assert all(v is None or v == "" for v in df.row(i)), (f["file"], t["row"])
            elif t["quarantine_reason"] == "total_row":
                assert first[i] == "合计" and i == df.height - 1
            elif t["quarantine_reason"] == "no_identity":
                assert nms[i] is None and t["person_id"] is None
            elif t["expected"] == "duplicate":
                assert df.row(i) in set(df.slice(0, i).rows()), (f["file"], t["row"])
            if t["expected"] in ("person", "unmatched"):
                assert t["person_id"] is not None
                if not kinds:
                    assert ids[i] == t["person_id"], (f["file"], t["row"])
                    assert nms[i] == names[t["person_id"]], (f["file"], t["row"])
                    checked_clean += 1
                if kinds & ID_CHANGING_KINDS:
                    assert ids[i] != t["person_id"], (f["file"], t["row"], kinds)
                if "id_relative" in kinds and not kinds & {n for n in DIRT_KINDS if n.startswith("name_")}:
                    assert nms[i] == names[t["person_id"]]
    assert checked_clean > 2000


def test_every_dirt_kind_occurs_with_heavy(heavy):
    _, rows, _ = load_out(heavy)
    seen = set()
    for d in rows["dirt"].unique().to_list():
        seen.update(filter(None, d.split(",")))
    assert seen == set(DIRT_KINDS)
    # household (公安) data only gets format dirt
    hh = set()
    for d in rows.filter(pl.col("source") == "household")["dirt"].unique().to_list():
        hh.update(filter(None, d.split(",")))
    assert hh <= {
        "id_lower_x",
        "id_fullwidth",
        "id_spaces",
        "date_format",
        "row_duplicate",
        "row_empty",
        "row_total",
    }
    assert {"id_spaces", "row_duplicate"} <= hh
    # excel-specific kinds only where they can happen
    fmt = dict(
        zip(*load_out(heavy)[0].select("file", "format").to_dict(as_series=False).values(), strict=True)
    )
    for d, f in rows.select("dirt", "file").iter_rows():
        if "id_excel_sci" in d:
            assert fmt[f] == "csv"
        if "id_excel_numeric" in d:
            assert fmt[f] == "xlsx"


def test_clean_config_writes_clean_files(clean):
    files, rows, persons = load_out(clean)
    assert (rows["dirt"] == "").all()
    assert set(rows["expected"]) == {"person", "unmatched"}
    idset = set(persons["id_number"])
    for f in files.iter_rows(named=True):
        df = read_back(clean / "sources" / f["file"], f["format"], f["encoding"])
        idc, _ = _id_and_name_columns(f["source"], df.columns)
        assert set(df[idc].to_list()) <= idset, f["file"]


def test_ids_valid_unique_and_consistent(city):
    out, _ = city
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    ids = persons["id_number"].to_list()
    assert len(ids) == len(set(ids))
    for pid, sex, birth in persons.select("id_number", "sex", "birth_date").iter_rows():
        assert valid_id(pid), pid
        assert (int(pid[16]) % 2 == 1) == (sex == "男"), pid
        assert pid[6:14] == birth.strftime("%Y%m%d")
        code = pid[:6]
        if code in ("530121", "530123", "530181"):
            expected = "530121" if birth.year < 1982 else "530123" if birth.year <= 1995 else "530181"
            assert code == expected, pid
    local = persons.filter(pl.col("hukou_local"))
    anning = local.filter(pl.col("id_number").str.slice(0, 6).is_in(["530121", "530123", "530181"])).height
    assert 0.7 < anning / local.height < 0.9  # about 20% in-movers
    # common names collide, minority names carry the middle dot
    counts = persons.group_by("name").len()
    assert counts.filter(pl.col("name").is_in(["张伟", "王芳", "李娜"]))["len"].min() >= 2
    dots = persons.filter(pl.col("name").str.contains("\u00b7")).height
    assert dots > 100


def test_twins_and_age_boundaries():
    w = build_world(3000, 2, AS_OF)
    assert w.twin_of
    for b, a in w.twin_of.items():
        assert w.hh[a] == w.hh[b] and w.birth[a] == w.birth[b]
        assert w.pid[a][:14] == w.pid[b][:14] and w.pid[a][14:17] != w.pid[b][14:17]
    sixteen = anniversary(AS_OF, 16).toordinal()
    births = set(w.birth)
    assert {sixteen, sixteen + 1, sixteen - 1} <= births
    ann = anniversary(AS_OF, 1).toordinal()
    established = {m[4] for m in w.market}
    assert {ann, ann - 1, None} <= established
    market_codes = {m[1] for m in w.market}
    assert market_codes & {t[1] for t in w.tax}  # some new entities are also tax entities


def test_statuses_exclusions_groups_at_city_scale(city):
    out, summary = city
    assert summary["seconds"] < 20
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    pop = persons.filter(pl.col("in_population"))
    assert set(pop["status"]) == {
        "excluded", "receiving", "enrolled_employee", "resident_upgradable", "enrolled_resident", "unenrolled",
    }  # fmt: skip
    assert set(pop["exclusion_reason"].drop_nulls()) == {
        "deceased",
        "moved_out",
        "under_16",
        "student",
        "incarcerated",
    }
    reg = pop.filter(pl.col("registry"))
    assert set(reg["group"]) == set(range(1, 9))
    assert set(reg["status"]) == {"unenrolled", "resident_upgradable"}
    up = reg.filter(pl.col("status") == "resident_upgradable")
    assert all(set(t) <= {1, 3, 4, 5, 6} and t for t in up["group_tags"].to_list())
    assert pop.filter(~pl.col("registry"))["group"].null_count() == pop.filter(~pl.col("registry")).height
    prio = [7, 2, 4, 1, 5, 3, 6, 8]
    for g, tags in reg.select("group", "group_tags").iter_rows():
        assert tags == sorted(tags) and g == next(x for x in prio if x in tags)
    assert reg.filter(pl.col("group_tags").list.len() >= 2).height > 20  # priority conflicts happen
    # outsiders are never in the population; non-locals are, with and without a street
    assert (
        persons.filter(~pl.col("in_population"))["status"].null_count()
        == persons.filter(~pl.col("in_population")).height
    )
    nonlocal_ = pop.filter(~pl.col("hukou_local"))
    assert nonlocal_.height > 100
    assert 0 < nonlocal_["street_code"].null_count() < nonlocal_.height
    # rough realism
    eligible = pop.filter(pl.col("hukou_local") & (pl.col("status") != "excluded"))
    covered = eligible.filter(pl.col("status") != "unenrolled").height / eligible.height
    assert 0.88 < covered < 0.97
    assert 0.02 < pop.filter(pl.col("status") == "unenrolled").height / pop.height < 0.15


def test_scenarios_have_the_expected_outcomes(city):
    out, _ = city
    w = build_world(20000, 1, AS_OF)
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    by_id = {r["id_number"]: r for r in persons.iter_rows(named=True)}
    expected = {
        "g7_lowincome": ("unenrolled", 7, [7]),
        "g2_landless": ("unenrolled", 2, [2]),
        "g4_blank_active": ("unenrolled", 4, [4]),
        "platform_inactive": ("unenrolled", 8, [8]),
        "g1_getihu": ("unenrolled", 1, [1]),
        "not_g1_medium": ("unenrolled", 8, [8]),
        "not_g1_abnormal": ("unenrolled", 8, [8]),
        "g1_market_anniversary": ("unenrolled", 1, [1]),
        "not_g1_market_day_before": ("unenrolled", 8, [8]),
        "g1_market_blank": ("unenrolled", 1, [1]),
        "g5_lawyer": ("unenrolled", 5, [5]),
        "g3_boundary": ("unenrolled", 3, [3]),
        "not_g3_five_months": ("unenrolled", 8, [8]),
        "g6_boundary": ("unenrolled", 6, [6]),
        "g8_roster": ("unenrolled", 8, [8]),
        "conflict_lowincome_platform": ("unenrolled", 7, [4, 7]),
        "upgradable_getihu": ("resident_upgradable", 1, [1]),
        "upgradable_platform": ("resident_upgradable", 4, [4]),
        "resident_lowincome_not_upgradable": ("enrolled_resident", None, []),
        "upgradable_multi": ("resident_upgradable", 5, [5, 6]),
        "employee_with_terminated_resident": ("enrolled_employee", None, []),
        "terminated_only": ("unenrolled", 8, [8]),
        "receiving_with_platform": ("receiving", None, []),
        "all_groups": ("unenrolled", 7, [1, 2, 3, 4, 5, 6, 7, 8]),
        "nonlocal_two_sources": ("unenrolled", 4, [4, 6]),
        "nonlocal_employee": ("enrolled_employee", None, []),
    }
    for name, (status, group, tags) in expected.items():
        r = by_id[w.pid[w.scenarios[name]]]
        assert (r["status"], r["group"], r["group_tags"]) == (status, group, tags), name
    inc = by_id[w.pid[w.scenarios["incarcerated"]]]
    assert (inc["status"], inc["exclusion_reason"]) == ("excluded", "incarcerated")
    assert by_id[w.pid[w.scenarios["nonlocal_no_street"]]]["street_code"] is None
    assert by_id[w.pid[w.scenarios["nonlocal_two_sources"]]]["street_code"] is not None
    # the 16th birthday on the as-of date makes a person 16
    for r in persons.filter(pl.col("hukou_local")).iter_rows(named=True):
        if r["birth_date"] == anniversary(AS_OF, 16):
            assert r["exclusion_reason"] != "under_16"
        elif r["birth_date"] == anniversary(AS_OF, 16) + timedelta(days=1):
            assert r["exclusion_reason"] in ("under_16", "deceased", "moved_out")


def test_unmatched_rows_are_outsiders_in_match_only_sources(city):
    out, _ = city
    rows = pl.read_parquet(out / "truth" / "rows.parquet")
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    outsiders = set(persons.filter(~pl.col("in_population"))["id_number"])
    um = rows.filter(pl.col("expected") == "unmatched")
    assert um.height > 100
    assert set(um["source"]) == {"enrollment", "student"}
    assert set(um["person_id"]) <= outsiders
    people_rows = rows.filter(pl.col("expected") == "person")
    assert not set(people_rows["person_id"]) & outsiders
    # every person in the truth appears in some row
    assert set(persons["id_number"]) == set(rows["person_id"].drop_nulls())


def test_bad_files(tmp_path):
    bad = write_bad_files(tmp_path)
    assert set(bad) == {
        "empty", "header_only", "truncated", "gb18030_undeclared", "corrupt_xlsx", "truncated_xlsx",
        "duplicate_columns", "missing_required",
    }  # fmt: skip
    for p in bad.values():
        assert p.exists() and len(sources_for_name(p.name)) == 1, p.name
    assert bad["empty"].stat().st_size == 0
    assert bad["header_only"].read_text(encoding="utf-8").count("\n") == 1
    assert not bad["truncated"].read_bytes().endswith(b"\n")
    raw = bad["gb18030_undeclared"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "刘䶮" in raw.decode("gb18030") and "\u00b7" in raw.decode("gb18030")
    for key in ("corrupt_xlsx", "truncated_xlsx"):
        with pytest.raises(Exception):  # noqa: B017 - any reader error is fine
            fastexcel.read_excel(str(bad[key])).load_sheet(0).to_polars()
    header = bad["duplicate_columns"].read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert len(header) != len(set(header))
    header = bad["missing_required"].read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "统一社会信用代码" not in header and sources_for_name(bad["missing_required"].name) == ["market"]


def test_a_sharded_world_has_unique_ids_and_one_truth(tmp_path):
    from bench.evaluate import score_links
    from kuomian.commands.run import refresh

    out = tmp_path / "kunming"
    summary = generate_sharded(out, people=2400, seed=2, as_of=AS_OF, shard_people=1000)
    assert summary["districts"] == 3
    # every district's files directly in SOURCES_DIR (subfolders are not read), named dNN_<name>
    assert {p.name[:4] for p in (out / "sources").iterdir()} == {"d01_", "d02_", "d03_"}
    assert all(p.is_file() for p in (out / "sources").iterdir())
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    assert persons["id_number"].n_unique() == persons.height == summary["persons"]
    # each district writes its own local address codes (d02 as 5302.., d03 as 5303..)
    codes = set(persons["id_number"].str.slice(0, 4).to_list())
    assert {"5301", "5302", "5303"} <= codes
    rows = pl.read_parquet(out / "truth" / "rows.parquet")
    on_disk = {p.name for p in (out / "sources").iterdir()}
    assert set(rows["file"].unique().to_list()) == on_disk
    assert rows.height == sum(summary["rows"].values())
    # the truth names each file as the loader shows it (dNN_<name>): every row is found
    done = refresh(out / "sources", tmp_path / "run", as_of=AS_OF)
    scored = score_links(done.out_dir, out / "truth")
    assert scored.height == rows.height
    assert int(scored["missing"].sum()) == 0
    assert int(scored["wrong_link"].sum()) == 0
