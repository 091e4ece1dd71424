"""The quarterly bulletin (进度通报) of ``kuomian progress``: ``bulletin.xlsx`` and ``bulletin.html``.

Both show the same figures (the frame of :func:`pipeline.commands.progress.bulletin_frame`):
per street — registry people, enrolled since listing (by scheme), switched to the employee
scheme, the tasks and where they come from, completion, rank, change since the previous
bulletin, and the survey's progress (visited / answered / left to visit); per community the
same without tasks; every bulletin of the year side by side; the reconciliation of the
extract's rows. Counts only: no person, so no ID, is ever listed.

The workbook prints A4 landscape, one page wide, the header row on every page
(:class:`pipeline.core.xlsx.PrintSetup`); the page is one self-contained HTML file
(inline CSS and SVG, nothing fetched, no script) with print CSS for A4.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.labels import BULLETIN_COMMUNITY_HEADERS as COMMUNITY_HEADERS
from ..core.labels import BULLETIN_STREET_HEADERS as STREET_HEADERS
from ..core.labels import BULLETIN_SURVEY_HEADERS as SURVEY_HEADERS
from ..core.xlsx import PrintSetup, Sheet, fit_widths, write_workbook
from .html import CSS, _cards, _esc, _pct, _table, bar_chart, grouped_bar_chart, stacked_bar_chart

PERCENT = ("completion", "employee_completion", "enrolled_share", "change_completion")
NOTES = [
    "实名库人数: 发布的实名库中的人员(未参保 + 居民参保可转职工), 按列入时的街道和社区统计。",
    "新增参保(列入后): 列入时未参保, 本次参保数据中已有 参保缴费 或 待遇领取 记录的人员; 按险种分职工养老和居民养老;"
    "入户调查答 已在外地参保 的人员计为已参保, 单列为 其中外地参保(自报)(本人自报, 可要求提供参保证明)。"
    "调查确认已死亡或已迁出本市的人员不再计入实名库人数。",
    "重点扩面对象: 按 rules/targets.yaml 定级(A 重点 / B 动员 / C 兜底 / D 暂缓), 每次导入调查结果后重算; 列入后参保 = 该等级中列入后已参保的人数。",
    "居民转职工: 列入时为居民参保可转职工, 本次已有职工养老 参保缴费 或 待遇领取 记录的人员。职工养老合计 = 其中职工养老 + 居民转职工。",
    "参保任务完成率 = 新增参保 / 参保任务; 职工任务完成率 = 职工养老合计 / 职工养老任务。"
    "任务来源 任务分解 = rules/tasks.yaml; 默认 = 该街道距目标的缺口(实名库 indicators.csv) (default: gap to target)。",
    "已走访: 已导入调查日期或任一答复; 已答复: 已导入缴费能力、参保意愿或未参保原因; 待走访 = 实名库人数 - 已走访。",
    "排名: 街道按参保任务完成率(相同时按新增参保人数); 社区在本街道内按新增参保占实名库的比例。",
]


def target_headers(df: pl.DataFrame) -> dict[str, str]:
    """街道 and, per level of rules/targets.yaml, 人数 and 列入后参保 (the columns the frame has)."""
    from ..core.policy import policy

    out = {"street_name": "街道"}
    for k, label in policy().targets.levels.items():
        if f"target_{k}" in df.columns:
            out[f"target_{k}"] = f"{k} {label}"
            out[f"target_{k}_enrolled"] = f"{k} 列入后参保"
    return out


def _levels(current: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    streets = current.filter(pl.col("level") == "street")
    communities = current.filter(pl.col("level") == "community")
    city = current.filter(pl.col("level") == "city")
    return streets, communities, city


def _for_sheet(df: pl.DataFrame, headers: dict[str, str]) -> pl.DataFrame:
    """Chinese headers; rates as percent numbers with one decimal."""
    cols = []
    for c, h in headers.items():
        if c not in df.columns:
            continue
        if c in PERCENT:
            cols.append((pl.col(c) * 100).round(1).alias(f"{h}(%)"))
        else:
            cols.append(pl.col(c).alias(h))
    return df.select(cols)


def side_by_side(history: pl.DataFrame, *, mark_city: bool = False) -> pl.DataFrame:
    """Streets (and the city) as rows; per bulletin date: 新增参保, 职工养老合计, 完成率(%);
    ``mark_city``: a last column ``is_city`` marks the city's row (level ``city``)."""
    h = history.with_columns(
        date=pl.col("as_of").cast(pl.String),
        completion=(pl.col("completion") * 100).round(1),
    )
    base = h.select("street_code", "street_name", is_city=pl.col("level") == "city").unique(
        maintain_order=True
    )
    out = base
    for d in sorted(h["date"].unique().to_list()):
        part = h.filter(pl.col("date") == d).select(
            "street_code",
            "street_name",
            pl.col("enrolled").alias(f"{d} 新增参保"),
            pl.col("employee_total").alias(f"{d} 职工养老合计"),
            pl.col("completion").alias(f"{d} 完成率(%)"),
        )
        out = out.join(part, on=["street_code", "street_name"], how="left", nulls_equal=True)
    out = out.drop("street_code").rename({"street_name": "街道"})
    return out.select(pl.exclude("is_city"), "is_city") if mark_city else out.drop("is_city")


def _recon_for_sheet(recon: pl.DataFrame) -> pl.DataFrame:
    from ..core.labels import PROGRESS_RECON_HEADERS as RECON_HEADERS

    return recon.with_columns(
        balanced=pl.when(pl.col("balanced")).then(pl.lit("平衡")).otherwise(pl.lit("不平衡"))
    ).select([pl.col(c).alias(h) for c, h in RECON_HEADERS.items()])


def write_bulletin_xlsx(path: Path, current, history, recon, report) -> None:
    streets, communities, city = _levels(current)
    both = pl.concat([streets, city], how="diagonal_relaxed")
    title = f"扩面进度通报 {report.as_of.isoformat()}"
    sheets = []
    for name, df in (
        ("街道通报", _for_sheet(both, STREET_HEADERS)),
        ("社区进度", _for_sheet(communities, COMMUNITY_HEADERS)),
        (
            "重点扩面对象",
            _for_sheet(both, target_headers(current)),
        ),
        ("全年对比", side_by_side(history)),
        ("对账", _recon_for_sheet(recon)),
        ("说明", pl.DataFrame({"说明": [title, *NOTES, *report.notes]})),
    ):
        caps = {j: 60 for j in range(df.width)} if name == "说明" else None
        setup = PrintSetup(footer_left=title, footer_center=name, wrap=frozenset(range(df.width)))
        sheets.append(Sheet(name, df, fit_widths(df, cap=16, caps=caps), freeze_cols=1, print_setup=setup))
    write_workbook(path, sheets)


def _fmt_change(v) -> str:
    return f"{v:+d}"


def _fmt_pct_change(v) -> str:
    return f"{v * 100:+.1f}个百分点"


def bulletin_page(current: pl.DataFrame, history: pl.DataFrame, recon: pl.DataFrame, report) -> str:
    streets, communities, city = _levels(current)
    c = city.row(0, named=True)
    fmt = {k: _pct for k in ("completion", "employee_completion", "enrolled_share")}
    fmt.update(change_enrolled=_fmt_change, change_completion=_fmt_pct_change)
    prev = report.previous.isoformat() if report.previous else "无(本年第一期)"
    page = [
        f"<h1>安宁市扩面工作进度通报 — {_esc(report.as_of.isoformat())}</h1>",
        f"<p class='note'>参保数据: {_esc('、'.join(report.files))} · 上期通报: {_esc(prev)} · "
        f"本年通报 {len(report.bulletins)} 期</p>",
        "<nav><a href='#streets'>各街道</a><a href='#communities'>各社区</a><a href='#survey'>入户调查</a><a href='#targets'>重点扩面对象</a>"
        "<a href='#year'>全年对比</a><a href='#reconciliation'>对账</a></nav>",
    ]
    page.append(
        _cards(
            [
                ("实名库人数", str(c["registry"])),
                ("新增参保(列入后)", str(c["enrolled"])),
                ("其中职工养老", str(c["enrolled_employee"])),
                ("其中居民养老", str(c["enrolled_resident"])),
                ("其中外地参保(自报)", str(c.get("enrolled_elsewhere", 0))),
                ("居民转职工", str(c["switched"])),
                ("参保任务完成率", _pct(c["completion"]) if c["completion"] is not None else "—"),
                ("已走访 / 待走访", f"{c['surveyed']} / {c['left_to_visit']}"),
            ]
        )
    )
    names = streets["street_name"].to_list()
    both = pl.concat([streets, city], how="diagonal_relaxed").with_columns(is_city=pl.col("level") == "city")
    body = [
        "<section id='streets'><h2>一、各街道进度</h2>",
        bar_chart(names, streets["completion"].to_list(), {"任务": 1.0}, "各街道参保任务完成率"),
        stacked_bar_chart(
            names,
            {
                "新增职工养老": streets["enrolled_employee"].to_list(),
                "新增居民养老": streets["enrolled_resident"].to_list(),
                "居民转职工": streets["switched"].to_list(),
            },
            "各街道新增参保与转职工人数",
        ),
        _table(both, STREET_HEADERS, fmt, total="is_city"),
        "<ul class='note'>" + "".join(f"<li>{_esc(n)}</li>" for n in NOTES) + "</ul>",
        "</section>",
        "<section id='communities'><h2>二、各社区进度</h2>",
        _table(communities, COMMUNITY_HEADERS, fmt),
        "</section>",
        "<section id='survey'><h2>三、入户调查进度</h2>",
        "<p class='note'>已走访: 已导入调查日期或任一答复; 已答复: 已导入缴费能力、参保意愿或未参保原因。</p>",
        survey_chart(streets),
        _table(both, SURVEY_HEADERS, total="is_city"),
        "</section>",
        "<section id='targets'><h2>本年度重点扩面对象</h2>",
        "<p class='note'>按 rules/targets.yaml 定级: A 重点 / B 动员 / C 兜底 / D 暂缓; 列入后参保 = 该等级中列入后已参保的人数。</p>",
        _table(both, target_headers(current), total="is_city"),
        "</section>",
        "<section id='year'><h2>四、全年通报对比</h2>",
    ]
    dates = sorted(history["as_of"].unique().to_list())
    hs = history.filter(pl.col("level") == "street")
    if len(dates) > 1:
        series = {}
        for d in dates:
            part = hs.filter(pl.col("as_of") == d)
            m = dict(zip(part["street_name"], part["completion"], strict=True))
            series[d.isoformat()] = [m.get(n) for n in names]
        body.append(grouped_bar_chart(names, series, "各街道参保任务完成率(各期)"))
    body.append(_table(side_by_side(history, mark_city=True), total="is_city"))
    body.append("</section>")
    body.append("<section id='reconciliation'><h2>五、对账</h2>")
    body.append(
        "<p class='note'>参保数据每个文件: 读取行数 = 匹配到实名库人员 + 匹配到实名库外人员 + 未匹配 + 待复核 + 重复行 + 隔离。</p>"
    )
    body.append(_table(_recon_for_sheet(recon), bad={"是否平衡": lambda v: v != "平衡"}))
    for n in report.notes:
        body.append(f"<p class='bad'>{_esc(n)}</p>")
    body.append("</section>")
    page.extend(body)
    return (
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>扩面工作进度通报</title>"
        f"<style>{CSS}</style></head><body>{''.join(page)}</body></html>"
    )


def survey_chart(streets: pl.DataFrame) -> str:
    return stacked_bar_chart(
        streets["street_name"].to_list(),
        {
            "已答复": streets["answered"].to_list(),
            "已走访未答复": (streets["surveyed"] - streets["answered"]).to_list(),
            "待走访": streets["left_to_visit"].to_list(),
        },
        "各街道入户调查进度(人)",
    )


def write_bulletin_html(path: Path, current, history, recon, report) -> None:
    path.write_text(bulletin_page(current, history, recon, report), encoding="utf-8")
