"""The interface's language (core/i18n.py): chosen from KUOMIAN_LANG or the locale, Chinese catalogues
complete and compiled."""

from __future__ import annotations

import re

import pytest

from kuomian.core import i18n


@pytest.mark.parametrize(
    "env,lang",
    [
        ({"KUOMIAN_LANG": "zh"}, "zh"),
        ({"KUOMIAN_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"KUOMIAN_LANG": "zh_CN", "LANG": "C.UTF-8"}, "zh"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LC_ALL": "zh_CN.GB18030", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),  # the first one set decides
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_language_comes_from_kuomian_lang_or_the_locale(env, lang, monkeypatch):
    monkeypatch.setattr(i18n.sys, "platform", "linux")
    assert i18n.system_language(env) == lang


def _unescape(parts: list[str]) -> str:
    """A .po string's pieces joined, its C escapes (\\n, \\") read."""
    return "".join(parts).encode().decode("unicode_escape").encode("latin-1").decode()


def _po_entries(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (the subset of the format the catalogues use)."""
    out: dict[str, str] = {}
    key = None
    cur: dict[str, list[str]] = {}
    for line in [*text.splitlines(), ""]:
        line = line.strip()
        m = re.match(r'^(msgid|msgstr) "(.*)"$', line)
        if m:
            key = m.group(1)
            cur[key] = [m.group(2)]
        elif line.startswith('"') and key:
            cur[key].append(line[1:-1])
        elif not line and "msgid" in cur:
            out[_unescape(cur["msgid"])] = _unescape(cur.get("msgstr", [""]))
            cur, key = {}, None
    out.pop("", None)  # the header
    return out


def test_every_catalogue_is_compiled_from_its_po():
    folder = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES"
    pos = sorted(folder.glob("*.po"))
    assert pos, "no Chinese catalogue"
    for po in pos:
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo.name} missing: run make catalogues"
        entries = _po_entries(po.read_text("utf-8"))
        with open(mo, "rb") as fh:
            compiled = i18n.gettext.GNUTranslations(fh)
        for msgid, msgstr in entries.items():
            assert msgstr, f"{po.name}: no Chinese for {msgid!r}"
            assert compiled.gettext(msgid) == msgstr, (
                f"{mo.name} is older than {po.name}: run make catalogues"
            )


def _placeholders(s: str) -> list[str]:
    return sorted(re.findall(r"\{(\w*)(?:[:!][^}]*)?\}", s))


def test_a_translation_keeps_the_placeholders():
    folder = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        for msgid, msgstr in _po_entries(po.read_text("utf-8")).items():
            assert _placeholders(msgid) == _placeholders(msgstr), f"{po.name}: {msgid!r} -> {msgstr!r}"


def test_chinese_and_english_answers(monkeypatch):
    try:
        i18n.set_language("zh")
        zh = i18n._(
            "interrupted: nothing was published, and the previous output is unchanged. Run the command again."
        )
        i18n.set_language("en")
        en = i18n._(
            "interrupted: nothing was published, and the previous output is unchanged. Run the command again."
        )
    finally:
        i18n.set_language("en")
    assert (
        en
        == "interrupted: nothing was published, and the previous output is unchanged. Run the command again."
    )
    assert zh != en and re.search(r"[\u4e00-\u9fff]", zh)
