"""Files as departments send them, written by LibreOffice (tests/fixtures/office/, see its README):
every sheet read with its header row found under title rows and merged group headers, .ods /
.xls / .xlsx alike; rows numbered as the user sees them; footers quarantined with their reason;
number cells in ID columns never taken for full IDs; the damage guard; unreadable office files."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import fastexcel
import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.run import refresh
from kuomian.core.config import load_sources
from kuomian.core.errors import KuomianError
from kuomian.readers import NUMERIC_ID_COL, FileInfo
from kuomian.stages.load import load, load_file
from tests.conftest import assert_no_full_id

HERE = Path(__file__).parent / "fixtures" / "office"
WORLD = HERE / "world"
AS_OF = date(2026, 3, 1)
runner = CliRunner()
TRUTH = json.loads((HERE / "truth.json").read_text("utf-8"))
FILES = {"户籍人口.ods": "household", "参保信息.xls": "enrollment", "低保低收入人口.xlsx": "lowincome"}


def raw_grid(path: Path, sheet: str) -> list[list[str]]:
    """The sheet as a person sees it (row 1 first), read independently of the loader."""
    df = fastexcel.read_excel(str(path)).load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
    return [["" if v is None else str(v).strip() for v in r] for r in df.to_polars().rows()]


def float_expansion(id18: str) -> str:
    return str(int(float(int(id18))))


@pytest.fixture(scope="module")
def loaded():
    sources = load_sources()
    out = {}
    for name, src in FILES.items():
        info = FileInfo(WORLD / name, src, "glob")
        out[name] = (load_file(WORLD / name, sources[src], info), info)
    return out


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    out = tmp_path_factory.mktemp("office") / "out"
    res = refresh(WORLD, out, as_of=AS_OF)
    return out, res


def test_every_sheet_with_a_header_is_read_and_the_others_are_listed(loaded):
    df, info = loaded["户籍人口.ods"]
    assert info.format == "ods"
    read = {s.name: s for s in info.sheets if s.skipped is None}
    skipped = {s.name: s.skipped for s in info.sheets if s.skipped}
    assert list(read) == ["连然街道", "金方街道", "八街街道"]
    assert set(skipped) == {"填表说明", "Sheet5"} and skipped["Sheet5"] == "empty"
    # title row, 填报单位 row and the merged group-header row are above the header: row 4
    assert {s.header_row for s in read.values()} == {4}
    assert set(df["sheet"].unique()) == set(read)
    # the group headers did not hide the column names; 姓名, merged over two rows, was found
    assert {"id_number", "name", "sex", "birth_date", "hukou_type", "street", "community"} <= set(
        info.columns.values()
    )
    for name, want_fmt, header_row in (("参保信息.xls", "xls", 2), ("低保低收入人口.xlsx", "xlsx", 4)):
        d, inf = loaded[name]
        assert inf.format == want_fmt
        assert [s.header_row for s in inf.sheets] == [header_row, header_row]
        assert d["sheet"].n_unique() == 2


def test_row_numbers_are_the_rows_the_user_sees(loaded):
    """Each loaded row's (sheet, row) points at the cell holding its name in the real file."""
    for name, (df, info) in loaded.items():
        for s in info.sheets:
            if s.skipped:
                continue
            grid = raw_grid(WORLD / name, s.name)
            # 姓名 is in the header row, or in the row above when merged over two header rows
            name_col = next(
                j
                for r in (grid[s.header_row - 1], grid[s.header_row - 2])
                for j, h in enumerate(r)
                if h == "姓名"
            )
            part = df.filter(pl.col("sheet") == s.name)
            for row, person in part.select("row", "name").iter_rows():
                assert grid[row - 1][name_col] == (person or ""), (name, s.name, row)
            # every row below the header is loaded: none lost, none invented
            assert part["row"].to_list() == list(range(s.header_row + 1, len(grid) + 1))


def test_number_cells_in_id_columns_are_flagged_in_every_format(loaded):
    hh, _ = loaded["户籍人口.ods"]
    numeric_names = {t["name"] for t in TRUTH if t["household_numeric"]}
    assert set(hh.filter(pl.col(NUMERIC_ID_COL))["name"]) == numeric_names
    en, _ = loaded["参保信息.xls"]
    assert set(en.filter(pl.col(NUMERIC_ID_COL))["name"]) == {
        t["name"] for t in TRUTH if t.get("enrolled_numeric")
    }
    lo, _ = loaded["低保低收入人口.xlsx"]
    assert lo[NUMERIC_ID_COL].sum() == 1
    # a text ID is never flagged
    text_ids = {t["id"] for t in TRUTH}
    for df in (hh, en, lo):
        assert not df.filter(pl.col("id_number").is_in(list(text_ids)) & pl.col(NUMERIC_ID_COL)).height


def test_refresh_accounts_for_every_row_of_every_sheet(published, loaded):
    out, res = published
    recon = pl.read_csv(out / "reconciliation.csv", infer_schema=False)
    read = recon.filter(pl.col("说明") == "")
    assert read["是否平衡"].to_list() == ["true"] * read.height
    for name, (_df, info) in loaded.items():
        for s in info.sheets:
            r = recon.filter((pl.col("文件") == name) & (pl.col("工作表") == s.name))
            assert r.height == 1, (name, s.name)
            if s.skipped:
                assert r["说明"][0] == s.skipped and r["读取行数"][0] == "0"
            else:
                grid = raw_grid(WORLD / name, s.name)
                assert int(r["读取行数"][0]) == len(grid) - s.header_row  # every row below the header
    assert recon.filter(pl.col("文件") == "说明.pdf")["说明"][0].startswith("not an extract")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    inputs = {f["file"]: f for f in manifest["inputs"]}
    assert inputs["说明.pdf"]["recognised_by"] == "ignored"
    assert {s["sheet"] for s in inputs["户籍人口.ods"]["sheets"] if "skipped" in s} == {"填表说明", "Sheet5"}
    links = pl.read_parquet(out / "links.parquet")
    assert links.height == sum(df.height for df, _ in loaded.values())
    assert links.select("source", "file", "sheet", "row").is_duplicated().sum() == 0


def test_footers_are_quarantined_with_their_reason(published):
    out, _ = published
    q = pl.read_parquet(out / "quarantine.parquet")
    for sheet in ("连然街道", "金方街道", "八街街道"):
        grid = raw_grid(WORLD / "户籍人口.ods", sheet)
        rows = {r: reason for s, r, reason in q.select("sheet", "row", "reason").iter_rows() if s == sheet}
        total = next(i + 1 for i, r in enumerate(grid) if r and r[0] == "合计")
        footer = next(i + 1 for i, r in enumerate(grid) if r and r[0].startswith("制表人"))
        assert rows[total] == "total_row" and rows[footer] == "footer_row"
        assert rows[total + 1] == "empty_row"
    persons = pl.read_parquet(out / "persons.parquet")
    assert not persons.filter(pl.col("name").str.contains("合计|制表人|审核人|填报")).height


def test_number_cell_ids_never_become_persons_with_invented_ids(published):
    out, _ = published
    persons = pl.read_parquet(out / "persons.parquet")
    text_ids = {t["id"] for t in TRUTH if not t["household_numeric"]}
    assert set(persons["id_number"]) == text_ids  # the household's text IDs, nothing else
    invented = {float_expansion(t["id"]) for t in TRUTH} - {t["id"] for t in TRUTH}
    assert any(len(i) == 18 for i in invented)  # the fixture holds the trap: expansions that look like IDs
    links = pl.read_parquet(out / "links.parquet")
    assert not links.filter(pl.col("id_number").is_in(list(invented))).height
    # the household rows whose ID is a number are quarantined (the base needs a full ID) ...
    q = pl.read_parquet(out / "quarantine.parquet").filter(pl.col("source") == "household")
    assert (q["reason"] == "base_id_unusable").sum() == sum(t["household_numeric"] for t in TRUTH)
    # ... and a number-cell enrolment row of a known person is matched by the Excel-damaged rule
    key = dict(persons.select("id_number", "person_key").iter_rows())
    by_name = {t["name"]: t for t in TRUTH}
    excel = links.filter(pl.col("match_rule") == "excel_id")
    assert excel.height >= 1
    for sheet, row, pk in excel.select("sheet", "row", "person_key").iter_rows():
        src = "参保信息.xls" if sheet.endswith("养老保险") else "低保低收入人口.xlsx"
        grid = raw_grid(WORLD / src, sheet)
        name = next(c for c in grid[row - 1] if c in by_name)
        assert pk == key[by_name[name]["id"]]


def test_report_warns_and_never_says_all_balanced_while_a_warning_stands(published):
    out, res = published
    # the fixture has three of nine streets: six household streets with no rows
    assert len(res.warnings) == 6 and all("no household rows" in w for w in res.warnings)
    html = (out / "report.html").read_text("utf-8")
    assert "全部平衡" not in html and "6条警告" in html
    assert html.count("<p class='bad'>警告:") == 6
    assert "填表说明" in html and "说明.pdf" in html  # skipped sheets and ignored files are listed
    assert_no_full_id(html)


def _sources_with(tmp_path: Path, *extra: Path) -> Path:
    src = tmp_path / "sources"
    shutil.copytree(WORLD, src)
    for p in extra:
        shutil.copy(p, src / p.name)
    return src


def test_damage_guard_stops_before_publishing(tmp_path):
    src = _sources_with(tmp_path, HERE / "damaged" / "户籍人口_草铺.xls")
    out = tmp_path / "out"
    res = runner.invoke(app, ["-q", "refresh", str(src), "--out", str(out), "--as-of", "2026-03-01"])
    assert res.exit_code == 1, res.stderr
    msg = res.stderr.strip()
    assert msg.count("\n") == 0 and "Traceback" not in msg  # one line
    for word in ("户籍人口_草铺.xls", "'草铺街道'", "60 of 60 rows (100%)", "stored as numbers", "Text",
                 "--accept-damaged-ids", "household"):  # fmt: skip
        assert word in msg, (word, msg)
    assert not out.exists()
    assert_no_full_id(msg)


def test_accept_damaged_ids_publishes_with_a_red_warning(tmp_path):
    src = _sources_with(tmp_path, HERE / "damaged" / "户籍人口_草铺.xls")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["refresh", str(src), "--out", str(out), "--as-of", "2026-03-01", "--accept-damaged-ids"],
        color=True,
    )
    assert res.exit_code == 0, res.stderr
    assert "\x1b[31m  WARNING: ID damage accepted" in res.stdout  # red
    html = (out / "report.html").read_text("utf-8")
    assert "<p class='bad'>警告: ID damage accepted" in html and "全部平衡" not in html
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["settings"]["accept_damaged_ids"] is True
    # the damaged street's rows are quarantined, none became a person
    persons = pl.read_parquet(out / "persons.parquet")
    assert not persons.filter(pl.col("street_name") == "草铺街道").height


@pytest.mark.parametrize("name", ["户籍人口_青龙.et", "参保信息_2.numbers", "户籍人口.docx"])
def test_unreadable_office_file_named_like_a_source_stops_the_run(tmp_path, name):
    src = _sources_with(tmp_path)
    (src / name).write_bytes(b"\xd0\xcf\x11\xe0 not readable here")
    res = runner.invoke(app, ["-q", "validate", str(src)])
    assert res.exit_code == 1
    assert name in res.stderr and "save it as .xlsx" in res.stderr
    with pytest.raises(KuomianError, match="save it as .xlsx"):
        load(src)


def test_other_files_are_listed_as_ignored(tmp_path):
    src = _sources_with(tmp_path)
    (src / "会议纪要.docx").write_bytes(b"PK\x03\x04")
    (src / "照片.png").write_bytes(b"\x89PNG")
    lr = load(src)
    how = {f.name: (f.how, f.problem) for f in lr.files}
    assert how["会议纪要.docx"] == ("ignored", "not an extract (Word file)")
    assert how["照片.png"][0] == "ignored"
    res = runner.invoke(app, ["-q", "validate", str(src)])
    assert res.exit_code == 0
    assert "会议纪要.docx: ignored" in res.stdout and "照片.png: ignored" in res.stdout
    assert "sheet '填表说明': skipped" in res.stdout


def test_check_reads_a_multi_sheet_list_and_names_sheet_and_row(published, tmp_path):
    out, _ = published
    result = tmp_path / "结果.xlsx"
    res = runner.invoke(
        app, ["-q", "check", str(WORLD / "参保信息.xls"), "--registry", str(out), "--out", str(result)]
    )
    assert res.exit_code == 0, res.stderr
    df = fastexcel.read_excel(str(result)).load_sheet(0, dtypes="string").to_polars()
    assert {"工作表", "行号", "匹配结果"} <= set(df.columns)
    assert set(df["工作表"]) == {"企业职工基本养老保险", "城乡居民基本养老保险"}
    for sheet, row, name in df.select("工作表", "行号", "姓名").iter_rows():
        grid = raw_grid(WORLD / "参保信息.xls", sheet)
        assert grid[int(row) - 1][2] == (name or "")


def test_a_file_named_like_no_source_is_recognised_by_a_header_below_title_rows(tmp_path):
    src = tmp_path / "sources"
    src.mkdir()
    shutil.copy(WORLD / "户籍人口.ods", src / "2026年1月.ods")
    shutil.copy(WORLD / "参保信息.xls", src / "人社局导出.xls")
    lr = load(src)
    how = {f.name: (f.source, f.how) for f in lr.files}
    assert how == {"2026年1月.ods": ("household", "headers"), "人社局导出.xls": ("enrollment", "headers")}


def test_review_and_survey_readers_find_the_header_under_title_rows(tmp_path):
    """read_any(path, wanted): the sheet and row holding the expected headers, rows numbered as shown."""
    import xlsxwriter

    from kuomian.readers import ROW_COL, read_any

    path = tmp_path / "走访.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("说明").write_string(0, 0, "请填写缴费能力和参保意愿")
    ws = wb.add_worksheet("连然街道")
    ws.write_row(0, 0, ["连然街道扩面对象走访表"])
    ws.write_row(1, 0, ["编号", "姓名", "缴费能力"])
    ws.write_row(2, 0, ["K1", "张三", "有"])
    ws.write_row(3, 0, ["K2", "李四", "无"])
    wb.close()
    header, body, fmt, _, sheet = read_any(path, {"编号", "缴费能力"})
    assert header == ["编号", "姓名", "缴费能力"] and sheet == 1 and fmt == "xlsx"
    assert body[ROW_COL].to_list() == [3, 4] and body["c0"].to_list() == ["K1", "K2"]


def test_number_cells_are_found_on_a_later_sheet_with_empty_leading_columns(tmp_path):
    """The cell types are looked up in the right sheet part and column, whatever the sheet order
    and however far right the table starts (the reader drops empty leading columns)."""
    import xlsxwriter

    ids = [t["id"] for t in TRUTH[8:12]]
    path = tmp_path / "户籍人口.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("填表说明").write_string(0, 0, "身份证号请用文本格式")
    first = wb.add_worksheet("青龙街道")
    first.write_row(0, 0, ["公民身份号码", "姓名"])
    first.write_number(1, 0, int(ids[0]))  # a number in column A of another sheet: not this one's
    first.write_string(1, 1, "甲")
    ws = wb.add_worksheet("温泉街道")
    ws.write_string(0, 2, "温泉街道户籍人口")
    ws.write_row(2, 2, ["姓名", "公民身份号码"])  # the table starts in column C, header in row 3
    ws.write_row(3, 2, ["乙", ids[1]])
    ws.write_string(4, 2, "丙")
    ws.write_number(4, 3, int(ids[2]))
    ws.write_row(5, 2, ["丁", ids[3]])
    wb.close()
    df = load_file(path, load_sources()["household"], FileInfo(path, "household", "glob"))
    flagged = df.filter(pl.col(NUMERIC_ID_COL)).select("sheet", "row", "name").rows()
    assert sorted(flagged) == [("温泉街道", 5, "丙"), ("青龙街道", 2, "甲")]
    assert df.filter(pl.col("sheet") == "温泉街道")["row"].to_list() == [4, 5, 6]


def test_a_chart_sheet_is_skipped_and_listed(tmp_path, capfd):
    import xlsxwriter

    path = tmp_path / "户籍人口.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("连然街道")
    ws.write_row(0, 0, ["公民身份号码", "姓名", "人数"])
    ws.write_row(1, 0, [TRUTH[7]["id"], TRUTH[7]["name"], 1])
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"values": "=连然街道!$C$2:$C$2"})
    wb.add_chartsheet("统计图").set_chart(chart)
    wb.close()
    info = FileInfo(path, "household", "glob")
    df = load_file(path, load_sources()["household"], info)
    assert df.height == 1
    assert [(s.name, s.skipped) for s in info.sheets] == [("连然街道", None), ("统计图", "a chart")]
    assert capfd.readouterr().err == ""  # the reader was not asked for the chart (it would complain)
