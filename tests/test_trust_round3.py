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
    from kuomian.core import config
    from kuomian.stages import classify

    real = config.street_names

    def names():
        return {c: (hostile if n == "连然街道" else n) for c, n in real().items()}

    monkeypatch.setattr(classify, "street_names", names)
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
