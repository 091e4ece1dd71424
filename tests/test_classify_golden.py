"""Golden fixtures for the classification rules (rules.md; rules/statuses.yaml, rules/groups.yaml).

Each folder under ``tests/golden/classify/<case>/`` is one readable case:

* ``case.yaml`` — ``as_of`` (the run's as-of date), ``shows`` (one sentence: what the
  case demonstrates) and, for a known bug, ``xfail`` (the reason; the case is then a
  strict xfail; ``xfail_raises`` names the expected exception in kuomian.core.errors).
* extract files named so that the ``sources/*.yaml`` globs recognise them
  (``户籍人口.csv``, ``参保信息.csv``, ``纳税主体.csv``, ``个税.csv``, ``新增市场主体.csv``,
  ``在校生.csv``, ``低保对象.csv``, ``平台从业人员.csv``, ``特殊人员名单.csv``).
* ``expected.csv`` — the whole population the run must publish, one row per person:
  ``id_number,status,exclusion_reason,group,group_tags`` (``group_tags`` as ``1|3``;
  blank for null or empty), optionally more ``persons.parquet`` columns
  (``hukou_local``, ``street_code``), and a ``note`` column that is not compared.

IDs are written as placeholders ``{ID:<17 digits>}`` (address code, birth date,
sequence); the test appends the GB 11643 check digit (``make_id``). Every file in the
folder is copied to a temporary sources folder with the placeholders replaced,
``kuomian.commands.run.refresh`` is run at ``as_of``, and persons.parquet is compared with
expected.csv row by row.
"""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from kuomian.commands.run import refresh
from kuomian.core import errors
from tests.conftest import make_id

GOLDEN = Path(__file__).parent / "golden" / "classify"
PLACEHOLDER = re.compile(r"\{ID:([0-9]{17})\}")
REQUIRED_COLUMNS = ["id_number", "status", "exclusion_reason", "group", "group_tags"]
IGNORED_COLUMNS = {"note"}
CASE_FILES = {"case.yaml", "expected.csv"}


def case_dirs() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def read_case(folder: Path) -> dict:
    meta = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    assert isinstance(meta.get("as_of"), date), f"{folder.name}/case.yaml: as_of must be a date"
    assert meta.get("shows"), f"{folder.name}/case.yaml: say in one sentence what the case shows"
    return meta


def fill_ids(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: make_id(m.group(1)), text)


def params():
    out = []
    for folder in case_dirs():
        meta = read_case(folder)
        marks = []
        if meta.get("xfail"):
            raises = getattr(errors, meta["xfail_raises"]) if meta.get("xfail_raises") else None
            marks.append(pytest.mark.xfail(strict=True, reason=meta["xfail"], raises=raises))
        out.append(pytest.param(folder, id=folder.name, marks=marks))
    return out


def cell(value) -> str:
    """A persons.parquet value as expected.csv writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(str(v) for v in sorted(value))
    return str(value)


def read_expected(folder: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(folder / "expected.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames or [] if c not in IGNORED_COLUMNS]
        assert columns[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS, (
            f"{folder.name}/expected.csv must start with {','.join(REQUIRED_COLUMNS)}"
        )
        rows: dict[str, dict[str, str]] = {}
        for n, row in enumerate(reader, start=2):
            assert None not in row, (
                f"{folder.name}/expected.csv line {n}: too many values (a comma in a note?)"
            )
            token = row["id_number"]
            assert PLACEHOLDER.fullmatch(token), (
                f"{folder.name}/expected.csv line {n}: id_number must be {{ID:…}}"
            )
            assert token not in rows, f"{folder.name}/expected.csv line {n}: {token} listed twice"
            rows[token] = {c: (row[c] or "").strip() for c in columns} | {"note": row.get("note") or ""}
    return columns, rows


def run_case(folder: Path, tmp_path: Path, as_of: date) -> pl.DataFrame:
    sources = tmp_path / "sources"
    sources.mkdir()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name not in CASE_FILES:
            (sources / f.name).write_text(fill_ids(f.read_text(encoding="utf-8")), encoding="utf-8")
    refresh(sources, tmp_path / "out", as_of=as_of)
    return pl.read_parquet(tmp_path / "out" / "persons.parquet")


def diff(columns: list[str], expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    lines = []
    for token, exp in expected.items():
        got = actual.get(token)
        label = " ".join(x for x in (token, got and got["name"], exp["note"] and f"({exp['note']})") if x)
        if got is None:
            lines.append(f"missing from persons.parquet: {label}")
            continue
        for c in columns[1:]:
            if exp[c] != got[c]:
                lines.append(f"{label}\n    {c}: expected {exp[c]!r}, got {got[c]!r}")
    for token, got in actual.items():
        if token not in expected:
            shown = ", ".join(f"{c}={got[c]!r}" for c in columns[1:])
            lines.append(f"not expected but in persons.parquet: {token} {got['name']} ({shown})")
    return lines


@pytest.mark.parametrize("folder", params())
def test_golden_case(folder: Path, tmp_path: Path):
    meta = read_case(folder)
    columns, expected = read_expected(folder)
    persons = run_case(folder, tmp_path, meta["as_of"])
    missing = [c for c in columns if c not in persons.columns]
    assert not missing, f"persons.parquet has no column {missing}"
    actual = {}
    for rec in persons.iter_rows(named=True):
        token = "{ID:" + rec["id_number"][:17] + "}"
        actual[token] = {c: cell(rec[c]) for c in columns} | {"name": rec["name"]}
    problems = diff(columns, expected, actual)
    if problems:
        pytest.fail(
            f"golden case {folder.name} (as of {meta['as_of']}): {meta['shows']}\n"
            + "\n".join(f"  - {p}" for p in problems),
            pytrace=False,
        )


# ---------------------------------------------------------------- the golden set itself


def test_golden_fixture_ids_are_valid():
    """Every placeholder expands to a valid 18-character ID with a real birth date."""
    from kuomian.core.ids import standardise_id

    for folder in case_dirs():
        for f in folder.iterdir():
            for prefix in PLACEHOLDER.findall(f.read_text(encoding="utf-8")):
                assert standardise_id(make_id(prefix)).kind == "valid", f"{folder.name}/{f.name}: {prefix}"


def test_golden_cases_cover_every_status_reason_and_group():
    """The golden set (without the xfail cases) shows every status, exclusion reason and group."""
    from schemas.persons import REASONS, STATUSES

    seen = {"status": set(), "exclusion_reason": set(), "group": set()}
    for folder in case_dirs():
        if read_case(folder).get("xfail"):
            continue
        _, rows = read_expected(folder)
        for row in rows.values():
            for k in seen:
                if row[k]:
                    seen[k].add(row[k])
    from kuomian.core.policy import policy

    # the statuses only a survey answer gives are tested in tests/test_after_survey.py
    assert seen["status"] == set(STATUSES) - {s.status for s in policy().statuses.survey}
    assert seen["exclusion_reason"] == set(REASONS)
    assert seen["group"] == {str(g) for g in range(1, 9)}


def test_golden_extract_files_are_recognised_by_name():
    """Every extract file in a case matches exactly one source's globs (no header guessing)."""
    from fnmatch import fnmatch

    from kuomian.core.config import load_sources

    sources = load_sources()
    for folder in case_dirs():
        names = {f.name for f in folder.iterdir() if f.is_file() and f.name not in CASE_FILES}
        assert "户籍人口.csv" in names and "参保信息.csv" in names, (
            f"{folder.name}: household and enrollment are required"
        )
        for name in names:
            hits = [
                s for s, src in sources.items() if any(fnmatch(name.lower(), g.lower()) for g in src.globs)
            ]
            assert len(hits) == 1, f"{folder.name}/{name}: recognised as {hits}"
