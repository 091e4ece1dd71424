"""Reliability: the refresh killed or failing in every stage, broken and odd extracts, big and
repetitive extracts, two refreshes at once.

Every scenario runs the real console script (``kuomian refresh``) in a subprocess on a small
generated world (2000 people, heavy dirt) and checks what README.md "Guarantees" promises:

* the exit code, and on an error one clear line on stderr that names the file (and the row where
  there is one) and says what to do, never a traceback;
* a failed or killed run leaves the previous OUT_DIR byte-identical (or no OUT_DIR), and the next
  run succeeds and removes the leftovers;
* nothing lost: reconciliation.csv balances and its rows read equal the data rows written.

Faults go in through the refresh's stage hooks (pipeline/commands/run.py, ``StageHook``), installed
by the test-only launcher tests/fault_launcher.py before it calls the CLI: ``fail STAGE`` raises a
simulated "disk full" at the end of a stage; ``pause STAGE MARKER [GO]`` writes the marker there and
waits, so that the test can SIGKILL the process at a known point (or let it go on).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kuomian.stages.publish import clean_leftovers
from kuomian.synth import DirtConfig, generate, write_bad_files
from tests.conftest import ZHANG, make_id, write_tiny_sources

AS_OF = date(2026, 3, 1)
STAGES = ["load", "standardise", "link", "classify", "publish"]
OUT_FILES = {
    "persons.parquet", "links.parquet", "quarantine.parquet", "reconciliation.csv", "indicators.csv",
    "employers.csv", "review.xlsx", "report.html", "manifest.json",
}  # fmt: skip
OUTCOME_HEADERS = ["已匹配", "新增人员", "重复行", "隔离", "待复核", "未匹配"]
KUOMIAN = Path(sys.executable).with_name("kuomian")
CMD = [str(KUOMIAN)] if KUOMIAN.exists() else [sys.executable, "-m", "kuomian.cli"]
# A sentence telling the user what to do follows the description of the problem.
ACTION_RE = re.compile(r"[.:)] [A-Z][^.]{8,}")
LAUNCHER = [sys.executable, str(Path(__file__).with_name("fault_launcher.py"))]


# ---------------------------------------------------------------- helpers


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without any KUOMIAN_ hook (the state folder stays), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUOMIAN_") or k == "KUOMIAN_STATE"}
    env["POLARS_MAX_THREADS"] = "2"
    env.update(extra)
    return env


def kuomian(*args: str | Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CMD, *map(str, args)], capture_output=True, text=True, env=cli_env(**extra), timeout=timeout
    )


def refresh(
    sources: Path, out: Path, *more: str | Path, fail_in: str | None = None, **extra: str
) -> subprocess.CompletedProcess:
    """``kuomian -q refresh``; ``fail_in``: with a simulated "disk full" at the end of that stage.
    Heavy dirt trips the damage guard (tested in test_office_files): accepted here."""
    args = [
        "-q",
        "refresh",
        sources,
        "--out",
        out,
        "--as-of",
        AS_OF.isoformat(),
        "--accept-damaged-ids",
        *more,
    ]
    if fail_in is None:
        return kuomian(*args, **extra)
    return subprocess.run(
        [*LAUNCHER, "fail", fail_in, "--", *map(str, args)],
        capture_output=True, text=True, env=cli_env(**extra), timeout=300,
    )  # fmt: skip


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder below ``root`` (relative path -> content hash, mode): byte-for-byte identity."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        mode = p.stat().st_mode & 0o7777
        out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", mode)
    return out


def leftovers(out: Path) -> list[str]:
    """What a run left beside OUT_DIR other than OUT_DIR itself and its lock file."""
    return sorted(
        p.name
        for p in out.parent.iterdir()
        if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"
    )


def duckdb_spill_folders(root: Path) -> list[Path]:
    return [p for p in root.rglob(".duckdb_tmp")]


def assert_one_clear_line(res: subprocess.CompletedProcess, *fragments: str, code: int = 1) -> str:
    """Exit code, exactly one line on stderr (the run was -q), naming what is wrong and what to do."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: "), line
    assert ACTION_RE.search(line), f"no action in {line!r}"
    for f in fragments:
        assert f in line, (f, line)
    assert "published" not in res.stdout
    return line


def reconciliation(out: Path, *, read: bool = True) -> dict[str, dict[str, str]]:
    """The files read (``read``), or the files listed as not read with the reason (说明)."""
    with open(out / "reconciliation.csv", encoding="utf-8-sig", newline="") as fh:
        return {r["文件"]: r for r in csv.DictReader(fh) if (r["说明"] == "") == read}


def assert_balanced(out: Path, rows_written: dict[str, int]) -> dict[str, dict[str, str]]:
    """Every file balances, and the reader counted exactly the data rows that were written."""
    rec = reconciliation(out)
    assert set(rec) == set(rows_written), set(rec) ^ set(rows_written)
    for f, r in rec.items():
        assert r["是否平衡"] == "true", r
        assert int(r["读取行数"]) == rows_written[f], (f, r["读取行数"], rows_written[f])
        assert sum(int(r[h]) for h in OUTCOME_HEADERS) == rows_written[f], r
    links = pl.read_parquet(out / "links.parquet")
    assert links.height == sum(rows_written.values())
    return rec


def assert_complete(out: Path) -> None:
    """A published OUT_DIR: every output present and readable, counts as the manifest says."""
    names = {p.name for p in out.iterdir()}
    assert names >= OUT_FILES, OUT_FILES - names
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    persons = pl.read_parquet(out / "persons.parquet")
    assert persons.height == manifest["outputs"]["persons.parquet"] > 0
    assert pl.read_parquet(out / "links.parquet").height == manifest["outputs"]["links.parquet"]
    registry = [pl.read_parquet(p) for p in sorted((out / "registry").rglob("*.parquet"))]
    assert sum(r.height for r in registry) == manifest["outputs"]["registry/"] > 0
    handoffs = list((out / "handoff").glob("*.csv"))
    assert handoffs and all(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in handoffs)
    assert (out / "report.html").read_text("utf-8").rstrip().endswith("</html>")
    assert not duckdb_spill_folders(out)


def truth_rows(world: Path) -> dict[str, int]:
    with open(world / "truth" / "files.csv", encoding="utf-8", newline="") as fh:
        return {r["file"]: int(r["rows"]) for r in csv.DictReader(fh)}


@contextlib.contextmanager
def paused_refresh(sources: Path, out: Path, stage: str, tmp: Path, *more: str, go: Path | None = None):
    """A refresh started in a subprocess that is (certainly) paused at the end of ``stage``; it goes
    on when the file ``go`` is created (if given)."""
    marker = tmp / f"paused-{stage}"
    marker.unlink(missing_ok=True)
    args = ["refresh", str(sources), "--out", str(out), "--as-of", AS_OF.isoformat(), "--accept-damaged-ids",
            *more]  # fmt: skip
    fault = ["pause", stage, str(marker), *([str(go)] if go else []), "--"]
    with open(tmp / f"{stage}.stdout", "w") as so, open(tmp / f"{stage}.stderr", "w") as se:
        proc = subprocess.Popen([*LAUNCHER, *fault, *args], stdout=so, stderr=se, env=cli_env())
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"the refresh ended before pausing in {stage}: {(tmp / f'{stage}.stderr').read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the refresh did not reach the end of {stage} in time")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()  # only the process this test started, by its id
            proc.wait(30)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate(root, people=2000, seed=11, as_of=AS_OF, dirt=DirtConfig.heavy())
    return root


@pytest.fixture(scope="module")
def baseline(world, tmp_path_factory) -> Path:
    """A published OUT_DIR of the world: the 'previous' run that failures must not touch."""
    root = tmp_path_factory.mktemp("baseline")
    res = refresh(world / "sources", root / "out", KUOMIAN_STATE=str(root / "state"))
    assert res.returncode == 0, res.stderr
    assert_complete(root / "out")
    assert_balanced(root / "out", truth_rows(world))
    return root / "out"


@pytest.fixture
def sources(world, tmp_path) -> Path:
    """A private copy of the world's extracts, free to be damaged."""
    return Path(shutil.copytree(world / "sources", tmp_path / "sources"))


@pytest.fixture
def previous(baseline, tmp_path) -> tuple[Path, dict]:
    """A copy of the baseline OUT_DIR at tmp/out, with its digest."""
    out = Path(shutil.copytree(baseline, tmp_path / "out"))
    return out, tree_digest(out)


# ---------------------------------------------------------------- killed in every stage


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_in_each_stage_keeps_the_previous_out_dir(stage, world, sources, previous, tmp_path):
    out, before = previous
    persons_before = (out / "persons.parquet").read_bytes()
    with paused_refresh(sources, out, stage, tmp_path, "--force") as proc:
        staging = out.parent / f".out.staging-{proc.pid}"
        assert staging.is_dir(), "the run works in its staging folder beside OUT_DIR"
        assert staging.stat().st_mode & 0o777 == 0o700
        # DuckDB's spill folder (plaintext IDs) is private, inside the staging folder
        assert (staging / ".duckdb_tmp").stat().st_mode & 0o777 == 0o700
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    # Killed: OUT_DIR is the previous one, byte for byte; the partial run is only in its staging folder.
    assert (out / "persons.parquet").read_bytes() == persons_before
    assert tree_digest(out) == before
    assert leftovers(out) == [staging.name]

    res = refresh(sources, out, "--force")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert leftovers(out) == [], "the next run removes the staging leftovers"
    assert not duckdb_spill_folders(tmp_path), "no DuckDB spill folder (plaintext IDs) survives"
    assert_complete(out)
    assert_balanced(out, truth_rows(world))


def test_on_disk_database_stays_in_the_private_folder(world, tmp_path):
    """--on-disk (a prefecture's extracts): DuckDB's database file holds plaintext IDs, so it lives
    in the run's private spill folder, and neither a finished nor a killed run leaves it behind."""
    out = tmp_path / "out"
    with paused_refresh(world / "sources", out, "link", tmp_path, "--on-disk") as proc:
        staging = out.parent / f".out.staging-{proc.pid}"
        database = staging / ".duckdb_tmp" / "run.duckdb"
        assert database.is_file(), "the tables are in a file, in the spill folder"
        assert database.stat().st_size > 0
        assert (staging / ".duckdb_tmp").stat().st_mode & 0o777 == 0o700
        assert staging.stat().st_mode & 0o777 == 0o700
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    res = refresh(world / "sources", out, "--on-disk")
    assert res.returncode == 0, res.stderr
    assert not list(tmp_path.rglob("run.duckdb")), "no database file (plaintext IDs) survives"
    assert leftovers(out) == []
    assert json.loads((out / "manifest.json").read_text("utf-8"))["settings"]["on_disk"] is True
    assert_complete(out)
    assert_balanced(out, truth_rows(world))


def test_sigkill_with_no_previous_out_dir_leaves_none(world, sources, tmp_path):
    out = tmp_path / "out"
    with paused_refresh(sources, out, "publish", tmp_path) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert not out.exists(), "a killed first run leaves no OUT_DIR (not a partial one)"
    assert len(leftovers(out)) == 1

    # with progress lines
    res = kuomian("refresh", sources, "--out", out, "--as-of", AS_OF.isoformat(), "--accept-damaged-ids")
    assert res.returncode == 0, res.stderr
    assert "removed the leftovers of an interrupted run" in res.stderr
    assert leftovers(out) == []
    assert_complete(out)
    assert_balanced(out, truth_rows(world))


def test_interrupt_cleans_up_and_keeps_the_previous_out_dir(sources, previous, tmp_path):
    out, before = previous
    with paused_refresh(sources, out, "link", tmp_path, "--force") as proc:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 130
    err = (tmp_path / "link.stderr").read_text("utf-8")
    assert "interrupted: nothing was published" in err and "Traceback" not in err
    assert tree_digest(out) == before
    assert leftovers(out) == [], "an interrupted (not killed) run removes its own staging folder"


def test_a_run_killed_between_its_two_renames_is_repaired(tmp_path):
    # move_into_place writes .OUT_DIR.swap-<pid>, renames OUT_DIR to .OUT_DIR.old-<pid>, then the
    # staging folder to OUT_DIR; killed in between, there is no OUT_DIR: the next run puts the old
    # one back (the swap marker says the run died between the renames).
    out = tmp_path / "out"
    old = tmp_path / ".out.old-4242"
    (tmp_path / ".out.swap-4242").touch()
    old.mkdir()
    (old / "persons.parquet").write_bytes(b"the previous run")
    (old / "manifest.json").write_text('{"tool": "kuomian"}', "utf-8")  # only kuomian's own copy is restored
    (tmp_path / ".out.staging-4243").mkdir()
    clean_leftovers(out)
    assert (out / "persons.parquet").read_bytes() == b"the previous run"
    assert leftovers(out) == []
    # killed after the second rename: the new OUT_DIR stays, the old copy goes
    (tmp_path / ".out.old-4244").mkdir()
    clean_leftovers(out)
    assert (out / "persons.parquet").read_bytes() == b"the previous run"
    assert leftovers(out) == []


# ---------------------------------------------------------------- a write failing


@pytest.mark.parametrize("stage", ["load", "publish"])  # the kill tests cover every stage
def test_write_failure_in_a_stage(stage, sources, previous):
    out, before = previous
    res = refresh(sources, out, "--force", fail_in=stage)
    line = assert_one_clear_line(res, "No space left on device", "Nothing was published", code=1)
    assert "free the space" in line
    assert tree_digest(out) == before, "the previous OUT_DIR is untouched"
    assert leftovers(out) == [], "a failed run removes its own staging folder"
    assert not duckdb_spill_folders(out.parent)


def test_write_failure_with_no_previous_out_dir_leaves_none(sources, tmp_path):
    out = tmp_path / "out"
    res = refresh(sources, out, fail_in="publish")
    assert_one_clear_line(res, "No space left on device", code=1)
    assert not out.exists()
    assert leftovers(out) == []


# ---------------------------------------------------------------- broken extracts

BAD_FILES = {
    # kind: (fragments of the message; the row, when there is one)
    "empty": (["is empty", "export it again"], None),
    "header_only": (["no data rows", "full export"], None),
    "truncated": (["cut off", "export the file again"], 4),
    "corrupt_xlsx": (["cannot be read", "damaged", "new export"], None),
    "truncated_xlsx": (["cannot be read", "new export"], None),
    "duplicate_columns": (["'姓名' appears 2 times", "Rename or delete"], None),
    "missing_required": (["required column entity_id is missing", "统一社会信用代码", "Add or rename"], None),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_broken_file_stops_the_run_with_one_clear_line(kind, bad_files, sources, previous):
    out, before = previous
    src = bad_files[kind]
    target = sources / src.name
    shutil.copy(src, target)
    fragments, row = BAD_FILES[kind]
    where = f"{target}, row {row}: " if row else f"{target}: "
    res = refresh(sources, out, "--force")
    line = assert_one_clear_line(res, *fragments, code=1)
    assert line.startswith(f"error: {where}"), line
    assert tree_digest(out) == before
    assert leftovers(out) == []


ODD_ENCODINGS = {
    # name: (bytes, fragments of the message, row)
    "utf8_bom_but_gb18030": (
        b"\xef\xbb\xbf" + f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n".encode("gb18030"),
        ["starts with a UTF-8 marker (BOM) but its content is not UTF-8", "save it again"], None,
    ),
    "utf16_without_bom": (
        f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n".encode("utf-16-le"),
        ["UTF-16 text without a byte-order mark", "save it as .xlsx"], None,
    ),
    "latin1": (
        "身份证号,姓名,救助类别\n".encode() + f"{ZHANG},Zoë Müller,".encode("latin-1") + "低保\n".encode(),
        ["neither UTF-8 nor GBK/GB18030", "save it as .xlsx"], None,
    ),
    "gb18030_cut_mid_character": (
        f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n{ZHANG},李".encode("gb18030")[:-1],
        ["cut off", "export the file again"], 3,
    ),
    "workbook_named_csv": (None, ["an Excel workbook, not CSV text", "Rename it to .xlsx"], None),
    "zero_filled": (b"\x00" * 4096, ["binary data", "new export"], None),
    "row_with_extra_values": (
        f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n{ZHANG},张伟,低保,多余,值\n".encode(),
        ["this row has 5 values but the header has 3 columns", "fix the row"], 3,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ODD_ENCODINGS))
def test_a_file_in_an_unexpected_encoding_or_shape(case, bad_files, sources, previous):
    out, before = previous
    data, fragments, row = ODD_ENCODINGS[case]
    if data is None:  # a real (if truncated) workbook saved under a .csv name
        data = bad_files["truncated_xlsx"].read_bytes()
    target = sources / "低保名录_补充.csv"
    target.write_bytes(data)
    res = refresh(sources, out, "--force")
    line = assert_one_clear_line(res, *fragments, code=1)
    where = f"{target}, row {row}: " if row else f"{target}: "
    assert line.startswith(f"error: {where}"), line
    assert tree_digest(out) == before
    assert leftovers(out) == []


def test_gb18030_without_bom_is_read(world, bad_files, sources, tmp_path):
    """A GB18030 file that does not say so (no BOM, name says nothing) is read, names intact."""
    src = bad_files["gb18030_undeclared"]
    shutil.copy(src, sources / src.name)
    out = tmp_path / "out"
    res = refresh(sources, out)
    assert res.returncode == 0, res.stderr
    assert_balanced(out, {**truth_rows(world), src.name: 3})
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    (info,) = [f for f in manifest["inputs"] if f["file"] == src.name]
    assert (info["source"], info["encoding"], info["rows"]) == ("income", "gb18030", 3)
    links = pl.read_parquet(out / "links.parquet").filter(pl.col("file") == src.name)
    assert set(links["outcome"]) <= {"linked", "new_person"}
    names = set(pl.read_parquet(out / "persons.parquet")["name"])
    assert {"刘䶮", "阿依古丽·买买提"} <= names


def test_skip_bad_files_skips_only_optional_sources(world, bad_files, sources, tmp_path):
    optional = [
        "empty",
        "header_only",
        "corrupt_xlsx",
        "truncated_xlsx",
        "duplicate_columns",
        "missing_required",
    ]
    for kind in [*optional, "gb18030_undeclared"]:
        shutil.copy(bad_files[kind], sources / bad_files[kind].name)
    out = tmp_path / "out"
    res = refresh(sources, out, "--skip-bad-files")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    skipped = {f["file"]: f["problem"] for f in manifest["inputs"] if f["recognised_by"] == "skipped"}
    assert set(skipped) == {bad_files[k].name for k in optional}
    assert all(p and name in p for name, p in skipped.items()), skipped
    not_read = reconciliation(out, read=False)  # listed in reconciliation.csv with the reason
    assert {f: r["说明"] for f, r in not_read.items()} == skipped
    assert_balanced(out, {**truth_rows(world), bad_files["gb18030_undeclared"].name: 3})
    report = (out / "report.html").read_text("utf-8")
    assert all(name in report for name in skipped), "the report lists the skipped files"

    # A broken file of a required source is never skipped.
    shutil.copy(bad_files["truncated"], sources / bad_files["truncated"].name)
    res = refresh(sources, tmp_path / "out2", "--skip-bad-files")
    assert_one_clear_line(res, bad_files["truncated"].name, "row 4", "cut off")
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------- odd but usable extracts


def _add_columns_to_csv(path: Path, encoding: str, columns: dict[str, callable]) -> int:
    """Append columns (header -> value from the row's dict) to a CSV; return its data rows."""
    with open(path, encoding=encoding, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    out = [header + list(columns)]
    for r in body:
        r = r + [""] * (len(header) - len(r))
        rec = dict(zip(header, r, strict=True))
        out.append(r + [fn(rec) for fn in columns.values()])
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(out)
    return len(body)


def test_unknown_extra_columns_are_kept_and_change_nothing(world, baseline, sources, tmp_path):
    with open(world / "truth" / "files.csv", encoding="utf-8", newline="") as fh:
        files = {r["file"]: r for r in csv.DictReader(fh)}
    name = next(f for f, r in files.items() if r["source"] == "household" and r["format"] == "csv")
    encoding = {"utf-8-sig": "utf-8-sig", "gb18030": "gb18030"}.get(files[name]["encoding"], "utf-8")
    written = _add_columns_to_csv(
        sources / name, encoding, {"备注": lambda r: r.get("姓名", ""), "数据批次": lambda r: "2026年第1批"}
    )
    assert written == int(files[name]["rows"])
    out = tmp_path / "out"
    res = refresh(sources, out)
    assert res.returncode == 0, res.stderr
    rec = assert_balanced(out, truth_rows(world))
    # the same outcomes as without the columns: they are ignored downstream
    base = reconciliation(baseline)
    assert [rec[name][h] for h in OUTCOME_HEADERS] == [base[name][h] for h in OUTCOME_HEADERS]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    (info,) = [f for f in manifest["inputs"] if f["file"] == name]
    base_manifest = json.loads((baseline / "manifest.json").read_text("utf-8"))
    (base_info,) = [f for f in base_manifest["inputs"] if f["file"] == name]
    assert info["extra_columns"] == [*base_info["extra_columns"], "备注", "数据批次"]
    # ... and kept in the raw layer: a quarantined row carries them
    q = pl.read_parquet(out / "quarantine.parquet").filter(pl.col("file") == name)
    assert q.height > 0
    assert all("数据批次" in json.loads(x) for x in q["raw_extra"])


def test_one_row_repeated_100k_times_is_one_person(tmp_path):
    sources = write_tiny_sources(tmp_path / "sources")
    pid = make_id("53018119800315007")
    header = "公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态\n"
    line = f"{pid},赵敏,连然街道,金湖社区,女,1980-03-15,农业,安宁市连然街道金湖社区9号,\n"
    (sources / "户籍人口_重复.csv").write_text(header + line * 100_000, encoding="utf-8")
    out = tmp_path / "out"
    # one street of nine has household rows: the missing-street guard is tested in test_guards
    res = refresh(sources, out, "--accept-missing-streets")
    assert res.returncode == 0, res.stderr
    rec = assert_balanced(out, {"户籍人口_连然街道.csv": 3, "参保信息.csv": 1, "户籍人口_重复.csv": 100_000})
    r = rec["户籍人口_重复.csv"]
    assert (int(r["新增人员"]), int(r["重复行"])) == (1, 99_999)
    assert sum(int(r[h]) for h in ["已匹配", "隔离", "待复核", "未匹配"]) == 0
    persons = pl.read_parquet(out / "persons.parquet")
    assert persons.height == 4
    assert persons.filter(pl.col("id_number") == pid).height == 1


def test_an_extract_ten_times_the_usual_size(world, baseline, sources, tmp_path):
    path = sources / "个税汇总.parquet"
    df = pl.read_parquet(path)
    usual = df.height
    assert usual == truth_rows(world)[path.name]
    # ten monthly deliveries of the same summary: the rows differ only in an extra column (数据日期)
    date_col = "数据日期"
    assert date_col in df.columns
    copies = [
        df.with_columns(
            pl.when(pl.col(date_col).is_not_null()).then(pl.lit(f"2026-02-{10 + k}")).alias(date_col)
        )
        for k in range(10)
    ]
    pl.concat(copies).write_parquet(path)
    out = tmp_path / "out"
    res = refresh(sources, out)
    assert res.returncode == 0, res.stderr
    rec = assert_balanced(out, {**truth_rows(world), path.name: 10 * usual})
    base = reconciliation(baseline)[path.name]
    assert int(rec[path.name]["重复行"]) == 10 * int(base["重复行"])
    assert int(rec[path.name]["隔离"]) == 10 * int(base["隔离"])
    # the same people, no more and no fewer
    persons = pl.read_parquet(out / "persons.parquet")
    assert persons.height == pl.read_parquet(baseline / "persons.parquet").height


def test_files_shown_under_one_name_stay_apart(tmp_path):
    """Two names that differ only in the masked part of an ID: every file keeps its own
    reconciliation line. The same file name in two subfolders: neither is read, both are listed."""
    sources = write_tiny_sources(tmp_path / "sources")
    header = "公民身份号码,姓名,街道,社区,性别,出生日期,户口性质,住址,人员状态\n"
    files = {
        "连然/户籍人口.csv": f"{make_id('53018119800315007')},赵敏,连然街道,金湖社区,女,1980-03-15,农业,1号,\n,,,,,,,,\n",
        "金方/户籍人口.csv": f"{make_id('53018119810315007')},钱敏,金方街道,,女,1981-03-15,农业,2号,\n合计,,,,,,,,\n",
        f"户籍_{ZHANG}.csv": f"{make_id('53018119820315007')},孙敏,连然街道,,女,1982-03-15,农业,3号,\n",
        f"户籍_{ZHANG[:6]}19990909{ZHANG[-4:]}.csv": f"{make_id('53018119830315007')},李敏,,,女,,,,\n",
    }
    for rel, body in files.items():
        (sources / rel).parent.mkdir(exist_ok=True)
        (sources / rel).write_text(header + body, encoding="utf-8")
    out = tmp_path / "out"
    res = refresh(sources, out)
    assert res.returncode == 0, res.stderr
    masked = f"户籍_{ZHANG[:6]}{'*' * 8}{ZHANG[-4:]}.csv"
    assert_balanced(
        out, {"户籍人口_连然街道.csv": 3, "参保信息.csv": 1, masked: 1, f"{masked} (2)": 1}
    )  # fmt: skip
    # subfolders (issue 19: only the files directly in SOURCES_DIR are extracts) are listed, not read
    not_read = reconciliation(out, read=False)
    for folder in ("连然/", "金方/"):
        assert not_read[folder]["说明"].startswith("a subfolder: not read"), not_read
    assert pl.read_parquet(out / "quarantine.parquet").is_empty()
    assert ZHANG not in (out / "reconciliation.csv").read_text("utf-8-sig")


# ---------------------------------------------------------------- two runs at once


def test_two_refreshes_into_one_out_dir(world, sources, previous, tmp_path):
    out, before = previous
    go = tmp_path / "go"  # the first refresh, paused after classify, goes on once this exists
    with paused_refresh(sources, out, "classify", tmp_path, "--force", go=go) as first:
        t0 = time.monotonic()
        second = refresh(sources, out, "--force")
        elapsed = time.monotonic() - t0
        line = assert_one_clear_line(second, str(out), "another kuomian run is writing this folder", code=4)
        assert "Wait for it to finish" in line
        assert elapsed < 30, f"the second run should fail at once, took {elapsed:.1f}s"
        # the refused run touched nothing: neither OUT_DIR nor the first run's staging folder
        assert tree_digest(out) == before
        assert (out.parent / f".out.staging-{first.pid}").is_dir()
        go.touch()
        assert first.wait(180) == 0, (tmp_path / "classify.stderr").read_text("utf-8")
    assert "published" in (tmp_path / "classify.stdout").read_text("utf-8")
    assert tree_digest(out) != before
    assert leftovers(out) == []
    assert_complete(out)
    assert_balanced(out, truth_rows(world))


def test_a_library_error_on_a_full_file_system_is_told_as_a_full_disk(tmp_path, monkeypatch):
    """polars reports ENOSPC while writing Parquet as "Invalid thrift: transport error": a
    staging folder that fails while its file system is full says what it was (the CLI's
    one line then names the folder and the free space); on a file system with room, the
    error stays what it was."""
    import errno

    from kuomian.core import fileio

    class ThriftError(Exception):
        pass

    monkeypatch.setattr(fileio, "_no_room_left", lambda folder: True)
    with pytest.raises(OSError) as e, fileio.staging(tmp_path / "out"):
        raise ThriftError("parquet: File out of specification: Invalid thrift: transport error")
    assert e.value.errno == errno.ENOSPC and isinstance(e.value.__cause__, ThriftError)
    assert not list(tmp_path.glob(".out.staging-*"))  # removed all the same

    monkeypatch.setattr(fileio, "_no_room_left", lambda folder: False)
    with pytest.raises(ThriftError), fileio.staging(tmp_path / "out"):
        raise ThriftError("some other failure")
