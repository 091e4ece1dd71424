"""``report.html``: one self-contained page (inline CSS and SVG, nothing fetched).

Street offices open it offline. Sections: indicators per street against the
targets (bar charts), the registry by group and street, data quality per
source, match rules used, and the reconciliation.
"""

from __future__ import annotations

import html
from pathlib import Path

import duckdb
import polars as pl

from .config import load_rules, load_sources
from .db import frame

CSS = """
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:2px solid #4472c4;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#ddebf7}td:first-child,th:first-child{text-align:left}.bad{color:#c00;font-weight:bold}.ok{color:#080}
.note{color:#666;font-size:12px}svg text{font-size:11px}
"""


def _table(df: pl.DataFrame, headers: dict[str, str] | None = None, fmt: dict | None = None) -> str:
    headers = headers or {c: c for c in df.columns}
    fmt = fmt or {}
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers.values()) + "</tr>"]
    for rec in df.select(list(headers)).iter_rows(named=True):
        cells = []
        for c in headers:
            v = rec[c]
            s = fmt[c](v) if c in fmt and v is not None else ("" if v is None else str(v))
            cells.append(f"<td>{html.escape(s)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _pct(v) -> str:
    return f"{v * 100:.1f}%"


def bar_chart(labels: list[str], values: list[float | None], targets: dict[str, float], title: str) -> str:
    """A horizontal bar chart (0–100%) with a dashed line per target."""
    row_h, left, width = 22, 110, 520
    h = row_h * len(labels) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{h}" role="img" '
             f'aria-label="{html.escape(title)}">']  # fmt: skip
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 20 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(lab)}</text>')
        if v is not None:
            w = max(0.0, min(1.0, v)) * width
            parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="#4472c4"/>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}">{_pct(v)}</text>')
    colours = ["#c00000", "#ed7d31", "#70ad47"]
    for k, (year, t) in enumerate(targets.items()):
        x = left + t * width
        parts.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{h - 10}" stroke="{colours[k % 3]}" '
                     f'stroke-dasharray="4 3"/>')  # fmt: skip
        parts.append(f'<text x="{x:.1f}" y="10" fill="{colours[k % 3]}" text-anchor="middle">{year}目标 {_pct(t)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_report(path: Path, con: duckdb.DuckDBPyConnection, manifest: dict, recon: pl.DataFrame) -> None:
    cfg = load_rules("indicators")
    ind = frame(con, "SELECT * FROM cls_indicators")
    streets = ind.filter(pl.col("street_code") != "")
    groups = sorted(load_rules("groups")["groups"], key=lambda g: g["group"])
    labels = {s: src.label for s, src in load_sources().items()}
    body = [f"<h1>安宁市扩面对象实名库 — 数据更新报告</h1><p class='note'>数据截止日期 {manifest.get('as_of')} · "
            f"kuomian {manifest.get('version')} · 生成于 {manifest.get('finished_at', '')}</p>"]  # fmt: skip

    body.append("<h2>一、参保率与职工占比(户籍人口)</h2>")
    names = streets["street_name"].to_list()
    body.append(bar_chart(names, streets["coverage_rate"].to_list(), cfg["targets"]["coverage"], "参保率"))
    body.append(bar_chart(names, streets["employee_share"].to_list(), cfg["targets"]["employee_share"], "职工占比"))
    from .publish import indicator_headers

    body.append(_table(ind, indicator_headers(), {"coverage_rate": _pct, "employee_share": _pct}))

    body.append("<h2>二、实名库人数(按重点群体和街道)</h2>")
    cols = {"street_name": "街道", "registry": "合计"}
    cols.update({f"registry_group_{g['group']}": f"第{g['group']}类 {g['label']}" for g in groups})
    body.append(_table(ind, cols))

    body.append("<h2>三、各来源数据质量</h2>")
    q = frame(con, "SELECT source, reason, count(*) AS n FROM links WHERE outcome = 'quarantined' GROUP BY ALL ORDER BY ALL")
    q = q.with_columns(source=pl.col("source").replace_strict(labels, default=pl.col("source")))
    body.append("<p>隔离行(原因)</p>" + _table(q, {"source": "来源", "reason": "原因", "n": "行数"}))
    k = frame(con, "SELECT source, id_kind, count(*) AS n FROM std_rows GROUP BY ALL ORDER BY ALL")
    k = k.with_columns(source=pl.col("source").replace_strict(labels, default=pl.col("source")))
    body.append("<p>身份证号情况 (valid 有效 · upgraded 15位升位 · bad_check 校验位错误 · excel Excel损坏 · unusable 不可用)</p>")
    body.append(_table(k, {"source": "来源", "id_kind": "身份证号类别", "n": "行数"}))

    body.append("<h2>四、匹配方法</h2>")
    m = frame(con, "SELECT source, outcome, coalesce(match_rule, '') AS rule, count(*) AS n FROM links GROUP BY ALL ORDER BY ALL")
    m = m.with_columns(source=pl.col("source").replace_strict(labels, default=pl.col("source")))
    body.append(_table(m, {"source": "来源", "outcome": "结果", "rule": "规则", "n": "行数"}))

    body.append("<h2>五、对账(每个文件: 读取 = 各去向之和)</h2>")
    from .publish import RECON_HEADERS

    recon = recon.with_columns(balanced=pl.when(pl.col("balanced")).then(pl.lit("平衡")).otherwise(pl.lit("不平衡")))
    body.append(_table(recon, RECON_HEADERS))
    page = (
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>扩面对象实名库报告</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
