"""Names: the display form, the match keys, and the name agreement score."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kuomian.core.names import DOT, add_name_keys, display_name, display_name_expr, name_keys, name_scores

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (raw, display, name_key, name_py)
GOLDEN = [
    # traditional characters: the display keeps them, the key is simplified
    ("陳曉玲", "陳曉玲", "陈晓玲", "cenxiaolin"),
    ("陈晓玲", "陈晓玲", "陈晓玲", "cenxiaolin"),
    ("張偉", "張偉", "张伟", "zanwei"),
    # trimming: ASCII, full-width and zero-width spaces, tabs and line ends
    (" 陈晓玲 ", "陈晓玲", "陈晓玲", "cenxiaolin"),
    ("\u3000陈晓玲\u3000", "陈晓玲", "陈晓玲", "cenxiaolin"),
    ("\t陈晓玲\r\n", "陈晓玲", "陈晓玲", "cenxiaolin"),
    ("\u200b陈晓玲\ufeff", "陈晓玲", "陈晓玲", "cenxiaolin"),
    # a stray space inside: the display is the name as written, the key drops it
    ("陈 晓玲", "陈 晓玲", "陈晓玲", "cenxiaolin"),
    ("陈\u3000晓玲", "陈\u3000晓玲", "陈晓玲", "cenxiaolin"),
    # homophones share the fuzzy pinyin, not the key
    ("王小明", "王小明", "王小明", "wanxiaomin"),
    ("王晓明", "王晓明", "王晓明", "wanxiaomin"),
    ("李玲", "李玲", "李玲", "lilin"),
    ("李琳", "李琳", "李琳", "lilin"),
    # fuzzy initials and finals: n/l, zh/z, ch/c, sh/s, -ng/-n
    ("牛娜", "牛娜", "牛娜", "liula"),
    ("宁静", "宁静", "宁静", "linjin"),
    ("尚春生", "尚春生", "尚春生", "sancunsen"),
    ("赵春江", "赵春江", "赵春江", "zaocunjian"),
    # minority names: every separator (or none) gives one key; the display always shows U+00B7
    ("阿依古丽·买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽•买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽・买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽.买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽．买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽･买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽‧买买提", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽买买提", "阿依古丽买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("  阿依古丽•买买提\u3000", "阿依古丽·买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    ("阿依古丽 · 买买提", "阿依古丽 · 买买提", "阿依古丽买买提", "ayigulimaimaiti"),
    # full-width Latin letters: shown as written, keyed half-width
    ("Ｔｏｍ", "Ｔｏｍ", "Tom", "tom"),
    # nothing
    ("", "", "", ""),
    ("   ", "", "", ""),
    (None, "", "", ""),
]


@pytest.mark.parametrize(("raw", "display", "key", "py"), GOLDEN)
def test_golden(raw, display, key, py):
    assert display_name(raw) == display
    assert name_keys(raw) == (key, py)


def test_golden_display_expr_agrees():
    raws = [g[0] for g in GOLDEN]
    out = pl.DataFrame({"n": pl.Series(raws, dtype=pl.String)}).select(display_name_expr(pl.col("n")))
    assert out.to_series().to_list() == [g[1] for g in GOLDEN]


def test_minority_display_uses_u00b7():
    for sep in "·•・.．･‧∙⋅":
        shown = display_name(f"阿依古丽{sep}买买提")
        assert shown == "阿依古丽\u00b7买买提"
        assert shown[4] == DOT == "\u00b7"


def test_add_name_keys():
    df = pl.DataFrame({"name_raw": ["陳曉玲", None, "阿依古丽•买买提", "陳曉玲"]})
    out = add_name_keys(df)
    assert out.height == 4
    assert out.get_column("name_raw").to_list() == df.get_column("name_raw").to_list()
    assert out.get_column("name_key").to_list() == ["陈晓玲", "", "阿依古丽买买提", "陈晓玲"]
    assert out.get_column("name_py").to_list() == ["cenxiaolin", "", "ayigulimaimaiti", "cenxiaolin"]


# ---------------------------------------------------------------- scores


def score(a: str | None, b: str | None) -> float:
    ak, ap = name_keys(a)
    bk, bp = name_keys(b)
    (s,) = name_scores([ak], [ap], [bk], [bp])
    return float(s)


@pytest.mark.parametrize(
    ("a", "b"), [("王小明", "王晓明"), ("李玲", "李琳"), ("陈晓玲", "陈小玲"), ("张三", "章三")]
)
def test_homophones_score_high(a, b):
    assert score(a, b) >= 0.9
    assert score(a, b) < 1.0  # a homophone is not the same name
    assert score(b, a) == score(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("王小明", "王小明"),
        ("陳曉玲", "陈晓玲"),
        ("阿依古丽·买买提", "阿依古丽买买提"),
        (" 张伟", "张伟\u3000"),
    ],
)
def test_same_name_scores_one(a, b):
    assert score(a, b) == 1.0


@pytest.mark.parametrize(
    ("a", "b"), [("张伟", "张明"), ("王玲", "王丽"), ("张建国", "张建华"), ("李四", "王五")]
)
def test_different_people_score_low(a, b):
    assert score(a, b) < 0.8


@pytest.mark.parametrize(
    ("a", "b"), [("", "王小明"), ("王小明", ""), ("", ""), (None, "王小明"), ("  ", "  ")]
)
def test_empty_name_scores_zero(a, b):
    assert score(a, b) == 0.0


def test_scores_are_vectorised_and_aligned():
    pairs = [("王小明", "王晓明"), ("张伟", "张明"), ("", "李玲"), ("陳曉玲", "陈晓玲")]
    a = [name_keys(x) for x, _ in pairs]
    b = [name_keys(y) for _, y in pairs]
    out = name_scores([k for k, _ in a], [p for _, p in a], [k for k, _ in b], [p for _, p in b])
    assert len(out) == 4
    assert list(out) == [score(x, y) for x, y in pairs]
    assert out[0] == 0.95 and out[2] == 0.0 and out[3] == 1.0 and out[1] < 0.8
    assert len(name_scores([], [], [], [])) == 0


# ---------------------------------------------------------------- properties

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
NAMEISH = st.one_of(
    CJK,
    st.sampled_from(list("·•・.．･‧ \u3000\t\u200b\ufeff\x1c\x1fa\u0301\u00a8")),
    st.characters(min_codepoint=0x3400, max_codepoint=0x4DBF),
    st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),
)
ANY_NAME = st.one_of(st.text(), st.text(alphabet=NAMEISH, max_size=12))


@FAST
@given(ANY_NAME)
@example("a\u00a8")  # NFKC gives "a \u0308"; dropping the space must not leave a key that normalises again
@example("e \u0301")
def test_display_and_keys_never_crash_and_are_idempotent(raw):
    shown = display_name(raw)
    assert isinstance(shown, str)
    assert display_name(shown) == shown
    key, py = name_keys(raw)
    assert isinstance(key, str) and isinstance(py, str)
    assert name_keys(key)[0] == key
    # the key ignores what the display changes (trimming, the dot)
    assert name_keys(shown)[0] == key


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_NAME, min_size=1, max_size=30))
@example(["\x1f王小明\x1f"])
def test_display_expr_agrees_with_display_name(raws):
    out = pl.DataFrame({"n": pl.Series(raws, dtype=pl.String)}).select(display_name_expr(pl.col("n")))
    assert out.to_series().to_list() == [display_name(r) for r in raws]


@FAST
@given(
    st.text(alphabet=CJK, min_size=2, max_size=6),
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from(list("·•・.．･ \u3000\t\u200b"))), max_size=4),
)
def test_key_ignores_separators_and_spaces(name, inserts):
    noisy = name
    for pos, ch in inserts:
        pos = min(pos, len(noisy))
        noisy = noisy[:pos] + ch + noisy[pos:]
    assert name_keys(noisy) == name_keys(name)
    assert score(noisy, name) == 1.0


# ---------------------------------------------------------------- what was lost (issue 20)


def test_notes_are_not_the_name_and_placeholders_become_wildcards():
    from kuomian.core.names import many_name_keys

    keys, sounds = many_name_keys(
        [
            "张三(已故)",
            "李四（户主）",
            "王五 备注:迁出",
            "张?明",
            "张□明",
            "张\ue000明",
            "张*明",
            "ZHANG SAN",
            "zhangsan",
        ]
    )
    assert keys[:3] == ["张三", "李四", "王五"]
    assert keys[3:6] == ["张?明"] * 3 and keys[6] == "张*明"
    assert sounds[7] == sounds[8] == many_name_keys(["张三"])[1][0]


def test_name_agreement_says_why():
    from kuomian.core.names import many_name_keys, name_agreement

    pairs = [
        ("张三(已故)", "张三", "note"), ("张*明", "张大明", "mask"), ("张**", "张大明", "mask"),
        ("张?明", "张䶮明", "placeholder"), ("ZHANG SAN", "张三", "latin"), ("王龙天", "王䶮", "parts"),
        ("王龙+天", "王䶮", "parts"), ("张?明", "李大明", "fuzzy"), ("张**", "张大", "fuzzy"),
        ("??", "张三", "fuzzy"), ("张三", "张三", "same"), ("张晓明", "张小明", "sound"),
    ]  # fmt: skip
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    ak, ap = many_name_keys(a)
    bk, bp = many_name_keys(b)
    scores, evidence = name_agreement(ak, ap, bk, bp, a, b, understood=0.9, parts={"䶮": ["龙天"]})
    assert list(evidence) == [p[2] for p in pairs]
    for (x, y, ev), sc in zip(pairs, scores, strict=True):
        if ev in ("mask", "placeholder", "latin", "parts"):
            assert sc == 0.9, (x, y)
        if ev == "fuzzy":
            assert sc < 0.8, (x, y)  # a placeholder never makes different names agree


def test_the_fuzzy_pinyin_of_a_character_needs_no_phrase_dictionary():
    """names keys read pypinyin without its phrase dictionary (PYPINYIN_NO_PHRASES): one character's
    reading is the same either way (checked in a process that loads the dictionary)."""
    import json
    import subprocess
    import sys

    from kuomian.core.names import _char_keys, fuzzy_syllable

    sample = "".join(
        _char_keys(c)[0] for c in "张王李赵单乐行长重曾解朴仇区查盖种都和藏参沈石䶮喆磊晓小玲琳陈於乾"
    )
    code = (
        "import json,sys\nfrom pypinyin import lazy_pinyin, Style\n"
        "print(json.dumps([lazy_pinyin(c, style=Style.NORMAL)[0] for c in sys.argv[1]]))"
    )
    with_phrases = json.loads(
        subprocess.run([sys.executable, "-c", code, sample], capture_output=True, text=True, check=True,
                       env={k: v for k, v in __import__("os").environ.items() if k != "PYPINYIN_NO_PHRASES"}).stdout
    )  # fmt: skip
    assert [_char_keys(c)[1] for c in sample] == [fuzzy_syllable(p) for p in with_phrases]
