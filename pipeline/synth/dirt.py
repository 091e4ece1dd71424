"""Dirt configuration and the functions that make clean values dirty.

Every kind is a field of :class:`DirtConfig` whose value is a rate:

* ID and name kinds: probability per *eligible* row (a row the kind can apply to:
  ``id_lower_x`` needs an ID ending in X, ``name_dot`` a minority name with the
  dot, ``id_15`` a person born 1900-1999, ``name_traditional`` / ``name_homophone``
  a character in the tables below, ...).
* ``row_duplicate``, ``row_empty``, ``row_no_identity``: extra rows, per data row.
* ``row_total``: probability that a file ends with a 合计 row.

The names of the fields are the names written to ``truth/rows.parquet``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

ID_KINDS = (
    "id_lower_x",
    "id_fullwidth",
    "id_spaces",
    "id_apostrophe",
    "id_quotes",
    "id_15",
    "id_typo",
    "id_swap",
    "id_excel_sci",
    "id_excel_numeric",
    "id_blank",
    "id_relative",
)
NAME_KINDS = ("name_traditional", "name_homophone", "name_space", "name_dot")
# How people appear in real records (spec extracts.md; issue 20): off by default, on in
# DirtConfig.people(). Per row: placeholders, masks, notes, pinyin, parts, X and digit look-alikes
# (non-household extracts) and a placeholder in the household itself; per person (every row of
# that person in the other extracts): a corrected ID (the old one kept), a former name, and a
# number shared with another person of the same birth date and address code (for some pairs in
# the household extract too: id_shared_hh).
PEOPLE_KINDS = (
    "name_placeholder", "name_mask", "name_note", "name_pinyin", "name_parts", "id_x_lookalike",
    "id_letter_digit", "hh_placeholder", "id_corrected", "name_former", "id_shared", "id_shared_hh",
)  # fmt: skip
OTHER_KINDS = ("date_format", "row_duplicate", "row_empty", "row_total", "row_no_identity")
DIRT_KINDS = ID_KINDS + NAME_KINDS + OTHER_KINDS  # heavy() makes every one of these


@dataclass(frozen=True)
class DirtConfig:
    """Per-kind dirt rates. ``DirtConfig()`` gives realistic default rates."""

    id_lower_x: float = 0.05  # of IDs ending in X
    id_fullwidth: float = 0.003
    id_spaces: float = 0.008
    id_apostrophe: float = 0.005
    id_quotes: float = 0.002
    id_15: float = 0.003  # of people born 1900-1999
    id_typo: float = 0.004
    id_swap: float = 0.002
    id_excel_sci: float = 0.003  # CSV files only
    id_excel_numeric: float = 0.005  # xlsx files only, IDs without X
    id_blank: float = 0.01  # platform and roster only
    id_relative: float = 0.0005
    name_traditional: float = 0.004
    name_homophone: float = 0.004
    name_space: float = 0.005
    name_dot: float = 0.15  # of minority names with the dot
    date_format: float = 0.01
    row_duplicate: float = 0.005
    row_empty: float = 0.0005
    row_total: float = 0.4  # per file
    row_no_identity: float = 0.0005
    name_placeholder: float = 0.0
    name_mask: float = 0.0
    name_note: float = 0.0
    name_pinyin: float = 0.0
    name_parts: float = 0.0  # of names with a character in PARTS
    id_x_lookalike: float = 0.0  # of IDs ending in X
    id_letter_digit: float = 0.0
    hh_placeholder: float = 0.0  # household rows
    id_corrected: float = 0.0  # per person
    name_former: float = 0.0  # per person
    id_shared: float = 0.0  # per person (among those with a namesake-free twin of birth date and code)
    # of those pairs, the share the household extract itself gives the one number (重号 inside the
    # household: both holders are persons of the population)
    id_shared_hh: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ValueError(f"DirtConfig.{f.name} must be a rate between 0 and 1, got {v!r}")

    @classmethod
    def none(cls) -> DirtConfig:
        """Perfectly clean extracts."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def heavy(cls) -> DirtConfig:
        """Every kind at several percent (every file gets a total row)."""
        rates = {f.name: 0.05 for f in fields(cls) if f.name not in PEOPLE_KINDS}
        rates.update(
            id_lower_x=0.5,
            name_dot=0.5,
            id_blank=0.08,
            id_relative=0.02,
            date_format=0.1,
            row_duplicate=0.03,
            row_empty=0.01,
            row_total=1.0,
            row_no_identity=0.01,
        )
        return cls(**rates)

    @classmethod
    def people(cls) -> DirtConfig:
        """The default dirt plus the phenomena of real records (PEOPLE_KINDS) at 1-2 %."""
        return cls(
            name_placeholder=0.015, name_mask=0.01, name_note=0.01, name_pinyin=0.01, name_parts=0.3,
            id_x_lookalike=0.1, id_letter_digit=0.005, hh_placeholder=0.01, id_corrected=0.015,
            name_former=0.015, id_shared=0.01, id_shared_hh=0.5,
        )  # fmt: skip

    def rate(self, kind: str) -> float:
        return float(getattr(self, kind))


# --------------------------------------------------------------------------- sampling


def sample(rng: random.Random, candidates: list[int], rate: float) -> list[int]:
    """About ``rate * len(candidates)`` of the candidates (sorted, deterministic)."""
    n = len(candidates)
    if n == 0 or rate <= 0:
        return []
    if rate >= 1:
        return list(candidates)
    k = int(n * rate + rng.random())
    if k <= 0:
        return []
    return sorted(rng.sample(candidates, min(k, n)))


# --------------------------------------------------------------------------- ID dirt

_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
ID_PLACEHOLDERS = ("", "无", "不详", "/", "—", "暂无")


def id_fullwidth(rng: random.Random, v: str) -> str:
    return v.translate(_FULLWIDTH if rng.random() < 0.5 else _FULLWIDTH_DIGITS)


def id_spaces(rng: random.Random, v: str) -> str:
    r = rng.random()
    if r < 0.25:
        return v + " "
    if r < 0.4:
        return " " + v
    if r < 0.55:
        return v[:6] + " " + v[6:14] + " " + v[14:]
    if r < 0.7:
        return "\t" + v
    if r < 0.85:
        i = rng.randrange(1, len(v))
        return v[:i] + "\u200b" + v[i:]
    return v + "  "


def id_apostrophe(rng: random.Random, v: str) -> str:
    return "'" + v


def id_quotes(rng: random.Random, v: str) -> str:
    q = rng.choice(('"', '"', "'", "“"))
    return q + v + ("”" if q == "“" else q)


def id_15(v: str) -> str:
    """18-digit ID -> old 15-digit form (drop the century and the check digit)."""
    return v[:6] + v[8:17]


def id_typo(rng: random.Random, v: str) -> str:
    i = rng.randrange(len(v))
    old = v[i]
    new = rng.choice([d for d in "0123456789" if d != old])
    return v[:i] + new + v[i + 1 :]


def id_swap_positions(v: str) -> list[int]:
    return [i for i in range(len(v) - 1) if v[i].isdigit() and v[i + 1].isdigit() and v[i] != v[i + 1]]


def id_swap(rng: random.Random, v: str) -> str:
    i = rng.choice(id_swap_positions(v))
    return v[:i] + v[i + 1] + v[i] + v[i + 2 :]


def id_excel_sci(v: str) -> str:
    """What Excel shows (and saves to CSV) for an 18-digit number: 5.30181E+17."""
    return f"{int(v):.5E}"


def id_excel_numeric(v: str) -> float:
    """The number Excel keeps for an 18-digit ID typed as a number (15 significant digits)."""
    digits = v[:17] + "0" if v.endswith("X") else v
    return float(f"{int(digits):.15g}")


# --------------------------------------------------------------------------- name dirt

# simplified -> traditional (surnames and common given-name characters)
TRADITIONAL = dict(
    zip(
        "陈刘张杨黄赵吴孙马罗郑谢许韩冯邓萧蒋叶苏吕卢钟谭陆贾韦邹闫龙贺顾龚万钱严汤"
        "伟华丽军强国荣红兰凤云辉杰涛东艳刚鹏飞晓颖静宁宝贵兴爱庆顺丰义学树乐进发银钢书"
        "玉婷丹凤梦龙",
        "陳劉張楊黃趙吳孫馬羅鄭謝許韓馮鄧蕭蔣葉蘇呂盧鍾譚陸賈韋鄒閆龍賀顧龔萬錢嚴湯"
        "偉華麗軍強國榮紅蘭鳳雲輝傑濤東艷剛鵬飛曉穎靜寧寶貴興愛慶順豐義學樹樂進發銀鋼書"
        "玉婷丹鳳夢龍",
        strict=True,
    )
)
TRADITIONAL = {k: v for k, v in TRADITIONAL.items() if k != v}

_HOMOPHONE_PAIRS = (
    "晓小 玲琳 丽莉 娟涓 明鸣 芳方 伟玮 华化 燕艳 红宏 军君 英瑛 梅玫 平萍 杰洁 文雯 兰岚 建健 "
    "春纯 霞侠 涛韬 勇永 波博 斌彬 辉晖 敏民 慧惠 婷亭 刚钢 峰锋 飞菲 颖莹 倩茜 琴芹 静敬 志智"
)
HOMOPHONES: dict[str, str] = {}
for _pair in _HOMOPHONE_PAIRS.split():
    HOMOPHONES.setdefault(_pair[0], _pair[1])
    HOMOPHONES.setdefault(_pair[1], _pair[0])

MIDDLE_DOT = "\u00b7"
DOT_VARIANTS = ("\u2022", "\u30fb", ".", "")


def name_traditional(rng: random.Random, v: str) -> str:
    return "".join(TRADITIONAL.get(c, c) for c in v)


def name_homophone(rng: random.Random, v: str) -> str:
    positions = [i for i, c in enumerate(v) if c in HOMOPHONES and i > 0] or [
        i for i, c in enumerate(v) if c in HOMOPHONES
    ]
    i = rng.choice(positions)
    return v[:i] + HOMOPHONES[v[i]] + v[i + 1 :]


def name_space(rng: random.Random, v: str) -> str:
    sp = " " if rng.random() < 0.6 else "\u3000"
    r = rng.random()
    if r < 0.5 and len(v) > 1:
        i = rng.randrange(1, len(v))
        return v[:i] + sp + v[i:]
    if r < 0.8:
        return v + sp
    return sp + v


def name_dot(rng: random.Random, v: str) -> str:
    return v.replace(MIDDLE_DOT, rng.choice(DOT_VARIANTS))


# --------------------------------------------------------------------------- dates


_EXCEL_EPOCH_ORDINAL = 693594  # date(1899, 12, 30).toordinal()


def date_variant(rng: random.Random) -> int:
    return rng.randrange(5)


def format_date_variant(y: int, m: int, d: int, ordinal: int, variant: int) -> str | int:
    """One of the dirty date spellings; variant 1 (Excel serial) is returned as an int."""
    if variant == 0:
        return f"{y:04d}{m:02d}{d:02d}"
    if variant == 1:
        return ordinal - _EXCEL_EPOCH_ORDINAL
    if variant == 2:
        return f"{y}/{m}/{d}"
    if variant == 3:
        return f"{y}年{m}月{d}日"
    return f"{y:04d}-{m:02d}-{d:02d} 00:00:00"


# --------------------------------------------------------------------------- real records (issue 20)

PLACEHOLDER_CHARS = ("?", "？", "□", "■", "〓", "\ue000", "\ue3a5")
X_LOOKALIKES = ("×", "Х", "х", "χ", "Ⅹ", "ⅹ")
NOTES_IN_NAMES = ("(已故)", "（户主）", "(迁出)", " 备注:迁出", "（代办）")
# rare or common characters written as their parts
PARTS = {"磊": "石石石", "鑫": "金金金", "淼": "水水水", "垚": "土土土", "犇": "牛牛牛", "喆": "吉吉",
         "昇": "日升", "玥": "王月", "堃": "方方土", "䶮": "龙天"}  # fmt: skip
RARE = set("䶮㛃昇堃玥")


def name_placeholder(rng: random.Random, v: str) -> str:
    """One character (a rare one if there is, else one of the given name) shown as a placeholder."""
    rare = [i for i, c in enumerate(v) if c in RARE]
    i = rng.choice(rare) if rare else rng.randrange(1, len(v)) if len(v) > 1 else 0
    return v[:i] + rng.choice(PLACEHOLDER_CHARS) + v[i + 1 :]


def name_mask(rng: random.Random, v: str) -> str:
    if len(v) >= 3 and rng.random() < 0.5:
        return v[0] + "*" + v[2:]
    return v[0] + "*" * (len(v) - 1)


def name_note(rng: random.Random, v: str) -> str:
    return v + rng.choice(NOTES_IN_NAMES)


def name_pinyin(rng: random.Random, v: str) -> str:
    from pypinyin import Style, lazy_pinyin

    syl = [s.replace("ü", "v") for s in lazy_pinyin(v, style=Style.NORMAL)]
    style = rng.randrange(4)
    if style == 0:
        return " ".join(s.upper() for s in syl)
    if style == 1:
        return syl[0].capitalize() + " " + "".join(syl[1:]).capitalize()
    if style == 2:
        return "".join(syl)
    return "".join(syl).upper()


def name_parts(rng: random.Random, v: str) -> str:
    return "".join(PARTS.get(c, c) for c in v)


def id_x_lookalike(rng: random.Random, v: str) -> str:
    return v[:-1] + rng.choice(X_LOOKALIKES)


def id_letter_digit_positions(v: str) -> list[int]:
    return [i for i in range(1, 17) if v[i] in "01"]


def id_letter_digit(rng: random.Random, v: str) -> str:
    i = rng.choice(id_letter_digit_positions(v))
    letter = rng.choice("Oo") if v[i] == "0" else rng.choice("lI")
    return v[:i] + letter + v[i + 1 :]


def corrected_id(v: str, shift: int) -> str:
    """The number a person held before a birth-date correction: the birth date ``shift`` days
    off (a mistyped day), the same address code and sequence, its own check digit."""
    from datetime import date, timedelta

    b = date(int(v[6:10]), int(v[10:12]), int(v[12:14])) + timedelta(days=shift)
    first17 = v[:6] + b.strftime("%Y%m%d") + v[14:17]
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


FORMER_GIVEN = "建华国庆红梅秀英桂兰玉珍志刚卫东小平春花淑芬德明"


def former_name(rng: random.Random, v: str) -> str:
    while True:
        given = "".join(rng.choice(FORMER_GIVEN) for _ in range(max(1, len(v) - 1)))
        if v[0] + given != v:
            return v[0] + given
