"""Per-street hand-offs for the door-to-door visits.

``handoff/<street_code>_<street_name>.csv`` (UTF-8 with BOM, Chinese headers,
masked IDs, in the order a visitor walks: community, address with numbers as numbers,
households together; see :func:`visit_order`) and the same sheet as
``.xlsx`` with the survey columns as drop-down lists. Both are written through
:mod:`kuomian.core.cells` (no cell a spreadsheet would evaluate; an ID typed into
an address or another text field is masked). People with no street
go to ``handoff/unassigned_未分配街道.csv`` for the bureau.

The workbook prints ready for a visit (see :class:`pipeline.core.xlsx.PrintSetup`):
its first sheet ``入户调查`` is the whole street (the one ``survey import`` reads);
then one sheet per community, so that a community's list prints alone. Every sheet
prints A4 landscape, one page wide, the header row on every page, long columns
wrapped, the footer naming the street, the community and 第 N 页 共 M 页.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ..core.cells import people_frame, quote_triggers
from ..core.ids import mask_id_expr
from ..core.labels import HANDOFF_HEADERS as H
from ..core.labels import (
    HANDOFF_PRIORITY_HEADER,
    HANDOFF_REGISTRY_HEADER,
    HANDOFF_YES,
    NO_COMMUNITY,
    UNASSIGNED_STREET,
    group_labels,
    source_labels,
    status_labels,
)
from ..core.policy import SurveyColumn, policy
from ..core.text import natural_key

BASE_HEADERS = list(H.values())
# This year's key target (rules/targets.yaml), e.g. "A 重点"; the registry a hand-off belongs to
# (outputs.md), one value in every row: a column survives Excel's and LibreOffice's Save As
# (CSV in any encoding, xlsx), where a note in a title row or a hidden sheet may not.
PRIORITY_HEADER = HANDOFF_PRIORITY_HEADER
REGISTRY_HEADER = HANDOFF_REGISTRY_HEADER


def survey_columns() -> tuple[SurveyColumn, ...]:
    """The survey's columns (rules/survey.yaml), in the hand-off's order."""
    return policy().survey.columns


def handoff_frame(persons: pl.DataFrame, registry_id: str = "") -> pl.DataFrame:
    """Registry persons as the streets see them (one frame; split per street by the writer).

    法定退休时间 and 建议措施 are persons.parquet's ``pension_date`` and ``measure``; 重点等级 its
    ``target_priority`` with the level's label (A first within each community); 实名库批次 the
    ``registry_id`` of the refresh that wrote it (``survey import`` checks it).
    """
    statuses = status_labels()
    source_lbl = source_labels()
    reg = persons.filter(pl.col("status").is_in(list(policy().statuses.registry)))
    if "target_priority" not in reg.columns:
        reg = reg.with_columns(target_priority=pl.lit(None, dtype=pl.String))
    levels = policy().targets.levels
    rank = {k: i for i, k in enumerate(levels)}
    reg = reg.with_columns(
        _rank=pl.col("target_priority").replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
    )
    priority = {k: f"{k} {v}" for k, v in levels.items()}
    # how a column is shown, where it is not as persons.parquet holds it
    shown = {
        "id_number": mask_id_expr(pl.col("id_number")),
        "status": pl.col("status").replace_strict(statuses, default=None, return_dtype=pl.String),
        "group": pl.col("group")
        .cast(pl.Int64)
        .replace_strict(group_labels(), default=None, return_dtype=pl.String),
        "sources": pl.col("sources")
        .list.eval(pl.element().replace_strict(source_lbl, default=pl.element()))
        .list.join("、"),
        "pension_date": pl.col("pension_date").cast(pl.String),
    }
    out = visit_order(reg, first=[pl.col("_rank")]).select(
        pl.col("street_code"),
        pl.col("street_name"),
        # every column of HANDOFF_HEADERS, in its order (复核提示 beside 参保状态: 可能已参保: … — an
        # enrolment row the run saw and did not accept, IDs masked; the visitor checks before knocking)
        *[_shown_column(reg, key, shown).alias(header) for key, header in H.items()],
        # 重点等级 right before the survey's columns: the second round's visit starts from it
        pl.col("target_priority")
        .replace_strict(priority, default=None, return_dtype=pl.String)
        .alias(PRIORITY_HEADER),
    )
    survey = {c.header: pl.lit("", dtype=pl.String) for c in survey_columns()}
    return out.with_columns(**survey).with_columns(
        pl.lit(registry_id, dtype=pl.String).alias(REGISTRY_HEADER)
    )


def _shown_column(reg: pl.DataFrame, key: str, shown: dict[str, pl.Expr]) -> pl.Expr:
    """A hand-off column: as ``shown`` says, else as persons.parquet holds it (a true/false flag
    as 是 or blank); a column an older registry lacks is blank."""
    if key in shown:
        return shown[key]
    if key not in reg.columns:
        return pl.lit(None, dtype=pl.String)
    if reg.schema[key] == pl.Boolean:
        return pl.when(pl.col(key)).then(pl.lit(HANDOFF_YES, dtype=pl.String))
    return pl.col(key)


def visit_order(reg: pl.DataFrame, first: Sequence[pl.Expr] = ()) -> pl.DataFrame:
    """The order a visitor walks: by street and community, then address with numbers as numbers
    (1组, 2组, … 11组; 3号 before 12号), the members of one household (household_no) together,
    at the place of the household's first address; people without a household number alone.

    ``first``: keys that come before the address within a community (e.g. a priority rank); a
    household takes its members' least value, so it stays together.
    """
    # the address key and the household computed once, as columns, then the windows over them
    household = pl.coalesce(pl.col("household_no"), pl.lit("\x00") + pl.col("person_key"))
    place = ["street_code", "community", "_vo_household"]
    firsts = [f"_vo_first{i}" for i in range(len(first))]
    keyed = reg.with_columns(_vo_addr=natural_key(pl.col("address")), _vo_household=household).with_columns(
        *[k.min().over(place).alias(name) for k, name in zip(first, firsts, strict=True)],
        _vo_place=pl.col("_vo_addr").min().over(place),
    )
    return keyed.sort(
        "street_code",
        "community",
        *firsts,
        "_vo_place",
        "_vo_household",
        "_vo_addr",
        "person_key",
        nulls_last=True,
    ).drop("_vo_addr", "_vo_household", "_vo_place", *firsts)


def _file_stem(code: str | None, name: str | None) -> str:
    return f"{code}_{name}" if code else f"unassigned_{UNASSIGNED_STREET}"


# Printed columns wider than this wrap (headers → at most this many Excel units).
WRAP_CAPS = {
    H["address"]: 20,
    H["status"]: 10,
    H["group"]: 14,
    H["sources"]: 12,
    H["measure"]: 20,
    H["review_evidence"]: 24,
}


def write_handoffs(folder: Path, persons: pl.DataFrame, xlsx: bool = True, registry_id: str = "") -> int:
    folder.mkdir()
    street = ("street_code", "street_name")
    # Made safe once for every street: IDs typed into text masked, cells cut at Excel's limit;
    # the CSVs also get the leading ' before formula triggers (what write_people_csv writes).
    df = people_frame(handoff_frame(persons, registry_id), csv=False, keep=street)
    n = 0
    for (code, name), part in df.group_by(list(street), maintain_order=True):
        body = part.drop(*street)
        stem = _file_stem(code, name)
        quote_triggers(body).write_csv(folder / f"{stem}.csv", include_bom=True)
        if xlsx:
            write_handoff_xlsx(folder / f"{stem}.xlsx", body, street=name or UNASSIGNED_STREET)
        n += body.height
    return n


def handoff_widths(body: pl.DataFrame) -> dict[int, float]:
    """Widths that fit the Chinese text (CJK counted as two); long columns capped (they wrap);
    each survey column as wide as its longest allowed answer, so there is room to write."""
    from ..core.xlsx import display_width, fit_widths

    cols = body.columns
    caps = {cols.index(h): w for h, w in WRAP_CAPS.items() if h in cols}
    widths = fit_widths(body, caps=caps)
    if "编号" in cols:  # upper-case letters are wider than the digits a width unit is measured in
        widths[cols.index("编号")] = max(widths[cols.index("编号")], 21.0)
    for c in survey_columns():
        if c.header in cols:
            j = cols.index(c.header)
            longest = max([display_width(a) for a in c.allowed] + [10])
            widths[j] = max(widths[j], float(longest + 2))
    return widths


def write_handoff_xlsx(path: Path, body: pl.DataFrame, street: str = "") -> None:
    """The hand-off as a workbook: the whole street, then one sheet per community (see the module docstring)."""
    from ..core.xlsx import PrintSetup, Sheet, row_cells, write_workbook

    dropdowns: dict[int, Sequence[str]] = {
        body.columns.index(c.header): list(c.allowed) for c in survey_columns() if c.allowed
    }
    widths = handoff_widths(body)
    wrap = frozenset(body.columns.index(h) for h in WRAP_CAPS if h in body.columns)

    cells = row_cells(body, wrap, widths)  # built once: the community sheets are the same rows

    def sheet(name: str, df: pl.DataFrame, community: str, rows: pl.DataFrame) -> Sheet:
        setup = PrintSetup(footer_left=street, footer_center=community, wrap=wrap)
        return Sheet(name, df, widths, dropdowns, freeze_cols=2, print_setup=setup, cells=rows)

    sheets = [sheet("入户调查", body, "全部社区", cells)]
    if "社区" in body.columns:
        groups = body.with_row_index("_i").group_by("社区", maintain_order=True).agg("_i")
        for community, idx in groups.iter_rows():
            label = community or NO_COMMUNITY
            sheets.append(sheet(label, body[idx], label, cells[idx]))
    write_workbook(path, sheets)
