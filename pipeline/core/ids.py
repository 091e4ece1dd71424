"""Resident ID numbers (公民身份号码, GB 11643-1999).

Two implementations of one contract:

* ``standardise_id`` — scalar, plain Python: the readable reference.
* ``add_id_columns`` — the same rules over whole columns (numpy and polars), for millions of rows.

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

# Characters typed for the check character X (NFKC already folds Ⅹ, ⅹ and the full-width Ｘ):
# the multiplication sign, Cyrillic Х/х, Greek χ/Χ.
X_LOOKALIKES = "\u00d7\u0425\u0445\u03c7\u03a7"
# Letters typed for digits in hand-typed lists: O/o for zero, l/I for one. Only inside a value that
# is otherwise an ID's digits (starts with a digit, at most three such letters).
DIGIT_LOOKALIKES = "OolI"
_LOOKALIKE_RE = "[" + X_LOOKALIKES + DIGIT_LOOKALIKES + "]"
_TO_X = str.maketrans({c: "X" for c in X_LOOKALIKES})
_TO_DIGIT = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1"})
_MAX_DIGIT_LOOKALIKES = 3


def fix_lookalikes(s: str) -> str:
    """An ID typed with look-alike characters, put right (``s`` already NFKC and stripped).

    ``53018119800101123×`` -> ``…123X``; ``5301811980O101123l`` -> ``530181198001011231``.
    Anything that is not an ID's shape apart from the look-alikes is returned unchanged."""
    s = s.translate(_TO_X)
    n = sum(s.count(c) for c in DIGIT_LOOKALIKES)
    if not n or n > _MAX_DIGIT_LOOKALIKES or not s[:1].isdigit():
        return s
    if len(s) == 18 and re.fullmatch(r"[0-9OolI]{17}[0-9OolIXx]", s):
        return s[:17].translate(_TO_DIGIT) + s[17].translate(_TO_DIGIT)
    if len(s) == 15 and re.fullmatch(r"[0-9OolI]{15}", s):
        return s.translate(_TO_DIGIT)
    return s


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


def excel_digits(number_text: str) -> str:
    """The 15 significant digits Excel kept of a number cell (read back as a double:
    ``530181200211156000`` may come back ``530181200211155968``)."""
    return f"{float(number_text):.14e}".split("e")[0].replace(".", "")


def upgrade_15(old: str) -> str:
    """The 18-digit form of a 15-digit ID (born 19YY): insert the century, add the check digit."""
    first17 = old[:6] + "19" + old[6:]
    return first17 + check_digit(first17)


def clean_id(raw: str | None) -> str:
    """NFKC, strip whitespace/zero-width/quote characters, upper-case."""
    if raw is None:
        return ""
    s = unicodedata.normalize("NFKC", str(raw))
    return fix_lookalikes(re.sub(_STRIP_RE, "", s)).upper()


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
        return IdResult(None, "excel", excel_digits(s))
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


def _check_chars(first17: list[str]) -> list[str]:
    """Check characters of many 17-digit strings at once (numpy: one matrix product)."""
    import numpy as np

    if not first17:
        return []
    digits = (
        np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48
    )
    rest = (digits @ np.asarray(WEIGHTS, dtype=np.int64)) % 11
    return np.asarray(list(CHECK_CHARS))[rest].tolist()


def _check_digit_ok(ids18: pl.Series) -> pl.Series:
    """Whether each of many 18-character IDs (digits, the last a digit or X) carries the check
    character of its first 17: the same sum as :func:`_check_chars`, read straight from the
    column's bytes (no Python string per value)."""
    import numpy as np
    import pyarrow as pa

    if not len(ids18):
        return pl.Series(ids18.name, [], dtype=pl.Boolean)
    arr = ids18.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    data = data.reshape(len(arr), 18)  # fails unless every value has 18 characters
    rest = ((data[:, :17].astype(np.int64) - 48) @ np.asarray(WEIGHTS, dtype=np.int64)) % 11
    expected = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)[rest]
    return pl.Series(ids18.name, expected == data[:, 17], dtype=pl.Boolean)


def _real_dates(yyyymmdd: pl.Series) -> pl.Series:
    """:func:`_real_date` of many 8-digit strings (a calendar date in 1880-2100), as a column."""
    d = yyyymmdd.str.to_date("%Y%m%d", strict=False)
    return d.is_not_null() & d.dt.year().is_between(1880, 2100)


def _clean_id_text(raw: pl.Series) -> pl.Series:
    """ID cells as :func:`standardise_id` reads them: NFKC, no spaces or quotes, look-alike
    letters as digits, upper case."""
    from .text import nfkc, on_distinct

    clean = nfkc(raw).str.replace_all(_STRIP_RE, "")
    lookalike = clean.str.contains(_LOOKALIKE_RE)
    if lookalike.any():  # rare: fixed one distinct value at a time
        idx = lookalike.arg_true()
        fixed = on_distinct(
            clean.gather(idx), lambda v: v.map_elements(fix_lookalikes, return_dtype=pl.String), pl.String
        )
        clean = clean.scatter(idx, fixed)
    return clean.str.to_uppercase()


def add_id_columns(df: pl.DataFrame, raw_col: str, numeric_col: str | None = None) -> pl.DataFrame:
    """Add ``id_canonical``, ``id_kind`` and ``id_digits`` computed from a raw column.

    Same rules as :func:`standardise_id` (a property test checks it), built for
    millions of rows: cleaning touches non-ASCII values only, check digits are
    one numpy product over the 18-character candidates, birth dates are checked
    once per distinct date.
    """
    n = df.height
    raw = df.get_column(raw_col).cast(pl.String).fill_null("")
    # An ID written plainly (nearly all) is its own clean form: only the others are cleaned.
    plain = raw.str.contains(r"^[0-9]{17}[0-9X]$")
    if plain.all():
        clean = raw
    else:
        idx = (~plain).arg_true()
        clean = raw.scatter(idx, _clean_id_text(raw.gather(idx)))
    numeric = (
        df.get_column(numeric_col).fill_null(False)
        if numeric_col
        else pl.Series([False] * n, dtype=pl.Boolean)
    )
    sci = clean.str.contains(_SCI_RE)
    num18 = numeric & clean.str.contains(r"^[0-9]{16,18}(\.0+)?$") & ~sci
    s18 = clean.str.contains(r"^[0-9]{17}[0-9X]$") & ~sci & ~num18
    s15 = clean.str.contains(r"^[0-9]{15}$") & ~num18

    kind = pl.Series("id_kind", ["unusable"] * n, dtype=pl.String)
    canonical = pl.Series("id_canonical", [None] * n, dtype=pl.String)
    digits = pl.Series("id_digits", [None] * n, dtype=pl.String)

    if sci.any():
        idx = sci.arg_true()
        groups = clean.gather(idx).str.extract_groups(_SCI_RE)
        mant = (groups.struct.field("1") + groups.struct.field("2").fill_null("")).str.strip_chars_end("0")
        mant = mant.str.slice(0, 15).replace("", "0")
        kind = kind.scatter(idx, "excel")
        digits = digits.scatter(idx, mant)
    if num18.any():
        idx = num18.arg_true()
        kind = kind.scatter(idx, "excel")
        digits = digits.scatter(
            idx, pl.Series([excel_digits(v) for v in clean.gather(idx).to_list()], dtype=pl.String)
        )
    if s18.any():
        idx = s18.arg_true()
        vals = clean.gather(idx)
        ok = _check_digit_ok(vals) & _real_dates(vals.str.slice(6, 8))
        k = pl.select(
            pl.when(ok).then(pl.lit("valid")).when(vals.str.ends_with("000")).then(pl.lit("excel"))
            .otherwise(pl.lit("bad_check"))
        ).to_series()  # fmt: skip
        kind = kind.scatter(idx, k)
        canonical = canonical.scatter(idx, pl.select(pl.when(ok).then(vals)).to_series())
        digits = digits.scatter(
            idx, pl.select(pl.when(k == "excel").then(vals.str.slice(0, 15)).otherwise(vals)).to_series()
        )
    if s15.any():
        idx = s15.arg_true()
        vals = clean.gather(idx)
        ok = _real_dates("19" + vals.str.slice(6, 6))
        idx, vals = idx.filter(ok), vals.filter(ok)
        first17 = vals.str.slice(0, 6) + "19" + vals.str.slice(6, 9)
        up = first17 + pl.Series(_check_chars(first17.to_list()), dtype=pl.String)
        kind = kind.scatter(idx, "upgraded")
        canonical = canonical.scatter(idx, up)
        digits = digits.scatter(idx, up)
    return df.with_columns(canonical, kind, digits)


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


# ------------------------------------------------------------------ who a published person is


def shared_numbers(*persons: pl.DataFrame) -> set[str]:
    """The ID numbers flagged ``shared_id`` (重号: the household extract gives the number to
    several people, each a person of their own) in any of these persons.parquet frames."""
    out: set[str] = set()
    for df in persons:
        if "shared_id" in df.columns:
            out.update(df.filter(pl.col("shared_id").fill_null(False))["id_number"].to_list())
    return out


def person_refs(persons: pl.DataFrame, shared: set[str] | None = None) -> pl.Series:
    """Who each row of a persons.parquet frame is, as the refresh's ``person_id``: the ID number;
    for a holder of a shared household number (its ``shared_id``, or an ID number in ``shared``)
    the ID number, ``#`` and the name (link/common.py ``holder_id_sql``). Two registries are
    compared on these with ``shared`` = :func:`shared_numbers` of both, so that a number shared in
    one of them only is told apart by name in both (never one holder's answers on the other)."""
    ids = persons["id_number"]
    flag = pl.col("shared_id").fill_null(False) if "shared_id" in persons.columns else pl.lit(False)
    if shared:
        flag = flag | pl.col("id_number").is_in(sorted(shared))
    hit = persons.select(flag.alias("_hit")).to_series()
    if not hit.any():
        return ids.alias("person_ref")
    return persons.select(
        pl.when(hit)
        .then(pl.col("id_number") + "#" + pl.col("name").fill_null(""))
        .otherwise(pl.col("id_number"))
        .alias("person_ref")
    ).to_series()
