"""The core's messages in Chinese (core.po): the policy checker's shared wording, FileProblem's
composition; keys, codes and paths stay as written; English stays byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuomian.core import i18n
from kuomian.core.errors import FileProblem
from kuomian.core.policy import PolicyError, export_defaults, load_policy


@pytest.fixture
def chinese():
    i18n.set_language("zh")
    try:
        yield
    finally:
        i18n.set_language("en")


def _policy(tmp_path: Path, name: str, old: str | None = None, new: str = "") -> Path:
    pol = tmp_path / name
    export_defaults(pol)
    if old is not None:
        f = pol / "rules" / "groups.yaml"
        text = f.read_text("utf-8")
        assert old in text, "the defaults changed: update the test"
        f.write_text(text.replace(old, new, 1), "utf-8")
    return pol


def test_the_defaults_load_in_chinese_too(tmp_path, chinese):
    """Translating a message never translates a key, a code or a value the checker compares."""
    p = load_policy(_policy(tmp_path, "zh_defaults"))
    assert p.groups.groups


def test_a_policy_mistake_in_chinese_and_in_english(tmp_path):
    i18n.set_language("zh")
    try:
        with pytest.raises(PolicyError) as zh:
            load_policy(_policy(tmp_path, "zh", "priority: 1", "priority: one"))
    finally:
        i18n.set_language("en")
    with pytest.raises(PolicyError) as en:
        load_policy(_policy(tmp_path, "en", "priority: 1", "priority: one"))
    zh_text, en_text = str(zh.value), str(en.value)
    assert "groups.yaml: groups[0].priority: 应为整数，实际是 str 'one'。请修改该文件" in zh_text
    assert "kuomian rules export DIR" in zh_text  # commands stay as typed
    assert en_text.endswith(
        "groups.yaml: groups[0].priority: expected a whole number, got str 'one'. "
        "Fix the file (`kuomian rules export DIR` writes the defaults to compare with)."
    )


def test_an_unknown_key_lists_the_keys_verbatim(tmp_path, chinese):
    with pytest.raises(PolicyError) as e:
        load_policy(_policy(tmp_path, "keys", "priority: 1", "priority: 1\n    colour: red"))
    text = str(e.value)
    assert "未知的键 'colour'（可选: group, priority, label, action, when）" in text


def test_file_problem_in_both_languages(chinese):
    zh = str(FileProblem("户籍人口_连然街道.csv", "problem", "action", row=645))
    assert zh == "户籍人口_连然街道.csv 第 645 行: problem。action"
    assert str(FileProblem("a.csv", "problem", "action")) == "a.csv: problem。action"
    i18n.set_language("en")
    assert str(FileProblem("a.csv", "problem", "action", row=3)) == "a.csv, row 3: problem. action"
