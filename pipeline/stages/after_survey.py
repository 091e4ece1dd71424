"""After the survey: what the visitors learned acts on the registry (rules.md, last section).

Used by ``kuomian survey import`` (the answers just imported) and by the refresh's publish
stage (the answers carried with ``--previous``); both read and write a persons frame only:

* :func:`apply_effects` — the status each person's answers give (rules/survey.yaml ``effects``):
  走访结果 已死亡 / 已迁出本市 → ``excluded`` with ``survey_deceased`` / ``survey_moved_out``;
  已在外地参保 → ``enrolled_elsewhere`` (self-reported); not found on two visits with
  different dates → ``needs_review`` with ``survey_flag``. The status the extracts gave is
  kept in ``extract_status`` / ``extract_exclusion_reason`` / ``extract_group``, so that the
  effects are recomputed from it (importing a corrected answer undoes an effect).
* :func:`note_visits` — the count of consecutive "not found" visits on different dates.
* :func:`with_targets` — this year's key targets (rules/targets.yaml): ``target_priority`` and
  ``target_reason`` for every registry person, the first rule that applies.
* :func:`disagreements` — where a carried answer and this year's extracts disagree (已死亡
  but 正常 in the household extract; 已在外地参保 but enrolled here …).
"""

from __future__ import annotations

import calendar
from datetime import date

import polars as pl

from ..core.policy import Policy, policy

# Columns persons.parquet gains for the survey's effects and their evidence (outputs.md).
EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "survey_file": pl.String(),  # the file (and [sheet]) of the last answer applied
    "survey_row": pl.Int32(),  # its row as the user sees it
    "not_found_visits": pl.Int16(),  # consecutive visits (different dates) that found nobody
    "not_found_on": pl.Date(),  # the date of the last of them
    "survey_flag": pl.String(),  # why the survey flags the person for the bureau
    "extract_status": pl.String(),  # the status the extracts give (before the answers act)
    "extract_exclusion_reason": pl.String(),
    "extract_group": pl.Int8(),
    "target_priority": pl.String(),  # A / B / C / D (rules/targets.yaml)
    "target_reason": pl.String(),
    "prev_target_priority": pl.String(),  # the level in the previous registry (--previous), to count who enrolled
}
EVIDENCE_COLUMNS = tuple(EVIDENCE_SCHEMA)


def with_evidence_columns(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every evidence column (null where missing), the extract's status filled in."""
    add = [pl.lit(None, dtype=t).alias(c) for c, t in EVIDENCE_SCHEMA.items() if c not in df.columns]
    df = df.with_columns(add) if add else df
    return df.with_columns(
        extract_status=pl.coalesce("extract_status", "status"),
        extract_exclusion_reason=pl.when(pl.col("extract_status").is_null())
        .then(pl.col("exclusion_reason"))
        .otherwise(pl.col("extract_exclusion_reason")),
        extract_group=pl.when(pl.col("extract_status").is_null())
        .then(pl.col("group").cast(pl.Int8))
        .otherwise(pl.col("extract_group")),
    )


def _answer_in(field: str, answers: tuple[str, ...]) -> pl.Expr:
    return pl.col(field).is_in(list(answers)).fill_null(False)


def apply_effects(df: pl.DataFrame, p: Policy | None = None) -> pl.DataFrame:
    """Status, exclusion_reason, group and needs_review from the extracts' ones and the answers."""
    p = p or policy()
    sv, st = p.survey, p.statuses
    df = with_evidence_columns(df)
    base_excluded = pl.col("extract_status") == st.excluded
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for x in reversed(sv.exclude):  # the first that applies wins
        reason = pl.when(_answer_in(x.field, x.answers)).then(pl.lit(x.reason)).otherwise(reason)
    survey_excluded = ~base_excluded & reason.is_not_null()
    elsewhere = pl.any_horizontal([_answer_in(f, a) for f, a in sv.elsewhere_when]) & pl.col(
        "extract_status"
    ).is_in(list(sv.elsewhere_from))
    status = (
        pl.when(survey_excluded)
        .then(pl.lit(st.excluded))
        .when(elsewhere)
        .then(pl.lit(sv.elsewhere_status))
        .otherwise(pl.col("extract_status"))
    )
    flagged = (pl.col("not_found_visits").fill_null(0) >= sv.not_found_visits) & _answer_in(
        sv.not_found_field, sv.not_found_answers
    )
    df = df.with_columns(
        status=status,
        exclusion_reason=pl.when(survey_excluded).then(reason).otherwise(pl.col("extract_exclusion_reason")),
        survey_flag=pl.when(flagged).then(pl.lit(sv.not_found_reason)),
    )
    in_registry = pl.col("status").is_in(list(st.registry))
    return df.with_columns(
        group=pl.when(in_registry).then(pl.col("extract_group")).cast(df.schema["group"]),
        needs_review=pl.col("needs_review") | pl.col("survey_flag").is_not_null(),
    )


def note_visits(old: dict, new: dict, p: Policy | None = None) -> tuple[int | None, date | None]:
    """(not_found_visits, not_found_on) after an answer ``new`` (field → value) on top of the
    person's stored row ``old``: a "not found" answer on a date other than the last one counts
    one more visit; any other 走访结果 starts again from zero."""
    sv = (p or policy()).survey
    result = new.get(sv.not_found_field)
    visits, last = old.get("not_found_visits") or 0, old.get("not_found_on")
    if result is None:
        return old.get("not_found_visits"), last
    if result not in sv.not_found_answers:
        return 0, None
    on = new.get("surveyed_on") or old.get("surveyed_on")
    if visits and on == last:
        return visits, last  # the same visit again (re-imported, or written in two sheets)
    return visits + 1, on


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _condition(cond: dict, as_of: date, p: Policy) -> pl.Expr:
    """A rules/targets.yaml condition (checked by the policy) as a polars expression."""
    if "all" in cond or "any" in cond:
        parts = [_condition(c, as_of, p) for c in cond.get("all") or cond["any"]]
        return pl.all_horizontal(parts) if "all" in cond else pl.any_horizontal(parts)
    if "not" in cond:
        return ~_condition(cond["not"], as_of, p)
    if "answer" in cond:
        return pl.col(cond["answer"]).is_in(list(cond["in"])).fill_null(False)
    if "answered" in cond:
        return pl.col(cond["answered"]).is_not_null()
    if "age" in cond:
        ops = {"==": "eq", ">=": "ge", ">": "gt", "<=": "le", "<": "lt"}
        return pl.all_horizontal(
            [getattr(pl.col("age"), ops[op])(v).fill_null(False) for op, v in cond["age"].items()]
        )
    if "groups_any" in cond:
        return pl.col("group").is_in(list(cond["groups_any"])).fill_null(False)
    if "pension" in cond:
        before = (pl.col("pension_date") > pl.lit(as_of)).fill_null(False)
        if cond["pension"] == "before":
            return before
        # as-of + the minimum period that applies on the pension date reaches it at the latest
        # the minimum period depends on the pension date's year and on whether it falls before
        # rise_from's day in that year (retirement.yaml), so it is looked up, not computed per person
        r = p.retirement
        rise = r.rise_from
        years = range(1900, 2200)
        after = {y: r.minimum_months(date(y, rise.month, min(rise.day, 28))) for y in years}
        before_day = {y: r.minimum_months(date(y, 1, 1)) if (rise.month, rise.day) != (1, 1) else after[y]
                      for y in years}  # fmt: skip
        pd = pl.col("pension_date")
        on_or_after = (pd.dt.month() * 100 + pd.dt.day()) >= rise.month * 100 + rise.day
        need = (
            pl.when(on_or_after)
            .then(pd.dt.year().replace_strict(after, default=None, return_dtype=pl.Int64))
            .otherwise(pd.dt.year().replace_strict(before_day, default=None, return_dtype=pl.Int64))
        )
        reach = pl.lit(as_of).dt.offset_by(pl.format("{}mo", need))
        return before & (reach <= pl.col("pension_date")).fill_null(False)
    return pl.lit(True)  # always: true


def with_targets(df: pl.DataFrame, as_of: date, p: Policy | None = None) -> pl.DataFrame:
    """``target_priority`` / ``target_reason`` for every registry person (null for the others)."""
    p = p or policy()
    prio: pl.Expr = pl.lit(None, dtype=pl.String)
    why: pl.Expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(p.targets.rules):  # the first that applies wins
        c = _condition(rule.when, as_of, p)
        prio = pl.when(c).then(pl.lit(rule.priority)).otherwise(prio)
        why = pl.when(c).then(pl.lit(rule.reason)).otherwise(why)
    reg = pl.col("status").is_in(list(p.statuses.registry))
    return df.with_columns(target_priority=pl.when(reg).then(prio), target_reason=pl.when(reg).then(why))


# ---------------------------------------------------------------- the next refresh


DISAGREEMENT_COLUMNS = {
    "person_key": "编号", "name": "姓名", "id_masked": "身份证号", "street_name": "街道", "community": "社区",
    "answer": "走访所见", "surveyed_on": "调查日期", "survey_file": "调查来源", "survey_row": "行号",
    "extract_says": "数据所示", "note": "说明",
}  # fmt: skip


def disagreements(df: pl.DataFrame, p: Policy | None = None) -> pl.DataFrame:
    """One row per person whose carried answer this year's extracts contradict: excluded by the
    survey while the household extract keeps them (person_status 正常 …), or insured elsewhere
    while the enrolment extract shows them enrolled here."""
    from ..core.ids import mask_id_expr
    from ..core.labels import status_labels

    p = p or policy()
    sv = p.survey
    labels = status_labels()
    excl_fields = sorted({x.field for x in sv.exclude})
    survey_excluded = pl.col("exclusion_reason").is_in([x.reason for x in sv.exclude]).fill_null(False)
    elsewhere_answer = pl.any_horizontal([_answer_in(f, a) for f, a in sv.elsewhere_when])
    enrolled_here = pl.col("extract_status").is_in(list(p.indicators.enrolled)).fill_null(False)
    person_status = pl.col("person_status") if "person_status" in df.columns else pl.lit(None, pl.String)
    ex = df.filter(survey_excluded).select(
        "person_key", "name", "id_number", "street_name", "community", "surveyed_on", "survey_file",
        "survey_row",
        pl.concat_str([pl.col(f) for f in excl_fields], separator="/", ignore_nulls=True).alias("answer"),
        pl.concat_str(
            [pl.lit("户籍: "), person_status.fill_null("在册"), pl.lit("; 状态: "),
             pl.col("extract_status").replace_strict(labels, default=pl.col("extract_status"))]
        ).alias("extract_says"),
        pl.lit("走访称已死亡或迁出,户籍数据仍在册:请核实后更正户籍或走访结果").alias("note"),
    )  # fmt: skip
    el = df.filter(elsewhere_answer & enrolled_here).select(
        "person_key", "name", "id_number", "street_name", "community", "surveyed_on", "survey_file",
        "survey_row", pl.lit("已在外地参保").alias("answer"),
        pl.col("extract_status").replace_strict(labels, default=pl.col("extract_status")).alias("extract_says"),
        pl.lit("走访称已在外地参保,本地参保数据显示已在本地参保:以本地数据为准").alias("note"),
    )  # fmt: skip
    out = pl.concat([ex, el], how="vertical_relaxed")
    return out.with_columns(id_masked=mask_id_expr(pl.col("id_number"))).select(list(DISAGREEMENT_COLUMNS))
