"""Age a synthetic world by one year, for realistic pairs of years (``kuomian compare``).

:func:`age_world` moves a built world (its ``_Gen``) one year on, in place: the as-of date
goes one year forward (29 February falls back to 28 February) and

* registry targets enrol (``enrol``): unenrolled people join the resident scheme or, with
  ``enrol_employee``, the employee scheme (non-locals: always the employee scheme; people
  of 60 and over: the resident scheme, receiving at once); resident contributors who are
  upgradable switch to the employee scheme (their resident rows become 终止参保);
* other resident contributors switch to the employee scheme (``resident_switch``);
  contributors who turn 60 start receiving (``retire``);
* household people die or move out (``person_status`` 死亡 / 迁出; ``death_*``,
  ``move_out*``): their pension / resident rows are mostly terminated, their low-income
  and platform rows dropped;
* whole households move to another street (``household_street``), another community of
  the same street (``household_community``) or another address (``household_address``):
  new household number, community and address; non-locals move street too
  (``nonlocal_street``);
* children turn 16 through the date; some of them enter a school (``new_student``);
  births are added to households with a mother aged 22-40 (``birth``);
* students whose expected graduation date has passed graduate (``graduate``; some find a
  job in the employee scheme), a few drop out;
* the 新增市场主体 extract loses entities older than two years and gets new ones, by local
  and non-local operators; new tax entities appear, some are deregistered;
* new platform workers appear (local and non-local), some leave the platforms or become
  inactive; some low-income people leave the list, some join; some prisoners are released.

IDs, names and birth dates stay the same person for person; the scripted scenario people
of the world are left alone. Everything is drawn from ``random.Random(f"kuomian-age-{seed}-{tag}")``,
so the same seed gives the same years.

:func:`transitions` derives, from the truth persons of two consecutive years, the category
``kuomian compare`` should put each person in.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date

import polars as pl

from . import names as N
from .truth import evaluate
from .world import (
    EMP,
    LOCAL,
    NONLOCAL,
    PAY,
    RECV,
    RES,
    SUSP,
    TERM,
    _Gen,
    age_at,
    anning_code,
    anniversary,
)

CATEGORIES = ("newly_enrolled", "newly_listed", "left_other", "group_changed", "street_changed")
STYLE = {eth: style for eth, _, style in N.ETHNICITIES}
ACTIVE = ("在读", "休学")


@dataclass(frozen=True)
class AgeRates:
    """Yearly rates of the changes (see the module docstring)."""

    enrol: float = 0.22  # of registry people (still alive and here)
    enrol_employee: float = 0.35  # of local enrolments
    resident_switch: float = 0.04  # of resident contributors under 60
    retire: float = 0.6  # of contributors turning 60
    death_70: float = 0.035
    death_60: float = 0.012
    death: float = 0.002
    move_out_young: float = 0.015  # 18-45
    move_out: float = 0.004
    household_street: float = 0.02  # per household
    household_community: float = 0.01
    household_address: float = 0.01
    nonlocal_street: float = 0.03
    birth: float = 0.07  # per household with a possible mother
    new_student: float = 0.45  # of those turning 16
    graduate: float = 0.9  # of students past their expected graduation date
    graduate_employed: float = 0.3
    dropout: float = 0.02
    market_new: float = 0.006  # of local adults 22-60
    market_nonlocal: float = 0.14  # per new local entity
    tax_new: float = 0.006  # of local adults 22-68
    tax_deregister: float = 0.03
    platform_new_male: float = 0.012
    platform_new_female: float = 0.004
    platform_nonlocal: float = 0.43  # per new local platform worker
    platform_leave: float = 0.1
    platform_inactive: float = 0.08
    lowincome_leave: float = 0.12
    lowincome_new: float = 0.006
    released: float = 0.35  # of 服刑人员 roster rows


def next_year(d: date) -> date:
    return anniversary(d, -1)


class _Ager:
    def __init__(self, g: _Gen, tag: str | int, rates: AgeRates):
        self.g = g
        self.w = g.w
        self.rates = rates
        self.r = random.Random(f"kuomian-age-{g.w.seed}-{tag}")
        g.rng = self.r  # the generator's helpers (names, IDs, entities) draw from the ageing stream
        self.c: Counter[str] = Counter()
        self.fixed = set(self.w.scenarios.values())

    # ------------------------------------------------------------------ helpers
    def chance(self, rate: float) -> bool:
        return self.r.random() < rate

    def here(self, p: int) -> bool:
        """Alive and not moved out (non-locals and outsiders: always)."""
        return self.w.kind[p] != LOCAL or self.w.person_status[p] == "正常"

    def enroll_rows(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i, t in enumerate(self.w.enroll):
            out[t[0]].append(i)
        return out

    def set_status(self, i: int, status: str) -> None:
        p, scheme, _, employer, place = self.w.enroll[i]
        self.w.enroll[i] = (p, scheme, status, employer, place)

    def terminate(
        self, rows: dict[int, list[int]], p: int, schemes: tuple[str, ...], statuses: tuple[str, ...]
    ) -> None:
        for i in rows.get(p, ()):
            t = self.w.enroll[i]
            if t[1] in schemes and t[2] in statuses:
                self.set_status(i, TERM)

    def address(self, s: int, comm: str) -> str:
        r = self.r
        sname = N.STREETS[s][1]
        if comm.endswith("村"):
            return f"云南省安宁市{sname}{comm}{r.randint(1, 12)}组{r.randint(1, 150)}号"
        addr = f"云南省安宁市{sname}{comm}{r.choice(N.ROADS)}{r.randint(1, 300)}号"
        if r.random() < 0.5:
            addr += f"{r.randint(1, 30)}栋{r.randint(1, 6)}单元{r.randint(1, 30)}0{r.randint(1, 4)}室"
        return addr

    def other_street(self, s: int) -> int:
        while True:
            s2 = self.g.street_index()
            if s2 != s:
                return s2

    # ------------------------------------------------------------------ steps
    def run(self) -> dict[str, int]:
        w, g = self.w, self.g
        _, status1, _, _, _, registry1 = evaluate(w)
        self.status1 = status1
        self.registry1 = registry1
        self.n1 = w.n
        self.old_age = list(w.age)
        new_as_of = next_year(w.as_of)
        w.as_of = g.as_of = new_as_of
        g.A = new_as_of.toordinal()
        g.compute_ages()
        self.deaths_and_moves_out()
        self.household_moves()
        self.births()
        self.students()
        self.enrolment()
        self.entities()
        self.platform()
        self.lowincome_and_roster()
        return dict(sorted(self.c.items()))

    def deaths_and_moves_out(self) -> None:
        w, R = self.w, self.rates
        rows = self.enroll_rows()
        gone: set[int] = set()
        for p in range(self.n1):
            if w.kind[p] != LOCAL or w.person_status[p] != "正常" or p in self.fixed:
                continue
            a = w.age[p]
            pd = R.death_70 if a >= 70 else R.death_60 if a >= 60 else R.death
            pm = R.move_out_young if 18 <= a <= 45 else R.move_out
            x = self.r.random()
            if x < pd:
                w.person_status[p] = "死亡"
                self.c["died"] += 1
                gone.add(p)
                if self.chance(0.7):
                    self.terminate(rows, p, (RES, EMP), (PAY, SUSP, RECV))
            elif x < pd + pm:
                w.person_status[p] = "迁出"
                self.c["moved_out"] += 1
                gone.add(p)
                if self.chance(0.5):
                    self.terminate(rows, p, (RES,), (PAY, SUSP))
        if gone:
            w.lowincome = [t for t in w.lowincome if t[0] not in gone]
            w.platform = [t for t in w.platform if t[0] not in gone]

    def household_moves(self) -> None:
        w, R, r = self.w, self.rates, self.r
        last: dict[tuple[int, int], int] = {}
        for hh_no, _ in w.households:
            key = (int(hh_no[:3]) - 1, int(hh_no[3:5]) - 1)
            last[key] = max(last.get(key, 0), int(hh_no[5:]))
        for hi, (hh_no, members) in enumerate(w.households):
            if any(m in self.fixed for m in members) or not any(self.here(m) for m in members):
                continue
            s = w.street[members[0]]
            comms = N.STREETS[s][4]
            ci = int(hh_no[3:5]) - 1
            x = r.random()
            if x < R.household_street:
                s = self.other_street(s)
                comms = N.STREETS[s][4]
                ci = r.randrange(len(comms))
                kind = "household_moved_street"
            elif x < R.household_street + R.household_community and len(comms) > 1:
                ci = r.choice([i for i in range(len(comms)) if i != ci])
                kind = "household_moved_community"
            elif x < R.household_street + R.household_community + R.household_address:
                kind = "household_moved_address"
            else:
                continue
            comm = comms[ci]
            addr = self.address(s, comm)
            if kind != "household_moved_address":
                k = last.get((s, ci), 0) + 1
                last[(s, ci)] = k
                hh_no = f"{s + 1:03d}{ci + 1:02d}{k:05d}"
                w.households[hi] = (hh_no, members)
            for m in members:
                w.street[m] = s
                w.community[m] = comm
                w.address[m] = addr
            self.c[kind] += 1
        for p in range(self.n1):
            if (
                w.kind[p] == NONLOCAL
                and w.street[p] >= 0
                and p not in self.fixed
                and self.chance(R.nonlocal_street)
            ):
                w.street[p] = self.other_street(w.street[p])
                self.c["nonlocal_moved_street"] += 1

    def births(self) -> None:
        w, g, r = self.w, self.g, self.r
        mother_rel = {"户主": "子", "配偶": "子", "儿媳": "孙", "女": "孙", "长女": "孙", "次女": "孙"}
        for hi, (_, members) in enumerate(w.households):
            mothers = [
                m for m in members
                if w.sex[m] == "女" and w.person_status[m] == "正常" and 22 <= w.age[m] <= 40
                and w.relation[m] in mother_rel
            ]  # fmt: skip
            if not mothers or not self.chance(self.rates.birth):
                continue
            mother = mothers[0]
            gen = mother_rel[w.relation[mother] or ""]
            if gen == "子":
                fathers = [m for m in members if w.sex[m] == "男" and w.relation[m] in ("户主", "配偶")]
            else:
                fathers = [m for m in members if w.sex[m] == "男" and w.relation[m] in ("子", "长子", "次子")]
            father = fathers[0] if fathers else mother
            fname = w.name[father]
            style = STYLE.get(w.ethnicity[father] or "", "han")
            surname = fname if "\u00b7" in fname else fname[0]
            father_given = fname.split("\u00b7")[0] if "\u00b7" in fname else None
            sex = "男" if r.random() < 0.515 else "女"
            relation = ("子" if sex == "男" else "女") if gen == "子" else ("孙子" if sex == "男" else "孙女")
            birth = g.A - r.randint(1, 364)
            name = g.person_name(sex, style, surname=surname, father=father_given)
            code = anning_code(date.fromordinal(birth).year)
            head = members[0]
            p = g.add_person(
                name=name, sex=sex, birth=birth, ethnicity=w.ethnicity[father], kind=LOCAL, street=w.street[head],
                community=w.community[head], hh=hi, relation=relation, hukou_type=w.hukou_type[head],
                address=w.address[head], person_status="正常",
            )  # fmt: skip
            g._bcode.append(code)
            w.pid[p] = g.new_id(code, birth, sex == "男")
            w.age[p] = age_at(date.fromordinal(birth), w.as_of)
            members.append(p)
            self.c["births"] += 1

    def students(self) -> None:
        w, g, R = self.w, self.g, self.rates
        graduated: list[int] = []
        for i, (p, school, level, st, grad) in enumerate(w.student):
            if st in ACTIVE and grad <= g.A:
                if self.chance(R.graduate):
                    st = "毕业"
                    graduated.append(p)
                else:  # one more year
                    grad += 365
                    self.c["graduation_delayed"] += 1
            elif st == "在读" and self.chance(R.dropout):
                st = "退学"
                self.c["dropped_out"] += 1
            w.student[i] = (p, school, level, st, grad)
        self.c["graduated"] += len(graduated)
        for p in graduated:
            if w.kind[p] == LOCAL and self.here(p) and self.chance(R.graduate_employed):
                g.add_enroll(p, EMP, PAY)
                self.c["graduate_employed"] += 1
        for p in range(self.n1):
            if w.kind[p] == LOCAL and self.old_age[p] < 16 <= w.age[p]:
                self.c["turned_16"] += 1
                if self.here(p) and self.chance(R.new_student):
                    g._student_row(p, w.age[p], status="在读")
                    self.c["new_students"] += 1
        self.active_students = {t[0] for t in w.student if t[3] in ACTIVE}

    def enrolment(self) -> None:
        w, g, R = self.w, self.g, self.rates
        rows = self.enroll_rows()
        for p in range(self.n1):
            if p in self.fixed or not self.here(p) or p in self.active_students:
                continue
            st = self.status1[p]
            if self.registry1[p]:
                if not self.chance(R.enrol):
                    continue
                if st == "resident_upgradable":
                    self.terminate(rows, p, (RES,), (PAY, SUSP))
                    g.add_enroll(p, EMP, PAY)
                    self.c["enrolled_upgradable_to_employee"] += 1
                elif w.kind[p] != LOCAL:
                    g.add_enroll(p, EMP, PAY)
                    self.c["enrolled_employee"] += 1
                elif w.age[p] >= 60:
                    g.add_enroll(p, RES, RECV)
                    self.c["enrolled_receiving"] += 1
                elif self.chance(R.enrol_employee):
                    g.add_enroll(p, EMP, PAY)
                    self.c["enrolled_employee"] += 1
                else:
                    g.add_enroll(p, RES, PAY)
                    self.c["enrolled_resident"] += 1
            elif (
                st == "enrolled_resident"
                and w.kind[p] == LOCAL
                and w.age[p] < 60
                and self.chance(R.resident_switch)
            ):
                self.terminate(rows, p, (RES,), (PAY, SUSP))
                g.add_enroll(p, EMP, PAY)
                self.c["resident_switched_to_employee"] += 1
            elif (
                st in ("enrolled_employee", "enrolled_resident")
                and self.old_age[p] < 60 <= w.age[p]
                and self.chance(R.retire)
            ):
                for i in rows.get(p, ()):
                    if w.enroll[i][2] in (PAY, SUSP):
                        self.set_status(i, RECV)
                        self.c["retired"] += 1
                        break

    def _local_adults(self, lo: int, hi: int, sex: str | None = None) -> list[int]:
        w = self.w
        return [
            p for p in range(self.n1)
            if w.kind[p] == LOCAL and lo <= w.age[p] <= hi and w.person_status[p] == "正常"
            and p not in self.active_students and p not in self.fixed and (sex is None or w.sex[p] == sex)
        ]  # fmt: skip

    def entities(self) -> None:
        w, g, R, r = self.w, self.g, self.rates, self.r
        # 新增市场主体: entities of the last two years
        cutoff = g.A - 730
        before = len(w.market)
        w.market = [m for m in w.market if m[4] is None or m[4] >= cutoff or m[0] in self.fixed]
        self.c["market_dropped"] += before - len(w.market)
        ann = anniversary(w.as_of, 1).toordinal()

        def established() -> int | None:
            x = r.random()
            if x < 0.04:
                return None
            if x < 0.06:
                return ann
            return g.A - r.randint(1, 364)

        ops = g.pick(self._local_adults(22, 60), R.market_new)
        for p in ops:
            g._market_entity(p, established=established())
        for _ in range(round(len(ops) * R.market_nonlocal)):
            p = g.nonlocal_for("market", age_lo=22, age_hi=58)
            g._market_entity(p, established=established())
            self.c["new_nonlocal_market"] += 1
        self.c["new_market_entities"] += len(w.market) - (before - self.c["market_dropped"])
        # tax
        for i, t in enumerate(w.tax):
            if t[5] == "正常" and t[0] not in self.fixed and self.chance(R.tax_deregister):
                w.tax[i] = (*t[:5], "注销")
                self.c["tax_deregistered"] += 1
        n_tax = len(w.tax)
        for p in g.pick(self._local_adults(22, 68), R.tax_new):
            g._tax_entity(p)
        self.c["new_tax_entities"] += len(w.tax) - n_tax

    def platform(self) -> None:
        w, g, R, r = self.w, self.g, self.rates, self.r
        kept = []
        for t in w.platform:
            if t[0] in self.fixed:
                kept.append(t)
                continue
            x = r.random()
            if x < R.platform_leave:
                self.c["platform_left"] += 1
                continue
            if x < R.platform_leave + R.platform_inactive and t[3] != 0:
                t = (t[0], t[1], t[2], 0, t[4])
                self.c["platform_inactive"] += 1
            kept.append(t)
        w.platform = kept
        on = {t[0] for t in kept}
        new = g.pick([p for p in self._local_adults(18, 55, "男") if p not in on], R.platform_new_male)
        new += g.pick([p for p in self._local_adults(18, 50, "女") if p not in on], R.platform_new_female)
        for p in sorted(new):
            g._platform_row(p)
        self.c["new_platform_local"] += len(new)
        for _ in range(round(len(new) * R.platform_nonlocal)):
            p = g.nonlocal_for("platform", age_lo=19, age_hi=48, male_share=0.85)
            g._platform_row(p)
            self.c["new_platform_nonlocal"] += 1

    def lowincome_and_roster(self) -> None:
        w, g, R, r = self.w, self.g, self.rates, self.r
        before = len(w.lowincome)
        w.lowincome = [t for t in w.lowincome if t[0] in self.fixed or not self.chance(R.lowincome_leave)]
        self.c["lowincome_left"] += before - len(w.lowincome)
        on = {t[0] for t in w.lowincome}
        pool = [p for p in range(self.n1) if w.kind[p] == LOCAL and w.person_status[p] == "正常"
                and p not in on and p not in self.fixed]  # fmt: skip
        for p in g.pick(pool, R.lowincome_new):
            g._lowincome_row(p)
            q, cat, _ = w.lowincome[-1]
            w.lowincome[-1] = (q, cat, g.A - r.randint(1, 330))
            self.c["lowincome_new"] += 1
        before = len(w.roster)
        w.roster = [
            t for t in w.roster
            if t[1] != "服刑人员" or t[0] in self.fixed or not self.chance(R.released)
        ]  # fmt: skip
        self.c["released"] += before - len(w.roster)


def age_world(g: _Gen, tag: str | int = 2, rates: AgeRates | None = None) -> dict[str, int]:
    """Move the world of ``g`` (after ``g.run()``) one year on, in place; return counts per change."""
    return _Ager(g, tag, rates or AgeRates()).run()


def transitions(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """The expected ``kuomian compare`` categories from two truth ``persons`` frames.

    One row per person in the registry of either year: the flags ``newly_enrolled``,
    ``newly_listed``, ``left_other``, ``group_changed``, ``street_changed`` (the last two
    can both hold), ``category`` (the first flag that holds, in that order, else
    ``unchanged``), old and new status / exclusion reason / group / street, and ``change``:
    the value the new run's persons.parquet should carry (null when the person is no
    longer in the population).
    """
    cols = ["id_number", "name", "status", "exclusion_reason", "group", "street_code"]

    def side(df: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return df.filter(pl.col("in_population")).select(cols).rename({c: f"{c}_{suffix}" for c in cols[1:]})

    j = side(old, "old").join(side(new, "new"), on="id_number", how="full", coalesce=True)
    from ..core.policy import policy

    registry, enrolled_statuses = list(policy().statuses.registry), list(policy().enrolled_outside_registry)
    was = pl.col("status_old").is_in(registry).fill_null(False)
    now = pl.col("status_new").is_in(registry).fill_null(False)
    enrolled = pl.col("status_new").is_in(enrolled_statuses).fill_null(False)
    j = j.with_columns(
        name=pl.coalesce("name_new", "name_old"),
        newly_enrolled=was & enrolled,
        newly_listed=now & ~was,
        left_other=was & ~now & ~enrolled,
        group_changed=was & now & pl.col("group_old").ne_missing(pl.col("group_new")),
        street_changed=was & now & pl.col("street_code_old").ne_missing(pl.col("street_code_new")),
        _keep=was | now,
    ).filter(pl.col("_keep"))
    category = pl.lit("unchanged")
    for c in reversed(CATEGORIES):
        category = pl.when(pl.col(c)).then(pl.lit(c)).otherwise(category)
    change = (
        pl.when(pl.col("status_new").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("newly_listed"))
        .then(pl.lit("new"))
        .when(pl.col("group_changed"))
        .then(pl.lit("group_changed"))
        .when(now)
        .then(pl.lit("unchanged"))
        .when(pl.col("newly_enrolled"))
        .then(pl.lit("enrolled"))
        .otherwise(pl.lit("left"))
    )
    return (
        j.with_columns(category=category, change=change)
        .select(
            "id_number",
            "name",
            "category",
            *CATEGORIES,
            "change",
            "status_old",
            "status_new",
            "exclusion_reason_new",
            "group_old",
            "group_new",
            "street_code_old",
            "street_code_new",
        )  # fmt: skip
        .sort("id_number")
    )


__all__ = ["AgeRates", "age_world", "transitions", "next_year", "CATEGORIES"]
