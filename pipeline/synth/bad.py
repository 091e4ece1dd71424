"""Small broken extract files for tests of the loader's error handling."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import xlsxwriter

from .world import check_digit


def _id(s17: str) -> str:
    return s17 + check_digit(s17)


def _xlsx(path: Path, rows: list[list[str]]) -> None:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties({"created": datetime(2026, 1, 1)})
    ws = wb.add_worksheet("Sheet1")
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            ws.write_string(r, c, v)
    wb.close()


def write_bad_files(dir: Path) -> dict[str, Path]:
    """Write one broken file per problem kind into ``dir``; each name is recognised as one source.

    Keys: ``empty`` (0-byte CSV), ``header_only``, ``truncated`` (CSV cut mid-line),
    ``gb18030_undeclared`` (GB18030 without BOM, Chinese content incl. an Ext-A character and
    the middle dot), ``corrupt_xlsx`` (random bytes), ``truncated_xlsx`` (a real workbook cut in
    half), ``duplicate_columns`` (two 姓名 columns), ``missing_required`` (a market file without
    统一社会信用代码).
    """
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random("kuomian-bad-files")
    out: dict[str, Path] = {}

    p = d / "平台从业人员_空.csv"
    p.write_bytes(b"")
    out["empty"] = p

    p = d / "低保_仅表头.csv"
    p.write_bytes("姓名,身份证号,街道,救助类别,认定日期\n".encode())
    out["header_only"] = p

    p = d / "参保信息_截断.csv"
    text = (
        "姓名,身份证号,险种,参保状态\n"
        f"张伟,{_id('53018119900101003')},城乡居民基本养老保险,参保缴费\n"
        f"王芳,{_id('53012319880512004')},企业职工基本养老保险,参保缴费\n"
        "李娜,53012119750302"
    )
    p.write_bytes(text.encode())
    out["truncated"] = p

    p = d / "个税明细.csv"
    text = (
        "姓名,身份证号,年收入(元),扣缴月数,扣缴义务人\n"
        f"刘䶮,{_id('53018119951212001')},72000.00,12,安宁市鑫源建筑劳务有限公司\n"
        f"阿依古丽·买买提,{_id('65010219900315002')},48000.00,8,云南滇中物流有限公司\n"
        f"陈静,{_id('53012319890707002')},36000,6,安宁宏达餐饮管理有限公司\n"
    )
    p.write_bytes(text.encode("gb18030"))
    out["gb18030_undeclared"] = p

    p = d / "纳税主体_损坏.xlsx"
    p.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    out["corrupt_xlsx"] = p

    p = d / "高校在校生_截断.xlsx"
    full = d / ".tmp_student_full.xlsx"
    rows = [["姓名", "身份证号", "学校名称", "学籍状态"]]
    rows += [[f"学生{i}", _id(f"53018120050101{i:03d}"), "云南大学", "在读"] for i in range(200)]
    _xlsx(full, rows)
    blob = full.read_bytes()
    full.unlink()
    p.write_bytes(blob[: len(blob) // 2])
    out["truncated_xlsx"] = p

    p = d / "特殊人员名单_重复列.csv"
    text = f"姓名,身份证号,姓名,人员类别,报送单位\n张伟,{_id('53018119900101003')},张伟,律师,安宁市司法局\n"
    p.write_bytes(("\ufeff" + text).encode())
    out["duplicate_columns"] = p

    p = d / "新增市场主体_缺列.csv"
    text = f"主体名称,主体类型,成立日期,法定代表人,法定代表人身份证号\n安宁市连然张记米线店,个体工商户,2025-06-01,张伟,{_id('53018119900101003')}\n"
    p.write_bytes(text.encode())
    out["missing_required"] = p
    return out
