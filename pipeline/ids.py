"""Resident ID numbers (公民身份号码, GB 11643-1999).

Two implementations of one contract:

* ``standardise_id`` — scalar, plain Python: the readable reference.
* ``id_exprs`` — the same logic as polars expressions, used on whole columns.

A property test keeps the two in agreement. Every raw value is classified as

========== ==================================================================
``valid``     18 characters, check digit right, birth date a real date
``upgraded``  an old 15-digit number, upgraded to 18 (century 19, check digit)
``bad_check`` 18 characters of the right shape whose check digit fails (or whose date is impossible)
              (a mistyped digit or two swapped neighbours)
``excel``     damaged by Excel (scientific notation, or a number cell):
              ``id_digits`` keeps only the digits that survived
``unusable``  blank, a placeholder (无, 不详, /), or anything else
========== ==================================================================

Nothing here ever prints an ID; use :func:`mask_id` for anything a person reads.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import polars as pl

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

# Characters removed before anything else: whitespace of every kind, zero-width
# characters, BOM, and the quote marks Excel users type to force text.
# \x1c-\x1f are listed because Python's \s includes them and polars' (Rust) \s does not.
_STRIP_RE = r"[\s\x1c-\x1f\u200b\u200c\u200d\u2060\ufeff'\"`‘’“”]"
_SCI_RE = r"^([0-9])(?:\.([0-9]+))?E\+?([0-9]+)$"

KINDS = ("valid", "upgraded", "bad_check", "excel", "unusable")


@dataclass(frozen=True)
class IdResult:
    canonical: str | None  # the 18-character ID when it can be trusted (valid/upgraded)
    kind: str  # one of KINDS
    digits: str | None  # what matching may use: canonical, the 18 bad chars, or the surviving digits


def check_digit(first17: str) -> str:
    """The GB 11643 check character for 17 digits."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def _real_date(yyyymmdd: str) -> bool:
    try:
        d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1880 <= d.year <= 2100


def upgrade_15(old: str) -> str:
    """The 18-digit form of a 15-digit ID (born 19YY): insert the century, add the check digit."""
    first17 = old[:6] + "19" + old[6:]
    return first17 + check_digit(first17)


def clean_id(raw: str | None) -> str:
    """NFKC, strip whitespace/zero-width/quote characters, upper-case."""
    if raw is None:
        return ""
    s = unicodedata.normalize("NFKC", str(raw))
    return re.sub(_STRIP_RE, "", s).upper()


def standardise_id(raw: str | None, numeric_cell: bool = False) -> IdResult:
    """Classify and canonicalise one raw ID value.

    ``numeric_cell`` says the value came from a spreadsheet cell stored as a
    number: an 18-digit number has then lost its last digits (Excel keeps 15).
    """
    s = clean_id(raw)
    m = re.match(_SCI_RE, s)
    if m:
        mantissa = (m.group(1) + (m.group(2) or "")).rstrip("0") or "0"
        return IdResult(None, "excel", mantissa[:15])
    if numeric_cell and re.fullmatch(r"[0-9]{16,18}(\.0+)?", s):
        return IdResult(None, "excel", s[:15])
    if re.fullmatch(r"[0-9]{17}[0-9X]", s):
        # A typo in the birth date makes the date impossible and the check fail:
        # still one edit away from the real number, so it is a repair candidate.
        if check_digit(s[:17]) == s[17] and _real_date(s[6:14]):
            return IdResult(s, "valid", s)
        if s.endswith("000"):  # an Excel number exported as text: the tail is gone
            return IdResult(None, "excel", s[:15])
        return IdResult(None, "bad_check", s)
    if re.fullmatch(r"[0-9]{15}", s) and _real_date("19" + s[6:12]):
        up = upgrade_15(s)
        return IdResult(up, "upgraded", up)
    return IdResult(None, "unusable", None)


# ---------------------------------------------------------------- vectorised


def _check_expr(first17: pl.Expr) -> pl.Expr:
    total = pl.lit(0, dtype=pl.Int64)
    for i, w in enumerate(WEIGHTS):
        total = total + first17.str.slice(i, 1).cast(pl.Int64, strict=False) * w
    return (total % 11).replace_strict(
        {i: c for i, c in enumerate(CHECK_CHARS)}, default=None, return_dtype=pl.String
    )


def _real_date_expr(yyyymmdd: pl.Expr) -> pl.Expr:
    d = yyyymmdd.str.to_date("%Y%m%d", strict=False)
    return d.is_not_null() & d.dt.year().is_between(1880, 2100) & (d.dt.strftime("%Y%m%d") == yyyymmdd)


def id_exprs(raw: pl.Expr, numeric_cell: pl.Expr | None = None) -> dict[str, pl.Expr]:
    """Polars expressions computing ``id_canonical``, ``id_kind`` and ``id_digits`` from a raw column.

    Same rules as :func:`standardise_id` (a property test checks it).
    """
    s = raw.fill_null("").str.normalize("NFKC").str.replace_all(_STRIP_RE, "").str.to_uppercase()
    numeric = numeric_cell.fill_null(False) if numeric_cell is not None else pl.lit(False)
    sci = s.str.extract_groups(_SCI_RE)
    mantissa = (
        (sci.struct.field("1") + sci.struct.field("2").fill_null(""))
        .str.strip_chars_end("0")
        .str.slice(0, 15)
    )
    mantissa = pl.when(mantissa == "").then(pl.lit("0")).otherwise(mantissa)
    is_sci = s.str.contains(_SCI_RE)
    is_num18 = numeric & s.str.contains(r"^[0-9]{16,18}(\.0+)?$")
    shape18 = s.str.contains(r"^[0-9]{17}[0-9X]$")
    date18_ok = _real_date_expr(s.str.slice(6, 8))
    check_ok = _check_expr(s.str.slice(0, 17)) == s.str.slice(17, 1)
    shape15 = s.str.contains(r"^[0-9]{15}$")
    first17_15 = s.str.slice(0, 6) + pl.lit("19") + s.str.slice(6, 9)
    up = first17_15 + _check_expr(first17_15)
    date15_ok = _real_date_expr(pl.lit("19") + s.str.slice(6, 6))

    kind = (
        pl.when(is_sci)
        .then(pl.lit("excel"))
        .when(is_num18)
        .then(pl.lit("excel"))
        .when(shape18 & check_ok & date18_ok)
        .then(pl.lit("valid"))
        .when(shape18 & s.str.ends_with("000"))
        .then(pl.lit("excel"))
        .when(shape18)
        .then(pl.lit("bad_check"))
        .when(shape15 & date15_ok)
        .then(pl.lit("upgraded"))
        .otherwise(pl.lit("unusable"))
    )
    canonical = pl.when(kind == "valid").then(s).when(kind == "upgraded").then(up).otherwise(None)
    digits = (
        pl.when(is_sci)
        .then(mantissa)
        .when(kind == "excel")
        .then(s.str.slice(0, 15))
        .when(kind == "bad_check")
        .then(s)
        .otherwise(canonical)
    )
    return {"id_canonical": canonical, "id_kind": kind, "id_digits": digits}


# ---------------------------------------------------------------- privacy


def mask_id(value: str | None) -> str:
    """First 6 and last 4 characters, the rest as ``*`` (``530181********123X``)."""
    if not value:
        return ""
    s = str(value)
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_id_expr(col: pl.Expr) -> pl.Expr:
    n = col.str.len_chars()
    return (
        pl.when(col.is_null() | (col == ""))
        .then(pl.lit(""))
        .when(n <= 10)
        .then(pl.lit("*").repeat_by(n).list.join(""))
        .otherwise(col.str.slice(0, 6) + pl.lit("*").repeat_by(n - 10).list.join("") + col.str.slice(-4))
    )


ID_LIKE_RE = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")


def redact_ids(text: str) -> str:
    """Mask every 15- or 18-digit ID-like number in free text (error messages, logs)."""
    return ID_LIKE_RE.sub(lambda m: mask_id(m.group(0)), text)


def birth_date_of(canonical: str) -> date:
    return date(int(canonical[6:10]), int(canonical[10:12]), int(canonical[12:14]))


def sex_of(canonical: str) -> str:
    return "男" if int(canonical[16]) % 2 == 1 else "女"
