"""pandera schemas guarding each stage's output (one module per stage)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from kuomian.core.errors import KuomianError


def check(model: type[pa.DataFrameModel], df: pl.DataFrame, after: str) -> None:
    """Validate ``df``; on failure raise one line naming the failed checks.

    Never the failing values: ``str(SchemaErrors)`` includes them, and they hold IDs.
    """
    try:
        model.validate(df, lazy=True)
    except (pa.errors.SchemaErrors, pa.errors.SchemaError) as e:
        cases = getattr(e, "failure_cases", None)
        checks = (
            sorted(set(map(str, cases["check"].to_list())))
            if cases is not None and "check" in cases.columns
            else [type(e).__name__]
        )
        raise KuomianError(
            f"internal check failed after {after}: {', '.join(checks)[:300]}. "
            "This is a bug in kuomian; run with --debug and report it."
        ) from None
