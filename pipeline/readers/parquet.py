"""Parquet files: every column cast to text, after the footer's declared size is checked."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.errors import FileProblem
from ..core.i18n import _
from .base import _reraise_interrupts, limits


def _unreadable(path: Path, e: BaseException) -> FileProblem:
    _reraise_interrupts(e)
    return FileProblem(
        path,
        _("the Parquet file cannot be read ({error})").format(error=type(e).__name__),
        _("Ask for a new export."),
    )


def check_parquet_bounds(path: Path) -> None:
    """Refuse a Parquet file whose footer declares more rows, columns or uncompressed bytes than the
    limits (a few hundred KB of run-length-encoded data can unpack to tens of millions of rows)."""
    import pyarrow.parquet as pq

    lim = limits()
    try:
        md = pq.read_metadata(path)
        rows, cols = md.num_rows, md.num_columns
        unpacked = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    except BaseException as e:  # pyarrow's errors for a damaged footer
        raise _unreadable(path, e) from None
    too_big = _("Check it is the right file; an extract that large should be split by street.")
    if rows > lim["max_parquet_rows"]:
        raise FileProblem(
            path,
            _("the Parquet file declares {rows:,} rows (more than {limit:,})").format(
                rows=rows, limit=lim["max_parquet_rows"]
            ),
            too_big,
        )
    if unpacked > lim["max_parquet_mb"] * (1 << 20):
        raise FileProblem(
            path,
            _("the Parquet file declares {mb:,.0f} MB of data unpacked (more than {limit:g} MB)").format(
                mb=unpacked / (1 << 20), limit=lim["max_parquet_mb"]
            ),
            too_big,
        )
    if cols > lim["max_columns"]:
        raise FileProblem(
            path,
            _("the Parquet file has {columns:,} columns (more than {limit})").format(
                columns=cols, limit=lim["max_columns"]
            ),
            _("This is not an extract as departments export them; ask for the file again."),
        )


def read_parquet(path: Path) -> tuple[list[str], pl.DataFrame]:
    check_parquet_bounds(path)
    try:
        df = pl.read_parquet(path)
    except BaseException as e:
        raise _unreadable(path, e) from None
    header = list(df.columns)
    df = df.select([pl.col(c).cast(pl.String) for c in header])
    df.columns = [f"c{j}" for j in range(len(header))]
    return header, df
