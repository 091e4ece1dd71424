"""The streets' year on a generated world: refresh → print-ready hand-offs → survey import →
``kuomian progress`` with a later enrolment extract → the bulletin.

Two years of one synthetic world (~3000 household people, default dirt). Year 1 is refreshed;
two streets' answers are imported; then two bulletins are made against year 1's registry:
mid-year with year 1's own enrolment files (nobody has enrolled since listing yet) and at the
end of the year with year 2's (the generator enrolled registry people, some in the employee
scheme, and switched resident contributors). Who enrolled, and in which scheme, is computed
independently from the aged world's clean enrolment facts. A person may differ only when one
of their enrolment rows was not resolved to them (review, quarantine, or another person): the
tool says so in progress_rows.parquet, and those are a handful.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.progress import OUTCOMES, counting_rules
from kuomian.stages.publish import REGISTRY_STATUSES
from kuomian.synth import generate_years
from kuomian.synth.age import age_world
from kuomian.synth.world import _Gen
from tests.conftest import assert_no_full_id

AS_OF = date(2026, 3, 1)
PEOPLE = 3000
runner = CliRunner()


def enrolment_files(year_dir: Path) -> list[Path]:
    files = pl.read_csv(year_dir / "truth" / "files.csv", infer_schema=False)
    names = files.filter(pl.col("source") == "enrollment")["file"].to_list()
    return [year_dir / "sources" / n for n in sorted(names)]


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("streets_year")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))
        generate_years(root / "gen", people=PEOPLE, seed=1, as_of=AS_OF, years=2)
        reg = root / "run1"
        res = runner.invoke(
            app,
            ["-q", "refresh", str(root / "gen/year1/sources"), "--out", str(reg), "--as-of", "2026-03-01"],
        )
        assert res.exit_code == 0, res.stderr
        surveyed = import_answers(reg, root)
        q2 = runner.invoke(
            app,
            ["-q", "progress", str(reg), *map(str, enrolment_files(root / "gen/year1")),
             "--as-of", "2026-06-30", "--out", str(root / "q2")],
        )  # fmt: skip
        assert q2.exit_code == 0, q2.stderr
        q4 = runner.invoke(
            app,
            ["-q", "progress", str(reg), *map(str, enrolment_files(root / "gen/year2")),
             "--as-of", "2026-12-31", "--out", str(root / "q4")],
        )  # fmt: skip
        assert q4.exit_code == 0, q4.stderr
    return {"root": root, "reg": reg, "surveyed": surveyed, "q2": q2, "q4": q4}


def import_answers(reg: Path, root: Path) -> dict[str, str]:
    """Fill in two streets' hand-offs: every third person answered, one in seven only visited
    (a survey date); return person_key -> 'answered' | 'visited'."""
    out: dict[str, str] = {}
    files = sorted((reg / "handoff").glob("5301810*.csv"))[:2]
    filled = []
    for f in files:
        rows = list(csv.reader(io.StringIO(f.read_text("utf-8-sig"))))
        header, body = rows[0], rows[1:]
        for i, r in enumerate(body):
            if i % 3 == 0:
                r[header.index("参保意愿")] = "愿意参加居民养老"
                r[header.index("调查日期")] = "2026-05-10"
                out[r[0]] = "answered"
            elif i % 7 == 0:
                r[header.index("调查日期")] = "2026/5/11"
                out[r[0]] = "visited"
        dst = root / f"filled_{f.name}"
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([header, *body])
        dst.write_bytes(buf.getvalue().encode("gb18030"))
        filled.append(dst)
    res = runner.invoke(app, ["-q", "survey", "import", *map(str, filled), "--registry", str(reg)])
    assert res.exit_code == 0, res.stderr
    return out


def truth_enrolled(root: Path) -> dict[str, str | None]:
    """ID -> 'employee' / 'resident' (an enrolment fact of 参保缴费 or 待遇领取 in year 2), from the
    aged world itself (generate_years ages the same world the same way)."""
    g = _Gen(PEOPLE, 1, AS_OF)
    w = g.run()
    age_world(g, 2)
    rules = counting_rules()
    out: dict[str, str | None] = {}
    for p, scheme, status, *_ in w.enroll:
        if status not in rules["enrolled_statuses"]:
            continue
        pid = w.pid[p]
        if scheme in rules["employee_schemes"]:
            out[pid] = "employee"
        else:
            out.setdefault(pid, "resident")
    return out


def uncertain_keys(root: Path, bulletin: str, keys: dict[str, str]) -> set[str]:
    """Registry people one of whose year-2 enrolment rows the tool did not resolve to them."""
    truth = pl.read_parquet(root / "gen/year2/truth/rows.parquet").filter(pl.col("source") == "enrollment")
    got = pl.read_parquet(root / bulletin / "progress_rows.parquet")
    j = truth.join(got, on=["file", "row"], how="left")
    wrong = j.filter(
        pl.col("person_id").is_not_null()
        & pl.col("person_id").is_in(list(keys))
        & (pl.col("outcome") != "duplicate")
        & (
            pl.col("person_key").is_null()
            | (pl.col("person_key") != pl.col("person_id").replace_strict(keys, default=None))
        )
    )
    return {keys[i] for i in wrong["person_id"].to_list()}


def test_progress_counts_exactly_the_people_who_enrolled(year):
    root = year["root"]
    persons = pl.read_parquet(year["reg"] / "persons.parquet")
    registry = persons.filter(pl.col("status").is_in(REGISTRY_STATUSES))
    keys = dict(zip(persons["id_number"], persons["person_key"], strict=True))
    prog = pl.read_parquet(root / "q4" / "progress.parquet")
    # one row per registry person, nobody else
    assert prog.height == registry.height
    assert set(prog["person_key"]) == set(registry["person_key"])
    assert prog.columns == ["person_key", "street_code", "street_name", "community", "group", "status",
                            "enrolled", "scheme", "surveyed", "target_priority"]  # fmt: skip

    truth = truth_enrolled(root)
    want = {keys[i]: s for i, s in truth.items() if i in keys}
    uncertain = uncertain_keys(root, "q4", keys)
    assert len(uncertain) <= 0.02 * registry.height, len(uncertain)
    got = {k: (e, s) for k, e, s in prog.select("person_key", "enrolled", "scheme").iter_rows()}
    wrong = [k for k, (e, s) in got.items() if k not in uncertain and (e, s) != (k in want, want.get(k))]
    assert wrong == []
    # the generator did enrol people of every kind the bulletin counts
    listed = dict(zip(prog["person_key"], prog["status"], strict=True))
    new = Counter(want[k] for k in got if k in want and listed[k] == "unenrolled")
    switched = sum(1 for k in got if want.get(k) == "employee" and listed[k] == "resident_upgradable")
    assert new["employee"] > 5 and new["resident"] > 5 and switched > 5

    # the mid-year bulletin (year 1's own extract): nobody has enrolled since listing yet
    q2 = pl.read_parquet(root / "q2" / "progress.parquet")
    assert q2.filter(pl.col("status") == "unenrolled")["enrolled"].sum() == 0
    assert q2.filter(pl.col("scheme") == "employee").height == 0


def test_bulletin_figures_equal_the_progress_rows(year):
    root = year["root"]
    prog = pl.read_parquet(root / "q4" / "progress.parquet")
    new = (pl.col("status") == "unenrolled") & pl.col("enrolled")
    per_street = prog.group_by(pl.col("street_code").fill_null("")).agg(
        registry=pl.len(),
        enrolled=new.sum(),
        employee=(new & (pl.col("scheme") == "employee")).sum(),
        resident=(new & (pl.col("scheme") == "resident")).sum(),
        switched=((pl.col("status") == "resident_upgradable") & (pl.col("scheme") == "employee")).sum(),
        surveyed=pl.col("surveyed").sum(),
    )
    hist = pl.read_parquet(year["reg"] / "progress_history" / "2026-12-31.parquet")
    streets = hist.filter(pl.col("level") == "street").with_columns(pl.col("street_code").fill_null(""))
    j = per_street.join(streets, on="street_code", how="left", suffix="_b")
    for a, b in [("registry", "registry_b"), ("enrolled", "enrolled_b"), ("employee", "enrolled_employee"),
                 ("resident", "enrolled_resident"), ("switched", "switched_b"), ("surveyed", "surveyed_b")]:  # fmt: skip
        assert j[a].cast(pl.Int64).to_list() == j[b].cast(pl.Int64).to_list(), a
    # the workbook shows the same figures, street by street
    wb = openpyxl.load_workbook(root / "q4" / "bulletin.xlsx", read_only=True)
    ws = wb["街道通报"]
    rows = list(ws.iter_rows(values_only=True))
    head = list(rows[0])
    sheet = {r[head.index("街道")]: r for r in rows[1:]}
    for r in streets.iter_rows(named=True):
        s = sheet[r["street_name"]]
        assert s[head.index("实名库人数")] == r["registry"]
        assert s[head.index("新增参保(列入后)")] == r["enrolled"]
        assert s[head.index("其中职工养老")] == r["enrolled_employee"]
        assert s[head.index("居民转职工")] == r["switched"]
        assert s[head.index("已走访")] == r["surveyed"]
        assert s[head.index("待走访")] == r["registry"] - r["surveyed"]
    city = sheet["全市"]
    assert city[head.index("新增参保(列入后)")] == int(prog.filter(new).height)
    # default tasks: the gap to the target, and the bulletin says so
    assert all("默认" in v for v in streets["task_enrolment_basis"].drop_nulls())
    html = (root / "q4" / "bulletin.html").read_text("utf-8")
    assert "默认: 距" in html and "<svg" in html and "http" not in html.lower().replace("http-equiv", "")
    # the December bulletin shows both bulletins of the year side by side, and the change
    side = list(wb["全年对比"].iter_rows(values_only=True))[0]
    assert "2026-06-30 新增参保" in side and "2026-12-31 新增参保" in side
    total = hist.filter(pl.col("level") == "city").row(0, named=True)
    assert total["change_enrolled"] == total["enrolled"]  # nobody had enrolled at mid-year
    assert "2026-06-30" in year["q4"].stdout


def test_survey_progress_counts_the_imported_answers(year):
    root = year["root"]
    prog = pl.read_parquet(root / "q4" / "progress.parquet")
    assert set(prog.filter(pl.col("surveyed"))["person_key"]) == set(year["surveyed"])
    hist = pl.read_parquet(year["reg"] / "progress_history" / "2026-12-31.parquet")
    answered = sum(1 for v in year["surveyed"].values() if v == "answered")
    city = hist.filter(pl.col("level") == "city").row(0, named=True)
    assert city["surveyed"] == len(year["surveyed"]) and city["answered"] == answered
    assert city["left_to_visit"] == city["registry"] - len(year["surveyed"])
    comm = hist.filter(pl.col("level") == "community")
    assert comm["surveyed"].sum() == len(year["surveyed"]) and comm["registry"].sum() == city["registry"]


def test_every_extract_row_is_counted(year):
    root = year["root"]
    files = pl.read_csv(root / "gen/year2/truth/files.csv", infer_schema=False).filter(
        pl.col("source") == "enrollment"
    )
    recon = pl.read_csv(root / "q4" / "reconciliation.csv", infer_schema=False)
    recon = recon.rename({c: c.lstrip("\ufeff") for c in recon.columns})
    assert recon.height == files.height
    by_file = {r["文件"]: r for r in recon.iter_rows(named=True)}
    for f in files.iter_rows(named=True):
        r = by_file[f["file"]]
        assert int(r["读取行数"]) == int(f["rows"])
        assert int(r["读取行数"]) == sum(int(r[h]) for h in OUTCOMES.values())
        assert r["是否平衡"] == "true"
    rows = pl.read_parquet(root / "q4" / "progress_rows.parquet")
    assert rows.height == files["rows"].cast(pl.Int64).sum()
    # rows of people outside the registry and of outsiders are counted, not lost
    assert rows.filter(pl.col("outcome") == "not_registry").height > 100
    assert rows.filter(pl.col("outcome") == "unmatched").height > 0


def test_no_full_id_in_the_bulletin(year):
    root = year["root"]
    assert_no_full_id((root / "q4" / "bulletin.html").read_text("utf-8"))
    assert_no_full_id((root / "q4" / "reconciliation.csv").read_text("utf-8-sig"))
    with zipfile.ZipFile(root / "q4" / "bulletin.xlsx") as z:
        assert_no_full_id("".join(z.read(n).decode("utf-8") for n in z.namelist()))
    assert_no_full_id(year["q4"].stdout + year["q4"].stderr)
    assert "id_number" not in pl.read_parquet(root / "q4" / "progress.parquet").columns


def test_handoff_prints_a4_landscape_one_page_wide_with_the_header_on_every_page(year):
    reg = year["reg"]
    persons = pl.read_parquet(reg / "persons.parquet").filter(pl.col("status").is_in(REGISTRY_STATUSES))
    path = next(iter(sorted((reg / "handoff").glob("5301810*.xlsx"))))
    code = path.name.split("_")[0]
    street = persons.filter(pl.col("street_code") == code)
    wb = openpyxl.load_workbook(path)
    communities = street["community"].fill_null("未填社区").unique(maintain_order=True).to_list()
    # the street's full sheet first (what survey import reads), then one sheet per community
    assert wb.sheetnames[0] == "入户调查"
    assert sorted(wb.sheetnames[1:]) == sorted(communities)
    full = wb["入户调查"]
    assert full.max_row - 1 == street.height
    header = [c.value for c in full[1]]
    for name in wb.sheetnames:
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape"
        assert int(ws.page_setup.paperSize) == 9  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
        assert ws.print_title_rows == "$1:$1"  # the header row on every page
        assert ws.freeze_panes == "C2"
        assert [c.value for c in ws[1]] == header
        footer = ws.oddFooter
        assert footer.left.text == path.stem.split("_", 1)[1]
        assert footer.center.text == ("全部社区" if name == "入户调查" else name)
        assert "&P" in footer.right.text and "&N" in footer.right.text
        if name != "入户调查":
            ids = [r[0] for r in ws.iter_rows(min_row=2, values_only=True)]
            want = street.filter(pl.col("community").fill_null("未填社区") == name)["person_key"]
            assert sorted(ids) == sorted(want.to_list())
    # widths fit the Chinese text: a CJK character counts as two
    letters = {h: openpyxl.utils.get_column_letter(j + 1) for j, h in enumerate(header)}
    longest_name = max(len(n) for n in street["name"].to_list())
    assert full.column_dimensions[letters["姓名"]].width >= 2 * longest_name
    assert full.column_dimensions[letters["参保意愿"]].width >= 2 * len("愿意参加职工养老")
    assert full.column_dimensions[letters["编号"]].width >= 17


def _section(html: str, sid: str) -> str:
    start = html.index(f"<section id='{sid}'>")
    return html[start : html.index("</section>", start)]


def _card(html: str, label: str) -> str:
    m = re.search(r"<div class='card'><b>([^<]*)</b><span>" + re.escape(label) + "</span></div>", html)
    assert m, label
    return m.group(1)


def test_report_totals_agree_and_say_what_they_count(year):
    reg = year["reg"]
    html = (reg / "report.html").read_text("utf-8")
    persons = pl.read_parquet(reg / "persons.parquet")
    registry = persons.filter(pl.col("status").is_in(REGISTRY_STATUSES))
    local = registry.filter(pl.col("hukou_local")).height
    manifest = json.loads((reg / "manifest.json").read_text("utf-8"))
    assert int(_card(html, "实名库人数(全部)")) == registry.height == manifest["counts"]["registry"]
    assert _card(html, "其中户籍 / 非户籍") == f"{local} / {registry.height - local}"
    section = _section(html, "registry")
    # the chart by group counts everybody and sums to the card; the street chart says household only
    assert f"全市实名库人数(全部, 按重点群体): 合计 {registry.height}" in section
    bars = re.findall(r"<text x=\"[0-9.]+\" y=\"[0-9.]+\">(\d+)</text>", section.split("各街道实名库人数")[0])
    assert sum(int(b) for b in bars) == registry.height
    assert f"各街道实名库人数(户籍, 按重点群体堆叠): 合计 {local}" in section
    # printed on A4 landscape; a table running over a page repeats its header row
    assert "@page{size:A4 landscape" in html and "<thead>" in html and "@media print" in html


def test_report_shows_the_survey_progress_carried_to_the_next_refresh(year, tmp_path):
    root = year["root"]
    nxt = tmp_path / "run2"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUOMIAN_STATE", str(root / "state"))
        res = runner.invoke(
            app,
            ["-q", "refresh", str(root / "gen/year2/sources"), "--out", str(nxt), "--as-of", "2027-03-01",
             "--previous", str(year["reg"])],
        )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    persons = pl.read_parquet(nxt / "persons.parquet").filter(pl.col("status").is_in(REGISTRY_STATUSES))
    visited = persons.filter(
        pl.any_horizontal(
            [
                pl.col(c).is_not_null()
                for c in ("ability_to_pay", "willingness", "reason_not_enrolled", "surveyed_on")
            ]
        )  # fmt: skip
    ).height
    assert visited > 10  # answers of people still listed came forward
    answered = persons.filter(
        pl.any_horizontal(
            [pl.col(c).is_not_null() for c in ("ability_to_pay", "willingness", "reason_not_enrolled")]
        )
    ).height
    assert 0 < answered < visited
    section = _section((nxt / "report.html").read_text("utf-8"), "survey")
    row = re.search(
        r"<tr class='total'><td>全市</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", section
    )
    assert row, section[:500]
    assert [int(x) for x in row.groups()] == [
        persons.height,
        visited,
        answered,
        persons.height - visited,
    ]
    assert "各社区" in section
