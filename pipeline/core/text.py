"""Fast column helpers.

Polars' own NFKC, date parsing and long when/then chains cost microseconds per
row; at a city's scale (millions of rows) that is minutes. Two tricks keep
standardising near the cost of reading the data:

* :func:`nfkc` normalises only the values holding a character outside
  :data:`NFKC_STABLE` (ASCII, the CJK ideographs, a few CJK marks: a Chinese
  address or name is NFKC already), each distinct value once, with Python's
  ``unicodedata`` (so the scalar and column paths agree exactly);
* :func:`on_distinct` evaluates an expensive expression once per distinct
  value and joins it back (dates, categories: few distinct values).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import polars as pl

# Characters that NFKC leaves as they are, alone and next to any other character: no
# decomposition, combining class 0, never the second half of a composition. ASCII, the CJK
# ideographs (Ext. A, the URO, and planes 2 and 3 without the compatibility ideographs at
# U+2F800-2FA1F) and a few marks of Chinese text. A value made of them only is NFKC already.
# tests/test_text.py checks every assigned one against the running Python's unicodedata;
# the unassigned code points of these planes are reserved for ideographs.
NFKC_STABLE = (
    "\\x00-\\x7F"
    "\u00b7\u3001\u3002\u300a\u300b\u3010\u3011\u2014"
    "\u3400-\u4dbf\u4e00-\u9fff"
    "\U00020000-\U0002f7ff\U00030000-\U0003fffd"
)
MAY_CHANGE_UNDER_NFKC = "[^" + NFKC_STABLE + "]"


def nfkc(s: pl.Series) -> pl.Series:
    """NFKC of a string column, touching only the values that may change (:data:`NFKC_STABLE`)."""
    mask = s.str.contains(MAY_CHANGE_UNDER_NFKC).fill_null(False)
    if not mask.any():
        return s
    distinct = s.filter(mask).unique().to_list()
    mapping = {v: unicodedata.normalize("NFKC", v) for v in distinct}
    changed = {k: v for k, v in mapping.items() if k != v}
    if not changed:
        return s
    return s.replace(changed)


def on_distinct(
    s: pl.Series, fn: Callable[[pl.Expr], pl.Expr], dtype: pl.DataType | type[pl.DataType] | None = None
) -> pl.Series:
    """``fn`` applied to every distinct value of ``s`` once, the result aligned with ``s``."""
    distinct = s.unique().to_frame("v")
    mapped = distinct.with_columns(out=fn(pl.col("v")))
    if dtype is not None:
        mapped = mapped.with_columns(pl.col("out").cast(dtype))
    joined = s.to_frame("v").join(mapped, on="v", how="left", nulls_equal=True, maintain_order="left")
    return joined.get_column("out").alias(s.name)


# Control and invisible formatting characters: NUL, C0/C1 controls, DEL, zero-width and
# bidirectional marks, BOM. A tab or a line break becomes a space; the rest are dropped.
LINE_BREAKS_RE = r"[\t\n\r\x0b\x0c\x85\u2028\u2029]+"
CONTROL_RE = r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"


def where_matching(s: pl.Series, pattern: str, fn: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``fn`` applied only to the values of ``s`` that ``pattern`` finds something in (a few,
    usually), the others left as they are; ``fn`` must leave a value without a match unchanged."""
    hit = s.str.contains(pattern).fill_null(False)
    if not hit.any():
        return s
    idx = hit.arg_true()
    return s.scatter(idx, fn(s.gather(idx)))


def clean_text(s: pl.Series) -> pl.Series:
    """A text column as outputs may show it: NFKC, no control characters, trimmed.

    One scan finds the values that need any of it (:data:`NEEDS_CLEANING`); only those are
    cleaned (:func:`clean_every_value`, which a property test holds this to)."""
    return where_matching(s, NEEDS_CLEANING, clean_every_value)


# A value that NFKC, the control characters or the trimming may change: a character outside
# NFKC_STABLE, an ASCII control character (the others are outside it), or white space at an end.
NEEDS_CLEANING = MAY_CHANGE_UNDER_NFKC + r"|[\x00-\x1f\x7f]|^\s|\s$"


def clean_every_value(s: pl.Series) -> pl.Series:
    """:func:`clean_text` done to every value of ``s``."""
    s = where_matching(
        nfkc(s),
        LINE_BREAKS_RE + "|" + CONTROL_RE,
        lambda v: v.str.replace_all(LINE_BREAKS_RE, " ").str.replace_all(CONTROL_RE, ""),
    )
    return s.str.strip_chars()


NATURAL_WIDTH = 20  # digits a number is padded to in a natural sort key (an ID typed in has 18)


def natural_key(e: pl.Expr) -> pl.Expr:
    """A sort key that orders text with numbers as numbers: 1组, 2组, … 11组; 3号 before 12号.

    Every run of ASCII digits is padded with zeros to :data:`NATURAL_WIDTH` digits, so that
    plain text order is number order (full-width digits are ASCII once standardised, NFKC).
    """
    parts = e.str.extract_all(r"[0-9]+|[^0-9]+")
    padded = parts.list.eval(
        pl.when(pl.element().str.contains(r"^[0-9]"))
        .then(pl.element().str.zfill(NATURAL_WIDTH))
        .otherwise(pl.element())
    )
    return padded.list.join("")
