"""Parquet files: every column cast to text."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.errors import FileProblem
from .base import _reraise_interrupts


def read_parquet(path: Path) -> tuple[list[str], pl.DataFrame]:
    try:
        df = pl.read_parquet(path)
    except BaseException as e:
        _reraise_interrupts(e)
        raise FileProblem(
            path, f"the Parquet file cannot be read ({type(e).__name__})", "Ask for a new export."
        ) from None
    header = list(df.columns)
    df = df.select([pl.col(c).cast(pl.String) for c in header])
    df.columns = [f"c{j}" for j in range(len(header))]
    return header, df
