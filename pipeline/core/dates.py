"""Dates as departments write them.

``1990-05-03``, ``19900503``, ``1990/5/3``, ``1990.5.3``, ``1990年5月3日``,
``1990-05-03 00:00:00`` (datetime strings) and Excel serial numbers
(``32996`` = 1990-05-03). Anything else is null and counted as unparsed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

import polars as pl

EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0 once its 1900 leap-year bug is accounted for
_SERIAL_RE = r"^[0-9]{4,5}(\.[0-9]+)?$"
# Exactly the characters Python's str.strip() removes (polars' strip_chars() omits \x1c-\x1f),
# so that both implementations trim the same.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def parse_date(raw: str | None) -> date | None:
    """Scalar reference for :func:`date_expr`."""
    if raw is None:
        return None
    s = unicodedata.normalize("NFKC", str(raw)).strip(_WHITESPACE)
    if not s:
        return None
    if re.fullmatch(_SERIAL_RE, s):
        n = int(float(s))
        return EXCEL_EPOCH + timedelta(days=n) if 1 <= n <= 80000 else None
    s = re.sub(r"[T ].*$", "", s)  # drop a time part
    m = re.fullmatch(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?", s) or re.fullmatch(
        r"([0-9]{4})([0-9]{2})([0-9]{2})", s
    )
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def date_expr(col: pl.Expr) -> pl.Expr:
    """Parse a string column of mixed date formats to ``pl.Date`` (null when unparseable)."""
    s = col.str.normalize("NFKC").str.strip_chars(_WHITESPACE)
    serial = (
        pl.when(s.str.contains(_SERIAL_RE))
        .then(s.cast(pl.Float64, strict=False).floor().cast(pl.Int64, strict=False))
        .otherwise(None)
    )
    serial_date = pl.when(serial.is_between(1, 80000)).then(pl.lit(EXCEL_EPOCH) + pl.duration(days=serial))
    d = s.str.replace(r"[T ].*$", "")
    parts = d.str.extract_groups(r"^([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?$")
    compact = d.str.extract_groups(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")

    def _from(parts_struct: pl.Expr) -> pl.Expr:
        y = parts_struct.struct.field("1")
        m = parts_struct.struct.field("2").str.zfill(2)
        dd = parts_struct.struct.field("3").str.zfill(2)
        return (y + "-" + m + "-" + dd).str.to_date("%Y-%m-%d", strict=False)

    out = (
        pl.when(s.str.contains(_SERIAL_RE))
        .then(serial_date.cast(pl.Date))
        .otherwise(pl.coalesce(_from(parts), _from(compact)))
    )
    # polars accepts year 0 ("0000-01-01", a placeholder); Python's date cannot hold it and parse_date says None.
    return pl.when(out.dt.year() >= 1).then(out)
