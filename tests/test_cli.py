"""Every command's help and error text, in-process (typer's CliRunner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from tests.conftest import LI, ZHANG, assert_no_full_id

runner = CliRunner()


def _leaf_commands():
    """Every command the typer app registers (groups walked), as (path, click command)."""
    import typer

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    return list(walk(typer.main.get_command(app), []))


COMMANDS = _leaf_commands()
IDS = [" ".join(path) for path, _ in COMMANDS]


def test_the_command_list_is_read_from_the_app():
    names = set(IDS)
    # the walk finds the nested groups' commands too
    assert {"refresh", "validate", "review import", "survey import", "rules check"} <= names
    assert len(names) >= 11


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_every_command_has_help_with_an_example(path, cmd):
    res = runner.invoke(app, [*path, "--help"])
    assert res.exit_code == 0
    assert "Example: kuomian" in res.stdout
    parent = runner.invoke(app, [*path[:-1], "--help"])
    assert path[-1] in parent.stdout


def _bad_invocation(path, cmd, tmp_path) -> list[str]:
    """The command with every required argument and option, and its policy folder, pointing at
    paths that do not exist (``rules export`` writes a new folder, so it gets a file instead)."""
    args: list[str] = [*path]
    for p in cmd.params:
        if not p.required:
            continue
        value = tmp_path / f"nope-{p.name}"
        if path == ["rules", "export"]:
            value.write_text("not a folder", encoding="utf-8")
        if p.param_type_name == "argument":
            args.append(str(value))
        else:
            args += [p.opts[0], f"{value}.csv" if p.name == "out" else str(value)]
    if any(p.name == "rules" for p in cmd.params):
        args += ["--rules", str(tmp_path / "nope-rules")]
    return args


# `clean` takes no input: there is nothing a user can hand it wrongly.
WITH_INPUT = [(path, cmd) for path, cmd in COMMANDS if path != ["clean"]]


@pytest.mark.parametrize("path,cmd", WITH_INPUT, ids=[" ".join(p) for p, _ in WITH_INPUT])
def test_every_command_fails_with_one_line(path, cmd, tmp_path):
    res = runner.invoke(app, _bad_invocation(path, cmd, tmp_path))
    assert res.exit_code == 1, (res.stdout, res.stderr)
    # progress lines ("[hh:mm:ss] …") may come first; the error itself is one line
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("[")]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr


def test_survey_import_help_gives_the_exit_codes():
    res = runner.invoke(app, ["survey", "import", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "Exit codes: 0" in text and "1 some rows were rejected" in text


def _err(res) -> str:
    return res.stderr


def test_refresh_end_to_end_on_tiny_sources(tiny_sources, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["-q", "refresh", str(tiny_sources), "--out", str(out), "--as-of", "2026-03-01"])
    assert res.exit_code == 0, res.stderr
    assert "published" in res.stdout
    assert (out / "persons.parquet").exists()
    assert_no_full_id(res.stdout + res.stderr)


def test_missing_required_source(tiny_sources, tmp_path):
    (tiny_sources / "参保信息.csv").unlink()
    res = runner.invoke(app, ["refresh", str(tiny_sources), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    msg = _err(res)
    assert "required source enrollment" in msg and "--source enrollment=PATH" in msg
    assert "Traceback" not in msg
    assert not (tmp_path / "o").exists()


def test_unreadable_workbook(tiny_sources, tmp_path):
    (tiny_sources / "低保名录.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    res = runner.invoke(app, ["refresh", str(tiny_sources), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "低保名录.xlsx" in _err(res) and "cannot be read" in _err(res)
    assert "Traceback" not in _err(res)


def test_unreadable_optional_file_can_be_skipped(tiny_sources, tmp_path):
    (tiny_sources / "低保名录.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    res = runner.invoke(
        app, ["-q", "refresh", str(tiny_sources), "--out", str(tmp_path / "o"), "--skip-bad-files"]
    )
    assert res.exit_code == 0, res.stderr
    import json

    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text("utf-8"))
    skipped = [f for f in manifest["inputs"] if f["recognised_by"] == "skipped"]
    assert [f["file"] for f in skipped] == ["低保名录.xlsx"]


def test_file_in_undeclared_encoding(tiny_sources, tmp_path):
    # A UTF-8 BOM followed by GB18030 bytes: the file says one thing and is another.
    body = f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n".encode("gb18030")
    (tiny_sources / "低保名录.csv").write_bytes(b"\xef\xbb\xbf" + body)
    res = runner.invoke(app, ["refresh", str(tiny_sources), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "低保名录.csv" in _err(res) and "not UTF-8" in _err(res)
    assert_no_full_id(_err(res))


def test_header_only_file(tiny_sources, tmp_path):
    (tiny_sources / "低保名录.csv").write_text("身份证号,姓名,救助类别\n", encoding="utf-8")
    res = runner.invoke(app, ["validate", str(tiny_sources)])
    assert res.exit_code == 1
    assert "低保名录.csv" in _err(res) and "no data rows" in _err(res)


def test_empty_file(tiny_sources, tmp_path):
    (tiny_sources / "低保名录.csv").write_bytes(b"")
    res = runner.invoke(app, ["validate", str(tiny_sources)])
    assert res.exit_code == 1
    assert "低保名录.csv" in _err(res) and "empty" in _err(res)


def test_truncated_csv_names_the_row(tiny_sources):
    (tiny_sources / "低保名录.csv").write_text(
        f"身份证号,姓名,救助类别\n{ZHANG},张伟,低保\n{LI},李", encoding="utf-8"
    )
    res = runner.invoke(app, ["validate", str(tiny_sources)])
    assert res.exit_code == 1
    assert "row 3" in _err(res) and "cut off" in _err(res)
    assert_no_full_id(_err(res))


def test_file_claimed_by_two_sources(tiny_sources):
    (tiny_sources / "在校生名单.csv").write_text("身份证号,姓名,学籍状态\n", encoding="utf-8")
    res = runner.invoke(app, ["validate", str(tiny_sources)])
    assert res.exit_code == 1
    assert "more than one source" in _err(res) and "roster" in _err(res) and "student" in _err(res)


def test_source_override_resolves_the_claim(tiny_sources):
    f = tiny_sources / "在校生名单.csv"
    f.write_text(f"身份证号,姓名,学籍状态\n{ZHANG},张伟,在读\n", encoding="utf-8")
    res = runner.invoke(app, ["validate", str(tiny_sources), "--source", f"student={f}"])
    assert res.exit_code == 0, res.stderr
    assert "在校生名单.csv: student (by override), 1 rows" in res.stdout


def test_bad_override_syntax(tiny_sources):
    res = runner.invoke(app, ["validate", str(tiny_sources), "--source", "nonsense"])
    assert res.exit_code == 1
    assert "NAME=PATH" in _err(res)


def test_existing_out_dir_needs_force(tiny_sources, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    res = runner.invoke(app, ["refresh", str(tiny_sources), "--out", str(out)])
    assert res.exit_code == 3
    assert "--force" in _err(res)


def test_bad_as_of(tiny_sources, tmp_path):
    res = runner.invoke(
        app, ["refresh", str(tiny_sources), "--out", str(tmp_path / "o"), "--as-of", "1/3/2026"]
    )
    assert res.exit_code == 1
    assert "YYYY-MM-DD" in _err(res)


def test_a_missing_sources_folder_makes_no_key_and_no_output(tmp_path):
    import os

    state = Path(os.environ["KUOMIAN_STATE"])
    res = runner.invoke(app, ["refresh", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no such folder" in res.stderr
    assert not (state / "person_key.secret").exists() and not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o")]  # no staging, no lock


def test_missing_sources_folder(tmp_path):
    res = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert res.exit_code == 1
    assert "no such folder" in _err(res)


def test_validate_reports_per_file(tiny_sources):
    with open(tiny_sources / "户籍人口_连然街道.csv", "a", encoding="utf-8") as fh:
        fh.write(",,,,,,,,\n合计,3,,,,,,,\n")
    res = runner.invoke(app, ["validate", str(tiny_sources)])
    assert res.exit_code == 0, res.stderr
    assert "户籍人口_连然街道.csv: household (by glob), 5 rows" in res.stdout
    assert "empty_row 1" in res.stdout and "total_row 1" in res.stdout
    assert_no_full_id(res.stdout + res.stderr)
