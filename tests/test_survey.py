"""``kuomian survey import``: hand-offs filled in by the streets, back into OUT_DIR."""

from __future__ import annotations

import csv
import io
import shutil
import stat
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from tests.conftest import ZHANG, assert_no_full_id, publish_tiny, write_tiny_sources

runner = CliRunner()
STREET = "530181001000"
SURVEY = ["visit_result", "ability_to_pay", "willingness", "reason_not_enrolled", "income_band", "employment",
          "surveyed_on"]  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """One tiny refresh (registry: 张伟 only), copied afresh for every test."""
    root = tmp_path_factory.mktemp("survey_run")
    return publish_tiny(root)


@pytest.fixture
def out(published, tmp_path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(published, dst)
    return dst


def handoff_csv(out: Path) -> Path:
    (path,) = (out / "handoff").glob(f"{STREET}_*.csv")
    return path


def handoff_rows(out: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(handoff_csv(out).read_text("utf-8-sig"))))
    return rows[0], rows[1:]


def fill(header: list[str], row: list[str], **answers: str) -> list[str]:
    row = list(row)
    for h, v in answers.items():
        row[header.index(h)] = v
    return row


def write_gb18030(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """As Excel on a Chinese Windows saves 'CSV (comma delimited)': GBK/GB18030, no BOM, CRLF."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode("gb18030"))
    return path


ANSWERS4 = ["ability_to_pay", "willingness", "reason_not_enrolled", "surveyed_on"]


def survey_of(df: pl.DataFrame, key: str, fields: list[str] = ANSWERS4) -> dict:
    return df.filter(pl.col("person_key") == key).select(fields).row(0, named=True)


def partition(out: Path) -> Path:
    return out / "registry" / f"street_code={STREET}" / "part-0.parquet"


def test_handoff_has_no_full_id_and_survey_columns(out):
    header, rows = handoff_rows(out)
    assert header[-10:] == ["重点等级", "走访结果", "缴费能力", "参保意愿", "未参保原因", "年收入", "就业情况",
                            "调查日期", "调查人", "实名库批次"]  # fmt: skip
    assert len(rows) == 1 and rows[0][header.index("姓名")] == "张伟"
    for p in (out / "handoff").glob("*.csv"):
        assert_no_full_id(p.read_text("utf-8-sig"))


def test_round_trip_through_gbk_csv(out, tmp_path):
    header, rows = handoff_rows(out)
    key = rows[0][0]
    filled = fill(header, rows[0], 缴费能力="缴费能力一般", 参保意愿="愿意参加居民养老", 未参保原因="不了解政策",
                  调查日期="2026/4/15", 调查人="李四")  # fmt: skip
    f = write_gb18030(tmp_path / "连然街道_已填.csv", header, [filled])
    assert not f.read_bytes().startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        f.read_bytes().decode("utf-8")
    schema_before = pl.read_parquet(out / "persons.parquet").schema
    part_schema_before = pl.read_parquet(partition(out)).schema

    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    assert "applied 1" in res.stdout and "rejected 0" in res.stdout and "not found 0" in res.stdout
    assert_no_full_id(res.stdout + res.stderr)

    want = {"ability_to_pay": "缴费能力一般", "willingness": "愿意参加居民养老", "reason_not_enrolled": "不了解政策",
            "surveyed_on": date(2026, 4, 15)}  # fmt: skip
    persons = pl.read_parquet(out / "persons.parquet")
    assert persons.schema == schema_before
    assert survey_of(persons, key) == want
    others = persons.filter(pl.col("person_key") != key)
    assert all(v is None for r in others.select(SURVEY).rows() for v in r)
    part = pl.read_parquet(partition(out))
    assert part.schema == part_schema_before
    assert survey_of(part, key) == want
    # the hive-partitioned registry still reads as one table
    reg = pl.read_parquet(out / "registry", hive_partitioning=True)
    assert reg.filter(pl.col("person_key") == key)["ability_to_pay"].to_list() == ["缴费能力一般"]

    for p in (out / "persons.parquet", partition(out)):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]

    before = {p: p.read_bytes() for p in (out / "persons.parquet", partition(out))}
    again = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert again.exit_code == 0, again.stderr
    assert "applied 0" in again.stdout and "unchanged 1" in again.stdout
    assert "unchanged:" in again.stdout
    assert {p: p.read_bytes() for p in before} == before


def test_rejected_not_found_and_blank_rows(out, tmp_path):
    header, rows = handoff_rows(out)
    key = rows[0][0]
    bad_answer = fill(header, rows[0], 缴费能力="很有钱", 调查日期="2026-04-15")
    bad_date = fill(header, rows[0], 参保意愿="暂不愿意参保", 调查日期="下周三")
    stranger = fill(header, rows[0], 缴费能力="有缴费能力")
    stranger[0] = "PZZZZZZZZZZZZZZZ"
    blank = list(rows[0])
    good = fill(header, rows[0], 参保意愿="愿意参加居民养老")
    f = write_gb18030(tmp_path / "连然街道_filled.csv", header, [bad_answer, bad_date, stranger, blank, good])
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    # a script can tell: exit 1 after the good rows were stored
    assert res.exit_code == 1, res.stderr
    assert "2 rows rejected, 1 not found" in res.stderr and "import the file again" in res.stderr
    assert "applied 1" in res.stdout and "rejected 2" in res.stdout and "not found 1" in res.stdout
    assert "without answers 1" in res.stdout
    assert "rejected 连然街道_filled.csv row 2: 缴费能力 '很有钱' is not an allowed answer" in res.stdout
    assert "rejected 连然街道_filled.csv row 3: 调查日期 '下周三' is not a date" in res.stdout
    assert "not found 连然街道_filled.csv row 4: 编号 PZZZZZZZZZZZZZZZ" in res.stdout
    assert_no_full_id(res.stdout + res.stderr)
    # a rejected row is rejected whole (its valid 调查日期 was not written); the good row was stored
    got = survey_of(pl.read_parquet(out / "persons.parquet"), key)
    assert got == {"ability_to_pay": None, "willingness": "愿意参加居民养老", "reason_not_enrolled": None,
                   "surveyed_on": None}  # fmt: skip


def test_blank_cells_do_not_erase_answers_and_bom_csv(out, tmp_path):
    header, rows = handoff_rows(out)
    key = rows[0][0]
    first = tmp_path / "连然街道_first.csv"
    write_gb18030(first, header, [fill(header, rows[0], 缴费能力="无缴费能力", 调查日期="2026年4月1日")])
    assert runner.invoke(app, ["-q", "survey", "import", str(first), "--registry", str(out)]).exit_code == 0
    # later, the same street sends only the willingness (UTF-8 with BOM, as 'CSV UTF-8' in Excel)
    second = tmp_path / "连然街道_second.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, fill(header, rows[0], 参保意愿=" 愿意参加职工养老 ")])
    second.write_text(buf.getvalue(), encoding="utf-8-sig")
    res = runner.invoke(app, ["-q", "survey", "import", str(second), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    assert "applied 1" in res.stdout
    got = survey_of(pl.read_parquet(out / "persons.parquet"), key)
    assert got == {"ability_to_pay": "无缴费能力", "willingness": "愿意参加职工养老", "reason_not_enrolled": None,
                   "surveyed_on": date(2026, 4, 1)}  # fmt: skip
    assert survey_of(pl.read_parquet(partition(out)), key) == got


def test_xlsx_saved_by_excel(out, tmp_path):
    import xlsxwriter

    header, rows = handoff_rows(out)
    key = rows[0][0]
    f = tmp_path / "连然街道_已填.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("入户调查")
    datefmt = wb.add_format({"num_format": "yyyy/m/d"})
    ws.write_row(0, 0, header)
    for j, (h, v) in enumerate(zip(header, rows[0], strict=True)):
        if h == "年龄":
            ws.write_number(1, j, int(v))
        elif h == "调查日期":
            ws.write_datetime(1, j, datetime(2026, 5, 20), datefmt)  # a real date cell, as Excel stores it
        elif h == "缴费能力":
            ws.write_string(1, j, "有缴费能力")
        elif h == "未参保原因":
            ws.write_string(1, j, "年龄偏大")
        else:
            ws.write_string(1, j, v)
    wb.close()
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    assert "applied 1" in res.stdout
    want = {"ability_to_pay": "有缴费能力", "willingness": None, "reason_not_enrolled": "年龄偏大",
            "surveyed_on": date(2026, 5, 20)}  # fmt: skip
    assert survey_of(pl.read_parquet(out / "persons.parquet"), key) == want
    assert survey_of(pl.read_parquet(partition(out)), key) == want
    again = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert "unchanged 1" in again.stdout


def test_answers_reach_the_next_refresh_with_previous(out, tmp_path):
    header, rows = handoff_rows(out)
    key = rows[0][0]
    f = write_gb18030(
        tmp_path / "连然街道_f.csv",
        header,
        [fill(header, rows[0], 缴费能力="缴费能力一般", 调查日期="20260415")],
    )
    assert runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)]).exit_code == 0
    # the module's refresh used another key file: give this one the same persons by re-running here
    src = write_tiny_sources(tmp_path / "src")
    nxt = tmp_path / "next"
    res = runner.invoke(
        app, ["-q", "refresh", str(src), "--out", str(nxt), "--as-of", "2027-03-01", "--previous", str(out)]
    )
    assert res.exit_code == 0, res.stderr
    p = pl.read_parquet(nxt / "persons.parquet").filter(pl.col("id_number") == ZHANG)
    assert p["ability_to_pay"].to_list() == ["缴费能力一般"]
    assert p["surveyed_on"].to_list() == [date(2026, 4, 15)]
    assert key  # the key may differ between key files; --previous joins on the ID number


# ---------------------------------------------------------------- errors


def test_missing_registry_folder(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("编号,缴费能力\nPAAAAAAAAAAAAAAA,有缴费能力\n", encoding="utf-8")
    res = runner.invoke(app, ["survey", "import", str(f), "--registry", str(tmp_path / "nope")])
    assert res.exit_code == 1
    assert "no such folder" in res.stderr and "Traceback" not in res.stderr


def test_registry_without_persons(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("编号,缴费能力\nPAAAAAAAAAAAAAAA,有缴费能力\n", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["survey", "import", str(f), "--registry", str(tmp_path / "empty")])
    assert res.exit_code == 1
    assert "no persons.parquet" in res.stderr


def test_file_without_key_column_or_missing(out, tmp_path):
    f = tmp_path / "wrong.csv"
    f.write_text(f"身份证号,缴费能力\n{ZHANG},有缴费能力\n", encoding="utf-8")
    res = runner.invoke(app, ["survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 1
    assert "wrong.csv" in res.stderr and "编号" in res.stderr
    assert_no_full_id(res.stdout + res.stderr)
    res = runner.invoke(app, ["survey", "import", str(tmp_path / "gone.csv"), "--registry", str(out)])
    assert res.exit_code == 1 and "gone.csv" in res.stderr and "no such file" in res.stderr


def test_unreadable_workbook(out, tmp_path):
    f = tmp_path / "坏.xlsx"
    f.write_bytes(b"PK\x03\x04 not a workbook")
    res = runner.invoke(app, ["survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 1
    assert "坏.xlsx" in res.stderr and "cannot be read" in res.stderr


def test_help_has_example():
    res = runner.invoke(app, ["survey", "import", "--help"])
    assert res.exit_code == 0
    assert "Example: kuomian survey import" in res.stdout


def _fill_workbook(src: Path, dst: Path, answers: dict[str, dict[str, str]]) -> Path:
    """The refresh's own hand-off workbook filled in as a street office does, sheet by sheet
    (``answers``: sheet name -> {header: value}, written on the first person's row)."""
    from openpyxl import load_workbook

    wb = load_workbook(src)
    for sheet, values in answers.items():
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        for h, v in values.items():
            ws.cell(row=2, column=header.index(h) + 1, value=v)
    wb.save(dst)
    return dst


def test_answers_typed_into_a_community_sheet_are_read(out, tmp_path):
    (book,) = (out / "handoff").glob(f"{STREET}_*.xlsx")
    from openpyxl import load_workbook

    sheets = load_workbook(book, read_only=True).sheetnames
    assert len(sheets) == 2 and sheets[1] == "金湖社区", sheets  # the street's sheet, then one per community
    key = handoff_rows(out)[1][0][0]
    f = _fill_workbook(
        book, tmp_path / book.name, {"金湖社区": {"缴费能力": "有缴费能力", "未参保原因": "年龄偏大"}}
    )
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 0, res.stderr
    assert "applied 1" in res.stdout
    got = survey_of(pl.read_parquet(out / "persons.parquet"), key)
    assert (got["ability_to_pay"], got["reason_not_enrolled"]) == ("有缴费能力", "年龄偏大")


def test_one_person_answered_differently_in_two_sheets_is_a_conflict(out, tmp_path):
    (book,) = (out / "handoff").glob(f"{STREET}_*.xlsx")
    key = handoff_rows(out)[1][0][0]
    f = _fill_workbook(
        book, tmp_path / book.name,
        {"入户调查": {"缴费能力": "有缴费能力"}, "金湖社区": {"缴费能力": "无缴费能力"}},
    )  # fmt: skip
    res = runner.invoke(app, ["-q", "survey", "import", str(f), "--registry", str(out)])
    assert res.exit_code == 1
    assert "入户调查" in res.stdout + res.stderr and "金湖社区" in res.stdout + res.stderr
    assert survey_of(pl.read_parquet(out / "persons.parquet"), key)["ability_to_pay"] is None
