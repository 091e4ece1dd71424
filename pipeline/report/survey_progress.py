"""The survey's progress of the registry, counted the same way for ``report.html`` (the refresh)
and the quarterly bulletin (``kuomian progress``).

Reads a published ``persons.parquet`` frame (its survey columns: ``ability_to_pay``,
``willingness``, ``reason_not_enrolled``, ``surveyed_on``); writes nothing.
"""

from __future__ import annotations

import polars as pl

from ..core.labels import CITY, NO_COMMUNITY
from ..core.labels import UNASSIGNED_STREET as UNASSIGNED_NAME
from ..core.policy import policy

ANSWER_FIELDS = ("ability_to_pay", "willingness", "reason_not_enrolled")


def visited_expr() -> pl.Expr:
    """Visited: any answer or a survey date imported."""
    return pl.any_horizontal([pl.col(f).is_not_null() for f in (*ANSWER_FIELDS, "surveyed_on")])


def street_name_expr() -> pl.Expr:
    """A person's street name from ``street_code`` (rules/streets.csv; 未分配街道 for none or an
    unknown code)."""
    names = policy().street_names
    return pl.col("street_code").replace_strict(names, default=UNASSIGNED_NAME, return_dtype=pl.String)


def _street_order() -> pl.Expr:
    """The streets in the policy's order, then 未分配街道, then the city's row."""
    order = {n: i for i, n in enumerate([*policy().street_names.values(), UNASSIGNED_NAME, CITY])}
    return pl.col("street_name").replace_strict(order, default=len(order), return_dtype=pl.Int64)


def answered_expr() -> pl.Expr:
    return pl.any_horizontal([pl.col(f).is_not_null() for f in ANSWER_FIELDS])


def survey_table(persons: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The survey's progress of the registry (report.html of the refresh): per street (and 全市),
    and per community — registry, visited, answered, left_to_visit, visited_share; the streets'
    ``is_city`` marks the city's row."""
    # the columns counted, then the registry's rows: not a copy of every column (Kunming: 1M rows)
    reg = persons.select(
        [
            c
            for c in ("street_code", "community", "status", *ANSWER_FIELDS, "surveyed_on")
            if c in persons.columns
        ]
    ).filter(pl.col("status").is_in(list(policy().statuses.registry)))
    for f in (*ANSWER_FIELDS, "surveyed_on"):
        if f not in reg.columns:
            reg = reg.with_columns(pl.lit(None).alias(f))
    reg = reg.with_columns(
        street_name=street_name_expr(),
        community=pl.col("community").fill_null(NO_COMMUNITY),
        _v=visited_expr(),
        _a=answered_expr(),
    )

    def agg(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        out = df.group_by(by).agg(
            registry=pl.len().cast(pl.Int64),
            visited=pl.col("_v").sum().cast(pl.Int64),
            answered=pl.col("_a").sum().cast(pl.Int64),
        )
        return out.with_columns(
            left_to_visit=pl.col("registry") - pl.col("visited"),
            visited_share=pl.when(pl.col("registry") > 0).then(pl.col("visited") / pl.col("registry")),
            _o=_street_order(),
        )

    streets = pl.concat(
        [
            agg(reg, ["street_name"]).with_columns(is_city=pl.lit(False)),
            agg(reg.with_columns(street_name=pl.lit(CITY)), ["street_name"]).with_columns(
                is_city=pl.lit(True)
            ),
        ],
        how="diagonal_relaxed",
    )
    streets = streets.sort("_o").drop("_o")
    communities = agg(reg, ["street_name", "community"]).sort("_o", "community").drop("_o")
    return streets, communities


def survey_effects_table(persons: pl.DataFrame) -> pl.DataFrame:
    """Per street (and 全市): this year's key targets of the registry by level (rules/targets.yaml,
    ``target_A`` …) and, with ``--previous``, how many of last year's level enrolled since
    (``target_A_enrolled``: ``change`` enrolled, ``prev_target_priority`` A), and what the survey's answers did — insured elsewhere (self-reported, counted
    as insured), taken off as deceased / moved out, flagged as not found on two visits; ``is_city``
    marks the city's row."""
    p = policy()
    # Counted per street code over the few columns the counts read (a lazy frame reads only
    # those), then per street name and for the city from those rows: the persons' frame (8.7M
    # rows for Kunming) is neither copied nor given a name per row.
    df = persons.lazy()
    for c in ("target_priority", "survey_flag", "prev_target_priority", "change"):
        if c not in persons.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    enrolled = (pl.col("change") == "enrolled").fill_null(False)
    aggs = []
    for k in p.targets.levels:
        aggs += [(pl.col("target_priority") == k).sum().cast(pl.Int64).alias(f"target_{k}"),
                 ((pl.col("prev_target_priority") == k) & enrolled).sum().cast(pl.Int64).alias(f"target_{k}_enrolled")]  # fmt: skip
    aggs += [
        (pl.col("status") == p.survey.elsewhere_status).sum().cast(pl.Int64).alias("enrolled_elsewhere"),
        *[
            (pl.col("exclusion_reason") == x.reason).sum().cast(pl.Int64).alias(x.reason)
            for x in p.survey.exclude
        ],
        pl.col("survey_flag").is_not_null().sum().cast(pl.Int64).alias("not_found"),
    ]
    by_code = df.group_by("street_code").agg(aggs).collect()
    counts = [a.meta.output_name() for a in aggs]
    streets = (
        by_code.with_columns(street_name=street_name_expr()).group_by("street_name").agg(pl.col(counts).sum())
    )
    city = (
        streets.select(pl.lit(CITY).alias("street_name"), pl.col(counts).sum()) if streets.height else streets
    )
    out = pl.concat([streets.with_columns(is_city=pl.lit(False)), city.with_columns(is_city=pl.lit(True))])
    return out.sort(_street_order())
