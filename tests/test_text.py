"""core/text.py: the fast paths must give exactly what the plain definitions give."""

from __future__ import annotations

import re
import unicodedata

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from kuomian.core.text import CONTROL_RE, LINE_BREAKS_RE, NFKC_STABLE, clean_text, nfkc


def _composition_seconds() -> set[str]:
    """Every character that is the second half of some canonical decomposition."""
    out = set()
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            out.update(chr(int(p, 16)) for p in d.split()[1:])
    return out


def test_every_character_called_stable_is_left_alone_by_nfkc_in_any_company():
    stable = re.compile("[" + NFKC_STABLE + "]")
    seconds = _composition_seconds()
    checked = 0
    for cp in range(0x110000):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or not stable.fullmatch(ch):
            continue
        checked += 1
        assert unicodedata.normalize("NFKC", ch) == ch, hex(cp)
        assert unicodedata.normalize("NFD", ch) == ch, hex(cp)
        assert unicodedata.combining(ch) == 0, hex(cp)
        assert ch not in seconds, hex(cp)
        assert not (0x1100 <= cp <= 0x11FF or 0xAC00 <= cp <= 0xD7A3), hex(cp)  # Hangul composes by rule
    assert checked > 100_000  # ASCII, the URO, Ext. A and the ideograph planes


# what NFKC changes or composes, beside what it leaves alone
PIECES = st.sampled_from(
    ["张", "三", "a", "1", " ", "·", "、", "（", "）", "１", "Ａ", "ｶ", "\u0301", "e", "\u3099", "か", "\uf900",
     "\U0002f800", "\u1100", "\u1161", "\u11a8", "가", "\u2460", "…", "\u00a0", "\u3000", "𠀀", "\t", "\x00",
     "\u200b", "\n", "\u2028", "ﬁ", "Ⅻ", "\u00b7", "—", "\x7f", "\x85", "\r", "\x1f", "\u2009"]
)  # fmt: skip
VALUES = st.one_of(st.none(), st.lists(PIECES, max_size=8).map("".join), st.text(max_size=8))


@settings(max_examples=400, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=10))
def test_nfkc_of_a_column_is_unicodedata_of_each_value(values):
    got = nfkc(pl.Series(values, dtype=pl.String)).to_list()
    assert got == [None if v is None else unicodedata.normalize("NFKC", v) for v in values]


@settings(max_examples=400, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=10))
def test_clean_text_is_nfkc_then_every_replacement_then_strip(values):
    s = pl.Series(values, dtype=pl.String)
    plain = nfkc(s).str.replace_all(LINE_BREAKS_RE, " ").str.replace_all(CONTROL_RE, "").str.strip_chars()
    assert clean_text(s).to_list() == plain.to_list()
