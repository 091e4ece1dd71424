"""Indicator arithmetic (rules.md "Indicators", rules/indicators.yaml) and the employer list, checked by hand.

Two streets as of 2026-03-01. 连然街道 (530181001000) holds 11 household persons with
known statuses, 金方街道 (530181002000) holds 5; one non-local person with an
employee enrolment lives on 连然街道 and must not count in any household indicator.

连然街道                          status               group  income (employer, withheld months)
  P01 1955 pensioner              receiving
  P02 employee                    enrolled_employee           安宁甲公司 12
  P03 civil servant               enrolled_employee
  P04..P06 resident contributors  enrolled_resident
  P07 resident + platform rider   resident_upgradable  4      安宁乙公司 6
  P08 低保                         unenrolled           7      安宁甲公司 5
  P09 nothing else                unenrolled           8      安宁甲公司 8 (income row says 金方街道)
  P10 born 2015                   excluded (under_16)
  P11 死亡                         excluded (deceased)
金方街道
  Q01 employee                    enrolled_employee
  Q02 income 90000                unenrolled           6      安宁甲公司 12
  Q03 resident contributor        enrolled_resident
  Q04 农业, withheld 6             unenrolled           3      安宁丙公司 6
  Q05 nothing else                unenrolled           8      安宁丁公司 3
non-local (连然街道)
  N01 income + employee scheme    enrolled_employee           安宁甲公司 12
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from kuomian.commands.run import refresh
from kuomian.stages.classify import _gap
from kuomian.stages.publish import indicator_headers
from tests.conftest import make_id

AS_OF = date(2026, 3, 1)
LIANRAN, JINFANG = "530181001000", "530181002000"

P = {f"P{i:02d}": make_id(f"5301811980{i:02d}0101{i % 10}") for i in range(1, 12)}
P["P01"] = make_id("53018119550101011")
P["P10"] = make_id("53018120150601101")
Q = {f"Q{i:02d}": make_id(f"5301811975{i:02d}0102{i % 10}") for i in range(1, 6)}
N01 = make_id("53012319880808081")

NAMES = {
    "P01": "甲老", "P02": "乙工", "P03": "丙公", "P04": "丁居", "P05": "戊居", "P06": "己居",
    "P07": "庚骑", "P08": "辛困", "P09": "壬空", "P10": "癸小", "P11": "子故",
    "Q01": "丑工", "Q02": "寅富", "Q03": "卯居", "Q04": "辰农", "Q05": "巳空",
}  # fmt: skip


def person(key: str) -> tuple[str, str]:
    return (P | Q)[key], NAMES[key]


def write_street_sources(folder: Path) -> Path:
    folder.mkdir(parents=True)
    household = [
        # key, street, birth, hukou_type, person_status
        ("P01", "连然街道", "1955-01-01", "非农业", ""),
        *[(f"P{i:02d}", "连然街道", f"1980-{i:02d}-01", "非农业", "") for i in range(2, 10)],
        ("P10", "连然街道", "2015-06-01", "非农业", ""),
        ("P11", "连然街道", "1980-11-01", "非农业", "死亡"),
        *[
            (f"Q{i:02d}", "金方街道", f"1975-{i:02d}-01", "农业" if i == 4 else "非农业", "")
            for i in range(1, 6)
        ],
    ]
    lines = ["公民身份号码,姓名,街道,出生日期,户口性质,人员状态"]
    for key, street, birth, hukou, status in household:
        pid, name = person(key)
        lines.append(f"{pid},{name},{street},{birth},{hukou},{status}")
    (folder / "户籍人口.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    enrollment = [
        ("P01", "企业职工基本养老保险", "待遇领取"),
        ("P02", "企业职工基本养老保险", "参保缴费"),
        ("P03", "机关事业单位工作人员基本养老保险", "参保缴费"),
        ("P04", "城乡居民基本养老保险", "参保缴费"),
        ("P05", "城乡居民基本养老保险", "暂停缴费"),
        ("P06", "城乡居民基本养老保险", "参保缴费"),
        ("P07", "城乡居民基本养老保险", "参保缴费"),
        ("P11", "企业职工基本养老保险", "参保缴费"),  # deceased: excluded all the same
        ("Q01", "企业职工基本养老保险", "参保缴费"),
        ("Q03", "城乡居民基本养老保险", "参保缴费"),
    ]
    lines = ["身份证号,姓名,险种,参保状态"]
    lines += [f"{person(k)[0]},{person(k)[1]},{scheme},{status}" for k, scheme, status in enrollment]
    lines.append(f"{N01},外员,企业职工基本养老保险,参保缴费")
    (folder / "参保信息.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    income = [
        # key, street, annual income, withheld months, employer
        ("P02", "连然街道", 50000, 12, "安宁甲公司"),
        ("P07", "连然街道", 30000, 6, "安宁乙公司"),
        ("P08", "连然街道", 20000, 5, "安宁甲公司"),
        ("P09", "金方街道", 40000, 8, "安宁甲公司"),
        ("Q02", "金方街道", 90000, 12, "安宁甲公司"),
        ("Q04", "金方街道", 30000, 6, "安宁丙公司"),
        ("Q05", "金方街道", 20000, 3, "安宁丁公司"),
    ]
    lines = ["身份证号,姓名,街道,年收入,扣缴月数,扣缴义务人"]
    lines += [f"{person(k)[0]},{person(k)[1]},{st},{inc},{m},{emp}" for k, st, inc, m, emp in income]
    lines.append(f"{N01},外员,连然街道,50000,12,安宁甲公司")
    (folder / "个税.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    pid, name = person("P07")
    (folder / "平台从业人员.csv").write_text(
        f"身份证号,姓名,平台名称,职业类别,近12个月活跃月数\n{pid},{name},某外卖平台,外卖骑手,9\n",
        encoding="utf-8",
    )
    pid, name = person("P08")
    (folder / "低保对象.csv").write_text(
        f"身份证号,姓名,街道,救助类别\n{pid},{name},连然街道,低保\n", encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def street_run(tmp_path_factory) -> Path:
    # The autouse isolated_state fixture is function-scoped: give this module-scoped run its own state folder.
    mp = pytest.MonkeyPatch()
    mp.setenv("KUOMIAN_STATE", str(tmp_path_factory.mktemp("indicator_state")))
    mp.delenv("KUOMIAN_KEY_FILE", raising=False)
    try:
        root = tmp_path_factory.mktemp("indicators")
        refresh(write_street_sources(root / "sources"), root / "out", as_of=AS_OF)
    finally:
        mp.undo()
    return root / "out"


def read_indicators(out: Path) -> dict[str, dict[str, str]]:
    raw = (out / "indicators.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "indicators.csv must start with a UTF-8 BOM (Excel)"
    headers = indicator_headers()
    to_field = {v: k for k, v in headers.items()}
    with open(out / "indicators.csv", encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == list(headers.values()), "Chinese headers, in indicator_headers() order"
        rows = [{to_field[h]: v for h, v in r.items()} for r in reader]
    by_key = {}
    for r in rows:
        key = "city" if r["street_name"] == "全市" else r["street_code"]
        assert key not in by_key, f"two indicator rows for {key!r}"
        by_key[key] = r
    return by_key


COUNT_FIELDS = [
    "household_persons", "eligible", "enrolled", "contribution_stage", "employee",
    "coverage_gap_2025", "coverage_gap_2035", "employee_gap_2025", "employee_gap_2035",
    "registry", *[f"registry_group_{g}" for g in range(1, 9)],
]  # fmt: skip


def ints(row: dict[str, str]) -> dict[str, int]:
    return {f: int(row[f]) for f in COUNT_FIELDS}


def test_persons_have_the_statuses_the_indicators_assume(street_run):
    import polars as pl

    persons = pl.read_parquet(street_run / "persons.parquet")
    got = {r["id_number"]: (r["status"], r["group"], r["street_code"]) for r in persons.iter_rows(named=True)}
    expected = {
        "P01": ("receiving", None, LIANRAN), "P02": ("enrolled_employee", None, LIANRAN),
        "P03": ("enrolled_employee", None, LIANRAN), "P04": ("enrolled_resident", None, LIANRAN),
        "P05": ("enrolled_resident", None, LIANRAN), "P06": ("enrolled_resident", None, LIANRAN),
        "P07": ("resident_upgradable", 4, LIANRAN), "P08": ("unenrolled", 7, LIANRAN),
        "P09": ("unenrolled", 8, LIANRAN), "P10": ("excluded", None, LIANRAN), "P11": ("excluded", None, LIANRAN),
        "Q01": ("enrolled_employee", None, JINFANG), "Q02": ("unenrolled", 6, JINFANG),
        "Q03": ("enrolled_resident", None, JINFANG), "Q04": ("unenrolled", 3, JINFANG),
        "Q05": ("unenrolled", 8, JINFANG),
    }  # fmt: skip
    for key, want in expected.items():
        assert got[person(key)[0]] == want, f"{key} {NAMES[key]}"
    assert got[N01] == ("enrolled_employee", None, LIANRAN)
    assert len(got) == len(expected) + 1
    assert persons.filter(pl.col("id_number") == N01)["hukou_local"].to_list() == [False]


def test_street_indicators_by_hand(street_run):
    row = read_indicators(street_run)[LIANRAN]
    assert row["street_name"] == "连然街道"
    assert ints(row) == {
        "household_persons": 11,  # P01..P11; the non-local N01 is not counted
        "eligible": 9,  # 11 minus P10 (under 16) and P11 (deceased)
        "enrolled": 7,  # P01 receiving, P02 P03 employee, P04..P06 resident, P07 upgradable
        "contribution_stage": 6,  # P02..P07 (the pensioner P01 is not contributing)
        "employee": 2,  # P02, P03
        "coverage_gap_2025": 2,  # ceil(0.95 * 9 - 7) = ceil(1.55)
        "coverage_gap_2035": 2,  # ceil(0.96 * 9 - 7) = ceil(1.64)
        "employee_gap_2025": 0,  # ceil(0.30 * 6 - 2) = ceil(-0.2) -> min 0
        "employee_gap_2035": 1,  # ceil(0.50 * 6 - 2) = 1
        "registry": 3,  # P07, P08, P09
        "registry_group_1": 0, "registry_group_2": 0, "registry_group_3": 0, "registry_group_4": 1,
        "registry_group_5": 0, "registry_group_6": 0, "registry_group_7": 1, "registry_group_8": 1,
    }  # fmt: skip
    assert float(row["coverage_rate"]) == pytest.approx(7 / 9)
    assert float(row["employee_share"]) == pytest.approx(2 / 6)


def test_second_street_by_hand(street_run):
    row = read_indicators(street_run)[JINFANG]
    assert row["street_name"] == "金方街道"
    assert ints(row) == {
        "household_persons": 5, "eligible": 5, "enrolled": 2, "contribution_stage": 2, "employee": 1,
        "coverage_gap_2025": 3,  # ceil(0.95 * 5 - 2) = ceil(2.75)
        "coverage_gap_2035": 3,  # ceil(0.96 * 5 - 2) = ceil(2.8)
        "employee_gap_2025": 0,  # ceil(0.30 * 2 - 1) -> min 0
        "employee_gap_2035": 0,  # 0.50 * 2 - 1 = 0 exactly
        "registry": 3,  # Q02 (6), Q04 (3), Q05 (8)
        "registry_group_1": 0, "registry_group_2": 0, "registry_group_3": 1, "registry_group_4": 0,
        "registry_group_5": 0, "registry_group_6": 1, "registry_group_7": 0, "registry_group_8": 1,
    }  # fmt: skip
    assert float(row["coverage_rate"]) == pytest.approx(2 / 5)
    assert float(row["employee_share"]) == pytest.approx(1 / 2)


def test_streets_without_people_are_listed_with_zeros(street_run):
    rows = read_indicators(street_run)
    others = [r for k, r in rows.items() if k not in ("city", LIANRAN, JINFANG)]
    assert len(others) >= 7, "every street of rules/streets.csv gets a row"
    for r in others:
        assert set(ints(r).values()) == {0}, r["street_name"]
        assert r["coverage_rate"] == "" and r["employee_share"] == "", "no rate without a denominator"


def test_city_row_is_the_sum_over_streets(street_run):
    rows = read_indicators(street_run)
    city = rows.pop("city")
    assert city["street_name"] == "全市"
    summed = {f: sum(int(r[f]) for r in rows.values()) for f in COUNT_FIELDS if "_gap_" not in f}
    assert {f: v for f, v in ints(city).items() if "_gap_" not in f} == summed
    assert summed["eligible"] == 14 and summed["enrolled"] == 9
    assert summed["contribution_stage"] == 8 and summed["employee"] == 3
    assert summed["registry"] == 6
    # Rates and gaps are recomputed from the city totals, not added up.
    assert float(city["coverage_rate"]) == pytest.approx(9 / 14)
    assert float(city["employee_share"]) == pytest.approx(3 / 8)
    assert int(city["coverage_gap_2025"]) == 5  # ceil(0.95 * 14 - 9) = ceil(4.3)
    assert int(city["coverage_gap_2035"]) == 5  # ceil(0.96 * 14 - 9) = ceil(4.44)
    assert int(city["employee_gap_2025"]) == 0  # ceil(0.30 * 8 - 3) = ceil(-0.6) -> 0
    assert int(city["employee_gap_2035"]) == 1  # ceil(0.50 * 8 - 3) = 1


@pytest.mark.parametrize(
    ("target", "numerator", "denominator", "gap"),
    [
        (0.95, 7, 9, 2),  # 8.55 - 7
        (0.95, 19, 20, 0),  # 0.95 * 20 is 19 (not 19.000000000000004): no phantom person
        (0.96, 24, 25, 0),  # 0.96 * 25 = 24
        (0.96, 23, 25, 1),
        (0.30, 3, 10, 0),  # 0.3 * 10 = 3.0000000000000004 in floating point
        (0.30, 2, 10, 1),
        (0.50, 5, 7, 0),  # above target: min 0
        (0.95, 0, 0, 0),  # empty street
    ],
)
def test_gap_formula(target, numerator, denominator, gap):
    assert _gap(target, numerator, denominator) == gap


def test_employers_list(street_run):
    raw = (street_run / "employers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(street_run / "employers.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == ["扣缴义务人(单位)", "实名库中扣缴满6个月人数"]
    counts = {employer: int(n) for employer, n in body}
    assert counts == {
        # P09 (8 months) and Q02 (12) are in the registry; P08 has only 5 months;
        # P02 and the non-local N01 have 12 months but are enrolled employees.
        "安宁甲公司": 2,
        "安宁丙公司": 1,  # Q04, 6 months
        "安宁乙公司": 1,  # P07, 6 months, resident_upgradable counts as registry
        # 安宁丁公司: Q05 has only 3 months -> not listed
    }
    assert [int(n) for _, n in body] == sorted((int(n) for _, n in body), reverse=True), (
        "ordered by the count"
    )
    assert body[0][0] == "安宁甲公司"
