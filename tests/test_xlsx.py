"""Workbooks Excel opens cleanly (issue 23): every kind the tool writes passes ``openxml-audit``
with nothing to report, and the writer's cells read back as written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import fastexcel
import openpyxl
import polars as pl
import pytest
from openxml_audit import OpenXmlValidator
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.core.cells import CUT_MARK, MAX_CELL
from kuomian.core.xlsx import PrintSetup, Sheet, row_cells, write_workbook, write_xlsx

runner = CliRunner()


def audit(path: Path) -> list[str]:
    """Everything the validator reports (errors and warnings: Excel repairs or rewrites on either)."""
    result = OpenXmlValidator().validate(path)
    return [f"{e.severity.value}: {e.description} ({e.part_uri})" for e in result.errors]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A small demo (refresh and bulletin), then ``check`` on one of its lists into an .xlsx."""
    out = tmp_path_factory.mktemp("xlsx") / "demo"
    res = runner.invoke(app, ["-q", "demo", "--people", "500", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lst = next((out / "sources").glob("低保低收入人口.*"))  # a list as an office sends it
    result = out / "check_result.xlsx"
    res = runner.invoke(
        app, ["-q", "check", str(lst), "--registry", str(out / "registry"), "--out", str(result)]
    )
    assert res.exit_code == 0, res.output
    return out


def test_every_kind_of_workbook_passes_the_audit(demo):
    handoffs = sorted((demo / "registry" / "handoff").glob("*.xlsx"))
    assert handoffs
    kinds = [*handoffs, demo / "registry" / "review.xlsx", demo / "bulletin" / "bulletin.xlsx"]
    kinds.append(demo / "check_result.xlsx")
    for path in kinds:
        assert audit(path) == [], path.name


def test_the_old_writer_s_kind_of_file_is_caught(tmp_path):
    """The audit is not blind: a workbook without a theme and with inline strings is reported."""
    path = tmp_path / "a.xlsx"
    write_xlsx(path, pl.DataFrame({"姓名": ["张三"]}))
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            if item.filename != "xl/theme/theme1.xml":
                dst.writestr(item, src.read(item.filename))
    assert any("theme" in line for line in audit(bad))


def test_cells_read_back_as_written(tmp_path):
    long = "长" * (MAX_CELL + 10)
    df = pl.DataFrame(
        {
            "编号": ['=HYPERLINK("http://x")', "+1", "  前后有空格  ", "行一\n行二", "a\x01b", None, long],
            "年龄": [1, 2, None, 4, 5, 6, 7],
            "身份证号": ["530181********0031", "007", "", "1.5e3", "&<>\"'", "张三", "x"],
        }
    )
    path = tmp_path / "t.xlsx"
    assert write_xlsx(path, df, sheet_name="名单") == df.height
    assert audit(path) == []
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        shared = z.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet and "inlineStr" not in sheet  # text never a formula, all shared
    assert 'xml:space="preserve"' in shared
    got = fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()
    assert got.columns == df.columns
    col = got["编号"].to_list()
    assert col[:4] == ['=HYPERLINK("http://x")', "+1", "  前后有空格  ", "行一\n行二"]
    assert col[4] == "ab"  # a control character XML forbids is dropped
    assert col[5] is None
    assert len(col[6]) == MAX_CELL and col[6].endswith(CUT_MARK)
    assert got["身份证号"].to_list() == ["530181********0031", "007", None, "1.5e3", "&<>\"'", "张三", "x"]
    wb = openpyxl.load_workbook(path)
    ws = wb["名单"]
    assert ws["A2"].data_type == "s" and ws["C3"].value == "007" and ws["B2"].value == 1
    assert ws.freeze_panes == "A2"


def test_validations_by_name_and_print_setup(tmp_path):
    df = pl.DataFrame({"姓名": ["张三", "李四"], "社区": ["金湖社区", "金湖社区"], "参保意愿": ["", ""]})
    setup = PrintSetup(footer_left="连然街道", footer_center="金湖社区", wrap=frozenset({1}))
    sheets = [
        Sheet(
            "入户调查",
            df,
            {0: 10.0},
            freeze_cols=1,
            print_setup=setup,
            validations={"参保意愿": ["愿意", "不愿意"]},
        ),
        Sheet("金湖社区", df.head(1), validations={"参保意愿": ["愿意", '说"再想想"']}),
    ]
    path = tmp_path / "v.xlsx"
    write_workbook(path, sheets)
    assert audit(path) == []
    wb = openpyxl.load_workbook(path)
    first, second = wb.worksheets
    (dv,) = first.data_validations.dataValidation
    assert dv.type == "list" and dv.formula1 == '"愿意,不愿意"' and str(dv.sqref) == "C2:C3"
    (dv2,) = second.data_validations.dataValidation
    assert dv2.formula1 == '"愿意,说""再想想"""' and str(dv2.sqref) == "C2"
    assert first.freeze_panes == "B2" and first.print_title_rows == "$1:$1"
    assert first.page_setup.orientation == "landscape" and first.page_setup.paperSize == 9
    assert int(first.page_setup.fitToWidth) == 1 and int(first.page_setup.fitToHeight) == 0
    assert "连然街道" in first.oddFooter.left.text and "第 &P 页 共 &N 页" in first.oddFooter.right.text
    with pytest.raises(ValueError, match="does not have"):
        write_workbook(tmp_path / "x.xlsx", [Sheet("s", df, validations={"没有": ["a"]})])
    with pytest.raises(ValueError, match="255"):
        write_xlsx(tmp_path / "y.xlsx", df, validations={"姓名": ["很长的选项" * 10] * 10})


def test_rows_built_once_for_a_street_and_its_communities(tmp_path):
    """Sheets showing rows of one row_cells call (a street, then its communities) get exactly
    their own rows, each once rendered; a sheet with no rows and an independent sheet too."""
    df = pl.DataFrame(
        {"社区": ["甲", "乙", "甲", "乙"], "年龄": [1, None, 3, 4], "备注": ["x", None, "", "y"]}
    )
    cells = row_cells(df)
    sheets = [
        Sheet("全部", df, cells=cells),
        Sheet("乙", df[[3, 1]], cells=cells[[3, 1]]),  # any order, not the street's
        Sheet("甲", df[[0, 2]], cells=cells[[0, 2]]),
        Sheet("空", df.head(0)),
        Sheet("另一张", df.reverse()),
    ]
    path = tmp_path / "s.xlsx"
    write_workbook(path, sheets)
    assert audit(path) == []
    book = fastexcel.read_excel(path)
    want = [r for r in df.with_columns(pl.col("年龄").cast(pl.String)).rows()]
    want = [tuple(None if v == "" else v for v in r) for r in want]
    got = {n: book.load_sheet(n, dtypes="string").to_polars().rows() for n in book.sheet_names}
    assert got["全部"] == want
    assert got["乙"] == [want[3], want[1]] and got["甲"] == [want[0], want[2]]
    assert got["空"] == [] and got["另一张"] == want[::-1]
