"""Files as departments really send them, round 2 (issue 19 items 1–3), on fixtures written by
LibreOffice (tests/fixtures/office/shapes/, see its README): merged 社区 / 户号 cells in .xlsx,
.xls and .ods; LibreOffice's HTML export and its "MS Excel 2003 XML" export, both named .xls;
tab-separated text in UTF-8 and UTF-16; a GB18030 CSV with CRLF and a trailing Ctrl-Z; IDs
written ="…". Each gives exactly the persons of the tidy file. Then the folder rules: only the
files directly in SOURCES_DIR are read; subfolders, what is not a regular file and copies are
listed, never read (never opened)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import date
from pathlib import Path

import fastexcel
import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.run import refresh
from kuomian.core.config import load_sources
from kuomian.core.errors import FileProblem
from kuomian.readers import NUMERIC_ID_COL, FileInfo, read_any
from kuomian.readers.biff import xls_merges
from kuomian.readers.sniff import real_format
from kuomian.stages.load import load, load_file
from tests.conftest import ZHANG, assert_no_full_id, make_id

OFFICE = Path(__file__).parent / "fixtures" / "office"
SHAPES = OFFICE / "shapes"
TIDY = SHAPES / "户籍人口_整齐.xlsx"
PERSON = ["id_number", "name", "sex", "household_no", "street", "community"]
runner = CliRunner()

# file -> (what it really is, encoding)
SHAPED = {
    "户籍人口_合并.xlsx": ("xlsx", ""),
    "户籍人口_合并.xls": ("xls", ""),
    "户籍人口_合并.ods": ("ods", ""),
    "户籍人口_网页.xls": ("html", "utf-8"),
    "户籍人口_2003.xls": ("xml", "utf-8"),
    "户籍人口_utf8.tsv": ("csv", "utf-8"),
    "户籍人口_unicode.txt": ("csv", "utf-16"),
    "户籍人口_gb18030.csv": ("csv", "gb18030"),
    "户籍人口_公式.csv": ("csv", "utf-8-sig"),
}


def persons_of(path: Path) -> tuple[pl.DataFrame, FileInfo]:
    info = FileInfo(path, "household", "glob")
    df = load_file(path, load_sources()["household"], info)
    return df.filter(pl.col("id_number").is_not_null()).select(PERSON), info


@pytest.fixture(scope="module")
def tidy() -> pl.DataFrame:
    df, _ = persons_of(TIDY)
    assert df.height == 30 and df["community"].n_unique() == 3 and df["community"].null_count() == 0
    return df


@pytest.mark.parametrize("name", list(SHAPED))
def test_every_shape_gives_the_persons_of_the_tidy_file(name, tidy):
    df, info = persons_of(SHAPES / name)
    assert (info.format, info.encoding) == SHAPED[name]
    assert df.equals(tidy), (name, df.join(tidy, on=PERSON, how="anti"))


def test_the_merged_fixtures_really_hold_the_value_in_the_top_cell_only():
    """Without the merge ranges the reader gives blanks: the fixtures test what they claim."""
    for name in ("户籍人口_合并.xlsx", "户籍人口_合并.xls", "户籍人口_合并.ods"):
        grid = fastexcel.read_excel(str(SHAPES / name)).load_sheet(0, header_row=None, dtypes="string")
        community = grid.to_polars().to_series(6).to_list()[2:]
        assert community[0] == "金川社区" and community.count(None) == 27, name  # 3 of 30 filled
    assert b"rowspan=12" in (SHAPES / "户籍人口_网页.xls").read_bytes()
    assert b'ss:MergeDown="11"' in (SHAPES / "户籍人口_2003.xls").read_bytes()


def test_xls_merged_ranges_come_from_the_mergedcells_records():
    merges = xls_merges(SHAPES / "户籍人口_合并.xls")
    ranges = merges["连然街道"]
    assert (0, 0, 0, 6) in ranges  # the title across A1:G1
    assert (2, 6, 13, 6) in ranges  # 金川社区, rows 3-14 of column G
    assert sum(1 for r0, c0, r1, c1 in ranges if c0 == c1 == 6) == 3


def test_a_damaged_xls_gives_no_merges_and_never_an_exception(tmp_path):
    """Cut short anywhere, or with bytes changed (header, FAT, directory, records): a dict back,
    quickly (chains are followed at most once per sector)."""
    import random
    import time

    good = (SHAPES / "户籍人口_合并.xls").read_bytes()
    rnd = random.Random(19)
    variants = [good[:n] for n in (0, 8, 100, 511, 512, 1024, 4096, len(good) - 1)]
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rnd.choice((1, 4, 32))):
            k = rnd.randrange(len(data))
            data[k] = rnd.randrange(256)
        variants.append(bytes(data))
    loop = bytearray(good)  # a FAT whose chains point at themselves
    loop[0x30:0x34] = (0).to_bytes(4, "little")
    variants.append(bytes(loop))
    bad = tmp_path / "bad.xls"
    t0 = time.monotonic()
    for v in variants:
        bad.write_bytes(v)
        assert isinstance(xls_merges(bad), dict)
    assert time.monotonic() - t0 < 30


def test_the_real_format_comes_from_the_first_bytes(tmp_path):
    for name, (fmt, _) in SHAPED.items():
        assert real_format(SHAPES / name) == fmt, name
    csv_xls = tmp_path / "户籍人口.xls"
    csv_xls.write_text(f"公民身份号码,姓名,街道\n{ZHANG},张伟,连然街道\n", "gb18030")
    assert real_format(csv_xls) == "csv"
    df, info = persons_of(csv_xls)
    assert info.format == "csv" and df["name"].to_list() == ["张伟"]
    renamed = tmp_path / "户籍人口.xls"
    shutil.copy(TIDY, renamed)  # an .xlsx named .xls
    df, info = persons_of(renamed)
    assert info.format == "xlsx" and df.height == 30


GOV_HTML = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>导出</title></head><body>
<table border="1">
<tr><td colspan="5" align="center"><b>安宁市连然街道户籍人口花名册</b></td></tr>
<tr><td colspan="3">填报单位:连然派出所</td><td colspan="2">导出日期:2026-01-05</td></tr>
<tr><th>姓名</th><th>公民身份号码</th><th>性别</th><th>街道</th><th>社区</th></tr>
<tr><td>张伟</td><td>{a}</td><td>男</td><td rowspan="3">连然街道</td><td rowspan="2">金湖社区</td></tr>
<tr><td>李娜&nbsp;</td><td>{b}</td><td>女</td></tr>
<tr><td>王&amp;明</td><td>{c}</td><td>男</td><td>百花社区</td></tr>
<tr><td colspan="5">合计:3人</td></tr>
</table></body></html>"""


def test_a_government_web_export_html_named_xls(tmp_path):
    """GB2312 declared, a colspan title and 填报单位 row, a <th> header, rowspan over 街道 / 社区."""
    ids = [ZHANG, make_id("53012319850212004"), make_id("53018120120501005")]
    path = tmp_path / "户籍人口_连然.xls"
    path.write_bytes(GOV_HTML.format(a=ids[0], b=ids[1], c=ids[2]).encode("gb18030"))
    info = FileInfo(path, "household", "glob")
    df = load_file(path, load_sources()["household"], info)
    assert (info.format, info.encoding) == ("html", "gb18030")
    assert info.sheets[0].header_row == 3
    rows = df.select("row", "id_number", "name", "street", "community").rows()
    assert rows[:3] == [
        (4, ids[0], "张伟", "连然街道", "金湖社区"),
        (5, ids[1], "李娜", "连然街道", "金湖社区"),
        (6, ids[2], "王&明", "连然街道", "百花社区"),
    ]
    assert rows[3] == (7, None, "合计:3人", None, None)  # read as it is: standardise quarantines it


def test_html_and_xml_are_bounded_and_refuse_entities(tmp_path):
    huge = tmp_path / "户籍人口.html"
    huge.write_text('<table><tr><td rowspan="9999999">x</td><td colspan="900">y</td></tr></table>', "utf-8")
    with pytest.raises(FileProblem, match="far more than it holds|more than"):
        load_file(huge, load_sources()["household"], FileInfo(huge, "household", "glob"))
    bomb = tmp_path / "户籍人口.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet/></Workbook>',
        "utf-8",
    )
    assert real_format(bomb) == "xml"
    with pytest.raises(FileProblem, match="DOCTYPE") as e:
        load_file(bomb, load_sources()["household"], FileInfo(bomb, "household", "glob"))
    assert "\n" not in str(e.value)


def test_spreadsheetml_number_cells_are_flagged_and_index_skips(tmp_path):
    path = tmp_path / "户籍人口.xml"
    path.write_text(
        '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="连然街道"><Table>'
        '<Row><Cell><Data ss:Type="String">公民身份号码</Data></Cell><Cell><Data ss:Type="String">姓名</Data></Cell>'
        '<Cell ss:Index="4"><Data ss:Type="String">社区</Data></Cell></Row>'
        f'<Row><Cell><Data ss:Type="String">{ZHANG}</Data></Cell><Cell><Data ss:Type="String">张伟</Data></Cell>'
        '<Cell ss:Index="4"><Data ss:Type="String">金湖社区</Data></Cell></Row>'
        '<Row ss:Index="4"><Cell><Data ss:Type="Number">5.30181199001071E+17</Data></Cell>'
        '<Cell><Data ss:Type="String">李娜</Data></Cell></Row>'
        "</Table></Worksheet></Workbook>",
        "utf-8",
    )
    df = load_file(path, load_sources()["household"], FileInfo(path, "household", "glob"))
    assert df.select("sheet", "row", "name", "community", NUMERIC_ID_COL).rows() == [
        ("连然街道", 2, "张伟", "金湖社区", False),
        ("连然街道", 3, None, None, False),
        ("连然街道", 4, "李娜", None, True),
    ]


def test_read_any_reads_a_tab_separated_utf16_list(tmp_path):
    path = tmp_path / "走访.txt"
    path.write_bytes("\ufeff编号\t缴费能力\r\nK1\t有\r\n".encode("utf-16-le"))
    header, body, fmt, enc, _ = read_any(path, {"编号", "缴费能力"})
    assert header == ["编号", "缴费能力"] and body["c1"].to_list() == ["有"] and enc == "utf-16"


# ---------------------------------------------------------------- only SOURCES_DIR's own files


def _folder(tmp_path: Path) -> Path:
    src = tmp_path / "sources"
    src.mkdir()
    shutil.copy(TIDY, src / "户籍人口.xlsx")
    shutil.copy(OFFICE / "world" / "参保信息.xls", src / "参保信息.xls")
    return src


def test_a_subfolder_is_listed_and_not_read(tmp_path):
    src = _folder(tmp_path)
    backup = src / "2025备份"
    backup.mkdir()
    shutil.copy(SHAPES / "户籍人口_合并.xls", backup / "户籍人口_2025.xls")
    (src / "旧").mkdir()
    (src / "户籍人口_青龙.xlsx").mkdir()  # a folder named like a source
    lr = load(src)
    assert lr.rows_by_source["household"] == 30  # the tidy file's rows only
    by = {f.name: f for f in lr.files}
    assert by["2025备份/"].how == "not read" and "subfolder" in (by["2025备份/"].problem or "")
    assert by["旧/"].how == "not read" and by["户籍人口_青龙.xlsx/"].how == "not read"
    assert not any("2025" in f.name and f.source for f in lr.files)
    res = runner.invoke(app, ["-q", "validate", str(src)])
    assert res.exit_code == 0, res.stderr
    assert "2025备份/: not read — a subfolder" in res.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_named_like_a_source_is_listed_and_never_opened(tmp_path):
    src = _folder(tmp_path)
    os.mkfifo(src / "户籍人口_青龙.csv")  # opening it for reading would block for ever
    os.symlink(src / "户籍人口_青龙.csv", src / "户籍人口_温泉.csv")  # a link to it, too
    done: dict = {}
    t = threading.Thread(target=lambda: done.update(lr=load(src)), daemon=True)
    t.start()
    t.join(60)
    assert "lr" in done, "load() blocked on a named pipe"
    by = {f.name: f for f in done["lr"].files}
    for name in ("户籍人口_青龙.csv", "户籍人口_温泉.csv"):
        assert by[name].how == "not read" and "named pipe" in (by[name].problem or ""), by[name]
    assert done["lr"].rows_by_source["household"] == 30


def test_a_copy_is_listed_as_a_copy_and_not_read(tmp_path):
    src = _folder(tmp_path)
    shutil.copy(TIDY, src / "户籍人口_副本.xlsx")
    lr = load(src)
    by = {f.name: f for f in lr.files}
    copy = by["户籍人口_副本.xlsx"]
    assert copy.how == "copy" and copy.problem == "a copy of 户籍人口.xlsx (the same content): not read"
    assert copy.sha256 == by["户籍人口.xlsx"].sha256 != ""
    assert lr.rows_by_source["household"] == 30


def test_refresh_lists_what_it_did_not_read_everywhere(tmp_path):
    src = _folder(tmp_path)
    (src / "2025备份").mkdir()
    shutil.copy(TIDY, src / "2025备份" / "户籍人口.xlsx")
    shutil.copy(TIDY, src / "户籍人口_副本.xlsx")
    out = tmp_path / "out"
    refresh(src, out, as_of=date(2026, 3, 1))
    recon = pl.read_csv(out / "reconciliation.csv", infer_schema=False)
    notes = dict(recon.select("文件", "说明").rows())
    assert notes["2025备份/"].startswith("a subfolder") and notes["户籍人口_副本.xlsx"].startswith(
        "a copy of"
    )
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    how = {f["file"]: f["recognised_by"] for f in manifest["inputs"]}
    assert how["2025备份/"] == "not read" and how["户籍人口_副本.xlsx"] == "copy"
    html = (out / "report.html").read_text("utf-8")
    assert "2025备份/" in html and "户籍人口_副本.xlsx" in html
    assert_no_full_id(html)


@pytest.mark.parametrize("name", ["户籍人口_网页.xls", "户籍人口_合并.xls"])
def test_refresh_publishes_the_same_persons_as_with_the_tidy_file(tmp_path, name):
    results = []
    for k, f in enumerate((TIDY, SHAPES / name)):
        src = tmp_path / f"s{k}"
        src.mkdir()
        shutil.copy(f, src / "户籍人口.xlsx" if f == TIDY else src / f.name)
        shutil.copy(OFFICE / "world" / "参保信息.xls", src / "参保信息.xls")
        refresh(src, tmp_path / f"o{k}", as_of=date(2026, 3, 1))
        p = pl.read_parquet(tmp_path / f"o{k}" / "persons.parquet")
        results.append(p.drop([c for c in p.columns if c in ("file", "sheet", "row")]).sort("id_number"))
    assert results[0].height == 30
    assert results[0].equals(results[1])


def test_the_damage_guard_names_the_shape_it_sees(tmp_path):
    """IDs kept as ="…" text in a workbook (pasted, not a formula): the guard names that shape and
    shows one masked example."""
    import xlsxwriter

    src = _folder(tmp_path)
    ids = [make_id(f"5301811980{k:07d}"[:17]) for k in range(1010101, 1010161)]
    wb = xlsxwriter.Workbook(str(src / "户籍人口_草铺.xlsx"))
    ws = wb.add_worksheet("草铺街道")
    ws.write_row(0, 0, ["公民身份号码", "姓名", "街道"])
    for k, pid in enumerate(ids, start=1):
        ws.write_string(k, 0, f'="{pid}"')
        ws.write_row(k, 1, [f"王{k}", "草铺街道"])
    wb.close()
    res = runner.invoke(
        app, ["-q", "refresh", str(src), "--out", str(tmp_path / "out"), "--as-of", "2026-03-01"]
    )
    assert res.exit_code == 1
    msg = res.stderr.strip()
    assert "\n" not in msg and "60 of 60 rows" in msg, msg
    assert 'text formulas ="…"' in msg and f'="{ids[0][:6]}' in msg and "--accept-damaged-ids" in msg, msg
    assert_no_full_id(msg)


def test_a_merged_header_spans_its_columns(tmp_path):
    """公民身份号码 merged over B:C, the IDs in C (B a narrow spacer): C is the ID column. When both
    columns hold data the header stays as it is (no guess)."""
    import openpyxl

    ids = [ZHANG, make_id("53012319850212004")]
    for both in (False, True):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "连然街道"
        ws.append(["姓名", "公民身份号码", None, "社区"])
        ws.merge_cells("B1:C1")
        for k, pid in enumerate(ids):
            ws.append(["张伟李娜"[2 * k : 2 * k + 2], "备" if both else None, pid, "金湖社区"])
        path = tmp_path / f"户籍人口_{both}.xlsx"
        wb.save(path)
        df = load_file(path, load_sources()["household"], FileInfo(path, "household", "glob"))
        if both:
            assert df["id_number"].to_list() == ["备", "备"]
            assert [json.loads(e) for e in df["_extra"]] == [{"列3": i} for i in ids]
        else:
            assert df["id_number"].to_list() == ids and df["name"].to_list() == ["张伟", "李娜"]
