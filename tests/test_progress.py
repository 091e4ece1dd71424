"""``kuomian progress`` on the tiny registry: the cascade on a dirty extract, tasks from
rules/tasks.yaml against the default, every row counted, the history, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.core import config
from tests.conftest import LI, ZHANG, assert_no_full_id, make_id, publish_tiny

runner = CliRunner()
STREET = "530181001000"
STRANGER = make_id("53018119700101123")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    return publish_tiny(tmp_path_factory.mktemp("progress_run"))


@pytest.fixture
def reg(published, tmp_path) -> Path:
    dst = tmp_path / "reg"
    shutil.copytree(published, dst)
    return dst


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A copy of the rules and sources to edit (KUOMIAN_HOME), with the caches cleared around it."""
    h = tmp_path / "home"
    shutil.copytree(config.home() / "rules", h / "rules")
    shutil.copytree(config.home() / "sources", h / "sources")
    monkeypatch.setenv("KUOMIAN_HOME", str(h))
    for f in (config.load_rules, config.load_sources, config.streets):
        f.cache_clear()
    yield h
    monkeypatch.delenv("KUOMIAN_HOME")
    for f in (config.load_rules, config.load_sources, config.streets):
        f.cache_clear()


def extract(path: Path) -> Path:
    """The bureau's new extract, as GB18030 with a total row: 张伟 (15-digit ID, as old systems
    keep it) now pays into the employee scheme; 李娜 as before; a stranger; a 合计 row."""
    id15 = ZHANG[:6] + ZHANG[8:17]
    text = (
        "社会保障号码,参保人姓名,险种类型,缴费状态\r\n"
        f"{id15},张伟,企业职工养老,正常缴费\r\n"
        f"{LI},李娜,企业职工养老,正常缴费\r\n"
        f"{STRANGER},王五,居民养老,正常缴费\r\n"
        "合计,3,,\r\n"
    )
    path.write_bytes(text.encode("gb18030"))
    return path


def run(reg: Path, files: list[Path], out: Path, as_of: str = "2026-06-30", *extra: str):
    return runner.invoke(
        app, ["-q", "progress", str(reg), *map(str, files), "--as-of", as_of, "--out", str(out), *extra]
    )


def test_tasks_from_tasks_yaml_and_the_default(reg, home, tmp_path):
    (home / "rules" / "tasks.yaml").write_text(
        (home / "rules" / "tasks.yaml")
        .read_text("utf-8")
        .replace("tasks: {}", f'tasks:\n  "2026":\n    "{STREET}": {{enrolment: 2}}'),
        encoding="utf-8",
    )
    f = extract(tmp_path / "参保信息_2026Q2.csv")
    res = run(reg, [f], tmp_path / "q2")
    assert res.exit_code == 0, res.stderr
    prog = pl.read_parquet(tmp_path / "q2" / "progress.parquet")
    assert prog.select("status", "enrolled", "scheme").rows() == [("unenrolled", True, "employee")]
    hist = pl.read_parquet(reg / "progress_history" / "2026-06-30.parquet")
    row = hist.filter((pl.col("level") == "street") & (pl.col("street_code") == STREET)).row(0, named=True)
    assert (row["enrolled"], row["enrolled_employee"], row["task_enrolment"]) == (1, 1, 2)
    assert row["task_enrolment_basis"] == "任务分解" and row["completion"] == 0.5
    assert row["task_employee_basis"].startswith("默认: 距2035年职工占比目标缺口")
    other = hist.filter((pl.col("level") == "street") & (pl.col("street_code") != STREET))
    assert other["task_enrolment_basis"].str.starts_with("默认").all()
    html = (tmp_path / "q2" / "bulletin.html").read_text("utf-8")
    assert "任务分解" in html and "默认: 距2035年参保率目标缺口" in html
    assert_no_full_id(html + res.stdout + res.stderr)


def test_every_row_is_counted_and_the_history_is_kept(reg, tmp_path):
    f = extract(tmp_path / "参保信息.csv")
    res = run(reg, [f], tmp_path / "q2")
    assert res.exit_code == 0, res.stderr
    rows = pl.read_parquet(tmp_path / "q2" / "progress_rows.parquet")
    assert sorted(rows["outcome"].to_list()) == ["not_registry", "quarantined", "registry", "unmatched"]
    assert rows.filter(pl.col("outcome") == "registry")["match_rule"].to_list() == ["upgraded_id"]
    recon = pl.read_csv(tmp_path / "q2" / "reconciliation.csv", infer_schema=False)
    assert recon.row(0) == ("参保信息.csv", "4", "1", "1", "1", "0", "0", "1", "true")
    # the same date again replaces its entry; a later one adds one and sees the change
    assert run(reg, [f], tmp_path / "q2", "2026-06-30", "--force").exit_code == 0
    res = run(reg, [f], tmp_path / "q3", "2026-09-30")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in (reg / "progress_history").iterdir()) == [
        "2026-06-30.parquet",
        "2026-09-30.parquet",
    ]
    assert "bulletins this year: 2026-06-30, 2026-09-30" in res.stdout
    hist = pl.read_parquet(reg / "progress_history" / "2026-09-30.parquet")
    assert hist.filter(pl.col("level") == "city")["change_enrolled"].to_list() == [0]


def test_errors_are_one_clear_line(reg, home, tmp_path):
    f = extract(tmp_path / "参保信息.csv")
    assert run(reg, [f], tmp_path / "q").exit_code == 0
    res = run(reg, [f], tmp_path / "q")
    assert res.exit_code == 3 and "--force" in res.stderr
    wrong = tmp_path / "名单.csv"
    wrong.write_text(f"身份证号,姓名\n{LI},李娜\n", encoding="utf-8")
    res = run(reg, [wrong], tmp_path / "q4")
    assert res.exit_code == 1 and "名单.csv" in res.stderr and "Traceback" not in res.stderr
    res = run(tmp_path / "nowhere", [f], tmp_path / "q5")
    assert res.exit_code == 1 and "nowhere" in res.stderr
    (home / "rules" / "tasks.yaml").write_text(
        'tasks:\n  "2026":\n    "530181999000": {enrolment: 5}\n', "utf-8"
    )
    config.load_rules.cache_clear()  # a new process would read it afresh
    res = run(reg, [f], tmp_path / "q6")
    assert res.exit_code == 1 and "rules/tasks.yaml" in res.stderr and "530181999000" in res.stderr
    assert not (tmp_path / "q6").exists()
    assert_no_full_id(res.stdout + res.stderr)
