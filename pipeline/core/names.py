"""Names: a display form for people, and match keys for the linker only.

The display form is the legal name as written, trimmed, with every look-alike
of the minority-name separator turned into U+00B7 (·). It is never rewritten
otherwise.

The match keys are never shown and never stored as the name:

* ``name_key``  — NFKC, no spaces or dots, each character simplified
  (OpenCC t2s, character by character: 陳 → 陈);
* ``name_py``   — the pinyin of ``name_key`` without tones, "fuzzy" the way a
  Yunnan clerk mishears it (zh/z, ch/c, sh/s, n/l, -ng/-n), so that homophones
  typed for one another (晓/小, 玲/琳) agree.

OpenCC maps some real surnames (於 → 于, 乾 → 干) and pypinyin reads 单 as dan:
harmless in a key, wrong in a name — which is why the keys stay keys.

What a department's system lost is understood in the keys (spec extracts.md, "How people
appear in real records"):

* a note in brackets or after 备注 (``张三(已故)``, ``王五 备注:迁出``) is not the name: left out of
  both keys (the display form keeps it);
* a placeholder for a character the system could not hold (``?`` ``？`` ``□`` ``■`` ``〓``, a
  private-use code point) becomes ``?`` in both keys, a mask ``*`` stays ``*``: each stands for
  exactly one unknown character (:func:`name_agreement`);
* a name in Latin letters (``ZHANG SAN``, ``zhangsan``) gets the fuzzy pinyin key of the
  syllables it spells, so that it sounds like 张三.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from functools import lru_cache

import polars as pl
from rapidfuzz import fuzz, process

from .text import CONTROL_RE, LINE_BREAKS_RE

DOT = "\u00b7"
# Every character that people type for the separator in 阿依古丽·买买提.
LOOKALIKE_DOTS = "\u00b7\u2022\u30fb\uff65\u002e\uff0e\u2027\u2219\u22c5\u0387\u16eb\u2e31\u00b7\u318d\u2024"
_DOTS_RE = "[" + re.escape(LOOKALIKE_DOTS) + "]"
# \x1c-\x1f: in Python's \s but not in polars' (Rust) \s; listed so both agree.
_SPACE_RE = r"[\s\x1c-\x1f\u200b\u200c\u200d\u2060\ufeff\u3000]"


def display_name(raw: str | None) -> str:
    """The name as people should see it: trimmed, dots unified to U+00B7."""
    if raw is None:
        return ""
    s = re.sub(CONTROL_RE, "", re.sub(LINE_BREAKS_RE, " ", str(raw)))  # as display_name_expr
    s = re.sub(r"^" + _SPACE_RE + "+|" + _SPACE_RE + "+$", "", s)
    return re.sub(_DOTS_RE, DOT, s)


def display_names(s: pl.Series) -> pl.Series:
    """:func:`display_name_expr` of a column, worked only on the names it changes (one scan
    finds them: a line break, a control character, a space at an end, a dot)."""
    from .text import where_matching

    needs = "|".join([LINE_BREAKS_RE, CONTROL_RE, "^" + _SPACE_RE, _SPACE_RE + "$", _DOTS_RE])
    return where_matching(
        s.fill_null(""), needs, lambda v: v.to_frame("n").select(display_name_expr(pl.col("n"))).to_series()
    ).alias(s.name)


def display_name_expr(col: pl.Expr) -> pl.Expr:
    return (
        col.fill_null("")
        .str.replace_all(LINE_BREAKS_RE, " ")
        .str.replace_all(CONTROL_RE, "")  # NUL and control characters are never shown
        .str.replace_all("^" + _SPACE_RE + "+|" + _SPACE_RE + "+$", "")
        .str.replace_all(_DOTS_RE, DOT)
    )


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def fuzzy_syllable(py: str) -> str:
    """Collapse the pinyin distinctions that homophone typos cross."""
    for a, b in _FUZZY_INITIALS:
        if py.startswith(a):
            py = b + py[len(a) :]
            break
    for a, b in _FUZZY_FINALS:
        if py.endswith(a):
            py = py[: -len(a)] + b
            break
    return py


# Placeholders a system writes for a character it cannot hold (after NFKC: ？ is ?), and the mask.
PLACEHOLDERS = "?\u25a1\u25a0\u3013\ufffd"
MASK = "*"
WILDCARDS = "?*"  # in a key: one unknown character each


def _is_private_use(ch: str) -> bool:
    return "\ue000" <= ch <= "\uf8ff" or "\U000f0000" <= ch <= "\U0010fffd"


# A note is not the name: a bracketed part (closed or not) or a trailing 备注/注:… (after NFKC).
NOTE_RE = r"\s*(?:\([^)]*(?:\)|$)|\[[^\]]*(?:\]|$)|【[^】]*(?:】|$)|〔[^〕]*(?:〕|$)|(?:备注|注)\s*:.*$)"


def _pinyin_without_phrases() -> None:
    """Keys read one character at a time, so pypinyin's phrase dictionary (a 0.1-0.2 s JSON load at
    import) is never used: it is skipped (the readings of all 41,923 characters are the same with
    and without it; tests/test_names.py checks a sample)."""
    os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")


@lru_cache(maxsize=200_000)
def _char_keys(ch: str) -> tuple[str, str]:
    """(simplified character, fuzzy pinyin) for one character of a cleaned name."""
    _pinyin_without_phrases()
    from pypinyin import Style, lazy_pinyin

    if ch in PLACEHOLDERS or _is_private_use(ch):
        return "?", "?"
    if ch == MASK:
        return MASK, MASK
    simp = _t2s().convert(ch) or ch
    if "\u3400" <= simp <= "\u9fff" or "\U00020000" <= simp <= "\U0002ffff":
        py = lazy_pinyin(simp, style=Style.NORMAL)[0]
        return simp, fuzzy_syllable(py)
    return simp, simp.lower()


# control characters too: the key ignores whatever the display drops; the dots also as NFKC
# writes them (the key is made after NFKC: ㆍ becomes ᆞ there, while the display makes it ·)
_KEY_DOTS = "".join(sorted(set(LOOKALIKE_DOTS) | {unicodedata.normalize("NFKC", d) for d in LOOKALIKE_DOTS}))
_KEY_STRIP_RE = "(?:[" + re.escape(_KEY_DOTS) + "]|" + _SPACE_RE + "|" + CONTROL_RE + ")"


def _clean_for_key(raws: pl.Series) -> pl.Series:
    """NFKC, without dots and spaces, NFKC again where something was removed (removing a
    space can bring a combining mark next to a letter: "a\u00a8" -> "a \u0308" -> "a\u0308";
    the key of a key must be the key itself)."""
    from .text import nfkc

    first = nfkc(raws.fill_null(""))
    noted = first.str.contains(NOTE_RE)
    if noted.any():
        idx = noted.arg_true()
        first = first.scatter(idx, first.gather(idx).str.replace_all(NOTE_RE, ""))
    touched = first.str.contains(_KEY_STRIP_RE)
    if not touched.any():
        return first
    stripped = first.str.replace_all(_KEY_STRIP_RE, "")
    idx = touched.arg_true()
    return first.scatter(idx, nfkc(stripped.gather(idx)))


def name_keys(raw: str | None) -> tuple[str, str]:
    """(name_key, name_py) for one raw name."""
    if raw is None:
        return "", ""
    keys, sounds = many_name_keys([str(raw)])
    return keys[0], sounds[0]


def many_name_keys(raws: list[str | None]) -> tuple[list[str], list[str]]:
    """:func:`name_keys` for many names: cleaned as a column, each distinct character looked
    up once, then every name mapped with ``str.translate`` (C speed)."""
    cleaned_s = _clean_for_key(pl.Series(raws, dtype=pl.String))
    chars = cleaned_s.str.split("").explode().drop_nulls().unique().to_list()
    simp, sound = {}, {}
    for ch in chars:
        if not ch:
            continue
        k, p = _char_keys(ch)
        simp[ord(ch)] = k
        sound[ord(ch)] = p
    cleaned = cleaned_s.to_list()
    keys, sounds = [c.translate(simp) for c in cleaned], [c.translate(sound) for c in cleaned]
    latin = cleaned_s.str.contains(r"^[A-Za-z]{2,}$")
    if latin.any():  # a name in Latin letters: the pinyin it spells, syllable by syllable
        from .text import nfkc

        spaced = nfkc(pl.Series(raws, dtype=pl.String).fill_null(""))
        for i in latin.arg_true().to_list():
            sounds[i] = latin_sound(spaced[i])
    return keys, sounds


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    """Every toneless pinyin syllable (from pypinyin's dictionary)."""
    import unicodedata

    _pinyin_without_phrases()
    from pypinyin.constants import PINYIN_DICT

    out = set()
    for readings in PINYIN_DICT.values():
        for r in readings.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFD", r) if not unicodedata.combining(c))
            out.add(plain.replace("ü", "v").lower())
    return frozenset(s for s in out if s.isascii() and s.isalpha())


def latin_sound(raw: str) -> str:
    """The fuzzy pinyin key of a name written in Latin letters (``ZHANG SAN`` → ``zansan``, the
    key of 张三): each word split into syllables, longest first; what is no syllable stays as it is."""
    syll = _syllables()
    out: list[str] = []
    for word in re.split(r"[^A-Za-z]+", raw.lower()):
        # the fewest syllables covering the whole word (dangui: dan-gui, not dang-ui); letters no
        # syllable covers cost one each and stay as they are
        n = len(word)
        best: list[tuple[int, list[str]] | None] = [(0, [])] + [None] * n
        for i in range(n):
            cur = best[i]
            if cur is None:
                continue
            steps = [
                (j, fuzzy_syllable(word[i:j])) for j in range(i + 1, min(n, i + 6) + 1) if word[i:j] in syll
            ]
            steps.append((i + 1, word[i]) if not steps else (0, ""))
            for j, piece in steps:
                if j and (best[j] is None or cur[0] + 1 < best[j][0]):  # type: ignore[index]
                    best[j] = (cur[0] + 1, cur[1] + [piece])
        whole = best[n]
        out.extend(whole[1] if whole else [word])
    return "".join(out)


_KEY_LOCK = threading.Lock()
_KEY_LIMIT = 5_000_000  # names kept; past it the cache starts again
# raw name -> (name_key, name_py), as one frame: sources repeat the same names, and a frame is
# joined to a source's rows without passing a million names through Python
_KEYS: dict[str, pl.DataFrame] = {}


def add_name_keys(df: pl.DataFrame, raw_col: str = "name_raw") -> pl.DataFrame:
    """Add ``name_key`` and ``name_py`` columns, computing each distinct name once (per process)."""
    uniq = df.select(pl.col(raw_col).cast(pl.String).unique().alias("raw"))
    with _KEY_LOCK:  # sources are standardised in threads; OpenCC and the cache are shared
        known = _KEYS.get("frame")
        if known is None or known.height > _KEY_LIMIT:
            known = pl.DataFrame(schema={"raw": pl.String, "name_key": pl.String, "name_py": pl.String})
        missing = uniq.join(known, on="raw", how="anti", nulls_equal=True)
        if missing.height:
            keys, sounds = many_name_keys(missing.get_column("raw").to_list())
            new = pl.DataFrame(
                {"raw": missing.get_column("raw"), "name_key": keys, "name_py": sounds},
                schema={"raw": pl.String, "name_key": pl.String, "name_py": pl.String},
            )
            known = pl.concat([known, new], rechunk=False)
        _KEYS["frame"] = known
    lookup = known.join(uniq, on="raw", how="semi", nulls_equal=True).rename({"raw": raw_col})
    if df.schema[raw_col] != pl.String:
        lookup = lookup.with_columns(pl.col(raw_col).cast(df.schema[raw_col]))
    return df.join(lookup, on=raw_col, how="left", nulls_equal=True, maintain_order="left")


def name_scores(a_key: list[str], a_py: list[str], b_key: list[str], b_py: list[str]):
    """Agreement of paired names in [0, 1], vectorised with rapidfuzz.

    1.0 for the same simplified characters, 0.95 for the same fuzzy pinyin
    (homophones), else the mean of character and pinyin similarity.
    """
    import numpy as np

    if not a_key:
        return np.zeros(0)
    # float64 throughout: rapidfuzz returns float32, where 0.95 is 0.9499999 and misses a 0.95 threshold
    char = process.cpdist(a_key, b_key, scorer=fuzz.ratio, workers=-1).astype(np.float64) / 100.0
    sound = process.cpdist(a_py, b_py, scorer=fuzz.ratio, workers=-1).astype(np.float64) / 100.0
    ak, bk = np.asarray(a_key, dtype=object), np.asarray(b_key, dtype=object)
    ap, bp = np.asarray(a_py, dtype=object), np.asarray(b_py, dtype=object)
    nonempty = (ak != "") & (bk != "")
    score = np.where(ak == bk, 1.0, np.where(ap == bp, 0.95, (char + sound) / 2.0))
    return np.round(np.where(nonempty, score, 0.0), 4)


# ---------------------------------------------------------------- what was lost, understood

SPECIAL_EVIDENCE = ("placeholder", "mask", "latin", "parts")  # count only where an exact ID anchors


def _wild_agree(a: str, b: str) -> str | None:
    """'mask' or 'placeholder' when ``a`` and ``b`` agree character by character once each
    wildcard stands for exactly one character (and at least one real character agrees)."""
    if len(a) != len(b) or not a:
        return None
    wild, real = "", 0
    for x, y in zip(a, b, strict=True):
        if x in WILDCARDS or y in WILDCARDS:
            wild = "mask" if MASK in (x, y) and not wild else (wild or "placeholder")
            continue
        if x != y:
            return None
        real += 1
    return wild or None if real else None


def compose_parts(key: str, parts: dict[str, list[str]]) -> str:
    """``key`` with every spelling of a character by its parts (龙天, 龙+天) put back together (䶮),
    as the key writes that character (OpenCC simplifies 昇 to 升)."""
    return compose_by_plan(key, parts_plan(parts))


def parts_plan(parts: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The replacements :func:`compose_parts` makes, in its order: (a spelling, the key of its
    character); each character's longer spellings first, the one with plus signs first."""
    plan = []
    for ch, spellings in parts.items():
        for sp in sorted(spellings, key=len, reverse=True):
            plan += [(form, _char_keys(ch)[0]) for form in ("+".join(sp), sp)]
    return plan


def compose_by_plan(key: str, plan: list[tuple[str, str]]) -> str:
    """:func:`compose_parts` with its replacements worked out once (:func:`parts_plan`)."""
    for form, composed in plan:
        if form in key:
            key = key.replace(form, composed)
    return key


def exact_sound(ch: str) -> str:
    """The pinyin of one character as written, not made fuzzy (杨 yang, 闫 yan: one fuzzy key, yan),
    for where the fuzzy key is too coarse; '' for a character that has none."""
    _pinyin_without_phrases()
    from pypinyin import Style, lazy_pinyin

    simp = _t2s().convert(ch) or ch
    if "\u3400" <= simp <= "\u9fff" or "\U00020000" <= simp <= "\U0002ffff":
        return lazy_pinyin(simp, style=Style.NORMAL)[0]
    return ""


def _is_latin(key: str) -> bool:
    return bool(key) and key.isascii() and key.isalpha()


def name_agreement(
    a_key: list[str], a_py: list[str], b_key: list[str], b_py: list[str],
    a_name: list[str], b_name: list[str], *, understood: float, parts: dict[str, list[str]],
):  # fmt: skip
    """:func:`name_scores` plus what made them agree, per pair: ``same``, ``sound``, ``fuzzy``,
    or one of ``note`` (a note left out, the rest the same), ``placeholder``, ``mask``,
    ``latin``, ``parts`` (scored ``understood``; :data:`SPECIAL_EVIDENCE` count only where an
    exact ID anchors the pair — the caller's rule). Returns (scores, evidence)."""
    import numpy as np

    score = name_scores(a_key, a_py, b_key, b_py)
    ak, bk = np.asarray(a_key, dtype=object), np.asarray(b_key, dtype=object)
    ap, bp = np.asarray(a_py, dtype=object), np.asarray(b_py, dtype=object)
    evidence = np.where(ak == bk, "same", np.where(ap == bp, "sound", "fuzzy")).astype(object)
    note_re = re.compile(NOTE_RE)
    plan = parts_plan(parts) if parts else []
    for i in np.nonzero(score < 1.0)[0] if len(score) else []:
        a, b = a_key[i], b_key[i]
        if not a or not b:
            continue
        ev = None
        if any(w in a or w in b for w in WILDCARDS):
            ev = _wild_agree(a, b)
        elif _is_latin(a) != _is_latin(b) and a_py[i] == b_py[i]:
            ev = "latin"
        elif plan and compose_by_plan(a, plan) == compose_by_plan(b, plan):
            ev = "parts"
        if ev:
            evidence[i], score[i] = ev, understood
    for i in np.nonzero(evidence == "same")[0] if len(score) else []:
        if note_re.search(a_name[i] or "") or note_re.search(b_name[i] or ""):
            evidence[i] = "note"
    return score, evidence
