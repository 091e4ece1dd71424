"""Trust boundary, round 3 (issue 21, items 1, 4, 5 and 6): each test is an attack of that
adversarial round, and checks what it now gets: one clear line and exit 1 (never exit 70, "a bug,
report it"), nothing run that a value smuggled in, nothing published or left behind.

The SQL scan of the package is in tests/test_sql_from_values.py.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from tests.conftest import LI, ZHANG, write_tiny_sources

runner = CliRunner()
AS_OF = "2026-03-01"
# What the attacks of the round tried to run: read a secret into a file of their own.
INJECT = "x'; COPY (SELECT 'pwned') TO '{target}' (FORMAT csv); SELECT '"


def cli(*args, **env):
    return runner.invoke(app, ["-q", *map(str, args)], env={k: str(v) for k, v in env.items()} or None)


def one_line(res, *fragments: str, code: int = 1) -> str:
    """Exit ``code``, exactly one line on stderr starting ``error:``, holding every fragment."""
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in res.stderr and "report it" not in lines[0]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def leftovers(out: Path) -> list[str]:
    return sorted(
        p.name
        for p in out.parent.iterdir()
        if p.name.startswith(f".{out.name}.") and not p.name.endswith(".lock")
    )


# ---------------------------------------------------------------- 1. no value is ever SQL


def test_a_quote_in_every_path_refresh_check_and_progress_work(tmp_path, monkeypatch):
    """OUT_DIR, KUOMIAN_STATE, SOURCES_DIR (and so the staging folder and DuckDB's spill folder)
    each hold a ' : every command works, the paths are only ever data."""
    root = tmp_path / "bureau's files"
    monkeypatch.setenv("KUOMIAN_STATE", str(root / "st'ate"))
    src = write_tiny_sources(root / "sr'c 2026")
    out = root / "o'ut"
    res = cli("refresh", src, "--out", out, "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    assert pl.read_parquet(out / "links.parquet").height > 0, "COPY … TO a path with a quote"
    assert leftovers(out) == []
    lst = root / "名单's.csv"
    lst.write_text(f"姓名,身份证号\n张伟,{ZHANG}\n", encoding="utf-8")
    res = cli("check", lst, "--registry", out, "--out", root / "res'ult.csv")
    assert res.exit_code == 0, res.stderr
    enrol = root / "参保's.csv"
    enrol.write_text(f"身份证号,姓名,险种,参保状态\n{ZHANG},张伟,城乡居民养老,正常缴费\n", encoding="utf-8")
    res = cli("progress", out, enrol, "--as-of", "2026-06-30", "--out", root / "q'2")
    assert res.exit_code == 0, res.stderr
    assert (root / "q'2" / "bulletin.html").is_file()


def test_memory_limit_is_a_size_or_one_line(tmp_path):
    src = write_tiny_sources(tmp_path / "src")
    target = tmp_path / "pwned.csv"
    for bad, says in (
        ("1GB'; COPY (SELECT 1) TO '" + str(target) + "'; SELECT '", "not a memory size"),
        ("lots", "not a memory size"),
        ("1e9GB", "not a memory size"),
        ("10KB", "too little for a run"),
    ):
        res = cli("refresh", src, "--out", tmp_path / "out", "--as-of", AS_OF, "--memory-limit", bad)
        one_line(res, "--memory-limit", says)
        assert not target.exists() and not (tmp_path / "out").exists()
    res = cli("refresh", src, "--out", tmp_path / "out", "--as-of", AS_OF, "--threads", "-3")
    one_line(res, "--threads")
    # the environment variable is checked the same way (it is read where the connection is made)
    res = cli(
        "refresh", src, "--out", tmp_path / "out", "--as-of", AS_OF, KUOMIAN_MEMORY_LIMIT="1GB'; SELECT '"
    )
    one_line(res, "KUOMIAN_MEMORY_LIMIT", "not a memory size")
    assert not target.exists() and not (tmp_path / "out").exists()
    res = cli("refresh", src, "--out", tmp_path / "out", "--as-of", AS_OF, "--memory-limit", "512 MiB")
    assert res.exit_code == 0, res.stderr


def _policy_with_street(tmp_path: Path, name: str) -> Path:
    pol = tmp_path / "policy"
    assert cli("rules", "export", pol).exit_code == 0
    p = pol / "rules" / "streets.csv"
    lines = p.read_text("utf-8").splitlines()
    code = lines[1].split(",")[0]
    quoted = '"' + name.replace('"', '""') + '"'
    lines[1] = f"{code},{quoted}"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pol


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("连然'街道", 'the character "\'"'),
        ("连然街道'; COPY (SELECT 1) TO 'x.csv'; SELECT '", "the character"),
        ("连然\x07街道", "U+0007"),
        ("连然\u202e街道", "U+202E"),
    ],
)
def test_rules_check_refuses_a_street_name_no_street_has(tmp_path, name, says):
    pol = _policy_with_street(tmp_path, name)
    one_line(cli("rules", "check", "--rules", pol), "streets.csv", "row 2", says)
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / "out", "--rules", pol)
    one_line(res, "streets.csv", "row 2")
    assert not (tmp_path / "out").exists()


def test_a_street_name_is_never_code_even_past_the_check(tmp_path, monkeypatch):
    """Should a hostile name get past rules check, classify still treats it as data: the
    attack's COPY is not run and the name lands verbatim in the registry."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "pwned.csv"
    hostile = INJECT.format(target="pwned.csv")  # no / : the name also names a hand-off file
    from kuomian.stages import classify

    real = classify._street_names

    def names():
        return {c: (hostile if n == "连然街道" else n) for c, n in real().items()}

    monkeypatch.setattr(classify, "_street_names", names)
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / "out", "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    assert not target.exists(), "the injected COPY ran"
    persons = pl.read_parquet(tmp_path / "out" / "persons.parquet")
    assert hostile in persons["street_name"].to_list()


# ---------------------------------------------------------------- 4. the key file


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_a_key_path_that_is_not_a_regular_file_is_one_line(tmp_path, monkeypatch, kind):
    if kind == "fifo":
        key = tmp_path / "key.fifo"
        os.mkfifo(key, 0o600)  # reading it would block for ever
    elif kind == "dev_zero":
        key = Path("/dev/zero")  # reading it whole would fill the memory
    else:
        key = tmp_path / "keys"
        key.mkdir(mode=0o700)
    monkeypatch.setenv("KUOMIAN_KEY_FILE", str(key))
    out = tmp_path / "out"
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", out, "--as-of", AS_OF)
    one_line(res, str(key), "must be a regular file")
    assert not out.exists() and leftovers(out) == [], "no staging folder left behind"


def test_a_huge_key_file_is_not_read_whole(tmp_path, monkeypatch):
    key = tmp_path / "big.key"
    with open(key, "wb") as fh:
        fh.truncate(3 * 1024**3)  # 3 GB, sparse
    key.chmod(0o600)
    monkeypatch.setenv("KUOMIAN_KEY_FILE", str(key))
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / "out", "--as-of", AS_OF)
    one_line(res, str(key), "larger than 4096 bytes")


# ---------------------------------------------------------------- 5. ordinary mistakes: exit 1


@pytest.mark.parametrize("as_of", ["0001-01-01", "1989-12-31", "2101-01-01", "9999-12-31"])
def test_an_as_of_outside_1990_2100_is_one_line(tmp_path, as_of):
    src = write_tiny_sources(tmp_path / "src")
    one_line(cli("refresh", src, "--out", tmp_path / "out", "--as-of", as_of), f"--as-of {as_of}", "outside")
    assert not (tmp_path / "out").exists()


def test_an_as_of_before_most_births_is_one_line(tmp_path):
    """1990-01-01 is in range, but two of the three people were born after it: every age
    negative is not a registry."""
    src = write_tiny_sources(tmp_path / "src")
    res = cli("refresh", src, "--out", tmp_path / "out", "--as-of", "1989-06-01")
    one_line(res, "outside")
    res = cli("refresh", src, "--out", tmp_path / "out", "--as-of", "1990-01-01")
    one_line(res, "--as-of 1990-01-01", "born after it")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("file", "old", "new", "says"),
    [
        ("indicators.yaml", None, ".nan", "not a finite number"),
        ("indicators.yaml", None, ".inf", "not a finite number"),
        ("indicators.yaml", None, "-0.5", "out of range"),
        ("files.yaml", "max_cell_mb: 1", "max_cell_mb: .nan", "not a finite number"),
        ("files.yaml", "max_columns: 1000", "max_columns: -5", "out of range"),
        ("files.yaml", "max_unpacked_mb: 400", "max_unpacked_mb: .inf", "not a finite number"),
        ("retirement.yaml", None, None, "not a finite number"),
    ],
)
def test_non_finite_and_out_of_range_numbers_in_the_policy_are_refused(tmp_path, file, old, new, says):
    pol = tmp_path / "policy"
    assert cli("rules", "export", pol).exit_code == 0
    p = pol / "rules" / file
    text = p.read_text("utf-8")
    if file == "indicators.yaml":  # the first coverage target
        import re

        text, n = re.subn(r'("?\d{4}"?:\s*)0\.\d+', lambda m: m.group(1) + new, text, count=1)
        assert n == 1
    elif file == "retirement.yaml":
        import re

        text, n = re.subn(r"(\n\s+years:\s*)[\d.]+", r"\1.nan", text, count=1)
        assert n == 1
    else:
        assert old in text
        text = text.replace(old, new)
    p.write_text(text, encoding="utf-8")
    one_line(cli("rules", "check", "--rules", pol), file, says)
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / "out", "--rules", pol)
    one_line(res, file, says)


@pytest.mark.parametrize(
    ("file", "old", "new", "says"),
    [
        (
            "groups.yaml",
            '{annual_income: {">=": 60000}}',
            '{annual_income: {">=": .inf}}',
            "not a finite number",
        ),
        (
            "groups.yaml",
            '{withheld_months: {">=": 6}}',
            '{withheld_months: {">=": .nan}}',
            "not a finite number",
        ),
        ("statuses.yaml", '{age: {"<": 16}}', '{age: {"<": -16}}', "out of range"),
        ("statuses.yaml", '{age: {"<": 16}}', '{age: {"<": 1.0e+300}}', "out of range"),
        ("groups.yaml", "label: 其他应参未参人员", 'label: "其他\\0人员"', "NUL character"),
    ],
)
def test_a_condition_number_that_is_not_finite_or_sane_is_refused(tmp_path, file, old, new, says):
    pol = tmp_path / "policy"
    assert cli("rules", "export", pol).exit_code == 0
    p = pol / "rules" / file
    text = p.read_text("utf-8")
    assert old in text
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    one_line(cli("rules", "check", "--rules", pol), file, says)


def _registry(tmp_path: Path) -> Path:
    out = tmp_path / "reg"
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", out, "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    return out


def _foreign_copies(tmp_path: Path, reg: Path) -> dict[str, Path]:
    """Folders that look like a registry but are not: an empty persons.parquet, one of another
    table, one that is not Parquet at all."""
    made = {}
    for kind in ("empty", "foreign", "not_parquet"):
        d = tmp_path / kind
        shutil.copytree(reg, d)
        p = d / "persons.parquet"
        if kind == "empty":
            pl.read_parquet(p).clear().write_parquet(p)
        elif kind == "foreign":
            pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(p)
        else:
            p.write_text("姓名,身份证号\n", encoding="utf-8")
        made[kind] = d
    return made


def test_an_empty_or_foreign_previous_or_compare_folder_is_one_line(tmp_path):
    reg = _registry(tmp_path)
    for kind, d in _foreign_copies(tmp_path, reg).items():
        res = cli(
            "refresh", write_tiny_sources(tmp_path / "src"), "--out", tmp_path / f"new_{kind}",
            "--as-of", AS_OF, "--previous", d,
        )  # fmt: skip
        one_line(res, "--previous", str(d / "persons.parquet"))
        assert not (tmp_path / f"new_{kind}").exists()
        one_line(cli("compare", d, reg, "--out", tmp_path / f"diff_{kind}"), str(d / "persons.parquet"))
        one_line(cli("compare", reg, d, "--out", tmp_path / f"diff2_{kind}"), str(d / "persons.parquet"))
        assert not (tmp_path / f"diff_{kind}").exists()


def test_demo_with_no_or_few_people(tmp_path):
    one_line(cli("demo", "--people", "0", "--out", tmp_path / "d0"), "--people")
    one_line(cli("demo", "--people", "-5", "--out", tmp_path / "d1"), "--people")
    one_line(cli("demo", "--people", "499", "--out", tmp_path / "d2"), "--people 499", "at least 500")
    assert not any(tmp_path.iterdir()), "nothing generated"


_ = (LI, date)


# ---------------------------------------------------------------- 5. Ctrl-C, SIGTERM, SIGKILL, a full disk

import hashlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

LAUNCHER = [sys.executable, str(Path(__file__).with_name("fault_launcher.py"))]
KUOMIAN = Path(sys.executable).with_name("kuomian")
CMD = [str(KUOMIAN)] if KUOMIAN.exists() else [sys.executable, "-m", "kuomian.cli"]


def digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def run_id(out: Path) -> str:
    m = json.loads((out / "manifest.json").read_text("utf-8"))
    return json.dumps({k: m.get(k) for k in ("started", "finished", "run_id", "created")}, sort_keys=True)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("KUOMIAN_") or k == "KUOMIAN_STATE"}
    e["POLARS_MAX_THREADS"] = "2"
    return e


@contextmanager
def paused(kind: str, moment: str, tmp: Path, args: list, go: Path | None = None):
    """The real CLI in a subprocess, paused (certainly) at ``moment``: the end of a stage
    (``kind`` "pause") or a point of publishing's swap (``kind`` "swap")."""
    marker = tmp / f"paused-{moment}"
    marker.unlink(missing_ok=True)
    fault = [kind, moment, str(marker), *([str(go)] if go else []), "--"]
    with open(tmp / "run.stdout", "w") as so, open(tmp / "run.stderr", "w") as se:
        proc = subprocess.Popen([*LAUNCHER, *fault, *map(str, args)], stdout=so, stderr=se, env=env())
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before {moment}: {(tmp / 'run.stderr').read_text()}")
            assert time.monotonic() < deadline, f"the run did not reach {moment} in time"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()  # only the process this test started, by its id
            proc.wait(30)


@pytest.fixture
def published(tmp_path) -> tuple[Path, Path, dict]:
    """Sources, an OUT_DIR published from them, and its digest."""
    src = write_tiny_sources(tmp_path / "src")
    out = tmp_path / "out"
    res = cli("refresh", src, "--out", out, "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    return src, out, digest(out)


@pytest.mark.parametrize(
    ("stage", "sig"),
    [
        ("load", signal.SIGTERM),
        ("standardise", signal.SIGINT),
        ("link", signal.SIGTERM),
        ("classify", signal.SIGINT),
        ("publish", signal.SIGTERM),
        ("publish", signal.SIGINT),
    ],
)
def test_ctrl_c_and_sigterm_at_every_stage_publish_nothing(published, tmp_path, stage, sig):
    src, out, before = published
    args = ["-q", "refresh", src, "--out", out, "--as-of", AS_OF, "--force"]
    with paused("pause", stage, tmp_path, args) as proc:
        os.kill(proc.pid, sig)
        assert proc.wait(60) == 128 + sig
    err = (tmp_path / "run.stderr").read_text("utf-8")
    assert "interrupted: nothing was published" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert digest(out) == before, "the previous OUT_DIR is intact"
    assert leftovers(out) == [], "staging removed"


def test_ctrl_c_between_the_two_renames_waits_for_the_swap_and_says_it_published(published, tmp_path):
    src, out, before = published
    go = tmp_path / "go"
    args = ["-q", "refresh", src, "--out", out, "--as-of", "2026-03-02", "--force"]
    with paused("swap", "between_renames", tmp_path, args, go=go) as proc:
        assert not out.exists() and leftovers(out)  # OUT_DIR is aside right now
        os.kill(proc.pid, signal.SIGINT)  # held until the swap is done
        time.sleep(0.3)
        assert proc.poll() is None, "Ctrl-C does not cut the swap"
        go.touch()
        assert proc.wait(60) == 130
    err = (tmp_path / "run.stderr").read_text("utf-8")
    assert "interrupted after" in err and "was published" in err and "Traceback" not in err, err
    assert (
        digest(out) != before
        and json.loads((out / "manifest.json").read_text("utf-8"))["as_of"] == "2026-03-02"
    )
    assert leftovers(out) == [], "the old copy is removed, no marker stays"


def test_sigkill_between_the_two_renames_is_repaired_by_clean(published, tmp_path):
    src, out, before = published
    args = ["-q", "refresh", src, "--out", out, "--as-of", "2026-03-02", "--force"]
    with paused("swap", "between_renames", tmp_path, args) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert not out.exists()
    assert any(".old-" in n for n in leftovers(out)) and any(".swap-" in n for n in leftovers(out))
    res = subprocess.run([*CMD, "clean"], capture_output=True, text=True, env=env(), timeout=120)
    assert res.returncode == 0, res.stderr
    assert digest(out) == before, "the previous OUT_DIR is put back"
    assert leftovers(out) == []


def test_sigkill_after_the_two_renames_leaves_a_copy_that_clean_removes(published, tmp_path):
    """Killed after the swap, before the old copy went: OUT_DIR is the new run; `kuomian clean`
    removes the old copy (it found it through the dead run's record) and never restores it."""
    src, out, before = published
    args = ["-q", "refresh", src, "--out", out, "--as-of", "2026-03-02", "--force"]
    with paused("swap", "after_renames", tmp_path, args) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    new = digest(out)
    assert new != before and [n for n in leftovers(out) if ".old-" in n]
    shutil.rmtree(out)  # the user removes the new run: the old copy must not come back
    res = subprocess.run([*CMD, "clean"], capture_output=True, text=True, env=env(), timeout=120)
    assert res.returncode == 0, res.stderr
    assert not out.exists() and leftovers(out) == []


def test_a_stale_old_copy_is_never_restored_over_a_newer_run(published, tmp_path):
    """A run killed after its second rename leaves .OUT.old-PID (no swap marker). The user then
    removes OUT_DIR: the next run must not bring last year's copy back (it did, and exited 3)."""
    src, out, before = published
    # what a kill after the second rename leaves: the old copy beside OUT_DIR, no swap marker
    stale = tmp_path / ".out.old-4244"
    shutil.copytree(out, stale)
    shutil.rmtree(out)
    res = cli("refresh", src, "--out", out, "--as-of", "2026-03-03")
    assert res.exit_code == 0, res.stderr
    assert json.loads((out / "manifest.json").read_text("utf-8"))["as_of"] == "2026-03-03"
    assert leftovers(out) == [], "the stale copy is removed"
    # kuomian clean removes one too, for a run whose record says it died
    from kuomian.core.fileio import clean_leftovers

    shutil.copytree(out, stale)
    clean_leftovers(out)
    assert (
        not stale.exists() and json.loads((out / "manifest.json").read_text("utf-8"))["as_of"] == "2026-03-03"
    )


def test_ctrl_c_during_a_duckdb_query_is_exit_130_not_a_bug(tmp_path):
    """DuckDB turns a signal into RuntimeError("Query interrupted"): still an interruption."""
    script = (
        "import duckdb, sys\n"
        "from kuomian.cli import friendly_errors\n"
        "from kuomian.core.errors import install_signal_handlers\n"
        "install_signal_handlers()\n"
        "@friendly_errors\n"
        "def long():\n"
        "    print('started', flush=True)\n"
        "    duckdb.connect().execute('SELECT count(*) FROM range(100000000000) a').fetchall()\n"
        "try:\n"
        "    long()\n"
        "except SystemExit as e:\n"
        "    sys.exit(e.code)\n"
        "except BaseException as e:\n"
        "    sys.exit(getattr(e, 'exit_code', 99))\n"
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        assert proc.stdout.readline().strip() == "started"
        time.sleep(0.5)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + sig, (proc.returncode, err)
        assert "interrupted: nothing was published" in err and "report it" not in err


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    return res.returncode == 0


def test_a_full_disk_is_one_line_naming_the_folder_and_the_free_space(tmp_path):
    """OUT_DIR on a tmpfs with 24 KB free (the tiny run writes more): 'not enough space in …: free N MB',
    exit 1, nothing left on the small disk. Without the right to mount, the same through the
    fault hook raising ENOSPC (tests/fault_launcher.py)."""
    src = write_tiny_sources(tmp_path / "src")
    disk = tmp_path / "small disk"
    mounted = _mount_tmpfs(disk, "1m")
    try:
        if mounted:  # leave 24 KB free: the tiny run's outputs take ~200 KB
            (disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(disk).free - 24 * 1024))
        out = disk / "out"
        args = ["-q", "refresh", src, "--out", out, "--as-of", AS_OF]
        if mounted:
            res = subprocess.run(
                [*CMD, *map(str, args)], capture_output=True, text=True, env=env(), timeout=300
            )
        else:
            res = subprocess.run(
                [*LAUNCHER, "fail", "publish", "--", *map(str, args)],
                capture_output=True, text=True, env=env(), timeout=300,
            )  # fmt: skip
        assert res.returncode == 1, (mounted, res.returncode, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in res.stderr, lines
        assert "not enough space in " in lines[0] and " MB" in lines[0] and "free" in lines[0], lines[0]
        assert str(disk) in lines[0] or not mounted
        assert not out.exists()
        assert [p.name for p in disk.iterdir() if not p.name.endswith(".lock")] == (
            ["filler"] if mounted else []
        )
    finally:
        if mounted and subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # busy: detach it lazily


def test_duckdb_s_no_space_error_is_the_same_one_line(tmp_path, capsys):
    import duckdb

    from kuomian.cli import friendly_errors

    @friendly_errors
    def fails():
        raise duckdb.IOException(
            f'IO Error: Could not write file "{tmp_path}/x.tmp": No space left on device'
        )

    import typer

    with pytest.raises(typer.Exit) as e:
        fails()
    assert e.value.exit_code == 1
    err = capsys.readouterr().err
    assert f"not enough space in {tmp_path}: free " in err and " MB" in err and "report it" not in err


# ---------------------------------------------------------------- 6. the smaller ones


def test_check_never_writes_into_a_published_out_dir_even_with_force(published, tmp_path):
    src, out, before = published
    lst = tmp_path / "名单.csv"
    lst.write_text(f"姓名,身份证号\n张伟,{ZHANG}\n", encoding="utf-8")
    for target in (out / "indicators.csv", out / "new_result.csv", out / "handoff" / "x.xlsx"):
        res = cli("check", lst, "--registry", out, "--out", target, "--force")
        one_line(res, "a folder kuomian published", "Choose a file outside it")
    assert digest(out) == before


def test_rules_export_force_never_writes_into_a_folder_of_extracts(tmp_path):
    src = write_tiny_sources(tmp_path / "src")
    kept = digest(src)
    one_line(cli("rules", "export", src, "--force"), str(src), "holds data files")
    one_line(cli("rules", "export", src), str(src), "holds data files")
    assert digest(src) == kept and not (src / "rules").exists()
    # a folder whose sources/ holds extracts (a demo folder): --force would have emptied it
    demo = tmp_path / "demo"
    write_tiny_sources(demo / "sources")
    kept = digest(demo)
    one_line(cli("rules", "export", demo, "--force"), "sources", "not policy")
    assert digest(demo) == kept
    # a real policy folder is still replaced with --force
    pol = tmp_path / "policy"
    assert cli("rules", "export", pol).exit_code == 0
    (pol / "rules" / "groups.yaml").write_text("edited", encoding="utf-8")
    assert cli("rules", "export", pol, "--force").exit_code == 0
    assert (pol / "rules" / "groups.yaml").read_text("utf-8") != "edited"


def test_an_id_typed_into_a_groups_action_is_masked_everywhere_it_is_shown(tmp_path):
    from tests.conftest import assert_no_full_id

    pol = tmp_path / "policy"
    assert cli("rules", "export", pol).exit_code == 0
    p = pol / "rules" / "groups.yaml"
    text = p.read_text("utf-8")
    old = "action: 入户宣传，动员参加城乡居民养老保险"
    assert old in text
    p.write_text(text.replace(old, f"action: 入户宣传（联系人 {LI}）", 1), encoding="utf-8")
    assert cli("rules", "check", "--rules", pol).exit_code == 0
    out = tmp_path / "out"
    res = cli("refresh", write_tiny_sources(tmp_path / "src"), "--out", out, "--as-of", AS_OF, "--rules", pol)
    assert res.exit_code == 0, res.stderr
    html = (out / "report.html").read_text("utf-8")
    measures = pl.read_parquet(out / "persons.parquet")["measure"].drop_nulls().to_list()
    assert any(LI[:6] in m for m in measures), "the action is shown, masked"
    assert_no_full_id(html)
    assert_no_full_id(" ".join(measures))
    for f in (out / "handoff").glob("*.csv"):
        assert_no_full_id(f.read_text("utf-8-sig"))


def test_nul_and_control_characters_never_reach_the_registry(tmp_path):
    """A Parquet extract (it holds any text; a CSV with NUL reads as UTF-16 and is refused) with
    NUL, escape sequences, line breaks and a right-to-left override in its text fields."""
    src = tmp_path / "src"
    write_tiny_sources(src)
    p = src / "户籍人口_连然街道.csv"
    df = pl.read_csv(p, infer_schema=False)
    p.unlink()
    df = df.with_columns(
        住址=pl.Series(["金湖社区\x001号\x07", "金湖社区2号", "金湖\r\n社区1号"]),
        社区=pl.Series(["金湖社区", "金湖\u202e社区", "金湖社区"]),
        户号=pl.Series(["H\x00001\r\n2\u202e", "H0002", "H\x1b[31m0001"]),
    )
    df.write_parquet(src / "户籍人口_连然街道.parquet")
    out = tmp_path / "out"
    res = cli("refresh", src, "--out", out, "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    persons = pl.read_parquet(out / "persons.parquet")
    for col in ("household_no", "address", "name", "community"):
        for v in persons[col].drop_nulls().to_list():
            assert not any(ord(c) < 32 or ord(c) == 127 or "\u202a" <= c <= "\u202e" for c in v), (col, v)
    assert sorted(persons["household_no"].to_list()) == ["H0002", "H001 2", "H[31m0001"], persons[
        "household_no"
    ].to_list()
    assert "金湖社区1号" in persons["address"].to_list() and "金湖 社区1号" in persons["address"].to_list()


def test_a_newline_in_a_file_name_does_not_split_a_line(tmp_path):
    src = write_tiny_sources(tmp_path / "src")
    (src / "参保信息.csv").rename(src / "参保信息\nerror: forged line.csv")
    res = runner.invoke(app, ["validate", str(src)])
    assert res.exit_code == 0, res.stderr
    out = res.stdout + res.stderr
    assert not any(ln.startswith("error: forged") for ln in out.splitlines()), out
    assert "参保信息\\nerror: forged line.csv" in out


def test_memory_at_most_lets_go_of_cached_pages_and_restores_the_limit(tmp_path):
    """A Kunming run's publish: DuckDB gives back the pages it caches from its database file
    while Python holds the persons, and has its limit again afterwards; never a higher one."""
    from kuomian.core.db import connect, memory_at_most, memory_bytes, scalar

    con = connect(temp_dir=tmp_path / "tmp", memory_limit="1GB", on_disk=True)
    con.execute(
        "CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS a, md5((i + 1)::VARCHAR) AS b FROM range(3000000) r(i)"
    )
    con.execute("SELECT count(DISTINCT a), max(b) FROM t").fetchall()  # pages cached
    used = "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
    assert scalar(con, used) > 100 * 1000**2
    limit = "SELECT current_setting('memory_limit')"
    with memory_at_most(con, "40MB"):
        assert memory_bytes(scalar(con, limit)) <= 40 * 1000**2
        assert scalar(con, used) <= 40 * 1000**2
        assert scalar(con, "SELECT count(*) FROM t") == 3_000_000  # the data is all still there
    assert memory_bytes(scalar(con, limit)) == pytest.approx(1000**3, rel=0.05)
    with memory_at_most(con, "4GB"):  # never raised
        assert memory_bytes(scalar(con, limit)) == pytest.approx(1000**3, rel=0.05)
    assert memory_bytes("512 MiB") == 512 * 1024**2 and memory_bytes("4GB") == 4 * 1000**3
