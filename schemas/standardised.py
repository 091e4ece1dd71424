"""Schema of the identity columns every ``std_<source>`` table carries."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from kuomian.schemas import check

ID_KINDS = ["valid", "upgraded", "bad_check", "excel", "unusable"]
ROW_STATES = ["ok", "duplicate", "quarantined"]


class IdentityRows(pa.DataFrameModel):
    row_id: int = pa.Field(unique=True)
    source: str
    file: str
    sheet: str
    row: int = pa.Field(ge=2)
    row_state: str = pa.Field(isin=ROW_STATES)
    reason: str = pa.Field(nullable=True)
    id_canonical: str = pa.Field(nullable=True, str_matches=r"^[0-9]{17}[0-9X]$")
    id_kind: str = pa.Field(isin=ID_KINDS)
    id_digits: str = pa.Field(nullable=True)
    name: str
    name_key: str
    name_py: str
    sex: str = pa.Field(nullable=True)
    birth_date: pl.Date = pa.Field(nullable=True)
    birth_date_stated: pl.Date = pa.Field(nullable=True)
    street_code: str = pa.Field(nullable=True, str_matches=r"^[0-9]{12}$")
    community: str = pa.Field(nullable=True)

    @pa.dataframe_check
    def canonical_only_when_trusted(cls, data) -> pl.LazyFrame:
        trusted = pl.col("id_kind").is_in(["valid", "upgraded"])
        return data.lazyframe.select(trusted == pl.col("id_canonical").is_not_null())

    @pa.dataframe_check
    def quarantine_has_reason(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("row_state") == "ok") == pl.col("reason").is_null())

    class Config:
        strict = False
        coerce = False


def validate_identity(df: pl.DataFrame, source: str) -> None:
    """Raise a KuomianError naming the failed checks (never the failing values: they hold IDs)."""
    check(IdentityRows, df, f"standardising {source}")
