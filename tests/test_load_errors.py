"""Reading extracts: every unusable file stops with a FileProblem that names the file (and row) and
says what to do; good GB18030 / UTF-8-BOM / xlsx files are read correctly."""

from __future__ import annotations

import random
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from kuomian.core.config import load_sources
from kuomian.core.errors import FileProblem
from kuomian.core.ids import add_id_columns, redact_ids
from kuomian.readers import NUMERIC_ID_COL, FileInfo, read_any, read_csv
from kuomian.stages.load import load_file

ID1 = "530181199005031235"
ID2 = "11010519491231002X"
ID18_RE = re.compile(r"[0-9]{17}[0-9Xx]")


@pytest.fixture(scope="module")
def household():
    return load_sources()["household"]


def write(path: Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def load(path: Path, source) -> tuple[pl.DataFrame, FileInfo]:
    info = FileInfo(path, source.name, "glob")
    return load_file(path, source, info), info


def write_xlsx(path: Path, rows: list[list], numeric_cols: frozenset[int] = frozenset()) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Sheet1")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is None:
                continue
            if i > 0 and j in numeric_cols and isinstance(v, int):
                ws.write_number(i, j, v)
            else:
                ws.write_string(i, j, str(v))
    wb.close()
    return path


def check_message(
    e: FileProblem, path: Path, *, row: int | None = None, mentions: tuple[str, ...] = ()
) -> str:
    """The message names the file (and the row), says what is wrong and what to do, and shows no ID."""
    msg = str(e)
    shown_path = redact_ids(str(path))
    assert msg.startswith(shown_path), msg
    assert e.path == str(path)
    if row is None:
        assert e.row is None
        assert not msg.startswith(f"{shown_path}, row")
    else:
        assert e.row == row
        assert msg.startswith(f"{shown_path}, row {row}: "), msg
    problem = redact_ids(e.problem)
    assert problem and problem in msg
    action = msg.split(problem, 1)[1].strip(" .")
    assert len(action) >= 15 and action[0].isupper(), f"no action in {msg!r}"
    for word in mentions:
        assert word in msg, (word, msg)
    assert ID18_RE.search(msg) is None, msg
    for secret in (ID1, ID2, ID1[:15]):
        assert secret not in msg
    assert "Traceback" not in msg
    return msg


# ---------------------------------------------------------------- empty files


@pytest.mark.parametrize(
    ("name", "data"),
    [("户籍.csv", b""), ("户籍.csv", b"\r\n \n\t"), ("户籍.txt", b""), ("户籍.xlsx", b""), ("户籍.xls", b"")],
)
def test_empty_file(tmp_path, household, name, data):
    path = write(tmp_path / name, data)
    with pytest.raises(FileProblem) as exc:
        read_any(path)
    check_message(exc.value, path, mentions=("empty",))
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=("empty",))


def test_empty_csv_via_read_csv(tmp_path):
    path = write(tmp_path / "户籍.csv", b"")
    with pytest.raises(FileProblem) as exc:
        read_csv(path)
    check_message(exc.value, path, mentions=("empty",))


@pytest.mark.parametrize(
    "text",
    [
        "公民身份号码,姓名,性别\n",
        "公民身份号码,姓名,性别",
        "公民身份号码,姓名,性别\r\n",
        "\ufeff公民身份号码,姓名,性别\r\n",
    ],
)
def test_header_only_csv(tmp_path, household, text):
    path = write(tmp_path / "户籍_header.csv", text)
    header, df, _ = read_csv(path)  # reading alone gives no error (the pitfall) ...
    assert header == ["公民身份号码", "姓名", "性别"] and df.height == 0
    with pytest.raises(FileProblem) as exc:  # ... so load_file must stop
        load(path, household)
    check_message(exc.value, path, mentions=("no data rows",))


def test_header_only_xlsx(tmp_path, household):
    path = write_xlsx(tmp_path / "户籍.xlsx", [["公民身份号码", "姓名", "性别"]])
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=("no data rows",))


def test_no_header_row(tmp_path, household):
    path = write(tmp_path / "户籍.csv", ",,\n1,2,3\n")
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=("header",))


# ---------------------------------------------------------------- truncated files

GOOD = f"公民身份号码,姓名,性别\n{ID1},张三,男\n{ID2},李四,女\n"


@pytest.mark.parametrize(
    ("cut", "have"),
    [
        (GOOD.rindex(",女"), 2),  # cut after the name
        (GOOD.rindex(",李四"), 1),  # cut after the ID
        (GOOD.rindex(ID2) + 9, 1),  # cut in the middle of the ID
    ],
)
def test_truncated_csv(tmp_path, household, cut, have):
    path = write(tmp_path / "户籍_cut.csv", GOOD[:cut])
    with pytest.raises(FileProblem) as exc:
        read_csv(path)
    msg = check_message(exc.value, path, row=3, mentions=("cut off", f"{have} of 3"))
    assert "again" in msg
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, row=3)


def test_untruncated_csv_without_final_newline_is_read(tmp_path, household):
    path = write(tmp_path / "户籍.csv", GOOD.rstrip("\n"))
    df, _ = load(path, household)
    assert df.get_column("id_number").to_list() == [ID1, ID2]
    assert df.get_column("row").to_list() == [2, 3]


def test_truncated_csv_inside_a_character(tmp_path, household):
    data = GOOD.encode("utf-8")
    path = write(tmp_path / "户籍_cut.csv", data[: data.rindex("四".encode()) + 1])
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, row=3, mentions=("cut off",))


def test_row_with_too_many_values_is_named(tmp_path, household):
    path = write(tmp_path / "户籍.csv", f"公民身份号码,姓名\n{ID1},张三\n{ID2},李四,多余,值\n")
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, row=3, mentions=("4 values",))


def test_truncated_xlsx(tmp_path, household):
    good = write_xlsx(tmp_path / "good.xlsx", [["公民身份号码", "姓名"], [ID1, "张三"]])
    data = good.read_bytes()
    path = write(tmp_path / "户籍.xlsx", data[: len(data) // 2])
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=("workbook",))


# ---------------------------------------------------------------- encodings


def test_utf8_bom_with_gb18030_body(tmp_path, household):
    path = write(tmp_path / "户籍.csv", b"\xef\xbb\xbf" + GOOD.encode("gb18030"))
    with pytest.raises(FileProblem) as exc:
        read_csv(path)
    check_message(exc.value, path, mentions=("UTF-8",))
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=("UTF-8",))


NAMES = ["阿依古丽·买买提", "㐀小明", "陳曉玲"]  # U+00B7, a CJK Ext-A character (not in GBK), traditional
CHINESE = "公民身份号码,姓名,性别,民族,户籍地址\n" + "".join(
    f"{i},{n},女,维吾尔族,云南省昆明市安宁市连然街道\n" for i, n in zip([ID1, ID2, ""], NAMES, strict=True)
)


GBK_NAMES = [n.replace("㐀", "王") for n in NAMES]  # GBK has no Ext-A characters


@pytest.mark.parametrize(
    ("data", "encoding", "names"),
    [
        (CHINESE.encode("gb18030"), "gb18030", NAMES),
        (
            CHINESE.replace("㐀", "王").encode("gbk"),
            "gb18030",
            GBK_NAMES,
        ),  # plain GBK is read as its superset
        (b"\xef\xbb\xbf" + CHINESE.replace("\n", "\r\n").encode("utf-8"), "utf-8-sig", NAMES),
        (CHINESE.encode("utf-8"), "utf-8", NAMES),
        (CHINESE.replace(",", "\t").encode("gb18030"), "gb18030", NAMES),  # tab-separated
    ],
)
def test_chinese_csv_is_read(tmp_path, household, data, encoding, names):
    path = write(tmp_path / "户籍2025.csv", data)
    header, df, enc = read_csv(path)
    assert enc == encoding
    assert header == ["公民身份号码", "姓名", "性别", "民族", "户籍地址"]  # no BOM left on the first header
    assert df.height == 3
    out, info = load(path, household)
    assert info.encoding == encoding and info.rows == 3
    assert info.columns == {
        "公民身份号码": "id_number",
        "姓名": "name",
        "性别": "sex",
        "民族": "ethnicity",
        "户籍地址": "address",
    }
    assert out.get_column("name").to_list() == names
    assert out.get_column("name")[0][4] == "\u00b7"  # GB A1A4 is U+00B7, not U+30FB
    assert out.get_column("id_number").to_list() == [ID1, ID2, None]  # text, leading digits intact
    assert out.get_column("address")[0] == "云南省昆明市安宁市连然街道"
    assert out.get_column("row").to_list() == [2, 3, 4]
    assert out.get_column(NUMERIC_ID_COL).to_list() == [False] * 3


# ---------------------------------------------------------------- unreadable workbooks


def _not_a_zip(tmp_path: Path, name: str) -> Path:
    return write(tmp_path / name, random.Random(20250331).randbytes(4096))


def _zip_not_workbook(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return path


@pytest.mark.parametrize(
    ("make", "name"),
    [(_not_a_zip, "户籍.xlsx"), (_not_a_zip, "户籍.xls"), (_zip_not_workbook, "户籍.xlsx")],
)
def test_unreadable_workbook(tmp_path, household, make, name):
    path = make(tmp_path, name)
    with pytest.raises(FileProblem) as exc:
        read_any(path)
    check_message(exc.value, path, mentions=("workbook cannot be read",))
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path)


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("header", "mentions"),
    [
        ("公民身份号码,姓名,姓名", ("'姓名' appears 2 times",)),
        (
            "公民身份号码, 姓名,姓名 ,性别",
            ("'姓名' appears 2 times",),
        ),  # spaces do not make it another column
        ("公民身份号码,姓名,ＸＹ,XY", ("'XY' appears 2 times",)),  # nor does full-width
        (f"{ID1},姓名,{ID1}", ("appears 2 times",)),  # a data row taken for headers: the ID is masked
        ("公民身份号码,身份证号,姓名", ("both mean id_number",)),
    ],
)
def test_duplicated_columns(tmp_path, household, header, mentions):
    width = header.count(",") + 1
    path = write(tmp_path / "户籍.csv", header + "\n" + ",".join(["a"] * width) + "\n")
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=mentions)
    assert exc.value.source == "household"


@pytest.mark.parametrize(
    ("header", "field", "alias"),
    [
        ("姓名,性别", "id_number", "公民身份号码"),
        ("公民身份号码,性别", "name", "姓名"),
        ("身份证,人名", "name", "参保人姓名"),
    ],
)
def test_required_column_missing(tmp_path, household, header, field, alias):
    path = write(tmp_path / "户籍.csv", header + "\n" + "a,b\n")
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    check_message(exc.value, path, mentions=(field, alias, "household"))


def test_id_in_file_name_is_masked(tmp_path, household):
    path = write(tmp_path / f"户籍_{ID1}.csv", "姓名,性别\n张三,男\n")
    with pytest.raises(FileProblem) as exc:
        load(path, household)
    msg = check_message(exc.value, path, mentions=("id_number",))
    assert "户籍_530181********1235.csv" in msg


# ---------------------------------------------------------------- numbers in Excel


def test_xlsx_numeric_id_cell_is_flagged(tmp_path, household):
    rows = [
        ["姓名", "公民身份号码", "性别"],  # the ID in column B, to check the column letter
        ["张三", int(ID1), "男"],  # a number cell: Excel has already kept only 15 digits
        ["李四", ID2, "女"],  # a text cell
        ["王五", "530181199005031235", "男"],  # digits, but typed as text
        ["赵六", None, "女"],  # blank
    ]
    path = write_xlsx(tmp_path / "户籍.xlsx", rows, numeric_cols=frozenset({1}))
    out, info = load(path, household)
    assert info.format == "xlsx" and info.rows == 4
    assert out.get_column("row").to_list() == [2, 3, 4, 5]
    assert out.get_column("name").to_list() == ["张三", "李四", "王五", "赵六"]
    assert out.get_column(NUMERIC_ID_COL).to_list() == [True, False, False, False]
    assert out.get_column("id_number").to_list()[1:] == [ID2, ID1, None]
    ids = add_id_columns(out, "id_number", NUMERIC_ID_COL)
    assert ids.get_column("id_kind").to_list() == ["excel", "valid", "valid", "unusable"]
    assert ids.get_column("id_digits")[0] == ID1[:15]
    assert ids.get_column("id_canonical")[0] is None


def test_a_file_problem_speaks_chinese_where_the_interface_does(tmp_path, household):
    """The readers' and the load stage's messages come from the catalogue (readers.po) in Chinese,
    with the numbers, the file and the sheet put in; in English they are as written."""
    from kuomian.core import i18n

    cut = write(tmp_path / "户籍.csv", "公民身份号码,姓名,性别\n" + f"{ID1},张三,男\n{ID2},李")
    no_rows = write(tmp_path / "户籍2.csv", "公民身份号码,姓名,性别\n")
    try:
        i18n.set_language("zh")
        with pytest.raises(FileProblem) as zh_cut:
            load(cut, household)
        with pytest.raises(FileProblem) as zh_rows:
            load(no_rows, household)
    finally:
        i18n.set_language("en")
    assert zh_cut.value.problem == "文件似乎不完整：最后一行只有 2 列（应有 3 列）"
    assert str(cut) in str(zh_cut.value) and "请重新导出该文件。" in str(zh_cut.value)
    assert "文件有列名，但没有数据行" in str(zh_rows.value) and "请让部门提供完整的导出文件。" in str(
        zh_rows.value
    )
    with pytest.raises(FileProblem) as en_cut:
        load(cut, household)
    assert en_cut.value.problem == "the file looks cut off: its last line has 2 of 3 columns"
