"""Cells for people's spreadsheets: the one writer path of every CSV meant for people.

Hand-offs, employers.csv, reconciliation.csv, indicators.csv, compare's and check's CSVs are
opened in Excel, WPS or LibreOffice, which evaluate a text cell beginning with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return (``=HYPERLINK(…)`` leaks data when clicked; DDE
payloads run programs on old Excel). So every text cell written here that begins with one of
those gets a leading ``'`` (OWASP's CSV-injection advice; the survey import strips it again);
numbers stay numbers. A cell longer than Excel's 32,767 characters is cut with a mark. In
hand-offs and review every 15- or 18-digit ID-like number inside free text (an ID typed into an
address cell) is masked like the 身份证号 column.

Workbooks (:mod:`kuomian.core.xlsx`) write text as shared-string cells, which no spreadsheet
evaluates, and cut them at the same limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import polars as pl

from .text import where_matching

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TRIGGER_RE = r"^[=+\-@\t\r]"
MAX_CELL = 32_767  # Excel's limit
CUT_MARK = "…[已截断]"

# Polars' regex has no look-behind: the digits around an ID are captured and put back.
_ID18 = r"(^|[^0-9])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])([^0-9]|$)"
_ID15 = r"(^|[^0-9])([0-9]{6})[0-9]{5}([0-9]{4})([^0-9]|$)"


def neutralise(value: str) -> str:
    """One text cell as :func:`neutralise_expr` writes it."""
    if len(value) > MAX_CELL:
        value = value[: MAX_CELL - len(CUT_MARK)] + CUT_MARK
    return "'" + value if value.startswith(TRIGGERS) else value


def cap_expr(e: pl.Expr) -> pl.Expr:
    return (
        pl.when(e.str.len_chars() > MAX_CELL)
        .then(e.str.slice(0, MAX_CELL - len(CUT_MARK)) + pl.lit(CUT_MARK))
        .otherwise(e)
    )


def neutralise_expr(e: pl.Expr) -> pl.Expr:
    """A String expression written so that no spreadsheet evaluates it, and cut at 32,767 characters."""
    e = cap_expr(e)
    return pl.when(e.str.contains(TRIGGER_RE)).then(pl.lit("'") + e).otherwise(e)


def redact_ids_expr(e: pl.Expr) -> pl.Expr:
    """Mask every 15- or 18-digit ID-like number inside free text (as :func:`ids.redact_ids`)."""
    for _ in range(2):  # twice: two IDs one character apart share that character
        e = e.str.replace_all(_ID18, "${1}${2}********${3}${4}").str.replace_all(
            _ID15, "${1}${2}*****${3}${4}"
        )
    return e


# Every ID-like number :func:`redact_ids_expr` masks holds 15 digits in a row: a cell without
# such a run is left as it is, and the four capture-group replacements run on the few that have one.
_ID_RUN = r"[0-9]{15}"


def _redacted(s: pl.Series) -> pl.Series:
    """:func:`redact_ids_expr` of a String column, run only on the cells that hold a 15-digit run."""
    return where_matching(
        s, _ID_RUN, lambda v: v.to_frame().select(redact_ids_expr(pl.col(v.name))).to_series()
    )


def _is_text(name: str, dtype: pl.DataType, keep: tuple[str, ...]) -> bool:
    return not (name in keep or dtype.is_numeric() or dtype in (pl.Boolean, pl.Null) or dtype.is_temporal())


def people_frame(
    df: pl.DataFrame, *, redact: bool = True, keep: tuple[str, ...] = (), csv: bool = True
) -> pl.DataFrame:
    """Every non-numeric column as safe text (lists joined with 、); numbers, dates and booleans kept.

    ``redact``: mask ID-like numbers inside text (hand-offs, review; not check's result, which
    gives an office its own list back). ``keep``: columns left as they are. ``csv``: add the
    leading ``'`` to formula triggers (a workbook's text cells need none, only the length cap;
    :func:`quote_triggers` adds it later to a frame made with ``csv=False``).
    """
    text = [name for name, dtype in df.schema.items() if _is_text(name, dtype, keep)]
    exprs = []
    for name in text:
        col, dtype = pl.col(name), df.schema[name]
        if isinstance(dtype, pl.List):
            col = col.cast(pl.List(pl.String)).list.join("、")
        elif dtype != pl.String:
            col = col.cast(pl.String)
        exprs.append(col.alias(name))
    out = df.with_columns(exprs)
    if redact:
        out = out.with_columns([_redacted(out.get_column(name)) for name in text])
    return out.with_columns(
        [(neutralise_expr if csv else cap_expr)(pl.col(name)).alias(name) for name in text]
    )


def quote_triggers(df: pl.DataFrame, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """A frame made by :func:`people_frame` with ``csv=False``, as ``csv=True`` makes it: the
    leading ``'`` added to every text cell beginning with a formula trigger."""
    return df.with_columns(
        [
            pl.when(pl.col(n).str.contains(TRIGGER_RE))
            .then(pl.lit("'") + pl.col(n))
            .otherwise(pl.col(n))
            .alias(n)
            for n, dtype in df.schema.items()
            if dtype == pl.String and n not in keep
        ]
    )


def write_people_csv(
    target: Path | BinaryIO, df: pl.DataFrame, *, redact: bool = True, keep: tuple[str, ...] = ()
) -> int:
    """Write ``df`` as a CSV for people (UTF-8 with BOM for Excel, safe cells); the rows written."""
    out = people_frame(df, redact=redact, keep=keep)
    out.write_csv(target, include_bom=True)
    return out.height
