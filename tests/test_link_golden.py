"""Golden pairs for the linker (rules/matching.yaml, pipeline/stages/link/): must link, must not link, must go to review.

The fixture is one small town in ``tests/golden/link/``:

* ``户籍人口.csv`` — the household register (the population): twins in one household, two 张伟 in
  different streets, a father and son, a household with two 赵丽, and one person per kind of dirt;
* ``参保信息.csv`` (enrollment, adds nobody), ``低保对象.csv`` (lowincome), ``平台从业人员.csv``
  (platform, with 出生日期) and ``特殊人员名单.csv`` (roster) — one row per kind of dirt;
* ``expected.csv`` — one line per row of every file (``row`` as Excel shows it, header = 1):
  ``id_kind`` (what the raw ID standardises to: checks the fixture itself), ``outcome``, ``person``
  (the person the row must be linked to, blank when none), ``match_rule``, ``candidates`` (for review
  rows: the persons review.xlsx must propose, ``|``-separated), ``xfail`` (a known linkage bug: the
  line is a strict xfail with that reason) and a free ``note``.

IDs are placeholders ``{ID:<17 digits>}``; the test appends the GB 11643 check digit (``make_id``)
and then applies the dirt written after ``|``:

================= ==============================================================
``lower``         the check character ``X`` as ``x`` (the ID must end in X)
``fullwidth``     every character full-width (５３０１…)
``spaced``        groups of 6, 8 and 4 separated by spaces
``tabs``          a tab before and after
``zerowidth``     a BOM in front and a zero-width space after the address code
``old15``         the old 15-digit form (no century, no check digit)
``sub:P:D``       character P (1-based) typed as D — the check digit is not recomputed
``swap:P``        characters P and P+1 swapped
``excel000``      an Excel number exported as text: the first 15 digits, then ``000``
``excel000round`` the same, Excel having rounded the 15th digit up (the 16th was 5 or more)
``xtimes``        the check character ``X`` typed as the multiplication sign ``×``
``xcyr``          … as the Cyrillic capital ``Х``
``xgreek``        … as the Greek small ``χ``
``ofor0:P``       character P (a 0) typed as the letter ``O``
``lfor1:P``       character P (a 1) typed as the letter ``l``
================= ==============================================================

Other dirt is written literally (``'`` in front, quotes, ``5.30181E+17``, names as typed).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kuomian.commands.run import refresh
from kuomian.core.ids import person_refs, standardise_id
from tests.conftest import make_id

GOLDEN = Path(__file__).parent / "golden" / "link"
AS_OF = date(2026, 3, 1)
PLACEHOLDER = re.compile(r"\{ID:([0-9]{17})((?:\|[a-z0-9:]+)*)\}")
OUTCOMES = {"linked", "new_person", "review", "unmatched", "quarantined", "duplicate"}
EXTRACTS = [
    "户籍人口.csv",
    "参保信息.csv",
    "参保信息_企业职工.csv",
    "低保对象.csv",
    "平台从业人员.csv",
    "特殊人员名单.csv",
]
FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def dirty_id(prefix17: str, ops: str) -> str:
    """The ID of ``{ID:<prefix17>|op|op…}``: make_id, then each op in order."""
    s = make_id(prefix17)
    for op in filter(None, ops.split("|")):
        name, *args = op.split(":")
        if name == "lower":
            assert s.endswith("X"), f"{prefix17}: |lower needs an ID ending in X"
            s = s.lower()
        elif name == "fullwidth":
            s = s.translate(FULLWIDTH)
        elif name == "spaced":
            s = f"{s[:6]} {s[6:14]} {s[14:]}"
        elif name == "tabs":
            s = f"\t{s}\t"
        elif name == "zerowidth":
            s = f"\ufeff{s[:6]}\u200b{s[6:]}"
        elif name == "old15":
            assert s[6:8] == "19", f"{prefix17}: only IDs of people born 19xx had 15 digits"
            s = s[:6] + s[8:17]
        elif name == "sub":
            pos, digit = int(args[0]), args[1]
            assert s[pos - 1] != digit, f"{prefix17}|{op}: not a change"
            s = s[: pos - 1] + digit + s[pos:]
        elif name == "swap":
            pos = int(args[0])
            assert s[pos - 1] != s[pos], f"{prefix17}|{op}: swapping equal digits changes nothing"
            s = s[: pos - 1] + s[pos] + s[pos - 1] + s[pos + 1 :]
        elif name in ("xtimes", "xcyr", "xgreek"):
            assert s.endswith("X"), f"{prefix17}: |{name} needs an ID ending in X"
            s = s[:17] + {"xtimes": "\u00d7", "xcyr": "\u0425", "xgreek": "\u03c7"}[name]
        elif name in ("ofor0", "lfor1"):
            pos = int(args[0])
            digit, letter = ("0", "O") if name == "ofor0" else ("1", "l")
            assert s[pos - 1] == digit, f"{prefix17}|{op}: character {pos} is not {digit}"
            s = s[: pos - 1] + letter + s[pos:]
        elif name == "excel000":
            s = s[:15] + "000"
        elif name == "excel000round":
            assert s[15] >= "5", f"{prefix17}: |excel000round needs a 16th digit of 5 or more"
            s = str(int(s[:15]) + 1) + "000"
        else:
            raise AssertionError(f"unknown ID dirt {op!r}")
    return s


def fill_ids(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: dirty_id(m.group(1), m.group(2)), text)


def person_id(token: str) -> str:
    """The person a plain ``{ID:…}`` placeholder in expected.csv names: the canonical ID; for a
    holder of a number the household gives to several people (重号), ``{ID:…}#name``."""
    token, _, holder = token.partition("#")
    m = PLACEHOLDER.fullmatch(token)
    assert m and not m.group(2), f"expected.csv: a person is a plain {{ID:<17 digits>}}, not {token!r}"
    return make_id(m.group(1)) + (f"#{holder}" if holder else "")


def write_sources(folder: Path) -> Path:
    """The fixture's extracts with the placeholders replaced, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in EXTRACTS:
        (folder / name).write_text(fill_ids((GOLDEN / name).read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def read_expected() -> list[dict[str, str]]:
    with open(GOLDEN / "expected.csv", encoding="utf-8", newline="") as fh:
        out = []
        for n, row in enumerate(csv.DictReader(fh), start=2):
            assert None not in row, f"expected.csv line {n}: too many values (a comma in a note?)"
            row = {k: (v or "").strip() for k, v in row.items()}
            row["line"] = str(n)
            out.append(row)
    return out


EXPECTED = read_expected()


# ---------------------------------------------------------------- one refresh for the module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Refresh the fixture once (own state folder, so its own person_key secret)."""
    root = tmp_path_factory.mktemp("link_golden")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))
        mp.delenv("KUOMIAN_KEY_FILE", raising=False)
        mp.delenv("KUOMIAN_FAIL_IN_STAGE", raising=False)
        sources = write_sources(root / "sources")
        refresh(sources, root / "out", as_of=AS_OF)
    out = root / "out"
    persons = pl.read_parquet(out / "persons.parquet")
    # who each person is: the ID, or for a holder of a shared number (重号) the ID + '#' + name
    refs = person_refs(persons)
    assert refs.n_unique() == persons.height
    id_of_key = dict(zip(persons["person_key"], refs, strict=True))
    name_of_id = dict(zip(refs, persons["name"], strict=True))
    links = pl.read_parquet(out / "links.parquet")
    by_row = {(r["file"], r["row"]): r for r in links.iter_rows(named=True)}
    review = read_review(out / "review.xlsx")
    return {
        "out": out,
        "sources": sources,
        "links": links,
        "by_row": by_row,
        "id_of_key": id_of_key,
        "name_of_id": name_of_id,
        "review": review,
    }


def read_review(path: Path) -> list[dict]:
    """review.xlsx as dicts keyed by its Chinese headers."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    header = list(next(it))
    out = [dict(zip(header, r, strict=False)) for r in it if any(v not in (None, "") for v in r)]
    wb.close()
    return out


def review_candidates(run, file: str, row: int) -> set[str]:
    return {
        run["id_of_key"].get(r["候选人编号"], "?" + str(r["候选人编号"]))
        for r in run["review"]
        if r["文件"] == file and int(r["行号"]) == row
    }


def shown(run, pid: str | None) -> str:
    if not pid:
        return "nobody"
    return f"{pid[:6]}…{pid[13:18]} {run['name_of_id'].get(pid, '?')}"


def params(scope: str, rows=None):
    """One param per expected.csv line. ``xfail`` applies to the whole line, or, written
    ``candidates: <reason>``, only to the review candidates."""
    out = []
    for e in rows if rows is not None else EXPECTED:
        reason = e["xfail"]
        if reason.startswith("candidates:"):
            reason = reason.removeprefix("candidates:").strip() if scope == "candidates" else ""
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(e, id=f"{e['file'].removesuffix('.csv')}:{e['row']}", marks=marks))
    return out


def resolved(run, exp) -> tuple[dict, str | None, str]:
    key = (exp["file"], int(exp["row"]))
    got = run["by_row"].get(key)
    assert got is not None, f"{key} is not in links.parquet"
    pid = run["id_of_key"].get(got["person_key"]) if got["person_key"] else None
    context = (
        f"{exp['file']} row {exp['row']} ({exp['note']}): got outcome={got['outcome']} "
        f"person={shown(run, pid)} rule={got['match_rule']} reason={got['reason']}"
    )
    return got, pid, context


@pytest.mark.parametrize("exp", params("row"))
def test_row_resolves_as_expected(run, exp):
    """Outcome, person and rule of one extract row."""
    got, pid, context = resolved(run, exp)
    want_pid = person_id(exp["person"]) if exp["person"] else None
    assert got["outcome"] == exp["outcome"], context
    assert pid == want_pid, f"{context}; expected person {shown(run, want_pid)}"
    assert (got["match_rule"] or "") == exp["match_rule"], context
    if exp["outcome"] in ("linked", "new_person"):
        assert got["confidence"] is not None and 0 < got["confidence"] <= 1, context
    else:
        assert got["person_key"] is None and got["confidence"] is None, context
    if exp["outcome"] != "review":
        assert not exp["candidates"], f"expected.csv line {exp['line']}: candidates only for review rows"
        assert not review_candidates(run, exp["file"], int(exp["row"])), (
            f"{context}; but review.xlsx lists it"
        )


@pytest.mark.parametrize("exp", params("candidates", [e for e in EXPECTED if e["outcome"] == "review"]))
def test_review_proposes_the_right_candidates(run, exp):
    """A review row's lines in review.xlsx propose exactly the expected persons."""
    got, _, context = resolved(run, exp)
    assert got["outcome"] == "review", context
    candidates = review_candidates(run, exp["file"], int(exp["row"]))
    want = {person_id(t) for t in exp["candidates"].split("|")}
    assert candidates == want, (
        f"{context}; review.xlsx proposes {sorted(shown(run, p) for p in candidates)}, "
        f"expected {sorted(shown(run, p) for p in want)}"
    )


def test_every_row_is_annotated(run):
    """expected.csv covers every row the refresh read from the fixture, and nothing else."""
    expected = Counter((e["file"], int(e["row"])) for e in EXPECTED)
    assert max(expected.values()) == 1, [k for k, n in expected.items() if n > 1]
    assert set(run["by_row"]) == set(expected)
    assert run["links"].height == len(expected)


def test_reconciliation_balances(run):
    """Per file: rows read = linked + new persons + duplicates + quarantined + review + unmatched."""
    with open(run["out"] / "reconciliation.csv", encoding="utf-8-sig", newline="") as fh:
        recon = list(csv.DictReader(fh))
    assert sorted(r["文件"] for r in recon) == sorted(EXTRACTS)
    lines_per_file = {
        name: sum(1 for line in (GOLDEN / name).read_text(encoding="utf-8").splitlines()[1:] if line.strip())
        for name in EXTRACTS
    }
    outcome_cols = {"linked": "已匹配", "new_person": "新增人员", "duplicate": "重复行", "quarantined": "隔离",
                    "review": "待复核", "unmatched": "未匹配"}  # fmt: skip
    got_links = Counter((r["file"], r["outcome"]) for r in run["links"].iter_rows(named=True))
    for rec in recon:
        f = rec["文件"]
        assert rec["是否平衡"].lower() == "true", rec
        assert int(rec["读取行数"]) == lines_per_file[f], rec
        assert sum(int(rec[c]) for c in outcome_cols.values()) == lines_per_file[f], rec
        for outcome, col in outcome_cols.items():
            assert int(rec[col]) == got_links[(f, outcome)], (f, outcome, rec)
    # and the counts are the ones expected.csv predicts (a known bug's line counts as it resolves today)
    want = Counter()
    for e in EXPECTED:
        whole_line_bug = e["xfail"] and not e["xfail"].startswith("candidates:")
        outcome = run["by_row"][(e["file"], int(e["row"]))]["outcome"] if whole_line_bug else e["outcome"]
        want[(e["file"], outcome)] += 1
    assert want == got_links


def test_review_xlsx_masks_every_id(run):
    from tests.conftest import assert_no_full_id

    masked = re.compile(r"^[0-9]{6}\*+[0-9X]{4}$|^\*+$")
    for r in run["review"]:
        assert_no_full_id(" | ".join("" if v is None else str(v) for v in r.values()))
        for col in ("记录身份证号", "候选人身份证号"):
            if r[col]:
                assert masked.match(str(r[col])), (col, r[col])


# ---------------------------------------------------------------- the fixture itself


def test_fixture_ids_are_what_the_notes_say():
    """Household IDs are valid; each extract row's raw ID standardises to the annotated id_kind."""
    rows = {}
    for name in EXTRACTS:
        text = fill_ids((GOLDEN / name).read_text(encoding="utf-8"))
        reader = csv.reader(text.splitlines())
        header = next(reader)
        col = next(i for i, h in enumerate(header) if h in ("公民身份号码", "身份证号"))
        for n, rec in enumerate(reader, start=2):
            rows[(name, n)] = rec[col]
    for e in EXPECTED:
        raw = rows[(e["file"], int(e["row"]))]
        assert standardise_id(raw).kind == e["id_kind"], f"{e['file']} row {e['row']}: {e['note']}"
        if e["outcome"] not in OUTCOMES:
            raise AssertionError(f"expected.csv line {e['line']}: unknown outcome {e['outcome']!r}")
        if e["person"]:
            person_id(e["person"])
    household = fill_ids((GOLDEN / "户籍人口.csv").read_text(encoding="utf-8"))
    for prefix in PLACEHOLDER.findall((GOLDEN / "户籍人口.csv").read_text(encoding="utf-8")):
        assert standardise_id(make_id(prefix[0])).kind == "valid"
    assert "{ID:" not in household


def test_fixture_hard_negatives_are_hard():
    """The traps are real: twins share household, birth date and 15 digits; the typos sit one edit from a twin."""
    twin_a, twin_b = make_id("53018120010618011"), make_id("53018120010618013")
    assert twin_a[:15] == twin_b[:15] and twin_a[6:14] == twin_b[6:14]

    def hamming(a, b):
        return sum(x != y for x, y in zip(a, b, strict=True))

    both = dirty_id("53018120010618011", "|sub:17:3")
    assert hamming(both, twin_a) == 1 and hamming(both, twin_b) == 1
    only_b = dirty_id("53018120010618013", "|sub:18:0")
    assert hamming(only_b, twin_b) == 1 and hamming(only_b, twin_a) == 2
    # the 15-digit ID of 马超 upgrades to 周敏's ID
    assert standardise_id(dirty_id("53018119780214022", "|old15")).canonical == make_id("53018119780214022")
    # two 张伟 born the same day
    zw = [make_id("53018119920315051"), make_id("53018119920315273")]
    assert zw[0][6:14] == zw[1][6:14]


# ---------------------------------------------------------------- no silent listing (issue 20)


def test_nobody_with_an_unaccepted_enrolment_row_is_listed_without_a_flag(run):
    """A person an enrolment row could be (in review with them as a candidate, unmatched one
    character from their ID) is flagged needs_review with the row as evidence, IDs masked; the
    hand-off shows it. Persons no such row concerns carry no evidence."""
    from tests.conftest import assert_no_full_id

    persons = pl.read_parquet(run["out"] / "persons.parquet")
    by_id = {r["id_number"]: r for r in persons.iter_rows(named=True)}
    flagged = {
        "53018119850620022": "第73行",  # 黄□明: 黄䶮* (both names hold a placeholder), unmatched
        "53018119670202011": "第60行",  # 周国强: his ID with his granddaughter's name, in review
        "53018119800505011": "第61行",  # 陈刚 and 林伟: one number, reviewed against both
        "53018119800505031": "第61行",
        "53018119850312022": "第69行",  # 孙丽: a number with her code and sequence, a date too far off
        # 闫超: 5.30121E+17 + YANXIAO (a former name the household does not list) in his street and
        # community, where he is the only one of that code and surname (yan, not 杨 yang)
        "53012119810807789": "第83行",
        # 刘琳: her number with two digits swapped ends in 000, so it is read as Excel's 15 digits
        "53012119801120900": "第86行",
    }
    for prefix, row in flagged.items():
        p = by_id[make_id(prefix)]
        assert p["needs_review"], p["name"]
        assert p["review_evidence"].startswith("可能已参保: 参保信息.csv " + row), p["review_evidence"]
        assert_no_full_id(p["review_evidence"])
    # the hand-off's 复核提示 is in Chinese (core/labels.py REVIEW_REASON_LABELS)
    assert "可能是更正过的身份证号" in by_id[make_id("53018119850312022")]["review_evidence"]
    assert "可能重号" in by_id[make_id("53018119800505031")]["review_evidence"]
    assert (
        "残存的身份证号数字、街道、社区和姓氏只符合此人"
        in by_id[make_id("53012119810807789")]["review_evidence"]
    )
    # YANGMEI fits two 杨 of that code, street and community: neither is flagged for it
    for prefix in ("53012119850505022", "53012119870707022"):
        assert by_id[make_id(prefix)]["review_evidence"] is None, by_id[make_id(prefix)]["name"]
    # enrolled through a placeholder, a mask, a note or pinyin: nothing to review
    for prefix in ("53018119800115011", "53018119901010011", "53018119830303022", "53018119750606011"):
        p = by_id[make_id(prefix)]
        assert not p["needs_review"] and p["review_evidence"] is None, p["name"]
        assert p["status"] == "enrolled_resident", p["name"]
    # the hand-off of 连然街道 shows the evidence to the visitor
    handoff = (run["out"] / "handoff" / "530181001000_连然街道.csv").read_text(encoding="utf-8-sig")
    header = handoff.splitlines()[0].split(",")
    assert "复核提示" in header
    lines = [line for line in handoff.splitlines() if "周国强" in line]
    assert len(lines) == 1 and "可能已参保: 参保信息.csv 第60行" in lines[0]
    assert_no_full_id(handoff)
    # report.html counts them per street
    html = (run["out"] / "report.html").read_text("utf-8")
    section = html.split("实名库中可能已参保、待核实的人员", 1)[1].split("</table>", 1)[0]
    registry = persons.filter(
        pl.col("review_evidence").is_not_null() & pl.col("status").is_in(["unenrolled", "resident_upgradable"])
        & (pl.col("street_name") == "连然街道")
    ).height  # fmt: skip
    assert registry >= 4 and f"<td>连然街道</td><td>{registry}</td>" in section.replace(" ", "")


def test_two_people_one_number_and_a_foreign_resident(run):
    """The foreigners' permanent residence number (first digit 9) adds a person; the granddaughter
    is not the grandfather's enrolment (relative_id needs an adult for an adults-only source)."""
    persons = pl.read_parquet(run["out"] / "persons.parquet")
    ids = set(persons["id_number"].to_list())
    assert make_id("95315619880808011") in ids
    assert make_id("53018119830330022") not in ids  # 王芳's former number adds nobody
    assert make_id("53018119850321022") not in ids  # nor 孙丽's number before the correction
    girl = persons.filter(pl.col("id_number") == make_id("53018120200808022")).row(0, named=True)
    assert "enrollment" not in girl["sources"]
    # two people, one number inside the household (林伟/孔亮, 张敏/张强): each holder is a person
    # of their own, with the real ID as id_number and a person_key of their own; both are flagged
    # shared_id and needs_review; the manifest and the report count numbers and persons
    shared = persons.filter(pl.col("shared_id"))
    assert sorted(shared["name"].to_list()) == sorted(["林伟", "孔亮", "张敏", "张强"])
    assert shared["needs_review"].all() and shared["review_evidence"].is_not_null().all()
    assert shared["person_key"].n_unique() == 4 and shared["id_number"].n_unique() == 2
    for name, prefix in (
        ("林伟", "53018119800505031"),
        ("孔亮", "53018119800505031"),
        ("张强", "53018119910909022"),
    ):
        one = shared.filter(pl.col("name") == name).row(0, named=True)
        assert one["id_number"] == make_id(prefix), name
    assert persons.filter(~pl.col("shared_id"))["id_number"].is_unique().all()
    row = run["by_row"][("户籍人口.csv", 48)]
    assert row["outcome"] == "new_person" and row["reason"] is None
    assert run["by_row"][("低保对象.csv", 15)]["reason"].startswith("the ID number belongs to several people")
    import json

    manifest = json.loads((run["out"] / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["shared_id_numbers"] == 2
    assert manifest["counts"]["shared_id_persons"] == 4
    html = (run["out"] / "report.html").read_text("utf-8")
    assert "户籍重号(两人同号)" in html and "重号持号人" in html
    # the hand-off shows both holders, each with their own 编号 and the masked ID
    handoff = (run["out"] / "handoff" / "530181001000_连然街道.csv").read_text(encoding="utf-8-sig")
    for name in ("林伟", "孔亮", "张敏", "张强"):
        p = shared.filter(pl.col("name") == name).row(0, named=True)
        if p["status"] in ("unenrolled", "resident_upgradable"):
            line = next(line for line in handoff.splitlines() if p["person_key"] in line)
            assert name in line and p["id_number"][:6] + "********" + p["id_number"][-4:] in line
