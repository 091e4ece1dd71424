"""The interface's language (core/i18n.py): chosen from KUOMIAN_LANG or the locale, Chinese catalogues
complete and compiled."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

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


def _kuomian(args: list[str], lang: str, tmp_path) -> subprocess.CompletedProcess:
    """The installed ``kuomian`` in its own process, with the system language ``lang`` (no
    KUOMIAN_LANG: conftest's English must not reach it, the locale decides)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KUOMIAN_LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE")
    }
    env.update(LANG=lang, COLUMNS="100")
    exe = Path(sys.executable).with_name("kuomian")
    return subprocess.run(
        [str(exe), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_the_installed_command_speaks_the_systems_language(tmp_path):
    zh = _kuomian(["refresh", "--help"], "zh_CN.UTF-8", tmp_path)
    assert zh.returncode == 0, zh.stderr
    assert "实名库" in zh.stdout and "源数据文件夹" in zh.stdout
    assert "示例: kuomian refresh" in zh.stdout and "Example:" not in zh.stdout
    assert "--as-of" in zh.stdout and "--accept-damaged-ids" in zh.stdout  # flags stay as they are

    en = _kuomian(["refresh", "--help"], "C.UTF-8", tmp_path)
    assert en.returncode == 0, en.stderr
    assert (
        "Example: kuomian refresh" in en.stdout and "Folder holding the departments' extracts." in en.stdout
    )
    assert not re.search(r"[\u4e00-\u9fff]", en.stdout.replace("纳税", ""))  # only the example file name


def test_a_bad_date_is_one_chinese_line_under_a_chinese_locale(tmp_path):
    (tmp_path / "extracts").mkdir()
    args = ["refresh", "extracts", "--out", "out", "--as-of", "2026-13-45"]
    zh = _kuomian(args, "zh_CN.UTF-8", tmp_path)
    assert zh.returncode == 1
    lines = zh.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in zh.stderr, zh.stderr
    assert lines[0] == "错误：--as-of '2026-13-45': 日期请写成 YYYY-MM-DD 格式，例如 2026-03-01。"
    assert not (tmp_path / "out").exists()

    en = _kuomian(args, "C.UTF-8", tmp_path)
    assert en.returncode == 1
    assert en.stderr.strip() == "error: --as-of '2026-13-45': write the date as YYYY-MM-DD, e.g. 2026-03-01."


# ---------------------------------------------------------------- every message a person reads is marked
PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
# Calls whose text a person reads: the CLI's lines, progress, notes and warnings, and every error
# class deriving from KuomianError (found in the package, so a new one is covered).
SINKS = {"fail", "say", "progress", "warn", "note"}
LISTS = {"notes", "warnings", "problems", "messages"}  # <list>.append(text) is shown later


def _error_classes() -> set[str]:
    bases: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for n in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(n, ast.ClassDef):
                bases[n.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in n.bases}
    out = {"KuomianError"}
    grew = True
    while grew:
        grew = False
        for name, bs in bases.items():
            if name not in out and bs & out:
                out.add(name)
                grew = True
    return out


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(c.isalpha() for c in node.value)
    )


def unmarked_messages(source: str, where: str, sinks: set[str]) -> list[str]:
    """where:line of every literal or f-string text handed to a sink (or to help=) without _()."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
        sink = name in sinks
        if name == "append" and isinstance(fn, ast.Attribute):
            target = fn.value
            sink = (target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")) in LISTS
        texts = [a for a in node.args if _is_text(a)] if sink else []
        texts += [k.value for k in node.keywords if k.arg == "help" and _is_text(k.value)]
        out += [f"{where}:{t.lineno}" for t in texts]
    return out


def test_the_scan_finds_an_unmarked_message():
    sinks = SINKS | {"FileProblem"}
    code = 'say(f"wrote {n} files")\nraise FileProblem(p, "the file is empty", _("Fix it."))\nx = _("ok")'
    assert unmarked_messages(code, "m", sinks) == ["m:1", "m:2"]
    assert unmarked_messages('say(_("wrote {n} files").format(n=n))', "m", sinks) == []


def test_every_message_a_person_reads_is_marked_for_translation():
    sinks = SINKS | _error_classes()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "synth" in path.parts:  # the generator writes data, not messages
            continue
        found += unmarked_messages(path.read_text("utf-8"), str(path.relative_to(PACKAGE)), sinks)
    assert not found, "wrap these messages in _() and translate them (pipeline/locale):\n" + "\n".join(found)


def test_every_marked_message_has_chinese():
    chinese = i18n.translations("zh")
    catalogue: dict = {}
    t = chinese
    while t is not None:  # the chained catalogues of every area
        catalogue |= getattr(t, "_catalog", {})
        t = getattr(t, "_fallback", None)
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_":
                arg = n.args[0] if n.args else None
                where = f"{path.relative_to(PACKAGE)}:{n.lineno}"
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{where}: _() takes one plain string; format it after translation"
                )
                if not catalogue.get(arg.value):
                    missing.append(f"{where}: {arg.value[:80]!r}")
    assert not missing, "no Chinese for:\n" + "\n".join(missing)
