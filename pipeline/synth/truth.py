"""Expected outcomes per person, computed from the clean world.

An independent implementation of /work/shared/spec/rules.md (population, statuses,
exclusion reasons, the eight groups). Nothing from the rest of ``pipeline`` is used.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import polars as pl
import pyarrow as pa

from . import names as N
from .world import EMP, GOV, LOCAL, NONLOCAL, PAY, RECV, RES, SUSP, World, anniversary

PRIORITY = (7, 2, 4, 1, 5, 3, 6, 8)
UPGRADE_GROUPS = frozenset({1, 3, 4, 5, 6})
ROSTER_G2 = frozenset({"被征地农民", "乡村医生", "村(社区)干部"})
ROSTER_G5 = frozenset({"律师", "导游"})
ROSTER_G8 = frozenset({"基层服务项目高校毕业生", "民办学校教职工", "编外人员"})
INCOME_RICH = 60000
WITHHELD_MIN = 6

PERSONS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id_number": pl.String,
    "name": pl.String,
    "sex": pl.String,
    "birth_date": pl.Date,
    "in_population": pl.Boolean,
    "hukou_local": pl.Boolean,
    "hukou_type": pl.String,
    "street_code": pl.String,
    "community": pl.String,
    "status": pl.String,
    "exclusion_reason": pl.String,
    "group": pl.Int64,
    "group_tags": pl.List(pl.Int64),
    "registry": pl.Boolean,
}


def conditions(w: World) -> dict[int, set[int]]:
    """Group conditions that hold per person (group numbers 1-8; 8 only for the roster categories)."""
    ann = anniversary(w.as_of, 1).toordinal()
    cond: dict[int, set[int]] = defaultdict(set)
    for p, *_ in w.lowincome:
        cond[p].add(7)
    for p, cat, _ in w.roster:
        if cat == "重度残疾人":
            cond[p].add(7)
        elif cat in ROSTER_G2:
            cond[p].add(2)
        elif cat in ROSTER_G5:
            cond[p].add(5)
        elif cat in ROSTER_G8:
            cond[p].add(8)
    for p, _, _, active, _ in w.platform:
        if active is None or active >= 1:
            cond[p].add(4)
    for p, _, _, etype, size, status in w.tax:
        if status == "正常" and (etype == "个体工商户" or size in ("小型", "微型")):
            cond[p].add(1)
    for p, _, _, _, established, _ in w.market:
        if established is None or established >= ann:
            cond[p].add(1)
    for p, amount, months, _ in w.income:
        if w.hukou_type[p] == "农业" and months >= WITHHELD_MIN:
            cond[p].add(3)
        if amount >= INCOME_RICH:
            cond[p].add(6)
    return cond


def in_population(w: World) -> list[bool]:
    pop = [k == LOCAL for k in w.kind]
    for facts in (w.tax, w.income, w.market, w.lowincome, w.platform, w.roster):
        for rec in facts:
            pop[rec[0]] = True
    return pop


Outcomes = tuple[
    list[bool], list[str | None], list[str | None], list[int | None], list[list[int]], list[bool]
]


def evaluate(w: World) -> Outcomes:
    """Per person ``p``: in_population, status, exclusion_reason, group, group_tags, registry."""
    pop = in_population(w)
    cond = conditions(w)
    student_active = {p for p, _, _, st, _ in w.student if st in ("在读", "休学")}
    incarcerated = {p for p, cat, _ in w.roster if cat == "服刑人员"}
    receiving: set[int] = set()
    employee: set[int] = set()
    resident: set[int] = set()
    for p, scheme, st, _, _ in w.enroll:
        if st == RECV:
            receiving.add(p)
        elif st in (PAY, SUSP):
            if scheme in (EMP, GOV):
                employee.add(p)
            elif scheme == RES:
                resident.add(p)

    n = w.n
    status: list[str | None] = [None] * n
    reason: list[str | None] = [None] * n
    group: list[int | None] = [None] * n
    tags: list[list[int]] = [[] for _ in range(n)]
    registry = [False] * n
    for p in range(n):
        if not pop[p]:
            continue
        ps = w.person_status[p] if w.kind[p] == LOCAL else None
        c = cond.get(p, set())
        if ps == "死亡":
            s, r = "excluded", "deceased"
        elif ps == "迁出":
            s, r = "excluded", "moved_out"
        elif w.age[p] < 16:  # age in completed years; 16th birthday on as_of = 16
            s, r = "excluded", "under_16"
        elif p in student_active:
            s, r = "excluded", "student"
        elif p in incarcerated:
            s, r = "excluded", "incarcerated"
        elif p in receiving:
            s, r = "receiving", None
        elif p in employee:
            s, r = "enrolled_employee", None
        elif p in resident and c & UPGRADE_GROUPS:
            s, r = "resident_upgradable", None
        elif p in resident:
            s, r = "enrolled_resident", None
        else:
            s, r = "unenrolled", None
        status[p] = s
        reason[p] = r
        if s == "unenrolled":
            t = sorted(c) if c else [8]
            tags[p] = t
            group[p] = next(g for g in PRIORITY if g in t)
            registry[p] = True
        elif s == "resident_upgradable":
            t = sorted(c & UPGRADE_GROUPS)
            tags[p] = t
            group[p] = next(g for g in PRIORITY if g in t)
            registry[p] = True
    return pop, status, reason, group, tags, registry


def compute_persons(w: World, street_shown: set[int]) -> pl.DataFrame:
    pop, status, reason, group, tags, registry = evaluate(w)
    n = w.n
    street_code: list[str | None] = [None] * n
    for p in range(n):
        s = w.street[p]
        if s < 0:
            continue
        if w.kind[p] == LOCAL or (w.kind[p] == NONLOCAL and p in street_shown):
            street_code[p] = N.STREETS[s][0]

    epoch = date(1970, 1, 1).toordinal()
    df = pl.DataFrame(
        {
            "id_number": w.pid,
            "name": w.name,
            "sex": w.sex,
            "birth_date": pl.Series([b - epoch for b in w.birth], dtype=pl.Int32).cast(pl.Date),
            "in_population": pop,
            "hukou_local": [k == LOCAL for k in w.kind],
            "hukou_type": [w.hukou_type[p] if w.kind[p] == LOCAL else None for p in range(n)],
            "street_code": street_code,
            "community": [w.community[p] if w.kind[p] == LOCAL else None for p in range(n)],
            "status": status,
            "exclusion_reason": reason,
            "group": pl.Series(group, dtype=pl.Int64),
            "group_tags": pl.from_arrow(pa.array(tags, type=pa.list_(pa.int64()))),
            "registry": registry,
        },
    )
    return df.select(pl.col(c).cast(t) for c, t in PERSONS_SCHEMA.items())
