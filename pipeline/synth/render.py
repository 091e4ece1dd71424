"""Render the clean world into dirty extract files, as the departments export them.

Each file is rendered independently with its own random stream, so its content
depends only on (seed, world, dirt config, file name).
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl
import xlsxwriter

from . import dirt as D
from . import names as N
from .dirt import DirtConfig
from .shapes import INSTRUCTIONS, TEXT_FORMATS, WEB_FORMATS, WORKBOOK_FORMATS, SheetShape
from .world import LOCAL, NONLOCAL, OUTSIDER, World

# --------------------------------------------------------------------------- headers

COMMON_ALIASES = {
    "id_number": ["公民身份号码", "身份证号码", "身份证号", "证件号码", "社会保障号码", "身份证"],
    "name": ["姓名", "人员姓名", "参保人姓名"],
    "street": ["街道", "所属街道", "乡镇(街道)", "街道(乡镇)"],
    "community": ["社区", "村(社区)", "所属社区", "社区(村)"],
}
ENTITY_PERSON_ALIASES = {
    "id_number": ["法定代表人身份证号", "经营者身份证号", "证件号码"],
    "name": ["法定代表人", "经营者", "经营者姓名"],
}
SOURCE_ALIASES: dict[str, dict[str, list[str]]] = {
    "household": {
        "sex": ["性别"],
        "birth_date": ["出生日期"],
        "ethnicity": ["民族"],
        "household_no": ["户号"],
        "relation": ["与户主关系"],
        "hukou_type": ["户口性质"],
        "address": ["户籍地址", "住址"],
        "person_status": ["人员状态"],
        "former_name": ["曾用名"],
        "former_id_number": ["曾用身份证号码"],
    },
    "enrollment": {
        "scheme": ["险种", "险种类型"],
        "enroll_status": ["参保状态", "缴费状态"],
        "employer": ["单位名称"],
        "insured_place": ["参保地"],
    },
    "tax": {
        **ENTITY_PERSON_ALIASES,
        "entity_id": ["统一社会信用代码", "纳税人识别号"],
        "entity_name": ["纳税人名称"],
        "entity_type": ["登记注册类型", "纳税人类型"],
        "entity_size": ["企业规模"],
        "tax_status": ["纳税人状态", "纳税状态"],
    },
    "income": {
        "annual_income": ["年收入", "年度收入额", "收入额"],
        "withheld_months": ["扣缴月数"],
        "employer": ["扣缴义务人"],
    },
    "market": {
        **ENTITY_PERSON_ALIASES,
        "entity_id": ["统一社会信用代码"],
        "entity_name": ["主体名称", "企业名称"],
        "entity_type": ["主体类型", "市场主体类型"],
        "established": ["成立日期"],
        "address": ["住所", "经营场所"],
    },
    "student": {
        "school": ["学校名称"],
        "level": ["学历层次"],
        "student_status": ["学籍状态"],
        "expected_graduation": ["预计毕业日期"],
    },
    "lowincome": {"category": ["救助类别", "人员类别"], "since": ["认定日期"]},
    "platform": {
        "phone": ["手机号", "联系电话"],
        "platform_name": ["平台名称"],
        "occupation": ["职业类别"],
        "active_months": ["近12个月活跃月数"],
        "birth_date": ["出生日期"],
    },
    "roster": {"category": ["名单类别", "人员类别"], "department": ["报送单位"]},
}
UNITS = {
    "annual_income": ["(元)", "（元）"],
    "withheld_months": ["(月)"],
    "active_months": ["(月)", "（月）"],
}
EXTRA_HEADERS = {"_seq": "序号", "_note": "备注", "_clerk": "经办人", "_date": "数据日期"}
DATE_FIELDS = ("birth_date", "established", "since", "expected_graduation")

# canonical value -> spellings a department may use
SPELLINGS: dict[str, dict[str, list[str]]] = {
    "sex": {"男": ["男", "男性"], "女": ["女", "女性"]},
    "hukou_type": {
        "农业": ["农业", "农业户口", "农业家庭户口"],
        "非农业": ["非农业", "非农业户口", "非农业家庭户口"],
        "居民": ["居民", "居民户口", "居民家庭户口"],
    },
    "person_status": {
        "正常": ["", "正常", "在册"],
        "死亡": ["死亡", "已死亡"],
        "迁出": ["迁出", "已迁出", "迁移"],
    },
    "scheme": {
        "企业职工基本养老保险": ["企业职工基本养老保险", "企业职工养老", "职工养老", "企业养老"],
        "机关事业单位工作人员基本养老保险": ["机关事业单位工作人员基本养老保险", "机关事业养老", "机关养老"],
        "城乡居民基本养老保险": ["城乡居民基本养老保险", "城乡居民养老", "居民养老"],
    },
    "enroll_status": {
        "参保缴费": ["参保缴费", "正常参保", "正常缴费"],
        "暂停缴费": ["暂停缴费", "中断缴费"],
        "待遇领取": ["待遇领取", "享受待遇", "领取待遇"],
        "终止参保": ["终止参保", "终止"],
    },
    "entity_type": {
        "个体工商户": ["个体工商户", "个体户", "个体"],
        "有限责任公司": ["有限责任公司", "有限公司"],
        "个人独资企业": ["个人独资企业"],
        "合伙企业": ["合伙企业"],
        "股份有限公司": ["股份有限公司"],
        "农民专业合作社": ["农民专业合作社"],
    },
    "entity_size": {k: [k, k + "企业"] for k in ("大型", "中型", "小型", "微型")},
    "tax_status": {"正常": ["正常"], "非正常": ["非正常", "非正常户"], "注销": ["注销", "已注销"]},
    "student_status": {
        "在读": ["在读", "在校"],
        "休学": ["休学"],
        "毕业": ["毕业", "已毕业"],
        "退学": ["退学"],
    },
    "occupation": {
        "网约车司机": ["网约车司机"],
        "快递员": ["快递员"],
        "外卖骑手": ["外卖骑手", "外卖员"],
        "同城货运司机": ["同城货运司机", "货运司机"],
    },
}
LOWINCOME_SPELLINGS = {
    "低保": ["低保", "低保对象", "最低生活保障"],
    "特困": ["特困", "特困人员", "特困供养"],
    "致贫返贫": ["致贫返贫", "防返贫监测对象", "监测对象"],
    "重度残疾": ["重度残疾", "一级残疾", "二级残疾"],
}
ROSTER_SPELLINGS = {"村(社区)干部": ["村(社区)干部", "村干部", "社区干部", "村（社区）干部"]}
NOTES = ("新增", "已核实", "待核实", "信息变更", "系统导入")
CLERKS = ("李燕", "张丽萍", "王建华", "赵敏", "杨晓东")


@dataclass
class FilePlan:
    name: str
    source: str
    fmt: str  # csv | xlsx | xls | ods | parquet
    encoding: str | None  # utf-8 | utf-8-sig | gb18030 (csv only)
    keys: list[str]  # canonical keys and extras (_note, _clerk, _date), in column order; _seq added in front
    records: list[dict]
    seq: bool = False
    alt_rate: float = 0.08  # share of rows using another accepted spelling of a category value
    sheet: str = "Sheet1"  # workbooks: the sheet this plan fills (several plans may share a workbook)
    shape: SheetShape | None = None  # None: a tidy file (header in row 1, one sheet)


@dataclass
class RenderedFile:
    plan: FilePlan
    headers: list[str]
    rows: list[tuple]
    truth: dict[str, list]


# --------------------------------------------------------------------------- records


def _person_common(w: World, p: int) -> dict:
    local = w.kind[p] == LOCAL
    return {
        "_p": p,
        "id_number": w.pid[p],
        "name": w.name[p],
        "street": w.street[p] if w.street[p] >= 0 and w.kind[p] != OUTSIDER else None,
        "community": w.community[p] if local else None,
    }


def build_plans(w: World, rng: random.Random, people: int) -> list[FilePlan]:
    big = people > 100_000
    plans: list[FilePlan] = []

    # household: one file per street
    hh_fmt = {
        0: ("csv", "utf-8-sig"),
        1: ("csv", "gb18030"),
        2: ("xlsx", None) if not big else ("csv", "utf-8"),
        3: ("xlsx", None) if not big else ("csv", "utf-8-sig"),
        4: ("csv", "utf-8"),
        5: ("xlsx", None),
        6: ("csv", "gb18030"),
        7: ("csv", "utf-8-sig"),
        8: ("xlsx", None) if not big else ("csv", "gb18030"),
    }
    by_street: dict[int, list[dict]] = {s: [] for s in range(len(N.STREETS))}
    for hh_no, members in w.households:
        s = w.street[members[0]]
        recs = by_street[s]
        for p in members:
            r = _person_common(w, p)
            r.update(
                sex=w.sex[p],
                birth_date=w.birth[p],
                ethnicity=w.ethnicity[p],
                household_no=hh_no,
                relation=w.relation[p],
                hukou_type=w.hukou_type[p],
                address=w.address[p],
                person_status=w.person_status[p],
            )
            recs.append(r)
    base = ["household_no", "name", "id_number", "sex", "birth_date", "ethnicity", "relation", "hukou_type",
            "street", "community", "address", "person_status"]  # fmt: skip
    for s, (_, sname, *_rest) in enumerate(N.STREETS):
        fmt, enc = hh_fmt[s]
        keys = list(base)
        if rng.random() < 0.5:  # some exports put the ID first
            keys.remove("id_number")
            keys.insert(0, "id_number")
        if rng.random() < 0.4:
            keys.append("_note")
        ext = "xlsx" if fmt == "xlsx" else "csv"
        plans.append(FilePlan(f"户籍人口_{sname}.{ext}", "household", fmt, enc, keys, by_street[s],
                              seq=rng.random() < 0.5, alt_rate=0.0))  # fmt: skip

    def enr_rec(t: tuple) -> dict:
        p, scheme, status, employer, place = t
        r = _person_common(w, p)
        r.update(scheme=scheme, enroll_status=status, employer=employer, insured_place=place)
        return r

    enr: dict[str, list[dict]] = {
        "城乡居民基本养老保险": [],
        "企业职工基本养老保险": [],
        "机关事业单位工作人员基本养老保险": [],
    }
    for t in w.enroll:
        enr[t[1]].append(enr_rec(t))
    ekeys = ["name", "id_number", "scheme", "enroll_status", "employer", "insured_place"]
    plans.append(FilePlan("参保信息_城乡居民.csv", "enrollment", "csv", "gb18030",
                          ["name", "id_number", "street", "community", "scheme", "enroll_status", "insured_place"],
                          enr["城乡居民基本养老保险"], seq=True))  # fmt: skip
    plans.append(FilePlan("参保信息_企业职工.csv", "enrollment", "csv", "utf-8-sig", ekeys + ["_clerk"],
                          enr["企业职工基本养老保险"]))  # fmt: skip
    plans.append(FilePlan("机关事业单位参保人员.xlsx", "enrollment", "xlsx", None, ekeys + ["street", "_note"],
                          enr["机关事业单位工作人员基本养老保险"], seq=True))  # fmt: skip

    tax = []
    for p, code, nm, etype, size, status in w.tax:
        r = _person_common(w, p)
        r.update(entity_id=code, entity_name=nm, entity_type=etype, entity_size=size, tax_status=status)
        tax.append(r)
    plans.append(FilePlan("纳税主体登记.xlsx", "tax", "xlsx", None,
                          ["entity_id", "entity_name", "entity_type", "entity_size", "tax_status", "name", "id_number",
                           "street"], tax))  # fmt: skip

    inc = []
    for p, amount, months, employer in w.income:
        r = _person_common(w, p)
        r.update(annual_income=amount, withheld_months=months, employer=employer)
        inc.append(r)
    plans.append(FilePlan("个税汇总.parquet", "income", "parquet", None,
                          ["name", "id_number", "annual_income", "withheld_months", "employer", "street", "_date"],
                          inc))  # fmt: skip

    mkt = []
    for p, code, nm, etype, established, addr in w.market:
        r = _person_common(w, p)
        r.update(entity_id=code, entity_name=nm, entity_type=etype, established=established, address=addr)
        mkt.append(r)
    plans.append(FilePlan("新增市场主体.csv", "market", "csv", "utf-8",
                          ["entity_id", "entity_name", "entity_type", "established", "address", "name", "id_number",
                           "street"], mkt, seq=True))  # fmt: skip

    uni: list[dict] = []
    voc: list[dict] = []
    for p, school, level, status, grad in w.student:
        r = _person_common(w, p)
        r.update(school=school, level=level, student_status=status, expected_graduation=grad)
        (voc if level == "中职" else uni).append(r)
    skeys = ["name", "id_number", "school", "level", "student_status", "expected_graduation"]
    plans.append(FilePlan("高校在校生.xlsx", "student", "xlsx", None, skeys + ["_note"], uni, seq=True))
    plans.append(FilePlan("中职学生学籍.csv", "student", "csv", "gb18030", skeys, voc))

    li: list[dict] = []
    dis: list[dict] = []
    for p, cat, since in w.lowincome:
        r = _person_common(w, p)
        r.update(category=cat, since=since)
        (dis if cat == "重度残疾" else li).append(r)
    lkeys = ["name", "id_number", "street", "community", "category", "since"]
    plans.append(FilePlan("低保低收入人口.csv", "lowincome", "csv", "gb18030", lkeys, li, seq=True))
    plans.append(FilePlan("困难残疾人.xlsx", "lowincome", "xlsx", None, lkeys + ["_note"], dis))

    plat: list[dict] = []
    car: list[dict] = []
    for p, occ, pname, active, phone in w.platform:
        r = _person_common(w, p)
        r.update(
            occupation=occ, platform_name=pname, active_months=active, phone=phone, birth_date=w.birth[p]
        )
        (car if occ == "网约车司机" else plat).append(r)
    plans.append(FilePlan("平台从业人员.csv", "platform", "csv", "utf-8-sig",
                          ["name", "id_number", "birth_date", "phone", "platform_name", "occupation", "active_months",
                           "street"], plat))  # fmt: skip
    plans.append(FilePlan("新就业形态_网约车.xlsx", "platform", "xlsx", None,
                          ["name", "id_number", "phone", "platform_name", "occupation", "active_months"], car,
                          seq=True))  # fmt: skip

    ros: list[dict] = []
    land: list[dict] = []
    for p, cat, dept in w.roster:
        r = _person_common(w, p)
        r.update(category=cat, department=dept)
        (land if cat == "被征地农民" else ros).append(r)
    plans.append(FilePlan("特殊人员名单.xlsx", "roster", "xlsx", None,
                          ["name", "id_number", "category", "department", "street"], ros, seq=True))  # fmt: skip
    plans.append(FilePlan("被征地农民名单.csv", "roster", "csv", "utf-8",
                          ["name", "id_number", "street", "community", "category", "department"], land))  # fmt: skip

    # shuffle the non-household files (departments do not sort by our generation order)
    for plan in plans:
        if plan.source != "household":
            random.Random(f"{w.seed}-order-{plan.name}").shuffle(plan.records)
    return plans


# --------------------------------------------------------------------------- headers per file


def choose_headers(plan: FilePlan, rng: random.Random) -> list[str]:
    aliases = dict(COMMON_ALIASES)
    if plan.source != "enrollment":  # 社会保障号码 / 参保人姓名 are the insurance bureau's words
        aliases["id_number"] = [a for a in aliases["id_number"] if a != "社会保障号码"]
        aliases["name"] = [a for a in aliases["name"] if a != "参保人姓名"]
    aliases.update(SOURCE_ALIASES[plan.source])
    out = []
    keys = (["_seq"] if plan.seq else []) + plan.keys
    for k in keys:
        if k in EXTRA_HEADERS:
            h = EXTRA_HEADERS[k]
        else:
            h = rng.choice(aliases[k])
            if "(" in h and rng.random() < 0.3:
                h = h.replace("(", "（").replace(")", "）")
            elif k in UNITS and rng.random() < 0.5:
                h += rng.choice(UNITS[k])
        x = rng.random()
        if x < 0.06:
            h = " " + h + " "
        elif x < 0.1:
            h = h + " "
        out.append(h)
    return out


# --------------------------------------------------------------------------- one file

_YMD_CACHE: dict[int, tuple[int, int, int]] = {}


def _ymd(o: int) -> tuple[int, int, int]:
    t = _YMD_CACHE.get(o)
    if t is None:
        d = date.fromordinal(o)
        t = (d.year, d.month, d.day)
        _YMD_CACHE[o] = t
    return t


def _iso(o: int | None) -> str | None:
    if o is None:
        return None
    y, m, d = _ymd(o)
    return f"{y:04d}-{m:02d}-{d:02d}"


def _amount(v: float, style: str) -> str:
    if style == "auto" and v == int(v):
        return str(int(v))
    return f"{v:.2f}"


def render_file(plan: FilePlan, w: World, cfg: DirtConfig, seed: int | str) -> RenderedFile:
    shp = plan.shape
    rng = random.Random(f"{seed}-render-{plan.name}" + (f"#{plan.sheet}" if shp is not None else ""))
    src = plan.source
    hh = src == "household"
    recs = plan.records
    n = len(recs)
    P = [r["_p"] for r in recs]
    people = _people_phenomena(w, cfg, seed)
    if hh and (people["corrected"] or people["former"]) and plan.shape is None:
        # the police record carries the former number and name (when it does: see _people_phenomena)
        plan = _with_keys(plan, [*plan.keys, "former_name", "former_id_number"])
        recs = [
            {
                **r,
                "former_name": people["former_hh"].get(r["_p"]),
                "former_id_number": people["corrected_hh"].get(r["_p"]),
            }
            for r in recs
        ]
    keys = plan.keys
    headers = choose_headers(plan, rng)

    # ---- clean columns in the department's spelling
    street_mode = rng.choices(("name", "code12", "code9"), weights=(70, 15, 15))[0]
    amount_style = rng.choice(("2dp", "auto"))
    cols: dict[str, list] = {}
    for k in keys:
        if k == "_note":
            cols[k] = [rng.choice(NOTES) if rng.random() < 0.03 else None for _ in range(n)]
            continue
        if k == "_clerk":
            cols[k] = [rng.choice(CLERKS) for _ in range(n)]
            continue
        if k == "_date":
            cols[k] = [_iso(w.as_of.toordinal() - 3)] * n
            continue
        vals = [r.get(k) for r in recs]
        if k == "street":
            if street_mode == "name":
                tbl = [s[1] for s in N.STREETS]
            elif street_mode == "code12":
                tbl = [s[0] for s in N.STREETS]
            else:
                tbl = [s[0][:9] for s in N.STREETS]
            vals = [None if v is None else tbl[v] for v in vals]
        elif k in DATE_FIELDS:
            vals = [_iso(v) for v in vals]
        elif k == "annual_income":
            vals = [None if v is None else _amount(v, amount_style) for v in vals]
        elif k in ("withheld_months", "active_months"):
            vals = [None if v is None else str(v) for v in vals]
        elif k == "category" or k in SPELLINGS:
            spell = (
                (LOWINCOME_SPELLINGS if src == "lowincome" else ROSTER_SPELLINGS)
                if k == "category"
                else SPELLINGS[k]
            )
            style = rng.randrange(3)
            dominant = {c: (al[style] if style < len(al) else al[0]) if rng.random() < 0.5 or k in ("sex", "hukou_type")
                        else al[0] for c, al in spell.items()}  # fmt: skip
            if k == "category" and src == "lowincome":
                dominant["重度残疾"] = "重度残疾"
            out: list[str | None] = []
            for v in vals:
                if v is None:
                    out.append(None)
                    continue
                al = spell.get(v)
                if al is None:
                    out.append(v)
                elif plan.alt_rate and len(al) > 1 and rng.random() < plan.alt_rate:
                    out.append(rng.choice(al))
                else:
                    out.append(dominant[v])
            vals = [None if v == "" else v for v in out]
        cols[k] = vals

    # ---- dirt
    kinds: dict[int, list[str]] = {}

    def mark(i: int, kind: str) -> None:
        kinds.setdefault(i, []).append(kind)

    def rate(kind: str) -> float:
        return cfg.rate(kind)

    ids = cols.get("id_number")
    destroyable = [w.kind[p] != NONLOCAL for p in P]
    content: set[int] = set()
    terminal: set[int] = set()
    if ids is not None and hh:
        # two people, one number inside the household (重号): B's own household row carries A's
        for i in range(n):
            if P[i] in people["shared_hh"]:
                ids[i] = w.pid[people["shared"][P[i]]]
                mark(i, "id_shared_hh")
    if ids is not None and not hh:
        # a person's corrected or shared number: every row of theirs in the other extracts
        for i in range(n):
            old = people["corrected"].get(P[i])
            if old is not None:
                ids[i] = old
                mark(i, "id_corrected")
                content.add(i)
            elif P[i] in people["shared"]:
                ids[i] = w.pid[people["shared"][P[i]]]
                mark(i, "id_shared")
                content.add(i)
        elig = [i for i in range(n) if i not in content and w.kind[P[i]] == LOCAL
                and len(w.households[w.hh[P[i]]][1]) > 1]  # fmt: skip
        for i in D.sample(rng, elig, rate("id_relative")):
            members = [m for m in w.households[w.hh[P[i]]][1] if m != P[i]]
            ids[i] = w.pid[rng.choice(members)]
            mark(i, "id_relative")
            content.add(i)
        elig = [i for i in range(n) if i not in content and ids[i][6:8] == "19"]
        for i in D.sample(rng, elig, rate("id_15")):
            ids[i] = D.id_15(ids[i])
            mark(i, "id_15")
            content.add(i)
        elig = [i for i in range(n) if i not in content and destroyable[i]]
        for i in D.sample(rng, elig, rate("id_typo")):
            ids[i] = D.id_typo(rng, ids[i])
            mark(i, "id_typo")
            content.add(i)
        elig = [i for i in range(n) if i not in content and destroyable[i]]
        for i in D.sample(rng, elig, rate("id_swap")):
            if not D.id_swap_positions(ids[i]):
                continue
            ids[i] = D.id_swap(rng, ids[i])
            mark(i, "id_swap")
            content.add(i)
        if src in ("platform", "roster") and (src == "roster" or ("birth_date" in keys and "street" in keys)):
            elig = [i for i in range(n) if i not in content and w.kind[P[i]] == LOCAL]
            for i in D.sample(rng, elig, rate("id_blank")):
                ids[i] = rng.choice(D.ID_PLACEHOLDERS) or None
                mark(i, "id_blank")
                terminal.add(i)
        if plan.fmt in ("csv", *TEXT_FORMATS):
            elig = [i for i in range(n) if i not in content and i not in terminal and destroyable[i]
                    and ids[i].isdigit() and len(ids[i]) == 18]  # fmt: skip
            for i in D.sample(rng, elig, rate("id_excel_sci")):
                ids[i] = D.id_excel_sci(ids[i])
                mark(i, "id_excel_sci")
                terminal.add(i)
        if plan.fmt in WORKBOOK_FORMATS:
            elig = [i for i in range(n) if i not in content and i not in terminal and destroyable[i]
                    and ids[i].isdigit() and len(ids[i]) == 18]  # fmt: skip
            numeric = (
                rate("id_excel_numeric") if shp is None else max(rate("id_excel_numeric"), shp.number_cells)
            )
            for i in D.sample(rng, elig, numeric):
                ids[i] = D.id_excel_numeric(ids[i])
                mark(i, "id_excel_numeric")
                terminal.add(i)
    damaged: set[int] = set()  # household rows whose ID is a number cell: quarantined, the person unknown
    if ids is not None and hh and shp is not None and shp.damageable:
        elig = [i for i in range(n) if P[i] in shp.damageable and ids[i].isdigit() and len(ids[i]) == 18]
        for i in D.sample(rng, elig, shp.number_cells):
            ids[i] = D.id_excel_numeric(ids[i])
            mark(i, "id_excel_numeric")
            terminal.add(i)
            damaged.add(i)
    if ids is not None and not hh:
        elig = [i for i in range(n) if i not in terminal and isinstance(ids[i], str) and len(ids[i]) == 18
                and ids[i].endswith("X")]  # fmt: skip
        for i in D.sample(rng, elig, rate("id_x_lookalike")):
            ids[i] = D.id_x_lookalike(rng, ids[i])
            mark(i, "id_x_lookalike")
            terminal.add(i)
        elig = [i for i in range(n) if i not in terminal and isinstance(ids[i], str) and len(ids[i]) == 18
                and ids[i][:17].isdigit() and D.id_letter_digit_positions(ids[i])]  # fmt: skip
        for i in D.sample(rng, elig, rate("id_letter_digit")):
            ids[i] = D.id_letter_digit(rng, ids[i])
            mark(i, "id_letter_digit")
            terminal.add(i)
    if ids is not None:
        fmt_kinds = ["id_lower_x", "id_fullwidth", "id_spaces"]
        if not hh:
            fmt_kinds += ["id_apostrophe", "id_quotes"]
        for kind in fmt_kinds:
            if kind == "id_lower_x":
                elig = [i for i in range(n) if i not in terminal and ids[i].endswith("X")]
            else:
                elig = [i for i in range(n) if i not in terminal]
            for i in D.sample(rng, elig, rate(kind)):
                v = ids[i]
                if kind == "id_lower_x":
                    ids[i] = v[:-1] + "x"
                elif kind == "id_fullwidth":
                    ids[i] = D.id_fullwidth(rng, v)
                elif kind == "id_spaces":
                    ids[i] = D.id_spaces(rng, v)
                elif kind == "id_apostrophe":
                    ids[i] = D.id_apostrophe(rng, v)
                else:
                    ids[i] = D.id_quotes(rng, v)
                mark(i, kind)

    nm = cols.get("name")
    if nm is not None and hh:
        elig = [i for i in range(n) if nm[i] and D.MIDDLE_DOT not in nm[i]]
        for i in D.sample(rng, elig, rate("hh_placeholder")):
            nm[i] = D.name_placeholder(rng, nm[i])
            mark(i, "hh_placeholder")
    if nm is not None and not hh:
        for i in range(n):
            if P[i] in people["former"] and nm[i]:
                nm[i] = people["former"][P[i]]
                mark(i, "name_former")
        plain = [i for i in range(n) if nm[i] and D.MIDDLE_DOT not in nm[i] and len(nm[i]) >= 2]
        done: set[int] = set()
        for kind, fn in (
            ("name_placeholder", D.name_placeholder), ("name_mask", D.name_mask), ("name_note", D.name_note),
            ("name_pinyin", D.name_pinyin),
        ):  # fmt: skip
            for i in D.sample(rng, [i for i in plain if i not in done], rate(kind)):
                nm[i] = fn(rng, nm[i])
                mark(i, kind)
                done.add(i)
        elig = [i for i in plain if i not in done and any(c in D.PARTS for c in nm[i])]
        for i in D.sample(rng, elig, rate("name_parts")):
            nm[i] = D.name_parts(rng, nm[i])
            mark(i, "name_parts")
            done.add(i)
        trad = D.TRADITIONAL.keys()
        homo = D.HOMOPHONES.keys()
        elig = [i for i in range(n) if nm[i] and not trad.isdisjoint(nm[i])]
        for i in D.sample(rng, elig, rate("name_traditional")):
            nm[i] = D.name_traditional(rng, nm[i])
            mark(i, "name_traditional")
        elig = [i for i in range(n) if nm[i] and not homo.isdisjoint(nm[i])]
        for i in D.sample(rng, elig, rate("name_homophone")):
            nm[i] = D.name_homophone(rng, nm[i])
            mark(i, "name_homophone")
        elig = [i for i in range(n) if nm[i] and D.MIDDLE_DOT in nm[i]]
        for i in D.sample(rng, elig, rate("name_dot")):
            nm[i] = D.name_dot(rng, nm[i])
            mark(i, "name_dot")
        elig = [i for i in range(n) if nm[i]]
        for i in D.sample(rng, elig, rate("name_space")):
            nm[i] = D.name_space(rng, nm[i])
            mark(i, "name_space")

    dkeys = [k for k in keys if k in DATE_FIELDS]
    if dkeys:
        elig = [i for i in range(n) if recs[i].get(dkeys[0]) is not None]
        for i in D.sample(rng, elig, rate("date_format")):
            variant = D.date_variant(rng)
            for k in dkeys:
                o = recs[i].get(k)
                if o is not None:
                    cols[k][i] = D.format_date_variant(*_ymd(o), o, variant)
            mark(i, "date_format")

    # ---- rows, extra rows and their order
    base_rows = list(zip(*(cols[k] for k in keys), strict=True)) if keys else [() for _ in range(n)]
    ncols = len(headers)
    order: list[tuple] = [(i, 1, 0.0, "r", i) for i in range(n)]
    for i in D.sample(rng, list(range(n)), rate("row_duplicate")):
        order.append((rng.randint(i + 1, n), 0, rng.random(), "d", i))
    if n >= 2:
        for _ in range(int(n * rate("row_empty") + rng.random())):
            order.append((rng.randint(1, n - 1), 0, rng.random(), "e", -1))
    if not hh and n >= 1:
        for _ in range(int(n * rate("row_no_identity") + rng.random())):
            order.append((rng.randint(0, n), 0, rng.random(), "x", rng.randrange(n)))
    if (rng.random() < rate("row_total") or (shp is not None and shp.footer is not None)) and n:
        order.append((n + 1, 0, 0.0, "t", -1))
    order.sort()

    id_col = keys.index("id_number") if "id_number" in keys else None
    name_col = keys.index("name") if "name" in keys else None
    seq_no = 0
    seq_of: dict[int, int] = {}
    rows: list[tuple] = []
    t_pid: list[str | None] = []
    t_dirt: list[str] = []
    t_exp: list[str] = []
    t_reason: list[str | None] = []
    seen: set[tuple] = set()
    match_only = src in ("enrollment", "student")
    for _, _, _, kind, i in order:
        if kind == "r":
            seq_no += 1
            seq_of[i] = seq_no
            row = base_rows[i]
            if plan.seq:
                row = (str(seq_no), *row)
            p = P[i]
            if i in damaged:
                exp = "quarantined"
            elif row in seen:
                exp = "duplicate"
            else:
                exp = "unmatched" if (match_only and w.kind[p] == OUTSIDER) else "person"
            seen.add(row)
            rows.append(row)
            t_pid.append(w.pid[p])
            t_dirt.append(",".join(kinds.get(i, ())))
            t_exp.append(exp)
            t_reason.append("base_id_unusable" if i in damaged else None)
        elif kind == "d":
            row = base_rows[i]
            if plan.seq:
                row = (str(seq_of[i]), *row)
            seen.add(row)
            rows.append(row)
            t_pid.append(w.pid[P[i]])
            t_dirt.append(",".join([*kinds.get(i, ()), "row_duplicate"]))
            t_exp.append("quarantined" if i in damaged else "duplicate")
            t_reason.append("base_id_unusable" if i in damaged else None)
        elif kind == "e":
            rows.append((None,) * ncols)
            t_pid.append(None)
            t_dirt.append("row_empty")
            t_exp.append("quarantined")
            t_reason.append("empty_row")
        elif kind == "x":
            seq_no += 1
            row = list(base_rows[i])
            if id_col is not None:
                row[id_col] = rng.choice(D.ID_PLACEHOLDERS) or None
            if name_col is not None:
                row[name_col] = None
            row = tuple(row)
            if plan.seq:
                row = (str(seq_no), *row)
            dup = row in seen
            seen.add(row)
            rows.append(row)
            t_pid.append(None)
            t_dirt.append("row_no_identity")
            t_exp.append("duplicate" if dup else "quarantined")
            t_reason.append(None if dup else "no_identity")
        else:  # total
            row = [None] * ncols
            row[0] = shp.total_word if shp is not None else "合计"
            full_keys = (["_seq"] if plan.seq else []) + keys
            count_col = next((c for c in range(1, ncols) if full_keys[c] != "id_number"), 0)
            if count_col:
                row[count_col] = f"共{n}人" if rng.random() < 0.5 else str(n)
            rows.append(tuple(row))
            t_pid.append(None)
            t_dirt.append("row_total")
            t_exp.append("quarantined")
            t_reason.append("total_row")

    t_shape = [""] * len(rows)
    first_row = 2
    if shp is not None:
        base_shape = ",".join(shp.kinds)
        t_shape = [
            base_shape + ",number_cell_id" if "id_excel_numeric" in d.split(",") else base_shape
            for d in t_dirt
        ]
        first_row = shp.header_height() + 1
        if shp.footer is not None:
            footer: list[tuple] = [(None,) * ncols] * shp.footer_blanks
            reasons = ["empty_row"] * shp.footer_blanks
            texts = (shp.clerk, shp.auditor, shp.fill_date)
            if shp.footer == "one_row" and ncols >= 3:
                row = [None] * ncols
                for j, t in enumerate(texts):
                    row[j * (ncols // 3)] = t
                footer.append(tuple(row))
                reasons.append("footer_row")
            else:
                for t in texts:
                    footer.append((t,) + (None,) * (ncols - 1))
                    reasons.append("footer_row")
            rows.extend(footer)
            t_pid.extend([None] * len(footer))
            t_dirt.extend([""] * len(footer))
            t_exp.extend(["quarantined"] * len(footer))
            t_reason.extend(reasons)
            t_shape.extend([base_shape] * len(footer))

    m = len(rows)
    truth: dict[str, list] = {
        "source": [src] * m,
        "file": [plan.name] * m,
        "sheet": [plan.sheet if plan.fmt in (*WORKBOOK_FORMATS, "xml") else ""] * m,
        "row": list(range(first_row, first_row + m)),
        "person_id": t_pid,
        "dirt": t_dirt,
        "expected": t_exp,
        "quarantine_reason": t_reason,
        "shape": t_shape,
    }
    return RenderedFile(plan, headers, rows, truth)


def _with_keys(plan: FilePlan, keys: list[str]) -> FilePlan:
    from dataclasses import replace

    return replace(plan, keys=keys)


_PEOPLE_CACHE: dict[tuple, dict] = {}


def _people_phenomena(w: World, cfg: DirtConfig, seed: int | str) -> dict:
    """Per-person phenomena, the same in every file of the world (a person's rows all carry them):

    * ``corrected``: p -> the number the person held before a birth-date correction (kept by the
      other extracts); ``corrected_hh``: those of them the household row lists as 曾用身份证号码;
    * ``former``: p -> the name the other extracts still use; ``former_hh``: listed as 曾用名;
    * ``shared``: p (B) -> A, another local person of the same birth date and address code whose
      number B's rows carry (two people, one number); ``shared_hh``: those B whose household row
      carries A's number too (重号 inside the household: A and B differ in characters and sound).
    """
    rates = (cfg.id_corrected, cfg.name_former, cfg.id_shared, cfg.id_shared_hh)
    key = (id(w), str(seed), rates)
    if key in _PEOPLE_CACHE:
        return _PEOPLE_CACHE[key]
    out: dict = {
        "corrected": {},
        "corrected_hh": {},
        "former": {},
        "former_hh": {},
        "shared": {},
        "shared_hh": set(),
    }
    if any(rates):
        rng = random.Random(f"{seed}-people-phenomena")
        taken = set(w.pid)
        local = [p for p in range(w.n) if w.kind[p] == LOCAL and w.pid[p] and len(w.pid[p]) == 18]
        used: set[int] = set()
        for p in D.sample(rng, local, cfg.id_corrected):
            old = D.corrected_id(w.pid[p], rng.choice([-1, 1]) * rng.randint(1, 20))
            if old in taken:
                continue
            taken.add(old)
            out["corrected"][p] = old
            used.add(p)
            if rng.random() < 0.5:
                out["corrected_hh"][p] = old
        for p in D.sample(rng, [p for p in local if p not in used and D.MIDDLE_DOT not in w.name[p]],
                          cfg.name_former):  # fmt: skip
            out["former"][p] = D.former_name(rng, w.name[p])
            used.add(p)
            if rng.random() < 0.5:
                out["former_hh"][p] = out["former"][p]
        by_bc: dict[str, list[int]] = {}
        for p in local:
            by_bc.setdefault(w.pid[p][:14], []).append(p)
        pairs = [(b, a) for ps in by_bc.values() if len(ps) > 1 for b in ps for a in ps
                 if a != b and w.name[a] != w.name[b]]  # fmt: skip
        want = int(len(local) * cfg.id_shared + rng.random())
        rng.shuffle(pairs)
        for b, a in pairs:
            if len(out["shared"]) >= want:
                break
            if b in used or a in used:
                continue
            out["shared"][b] = a
            used.update((a, b))
        if cfg.id_shared_hh:
            from ..core.names import name_keys

            for b, a in sorted(out["shared"].items()):
                (kb, pb), (ka, pa) = name_keys(w.name[b]), name_keys(w.name[a])
                if kb != ka and pb != pa and rng.random() < cfg.id_shared_hh:
                    out["shared_hh"].add(b)
    if len(_PEOPLE_CACHE) > 8:
        _PEOPLE_CACHE.clear()
    _PEOPLE_CACHE[key] = out
    return out


# --------------------------------------------------------------------------- writing


def _text(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _workbook(path: Path, cells: int) -> xlsxwriter.Workbook:
    """An xlsxwriter workbook that writes text as text (never a number, formula or link), with a
    fixed creation date so that a seed gives the same bytes; row by row above 2M cells."""
    wb = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": cells > 2_000_000,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    wb.set_properties({"created": datetime(2026, 1, 1), "author": "kuomian-synth"})
    return wb


def write_file(rf: RenderedFile, out: Path) -> None:
    plan = rf.plan
    path = out / plan.name
    if plan.fmt == "xlsx":
        wb = _workbook(path, cells=len(rf.rows) * len(rf.headers))
        ws = wb.add_worksheet("Sheet1")
        for c, h in enumerate(rf.headers):
            ws.write_string(0, c, h)
        ws_s = ws.write_string
        ws_n = ws.write_number
        for r, row in enumerate(rf.rows, start=1):
            for c, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, str):
                    ws_s(r, c, v)
                else:
                    ws_n(r, c, v)
        wb.close()
        return
    if plan.fmt in WEB_FORMATS:
        (_write_html if plan.fmt == "html" else _write_spreadsheetml)(rf, path)
        return
    if plan.fmt == "parquet":
        columns = list(zip(*rf.rows, strict=True)) if rf.rows else [() for _ in rf.headers]
        data = {h: [_text(v) for v in col] for h, col in zip(rf.headers, columns, strict=True)}
        df = pl.DataFrame(data, schema={h: pl.String for h in rf.headers})
        df.write_parquet(path, compression="zstd", statistics=False)
        return
    # CSV (or tab-separated text) with the csv module (no polars here: this may run in a forked worker)
    enc = plan.encoding or "utf-8"
    kinds = plan.shape.kinds if plan.shape is not None else ()
    rows = rf.rows
    if "formula_id" in kinds:  # ="530…": what users write to keep Excel from damaging the IDs
        c = ((["_seq"] if plan.seq else []) + plan.keys).index("id_number")
        rows = [(*r[:c], f'="{r[c]}"' if r[c] else r[c], *r[c + 1 :]) for r in rows]
    buf = io.StringIO()
    crlf = enc in ("gb18030", "utf-16")
    if plan.fmt == "tsv":
        wr = csv.writer(buf, delimiter="\t", lineterminator="\r\n" if crlf else "\n")
    else:
        wr = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    wr.writerow(rf.headers)
    wr.writerows(rows)
    text = buf.getvalue()
    # utf-16: Excel's "Unicode text" (little-endian with its BOM)
    blob = ("\ufeff" + text).encode("utf-8") if enc == "utf-8-sig" else text.encode(enc)
    if "ctrl_z" in kinds:
        blob += b"\x1a"  # a DOS end-of-file mark, as old tools write it
    path.write_bytes(blob)


def _write_html(rf: RenderedFile, path: Path) -> None:
    """What government web systems export as ".xls": an HTML table in GBK (characters outside it
    as character references), a title row spanning every column, the header in ``<th>``."""
    import html

    shp = rf.plan.shape
    n = len(rf.headers)
    esc = html.escape
    out = [
        '<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:x="urn:schemas-microsoft-com:office:excel">',
        '<head><meta http-equiv="Content-Type" content="text/html; charset=GBK"></head><body>',
        '<table border="1">',
    ]
    if shp is not None and shp.title:
        out.append(f'<tr><td colspan="{n}" align="center"><b>{esc(shp.title)}</b></td></tr>')
    out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in rf.headers) + "</tr>")
    text = "style=\"mso-number-format:'\\@'\""
    for row in rf.rows:
        out.append("<tr>" + "".join(f"<td {text}>{esc(_text(v) or '')}</td>" for v in row) + "</tr>")
    out.append("</table></body></html>")
    path.write_bytes("\r\n".join(out).encode("gbk", errors="xmlcharrefreplace"))


def _write_spreadsheetml(rf: RenderedFile, path: Path) -> None:
    """Excel 2003 XML ("XML 电子表格") named .xls: one worksheet, a title merged across the columns."""
    from xml.sax.saxutils import escape, quoteattr

    shp = rf.plan.shape
    n = len(rf.headers)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?mso-application progid="Excel.Sheet"?>',
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:x="urn:schemas-microsoft-com:office:excel" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:html="http://www.w3.org/TR/REC-html40">',
        ' <Styles><Style ss:ID="Default" ss:Name="Normal"/><Style ss:ID="title"><Alignment ss:Horizontal="Center"/>'
        '<Font ss:Bold="1" ss:Size="16"/></Style><Style ss:ID="head"><Font ss:Bold="1"/></Style></Styles>',
        f" <Worksheet ss:Name={quoteattr(rf.plan.sheet)}>",
        "  <Table>",
    ]

    def cell(v, style: str = "") -> str:
        st = f' ss:StyleID="{style}"' if style else ""
        if v is None:
            return f"<Cell{st}/>"
        return f'<Cell{st}><Data ss:Type="String">{escape(_text(v) or "")}</Data></Cell>'

    if shp is not None and shp.title:
        out.append(
            f'   <Row><Cell ss:MergeAcross="{n - 1}" ss:StyleID="title"><Data ss:Type="String">'
            f"{escape(shp.title)}</Data></Cell></Row>"
        )
    out.append("   <Row>" + "".join(cell(h, "head") for h in rf.headers) + "</Row>")
    for row in rf.rows:
        out.append("   <Row>" + "".join(cell(v) for v in row) + "</Row>")
    out += ["  </Table>", " </Worksheet>", "</Workbook>", ""]
    path.write_bytes("\n".join(out).encode("utf-8"))


def _span(ws, row: int, c0: int, c1: int, text: str, fmt) -> None:
    """``text`` in one cell, merged across columns ``c0``..``c1`` when there are several."""
    if c1 > c0:
        ws.merge_range(row, c0, row, c1, text, fmt)
    else:
        ws.write_string(row, c0, text, fmt)


def write_book(rfs: list[RenderedFile], out: Path, convert_dir: Path) -> None:
    """Write one extract file: a tidy file (one plan) or a shaped workbook (one plan per sheet).

    A ``.xls`` / ``.ods`` workbook is written as ``convert_dir/<stem>.xlsx``, for
    :func:`pipeline.synth.shapes.convert` to turn into the final format.
    """
    plan = rfs[0].plan
    if plan.shape is None or plan.fmt not in WORKBOOK_FORMATS:
        write_file(rfs[0], out)
        return
    name = plan.name
    path = out / name if plan.fmt == "xlsx" else convert_dir / (name.rsplit(".", 1)[0] + ".xlsx")
    wb = _workbook(path, cells=sum(len(rf.rows) * len(rf.headers) for rf in rfs))
    title_fmt = wb.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
    group_fmt = wb.add_format({"bold": True, "align": "center", "border": 1})
    head_fmt = wb.add_format({"bold": True, "border": 1})
    merge_fmt = wb.add_format({"valign": "vcenter"})
    if (first := rfs[0].plan.shape) is not None and first.instructions:
        ws = wb.add_worksheet("填表说明")
        for r, line in enumerate(INSTRUCTIONS):
            ws.write_string(r, 0, line)
    for rf in rfs:
        shp = rf.plan.shape
        assert shp is not None
        ws = wb.add_worksheet(rf.plan.sheet)
        ncols = len(rf.headers)
        r = 0

        if shp.title is not None:
            _span(ws, r, 0, ncols - 1, shp.title, title_fmt)
            r += 1
        if shp.unit_line is not None:
            unit, when = shp.unit_line
            half = max(1, ncols // 2)
            if ncols >= 4:
                _span(ws, r, 0, half - 1, unit, None)
                _span(ws, r, half, ncols - 1, when, None)
            else:
                ws.write_string(r, 0, f"{unit}    {when}")
            r += 1
        if shp.blank_after_title:
            r += 1
        if shp.groups:
            keys = (["_seq"] if rf.plan.seq else []) + rf.plan.keys
            labels = [shp.groups.get(k) for k in keys]
            c = 0
            while c < ncols:
                e = c
                while e + 1 < ncols and labels[e + 1] == labels[c]:
                    e += 1
                if (label := labels[c]) is not None:
                    _span(ws, r, c, e, label, group_fmt)
                c = e + 1
            r += 1
        for c, h in enumerate(rf.headers):
            ws.write_string(r, c, h, head_fmt)
        r += 1
        # merged cells: each run of equal consecutive values of a merged column is one range, the
        # value in its top cell (what a list formatted for printing looks like)
        covered: set[tuple[int, int]] = set()
        if shp.merged:
            keys = (["_seq"] if rf.plan.seq else []) + rf.plan.keys
            for k in shp.merged:
                c = keys.index(k)
                i = 0
                while i < len(rf.rows):
                    v = rf.rows[i][c]
                    j = i
                    while isinstance(v, str) and v and j + 1 < len(rf.rows) and rf.rows[j + 1][c] == v:
                        j += 1
                    if j > i:
                        ws.merge_range(r + i, c, r + j, c, v, merge_fmt)
                        covered.update((i2, c) for i2 in range(i, j + 1))
                    i = j + 1
        for i, row in enumerate(rf.rows):
            for c, v in enumerate(row):
                if v is None or (i, c) in covered:
                    continue
                if isinstance(v, str):
                    ws.write_string(r, c, v)
                else:
                    ws.write_number(r, c, v)
            r += 1
        if shp.empty_sheet:
            wb.add_worksheet(shp.empty_sheet)
    wb.close()
