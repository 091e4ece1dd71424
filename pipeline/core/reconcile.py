"""Nothing lost: per file, rows read = linked + new persons + duplicates + quarantined + review + unmatched."""

from __future__ import annotations

import polars as pl

from ..stages.link import OUTCOMES


def reconciliation_frame(
    links: pl.DataFrame, rows_read: dict[tuple[str, str], int] | None = None
) -> pl.DataFrame:
    """One row per (source, file). ``rows_read`` comes from the load stage (what the reader counted);
    the outcomes come from ``links``. ``balanced`` is true only when the two agree."""
    # ``links`` is one row per extract row, or already counted (a column ``n``).
    grouped = (
        links.group_by("source", "file", "outcome").agg(pl.col("n").sum().alias("len"))
        if "n" in links.columns
        else links.group_by("source", "file", "outcome").len()
    )
    counts = grouped.pivot(on="outcome", index=["source", "file"], values="len").fill_null(0)
    for o in OUTCOMES:
        if o not in counts.columns:
            counts = counts.with_columns(pl.lit(0, dtype=pl.UInt32).alias(o))
    total = pl.sum_horizontal([pl.col(o) for o in OUTCOMES])
    if rows_read is None:
        counts = counts.with_columns(rows_read=total)
    else:
        read = pl.DataFrame(
            [{"source": s, "file": f, "rows_read": n} for (s, f), n in rows_read.items()],
            schema={"source": pl.String, "file": pl.String, "rows_read": pl.Int64},
        )
        counts = read.join(counts, on=["source", "file"], how="full", coalesce=True).fill_null(0)
    counts = counts.with_columns(balanced=(pl.col("rows_read").cast(pl.Int64) == total.cast(pl.Int64)))
    return counts.select("source", "file", "rows_read", *OUTCOMES, "balanced").sort("source", "file")
