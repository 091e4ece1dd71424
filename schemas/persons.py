"""Schema of ``cls_persons`` / ``persons.parquet`` (rules.md: exactly one status per person).

The statuses, exclusion reasons and registry statuses are the policy's (rules/statuses.yaml),
read when a frame is checked, so that an edited policy is checked against itself.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from kuomian.core.policy import policy
from kuomian.schemas import check


def __getattr__(name: str) -> list[str]:
    """``STATUSES`` and ``REASONS``: every status and exclusion reason of the policy in force."""
    if name == "STATUSES":
        return list(policy().statuses.all)
    if name == "REASONS":
        return [r.reason for r in policy().statuses.reasons]
    raise AttributeError(name)


class Persons(pa.DataFrameModel):
    # the ID; for a holder of a number the household extract gives to several people (重号),
    # the ID + '#' + name (stages/link/common.py holder_id_sql): one person each
    person_id: str = pa.Field(unique=True, str_matches=r"^[0-9]{17}[0-9X](#.+)?$")
    shared_id: bool
    hukou_local: bool
    status: str
    exclusion_reason: str = pa.Field(nullable=True)
    group: pl.Int64 = pa.Field(nullable=True, ge=1, le=8, alias="group")
    street_code: str = pa.Field(nullable=True, str_matches=r"^[0-9]{12}$")

    @pa.dataframe_check
    def holder_iff_shared(cls, data) -> pl.LazyFrame:
        """A person_id longer than an ID (the holder's '#' + name) exactly for those flagged shared_id."""
        return data.lazyframe.select((pl.col("person_id").str.len_bytes() > 18) == pl.col("shared_id"))

    @pa.dataframe_check
    def one_person_per_id(cls, data) -> pl.LazyFrame:
        """Two persons share an ID number only where both are flagged shared_id (重号): no other
        person's person_id is a holder's number (person_id itself is unique)."""
        held = pl.col("person_id").filter(pl.col("shared_id")).str.slice(0, 18).implode()
        return data.lazyframe.select(pl.col("shared_id") | ~pl.col("person_id").is_in(held))

    @pa.dataframe_check
    def status_known(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("status").is_in(list(policy().statuses.all)))

    @pa.dataframe_check
    def reason_known(cls, data) -> pl.LazyFrame:
        p = policy()
        reasons = [r.reason for r in p.statuses.reasons] + [x.reason for x in p.survey.exclude]
        return data.lazyframe.select(
            pl.col("exclusion_reason").is_null() | pl.col("exclusion_reason").is_in(reasons)
        )

    @pa.dataframe_check
    def reason_iff_excluded(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") == policy().statuses.excluded) == pl.col("exclusion_reason").is_not_null()
        )

    @pa.dataframe_check
    def group_iff_registry(cls, data) -> pl.LazyFrame:
        reg = pl.col("status").is_in(list(policy().statuses.registry))
        return data.lazyframe.select(reg == pl.col("group").is_not_null())

    class Config:
        strict = False
        coerce = True


def validate_persons(df: pl.DataFrame) -> None:
    """Raise a KuomianError naming the failed checks (never the failing values: they hold IDs)."""
    check(Persons, df, "classifying")
