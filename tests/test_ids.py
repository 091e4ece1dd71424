"""Resident ID numbers: properties of ``standardise_id`` and agreement with ``add_id_columns``."""

from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kuomian.core.ids import (
    IdResult,
    add_id_columns,
    check_digit,
    mask_id,
    mask_id_expr,
    redact_ids,
    standardise_id,
)

# A polars select costs ~35 ms whatever its size, so the vectorised checks draw lists and run few examples.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WIDE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BATCH = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ID18_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def reference_check(first17: str) -> str:
    """ISO 7064 MOD 11-2, written independently of the module: sum(a_i * 2^(17-i)) + check ≡ 1 (mod 11)."""
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    v = (12 - total % 11) % 11
    return "X" if v == 10 else str(v)


@st.composite
def valid_ids(draw, lo: date = date(1900, 1, 1), hi: date = date(2025, 12, 31), lo_addr: int = 0) -> str:
    addr = draw(st.integers(lo_addr, 999_999))
    born = draw(st.dates(lo, hi))
    seq = draw(st.integers(0, 999))
    first17 = f"{addr:06d}{born:%Y%m%d}{seq:03d}"
    return first17 + reference_check(first17)


def _real(yyyymmdd: str) -> bool:
    """A real date in the years the module accepts for a birth date (1880-2100)."""
    try:
        d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1880 <= d.year <= 2100


def vectorised(values: list[str | None], numeric: list[bool] | None = None) -> list[IdResult]:
    data = {"raw": pl.Series(values, dtype=pl.String)}
    if numeric is not None:
        data["num"] = pl.Series(numeric, dtype=pl.Boolean)
    df = pl.DataFrame(data)
    out = add_id_columns(df, "raw", "num" if numeric is not None else None)
    return [IdResult(c, k, d) for c, k, d in out.select("id_canonical", "id_kind", "id_digits").iter_rows()]


def scalar(values: list[str | None], numeric: list[bool] | None = None) -> list[IdResult]:
    numeric = numeric or [False] * len(values)
    return [standardise_id(v, numeric_cell=n) for v, n in zip(values, numeric, strict=True)]


# ---------------------------------------------------------------- check digit


@pytest.mark.parametrize(
    "id18",
    ["11010519491231002X", "440524188001010014", "530181199005031235"],
)
def test_known_ids_are_valid(id18):
    assert check_digit(id18[:17]) == id18[17]
    assert standardise_id(id18) == IdResult(id18, "valid", id18)


@FAST
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_digit_matches_reference(first17):
    assert check_digit(first17) == reference_check(first17)


# ---------------------------------------------------------------- properties


@WIDE
@given(valid_ids())
def test_standardise_is_idempotent(id18):
    first = standardise_id(id18)
    assert first == IdResult(id18, "valid", id18)
    again = standardise_id(first.canonical)
    assert again == first


@WIDE
@given(valid_ids())
def test_every_single_substitution_is_detected(id18):
    for i in range(18):
        for c in "0123456789X":
            if c == id18[i]:
                continue
            bad = id18[:i] + c + id18[i + 1 :]
            r = standardise_id(bad)
            assert r.kind != "valid", (i, c)
            assert r.canonical is None, (i, c)
            # the exact class: an X inside the digits is unusable; a run of three zeros at
            # the end reads as an Excel-damaged number; else (an impossible date included:
            # it is still one edit from the real number) a bad check, a repair candidate
            if c == "X" and i < 17:
                expected = "unusable"
            elif bad.endswith("000"):
                expected = "excel"
            else:
                expected = "bad_check"
            assert r.kind == expected, (i, c, r)
            if expected == "bad_check":
                assert r.digits == bad


@WIDE
@given(valid_ids())
def test_every_adjacent_swap_is_detected(id18):
    swaps = 0
    for i in range(17):
        if id18[i] == id18[i + 1]:
            continue
        swaps += 1
        bad = id18[:i] + id18[i + 1] + id18[i] + id18[i + 2 :]
        r = standardise_id(bad)
        assert r.kind != "valid", (i, r)
        assert r.canonical is None
        assert r.kind in ("bad_check", "unusable", "excel")
    assert swaps > 0  # an 18-character ID never has all characters equal (the check digit sees to that)


@WIDE
@given(valid_ids(lo=date(1900, 1, 1), hi=date(1999, 12, 31)))
def test_15_digit_round_trip(id18):
    old = id18[:6] + id18[8:14] + id18[14:17]
    assert len(old) == 15
    assert standardise_id(old) == IdResult(id18, "upgraded", id18)
    # a dirty 15-digit number is upgraded all the same
    assert standardise_id(f" '{old}\t") == IdResult(id18, "upgraded", id18)
    # and the upgraded canonical is itself a valid ID
    assert standardise_id(id18).kind == "valid"


def test_15_digit_with_impossible_date_is_unusable():
    assert standardise_id("530181900230123").kind == "unusable"  # 1990-02-30


# ---------------------------------------------------------------- dirty input


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in s)


_SPACES = [" ", "\t", "\u3000", "\u00a0", "\u200b", "\ufeff", "\n", "\r\n", "\x1f", "\u2009", "\u2060"]


@st.composite
def dirty_variants(draw, id18: str) -> str:
    s = id18
    if draw(st.booleans()):
        s = s.lower()
    if draw(st.booleans()):
        keep = draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s)))
        s = "".join(full_width(c) if k else c for c, k in zip(s, keep, strict=True))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(s)))
        s = s[:pos] + draw(st.sampled_from(_SPACES)) + s[pos:]
    wrap = draw(st.sampled_from(["", "'", "`", '""', "“”", "‘’", "''"]))
    if len(wrap) == 1:
        s = wrap + s
    elif wrap:
        s = wrap[0] + s + wrap[1]
    return s


@BATCH
@given(st.data())
def test_dirty_variants_standardise_to_the_clean_id(data):
    ids = data.draw(st.lists(valid_ids(), min_size=1, max_size=6))
    variants, wants = [], []
    for id18 in ids:
        for _ in range(6):
            variants.append(data.draw(dirty_variants(id18)))
            wants.append(IdResult(id18, "valid", id18))
    assert scalar(variants) == wants
    assert vectorised(variants) == wants


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        "'11010519491231002X",
        '"11010519491231002X"',
        "“11010519491231002X”",
        " 110105 19491231 002X ",
        "\t11010519491231002X\r\n",
        "1101\u200b0519491231002X",
        "\ufeff11010519491231002X",
    ],
)
def test_dirty_golden(raw):
    want = IdResult("11010519491231002X", "valid", "11010519491231002X")
    assert standardise_id(raw) == want
    assert vectorised([raw]) == [want]


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("5.30181E+17", "530181"),
        ("5.30181e+17", "530181"),
        ("5.30181E17", "530181"),
        ("５.３０１８１Ｅ＋１７", "530181"),
        ("5.30181199005031E+17", "530181199005031"),
        ("5.301811990050312E+17", "530181199005031"),  # more than 15 digits: Excel never kept them
        ("5.3018E+17", "53018"),
        ("5.30180E+17", "53018"),  # trailing zeros of the mantissa say nothing
        ("5E+17", "5"),
    ],
)
def test_scientific_notation_is_excel(raw, digits):
    want = IdResult(None, "excel", digits)
    assert standardise_id(raw) == want
    assert vectorised([raw]) == [want]


@BATCH
@given(st.lists(st.tuples(valid_ids(), st.integers(1, 15)), min_size=1, max_size=20))
def test_scientific_notation_keeps_the_surviving_digits(cases):
    raws, wants = [], []
    for id18, n in cases:
        mantissa = id18[0] + ("." + id18[1:n] if n > 1 else "")
        raws.append(f"{mantissa}E+17")
        wants.append(IdResult(None, "excel", (id18[:n]).rstrip("0") or "0"))
    assert scalar(raws) == wants
    assert vectorised(raws) == wants


@BATCH
@given(st.lists(valid_ids(lo_addr=100_000).filter(lambda s: s[17] != "X"), min_size=1, max_size=20))
def test_numeric_cell_18_digits_is_excel(ids):
    # a number cell cannot hold an X (nor keep a leading zero; real address codes start 1-8)
    raws = [r for id18 in ids for r in (id18, id18 + ".0")]
    got = scalar(raws, [True] * len(raws))
    assert vectorised(raws, [True] * len(raws)) == got
    for raw, r in zip(raws, got, strict=True):
        # Excel keeps 15 significant digits, the 15th rounded: the truncated prefix or one more
        assert r.kind == "excel" and r.canonical is None and len(r.digits) == 15
        assert int(r.digits) - int(raw[:15]) in (0, 1), (raw, r)
    # the same text in a text cell is a good ID
    assert [standardise_id(id18, numeric_cell=False).kind for id18 in ids] == ["valid"] * len(ids)


@BATCH
@given(st.lists(valid_ids(lo=date(1900, 1, 1), hi=date(1999, 12, 31)), min_size=1, max_size=20))
def test_numeric_cell_15_digits_survives(ids):
    # Excel keeps 15 significant digits: an old 15-digit ID in a number cell is intact
    olds = [id18[:6] + id18[8:17] for id18 in ids]
    wants = [IdResult(id18, "upgraded", id18) for id18 in ids]
    assert scalar(olds, [True] * len(olds)) == wants
    assert vectorised(olds, [True] * len(olds)) == wants


def test_excel_number_exported_as_text_is_excel():
    # 530181199005031235 stored as a number and written out again: the tail became zeros
    r = standardise_id("530181199005031000")
    assert r == IdResult(None, "excel", "530181199005031")


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "无", "不详", "/", "-", "0", "X" * 18, "5301811990050312345"]
)
def test_blanks_and_placeholders_are_unusable(raw):
    want = IdResult(None, "unusable", None)
    assert standardise_id(raw) == want
    assert vectorised([raw]) == [want]


def test_impossible_birth_date_is_a_repair_candidate_not_valid():
    # 1990-02-30 with a matching check digit: never trusted, but kept for the one-edit repair
    first17 = "53018119900230123"
    r = standardise_id(first17 + check_digit(first17))
    assert r.kind == "bad_check" and r.canonical is None


# ---------------------------------------------------------------- scalar == vectorised

ID_ALPHABET = st.sampled_from(
    list("0123456789Xx.Ee+-/'\"` ")
    + [chr(ord(c) + 0xFEE0) for c in "0123456789Xx"]
    + ["\t", "\n", "\u3000", "\u00a0", "\u200b", "\u200d", "\ufeff", "\x1c", "\x1f", "\x00", "\x85", "“", "’"]
)


@st.composite
def id_like_text(draw) -> str:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.text())
    if kind == 1:
        return draw(st.text(alphabet=ID_ALPHABET, max_size=25))
    if kind == 2:
        return draw(dirty_variants(draw(valid_ids())))
    if kind == 3:
        # a valid ID with one random character changed, inserted or removed
        s = draw(valid_ids())
        pos = draw(st.integers(0, 17))
        op = draw(st.sampled_from(["sub", "ins", "del"]))
        c = draw(ID_ALPHABET)
        if op == "sub":
            return s[:pos] + c + s[pos + 1 :]
        if op == "ins":
            return s[:pos] + c + s[pos:]
        return s[:pos] + s[pos + 1 :]
    s = draw(valid_ids(lo=date(1900, 1, 1), hi=date(1999, 12, 31)))
    return s[:6] + s[8:17]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.none(), id_like_text()), st.booleans()), min_size=1, max_size=40))
@example(
    [("5.30181E+17", False), ("530181199005031235", True), (None, True), ("\x1f530181199005031235", False)]
)
def test_vectorised_agrees_with_scalar(rows):
    values = [v for v, _ in rows]
    numeric = [n for _, n in rows]
    # one select for both: with the numeric flags, and with none (all text cells)
    assert vectorised(values + values, numeric + [False] * len(values)) == scalar(values, numeric) + scalar(
        values
    )


def test_vectorised_agrees_on_long_and_odd_strings():
    id18 = "11010519491231002X"
    values = [
        "1" * 10_000,
        id18 * 500,
        "\u200b" * 5000 + id18 + " " * 5000,
        "５" * 18,
        "\x00" + id18,
        "𠀀" * 100,
        "E" * 50,
        "1E+" + "9" * 400,
    ]
    assert vectorised(values) == scalar(values)
    assert standardise_id(values[2]) == IdResult(id18, "valid", id18)


@WIDE
@given(st.text(max_size=300))
def test_standardise_never_raises(raw):
    for numeric in (False, True):
        r = standardise_id(raw, numeric_cell=numeric)
        assert r.kind in ("valid", "upgraded", "bad_check", "excel", "unusable")
        if r.kind in ("valid", "upgraded"):
            assert r.canonical is not None and len(r.canonical) == 18 and r.digits == r.canonical
        else:
            assert r.canonical is None


# ---------------------------------------------------------------- privacy


@FAST
@given(valid_ids())
def test_mask_id_shows_first_6_and_last_4(id18):
    m = mask_id(id18)
    assert m == id18[:6] + "*" * 8 + id18[-4:]
    assert id18 not in m
    assert mask_id(id18[:15]) == id18[:6] + "*" * 5 + id18[11:15]


@pytest.mark.parametrize(
    ("value", "masked"), [(None, ""), ("", ""), ("1234", "****"), ("1234567890", "*" * 10)]
)
def test_mask_id_short_values(value, masked):
    assert mask_id(value) == masked


def test_mask_id_expr_agrees():
    values = [None, "", "1234", "11010519491231002X", "110105491231002", "12345678901"]
    out = (
        pl.DataFrame({"v": pl.Series(values, dtype=pl.String)}).select(mask_id_expr(pl.col("v"))).to_series()
    )
    assert out.to_list() == [mask_id(v) for v in values]


def test_redact_ids_in_a_sentence():
    text = (
        "申请人11010519491231002X（旧号110105491231002）与530181199005031235、"
        "11010519491231002x重复；电话13800138000，金额12345。"
    )
    out = redact_ids(text)
    for secret in ("11010519491231002X", "110105491231002", "530181199005031235", "11010519491231002x"):
        assert secret not in out
    assert "110105********002X" in out
    assert "110105*****1002" in out
    assert "530181********1235" in out
    assert "13800138000" in out and "12345" in out  # phone numbers and amounts are not IDs
    assert out.startswith("申请人") and out.endswith("金额12345。")
    assert ID18_RE.search(out) is None


@FAST
@given(
    st.lists(
        st.tuples(valid_ids(), st.text(alphabet="申请人与、，。 ：abc", min_size=1, max_size=5)),
        min_size=1,
        max_size=6,
    )
)
def test_redact_ids_masks_every_id(parts):
    text = "".join(sep + id18 for id18, sep in parts)
    out = redact_ids(text)
    for id18, _ in parts:
        assert id18 not in out
        assert mask_id(id18) in out
    assert ID18_RE.search(out) is None


# ---------------------------------------------------------------- look-alikes (issue 20)

LOOKALIKE_CASES = [
    # (raw, expected canonical or None, expected kind)
    ("53018119800115011\u00d7", "53018119800115011X", "valid"),  # multiplication sign
    ("53018119800115011\u0425", "53018119800115011X", "valid"),  # Cyrillic capital Kha
    ("53018119800115011\u0445", "53018119800115011X", "valid"),  # Cyrillic small kha
    ("53018119800115011\u03c7", "53018119800115011X", "valid"),  # Greek small chi
    ("53018119800115011\u2169", "53018119800115011X", "valid"),  # Roman numeral ten
    ("53018119800115011\u2179", "53018119800115011X", "valid"),  # small Roman numeral ten
    ("53O181197909090116", "530181197909090116", "valid"),  # letter O for zero
    ("530l81197909090116", "530181197909090116", "valid"),  # letter l for one
    ("5301811979O9O9O116", "530181197909090116", "valid"),  # three of them
    ("5301811979O9O9OlI6", None, "unusable"),  # five: not a mistyped number
    ("O53018119790909011", None, "unusable"),  # must start with a digit
    ("953156198808080110", "953156198808080110", "valid"),  # foreigners' permanent residence card
]


@pytest.mark.parametrize("raw,canonical,kind", LOOKALIKE_CASES)
def test_lookalikes_for_x_and_digits_are_put_right(raw, canonical, kind):
    got = standardise_id(raw)
    assert (got.canonical, got.kind) == (canonical, kind), raw
    vec = add_id_columns(pl.DataFrame({"raw": [raw, "53018119800115011X"]}), "raw")
    assert vec.row(0, named=True)["id_canonical"] == canonical
    assert vec.row(0, named=True)["id_kind"] == kind


def test_real_dates_of_a_column_is_real_date_of_each_value():
    """The vectorised calendar check of add_id_columns agrees with _real_date on every kind of
    8-digit date: every year with edge months and days, every day of years at the limits."""
    import polars as pl

    from kuomian.core.ids import _real_date, _real_dates

    vals = [
        f"{y:04d}{m:02d}{d:02d}"
        for y in range(0, 10000, 3)
        for m in (0, 1, 2, 12, 13)
        for d in (0, 1, 28, 29, 30, 31, 32)
    ]
    vals += [f"{y:04d}{m:02d}{d:02d}" for y in (1879, 1880, 1900, 2000, 2023, 2024, 2100, 2101)
             for m in range(0, 14) for d in range(0, 33)]  # fmt: skip
    assert _real_dates(pl.Series(vals)).to_list() == [_real_date(v) for v in vals]
