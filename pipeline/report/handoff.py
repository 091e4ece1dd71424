"""Per-street hand-offs for the door-to-door visits.

``handoff/<street_code>_<street_name>.csv`` (UTF-8 with BOM, Chinese headers,
masked IDs, ordered by community then address) and the same sheet as
``.xlsx`` with the survey columns as drop-down lists. Both are written through
:mod:`kuomian.core.cells` (no cell a spreadsheet would evaluate; an ID typed into
an address or another text field is masked). People with no street
go to ``handoff/unassigned_未分配街道.csv`` for the bureau.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.cells import people_frame, write_people_csv
from ..core.config import load_rules, load_sources
from ..core.ids import mask_id_expr

BASE_HEADERS = [
    "编号",
    "姓名",
    "身份证号",
    "性别",
    "年龄",
    "社区",
    "户籍地址",
    "参保状态",
    "重点群体",
    "信息来源",
    "建议措施",
]


def survey_columns() -> list[dict]:
    return load_rules("survey")["columns"]


def handoff_frame(persons: pl.DataFrame) -> pl.DataFrame:
    """Registry persons as the streets see them (one frame; split per street by the writer)."""
    groups = {g["group"]: g for g in load_rules("groups")["groups"]}
    statuses = {s["status"]: s["label"] for s in load_rules("statuses")["statuses"]}
    source_labels = {name: s.label for name, s in load_sources().items()}
    reg = persons.filter(pl.col("status").is_in(["unenrolled", "resident_upgradable"]))
    group_label = {g: f"第{g}类 {v['label']}" for g, v in groups.items()}
    action = {g: v["action"] for g, v in groups.items()}
    out = reg.sort(["street_code", "community", "address", "person_key"], nulls_last=True).select(
        pl.col("street_code"),
        pl.col("street_name"),
        pl.col("person_key").alias("编号"),
        pl.col("name").alias("姓名"),
        mask_id_expr(pl.col("id_number")).alias("身份证号"),
        pl.col("sex").alias("性别"),
        pl.col("age").alias("年龄"),
        pl.col("community").alias("社区"),
        pl.col("address").alias("户籍地址"),
        pl.col("status").replace_strict(statuses, default=None, return_dtype=pl.String).alias("参保状态"),
        pl.col("group")
        .cast(pl.Int64)
        .replace_strict(group_label, default=None, return_dtype=pl.String)
        .alias("重点群体"),
        pl.col("sources")
        .list.eval(pl.element().replace_strict(source_labels, default=pl.element()))
        .list.join("、")
        .alias("信息来源"),
        pl.col("group")
        .cast(pl.Int64)
        .replace_strict(action, default=None, return_dtype=pl.String)
        .alias("建议措施"),
    )
    survey = {c["header"]: pl.lit("", dtype=pl.String) for c in survey_columns()}
    return out.with_columns(**survey)


def _file_stem(code: str | None, name: str | None) -> str:
    return f"{code}_{name}" if code else "unassigned_未分配街道"


def write_handoffs(folder: Path, persons: pl.DataFrame, xlsx: bool = True) -> int:
    folder.mkdir()
    df = handoff_frame(persons)
    n = 0
    for (code, name), part in df.group_by(["street_code", "street_name"], maintain_order=True):
        body = part.drop("street_code", "street_name")
        stem = _file_stem(code, name)
        # through the one safe writer: formula triggers neutralised, IDs typed into text masked
        write_people_csv(folder / f"{stem}.csv", body)
        if xlsx:
            write_handoff_xlsx(folder / f"{stem}.xlsx", people_frame(body, csv=False))
        n += body.height
    return n


def write_handoff_xlsx(path: Path, body: pl.DataFrame) -> None:
    """The hand-off as a workbook: text cells, frozen header and 编号/姓名, survey drop-downs."""
    from ..core.xlsx import write_xlsx

    dropdowns = {body.columns.index(c["header"]): c["allowed"] for c in survey_columns() if c.get("allowed")}
    write_xlsx(
        path, body, sheet_name="入户调查", widths={0: 20, 2: 20, 6: 30, 10: 40},
        dropdowns=dropdowns, freeze_cols=2,
    )  # fmt: skip
