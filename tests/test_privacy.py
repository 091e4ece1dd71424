"""Privacy (README.md "Guarantees" → Private by default, person_key).

A demo-sized refresh (3000 people, heavy dirt) runs once through the console script; then:

* no 18- or 15-digit ID number in any output that is not Parquet (CSV, the xlsx XML, the HTML
  report, the manifest), nor on stdout / stderr / the progress lines; Parquet may hold them;
* files 0600 and folders 0700 even under a permissive umask; ``KUOMIAN_SHARED_OUTPUT=1`` follows
  the umask;
* the person_key secret is in no output and its file is 0600; person_key is stable under the same
  key and different under another;
* error messages about a file with an ID in its name or content show the ID masked.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.core.ids import mask_id
from kuomian.synth import DirtConfig, generate, write_bad_files
from tests.conftest import ID15_RE, ID18_RE, LI, ZHANG, assert_no_full_id, write_tiny_sources

AS_OF = date(2026, 3, 1)
KUOMIAN = Path(sys.executable).with_name("kuomian")
CMD = [str(KUOMIAN)] if KUOMIAN.exists() else [sys.executable, "-m", "kuomian.cli"]
HEX64 = re.compile(r"[0-9a-f]{64}")
MASKED = re.compile(r"(?<![0-9])[0-9]{6}\*{8}[0-9]{3}[0-9X](?![0-9])")
ZHANG15 = ZHANG[:6] + ZHANG[8:17]  # the same person's old 15-digit number

runner = CliRunner()


# ---------------------------------------------------------------- helpers


def run_cli(*args, umask: int = 0o022, **env: str) -> subprocess.CompletedProcess:
    """The console script in a subprocess, under ``umask`` (a permissive one by default)."""
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUOMIAN_") or k == "KUOMIAN_STATE"}
    full_env.update(POLARS_MAX_THREADS="2", **env)
    cmd = ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", *CMD, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)


def output_text(path: Path) -> str:
    """What a person (or a program) can read in an output file; an xlsx is its XML parts."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    text = path.read_bytes().decode("utf-8-sig")
    if path.name == "manifest.json":
        # The manifest's SHA-256 digests are hex, and one may hold a run of 15 or 18 decimal digits
        # by chance: check they are digests, then scan everything else.
        m = json.loads(text)
        for f in m["inputs"]:
            assert not f["sha256"] or HEX64.fullmatch(f["sha256"])
            f["sha256"] = "<sha256>"
        for k, v in m["rules"].items():
            assert HEX64.fullmatch(v)
            m["rules"][k] = "<sha256>"
        text = json.dumps(m, ensure_ascii=False)
    return text


def non_parquet_outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix != ".parquet")


def assert_no_id_in_outputs(out: Path) -> dict[str, str]:
    texts = {}
    for p in non_parquet_outputs(out):
        rel = p.relative_to(out).as_posix()
        texts[rel] = output_text(p)
        try:
            assert_no_full_id(texts[rel])
        except AssertionError as e:
            m = re.search(ID18_RE, texts[rel]) or re.search(ID15_RE, texts[rel])
            where = texts[rel][max(0, m.start() - 60) : m.start()] if m else ""
            pytest.fail(f"{rel}: {e} (after …{where!r})")
    return texts


def modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root.parent).as_posix(): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


# ---------------------------------------------------------------- the demo run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    generate(root, people=3000, seed=5, as_of=AS_OF, dirt=DirtConfig.heavy())
    state = root / "state"
    out = root / "out"
    # heavy dirt trips the damage guard (tested in test_office_files): accepted here
    res = run_cli(
        "refresh", root / "sources", "--out", out, "--as-of", AS_OF.isoformat(), "--accept-damaged-ids",
        KUOMIAN_STATE=str(state),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    ids = pl.read_parquet(root / "truth" / "persons.parquet")["id_number"].to_list()
    return SimpleNamespace(root=root, out=out, state=state, stdout=res.stdout, stderr=res.stderr, ids=ids)


def test_no_full_id_in_any_non_parquet_output(demo):
    texts = assert_no_id_in_outputs(demo.out)
    kinds = {Path(rel).suffix for rel in texts}
    assert {".csv", ".xlsx", ".html", ".json"} <= kinds, kinds
    handoffs = [rel for rel in texts if rel.startswith("handoff/")]
    assert len(handoffs) >= 2 and any(h.endswith(".xlsx") for h in handoffs)
    # the IDs are there, masked (not dropped): the hand-offs and the review sheet show them
    for rel in handoffs:
        assert MASKED.search(texts[rel]), rel
    assert MASKED.search(texts["review.xlsx"])


def test_no_true_id_in_any_form(demo):
    """Stronger than the pattern: none of the world's real IDs, in 18-, 17- or 15-digit form,
    appears anywhere in the non-Parquet outputs or the console output (tags of the xlsx XML removed)."""
    forms = set()
    for i in demo.ids:
        forms.update({i, i.lower(), i[:17], i[:6] + i[8:17]})
    sizes = sorted({len(f) for f in forms})
    texts = [output_text(p) for p in non_parquet_outputs(demo.out)] + [demo.stdout, demo.stderr]
    texts += [re.sub(r"<[^>]+>", "", t) for t in texts]
    hits = []
    for t in texts:
        for run in re.findall(r"[0-9Xx]{15,}", t):
            for n in sizes:
                hits += [run[k : k + n] for k in range(len(run) - n + 1) if run[k : k + n] in forms]
    assert not hits, f"{len(hits)} real IDs leaked"


def test_parquet_outputs_do_hold_the_ids(demo):
    """The positive control: the detector finds the IDs where they are allowed to be."""
    persons = pl.read_parquet(demo.out / "persons.parquet")
    ids = persons["id_number"].drop_nulls().to_list()
    assert len(ids) > 2500 and set(ids) <= set(demo.ids)
    with pytest.raises(AssertionError):
        assert_no_full_id("\n".join(ids[:3]))
    with pytest.raises(AssertionError):
        assert_no_full_id(ids[0][:6] + ids[0][8:17])  # 15-digit form
    assert pl.read_parquet(demo.out / "links.parquet")["id_number"].drop_nulls().len() > 0


def test_console_and_progress_show_no_full_id(demo):
    assert re.search(r"^\[\d\d:\d\d:\d\d\] reading .+ as household$", demo.stderr, re.M), (
        "progress lines expected"
    )
    assert "published" in demo.stdout
    assert_no_full_id(demo.stdout)
    assert_no_full_id(demo.stderr)


def test_outputs_are_owner_only_under_a_permissive_umask(demo):
    m = modes(demo.out)
    assert m["out"] == 0o700
    wrong = {p: oct(v) for p, v in m.items() if v != (0o700 if (demo.out.parent / p).is_dir() else 0o600)}
    assert not wrong, wrong
    assert (demo.out.parent / ".out.lock").stat().st_mode & 0o777 == 0o600


def test_shared_output_follows_the_umask(tiny_sources, tmp_path):
    out = tmp_path / "shared"
    res = run_cli(
        "-q", "refresh", tiny_sources, "--out", out, "--as-of", "2026-03-01", KUOMIAN_SHARED_OUTPUT="1"
    )
    assert res.returncode == 0, res.stderr
    m = modes(out)
    assert len(m) > 10
    wrong = {p: oct(v) for p, v in m.items() if v != (0o755 if (tmp_path / p).is_dir() else 0o644)}
    assert not wrong, wrong
    # and with a stricter umask, exactly that umask
    out = tmp_path / "shared027"
    res = run_cli("-q", "refresh", tiny_sources, "--out", out, umask=0o027, KUOMIAN_SHARED_OUTPUT="1")
    assert res.returncode == 0, res.stderr
    wrong = {p: oct(v) for p, v in modes(out).items() if v != (0o750 if (tmp_path / p).is_dir() else 0o640)}
    assert not wrong, wrong


# ---------------------------------------------------------------- the key and person_key


def test_the_secret_is_in_no_output(demo):
    key_file = demo.state / "person_key.secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert demo.state.stat().st_mode & 0o777 == 0o700
    hexkey = key_file.read_text("ascii").strip()
    assert HEX64.fullmatch(hexkey)
    raw = bytes.fromhex(hexkey)
    needles = [hexkey.encode(), hexkey.upper().encode(), raw, base64.b64encode(raw), base64.b32encode(raw)]
    files = [p for p in demo.out.rglob("*") if p.is_file()]
    assert len(files) > 15
    for p in files:  # Parquet included
        data = p.read_bytes()
        assert not any(n in data for n in needles), p
    assert hexkey not in demo.stdout + demo.stderr
    assert not key_file.is_relative_to(demo.out)


def _keys(out: Path) -> dict[str, str]:
    df = pl.read_parquet(out / "persons.parquet").select("id_number", "person_key")
    assert df["person_key"].null_count() == 0 and df["person_key"].n_unique() == df.height
    assert all(re.fullmatch(r"P[A-HJ-NP-R]{16}", k) for k in df["person_key"])  # README: P + 16 letters
    return dict(df.iter_rows())


def test_person_key_is_stable_under_the_same_key_and_changes_with_another(demo, tmp_path):
    first = _keys(demo.out)
    again = run_cli(
        "-q", "refresh", demo.root / "sources", "--out", tmp_path / "again", "--as-of", AS_OF.isoformat(),
        "--accept-damaged-ids", KUOMIAN_STATE=str(demo.state),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert _keys(tmp_path / "again") == first

    other_key = tmp_path / "other" / "bureau.key"
    other = run_cli(
        "refresh", demo.root / "sources", "--out", tmp_path / "other_out", "--as-of", AS_OF.isoformat(),
        "--accept-damaged-ids", KUOMIAN_STATE=str(demo.state), KUOMIAN_KEY_FILE=str(other_key),
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert "created a new person_key secret" in other.stderr
    assert other_key.stat().st_mode & 0o777 == 0o600
    changed = _keys(tmp_path / "other_out")
    assert set(changed) == set(first)
    assert all(changed[i] != first[i] for i in first)
    # the hand-offs carry the same person_key as persons.parquet (编号)
    handoff = next((tmp_path / "other_out" / "handoff").glob("*.csv"))
    with open(handoff, encoding="utf-8-sig", newline="") as fh:
        shown = {r["编号"] for r in csv.DictReader(fh)}
    assert shown and shown <= set(changed.values())


# ---------------------------------------------------------------- error messages and file names


def _invoke(*args) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def _error_cases(folder: Path) -> dict[str, tuple[list, str]]:
    """name -> (CLI arguments, a fragment the error must show (with the ID masked))."""
    bad = write_bad_files(folder / "bad")
    cases = {}

    src = write_tiny_sources(folder / "truncated")
    (src / f"参保信息_{ZHANG}.csv").write_text(
        f"身份证号,姓名,险种,参保状态\n{LI},李娜,职工养老,参保缴费\n{ZHANG},张", "utf-8"
    )
    cases["id in the name and the content of a truncated file"] = (
        ["refresh", src, "--out", folder / "o1"],
        f"参保信息_{mask_id(ZHANG)}.csv, row 3: the file looks cut off",
    )
    src = write_tiny_sources(folder / "dupcols")
    (src / "低保名录.csv").write_text(f"身份证号,姓名,{ZHANG},{ZHANG}\n{LI},李娜,低保,x\n", "utf-8")
    cases["an ID as a duplicated column name"] = (
        ["refresh", src, "--out", folder / "o2"],
        f"the column name '{mask_id(ZHANG)}' appears 2 times",
    )
    src = write_tiny_sources(folder / "id15")
    (src / f"纳税主体_{ZHANG15}.xlsx").write_bytes(bad["corrupt_xlsx"].read_bytes())
    cases["a 15-digit ID in the name of a broken workbook"] = (
        ["refresh", src, "--out", folder / "o3"],
        f"纳税主体_{mask_id(ZHANG15)}.xlsx: the workbook cannot be read",
    )
    src = write_tiny_sources(folder / "headeronly")
    (src / f"低保_{LI}.csv").write_text(f"身份证号,姓名,救助类别,{LI}\n", "utf-8")
    cases["a header-only file with IDs in its name and header"] = (
        ["refresh", src, "--out", folder / "o4"],
        f"低保_{mask_id(LI)}.csv: the file has column headers but no data rows",
    )
    src = write_tiny_sources(folder / "override")
    cases["--source pointing at a missing file named by an ID"] = (
        ["refresh", src, "--out", folder / "o5", "--source", f"tax={folder / ZHANG}.xlsx"],
        f"{mask_id(ZHANG)}.xlsx",
    )
    cases["a sources folder named by an ID"] = (
        ["refresh", folder / "nowhere" / ZHANG, "--out", folder / "o6"],
        f"nowhere/{mask_id(ZHANG)}: no such folder",
    )
    cases["validate on a truncated file named by an ID"] = (
        ["validate", folder / "truncated"],
        f"参保信息_{mask_id(ZHANG)}.csv, row 3",
    )
    return cases


CASES = [
    "id in the name and the content of a truncated file",
    "an ID as a duplicated column name",
    "a 15-digit ID in the name of a broken workbook",
    "a header-only file with IDs in its name and header",
    "--source pointing at a missing file named by an ID",
    "a sources folder named by an ID",
    "validate on a truncated file named by an ID",
]


@pytest.mark.parametrize("case", CASES)
def test_error_messages_mask_ids(case, tmp_path):
    args, fragment = _error_cases(tmp_path)[case]
    code, stdout, stderr = _invoke(*args)
    assert code == 1, (stdout, stderr)
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in stderr
    assert_no_full_id(stdout)
    assert_no_full_id(stderr)
    for secret in (ZHANG, LI, ZHANG15, ZHANG[:17]):
        assert secret not in stdout + stderr


def test_a_file_named_by_an_id_does_not_leak_into_the_outputs(tmp_path):
    """A good extract whose name holds an ID: every output names it with the ID masked."""
    src = write_tiny_sources(tmp_path / "sources")
    named = src / f"户籍人口_{ZHANG}.csv"
    (src / "户籍人口_连然街道.csv").rename(named)
    out = tmp_path / "out"
    code, stdout, stderr = _invoke("refresh", src, "--out", out, "--as-of", "2026-03-01")
    assert code == 0, stderr
    assert_no_full_id(stdout)
    assert_no_full_id(stderr)
    texts = assert_no_id_in_outputs(out)
    shown = f"户籍人口_{mask_id(ZHANG)}.csv"
    assert shown in texts["reconciliation.csv"] and shown in texts["manifest.json"]
    with open(out / "reconciliation.csv", encoding="utf-8-sig", newline="") as fh:
        assert all(r["是否平衡"] == "true" for r in csv.DictReader(fh))
    # links.parquet names the file the same way, so that the two agree
    assert set(pl.read_parquet(out / "links.parquet")["file"]) == {shown, "参保信息.csv"}
    code, stdout, stderr = _invoke("validate", src)
    assert code == 0, stderr
    assert shown in stdout
    assert_no_full_id(stdout + stderr)


def test_summaries_mask_ids_in_file_and_folder_names(tiny_sources, tmp_path):
    """The stdout summaries name files and folders as the progress lines do: IDs masked."""
    out = tmp_path / f"registry_{ZHANG}"
    code, stdout, stderr = _invoke("refresh", tiny_sources, "--out", out, "--as-of", "2026-03-01")
    assert code == 0, stderr
    assert f"registry_{mask_id(ZHANG)}" in stdout
    assert_no_full_id(stdout + stderr)
    lst = tmp_path / f"名单_{LI}.csv"
    lst.write_text(f"姓名,身份证号\n李娜,{LI}\n", "utf-8")
    code, stdout, stderr = _invoke("check", lst, "--registry", out, "--out", tmp_path / f"结果_{LI}.csv")
    assert code == 0, stderr
    assert f"名单_{mask_id(LI)}.csv" in stdout and f"结果_{mask_id(LI)}.csv" in stdout
    assert_no_full_id(stdout + stderr)
