"""``report.html``: one self-contained page (inline CSS and SVG, nothing fetched, no script).

Street offices open it offline, often on old machines. Sections (each a
``<section id=…>``, linked from the contents line at the top):

* ``overview``       — 概况: the run in a few numbers;
* ``indicators``     — 参保率与职工占比: per street against the targets of
  ``rules/indicators.yaml`` (bar charts with a dashed line per target), gaps;
* ``registry``       — 实名库: by priority group and by street (charts and table), by
  status, and registry persons by suggested measure (建议措施) per street;
* ``quality``        — 数据质量: per source rows read, quarantined by reason,
  exact duplicates, ID numbers by kind;
* ``matching``       — 匹配方法: the match rules used (labels of
  ``rules/matching.yaml``) and outcomes, per source;
* ``reconciliation`` — 对账: per file, rows read = the sum of the outcomes.

Under the title: which policy folder was used and which of its files differ from the
installed defaults (``manifest["policy"]``). No person is listed: the page holds counts only, so it never shows an ID.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import duckdb
import polars as pl

from ..core.db import frame, sql_literal
from ..core.labels import (
    CITY_CODE,
    EXTRA_RULE_LABELS,
    ID_KIND_LABELS,
    OUTCOME_LABELS,
    RECON_HEADERS,
    REPORT_FLAGGED_HEADERS,
    REPORT_REGISTRY_HEADERS,
    REPORT_REVIEW_REASON_HEADERS,
    REPORT_RULE_HEADERS,
    REPORT_SECTIONS,
    REPORT_SOURCE_HEADERS,
    REPORT_STATUS_HEADERS,
    REVIEW_REASON_LABELS,
    SURVEY_PROGRESS_HEADERS,
    UNASSIGNED_STREET,
    group_labels,
    indicator_headers,
    rule_labels,
    source_labels,
    status_labels,
    survey_effects_headers,
)
from ..core.labels import QUARANTINE_REASON_LABELS as REASON_LABELS
from ..core.policy import policy

CSS = """
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:2px solid #4472c4;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#ddebf7}td:first-child,th:first-child{text-align:left}td{white-space:nowrap}.bad{color:#c00;font-weight:bold}.ok{color:#080}
tr.total td{font-weight:bold;background:#f2f2f2}
.note{color:#666;font-size:12px}svg text{font-size:11px}nav a{margin-right:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #c9d7ee;border-radius:6px;padding:8px 14px;min-width:120px;background:#f7faff}
.card b{display:block;font-size:20px;color:#1f4e99}.card span{font-size:12px;color:#555}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
@page{size:A4 landscape;margin:10mm}
@media print{body{margin:0;max-width:none;font-size:12px}nav{display:none}
table{font-size:9px;page-break-inside:auto;max-width:100%}thead{display:table-header-group}
tr{page-break-inside:avoid}th,td{white-space:normal;padding:1px 3px}
h2,h3{page-break-after:avoid}svg,.cards{page-break-inside:avoid}}
"""

PALETTE = ["#4472c4", "#ed7d31", "#a5a5a5", "#ffc000", "#5b9bd5", "#70ad47", "#264478", "#9e480e", "#636363"]
TARGET_COLOURS = ["#c00000", "#ed7d31", "#70ad47"]

SECTIONS = REPORT_SECTIONS
# ---------------------------------------------------------------- building blocks


def _esc(v) -> str:
    return html.escape("" if v is None else str(v))


def _table(
    df: pl.DataFrame,
    headers: dict[str, str] | None = None,
    fmt: dict | None = None,
    *,
    bad: dict | None = None,
    total: str | None = None,
) -> str:
    """An HTML table. ``fmt``: column → formatter; ``bad``: column → predicate marking a cell red;
    ``total``: a boolean column of ``df`` (not shown) marking the rows shown as a total row."""
    headers = headers or {c: c for c in df.columns if c != total}
    fmt = fmt or {}
    bad = bad or {}
    # <thead>: a table that runs over a printed page repeats its header row
    out = [
        "<table><thead><tr>"
        + "".join(f"<th>{_esc(h)}</th>" for h in headers.values())
        + "</tr></thead><tbody>"
    ]
    marks = df[total].to_list() if total is not None else [False] * df.height
    for rec, is_total in zip(df.select(list(headers)).iter_rows(named=True), marks, strict=True):
        cells = []
        for c in headers:
            v = rec[c]
            s = fmt[c](v) if c in fmt and v is not None else ("" if v is None else str(v))
            cls = " class='bad'" if c in bad and v is not None and bad[c](v) else ""
            cells.append(f"<td{cls}>{_esc(s)}</td>")
        row_cls = " class='total'" if is_total else ""
        out.append(f"<tr{row_cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _pct(v) -> str:
    return f"{v * 100:.1f}%"


def _svg_open(width: int, height: int, title: str) -> str:
    # Inline SVG needs no namespace declaration in HTML5 (and the page then names no URL at all).
    return f'<svg width="{width}" height="{height}" role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>'


def _legend(names: list[str], colours: list[str]) -> str:
    items = "".join(
        f"<span><i style='background:{c}'></i>{_esc(n)}</span>" for n, c in zip(names, colours, strict=False)
    )
    return f"<div class='legend'>{items}</div>"


def bar_chart(
    labels: list[str],
    values: list[float | None],
    targets: dict[str, float],
    title: str,
    lo: float | None = 0.0,
) -> str:
    """A horizontal bar chart of rates with a dashed line per target.

    The axis runs from ``lo`` to 100% (``lo=None``: a round value below the smallest bar and target,
    so that 92% against a 95% target is visible at all).
    """
    row_h, left, width = 22, 110, 520
    known = [v for v in values if v is not None] + list(targets.values())
    if lo is None:
        lo = max(0.0, math.floor((min(known or [0.0]) - 0.05) * 10) / 10)
    span = max(1e-9, 1.0 - lo)

    def x_of(v: float) -> float:
        return left + max(0.0, min(1.0, (v - lo) / span)) * width

    h = row_h * len(labels) + 56
    parts = [f"<h3>{_esc(title)}</h3>", _svg_open(left + width + 80, h, title)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 20 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(lab)}</text>')
        if v is not None:
            w = x_of(v) - left
            below = any(v < t for t in list(targets.values())[:1])
            colour = "#c55a11" if below else "#4472c4"
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>'
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}">{_pct(v)}</text>')
        else:
            parts.append(f'<text x="{left + 4}" y="{y + 14}" fill="#888">无数据</text>')
    axis_y = 20 + len(labels) * row_h + 4
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + width}" y2="{axis_y}" stroke="#999"/>')
    for tick in (lo, lo + span / 2, 1.0):
        parts.append(
            f'<text x="{x_of(tick):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#666">{_pct(tick)}</text>'
        )
    for k, (year, t) in enumerate(targets.items()):
        x = x_of(t)
        colour = TARGET_COLOURS[k % len(TARGET_COLOURS)]
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{axis_y}" stroke="{colour}" stroke-dasharray="4 3"/>'
        )
        anchor = "end" if k == 0 else "start"
        parts.append(
            f'<text x="{x:.1f}" y="10" fill="{colour}" text-anchor="{anchor}">{year}目标 {_pct(t)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def grouped_bar_chart(
    labels: list[str],
    series: dict[str, list[float | None]],
    title: str,
    targets: dict[str, float] | None = None,
) -> str:
    """Horizontal bars (0–100%), one bar per series within each label (e.g. 原 / 现)."""
    names = list(series)
    bar_h, gap, left, width = 12, 8, 110, 520
    group_h = bar_h * len(names) + gap
    h = group_h * len(labels) + 40
    parts = [f"<h3>{_esc(title)}</h3>", _legend(names, PALETTE), _svg_open(left + width + 80, h, title)]
    for i, lab in enumerate(labels):
        y0 = 20 + i * group_h
        parts.append(
            f'<text x="{left - 6}" y="{y0 + group_h / 2 + 2:.0f}" text-anchor="end">{_esc(lab)}</text>'
        )
        for k, name in enumerate(names):
            v = series[name][i]
            if v is None:
                continue
            y = y0 + k * bar_h
            w = max(0.0, min(1.0, v)) * width
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{PALETTE[k % len(PALETTE)]}"/>'
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}">{_pct(v)}</text>')
    for k, (year, t) in enumerate((targets or {}).items()):
        x = left + t * width
        colour = TARGET_COLOURS[k % len(TARGET_COLOURS)]
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{h - 10}" stroke="{colour}" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="10" fill="{colour}" text-anchor="middle">{year}目标 {_pct(t)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def count_bar_chart(labels: list[str], values: list[int], title: str, colour: str = "#4472c4") -> str:
    """Horizontal bars of counts, scaled to the largest."""
    row_h, left, width = 22, 190, 440
    h = row_h * len(labels) + 20
    top = max([v for v in values if v] or [1])
    parts = [f"<h3>{_esc(title)}</h3>", _svg_open(left + width + 80, h, title)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 6 + i * row_h
        w = (v or 0) / top * width
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(lab)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}">{v or 0}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar_chart(labels: list[str], series: dict[str, list[int]], title: str) -> str:
    """Horizontal stacked bars of counts (e.g. registry per street, stacked by group)."""
    names = list(series)
    row_h, left, width = 22, 110, 520
    totals = [sum(series[n][i] or 0 for n in names) for i in range(len(labels))]
    top = max([t for t in totals if t] or [1])
    h = row_h * len(labels) + 20
    parts = [f"<h3>{_esc(title)}</h3>", _legend(names, PALETTE), _svg_open(left + width + 80, h, title)]
    for i, lab in enumerate(labels):
        y = 6 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(lab)}</text>')
        x = float(left)
        for k, n in enumerate(names):
            v = series[n][i] or 0
            if not v:
                continue
            w = v / top * width
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{_esc(n)}: {v}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{totals[i]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cards(items: list[tuple[str, str]]) -> str:
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><b>{_esc(v)}</b><span>{_esc(k)}</span></div>" for k, v in items)
        + "</div>"
    )


def _pivot(df: pl.DataFrame, index: str, on: str, value: str, order: list[str] | None = None) -> pl.DataFrame:
    """A small pivot with a 合计 column; columns in ``order`` first (those present)."""
    if df.height == 0:
        return pl.DataFrame({"来源": []}, schema={"来源": pl.String})
    p = df.pivot(on=on, index=index, values=value, aggregate_function="sum").fill_null(0)
    cols = [c for c in p.columns if c != index]
    order = list(dict.fromkeys(order or []))
    ordered = [c for c in order if c in cols] + sorted(c for c in cols if c not in order)
    return p.select(index, *ordered).with_columns(合计=pl.sum_horizontal(ordered)).rename({index: "来源"})


def _measures_table(con: duckdb.DuckDBPyConnection) -> str:
    """实名库人员按建议措施 (rules/retirement.yaml, groups.yaml), one column per street."""
    m = frame(
        con,
        f"""SELECT measure, coalesce(street_name, {sql_literal(UNASSIGNED_STREET)}) AS street, count(*) AS n
            FROM cls_persons WHERE measure IS NOT NULL GROUP BY ALL""",
    )
    if not m.height:
        return ""
    streets = [s for s in policy().street_names.values() if s in set(m["street"].to_list())]
    p = _pivot(m, "measure", "street", "n", [*streets, UNASSIGNED_STREET]).rename({"来源": "建议措施"})
    p = p.sort("合计", "建议措施", descending=[True, False])
    return (
        "<h3>实名库人员按建议措施(各街道)</h3><p class='note'>建议措施按 rules/retirement.yaml 的顺序确定: "
        "60周岁以上未参保 → 补缴; 已到法定退休时间 → 城乡居民养老; 距法定退休不足最低缴费年限 → 群体措施并注明; "
        "其余 → 群体措施。</p>" + _table(p, {})
    )


def _policy_note(manifest: dict) -> str:
    """Which policy folder the run used, and which of its files differ from the installed defaults."""
    pol = manifest.get("policy") or {}
    if not pol:
        return ""
    if pol.get("default"):
        return "<p class='note'>政策规则: 安装的默认规则(rules/, sources/)。</p>"
    diff = pol.get("differs_from_defaults") or []
    what = ("与默认规则不同的文件: " + "、".join(diff)) if diff else "内容与默认规则相同"
    items = "".join(
        f"<li>{_esc(f)}: {_esc('、'.join(keys))}</li>"
        for f, keys in (pol.get("differences") or {}).items()
        if keys
    )
    return f"<p><b>政策规则</b>: 本局规则目录 {_esc(pol.get('folder'))}; {_esc(what)}。</p>" + (
        f"<ul class='note'>{items}</ul>" if items else ""
    )


def _section(sid: str, number: str, body: list[str]) -> str:
    return f"<section id='{sid}'><h2>{number}、{_esc(SECTIONS[sid])}</h2>{''.join(body)}</section>"


def survey_section(persons: pl.DataFrame | None) -> list[str]:
    """Per street and community: registry people, visited, answered, left to visit (the answers
    of persons.parquet at publication: carried forward by --previous; ``kuomian progress`` shows
    them after later ``survey import`` runs)."""
    from .survey_progress import survey_table

    if persons is None:
        return ["<p>无人员数据。</p>"]
    streets, communities = survey_table(persons)
    only = streets.filter(~pl.col("is_city"))  # the streets without the city's row
    headers = SURVEY_PROGRESS_HEADERS
    body = [
        "<p class='note'>实名库全部人员(含非户籍), 按列入时的街道和社区。已走访: 已导入调查日期或任一答复; "
        "已答复: 已导入缴费能力、参保意愿或未参保原因; 待走访 = 实名库人数 - 已走访。"
        "本节为发布时的情况; 之后用 kuomian survey import 导入的答复见 kuomian progress 的进度通报。</p>",
        stacked_bar_chart(
            only["street_name"].to_list(),
            {
                "已答复": only["answered"].to_list(),
                "已走访未答复": only.select(pl.col("visited") - pl.col("answered")).to_series().to_list(),
                "待走访": only["left_to_visit"].to_list(),
            },
            "各街道入户调查进度(人)",
        ),
        _table(streets, headers, {"visited_share": _pct}, total="is_city"),
        "<h3>各社区</h3>",
        _table(
            communities,
            {
                "street_name": "街道",
                "community": "社区",
                **{k: v for k, v in headers.items() if k != "street_name"},
            },
            {"visited_share": _pct},
        ),  # fmt: skip
    ]
    from .survey_progress import survey_effects_table

    body += [
        "<h3>本年度重点扩面对象与调查结果</h3>",
        "<p class='note'>实名库人员按 rules/targets.yaml 定级(A 重点 / B 动员 / C 兜底 / D 暂缓, 第一条适用的规则); "
        "上年X级已参保: 上一年实名库(--previous)中定为该级、今年已参保的人数; "
        "外地参保(自报): 调查答 已在外地参保, 计为已参保(参保率), 不在实名库, 本人自报、可要求提供证明; "
        "走访确认已死亡、已迁出本市的人员不再是扩面对象; 两次走访(日期不同)未见到的人员交人社局核实。"
        "与今年户籍、参保数据不一致的调查结果见 survey_disagreements.csv。</p>",
        _table(survey_effects_table(persons), survey_effects_headers(), total="is_city"),
    ]
    return body


# ---------------------------------------------------------------- the page


def write_report(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    manifest: dict,
    recon: pl.DataFrame,
    persons: pl.DataFrame | None = None,
) -> None:
    path.write_text(report_page(con, manifest, recon, persons), encoding="utf-8")


def report_page(
    con: duckdb.DuckDBPyConnection, manifest: dict, recon: pl.DataFrame, persons: pl.DataFrame | None = None
) -> str:
    """report.html: the head, then one section per function, each fed by the frames it shows
    (``cls_indicators``, ``cls_persons``, ``links``, ``pub_id_kinds``, the reconciliation)."""
    ind = frame(con, "SELECT * FROM cls_indicators")
    ind = ind.with_columns(is_city=pl.col("street_code").eq_missing(CITY_CODE))
    # The registry counted once, from the persons: every total on the page agrees with it
    # (and with the refresh's summary line); each says whether it is all or household only.
    reg_by_group = frame(
        con,
        'SELECT "group" AS g, hukou_local AS local, count(*) AS n FROM cls_persons '
        "WHERE status IN (SELECT unnest(?)) GROUP BY ALL",
        [list(policy().statuses.registry)],
    )
    head = (
        "<h1>安宁市扩面对象实名库 — 数据更新报告</h1>"
        f"<p class='note'>数据截止日期 {_esc(manifest.get('as_of'))} · kuomian {_esc(manifest.get('version'))} · "
        f"生成于 {_esc(manifest.get('finished_at', ''))}</p>"
        "<nav>" + "".join(f"<a href='#{sid}'>{_esc(t)}</a>" for sid, t in SECTIONS.items()) + "</nav>"
    )
    page = [
        head,
        _policy_note(manifest),
        _section("overview", "一", _overview(manifest, recon, ind, reg_by_group)),
        _section("indicators", "二", _indicators(ind)),
        _section("registry", "三", _registry(con, ind, reg_by_group)),
        _section("survey", "四", survey_section(persons)),
        _section("quality", "五", _quality(con)),
        _section("matching", "六", _matching(con)),
        _section("reconciliation", "七", _reconciliation(recon)),
    ]

    return (
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>扩面对象实名库报告</title>"
        f"<style>{CSS}</style></head><body>{''.join(page)}</body></html>"
    )


def _src_label(col: str = "source") -> pl.Expr:
    """A source column shown by its label (户籍人口, …)."""
    labels = source_labels()
    return pl.col(col).replace_strict(labels, default=pl.col(col), return_dtype=pl.String)


def _registry_totals(reg_by_group: pl.DataFrame) -> tuple[int, int]:
    """(all, household) registry persons of the page's one count."""
    reg_all = int(reg_by_group["n"].sum()) if reg_by_group.height else 0
    reg_local = int(reg_by_group.filter(pl.col("local"))["n"].sum()) if reg_by_group.height else 0
    return reg_all, reg_local


def _overview(
    manifest: dict, recon: pl.DataFrame, ind: pl.DataFrame, reg_by_group: pl.DataFrame
) -> list[str]:
    """一、概况: the cards, the warnings, the sources read and the files and sheets not read."""
    city = ind.filter(pl.col("is_city"))
    city_row = city.row(0, named=True) if city.height else {}
    labels = source_labels()
    counts = manifest.get("counts", {})
    reg_all, reg_local = _registry_totals(reg_by_group)
    quarantined = sum(int(r["quarantined"]) for r in recon.iter_rows(named=True)) if recon.height else 0
    warnings = list(manifest.get("warnings") or [])
    unbalanced = recon.filter(~pl.col("balanced")).height if recon.height else 0
    cards = [
        ("人员总数", str(counts.get("persons", ""))),
        ("户籍人口", str(counts.get("household_persons", city_row.get("household_persons", "")))),
        ("实名库人数(全部)", str(reg_all)),
        ("其中户籍 / 非户籍", f"{reg_local} / {reg_all - reg_local}"),
        ("全市参保率", _pct(city_row["coverage_rate"]) if city_row.get("coverage_rate") is not None else "—"),
        (
            "全市职工占比",
            _pct(city_row["employee_share"]) if city_row.get("employee_share") is not None else "—",
        ),
        ("待复核行", str(counts.get("review_rows", ""))),
        ("户籍重号(两人同号)", str(counts.get("shared_id_numbers", 0))),
        ("重号持号人(各为一人, 均待核实)", str(counts.get("shared_id_persons", 0))),
        ("隔离行", str(quarantined)),
        (
            "对账",
            f"{unbalanced}个文件不平衡"
            if unbalanced
            else (f"{len(warnings)}条警告" if warnings else "全部平衡"),
        ),
    ]
    overview = [_cards(cards)]
    for w in warnings:  # the damage guard and empty streets: never hidden behind 全部平衡
        overview.append(f"<p class='bad'>警告: {_esc(w)}</p>")
    present = [labels.get(s, s) for s in manifest.get("sources_present", [])]
    missing = [labels.get(s, s) for s in manifest.get("sources_missing", [])]
    overview.append(f"<p>已读取来源: {_esc('、'.join(present) or '—')}</p>")
    if missing:
        overview.append(f"<p>缺少的可选来源(其信号不参与分类): {_esc('、'.join(missing))}</p>")
    skipped = [f for f in manifest.get("inputs", []) if f.get("recognised_by") == "skipped"]
    for f in skipped:
        overview.append(
            f"<p class='bad'>已跳过无法读取的文件 {_esc(f['file'])}: {_esc(f.get('problem') or '')}</p>"
        )
    unrecognised = [f["file"] for f in manifest.get("inputs", []) if f.get("recognised_by") == "unrecognised"]
    if unrecognised:
        overview.append(f"<p class='note'>未识别(已忽略)的文件: {_esc('、'.join(unrecognised))}</p>")
    ignored = [
        f"{f['file']}({f.get('problem') or ''})"
        for f in manifest.get("inputs", [])
        if f.get("recognised_by") == "ignored"
    ]
    if ignored:
        overview.append(f"<p class='note'>不是数据文件(已忽略): {_esc('、'.join(ignored))}</p>")
    not_read = [
        f"{f['file']}({f.get('problem') or ''})"
        for f in manifest.get("inputs", [])
        if f.get("recognised_by") in ("not read", "copy")
    ]
    if not_read:  # subfolders, what is not a regular file, copies of another file
        overview.append(
            f"<p class='note'>未读取(子文件夹、非普通文件或重复副本): {_esc('、'.join(not_read))}</p>"
        )
    sheets = [
        f"{f['file']} / {s['sheet']}({s['skipped']})"
        for f in manifest.get("inputs", [])
        for s in f.get("sheets") or []
        if "skipped" in s
    ]
    if sheets:
        overview.append(f"<p class='note'>未读取的工作表: {_esc('、'.join(sheets))}</p>")
    return overview


def _indicators(ind: pl.DataFrame) -> list[str]:
    """二、参保率与职工占比: the two charts against the targets and the indicators table."""
    pol = policy()
    streets = ind.filter(~pl.col("is_city"))
    names = streets["street_name"].to_list()
    cov_t, emp_t = pol.indicators.coverage_targets, pol.indicators.employee_share_targets
    body = [
        "<p class='note'>户籍人口口径。参保率 = 已参保人数 / 应参保人数; 职工占比 = 职工养老缴费人数 / 缴费阶段人数。"
        "虚线为目标; 橙色柱低于最近一年的目标。</p>",
        bar_chart(names, streets["coverage_rate"].to_list(), cov_t, "各街道参保率", lo=None),
        bar_chart(names, streets["employee_share"].to_list(), emp_t, "各街道职工占比"),
    ]
    first_cov, first_emp = next(iter(cov_t.values())), next(iter(emp_t.values()))
    body.append(
        _table(
            ind,
            indicator_headers(),
            {"coverage_rate": _pct, "employee_share": _pct},
            bad={"coverage_rate": lambda v: v < first_cov, "employee_share": lambda v: v < first_emp},
            total="is_city",
        )
    )
    return body


def _registry(con: duckdb.DuckDBPyConnection, ind: pl.DataFrame, reg_by_group: pl.DataFrame) -> list[str]:
    """三、实名库: per group (city, streets), the registry table, statuses and measures."""
    streets = ind.filter(~pl.col("is_city"))
    names = streets["street_name"].to_list()
    groups = sorted(g.group for g in policy().groups.groups)
    group_names = group_labels()
    reg_all, reg_local = _registry_totals(reg_by_group)
    body = []
    g_cols = [f"registry_group_{g}" for g in groups]
    per_group = {int(g): 0 for g in groups}
    for g, _local, n in reg_by_group.iter_rows():
        if g is not None:
            per_group[int(g)] = per_group.get(int(g), 0) + int(n)
    body.append(
        f"<p class='note'>实名库人数(全部) {reg_all} = 户籍 {reg_local} + 非户籍 {reg_all - reg_local}。"
        "全市按重点群体的图统计全部实名库人员; 各街道的图和表按指标口径只统计户籍人员"
        "(表中另列含非户籍的人数)。</p>"
    )
    body.append(
        count_bar_chart(
            [group_names[g] for g in groups],
            [per_group.get(int(g), 0) for g in groups],
            f"全市实名库人数(全部, 按重点群体): 合计 {reg_all}",
        )
    )
    body.append(
        stacked_bar_chart(
            names,
            {
                group_names[g]: [int(v or 0) for v in streets[c].to_list()]
                for g, c in zip(groups, g_cols, strict=True)
            },
            f"各街道实名库人数(户籍, 按重点群体堆叠): 合计 {reg_local}",
        )
    )
    cols = {
        "street_name": REPORT_REGISTRY_HEADERS["street_name"],
        "registry": REPORT_REGISTRY_HEADERS["registry"],
    }
    cols.update({f"registry_group_{g}": group_names[g] for g in groups})
    cols["registry_all"] = REPORT_REGISTRY_HEADERS["registry_all"]
    body.append(_table(ind, cols, total="is_city"))
    status_lbl = status_labels()
    st = frame(con, "SELECT status, count(*) AS n FROM cls_persons GROUP BY ALL ORDER BY n DESC")
    st = st.with_columns(
        status=pl.col("status").replace_strict(status_lbl, default=pl.col("status"), return_dtype=pl.String)
    )
    body.append("<h3>全部人员按参保状态</h3>" + _table(st, REPORT_STATUS_HEADERS))
    body.append(_measures_table(con))
    return body


def _quality(con: duckdb.DuckDBPyConnection) -> list[str]:
    """五、数据质量: per source (files, rows, outcomes), the quarantine by reason, the ID kinds."""
    src_label = _src_label
    body = []
    per_src = frame(
        con,
        """SELECT source, count(DISTINCT file) AS files, count(*) AS rows_read,
                  count(*) FILTER (WHERE outcome = 'duplicate') AS duplicates,
                  count(*) FILTER (WHERE outcome = 'quarantined') AS quarantined,
                  count(*) FILTER (WHERE outcome = 'review') AS review,
                  count(*) FILTER (WHERE outcome IN ('linked', 'new_person')) AS used
           FROM links GROUP BY ALL ORDER BY source""",
    ).with_columns(source=src_label())
    body.append(
        "<h3>各来源概况</h3>"
        + _table(
            per_src,
            REPORT_SOURCE_HEADERS,
        )
    )
    q = frame(
        con,
        "SELECT source, reason, count(*) AS n FROM links WHERE outcome = 'quarantined' GROUP BY ALL ORDER BY ALL",
    )
    q = q.with_columns(
        source=src_label(),
        reason=pl.col("reason")
        .fill_null("")
        .replace_strict(REASON_LABELS, default=pl.col("reason"), return_dtype=pl.String),
    )
    body.append("<h3>隔离行(按原因)</h3>")
    body.append(
        _table(_pivot(q, "source", "reason", "n", list(REASON_LABELS.values())), {})
        if q.height
        else "<p>无隔离行。</p>"
    )
    k = frame(con, "SELECT source, id_kind, n FROM pub_id_kinds ORDER BY ALL")
    k = k.with_columns(
        source=src_label(),
        id_kind=pl.col("id_kind").replace_strict(
            ID_KIND_LABELS, default=pl.col("id_kind"), return_dtype=pl.String
        ),
    )
    body.append("<h3>身份证号情况(按来源)</h3>")
    body.append(
        "<p class='note'>有效: 18位且校验位正确 · 15位升18位: 旧号码已升位 · 校验位错误: 输错一位或相邻两位颠倒, "
        "匹配时尝试修复 · Excel损坏: 科学计数法或数字单元格, 仅前15位可用 · 不可用: 空白或占位符</p>"
    )
    body.append(
        _table(_pivot(k, "source", "id_kind", "n", list(ID_KIND_LABELS.values())), {}) if k.height else ""
    )
    return body


def _matching(con: duckdb.DuckDBPyConnection) -> list[str]:
    """六、匹配方法: rules used, per source and rule, each row's outcome, review reasons, and the
    registry persons an unaccepted enrolment row could be."""
    src_label = _src_label
    rules_lbl = {**rule_labels(), **EXTRA_RULE_LABELS}
    reg_statuses = list(policy().statuses.registry)
    body = []
    used = frame(
        con,
        """SELECT match_rule AS rule, count(*) AS n, round(avg(confidence), 3) AS confidence
           FROM links WHERE outcome IN ('linked', 'new_person') AND match_rule IS NOT NULL GROUP BY ALL ORDER BY n DESC""",
    )
    order = list(dict.fromkeys([*EXTRA_RULE_LABELS, *rules_lbl]))
    used = used.with_columns(
        _o=pl.col("rule").replace_strict(
            {r: i for i, r in enumerate(order)}, default=len(order), return_dtype=pl.Int64
        ),
        label=pl.col("rule").replace_strict(rules_lbl, default=pl.col("rule"), return_dtype=pl.String),
    ).sort("_o")
    body.append(
        "<p class='note'>规则按 rules/matching.yaml 的顺序尝试, 第一个找到姓名一致候选人的规则决定。</p>"
        + _table(used, REPORT_RULE_HEADERS)
    )
    per_rule = frame(
        con,
        """SELECT source, match_rule AS rule, count(*) AS n FROM links
           WHERE outcome IN ('linked', 'new_person') AND match_rule IS NOT NULL GROUP BY ALL ORDER BY ALL""",
    ).with_columns(source=src_label())
    if per_rule.height:
        body.append(
            "<h3>各来源按规则匹配的行数</h3>" + _table(_pivot(per_rule, "source", "rule", "n", order), {})
        )
    outc = frame(
        con, "SELECT source, outcome, count(*) AS n FROM links GROUP BY ALL ORDER BY ALL"
    ).with_columns(
        source=src_label(),
        outcome=pl.col("outcome").replace_strict(
            OUTCOME_LABELS, default=pl.col("outcome"), return_dtype=pl.String
        ),
    )
    body.append(
        "<h3>各来源每行的去向</h3>"
        + _table(_pivot(outc, "source", "outcome", "n", list(OUTCOME_LABELS.values())), {})
    )
    rv = frame(
        con, "SELECT reason, count(*) AS n FROM links WHERE outcome = 'review' GROUP BY ALL ORDER BY n DESC"
    )
    if rv.height:
        rv = rv.with_columns(
            reason=pl.col("reason").replace_strict(
                REVIEW_REASON_LABELS, default=pl.col("reason"), return_dtype=pl.String
            )
        )
        body.append("<h3>待复核原因</h3>" + _table(rv, REPORT_REVIEW_REASON_HEADERS))
        body.append("<p class='note'>待复核的行见 review.xlsx; 填写决定后用 kuomian review import 导入。</p>")
    # No silent listing: registry persons an unaccepted enrolment row could be (hand-off: 复核提示)
    flagged = frame(
        con,
        """SELECT coalesce(street_name, ?) AS street, count(*) AS n FROM cls_persons
           WHERE review_evidence IS NOT NULL AND status IN (SELECT unnest(?)) GROUP BY ALL ORDER BY street""",
        [UNASSIGNED_STREET, reg_statuses],
    )
    if flagged.height:
        body.append(
            "<h3>实名库中可能已参保、待核实的人员</h3>"
            + _table(flagged, REPORT_FLAGGED_HEADERS)
            + "<p class='note'>本次看到了可能属于这些人的参保记录, 但未能确认 (待复核、未匹配但同名同出生日期、"
            "身份证号相差一位)。他们仍在实名库中, 交接表的“复核提示”一栏写明该记录; 入户前请先核实。</p>"
        )
    return body


def _reconciliation(recon: pl.DataFrame) -> list[str]:
    """七、对账: every file and sheet balanced (rows read = where every row went)."""
    src_label = _src_label
    rc = recon.with_columns(
        source=src_label(),
        balanced=pl.when(pl.col("balanced")).then(pl.lit("平衡")).otherwise(pl.lit("不平衡")),
    )
    body = [
        "<p class='note'>每个文件和工作表: 读取行数 = 已匹配 + 新增人员 + 重复行 + 隔离 + 待复核 + 未匹配。"
        "未读取的工作表和文件列在最后, 说明原因。</p>",
        _table(rc, RECON_HEADERS, bad={"balanced": lambda v: v != "平衡"}),
    ]
    return body
