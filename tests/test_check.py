"""``kuomian check`` (数据比对): any list against a published run."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.check import rule_labels
from tests.conftest import (
    ID15_RE,
    ID18_RE,
    LI,
    WANG,
    ZHANG,
    assert_no_full_id,
    make_id,
    publish_tiny,
)

runner = CliRunner()
STRANGER = make_id("53018119800101001")  # a valid ID of nobody in Anning's population
SWAPPED = ZHANG[:10] + ZHANG[11] + ZHANG[10] + ZHANG[12:]  # two neighbouring digits swapped

RULE = rule_labels()  # the labels of rules/matching.yaml, by rule name
# (序号, 姓名, 身份证号, 出生日期, expected 匹配结果, 参保状态, 重点群体, 所属街道, 是否在实名库)
MESSY = [
    ("1", "張偉", f"{ZHANG[:6]} {ZHANG[6:14]} {ZHANG[14:]}", "", RULE["exact_id"], "未参保", "第8类 其他应参未参人员", "连然街道", "是"),
    ("2", "张伟", ZHANG[:6] + ZHANG[8:17], "", RULE["upgraded_id"], "未参保", "第8类 其他应参未参人员", "连然街道", "是"),
    ("3", "王小明", WANG.lower(), "", RULE["exact_id"], "不纳入(未满16周岁)", "", "连然街道", "否"),
    ("4", "李娜", LI, "", RULE["exact_id"], "已参加职工养老", "", "连然街道", "否"),
    ("5", "赵六", STRANGER, "", "未匹配", "", "", "", "否"),
    ("6", "张伟", "", "1990-01-07", RULE["name_birth"], "未参保", "第8类 其他应参未参人员", "连然街道", "是"),
    ("7", "张 伟", SWAPPED, "", RULE["repaired_id"], "未参保",
     "第8类 其他应参未参人员", "连然街道", "是"),
    ("8", "王芳", LI, "", "待人工核实", "", "", "", ""),
    ("9", "陌生人", "不详", "", "未匹配", "", "", "", "否"),
]  # fmt: skip
assert WANG.endswith("X")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check_run")
    return publish_tiny(root)


def messy_csv(path: Path) -> Path:
    lines = ["序号,人员姓名,身份证号码,备注,出生日期"]
    for no, name, idv, born, *_ in MESSY:
        lines.append(f"{no},{name},{idv},来自民政,{born}")
    lines.append(",,,,")  # an empty line at the bottom, as exports have
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


def ids_in(text: str) -> set[str]:
    return {m.upper() for m in re.findall(ID18_RE, text)} | set(re.findall(ID15_RE, text))


def test_messy_list_csv(published, tmp_path):
    lst = messy_csv(tmp_path / "民政名单.csv")
    out = tmp_path / "结果.csv"
    res = runner.invoke(app, ["-q", "check", str(lst), "--registry", str(published), "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    assert_no_full_id(res.stdout + res.stderr)
    assert "checked 9 rows" in res.stdout and "未匹配: 2" in res.stdout and "待人工核实: 1" in res.stdout
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["序号", "人员姓名", "身份证号码", "备注", "出生日期",
                       "匹配结果", "参保状态", "重点群体", "所属街道", "是否在实名库"]  # fmt: skip
    body = rows[1:]
    assert len(body) == len(MESSY) + 1
    for got, (no, name, idv, born, *want) in zip(body, MESSY, strict=False):
        assert got[:5] == [no, name, idv, "来自民政", born], "the list's own cells are kept exactly"
        assert got[5:] == want, f"row {no}"
    assert body[-1] == [""] * 10
    # the result holds no ID that the list did not hold already
    assert ids_in(raw.decode("utf-8-sig")) <= ids_in(lst.read_bytes().decode("gbk"))
    assert (out.stat().st_mode & 0o077) == 0


def test_xlsx_list_to_xlsx_result_with_clashing_header(published, tmp_path):
    import fastexcel
    import xlsxwriter

    lst = tmp_path / "名单.xlsx"
    wb = xlsxwriter.Workbook(str(lst))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["姓名", "证件号码", "所属街道", "参保状态"])
    ws.write_row(1, 0, ["张伟", ZHANG, "连然街道", "不知道"])
    ws.write_row(2, 0, ["李娜", LI.lower(), "连然", ""])
    ws.write_row(3, 0, ["路人甲", STRANGER, "", ""])
    wb.close()
    out = tmp_path / "结果.xlsx"
    res = runner.invoke(app, ["-q", "check", str(lst), "--registry", str(published), "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    df = fastexcel.read_excel(str(out)).load_sheet(0, dtypes="string").to_polars()
    assert df.columns == ["姓名", "证件号码", "所属街道", "参保状态",
                          "匹配结果", "参保状态(比对)", "重点群体", "所属街道(比对)", "是否在实名库"]  # fmt: skip
    assert df["匹配结果"].to_list() == [RULE["exact_id"], RULE["exact_id"], "未匹配"]
    assert df["参保状态"].to_list()[0] == "不知道"
    assert df["参保状态(比对)"].to_list()[:2] == ["未参保", "已参加职工养老"]
    assert df["是否在实名库"].to_list() == ["是", "否", "否"]
    assert df["证件号码"].to_list()[1] == LI.lower()
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    valued = re.findall(r"<c ([^>]*)><v>", sheet)
    assert valued and all('t="s"' in attrs for attrs in valued), "every cell is a text cell"


def test_existing_result_needs_force(published, tmp_path):
    lst = messy_csv(tmp_path / "名单.csv")
    out = tmp_path / "r.csv"
    out.write_text("old", encoding="utf-8")
    res = runner.invoke(app, ["check", str(lst), "--registry", str(published), "--out", str(out)])
    assert res.exit_code == 3 and "--force" in res.stderr
    res = runner.invoke(
        app, ["-q", "check", str(lst), "--registry", str(published), "--out", str(out), "--force"]
    )
    assert res.exit_code == 0, res.stderr
    assert out.read_text("utf-8-sig").startswith("序号")


def test_unreadable_list_file(published, tmp_path):
    lst = tmp_path / "低保名单.xlsx"
    lst.write_bytes(b"PK\x03\x04 this is not a workbook")
    res = runner.invoke(
        app, ["check", str(lst), "--registry", str(published), "--out", str(tmp_path / "r.xlsx")]
    )
    assert res.exit_code == 1
    assert "低保名单.xlsx" in res.stderr and "cannot be read" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r.xlsx").exists()


def test_list_in_an_unknown_encoding(published, tmp_path):
    lst = tmp_path / "名单.csv"
    lst.write_bytes("姓名,身份证号\n张伟,x\n".encode("utf-16-le"))
    res = runner.invoke(
        app, ["check", str(lst), "--registry", str(published), "--out", str(tmp_path / "r.csv")]
    )
    assert res.exit_code == 1
    assert "名单.csv" in res.stderr and "Traceback" not in res.stderr


def test_list_without_name_column(published, tmp_path):
    lst = tmp_path / "名单.csv"
    lst.write_text(f"身份证号,备注\n{ZHANG},x\n", encoding="utf-8")
    res = runner.invoke(
        app, ["check", str(lst), "--registry", str(published), "--out", str(tmp_path / "r.csv")]
    )
    assert res.exit_code == 1
    assert "名单.csv" in res.stderr and "姓名" in res.stderr
    assert_no_full_id(res.stderr)


def test_missing_registry_folder(tmp_path):
    lst = messy_csv(tmp_path / "名单.csv")
    res = runner.invoke(
        app, ["check", str(lst), "--registry", str(tmp_path / "nope"), "--out", str(tmp_path / "r.csv")]
    )
    assert res.exit_code == 1
    assert "no such folder" in res.stderr and "--registry" in res.stderr


def test_bad_result_suffix(published, tmp_path):
    lst = messy_csv(tmp_path / "名单.csv")
    res = runner.invoke(
        app, ["check", str(lst), "--registry", str(published), "--out", str(tmp_path / "r.txt")]
    )
    assert res.exit_code == 1
    assert ".xlsx or .csv" in res.stderr


def test_help_has_example():
    res = runner.invoke(app, ["check", "--help"])
    assert res.exit_code == 0
    assert "Example: kuomian check" in res.stdout
