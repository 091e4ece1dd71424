"""The guards against what nobody foresaw (commands/guards.py; spec outputs.md), on the second
year of one generated world (2,000 people) refreshed with ``--previous`` the first year's run.

Year 2 as generated (births, deaths, moves) and year 2 with 3 % of every file's rows gone must
publish; a blank 社区 column, a street's household file gone, last year's files read too must
stop the run with one line naming the column or street, and publish in red with the flag.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.guards import check_guards
from kuomian.commands.run import refresh, validate
from kuomian.core.config import streets
from kuomian.core.errors import KuomianError
from kuomian.core.ids import mask_id
from kuomian.synth import generate_years
from tests.conftest import assert_no_full_id

runner = CliRunner()
AS_OF = ["--as-of", "2027-03-01"]
COMMUNITY = ("社区", "村(社区)", "所属社区", "社区(村)")


@pytest.fixture(scope="module")
def years(tmp_path_factory):
    """Two years of one world; year 1 published (its manifest holds the guards' figures)."""
    root = tmp_path_factory.mktemp("guards")
    generate_years(root, people=2000, seed=5, years=2)
    from datetime import date

    refresh(root / "year1" / "sources", root / "out1", as_of=date(2026, 3, 1))
    return root


def _copy_year2(years: Path, tmp_path: Path) -> Path:
    src = tmp_path / "sources"
    shutil.copytree(years / "year2" / "sources", src)
    return src


def _refresh(src: Path, out: Path, years: Path, *flags: str):
    return runner.invoke(
        app,
        ["-q", "refresh", str(src), "--out", str(out), *AS_OF, "--previous", str(years / "out1"), *flags],
        color=True,
    )


def _read_csv(path: Path) -> tuple[list[list[str]], str]:
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return list(csv.reader(io.StringIO(data.decode(enc), newline=""))), enc
        except UnicodeDecodeError:
            continue
    raise AssertionError(path)


def _write_csv(path: Path, rows: list[list[str]], enc: str) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(enc))


def _household_csv(src: Path) -> Path:
    return next(p for p in sorted(src.glob("户籍人口_*.csv")))


def _street_of(path: Path) -> str:
    return path.stem.removeprefix("户籍人口_")


def test_year_two_as_generated_publishes_without_a_warning(years, tmp_path):
    src = _copy_year2(years, tmp_path)
    res = _refresh(src, tmp_path / "out", years)
    assert res.exit_code == 0, res.stderr
    assert "WARNING" not in res.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    assert manifest["guards"]["previous"] == "compared" and manifest["guards"]["accepted"] == []
    household = manifest["guards"]["figures"]["streets"]["household"]
    assert len(household) == 9 and all(v["fill"]["community"] > 0.9 for v in household.values())


def test_three_percent_of_rows_gone_everywhere_publishes(years, tmp_path):
    src = _copy_year2(years, tmp_path)
    rng = random.Random(3)
    gone = kept = 0
    for p in sorted(src.iterdir()):
        if p.suffix == ".csv":
            rows, enc = _read_csv(p)
            body = [r for r in rows[1:] if rng.random() >= 0.03]
            gone += len(rows) - 1 - len(body)
            kept += len(body)
            _write_csv(p, rows[:1] + body, enc)
        elif p.suffix == ".xlsx":
            wb = openpyxl.load_workbook(p)
            for ws in wb.worksheets:
                for r in range(ws.max_row, 1, -1):
                    if rng.random() < 0.03:
                        ws.delete_rows(r)
                        gone += 1
            wb.save(p)
        elif p.suffix == ".parquet":
            df = pl.read_parquet(p)
            mask = pl.Series([rng.random() >= 0.03 for _ in range(df.height)])
            gone += df.height - int(mask.sum())
            df.filter(mask).write_parquet(p)
    assert gone > 100 and gone < 0.05 * (gone + kept) * 2
    res = _refresh(src, tmp_path / "out", years)
    assert res.exit_code == 0, res.stderr
    assert "WARNING" not in res.stdout


def test_a_blank_community_column_stops_the_run_naming_the_column(years, tmp_path):
    src = _copy_year2(years, tmp_path)
    victim = _household_csv(src)
    rows, enc = _read_csv(victim)
    col = next(i for i, h in enumerate(rows[0]) if h.strip() in COMMUNITY)
    for r in rows[1:]:
        if len(r) > col:
            r[col] = ""
    _write_csv(victim, rows, enc)
    out = tmp_path / "out"
    res = _refresh(src, out, years)
    assert res.exit_code == 1 and not out.exists()
    msg = res.stderr.strip()
    assert msg.count("\n") == 0 and "Traceback" not in msg  # one line
    for word in (victim.name, "column", rows[0][col].strip(), "(community)", "filled in 0%", "normally 95%",
                 "Likely cause", "Remedy", "--accept-drift"):  # fmt: skip
        assert word in msg, (word, msg)
    assert_no_full_id(msg)
    # validate shows the same figure per file, and the finding
    v = runner.invoke(app, ["-q", "validate", str(src)])
    assert v.exit_code == 0, v.stderr
    line = next(ln for ln in v.stdout.splitlines() if ln.startswith(victim.name))
    after = v.stdout.split(line, 1)[1]
    assert "community 0%" in after.split("\n", 3)[1] or "community 0%" in after
    assert "WARNING" in v.stdout and victim.name in v.stdout.split("WARNING", 1)[1]
    # the flag publishes, and says it in red in the summary, the report and the manifest
    res = _refresh(src, out, years, "--accept-drift")
    assert res.exit_code == 0, res.stderr
    assert "\x1b[31m  WARNING: accepted (--accept-drift)" in res.stdout
    html = (out / "report.html").read_text("utf-8")
    assert "<p class='bad'>警告: accepted (--accept-drift)" in html and "全部平衡" not in html
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["settings"]["accept_drift"] is True
    assert any(victim.name in w and "(community)" in w for w in manifest["warnings"])
    assert len(manifest["guards"]["accepted"]) >= 1


def test_a_street_without_household_rows_stops_the_run_naming_the_street(years, tmp_path):
    src = _copy_year2(years, tmp_path)
    victim = _household_csv(src)
    street = _street_of(victim)
    victim.rename(src / f"{street}.bak")  # kept aside under a name the loader does not read
    out = tmp_path / "out"
    res = _refresh(src, out, years)
    assert res.exit_code == 1 and not out.exists()
    msg = res.stderr.strip()
    assert msg.count("\n") == 0
    for word in (f"{street}: no household rows", "is a file or sheet missing?", f"{street}.bak",
                 "--accept-missing-streets"):  # fmt: skip
        assert word in msg, (word, msg)
    # without --previous it stops too (the household source is big enough to judge)
    res = runner.invoke(app, ["-q", "refresh", str(src), "--out", str(out), *AS_OF])
    assert res.exit_code == 1 and f"{street}: no household rows" in res.stderr
    res = _refresh(src, out, years, "--accept-missing-streets")
    assert res.exit_code == 0, res.stderr
    assert (
        f"\x1b[31m  WARNING: accepted (--accept-missing-streets): {street}: no household rows" in res.stdout
    )
    html = (out / "report.html").read_text("utf-8")
    assert f"{street}: no household rows" in html and "全部平衡" not in html
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["settings"]["accept_missing_streets"] is True


def test_last_years_files_read_too_stop_the_run(years, tmp_path):
    """A population far beyond the previous run's (last year's household files left beside this
    year's): the run stops naming the source, the figure and the likely cause."""
    src = _copy_year2(years, tmp_path)
    for p in sorted((years / "year1" / "sources").glob("户籍人口_*")):
        shutil.copy(p, src / f"{p.stem}_2025{p.suffix}")
    res = _refresh(src, tmp_path / "out", years)
    assert res.exit_code == 1
    msg = res.stderr
    for word in ("household (户籍人口)", "times the previous run's", "last year's files read too?",
                 "--accept-drift"):  # fmt: skip
        assert word in msg, (word, msg)
    res = _refresh(src, tmp_path / "out", years, "--accept-drift")
    assert res.exit_code == 0, res.stderr


def test_a_streets_rows_far_below_the_previous_runs_stop_the_run(years, tmp_path):
    """The enrolment rows of one street gone (as when its sheet or file is missing)."""
    src = _copy_year2(years, tmp_path)
    lr, sr = validate(src)
    streets_rows = {code: n for (s, code), n in sr.street_rows.items() if s == "enrollment" and code}
    code = max(streets_rows, key=lambda c: streets_rows[c])
    name = next(s.name for s in streets() if s.code == code)
    # blank that street in every enrolment CSV: its rows now have no street
    for p in sorted(src.glob("参保信息_*.csv")):
        rows, enc = _read_csv(p)
        heads = [h.strip() for h in rows[0]]
        col = next(
            (i for i, h in enumerate(heads) if h in ("街道", "所属街道", "乡镇(街道)", "街道(乡镇)")), None
        )
        if col is None:
            continue
        _write_csv(p, rows[:1] + [r for r in rows[1:] if len(r) <= col or r[col].strip() != name], enc)
    with pytest.raises(KuomianError, match=f"{name}, enrollment .* a file or sheet missing"):
        refresh(src, tmp_path / "out", previous=years / "out1")
    # validate --previous shows the same finding, and publishes nothing
    v = runner.invoke(app, ["-q", "validate", str(src), "--previous", str(years / "out1")])
    assert v.exit_code == 0, v.stderr
    assert f"WARNING: {name}, enrollment (" in v.stdout and "a file or sheet missing?" in v.stdout


def test_an_older_previous_manifest_means_not_applicable_said_once(years, tmp_path):
    prev = tmp_path / "prev"
    shutil.copytree(years / "out1", prev)
    m = json.loads((prev / "manifest.json").read_text("utf-8"))
    del m["guards"]
    (prev / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), "utf-8")
    lr, sr = validate(years / "year2" / "sources")
    said: list[str] = []
    rep = check_guards(lr, sr, previous=prev, progress=said.append)
    assert rep.findings == [] and rep.previous_note and "predates" in rep.previous_note
    assert len([m for m in said if "not applicable" in m]) == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda g: g["figures"]["streets"]["household"].update({"530181001000": {"rows": "many", "fill": {}}}),
        lambda g: g["figures"]["streets"]["household"]["530181001000"]["fill"].update(
            {"community": float("nan")}
        ),
        lambda g: g["figures"]["streets"].update({"household": [1, 2]}),
    ],
    ids=["rows-text", "fill-nan", "street-list"],
)
def test_a_damaged_previous_manifest_is_not_applicable_never_a_traceback(years, tmp_path, damage):
    prev = tmp_path / "prev"
    shutil.copytree(years / "out1", prev)
    m = json.loads((prev / "manifest.json").read_text("utf-8"))
    damage(m["guards"])
    (prev / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), "utf-8")
    lr, sr = validate(years / "year2" / "sources")
    rep = check_guards(lr, sr, previous=prev)
    assert rep.findings == [] and rep.previous_note and "damaged" in rep.previous_note


def test_a_sheet_named_by_an_id_number_is_masked_in_the_finding(years, tmp_path):
    from tests.conftest import make_id

    src = _copy_year2(years, tmp_path)
    victim = _household_csv(src)
    rows, _ = _read_csv(victim)
    col = next(i for i, h in enumerate(rows[0]) if h.strip() in COMMUNITY)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = make_id("53018119900107003")
    for k, r in enumerate(rows):
        ws.append([None if (i == col and k > 0) else (v or None) for i, v in enumerate(r)])
    wb.save(src / f"{victim.stem}.xlsx")
    victim.unlink()
    res = _refresh(src, tmp_path / "out", years)
    assert res.exit_code == 1
    assert f"sheet '{mask_id(ws.title)}'" in res.stderr, res.stderr
    assert "(community)" in res.stderr
    assert_no_full_id(res.stderr)
    with pytest.raises(KuomianError) as e:
        refresh(src, tmp_path / "out2", previous=years / "out1")
    assert_no_full_id(str(e.value))


def test_a_backup_copy_in_a_subfolder_is_not_read(years, tmp_path):
    """Last year's household files kept in 2025备份/ inside SOURCES_DIR: listed as not read, the
    run publishes the same persons as without them, and no guard trips."""
    src = _copy_year2(years, tmp_path)
    res = _refresh(src, tmp_path / "plain", years)
    assert res.exit_code == 0, res.stderr
    backup = src / "2025备份"
    backup.mkdir()
    for p in sorted((years / "year1" / "sources").glob("户籍人口_*")):
        shutil.copy(p, backup / p.name)
    res = _refresh(src, tmp_path / "out", years)
    assert res.exit_code == 0, res.stderr
    assert "WARNING" not in res.stdout
    ids = [
        pl.read_parquet(d / "persons.parquet")["id_number"].sort()
        for d in (tmp_path / "plain", tmp_path / "out")
    ]
    assert ids[0].to_list() == ids[1].to_list()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    listed = [f for f in manifest["inputs"] if "2025备份" in f["file"]]
    assert listed and all(f["recognised_by"] == "not read" and not f["rows"] for f in listed)
