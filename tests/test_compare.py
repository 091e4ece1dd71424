"""``kuomian compare`` on two refreshes, and the self-contained pages (report.html, compare.html)."""

from __future__ import annotations

import csv
import io
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from tests.conftest import LI, WANG, ZHANG, assert_no_full_id, make_id

runner = CliRunner()

ZHAO = make_id("53018119700304011")  # 赵强: moves from 连然街道 to 金方街道
SUN = make_id("53018119600515022")  # 孙丽: dies between the runs
ZHOU = make_id("53018119750620031")  # 周建国: becomes 低保 → group 7
QIAN = make_id("53018119880808041")  # 钱芳: appears in the second run

HEADER = "公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态\n"


def person(idv, name, street, community, sex, born, status=""):
    return f"{idv},{name},{street},{community},{sex},{born},农业,安宁市{street}{community}1号,{status}\n"


def write_year(folder: Path, second: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        person(ZHANG, "张伟", "连然街道", "金湖社区", "男", "1990-01-07"),
        person(LI, "李娜", "连然街道", "金湖社区", "女", "1985-02-12"),
        person(WANG, "王小明", "连然街道", "金湖社区", "男", "2012-05-01"),
        person(ZHAO, "赵强", "金方街道" if second else "连然街道", "金方社区" if second else "金湖社区", "男",
               "1970-03-04"),
        person(SUN, "孙丽", "连然街道", "金湖社区", "女", "1960-05-15", "死亡" if second else ""),
        person(ZHOU, "周建国", "连然街道", "金湖社区", "男", "1975-06-20"),
    ]  # fmt: skip
    if second:
        rows.append(person(QIAN, "钱芳", "连然街道", "金湖社区", "女", "1988-08-08"))
    (folder / "户籍人口.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    enrol = f"身份证号,姓名,险种,参保状态\n{LI},李娜,企业职工养老,正常缴费\n"
    if second:
        enrol += f"{ZHANG},张伟,城乡居民养老,正常缴费\n"
    (folder / "参保信息.csv").write_text(enrol, encoding="utf-8-sig")
    if second:
        (folder / "低保名录.csv").write_text(
            f"身份证号,姓名,救助类别\n{ZHOU},周建国,低保\n", encoding="utf-8"
        )
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))
        old, new = root / "2026", root / "2027"
        res = runner.invoke(
            app,
            [
                "-q",
                "refresh",
                str(write_year(root / "s1", False)),
                "--out",
                str(old),
                "--as-of",
                "2026-03-01",
            ],
        )
        assert res.exit_code == 0, res.stderr
        res = runner.invoke(
            app,
            ["-q", "refresh", str(write_year(root / "s2", True)), "--out", str(new), "--as-of", "2026-03-01",
             "--previous", str(old)],
        )  # fmt: skip
        assert res.exit_code == 0, res.stderr
    return old, new


def read_csv(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path.name}: UTF-8 with BOM"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_compare_two_refreshes(runs, tmp_path):
    old, new = runs
    diff = tmp_path / "diff"
    res = runner.invoke(app, ["-q", "compare", str(old), str(new), "--out", str(diff)])
    assert res.exit_code == 0, res.stderr
    assert "registry 4 (2026-03-01) → 3 (2026-03-01)" in res.stdout
    for line in ("新参保 newly_enrolled: 1", "新入库 newly_listed: 1", "其他原因出库 left_registry: 1",
                 "群体变化 group_changed: 1", "街道变化 street_changed: 1"):  # fmt: skip
        assert line in res.stdout
    assert_no_full_id(res.stdout + res.stderr)

    enrolled = read_csv(diff / "newly_enrolled.csv")
    assert [(r["姓名"], r["原参保状态"], r["现参保状态"]) for r in enrolled] == [
        ("张伟", "未参保", "已参加居民养老")
    ]
    assert enrolled[0]["身份证号"] == ZHANG[:6] + "********" + ZHANG[-4:]
    assert enrolled[0]["编号"].startswith("P")
    listed = read_csv(diff / "newly_listed.csv")
    assert [(r["姓名"], r["现街道"], r["说明"]) for r in listed] == [("钱芳", "连然街道", "首次进入人口名单")]
    left = read_csv(diff / "left_registry.csv")
    assert [(r["姓名"], r["说明"]) for r in left] == [("孙丽", "不纳入(死亡)")]
    group = read_csv(diff / "group_changed.csv")
    assert [(r["姓名"], r["原重点群体"][:3], r["现重点群体"][:3]) for r in group] == [
        ("周建国", "第8类", "第7类")
    ]
    street = read_csv(diff / "street_changed.csv")
    assert [(r["姓名"], r["原街道"], r["现街道"]) for r in street] == [("赵强", "连然街道", "金方街道")]

    streets = {r["街道"]: r for r in read_csv(diff / "streets.csv")}
    assert streets["连然街道"]["原实名库人数"] == "4" and streets["连然街道"]["现实名库人数"] == "2"
    assert streets["连然街道"]["新参保"] == "1" and streets["连然街道"]["迁出"] == "1"
    assert streets["金方街道"]["迁入"] == "1" and streets["金方街道"]["现实名库人数"] == "1"
    assert streets["全市"]["新入库"] == "1" and streets["全市"]["其他原因出库"] == "1"

    ind = {r["街道"]: r for r in read_csv(diff / "indicators.csv")}
    assert ind["全市"]["户籍人口(原)"] == "6" and ind["全市"]["户籍人口(现)"] == "7"
    assert ind["全市"]["已参保人数变化"] == "1"
    assert ind["全市"]["实名库人数(户籍)(原)"] == "4" and ind["全市"]["实名库人数(户籍)(现)"] == "3"

    assert stat.S_IMODE(diff.stat().st_mode) == 0o700
    for p in diff.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
        assert_no_full_id(p.read_text("utf-8-sig"))
    assert not list(tmp_path.glob(".diff.staging-*"))


def test_compare_refuses_to_replace_without_force(runs, tmp_path):
    old, new = runs
    diff = tmp_path / "diff"
    diff.mkdir()
    res = runner.invoke(app, ["compare", str(old), str(new), "--out", str(diff)])
    assert res.exit_code == 3 and "--force" in res.stderr
    res = runner.invoke(app, ["-q", "compare", str(old), str(new), "--out", str(diff), "--force"])
    assert res.exit_code == 0, res.stderr
    assert (diff / "compare.html").exists()


def test_compare_missing_run_folder(runs, tmp_path):
    old, _ = runs
    res = runner.invoke(app, ["compare", str(old), str(tmp_path / "nope"), "--out", str(tmp_path / "d")])
    assert res.exit_code == 1
    assert "NEW_OUT_DIR" in res.stderr and "no such folder" in res.stderr
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["compare", str(tmp_path / "empty"), str(old), "--out", str(tmp_path / "d")])
    assert res.exit_code == 1 and "no persons.parquet" in res.stderr
    assert not (tmp_path / "d").exists()


def test_help_has_example():
    res = runner.invoke(app, ["compare", "--help"])
    assert res.exit_code == 0
    assert "Example: kuomian compare" in res.stdout


# ---------------------------------------------------------------- self-contained pages


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
                self.urls.append((tag, name, value or ""))
            if name == "id":
                self.ids.add(value)


def parse_page(path: Path) -> tuple[Page, str]:
    text = path.read_text("utf-8")
    page = Page()
    page.feed(text)
    page.close()
    return page, text


def assert_self_contained(page: Page, text: str) -> None:
    for tag, attr, value in page.urls:
        v = value.strip().lower()
        assert not v.startswith(("http://", "https://", "//", "file:", "ftp:")), (
            f"<{tag} {attr}={value!r}> fetches"
        )
        assert v.startswith("#"), f"<{tag} {attr}={value!r}>: only in-page links"
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    low = text.lower()
    assert "http://" not in low and "https://" not in low
    assert "@import" not in low and "url(" not in low
    assert_no_full_id(text)


def test_report_is_self_contained_with_every_section(runs):
    _, new = runs
    page, text = parse_page(new / "report.html")
    assert_self_contained(page, text)
    assert {"overview", "indicators", "registry", "quality", "matching", "reconciliation"} <= page.ids
    assert text.count("<svg") >= 4, "coverage, employee share, registry by group, registry by street"
    for words in (
        "参保率",
        "职工占比",
        "2025目标",
        "重点群体",
        "隔离行",
        "身份证号情况",
        "身份证号一致",
        "对账",
        "平衡",
    ):
        assert words in text, words
    assert "不平衡" not in text.split("id='reconciliation'")[1]


def test_compare_page_is_self_contained(runs, tmp_path):
    old, new = runs
    diff = tmp_path / "diff"
    assert runner.invoke(app, ["-q", "compare", str(old), str(new), "--out", str(diff)]).exit_code == 0
    page, text = parse_page(diff / "compare.html")
    assert_self_contained(page, text)
    assert {"summary", "streets", "indicators"} <= page.ids
    assert "新参保" in text and "金方街道" in text
