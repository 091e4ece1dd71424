"""Fuzzing every standardiser with arbitrary text: arbitrary Unicode, control characters, very
long strings, and near-misses of IDs and dates. Nothing may crash; the scalar and column
implementations agree; standardising what was already standardised changes nothing.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kuomian.core import dates, ids, names
from kuomian.core.config import load_sources
from kuomian.readers import EXTRA_COL, NUMERIC_ID_COL
from kuomian.stages.standardise import IDENTITY_COLUMNS, StandardiseReport, standardise_frame
from schemas.standardised import validate_identity

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FRAMES = settings(FUZZ, max_examples=100)

# Characters real extracts are dirty with, and characters that trip up regexes and normalisers.
NASTY = list(
    "\x00\x01\x08\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85\xa0\u1680\u2028\u2029\u200b\u200c\u200d\u2060\ufeff\u3000"
    "\t\r\n '\"`‘’“”·•・.．･‧\u0301\u00a8ＸｘXx０５９Ee+-/:年月日合计总小无不详"
    "陳陈晓小玲琳於乾单曾䶮𠀀\U0010ffff\ud7ff"
)
DIGITS = st.sampled_from(list("0123456789"))
# codec utf-8: every character a file can hold (no lone surrogates; st.text() excludes them too)
CHAR = st.one_of(st.characters(codec="utf-8"), st.sampled_from(NASTY), DIGITS)


def _repeat(s: str, n: int) -> str:
    return s * n


ANY = st.one_of(
    st.text(),  # arbitrary Unicode (no surrogates), control characters included
    st.text(alphabet=CHAR, max_size=40),
    st.builds(_repeat, st.text(alphabet=CHAR, min_size=1, max_size=8), st.integers(100, 1500)),  # very long
    st.builds(
        lambda pre, core, post: pre + core + post,
        st.text(alphabet=st.sampled_from(NASTY), max_size=3),
        st.from_regex(r"[0-9]{14,19}[Xx]?|[0-9]\.[0-9]{0,16}E\+?[0-9]{1,3}", fullmatch=True),
        st.text(alphabet=st.sampled_from(NASTY), max_size=3),
    ),  # near-misses of IDs, Excel scientific notation
    st.from_regex(
        r"[0-9]{2,5}([-/.年][0-9]{1,3}[-/.月][0-9]{1,3}日?)?([T ][0-9:]{0,8})?|[0-9]{4,6}(\.[0-9]{1,3})?",
        fullmatch=True,
    ),  # near-misses of dates and Excel serial numbers
)
OPT = st.one_of(st.none(), ANY)


@st.composite
def valid_id(draw) -> str:
    d = draw(st.dates(date(1900, 1, 1), date(2025, 12, 31)))
    first17 = draw(st.sampled_from(["530181", "530123", "110105"])) + d.strftime("%Y%m%d")
    first17 += "".join(draw(st.lists(DIGITS, min_size=3, max_size=3)))
    return first17 + ids.check_digit(first17)


# ---------------------------------------------------------------- IDs


@FUZZ
@given(st.one_of(OPT, valid_id()), st.booleans())
@example("\x1f530181199005031235\u3000", False)
@example("５３０１８１１９９００５０３１２３５", False)
@example("1E+" + "9" * 400, False)
@example("5301811990050312350" * 100, True)
def test_standardise_id_never_crashes_and_is_idempotent(raw, numeric):
    r = ids.standardise_id(raw, numeric_cell=numeric)
    assert r.kind in ids.KINDS
    if r.kind in ("valid", "upgraded"):
        assert r.canonical is not None and len(r.canonical) == 18 and r.digits == r.canonical
        again = ids.standardise_id(r.canonical)
        assert again == ids.IdResult(r.canonical, "valid", r.canonical)
        assert ids.standardise_id(r.canonical.lower()) == again
    else:
        assert r.canonical is None
    if r.kind == "bad_check":
        assert ids.standardise_id(r.digits) == r
    masked = ids.mask_id(r.canonical)
    assert ids.redact_ids(masked) == masked


@FUZZ
@given(st.lists(st.tuples(st.one_of(OPT, valid_id()), st.booleans()), min_size=1, max_size=25))
def test_add_id_columns_agrees_with_the_scalar_and_is_idempotent(rows):
    df = pl.DataFrame(
        {"raw": [v for v, _ in rows], "num": [n for _, n in rows]},
        schema={"raw": pl.String, "num": pl.Boolean},
    )
    out = ids.add_id_columns(df, "raw", "num")
    got = list(zip(out["id_canonical"], out["id_kind"], out["id_digits"], strict=True))
    want = [tuple(vars(ids.standardise_id(v, numeric_cell=n)).values()) for v, n in rows]
    assert got == want
    again = ids.add_id_columns(out.select(raw=pl.col("id_canonical")), "raw")
    canon = out["id_canonical"].to_list()
    assert again["id_canonical"].to_list() == canon
    assert [k for k, c in zip(again["id_kind"], canon, strict=True) if c is not None] == ["valid"] * sum(
        c is not None for c in canon
    )


# ---------------------------------------------------------------- names


@FUZZ
@given(OPT)
@example("  阿依古丽•买买提\u3000")
@example("\x1c陳 小 玲\x1f")
@example("a\u00a8")
@example("·" * 1000)
def test_names_never_crash_and_are_idempotent(raw):
    shown = names.display_name(raw)
    assert isinstance(shown, str)
    assert names.display_name(shown) == shown
    key, py = names.name_keys(raw)
    assert isinstance(key, str) and isinstance(py, str)
    assert names.name_keys(key)[0] == key
    assert names.name_keys(shown)[0] == key  # the key ignores what the display form changes
    assert names.many_name_keys([raw]) == ([key], [py])


@FUZZ
@given(st.lists(OPT, min_size=1, max_size=25))
def test_name_columns_agree_with_the_scalar(raws):
    col = pl.Series("n", raws, dtype=pl.String)
    shown = pl.DataFrame({"n": col}).select(names.display_name_expr(pl.col("n"))).to_series().to_list()
    assert shown == [names.display_name(r) for r in raws]
    assert names.display_names(pl.Series("n", raws, dtype=pl.String)).to_list() == shown
    keys, sounds = names.many_name_keys(raws)
    assert list(zip(keys, sounds, strict=True)) == [names.name_keys(r) for r in raws]
    df = names.add_name_keys(pl.DataFrame({"name_raw": col}), "name_raw")
    assert df["name_raw"].to_list() == raws  # order and length kept
    assert df["name_key"].to_list() == keys


# ---------------------------------------------------------------- dates


@FUZZ
@given(st.one_of(OPT, st.dates().map(str), st.dates().map(lambda d: f"{d.year}年{d.month}月{d.day}日")))
@example("32996")
@example("0000-01-01")
@example("1990-05-03T00:00:00" + "\x1f" * 50)
@example("99999")
def test_parse_date_never_crashes_and_is_idempotent(raw):
    d = dates.parse_date(raw)
    assert d is None or isinstance(d, date)
    if d is not None:
        assert dates.parse_date(d.isoformat()) == d
        assert dates.parse_date(f"{d.year:04d}{d.month:02d}{d.day:02d}") == d


@FUZZ
@given(st.lists(st.one_of(OPT, st.dates().map(str)), min_size=1, max_size=25))
def test_date_expr_agrees_with_parse_date_and_is_idempotent(raws):
    df = pl.DataFrame({"d": pl.Series(raws, dtype=pl.String)})
    got = df.select(dates.date_expr(pl.col("d"))).to_series()
    assert got.to_list() == [dates.parse_date(r) for r in raws]
    again = pl.DataFrame({"d": got.dt.to_string("%Y-%m-%d")}).select(dates.date_expr(pl.col("d"))).to_series()
    assert again.to_list() == got.to_list()


# ---------------------------------------------------------------- whole frames

SOURCES = load_sources()


def load_frame(source, rows: list[dict], numeric: list[bool]) -> pl.DataFrame:
    """A frame shaped like the load stage's output for ``source`` (every field as text)."""
    n = len(rows)
    data = {
        "source": [source.name] * n,
        "file": ["fuzz.csv"] * n,
        "sheet": [""] * n,
        "row": list(range(2, n + 2)),
        **{f: [r[f] for r in rows] for f in source.fields},
        EXTRA_COL: [None] * n,
        NUMERIC_ID_COL: numeric,
    }
    schema = {
        "source": pl.String, "file": pl.String, "sheet": pl.String, "row": pl.Int64,
        **dict.fromkeys(source.fields, pl.String),
        EXTRA_COL: pl.String, NUMERIC_ID_COL: pl.Boolean,
    }  # fmt: skip
    return pl.DataFrame(data, schema=schema)


@st.composite
def source_frames(draw):
    source = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
    value = {f: (st.one_of(OPT, valid_id()) if f == "id_number" else OPT) for f in source.fields}
    rows = draw(st.lists(st.fixed_dictionaries(value), min_size=1, max_size=8))
    rows += draw(st.lists(st.sampled_from(rows), max_size=3))  # some exact duplicates
    numeric = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    return source, rows, numeric


def _standardise(df: pl.DataFrame, source) -> pl.DataFrame:
    report = StandardiseReport()
    out = standardise_frame(df, source, report)
    assert sum(report.rows.values()) == df.height
    return out


@FRAMES
@given(source_frames())
def test_standardise_frame_never_crashes_and_loses_nothing(case):
    source, rows, numeric = case
    df = load_frame(source, rows, numeric)
    out = _standardise(df, source)
    assert out.height == df.height
    assert out["row"].to_list() == df["row"].to_list()  # every row, in order
    assert set(out["row_state"]) <= {"ok", "duplicate", "quarantined"}
    assert ((out["row_state"] == "ok") == out["reason"].is_null()).all()
    # what the standardise stage checks before storing: must hold for any input (else exit 70)
    validate_identity(
        out.with_columns(row_id=pl.col("_seq").cast(pl.Int64)).select(IDENTITY_COLUMNS), source.name
    )
    # the columns agree with the scalar references
    assert out["name"].to_list() == [names.display_name(r["name"]) for r in rows]
    assert out["id_kind"].to_list() == [
        ids.standardise_id(r["id_number"], numeric_cell=n).kind for r, n in zip(rows, numeric, strict=True)
    ]
    for f in source.fields.values():
        if f.type == "date":  # the stated birth date (birth_date itself prefers the ID's)
            col = "birth_date_stated" if f.name == "birth_date" else f.name
            assert out[col].to_list() == [dates.parse_date(r[f.name]) for r in rows]
    # a duplicate is a copy (same raw values) of an earlier usable row
    first_ok: dict[tuple, int] = {}
    for i, (state, r) in enumerate(zip(out["row_state"], rows, strict=True)):
        key = tuple(r[f] for f in source.fields)
        if state == "ok":
            first_ok.setdefault(key, i)
        elif state == "duplicate":
            assert key in first_ok and first_ok[key] < i


@FRAMES
@given(source_frames())
def test_standardise_frame_is_idempotent(case):
    """Feeding the standardised ID, name, dates, categories and street back in gives the same."""
    source, rows, numeric = case
    out = _standardise(load_frame(source, rows, numeric), source)
    fields = source.fields.values()
    back = []
    for i, r in enumerate(rows):
        rec = dict(r)
        canon = out["id_canonical"][i]
        if canon is not None:
            rec["id_number"] = canon
        rec["name"] = out["name"][i]
        for f in fields:
            v = out["birth_date_stated" if f.name == "birth_date" else f.name][i]
            if f.type == "date" and v is not None:
                rec[f.name] = v.isoformat()
            elif f.type == "category":
                rec[f.name] = v
        if "street" in source.fields and out["street_code"][i] is not None:
            rec["street"] = out["street_code"][i]
        back.append(rec)
    flags = [n and out["id_canonical"][i] is None for i, n in enumerate(numeric)]
    again = _standardise(load_frame(source, back, flags), source)
    same = ["id_canonical", "name", "name_key", "name_py", "street_code", "sex", "birth_date"]
    same += [
        "birth_date_stated" if f.name == "birth_date" else f.name
        for f in fields
        if f.type in ("date", "category")
    ]
    for c in same:
        assert again[c].to_list() == out[c].to_list(), c


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_standardise_frame_on_extreme_rows(name):
    """Hand-picked extremes for every source: empty strings, only controls, 100 000 characters."""
    source = SOURCES[name]
    extremes = ["", " ", "\x00", "\x1c\x1d\x1e\x1f", "合计", "\ufeff" * 3, "𠀀" * 1000, "陳" * 100_000, None]
    rows = [dict.fromkeys(source.fields, v) for v in extremes]
    out = _standardise(load_frame(source, rows, [False] * len(rows)), source)
    assert out.height == len(rows)
    states = dict(zip(out["row"], out["reason"], strict=True))
    assert states[2] == "empty_row" and states[10] == "empty_row"  # "" and None
    assert states[6] == "total_row"
