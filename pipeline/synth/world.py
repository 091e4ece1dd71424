"""The clean synthetic world: people, households and the facts the departments hold.

Everything here is clean (canonical values); dirt is added only when rendering.
Persons are kept in parallel lists indexed by a person number ``p``.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from . import names as N

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

LOCAL, NONLOCAL, OUTSIDER = 0, 1, 2

RES = "城乡居民基本养老保险"
EMP = "企业职工基本养老保险"
GOV = "机关事业单位工作人员基本养老保险"
PAY, SUSP, RECV, TERM = "参保缴费", "暂停缴费", "待遇领取", "终止参保"

CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# role flags (used to bias enrollment)
R_PLATFORM, R_GETIHU, R_LOWINC, R_DISABLED, R_STAFF = 1, 2, 4, 8, 16


ANNING_CODES = ("530121", "530123", "530181")
_SEQ_SUM = [8 * (q // 100) + 4 * (q // 10 % 10) + 2 * (q % 10) for q in range(1000)]


def _wpick(rng: random.Random, items, cum: Sequence[float]):
    """Weighted choice from cumulative weights (faster than random.choices for one item)."""
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def check_digit(s17: str) -> str:
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(s17, ID_WEIGHTS, strict=True)) % 11]


def id_is_valid(v: str) -> bool:
    return len(v) == 18 and v[:17].isdigit() and check_digit(v[:17]) == v[17]


def anning_code(birth_year: int) -> str:
    if birth_year < 1982:
        return "530121"
    if birth_year <= 1995:
        return "530123"
    return "530181"


def anniversary(as_of: date, years: int) -> date:
    """The same calendar date ``years`` earlier (29 February falls back to 28 February)."""
    try:
        return as_of.replace(year=as_of.year - years)
    except ValueError:
        return as_of.replace(year=as_of.year - years, day=28)


def age_at(birth: date, as_of: date) -> int:
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


@dataclass
class World:
    as_of: date
    seed: int
    # persons
    pid: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    sex: list[str] = field(default_factory=list)
    birth: list[int] = field(default_factory=list)  # date ordinal
    age: list[int] = field(default_factory=list)
    ethnicity: list[str | None] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    street: list[int] = field(default_factory=list)  # index into names.STREETS, -1 = none
    community: list[str | None] = field(default_factory=list)
    hh: list[int] = field(default_factory=list)  # household index, -1 = none
    relation: list[str | None] = field(default_factory=list)
    hukou_type: list[str | None] = field(default_factory=list)
    address: list[str | None] = field(default_factory=list)
    person_status: list[str | None] = field(default_factory=list)
    twin_of: dict[int, int] = field(default_factory=dict)
    households: list[tuple[str, list[int]]] = field(default_factory=list)  # (household_no, members)
    # facts (clean, canonical values)
    enroll: list[tuple] = field(default_factory=list)  # (p, scheme, status, employer, insured_place)
    student: list[tuple] = field(default_factory=list)  # (p, school, level, status, graduation ordinal)
    lowincome: list[tuple] = field(default_factory=list)  # (p, category, since ordinal, alias spelling)
    platform: list[tuple] = field(default_factory=list)  # (p, occupation, platform, active|None, phone)
    tax: list[tuple] = field(default_factory=list)  # (p, entity_id, name, type, size|None, status)
    market: list[tuple] = field(default_factory=list)  # (p, entity_id, name, type, established|None, address)
    income: list[tuple] = field(default_factory=list)  # (p, annual_income, withheld_months, employer)
    roster: list[tuple] = field(default_factory=list)  # (p, category, department)
    scenarios: dict[str, int] = field(default_factory=dict)  # scenario name -> p

    @property
    def n(self) -> int:
        return len(self.pid)


class _Gen:
    def __init__(
        self,
        people: int,
        seed: int,
        as_of: date,
        reserved: tuple[set[str], set[str]] | None = None,
        district: int = 0,
    ):
        self.people = people
        self.as_of = as_of
        self.A = as_of.toordinal()
        self.w = World(as_of=as_of, seed=seed)
        self.rng = random.Random(f"kuomian-synth-{seed}")
        # ``reserved``: (ID first-17s, entity codes) already taken by other shards of a sharded
        # world; shared, not copied, so every shard's new IDs land in it too.
        self.used_ids: set[str] = reserved[0] if reserved else set()
        self.used_codes: set[str] = reserved[1] if reserved else set()
        # District k > 0 of a sharded world writes its local address codes as 53kk.. instead
        # of Anning's 5301..: each district has its own ID space, as Kunming's districts do.
        self.code_map = {c: f"53{district + 1:02d}{c[4:]}" for c in ANNING_CODES} if district else {}
        self._ymd: dict[int, str] = {}
        self._prefix_sum: dict[tuple[str, str], int] = {}
        self.reserved: set[int] = set()
        self.roles: bytearray = bytearray()
        self.student_active: set[int] = set()
        self.employer_of: dict[int, str] = {}
        self.enrolled_kind: dict[int, str] = {}  # p -> 'emp' | 'res' | 'recv' | 'none'
        self._cum_surnames = list(itertools.accumulate(N.SURNAME_WEIGHTS))
        self._street_cum = list(itertools.accumulate(s[3] for s in N.STREETS))

    # ------------------------------------------------------------------ helpers
    def ymd(self, o: int) -> str:
        s = self._ymd.get(o)
        if s is None:
            s = date.fromordinal(o).strftime("%Y%m%d")
            self._ymd[o] = s
        return s

    def pick(self, pool: list[int], rate: float) -> list[int]:
        n = len(pool)
        if n == 0 or rate <= 0:
            return []
        k = min(n, int(n * rate + self.rng.random()))
        return sorted(self.rng.sample(pool, k)) if k else []

    def surname(self) -> str:
        return _wpick(self.rng, N.SURNAME_LIST, self._cum_surnames)

    def given(self, sex: str) -> str:
        r = self.rng
        pool = N.GIVEN_MALE if sex == "男" else N.GIVEN_FEMALE
        if r.random() < 0.0008:
            return r.choice(pool) + r.choice(N.RARE_GIVEN)
        x = r.random()
        if x < 0.3:
            return r.choice(pool)
        if x < 0.34:
            c = r.choice(pool)
            return c + c
        first = r.choice(pool if r.random() < 0.8 else N.GIVEN_MALE + N.GIVEN_FEMALE)
        return first + r.choice(pool)

    def person_name(self, sex: str, style: str, surname: str | None = None, father: str | None = None) -> str:
        r = self.rng
        if style == "uyghur":
            first = r.choice(N.UY_GIVEN_M if sex == "男" else N.UY_GIVEN_F)
            return f"{first}\u00b7{father or r.choice(N.UY_FATHER)}"
        if style == "yi" and (surname is None or "\u00b7" in surname) and r.random() < 0.5:
            return f"{r.choice(N.YI_CLANS)}\u00b7{r.choice(N.YI_GIVEN_M if sex == '男' else N.YI_GIVEN_F)}"
        if surname is None or "\u00b7" in surname:
            if style == "yi":
                surname = r.choice(N.YI_SURNAMES)
            elif style == "hui":
                surname = r.choice(N.HUI_SURNAMES)
            elif style == "bai":
                surname = r.choice(N.BAI_SURNAMES)
            else:
                surname = self.surname()
        if style == "han" and r.random() < 0.035:
            cands = [k for k, v in N.COMMON_NAMES.items() if v == sex and k[0] == surname]
            if cands and r.random() < 0.7:
                return r.choice(cands)
            if r.random() < 0.3:
                return r.choice([k for k, v in N.COMMON_NAMES.items() if v == sex])
        return surname + self.given(sex)

    def new_id(self, code: str, birth: int, male: bool, near: int | None = None) -> str:
        code = self.code_map.get(code, code)
        ymd = self.ymd(birth)
        base = self._prefix_sum.get((code, ymd))
        if base is None:
            base = sum(int(c) * w for c, w in zip(code + ymd, ID_WEIGHTS, strict=False))
            self._prefix_sum[(code, ymd)] = base
        r = self.rng
        prefix = code + ymd
        for attempt in range(10000):
            if near is not None and attempt < 20:
                seq = near + r.choice((-6, -4, -2, 2, 4, 6))
                seq += 0 if (seq % 2 == 1) == male else 1
                if not 1 <= seq <= 999:
                    continue
            else:
                seq = 2 * r.randrange(500) + 1 if male else 2 * r.randrange(1, 500)
            s17 = f"{prefix}{seq:03d}"
            if s17 not in self.used_ids:
                self.used_ids.add(s17)
                return s17 + CHECK_CHARS[(base + _SEQ_SUM[seq]) % 11]
        raise RuntimeError("ID space exhausted")

    def add_person(self, **kw) -> int:
        w = self.w
        p = len(w.pid)
        w.pid.append(kw.get("pid", ""))
        w.name.append(kw["name"])
        w.sex.append(kw["sex"])
        w.birth.append(kw["birth"])
        w.age.append(0)
        w.ethnicity.append(kw.get("ethnicity"))
        w.kind.append(kw["kind"])
        w.street.append(kw.get("street", -1))
        w.community.append(kw.get("community"))
        w.hh.append(kw.get("hh", -1))
        w.relation.append(kw.get("relation"))
        w.hukou_type.append(kw.get("hukou_type"))
        w.address.append(kw.get("address"))
        w.person_status.append(kw.get("person_status"))
        self.roles.append(0)
        return p

    def birth_for_age(self, age: float) -> int:
        return self.A - int(age * 365.2425) - 1

    def street_index(self) -> int:
        return _wpick(self.rng, range(len(N.STREETS)), self._street_cum)

    def credit_code(self, prefix: str) -> str:
        r = self.rng
        while True:
            c = prefix + "".join(r.choice(CREDIT_CHARS) for _ in range(8))
            if c not in self.used_codes:
                self.used_codes.add(c)
                return c

    def company(self) -> str:
        r = self.rng
        return f"{r.choice(('安宁', '安宁市', '云南', '昆明'))}{r.choice(N.BRANDS)}{r.choice(N.INDUSTRIES)}有限公司"

    # ------------------------------------------------------------------ households
    def build_households(self) -> None:
        r = self.rng
        w = self.w
        head_bands = [(20, 2), (25, 5), (30, 9), (35, 11), (40, 11), (45, 12), (50, 14), (55, 12), (60, 8),
                      (65, 6), (70, 4), (75, 3), (80, 1.5), (85, 0.5)]  # fmt: skip
        band_cum = list(itertools.accumulate(b[1] for b in head_bands))
        size_cum = list(itertools.accumulate((15, 25, 28, 18, 9, 5)))
        eth_cum = list(itertools.accumulate(e[1] for e in N.ETHNICITIES))
        hukou = {
            "urban": (("农业", "非农业", "居民"), (0.12, 0.50, 1.0)),
            "mixed": (("农业", "非农业", "居民"), (0.45, 0.60, 1.0)),
            "rural": (("农业", "非农业", "居民"), (0.75, 0.82, 1.0)),
        }
        seq_in_comm: dict[tuple[int, int], int] = {}
        n = 0
        while n < self.people:
            s = self.street_index()
            code, sname, skind, _, comms = N.STREETS[s]
            ci = r.randrange(len(comms))
            comm = comms[ci]
            k = seq_in_comm.get((s, ci), 0) + 1
            seq_in_comm[(s, ci)] = k
            hh_no = f"{s + 1:03d}{ci + 1:02d}{k:05d}"
            if comm.endswith("村"):
                addr = f"云南省安宁市{sname}{comm}{r.randint(1, 12)}组{r.randint(1, 150)}号"
            else:
                addr = f"云南省安宁市{sname}{comm}{r.choice(N.ROADS)}{r.randint(1, 300)}号"
                if r.random() < 0.5:
                    addr += f"{r.randint(1, 30)}栋{r.randint(1, 6)}单元{r.randint(1, 30)}0{r.randint(1, 4)}室"
            names_, cum = hukou[skind]
            ht = _wpick(r, names_, cum)
            eth_i = _wpick(r, range(len(N.ETHNICITIES)), eth_cum)
            eth, _, style = N.ETHNICITIES[eth_i]
            size = _wpick(r, (1, 2, 3, 4, 5, 6), size_cum)
            size = min(size, self.people - n)
            b = _wpick(r, head_bands, band_cum)[0]
            head_age = b + r.random() * 5
            members = self._template(size, head_age)
            in_mover = r.random() < 0.2
            hh_index = len(w.households)
            idx: list[int] = []
            head_sur = None
            male_sur = None
            father_given = None
            prev_child: int | None = None
            for rel, sex, age, twin in members:
                m_style = style
                m_eth = eth
                if rel == "配偶" and r.random() < 0.15:
                    e2 = _wpick(r, range(len(N.ETHNICITIES)), eth_cum)
                    m_eth, _, m_style = N.ETHNICITIES[e2]
                if rel in ("子", "女", "长子", "长女", "次子", "次女", "孙子", "孙女") and male_sur:
                    nm = self.person_name(sex, m_style, surname=male_sur, father=father_given)
                else:
                    nm = self.person_name(sex, m_style, father=father_given if rel in ("子", "女") else None)
                if rel == "户主":
                    head_sur = nm[0] if "\u00b7" not in nm else nm
                    if sex == "男":
                        male_sur = head_sur
                        father_given = nm.split("\u00b7")[0] if "\u00b7" in nm else None
                elif rel == "配偶" and sex == "男":
                    male_sur = nm[0] if "\u00b7" not in nm else nm
                    father_given = nm.split("\u00b7")[0] if "\u00b7" in nm else None
                birth = w.birth[prev_child] if twin and prev_child is not None else self.birth_for_age(age)
                p = self.add_person(
                    name=nm, sex=sex, birth=birth, ethnicity=m_eth, kind=LOCAL, street=s, community=comm,
                    hh=hh_index, relation=rel, hukou_type=ht, address=addr, person_status="正常",
                )  # fmt: skip
                # birthplace code, decided now, ID assigned later
                born_year = date.fromordinal(birth).year
                if m_style == "uyghur":
                    bcode = r.choice(N.UY_CODES)
                elif "\u00b7" in nm and m_style == "yi" and r.random() < 0.6:
                    bcode = r.choice(N.YI_CODES)
                elif in_mover and (age >= 18 or r.random() < 0.3):
                    bcode = r.choice(N.OTHER_CODES)
                else:
                    bcode = anning_code(born_year)
                self._bcode.append(bcode)
                if twin and prev_child is not None:
                    w.twin_of[p] = prev_child
                    self._bcode[p] = self._bcode[prev_child]
                if rel in ("子", "女", "长子", "长女", "次子", "次女"):
                    prev_child = p
                idx.append(p)
            w.households.append((hh_no, idx))
            n += len(idx)

    def _template(self, size: int, head_age: float) -> list[tuple[str, str, float, bool]]:
        """Members as (relation, sex, age, twin-of-previous-child)."""
        r = self.rng

        def sx() -> str:
            return "男" if r.random() < 0.515 else "女"

        def child_age(parent: float) -> float:
            a = parent - r.uniform(22, 36)
            if a < 0:
                a = r.uniform(0, max(0.5, parent - 18))
            return a

        head_sex = "男" if r.random() < 0.72 else "女"
        spouse = ("配偶", "女" if head_sex == "男" else "男", max(18.5, head_age + r.uniform(-4, 4)), False)
        head = ("户主", head_sex, head_age, False)

        def kid(label_m: str = "子", label_f: str = "女") -> tuple[str, str, float, bool]:
            s = sx()
            if head_age >= 50 and r.random() < 0.35:  # a grandchild left with the grandparents
                return ("孙子" if s == "男" else "孙女", s, r.uniform(0, min(18.0, head_age - 44)), False)
            return (label_m if s == "男" else label_f, s, child_age(head_age), False)

        def parent() -> tuple[str, str, float, bool]:
            if head_age > 60:
                return kid()
            s = sx()
            return ("父亲" if s == "男" else "母亲", s, min(97.0, head_age + r.uniform(22, 32)), False)

        def twins() -> list[tuple[str, str, float, bool]]:
            a = kid()
            s = sx()
            b = ("子" if s == "男" else "女", s, a[2], r.random() < 0.05)
            return [a, b]

        if size == 1:
            return [head]
        if size == 2:
            x = r.random()
            if x < 0.7:
                return [head, spouse]
            if x < 0.9:
                return [head, kid()]
            return [head, parent()]
        if size == 3:
            return [head, spouse, kid()] if r.random() < 0.8 else [head, spouse, parent()]
        if size == 4:
            return [head, spouse, *twins()] if r.random() < 0.55 else [head, spouse, kid(), parent()]
        if size == 5:
            if head_age >= 48 and r.random() < 0.4:
                son_age = head_age - r.uniform(22, 30)
                gs = sx()
                gage = max(0.0, son_age - r.uniform(22, 32)) if son_age > 22 else r.uniform(0, 3)
                return [head, spouse, ("子", "男", son_age, False), ("儿媳", "女", son_age + r.uniform(-3, 2), False),
                        ("孙子" if gs == "男" else "孙女", gs, gage, False)]  # fmt: skip
            return [head, spouse, *twins(), parent()]
        if head_age > 58:
            return [head, spouse, kid(), kid(), kid(), kid()]
        f = ("父亲", "男", min(97.0, head_age + r.uniform(24, 32)), False)
        m = ("母亲", "女", min(97.0, f[2] + r.uniform(-4, 2)), False)
        return [head, spouse, f, m, *twins()]

    def force_birthdays(self) -> None:
        """Some people turn 16 exactly on the as-of date, some just before or just after."""
        w = self.w
        r = self.rng
        sixteen = anniversary(self.as_of, 16).toordinal()
        twins = set(w.twin_of) | set(w.twin_of.values())
        cands = [p for p in range(w.n) if 13 * 365 < self.A - w.birth[p] < 19 * 365 and p not in twins]
        k = max(2, self.people // 4000)
        chosen = r.sample(cands, min(len(cands), 3 * k))
        for i, p in enumerate(chosen):
            w.birth[p] = sixteen + (0, 1, -1)[i % 3]  # exactly 16 / turns 16 tomorrow / 16 yesterday
            if self._bcode[p] in ANNING_CODES:
                self._bcode[p] = anning_code(date.fromordinal(w.birth[p]).year)

    def assign_ids(self) -> None:
        w = self.w
        for p in range(w.n):
            t = w.twin_of.get(p)
            male = w.sex[p] == "男"
            if t is not None:
                near = int(w.pid[t][14:17])
                w.pid[p] = self.new_id(w.pid[t][:6], w.birth[p], male, near=near)
            else:
                w.pid[p] = self.new_id(self._bcode[p], w.birth[p], male)

    def compute_ages(self) -> None:
        w = self.w
        cache: dict[int, int] = {}
        for p in range(w.n):
            b = w.birth[p]
            a = cache.get(b)
            if a is None:
                a = age_at(date.fromordinal(b), self.as_of)
                cache[b] = a
            w.age[p] = a

    def person_statuses(self) -> None:
        w = self.w
        r = self.rng
        for p in range(w.n):
            a = w.age[p]
            x = r.random()
            pd = 0.03 if a >= 70 else 0.008 if a >= 60 else 0.0015
            if x < pd:
                w.person_status[p] = "死亡"
            elif x < pd + (0.012 if 18 <= a <= 45 else 0.004):
                w.person_status[p] = "迁出"

    # ------------------------------------------------------------------ non-local people
    def new_outside_person(self, kind: int, age_lo: int = 20, age_hi: int = 55, male_share: float = 0.55,
                           street: bool = True) -> int:  # fmt: skip
        r = self.rng
        sex = "男" if r.random() < male_share else "女"
        age = r.uniform(age_lo, age_hi + 0.99)
        birth = self.birth_for_age(age)
        x = r.random()
        if x < 0.03:
            style, eth = "uyghur", "维吾尔族"
            code = r.choice(N.UY_CODES)
        elif x < 0.08:
            style, eth = "yi", "彝族"
            code = r.choice(N.YI_CODES)
        else:
            style, eth = "han", "汉族"
            code = r.choice(N.OTHER_CODES) if r.random() < 0.85 else anning_code(date.fromordinal(birth).year)
        nm = self.person_name(sex, style)
        st = self.street_index() if (street and r.random() < 0.75) else -1
        p = self.add_person(name=nm, sex=sex, birth=birth, ethnicity=eth, kind=kind, street=st)
        self.w.pid[p] = self.new_id(code, birth, sex == "男")
        self.w.age[p] = age_at(date.fromordinal(birth), self.as_of)
        return p

    def nonlocal_for(self, source: str, reuse: float = 0.15, **kw) -> int:
        """A non-local person for a source: sometimes one already seen in another source."""
        r = self.rng
        seen = self._nonlocal_sources
        if seen and r.random() < reuse:
            cands = [p for p in self._nonlocals[-200:] if source not in seen[p]]
            if cands:
                p = r.choice(cands)
                seen[p].add(source)
                return p
        p = self.new_outside_person(NONLOCAL, **kw)
        self._nonlocals.append(p)
        seen[p] = {source}
        return p

    # ------------------------------------------------------------------ facts
    def locals_pool(self) -> list[int]:
        w = self.w
        return [p for p in range(w.n) if w.kind[p] == LOCAL and p not in self.reserved]

    def gen_students(self, pool: list[int]) -> None:
        w = self.w
        r = self.rng
        for p in pool:
            a = w.age[p]
            if not 16 <= a <= 24 or w.person_status[p] != "正常":
                continue
            pr = 0.45 if a <= 18 else 0.5 if a <= 22 else 0.2
            if r.random() >= pr:
                continue
            self._student_row(p, a)

    def _student_row(self, p: int, a: int, status: str | None = None) -> None:
        r = self.rng
        if a <= 18:
            school, level = r.choice(N.SCHOOLS_VOC) if r.random() < 0.6 else r.choice(N.SCHOOLS_UNI)
        else:
            school, level = r.choice(N.SCHOOLS_UNI)
        if status is None:
            x = r.random()
            if a <= 22:
                status = "在读" if x < 0.86 else "休学" if x < 0.9 else "退学" if x < 0.95 else "毕业"
            else:
                status = "在读" if x < 0.45 else "毕业" if x < 0.93 else "退学" if x < 0.97 else "休学"
        yr = self.as_of.year + (r.randint(0, 3) if status in ("在读", "休学") else -r.randint(0, 1))
        grad = date(yr, 6 if r.random() < 0.8 else 7, r.choice((20, 30, 30, 1))).toordinal()
        self.w.student.append((p, school, level, status, grad))
        if status in ("在读", "休学"):
            self.student_active.add(p)

    def gen_roles(self, pool: list[int]) -> None:
        w = self.w
        r = self.rng
        alive = [p for p in pool if w.person_status[p] == "正常" and w.age[p] >= 16]
        adult = [p for p in alive if p not in self.student_active]

        # platform workers
        plat = self.pick([p for p in adult if 18 <= w.age[p] <= 55 and w.sex[p] == "男"], 0.036)
        plat += self.pick([p for p in adult if 18 <= w.age[p] <= 50 and w.sex[p] == "女"], 0.01)
        for p in sorted(plat):
            self._platform_row(p)
        # tax entities (operators)
        ops = self.pick([p for p in adult if 22 <= w.age[p] <= 68], 0.04)
        for p in ops:
            for _ in range(2 if r.random() < 0.08 else 1):
                self._tax_entity(p)
        # market (newly registered)
        mops = self.pick([p for p in adult if 22 <= w.age[p] <= 60], 0.012)
        for p in mops:
            self._market_entity(p)
        # low income (any age, more often rural and old)
        li = self.pick([p for p in pool if w.person_status[p] != "迁出" and w.hukou_type[p] == "农业"], 0.05)
        li += self.pick(
            [p for p in pool if w.person_status[p] != "迁出" and w.hukou_type[p] != "农业"], 0.018
        )
        for p in sorted(li):
            self._lowincome_row(p)
        # rosters
        rural = [p for p in adult if w.hukou_type[p] == "农业"]
        spec = [
            ("被征地农民", [p for p in rural if 30 <= w.age[p] <= 75], 0.03),
            (
                "乡村医生",
                [p for p in adult if 30 <= w.age[p] <= 65 and (w.community[p] or "").endswith("村")],
                0.002,
            ),
            ("村(社区)干部", [p for p in adult if 28 <= w.age[p] <= 62], 0.004),
            ("律师", [p for p in adult if 26 <= w.age[p] <= 60 and w.hukou_type[p] != "农业"], 0.0012),
            ("导游", [p for p in adult if 22 <= w.age[p] <= 50], 0.001),
            ("基层服务项目高校毕业生", [p for p in adult if 22 <= w.age[p] <= 30], 0.003),
            ("民办学校教职工", [p for p in adult if 22 <= w.age[p] <= 58], 0.003),
            ("编外人员", [p for p in adult if 22 <= w.age[p] <= 58], 0.005),
            ("重度残疾人", alive, 0.005),
            ("服刑人员", [p for p in adult if 18 <= w.age[p] <= 55 and w.sex[p] == "男"], 0.0025),
        ]
        for cat, cands, rate in spec:
            for p in self.pick(cands, rate):
                self._roster_row(p, cat)

    def _platform_row(
        self, p: int, active: int | None | str = "random", occupation: str | None = None
    ) -> None:
        r = self.rng
        occ = occupation or r.choices(list(N.PLATFORMS), weights=(40, 30, 20, 10))[0]
        if active == "random":
            x = r.random()
            active = None if x < 0.08 else 0 if x < 0.18 else r.randint(1, 12)
        phone = f"1{r.choice('3456789')}{r.randrange(10**9):09d}"
        self.w.platform.append((p, occ, r.choice(N.PLATFORMS[occ]), active, phone))
        self.roles[p] |= R_PLATFORM

    def _entity(self, p: int, etype: str | None = None) -> tuple[str, str, str]:
        r = self.rng
        w = self.w
        if etype is None:
            etype = r.choices(["个体工商户", "有限责任公司", "个人独资企业", "合伙企业", "股份有限公司", "农民专业合作社"],
                              weights=(68, 20, 6, 2, 1, 3))[0]  # fmt: skip
        st = w.street[p] if w.street[p] >= 0 else self.street_index()
        short = N.STREETS[st][1].replace("街道", "")
        if etype == "个体工商户":
            nm = f"安宁市{short}{w.name[p][0]}记{r.choice(N.SHOPS)}"
            code = self.credit_code("92530181MA")
        elif etype == "农民专业合作社":
            nm = f"安宁市{short}{r.choice(N.BRANDS)}{r.choice(('种植', '养殖', '果蔬', '花卉'))}专业合作社"
            code = self.credit_code("93530181MA")
        else:
            base = f"{r.choice(('安宁', '安宁市', '云南'))}{r.choice(N.BRANDS)}{r.choice(N.INDUSTRIES)}"
            nm = {
                "有限责任公司": base + "有限公司",
                "个人独资企业": base + r.choice(("经营部", "商行", "中心")),
                "合伙企业": base + "合伙企业(有限合伙)",
                "股份有限公司": base + "股份有限公司",
            }[etype]
            code = self.credit_code("91530181MA")
        return code, nm, etype

    def _tax_entity(self, p: int, etype: str | None = None, size: str | None = "random",
                    status: str | None = None, code_name: tuple[str, str] | None = None) -> None:  # fmt: skip
        r = self.rng
        if code_name is None:
            code, nm, etype = self._entity(p, etype)
        else:
            code, nm = code_name
        if size == "random":
            size = (
                None
                if etype == "个体工商户"
                else r.choices(("微型", "小型", "中型", "大型"), weights=(50, 33, 13, 4))[0]
            )
        if status is None:
            status = r.choices(("正常", "非正常", "注销"), weights=(86, 8, 6))[0]
        self.w.tax.append((p, code, nm, etype, size, status))
        if etype == "个体工商户":
            self.roles[p] |= R_GETIHU

    def _market_entity(self, p: int, established: int | None | str = "random", etype: str | None = None,
                       also_tax: bool | None = None) -> None:  # fmt: skip
        r = self.rng
        w = self.w
        code, nm, etype = self._entity(
            p,
            etype
            or r.choices(
                ["个体工商户", "有限责任公司", "个人独资企业", "农民专业合作社"], weights=(75, 18, 5, 2)
            )[0],
        )
        if established == "random":
            x = r.random()
            ann = anniversary(self.as_of, 1).toordinal()
            if x < 0.04:
                established = None
            elif x < 0.05:
                established = ann
            elif x < 0.06:
                established = ann - 1
            else:
                established = self.A - r.randint(1, 730)
        st = w.street[p] if w.street[p] >= 0 else self.street_index()
        addr = f"云南省安宁市{N.STREETS[st][1]}{r.choice(N.ROADS)}{r.randint(1, 300)}号"
        w.market.append((p, code, nm, etype, established, addr))
        if also_tax is None:
            also_tax = r.random() < 0.35
        if also_tax:
            self._tax_entity(p, etype, status="正常" if r.random() < 0.9 else "非正常", code_name=(code, nm))

    def _lowincome_row(self, p: int, category: str | None = None) -> None:
        r = self.rng
        w = self.w
        if category is None:
            old = w.age[p] >= 60
            category = r.choices(("低保", "特困", "致贫返贫", "重度残疾"),
                                 weights=(55, 14 if old else 4, 20, 17))[0]  # fmt: skip
        since = self.A - r.randint(30, 3650)
        w.lowincome.append((p, category, since))
        self.roles[p] |= R_LOWINC

    def _roster_row(self, p: int, category: str) -> None:
        self.w.roster.append((p, category, self.rng.choice(N.ROSTER_DEPARTMENTS[category])))
        if category == "重度残疾人":
            self.roles[p] |= R_DISABLED
        elif category in ("编外人员", "民办学校教职工", "村(社区)干部", "乡村医生"):
            self.roles[p] |= R_STAFF

    # ------------------------------------------------------------------ enrollment
    def emp_employer(self, scheme: str) -> str:
        r = self.rng
        if scheme == GOV:
            return r.choice(N.GOV_EMPLOYERS)
        return r.choice(N.BIG_EMPLOYERS) if r.random() < 0.5 else self.company()

    def add_enroll(self, p: int, scheme: str, status: str) -> None:
        r = self.rng
        employer = None
        if scheme != RES:
            employer = self.employer_of.get(p) or self.emp_employer(scheme)
            if status != TERM:
                self.employer_of[p] = employer
        place = r.choices(("安宁市", "云南省安宁市", None), weights=(80, 15, 5))[0]
        self.w.enroll.append((p, scheme, status, employer, place))

    def gen_enrollment(self, pool: list[int]) -> None:
        w = self.w
        r = self.rng
        for p in pool:
            a = w.age[p]
            if a < 16:
                continue
            st = w.person_status[p]
            x = r.random()
            if st == "死亡":
                if a >= 60 and x < 0.6:
                    self.add_enroll(p, RES if r.random() < 0.7 else EMP, RECV)
                elif x < 0.8:
                    self.add_enroll(p, RES, TERM)
                continue
            if st == "迁出":
                if x < 0.5:
                    self.add_enroll(p, RES, TERM)
                continue
            if p in self.student_active:
                if x < 0.12:
                    self.add_enroll(p, RES, PAY)
                continue
            roles = self.roles[p]
            ht = w.hukou_type[p]
            female = w.sex[p] == "女"
            if a >= 60:
                if x < 0.93:
                    y = r.random()
                    scheme = GOV if y < 0.04 else EMP if y < 0.28 else RES
                    self.add_enroll(p, scheme, RECV)
                    self.enrolled_kind[p] = "recv"
                elif x < 0.96:
                    self.add_enroll(p, RES, PAY if r.random() < 0.7 else SUSP)
                    self.enrolled_kind[p] = "res"
                else:
                    if r.random() < 0.3:
                        self.add_enroll(p, RES, TERM)
                    self.enrolled_kind[p] = "none"
                continue
            u = 0.40 if a < 20 else 0.15 if a < 25 else 0.065
            e = {"农业": 0.15, "非农业": 0.46, "居民": 0.37}.get(ht or "", 0.3)
            if a < 22:
                e *= 0.3
            if roles & R_PLATFORM:
                u, e = 0.35, 0.12
            if roles & R_GETIHU:
                u, e = min(u * 3, 0.2), 0.18
            if roles & (R_LOWINC | R_DISABLED):
                u, e = 0.06, 0.03
            if roles & R_STAFF:
                e = max(e, 0.25)
            if x < u:
                if r.random() < 0.25:
                    self.add_enroll(p, RES if r.random() < 0.7 else EMP, TERM)
                self.enrolled_kind[p] = "none"
                continue
            if r.random() < e:
                scheme = GOV if (r.random() < 0.15 and not roles & (R_PLATFORM | R_GETIHU)) else EMP
                if r.random() < 0.12:
                    self.add_enroll(p, RES, TERM)
                if female and a >= 50 and r.random() < 0.45:
                    self.add_enroll(p, scheme, RECV)
                    self.enrolled_kind[p] = "recv"
                else:
                    self.add_enroll(p, scheme, PAY if r.random() < 0.88 else SUSP)
                    self.enrolled_kind[p] = "emp"
            else:
                if r.random() < 0.04:
                    self.add_enroll(p, EMP, TERM)
                self.add_enroll(p, RES, PAY if r.random() < 0.87 else SUSP)
                self.enrolled_kind[p] = "res"

    # ------------------------------------------------------------------ income
    def add_income(self, p: int, amount: float, months: int, employer: str) -> None:
        self.w.income.append((p, round(amount, 2), months, employer))

    def gen_income(self, pool: list[int]) -> None:
        w = self.w
        r = self.rng
        for p in pool:
            a = w.age[p]
            if a < 18 or w.person_status[p] != "正常" or p in self.student_active:
                continue
            k = self.enrolled_kind.get(p)
            x = r.random()
            if k == "emp" and a < 60:
                if x < 0.72:
                    self.add_income(p, r.lognormvariate(10.72, 0.45), r.choice((10, 11, 12, 12, 12, 12, 9, 6)),
                                    self.employer_of.get(p) or self.company())  # fmt: skip
            elif k == "res" and a < 60:
                if x < 0.10:
                    emp = r.choice(N.LAX_EMPLOYERS) if r.random() < 0.6 else self.company()
                    self.add_income(p, r.lognormvariate(10.4, 0.5), r.randint(0, 12), emp)
            elif k == "none" and a < 60:
                if x < 0.22:
                    emp = r.choice(N.LAX_EMPLOYERS) if r.random() < 0.55 else self.company()
                    self.add_income(p, r.lognormvariate(10.45, 0.55), r.randint(0, 12), emp)
            elif k == "recv" and x < 0.04:
                self.add_income(p, r.lognormvariate(10.6, 0.6), r.randint(0, 12), self.company())
        # a few exact boundary amounts
        inc = w.income
        for i in self.pick(list(range(len(inc))), 0.004):
            p, _, m, e = inc[i]
            inc[i] = (p, 60000.0 if r.random() < 0.6 else 59999.99, m, e)

    # ------------------------------------------------------------------ non-locals and outsiders
    def gen_nonlocals(self) -> None:
        w = self.w
        r = self.rng
        n_plat = len(w.platform)
        for _ in range(round(n_plat * 0.43)):
            p = self.nonlocal_for("platform", age_lo=19, age_hi=48, male_share=0.85)
            self._platform_row(p)
        for _ in range(round(len(w.tax) * 0.1)):
            p = self.nonlocal_for("tax", age_lo=25, age_hi=60)
            self._tax_entity(p)
        for _ in range(round(len(w.market) * 0.12)):
            p = self.nonlocal_for("market", age_lo=22, age_hi=58)
            self._market_entity(p)
        for _ in range(round(len(w.income) * 0.12)):
            p = self.nonlocal_for("income", reuse=0.2)
            emp = r.choice(N.LAX_EMPLOYERS) if r.random() < 0.3 else self.emp_employer(EMP)
            self.add_income(p, r.lognormvariate(10.7, 0.5), r.choice((3, 6, 8, 10, 12, 12, 12)), emp)
            if r.random() < 0.55:
                self.employer_of[p] = emp
                self.add_enroll(p, EMP, PAY if r.random() < 0.9 else SUSP)
        for _ in range(max(1, round(len(w.lowincome) * 0.02))):
            p = self.nonlocal_for("lowincome", reuse=0.05, age_lo=30, age_hi=70)
            self._lowincome_row(p)
        cats = {
            "律师": 0.25,
            "导游": 0.3,
            "民办学校教职工": 0.2,
            "编外人员": 0.15,
            "基层服务项目高校毕业生": 0.3,
        }
        counts = {c: sum(1 for x in w.roster if x[1] == c) for c in cats}
        for c, share in cats.items():
            for _ in range(max(1, round(counts[c] * share))):
                p = self.nonlocal_for("roster", age_lo=23, age_hi=50)
                self._roster_row(p, c)
        # some non-locals (without income) are in the employee scheme in Anning
        for p in self._nonlocals:
            if p not in self.employer_of and r.random() < 0.12:
                self.add_enroll(p, EMP, PAY)

    def gen_outsiders(self) -> None:
        r = self.rng
        w = self.w
        n_enr = max(3, round(len(w.enroll) * 0.012))
        both = []
        for i in range(n_enr):
            young = i < 3  # these three are also (graduated) students
            p = self.new_outside_person(
                OUTSIDER, age_lo=21 if young else 20, age_hi=25 if young else 55, street=False
            )
            scheme = EMP if r.random() < 0.8 else RES
            st = r.choices((PAY, SUSP, TERM), weights=(70, 10, 20))[0]
            self.add_enroll(p, scheme, st)
            if i < 3:
                both.append(p)
        n_stu = max(3, round(len(w.student) * 0.18))
        for _ in range(n_stu):
            p = self.new_outside_person(OUTSIDER, age_lo=17, age_hi=24, street=False)
            self._student_row(p, w.age[p])
        for p in both:  # enrolled and a student: still not in the population
            self._student_row(p, w.age[p], status="毕业")

    # ------------------------------------------------------------------ scenarios
    def reserve(self) -> None:
        """Pick adults for the scripted scenarios before random facts are drawn."""
        w = self.w
        r = self.rng
        base = [p for p in range(w.n) if w.kind[p] == LOCAL and 25 <= w.age[p] <= 55
                and w.person_status[p] == "正常" and p not in w.twin_of]  # fmt: skip
        agri = [p for p in base if w.hukou_type[p] == "农业"]
        nonagri = [p for p in base if w.hukou_type[p] != "农业"]
        elderly = [
            p
            for p in range(w.n)
            if w.kind[p] == LOCAL and 62 <= w.age[p] <= 80 and w.person_status[p] == "正常"
        ]
        r.shuffle(agri)
        r.shuffle(nonagri)
        r.shuffle(elderly)
        self._res_pools = {"agri": agri, "nonagri": nonagri, "elderly": elderly}
        self._scen_plan = []
        for name, pool in SCENARIOS:
            cands = self._res_pools[pool]
            while cands and cands[-1] in self.reserved:
                cands.pop()
            if not cands:
                continue
            p = cands.pop()
            self.reserved.add(p)
            self._scen_plan.append((name, p))

    def apply_scenarios(self) -> None:
        ann = anniversary(self.as_of, 1).toordinal()
        w = self.w
        for name, p in self._scen_plan:
            w.scenarios[name] = p
            S = self
            match name:
                case "g7_lowincome":
                    S._lowincome_row(p, "低保")
                case "g2_landless":
                    S._roster_row(p, "被征地农民")
                case "g2_doctor_cadre":
                    S._roster_row(p, "乡村医生")
                    S._roster_row(p, "村(社区)干部")
                case "g4_platform":
                    S._platform_row(p, active=7)
                case "g4_blank_active":
                    S._platform_row(p, active=None)
                case "platform_inactive":
                    S._platform_row(p, active=0)
                case "g1_getihu":
                    S._tax_entity(p, "个体工商户", size=None, status="正常")
                case "g1_small_company":
                    S._tax_entity(p, "有限责任公司", size="小型", status="正常")
                case "not_g1_medium":
                    S._tax_entity(p, "有限责任公司", size="中型", status="正常")
                case "not_g1_abnormal":
                    S._tax_entity(p, "个体工商户", size=None, status="非正常")
                case "g1_market_anniversary":
                    S._market_entity(p, established=ann, also_tax=False)
                case "not_g1_market_day_before":
                    S._market_entity(p, established=ann - 1, also_tax=False)
                case "g1_market_blank":
                    S._market_entity(p, established=None, also_tax=False)
                case "g5_lawyer":
                    S._roster_row(p, "律师")
                case "g5_guide":
                    S._roster_row(p, "导游")
                case "g3_rural_worker":
                    S.add_income(p, 30000.0, 8, N.LAX_EMPLOYERS[0])
                case "g3_boundary":
                    S.add_income(p, 20000.0, 6, N.LAX_EMPLOYERS[1])
                case "not_g3_five_months":
                    S.add_income(p, 20000.0, 5, N.LAX_EMPLOYERS[1])
                case "g6_rich":
                    S.add_income(p, 120000.0, 12, "云南螳川投资有限公司")
                case "g6_boundary":
                    S.add_income(p, 60000.0, 3, N.LAX_EMPLOYERS[2])
                case "g8_plain":
                    pass
                case "g8_roster":
                    S._roster_row(p, "编外人员")
                case "conflict_lowincome_platform":
                    S._lowincome_row(p, "致贫返贫")
                    S._platform_row(p, active=5)
                case "upgradable_getihu":
                    S.add_enroll(p, RES, PAY)
                    S._tax_entity(p, "个体工商户", size=None, status="正常")
                case "upgradable_platform":
                    S.add_enroll(p, RES, SUSP)
                    S._platform_row(p, active=9)
                case "resident_lowincome_not_upgradable":
                    S.add_enroll(p, RES, PAY)
                    S._lowincome_row(p, "低保")
                case "upgradable_multi":
                    S.add_enroll(p, RES, PAY)
                    S._roster_row(p, "律师")
                    S.add_income(p, 90000.0, 12, N.LAX_EMPLOYERS[3])
                case "employee_with_terminated_resident":
                    S.add_enroll(p, RES, TERM)
                    S.add_enroll(p, EMP, PAY)
                case "terminated_only":
                    S.add_enroll(p, RES, TERM)
                case "incarcerated":
                    S.add_enroll(p, RES, PAY)
                    S._roster_row(p, "服刑人员")
                case "receiving_with_platform":
                    S.add_enroll(p, EMP, RECV)
                    S._platform_row(p, active=3)
                case "employee_suspended_gov":
                    S.add_enroll(p, GOV, SUSP)
                case "g7_disabled_roster":
                    S._roster_row(p, "重度残疾人")
                case "all_groups":
                    S._lowincome_row(p, "特困")
                    S._roster_row(p, "被征地农民")
                    S._platform_row(p, active=12)
                    S._tax_entity(p, "个体工商户", size=None, status="正常")
                    S._roster_row(p, "律师")
                    S.add_income(p, 70000.0, 10, N.LAX_EMPLOYERS[4])
                    S._roster_row(p, "编外人员")
                case "elderly_receiving":
                    S.add_enroll(p, RES, RECV)
                case "elderly_unenrolled_lowincome":
                    S._lowincome_row(p, "特困")
        # non-local scenarios
        p = self.new_outside_person(NONLOCAL)
        if w.street[p] < 0:
            w.street[p] = 0
        w.scenarios["nonlocal_two_sources"] = p
        self._platform_row(p, active=10)
        self.add_income(p, 80000.0, 12, N.LAX_EMPLOYERS[5])
        p = self.new_outside_person(NONLOCAL, street=False)
        w.scenarios["nonlocal_no_street"] = p
        self._market_entity(p, established=None, also_tax=False)
        p = self.new_outside_person(NONLOCAL)
        w.scenarios["nonlocal_employee"] = p
        self.add_income(p, 50000.0, 12, N.BIG_EMPLOYERS[0])
        self.employer_of[p] = N.BIG_EMPLOYERS[0]
        self.add_enroll(p, EMP, PAY)

    # ------------------------------------------------------------------ all
    def run(self) -> World:
        self._bcode: list[str] = []
        self._nonlocals: list[int] = []
        self._nonlocal_sources: dict[int, set[str]] = {}
        self.build_households()
        self.force_birthdays()
        self.assign_ids()
        self.compute_ages()
        self.person_statuses()
        self.reserve()
        pool = self.locals_pool()
        self.gen_students(pool)
        self.gen_roles(pool)
        self.gen_enrollment(pool)
        self.gen_income(pool)
        self.apply_scenarios()
        self.gen_nonlocals()
        self.gen_outsiders()
        return self.w


# (scenario name, pool): scripted people that make every status, exclusion and group occur
SCENARIOS: list[tuple[str, str]] = [
    ("g7_lowincome", "nonagri"),
    ("g2_landless", "agri"),
    ("g2_doctor_cadre", "agri"),
    ("g4_platform", "nonagri"),
    ("g4_blank_active", "nonagri"),
    ("platform_inactive", "nonagri"),
    ("g1_getihu", "nonagri"),
    ("g1_small_company", "nonagri"),
    ("not_g1_medium", "nonagri"),
    ("not_g1_abnormal", "nonagri"),
    ("g1_market_anniversary", "nonagri"),
    ("not_g1_market_day_before", "nonagri"),
    ("g1_market_blank", "nonagri"),
    ("g5_lawyer", "nonagri"),
    ("g5_guide", "nonagri"),
    ("g3_rural_worker", "agri"),
    ("g3_boundary", "agri"),
    ("not_g3_five_months", "agri"),
    ("g6_rich", "nonagri"),
    ("g6_boundary", "nonagri"),
    ("g8_plain", "nonagri"),
    ("g8_roster", "nonagri"),
    ("conflict_lowincome_platform", "nonagri"),
    ("upgradable_getihu", "nonagri"),
    ("upgradable_platform", "nonagri"),
    ("resident_lowincome_not_upgradable", "agri"),
    ("upgradable_multi", "nonagri"),
    ("employee_with_terminated_resident", "nonagri"),
    ("terminated_only", "nonagri"),
    ("incarcerated", "nonagri"),
    ("receiving_with_platform", "nonagri"),
    ("employee_suspended_gov", "nonagri"),
    ("g7_disabled_roster", "nonagri"),
    ("all_groups", "agri"),
    ("elderly_receiving", "elderly"),
    ("elderly_unenrolled_lowincome", "elderly"),
]


def build_world(
    people: int,
    seed: int,
    as_of: date,
    reserved: tuple[set[str], set[str]] | None = None,
    district: int = 0,
) -> World:
    """A world of ``people`` household persons. ``reserved`` and ``district`` serve the shards
    of a bigger world (see :func:`pipeline.synth.generate_sharded`): IDs and entity codes unique
    across shards, and each district its own local address codes."""
    return _Gen(people, seed, as_of, reserved, district).run()


def date_of(o: int) -> date:
    return date.fromordinal(o)


__all__ = ["World", "build_world", "check_digit", "id_is_valid", "anniversary", "age_at", "timedelta"]
