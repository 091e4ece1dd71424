"""Nothing lost: per file and sheet, rows read = linked + new persons + duplicates + quarantined + review
+ unmatched. Sheets skipped and files not read are listed too, with the reason (``note``)."""

from __future__ import annotations

import polars as pl

KEYS = ["source", "file", "sheet"]
# Where every extract row ends (links.parquet ``outcome``): the terms of the balance.
OUTCOMES = ("linked", "new_person", "duplicate", "quarantined", "review", "unmatched")


def reconciliation_frame(
    links: pl.DataFrame,
    rows_read: dict[tuple, int] | None = None,
    not_read: list[dict] | None = None,
) -> pl.DataFrame:
    """One row per (source, file, sheet) read, then one per sheet skipped or file not read.

    ``rows_read`` comes from the load stage (what the reader counted), keyed (source, file, sheet)
    (or (source, file) for a frame without sheets); the outcomes come from ``links``.
    ``balanced`` is true only when the two agree; a row of ``not_read`` has no counts and a note."""
    if "sheet" not in links.columns:
        links = links.with_columns(sheet=pl.lit("", dtype=pl.String))
    links = links.with_columns(pl.col("sheet").fill_null(""))
    # ``links`` is one row per extract row, or already counted (a column ``n``).
    grouped = (
        links.group_by(*KEYS, "outcome").agg(pl.col("n").sum().alias("len"))
        if "n" in links.columns
        else links.group_by(*KEYS, "outcome").len()
    )
    counts = grouped.pivot(on="outcome", index=KEYS, values="len").fill_null(0)
    if counts.is_empty():
        counts = pl.DataFrame(schema={**dict.fromkeys(KEYS, pl.String)})
    for o in OUTCOMES:
        if o not in counts.columns:
            counts = counts.with_columns(pl.lit(0, dtype=pl.UInt32).alias(o))
    total = pl.sum_horizontal([pl.col(o) for o in OUTCOMES])
    if rows_read is None:
        counts = counts.with_columns(rows_read=total)
    else:
        read = pl.DataFrame(
            [{"source": k[0], "file": k[1], "sheet": k[2] if len(k) > 2 else "", "rows_read": n}
             for k, n in rows_read.items()],
            schema={"source": pl.String, "file": pl.String, "sheet": pl.String, "rows_read": pl.Int64},
        )  # fmt: skip
        counts = read.join(counts, on=KEYS, how="full", coalesce=True).fill_null(0)
    counts = counts.with_columns(
        balanced=(pl.col("rows_read").cast(pl.Int64) == total.cast(pl.Int64)),
        note=pl.lit("", dtype=pl.String),
    )
    out = counts.select(*KEYS, "rows_read", *OUTCOMES, "balanced", "note").sort(KEYS)
    if not_read:
        extra = pl.DataFrame(
            [{**{k: r.get(k) or "" for k in KEYS}, "note": r["note"]} for r in not_read],
            schema={**dict.fromkeys(KEYS, pl.String), "note": pl.String},
        ).with_columns(
            rows_read=pl.lit(0, dtype=out.schema["rows_read"]),
            **{o: pl.lit(0, dtype=out.schema[o]) for o in OUTCOMES},
            balanced=pl.lit(True),
        )
        out = pl.concat([out, extra.select(out.columns)], how="vertical")
    return out
