"""Dates as departments write them: ``parse_date`` (scalar) and ``date_expr`` (polars) must agree."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kuomian.core.dates import date_expr, parse_date

BATCH = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D = date(1990, 5, 3)


def vectorised(values: list[str | None]) -> list[date | None]:
    df = pl.DataFrame({"raw": pl.Series(values, dtype=pl.String)})
    out = df.select(d=date_expr(pl.col("raw"))).get_column("d")
    assert out.dtype == pl.Date
    return out.to_list()


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


GOLDEN: list[tuple[str | None, date | None]] = [
    ("1990-05-03", D),
    ("19900503", D),
    ("1990/5/3", D),
    ("1990/05/03", D),
    ("1990.5.3", D),
    ("1990-5-3", D),
    ("1990年5月3日", D),
    ("1990年05月03日", D),
    ("32996", D),  # Excel serial
    ("32996.0", D),
    ("32996.75", D),  # a serial with a time of day
    ("1990-05-03 00:00:00", D),
    ("1990-05-03 13:45:10.123", D),
    ("1990-05-03T08:30:00", D),
    ("1990/5/3 0:00", D),
    ("１９９０-０５-０３", D),  # full-width digits
    ("１９９０年５月３日", D),
    ("１９９００５０３", D),
    ("３２９９６", D),
    ("  1990-05-03\t", D),
    ("\u30001990-05-03\u3000", D),
    ("2000-02-29", date(2000, 2, 29)),
    ("44927", date(2023, 1, 1)),
    ("1000", date(1902, 9, 26)),  # the smallest serial the format accepts
    # not dates
    ("1990-02-30", None),
    ("19900230", None),
    ("1900-02-29", None),
    ("1990-13-01", None),
    ("1990-00-10", None),
    ("1990年5月", None),
    ("1990-05", None),
    ("abc", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("0", None),
    ("123456", None),  # neither a serial (4-5 digits) nor YYYYMMDD
    ("99999", None),  # serial past 80000
    ("0000", None),
    ("0000-01-01", None),  # a placeholder year: Python's date cannot hold year 0
    ("00000101", None),
    ("1990-05-03x", None),
    ("不详", None),
]


@pytest.mark.parametrize(("raw", "want"), GOLDEN)
def test_parse_date_golden(raw, want):
    assert parse_date(raw) == want


def test_date_expr_golden():
    raws = [raw for raw, _ in GOLDEN]
    assert vectorised(raws) == [want for _, want in GOLDEN]


def test_excel_serial_epoch():
    # Excel day 32996 is 1990-05-03; day 60 is Excel's phantom 1900-02-29, so the epoch is 1899-12-30
    assert date(1899, 12, 30) + timedelta(days=32996) == D
    assert parse_date("32996") == D


# ---------------------------------------------------------------- properties

FORMATS = [
    lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
    lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}",
    lambda d: f"{d.year:04d}/{d.month}/{d.day}",
    lambda d: f"{d.year:04d}.{d.month}.{d.day}",
    lambda d: f"{d.year:04d}年{d.month}月{d.day}日",
    lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d} 00:00:00",
    lambda d: full_width(f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
]


@BATCH
@given(
    st.lists(
        st.tuples(st.dates(date(1, 1, 1), date(9999, 12, 31)), st.integers(0, len(FORMATS) - 1)), min_size=1
    )
)
def test_every_format_round_trips(cases):
    raws = [FORMATS[f](d) for d, f in cases]
    wants = [d for d, _ in cases]
    assert [parse_date(r) for r in raws] == wants
    assert vectorised(raws) == wants


@BATCH
@given(st.lists(st.dates(date(1902, 9, 26), date(2119, 1, 1)), min_size=1))
def test_excel_serials_round_trip(days):
    epoch = date(1899, 12, 30)
    raws = [str((d - epoch).days) for d in days]
    assert [parse_date(r) for r in raws] == days
    assert vectorised(raws) == days


DATEISH = st.sampled_from(
    list("0123456789-/.年月日T: ")
    + [chr(ord(c) + 0xFEE0) for c in "0123456789"]
    + ["\t", "\n", "\u3000", "\u00a0", "\x1c", "\x1f", "\x85", "\u2028", "\u200b", "\ufeff", "E", "+"]
)
ANY_TEXT = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet=DATEISH, max_size=20),
    st.dates().map(lambda d: f"{d:%Y-%m-%d}"),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_TEXT, min_size=1, max_size=40))
@example(["\x1f19900503", "1990-05-03\x1e", "0000-01-01", "00000101", "1990-05-03 \n5", "32996\x1c"])
def test_scalar_and_vectorised_agree_and_never_raise(raws):
    scalar = [parse_date(r) for r in raws]
    assert all(v is None or isinstance(v, date) for v in scalar)
    assert vectorised(raws) == scalar
