"""The interface's language: simplified Chinese where the system speaks Chinese, English otherwise.

Messages are written in English in the code and marked with :func:`_` (gettext); their Chinese
is in the message catalogues ``pipeline/locale/zh_CN/LC_MESSAGES/*.po``, shipped compiled
(``*.mo``, made by ``make catalogues``; a test fails when a ``.mo`` is older than its ``.po`` or
a marked message has no Chinese). The catalogues are split by area (``cli``, ``errors``, …) so
that each can be edited on its own; all of them are loaded, one after the other.

The language is chosen once per process: ``KUOMIAN_LANG`` (``zh`` or ``en``) if set, else the
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, ``LANGUAGE``: ``zh_*`` is Chinese; on Windows the
user interface language), else English. File names, column names and codes are never
translated. Messages keep named placeholders (``{path}``) and are formatted after translation,
so a translation may put them in another order.

The words of the argument parser itself (typer's vendored click: "Usage:", "Missing argument")
are fixed English strings in that library and stay English.
"""

from __future__ import annotations

import gettext
import os
import sys
from pathlib import Path

DOMAIN = "kuomian"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES = ("zh", "en")

_state: dict[str, gettext.NullTranslations | str | None] = {"lang": None, "tr": None}


def _windows_is_chinese() -> bool:
    try:
        import ctypes

        langid = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
    except Exception:
        return False
    return (langid & 0x3FF) == 0x04  # LANG_CHINESE (zh-CN 0x0804, zh-TW 0x0404, …)


def system_language(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """``zh`` or ``en``, from ``KUOMIAN_LANG`` or the system's locale."""
    forced = environ.get("KUOMIAN_LANG", "").strip().lower()
    if forced:
        return "zh" if forced.startswith("zh") else "en"
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = environ.get(var, "")
        if value:  # the first one set decides, as for every POSIX program
            return "zh" if value.lower().startswith("zh") else "en"
    if sys.platform == "win32" and _windows_is_chinese():
        return "zh"
    return "en"


def catalogue_files(lang: str = "zh") -> list[Path]:
    """The compiled catalogues of a language, in a fixed order."""
    folder = LOCALE_DIR / ("zh_CN" if lang == "zh" else lang) / "LC_MESSAGES"
    return sorted(folder.glob("*.mo")) if folder.is_dir() else []


def translations(lang: str) -> gettext.NullTranslations:
    """Every catalogue of ``lang`` chained into one (English: the messages as written)."""
    tr: gettext.NullTranslations = gettext.NullTranslations()
    if lang == "en":
        return tr
    chain: gettext.NullTranslations | None = None
    for mo in catalogue_files(lang):
        with open(mo, "rb") as fh:
            t = gettext.GNUTranslations(fh)
        if chain is None:
            chain = t
        else:
            chain.add_fallback(t)
    return chain or tr


def set_language(lang: str | None = None) -> str:
    """Choose the interface language (``None``: from the environment); returns it."""
    lang = lang if lang in LANGUAGES else system_language()
    _state["lang"] = lang
    _state["tr"] = translations(lang)
    return lang


def language() -> str:
    if _state["lang"] is None:
        set_language()
    return str(_state["lang"])


def _(message: str) -> str:
    """The message in the interface's language (marks it for the catalogue)."""
    if _state["tr"] is None:
        set_language()
    tr = _state["tr"]
    assert isinstance(tr, gettext.NullTranslations)
    return tr.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    if _state["tr"] is None:
        set_language()
    tr = _state["tr"]
    assert isinstance(tr, gettext.NullTranslations)
    return tr.ngettext(singular, plural, n)
