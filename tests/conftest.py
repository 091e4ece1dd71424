"""Shared fixtures: an isolated state folder (key, decisions) and tiny hand-written extracts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kuomian.core.ids import check_digit


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("KUOMIAN_STATE", str(state))
    monkeypatch.delenv("KUOMIAN_KEY_FILE", raising=False)
    monkeypatch.delenv("KUOMIAN_RULES", raising=False)
    from kuomian.core.config import use_policy

    use_policy(None)  # the installed defaults unless a test says --rules
    return state


def make_id(prefix17: str) -> str:
    return prefix17 + check_digit(prefix17)


# Three people; the IDs are generated with a correct check digit.
ZHANG = make_id("53018119900107003")  # 张伟, male
LI = make_id("53012319850212004")  # 李娜, female
WANG = make_id("53018120120501005")  # 王小明, under 16 at 2026-03-01


def write_tiny_sources(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "户籍人口_连然街道.csv").write_text(
        "公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态\n"
        f"{ZHANG},张伟,连然街道,金湖社区,男,1990-01-07,农业,安宁市连然街道金湖社区1号,\n"
        f"{LI},李娜,连然街道,金湖社区,女,1985-02-12,非农业,安宁市连然街道金湖社区2号,\n"
        f"{WANG},王小明,连然街道,金湖社区,男,2012-05-01,农业,安宁市连然街道金湖社区1号,\n",
        encoding="utf-8",
    )
    (folder / "参保信息.csv").write_text(
        f"身份证号,姓名,险种,参保状态\n{LI},李娜,企业职工养老,正常缴费\n", encoding="utf-8-sig"
    )
    return folder


def publish_tiny(root: Path) -> Path:
    """One refresh of the tiny sources (state under ``root``), through the CLI; its OUT_DIR."""
    from typer.testing import CliRunner

    from kuomian.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))
        src = write_tiny_sources(root / "sources")
        res = CliRunner().invoke(
            app, ["-q", "refresh", str(src), "--out", str(root / "out"), "--as-of", "2026-03-01"]
        )
        assert res.exit_code == 0, res.stderr
    return root / "out"


@pytest.fixture
def tiny_sources(tmp_path) -> Path:
    return write_tiny_sources(tmp_path / "sources")


ID18_RE = r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])"
ID15_RE = r"(?<![0-9])[0-9]{15}(?![0-9])"


def assert_no_full_id(text: str) -> None:
    import re

    assert not re.search(ID18_RE, text), "a full 18-digit ID leaked"
    assert not re.search(ID15_RE, text), "a full 15-digit ID leaked"


os.environ.setdefault("POLARS_MAX_THREADS", "2")
# Tests of message text run in English, whatever the machine's locale (tests/test_i18n.py checks the Chinese).
os.environ["KUOMIAN_LANG"] = "en"
