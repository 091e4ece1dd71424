"""Schema of ``cls_persons`` / ``persons.parquet`` (rules.md: exactly one status per person)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from kuomian.schemas import check

STATUSES = [
    "excluded",
    "receiving",
    "enrolled_employee",
    "resident_upgradable",
    "enrolled_resident",
    "unenrolled",
]
REASONS = ["deceased", "moved_out", "under_16", "student", "incarcerated"]


class Persons(pa.DataFrameModel):
    person_id: str = pa.Field(unique=True, str_matches=r"^[0-9]{17}[0-9X]$")
    hukou_local: bool
    status: str = pa.Field(isin=STATUSES)
    exclusion_reason: str = pa.Field(nullable=True, isin=REASONS)
    group: pl.Int64 = pa.Field(nullable=True, ge=1, le=8, alias="group")
    street_code: str = pa.Field(nullable=True, str_matches=r"^[0-9]{12}$")

    @pa.dataframe_check
    def reason_iff_excluded(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") == "excluded") == pl.col("exclusion_reason").is_not_null()
        )

    @pa.dataframe_check
    def group_iff_registry(cls, data) -> pl.LazyFrame:
        reg = pl.col("status").is_in(["unenrolled", "resident_upgradable"])
        return data.lazyframe.select(reg == pl.col("group").is_not_null())

    class Config:
        strict = False
        coerce = True


def validate_persons(df: pl.DataFrame) -> None:
    """Raise a KuomianError naming the failed checks (never the failing values: they hold IDs)."""
    check(Persons, df, "classifying")
