"""Bounded reading (outputs.md "Bounded by design"): hostile inputs are refused before the heavy read
with one line naming the file (sheet, row); a Rust panic in a reader is one line too, never a
traceback or exit 70. The limits are data (rules/files.yaml ``limits``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from typer.testing import CliRunner

import kuomian.readers.bounds as bounds_mod
from kuomian.cli import app
from kuomian.core.config import load_sources
from kuomian.core.errors import FileProblem
from kuomian.readers import FileInfo, limits
from kuomian.stages.load import load, load_file

runner = CliRunner()
ID1 = "530181199005031235"
OFFICE = Path(__file__).parent / "fixtures" / "office" / "world"


@pytest.fixture(scope="module")
def household():
    return load_sources()["household"]


def read(path: Path, source) -> FileProblem:
    with pytest.raises(FileProblem) as exc:
        load_file(path, source, FileInfo(path, source.name, "glob"))
    msg = str(exc.value)
    assert msg.startswith(str(path)) and "\n" not in msg and ID1 not in msg
    return exc.value


def test_limits_are_data():
    lim = limits()
    assert lim["max_columns"] == 1000 and lim["max_cell_mb"] == 1
    assert {"max_unpacked_mb", "max_compression_ratio", "max_cells_per_byte"} <= set(lim)


def _xlsx_with_sheet_xml(path: Path, sheet_rows: bytes, repeat: int = 1) -> Path:
    """A minimal workbook whose sheet1.xml is ``sheet_rows`` repeated (a zip bomb when large)."""
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("户籍").write_row(0, 0, ["公民身份号码", "姓名"])
    wb.close()
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    head = b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for n, data in parts.items():
            if n != "xl/worksheets/sheet1.xml":
                z.writestr(n, data)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(head)
            for _ in range(repeat):
                fh.write(sheet_rows)
            fh.write(b"</sheetData></worksheet>")
    return path


def test_workbook_that_unpacks_far_past_its_size_is_refused(tmp_path, household):
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>y</t></is></c></row>' * 1000
    path = _xlsx_with_sheet_xml(tmp_path / "户籍人口.xlsx", row, repeat=300)  # ~25 MB in ~0.1 MB
    assert path.stat().st_size < 1 << 20
    e = read(path, household)
    assert "unpacks to" in e.problem and "times its size" in e.problem


def test_cells_spread_over_a_huge_grid_are_refused(tmp_path, household):
    rows = (
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>\xe5\xa7\x93\xe5\x90\x8d</t></is></c></row>'
        b'<row r="1000000"><c r="Z1000000" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    e = read(_xlsx_with_sheet_xml(tmp_path / "户籍人口.xlsx", rows), household)
    assert "1,000,000 rows × 26 columns" in e.problem and "sheet '户籍'" in e.problem


def test_row_with_more_than_1000_columns_is_refused_in_a_workbook(tmp_path, household):
    path = tmp_path / "户籍人口.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("连然街道")
    ws.write_row(0, 0, ["公民身份号码", "姓名"])
    ws.write_row(1, 0, [ID1, "张三"])
    ws.write_string(2, 1500, "x")
    wb.close()
    e = read(path, household)
    assert e.row == 3 and "sheet '连然街道'" in e.problem and "more than 1000 columns" in e.problem


def test_row_with_more_than_1000_columns_is_refused_in_a_csv(tmp_path, household):
    path = tmp_path / "户籍人口.csv"
    path.write_text(
        "公民身份号码,姓名," + ",".join(f"c{i}" for i in range(2000)) + f"\n{ID1},张三\n", "utf-8"
    )
    e = read(path, household)
    assert e.row == 1 and "2002 values" in e.problem


def test_cell_past_the_limit_is_refused_with_its_row(tmp_path, household, monkeypatch):
    path = tmp_path / "户籍人口.csv"
    path.write_text(f"公民身份号码,姓名\n{ID1},张三\n{ID1[:-1]}2,{'李' * 600_000}\n", "utf-8")  # 1.8 MB
    e = read(path, household)
    assert e.row == 3 and "1.7 MB of text (more than 1 MB)" in e.problem
    # in a workbook too (xlsxwriter caps a cell at 32,767 characters: lower the limit for the test)
    monkeypatch.setattr(bounds_mod, "limits", lambda: {**limits(), "max_cell_mb": 0.01})
    x = tmp_path / "户籍人口.xlsx"
    wb = xlsxwriter.Workbook(str(x))
    ws = wb.add_worksheet("金方街道")
    ws.write_row(0, 0, ["标题"])
    ws.write_row(1, 0, ["公民身份号码", "姓名"])
    ws.write_row(2, 0, [ID1, "张" * 20_000])
    wb.close()
    e = read(x, household)
    assert e.row == 3 and "sheet '金方街道'" in e.problem and "MB of text" in e.problem


def test_unterminated_quote_early_in_a_csv_names_its_row(tmp_path, household):
    path = tmp_path / "户籍人口.csv"
    rows = "".join(f"53018119900101{i:04d},李四\n" for i in range(50))
    path.write_text(f'公民身份号码,姓名\n{ID1},张三\n{ID1},"王五\n{rows}', "utf-8")
    e = read(path, household)
    assert e.row == 3 and "quote" in e.problem
    res = runner.invoke(app, ["-q", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "row 3" in res.stderr and "Traceback" not in res.stderr


def test_repeated_value_cells_in_an_ods_are_refused(tmp_path, household):
    src = OFFICE / "户籍人口.ods"
    path = tmp_path / "户籍人口.ods"
    with zipfile.ZipFile(src) as z:
        parts = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in parts:
            if info.filename == "content.xml":
                data = re.sub(
                    rb'<table:table-cell office:value-type="string"',
                    b'<table:table-cell table:number-columns-repeated="16000" office:value-type="string"',
                    data,
                    count=1,
                )
            z.writestr(info, data)
    e = read(path, household)
    assert "16,000 columns" in e.problem


class FakePanic(BaseException):
    """What pyo3 raises for a Rust panic: not an Exception."""


def test_a_panic_in_the_workbook_reader_is_one_line(tmp_path, household, monkeypatch):
    import fastexcel

    def panics(*a, **k):
        raise FakePanic("called `Option::unwrap()` on a `None` value")

    shutil.copy(OFFICE / "低保低收入人口.xlsx", tmp_path / "户籍人口.xlsx")
    monkeypatch.setattr(fastexcel, "read_excel", panics)
    e = read(tmp_path / "户籍人口.xlsx", household)
    assert "FakePanic" in e.problem and "cannot be read" in e.problem
    # through the whole loader and the CLI: exit 1 and one line, not 70
    (tmp_path / "参保信息.csv").write_text(
        f"身份证号码,姓名,险种,参保状态\n{ID1},张三,居民养老,参保缴费\n", "utf-8"
    )
    with pytest.raises(FileProblem):
        load(tmp_path)
    res = runner.invoke(app, ["-q", "validate", str(tmp_path)])
    assert res.exit_code == 1, res.stderr
    assert res.stderr.count("\n") == 1 and "户籍人口.xlsx" in res.stderr


def test_a_panic_reading_one_sheet_names_the_sheet(tmp_path, household, monkeypatch):
    import fastexcel

    real = fastexcel.ExcelReader.load_sheet

    def load_sheet(self, idx, **k):
        if idx == 1:
            raise FakePanic("index out of bounds")
        return real(self, idx, **k)

    monkeypatch.setattr(fastexcel.ExcelReader, "load_sheet", load_sheet)
    shutil.copy(OFFICE / "户籍人口.ods", tmp_path / "户籍人口.ods")
    e = read(tmp_path / "户籍人口.ods", household)
    assert "sheet '连然街道'" in e.problem


# --- issue #21 item 2: every reader bounded before the heavy read -------------------------------

CHILD = "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29)); from kuomian.cli import app; app(sys.argv[1:])"


def validate_capped(folder: Path) -> subprocess.CompletedProcess:
    """``kuomian validate`` in a process whose address space is capped at 1.5 GiB."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, "-q", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_3_gb_file_named_like_a_source_is_refused_from_its_first_bytes(tmp_path):
    """It was read whole (4.9 GB) before the "binary data" message."""
    with open(tmp_path / "户籍人口.csv", "wb") as fh:
        fh.truncate(3 << 30)  # sparse: 3 GB of NUL bytes that take no disk
    res = validate_capped(tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert res.stderr.count("\n") == 1 and "binary data (NUL bytes)" in res.stderr


def test_a_text_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path, household):
    path = tmp_path / "户籍人口.csv"
    with open(path, "wb") as fh:
        fh.write(("公民身份号码,姓名\n" + f"{ID1},张三\n" * 4000).encode())
        fh.seek((limits()["max_text_mb"] + 1) << 20)  # the rest sparse
        fh.write(f"{ID1},李四\n".encode())
    e = read(path, household)
    assert f"more than the {limits()['max_text_mb']:g} MB a text extract may be" in e.problem


def test_a_line_past_the_limit_is_refused_with_its_row(tmp_path, household):
    path = tmp_path / "户籍人口.csv"
    cap = int(limits()["max_line_mb"] * (1 << 20))
    path.write_bytes(f"公民身份号码,姓名\n{ID1},张三\n".encode() + b"x" * (cap + 10) + b"\n")
    e = read(path, household)
    assert e.row == 3 and "a line longer than" in e.problem


def test_short_lines_ending_in_cr_only_are_not_one_long_line(tmp_path, household):
    """Excel for Mac's CSV ends lines with CR alone: 6 MB of them is not a 6 MB line."""
    path = tmp_path / "户籍人口.csv"
    path.write_bytes(("公民身份号码,姓名\r" + f"{ID1},张三\r" * 200_000).encode())
    assert path.stat().st_size > limits()["max_line_mb"] * (1 << 20)
    df = load_file(path, household, FileInfo(path, "household", "glob"))
    assert df.height == 200_000


def test_a_small_parquet_declaring_30_million_rows_is_refused_from_its_footer(tmp_path):
    """448 KB holding 30 M rows took 5.2 GB and aborted (exit 134)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    idx = pa.array(np.zeros(30_000_000, dtype=np.int8))
    pq.write_table(
        pa.table(
            {
                "公民身份号码": pa.DictionaryArray.from_arrays(idx, pa.array([ID1])),
                "姓名": pa.DictionaryArray.from_arrays(idx, pa.array(["张三"])),
            }
        ),
        tmp_path / "户籍人口.parquet",
    )
    del idx
    assert (tmp_path / "户籍人口.parquet").stat().st_size < 1 << 20
    res = validate_capped(tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert res.stderr.count("\n") == 1 and "declares 30,000,000 rows" in res.stderr


def test_a_parquet_declaring_more_data_than_the_limit_is_refused(tmp_path, household, monkeypatch):
    import kuomian.readers.parquet as parquet_mod

    lim = dict(limits(), max_parquet_mb=0.001)
    monkeypatch.setattr(parquet_mod, "limits", lambda: lim)
    path = tmp_path / "户籍人口.parquet"
    pl.DataFrame({"公民身份号码": [f"{i:018d}" for i in range(2000)], "姓名": ["张三"] * 2000}).write_parquet(
        path
    )
    e = read(path, household)
    assert "MB of data unpacked (more than 0.001 MB)" in e.problem


def test_a_parquet_footer_that_is_not_one_is_one_line(tmp_path, household):
    path = tmp_path / "户籍人口.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 100 + b"\xff\xff\xff\x7fPAR1")
    e = read(path, household)
    assert "the Parquet file cannot be read" in e.problem


def test_a_workbook_with_more_sheets_than_the_limit_is_refused(tmp_path, household):
    path = tmp_path / "户籍人口.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    for i in range(limits()["max_sheets"] + 1):
        wb.add_worksheet(f"S{i}").write_row(0, 0, ["公民身份号码", "姓名"])
    wb.close()
    e = read(path, household)
    assert f"the workbook has {limits()['max_sheets'] + 1:,} sheets" in e.problem


@pytest.mark.parametrize("name", ["参保信息.xls", "户籍人口.ods"])
def test_sheet_count_is_bounded_in_xls_and_ods_too(tmp_path, household, monkeypatch, name):
    lim = dict(limits(), max_sheets=1)
    monkeypatch.setattr(bounds_mod, "limits", lambda: lim)
    shutil.copy(OFFICE / name, tmp_path / ("户籍人口" + Path(name).suffix))
    e = read(tmp_path / ("户籍人口" + Path(name).suffix), household)
    assert "sheets (more than 1)" in e.problem


def test_an_xlsx_is_opened_a_fixed_number_of_times_whatever_its_sheets(tmp_path, household, monkeypatch):
    """A 5,000-sheet workbook took 5 min 19 s: the zip was reopened (and its sheet list parsed) per sheet."""
    opens = []
    real = zipfile.ZipFile.__init__

    def counting(self, file, *a, **k):
        opens.append(file)
        real(self, file, *a, **k)

    def workbook(n: int) -> Path:
        path = tmp_path / f"{n}" / "户籍人口.xlsx"
        path.parent.mkdir()
        wb = xlsxwriter.Workbook(str(path))
        for i in range(n):
            wb.add_worksheet(f"S{i}").write_row(0, 0, ["公民身份号码", "姓名"])
            wb.get_worksheet_by_name(f"S{i}").write_row(1, 0, [ID1, "张三"])
        wb.close()
        return path

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting)
    counts = []
    for n in (2, 40):
        path = workbook(n)
        opens.clear()
        df = load_file(path, household, FileInfo(path, "household", "glob"))
        assert df.height == n
        counts.append(len(opens))
    assert counts[0] == counts[1] <= 4, counts
