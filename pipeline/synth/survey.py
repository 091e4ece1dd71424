"""Filled-in hand-offs, as a street returns them after its door-to-door visits (for the demo).

:func:`fill_handoff` reads a hand-off CSV the refresh wrote and writes the same sheet as a
workbook with answers typed in the way a visitor does: some people not visited (blank rows),
the survey date a real date cell, every kind of answer of rules/survey.yaml (rules.md, "After the
survey") — seen in person or by a relative, deceased, moved out of the city, not found,
insured in another city (said as 参保意愿 or as 未参保原因), and ability to pay, willingness,
income band and kind of work. :func:`second_visit` revisits those not found, on another date.

Reads the hand-off CSV; writes one ``.xlsx``. No ID number is written (the hand-off holds masked
ones only).
"""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

# (share, answers) — the first ten kinds are given once each before the shares apply, so that a
# small street shows every kind of answer.
KINDS: list[tuple[float, dict[str, str]]] = [
    (0.01, {"走访结果": "已死亡"}),
    (0.02, {"走访结果": "已迁出本市"}),
    (0.04, {"走访结果": "已见到本人", "参保意愿": "已在外地参保", "就业情况": "单位就业"}),
    (0.02, {"走访结果": "家属代答", "未参保原因": "已在外地参保"}),
    (0.04, {"走访结果": "查无此人"}),
    (0.05, {"走访结果": "人户分离未见到", "未参保原因": "人户分离联系不上"}),
    (0.14, {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "参保意愿": "愿意参加职工养老", "年收入": "6万-12万",
            "就业情况": "个体经营"}),
    (0.08, {"走访结果": "已见到本人", "缴费能力": "有缴费能力", "参保意愿": "愿意参加居民养老", "年收入": "3万-6万",
            "就业情况": "务农"}),
    (0.16, {"走访结果": "已见到本人", "缴费能力": "缴费能力一般", "参保意愿": "暂不愿意参保", "未参保原因": "不了解政策",
            "年收入": "3万以下", "就业情况": "平台灵活就业"}),
    (0.12, {"走访结果": "家属代答", "缴费能力": "无缴费能力", "未参保原因": "经济困难", "年收入": "不愿透露",
            "就业情况": "无业"}),
]  # fmt: skip
VISITORS = ["李娟", "王建国", "赵丽", "杨帆"]
# What each workbook written by fill_handoff holds (header, rows), for its second visit.
FILLED: dict[Path, tuple[list[str], list[list[object]]]] = {}


def _read(handoff_csv: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(handoff_csv.read_text("utf-8-sig").splitlines()))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], body: list[list[object]]) -> Path:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("入户调查")
    datefmt = wb.add_format({"num_format": "yyyy/m/d"})
    ws.write_row(0, 0, header)
    for i, row in enumerate(body, start=1):
        for j, v in enumerate(row):
            if isinstance(v, datetime):
                ws.write_datetime(i, j, v, datefmt)  # a real date cell, as Excel keeps a typed date
            elif header[j] == "年龄" and str(v).isdigit():
                ws.write_number(i, j, int(str(v)))
            elif v not in (None, ""):
                ws.write_string(i, j, str(v))
    wb.close()
    return path


def fill_handoff(handoff_csv: Path, dst: Path, *, as_of: date, seed: int = 1) -> Path:
    """The hand-off with answers typed in (see the module docstring); about one person in three
    is not visited yet."""
    rng = random.Random(seed)
    header, body = _read(handoff_csv)
    shares = [s for s, _ in KINDS]
    for i, row in enumerate(body):
        if i < len(KINDS):
            answers = KINDS[i][1]
        elif rng.random() < 1 - sum(shares):
            continue  # not visited yet
        else:
            answers = rng.choices([a for _, a in KINDS], weights=shares)[0]
        day = as_of + timedelta(days=rng.randint(20, 80))
        for h, v in {**answers, "调查人": rng.choice(VISITORS)}.items():
            if h in header:
                row[header.index(h)] = v
        row[header.index("调查日期")] = datetime(day.year, day.month, day.day)  # type: ignore[call-overload]
    FILLED[Path(dst)] = (header, body)  # type: ignore[assignment]
    return _write(dst, header, body)  # type: ignore[arg-type]


def second_visit(first: Path, dst: Path, *, days_later: int = 30) -> Path:
    """The street's second round: those not found on the first visit (``first``, as
    :func:`fill_handoff` wrote it) are visited again ``days_later`` and not found again."""
    header, body = FILLED[Path(first)]
    j_result, j_date = header.index("走访结果"), header.index("调查日期")
    again = [
        [*r[:j_date], d + timedelta(days=days_later), *r[j_date + 1 :]]
        for r in body
        if r[j_result] in ("查无此人", "人户分离未见到") and isinstance(d := r[j_date], datetime)
    ]
    return _write(dst, header, again)
