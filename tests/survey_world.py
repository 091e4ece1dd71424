"""A small street whose hand-off is filled with every kind of survey answer (issue 25).

Used by ``tests/test_after_survey.py`` and, once, to make the committed fixture
``tests/fixtures/survey/530181001000_连然街道_已填.xlsx`` (and ``…_gbk.csv``): the filled
workbook opened and saved again by LibreOffice (``python -m tests.survey_world FOLDER`` writes
the workbook as kuomian's hand-off filled in; the LibreOffice step is in ``make_fixture``).

The person keys depend on the key file: the test and the fixture use the same fixed key.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

from tests.conftest import make_id

AS_OF = date(2026, 3, 1)
STREET = "530181001000"
FIXED_KEY = "cd" * 32

# name, ID, sex, birth date, answers (header → value); the household extract says 正常 for all.
PEOPLE = [
    ("甲死亡", make_id("53018119800101101"), "男", "1980-01-01", {"走访结果": "已死亡", "调查日期": "2026-04-10"}),
    ("乙迁出", make_id("53018119810202102"), "女", "1981-02-02", {"走访结果": "已迁出本市", "调查日期": "2026-04-10"}),
    ("丙外地", make_id("53018119820303103"), "男", "1982-03-03",
     {"走访结果": "已见到本人", "参保意愿": "已在外地参保", "调查日期": "2026-04-11"}),
    ("丁外地", make_id("53018119830404104"), "女", "1983-04-04",
     {"走访结果": "家属代答", "未参保原因": "已在外地参保", "调查日期": "2026-04-11"}),
    ("戊无人", make_id("53018119840505105"), "男", "1984-05-05", {"走访结果": "查无此人", "调查日期": "2026-04-12"}),
    ("己分离", make_id("53018119850606106"), "女", "1985-06-06",
     {"走访结果": "人户分离未见到", "调查日期": "2026-04-12"}),
    ("庚重点", make_id("53018119900707107"), "男", "1990-07-07",
     {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "参保意愿": "愿意参加职工养老", "年收入": "6万-12万",
      "就业情况": "个体经营", "调查日期": "2026-04-13", "调查人": "李四"}),
    ("辛将退", make_id("53018119660615109"), "男", "1966-06-15",
     {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "参保意愿": "愿意参加职工养老", "调查日期": "2026-04-13"}),
    ("壬补缴", make_id("53018119650210109"), "男", "1965-02-10",
     {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "参保意愿": "愿意参加居民养老", "调查日期": "2026-04-14"}),
    ("癸动员", make_id("53018119870808110"), "女", "1987-08-08",
     {"走访结果": "已见到本人", "缴费能力": "缴费能力一般", "参保意愿": "暂不愿意参保", "未参保原因": "不了解政策",
      "年收入": "3万以下", "就业情况": "平台灵活就业", "调查日期": "2026-04-14"}),
    ("子困难", make_id("53018119750909112"), "女", "1975-09-09",
     {"走访结果": "已见到本人", "缴费能力": "无缴费能力", "未参保原因": "经济困难", "年收入": "不愿透露",
      "就业情况": "无业", "调查日期": "2026-04-15"}),
    ("丑未访", make_id("53018119881010113"), "男", "1988-10-10", {}),
    ("寅早答", make_id("53018119891111114"), "女", "1989-11-11",
     {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "调查日期": "2026-02-01"}),  # before the as-of date
    ("卯参保", make_id("53018119700101115"), "男", "1970-01-01", {}),  # enrolled here: not in the registry
]  # fmt: skip
ENROLLED = [PEOPLE[-1][1]]


def write_sources(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态"]
    for i, (name, pid, sex, birth, _) in enumerate(PEOPLE, start=1):
        lines.append(f"{pid},{name},连然街道,金湖社区,{sex},{birth},农业,安宁市连然街道金湖社区{i}号,正常")
    (folder / "户籍人口_连然街道.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_enrolment(folder, ENROLLED)
    return folder


def write_enrolment(folder: Path, ids: list[str]) -> None:
    """An enrolment extract where ``ids`` contribute to the employee scheme here."""
    rows = ["身份证号,姓名,险种,参保状态"]
    names = {pid: name for name, pid, *_ in PEOPLE}
    rows += [f"{pid},{names[pid]},企业职工养老,正常缴费" for pid in ids]
    (folder / "参保信息.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")


def use_fixed_key(root: Path) -> None:
    key = root / "key.secret"
    key.write_text(FIXED_KEY)
    os.chmod(key, 0o600)
    os.environ["KUOMIAN_KEY_FILE"] = str(key)


def fill_workbook(handoff_xlsx: Path, dst: Path) -> Path:
    """The hand-off workbook as a street fills it: answers typed into its first sheet, the rest kept."""
    import openpyxl

    wb = openpyxl.load_workbook(handoff_xlsx)
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    answers = {name: a for name, _, _, _, a in PEOPLE}
    for row in ws.iter_rows(min_row=2):
        a = answers.get(row[header.index("姓名")].value, {})
        for h, v in a.items():
            cell = row[header.index(h)]
            cell.value = date.fromisoformat(v) if h == "调查日期" else v
            if h == "调查日期":
                cell.number_format = "yyyy/m/d"
    wb.save(dst)
    return dst


def make_fixture(out_folder: Path) -> None:
    """Refresh the small street, fill its hand-off, and save it through LibreOffice as xlsx and as
    CSV in GBK (needs ``soffice``)."""
    import shutil
    import subprocess
    import tempfile

    from typer.testing import CliRunner

    from kuomian.cli import app

    tmp = Path(tempfile.mkdtemp())
    use_fixed_key(tmp)
    os.environ["KUOMIAN_STATE"] = str(tmp / "state")
    src = write_sources(tmp / "sources")
    res = CliRunner().invoke(
        app, ["-q", "refresh", str(src), "--out", str(tmp / "out"), "--as-of", str(AS_OF)]
    )
    assert res.exit_code == 0, res.stderr
    (handoff,) = (tmp / "out" / "handoff").glob(f"{STREET}_*.xlsx")
    filled = fill_workbook(handoff, tmp / "filled.xlsx")
    out_folder.mkdir(parents=True, exist_ok=True)
    lo = tmp / "lo"
    for target, name in (
        # 85: RTL_TEXTENCODING_GBK (LibreOffice's rtl/textenc.h), what Excel on a Chinese Windows writes
        ("xlsx:Calc MS Excel 2007 XML", f"{STREET}_连然街道_已填.xlsx"),
        ('csv:Text - txt - csv (StarCalc):44,34,85,1', f"{STREET}_连然街道_已填_gbk.csv"),
    ):  # fmt: skip
        subprocess.run(
            ["soffice", f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--convert-to", target,
             "--outdir", str(lo), str(filled)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        produced = lo / ("filled." + ("xlsx" if target.startswith("xlsx") else "csv"))
        shutil.move(produced, out_folder / name)
    import json

    manifest = json.loads((tmp / "out" / "manifest.json").read_text("utf-8"))
    (out_folder / "registry_id.txt").write_text(manifest["registry_id"] + "\n", encoding="utf-8")


if __name__ == "__main__":
    make_fixture(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "fixtures" / "survey")
