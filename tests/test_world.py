"""On generated worlds: `validate` agrees with the generator's truth file by file,
and with every kind of dirt switched on nothing is lost."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.commands.run import refresh, validate
from kuomian.core.errors import KuomianError
from kuomian.synth import DirtConfig, generate

AS_OF = date(2026, 3, 1)


@pytest.fixture(scope="module")
def world20k(tmp_path_factory):
    out = tmp_path_factory.mktemp("world20k")
    generate(out, people=20000, seed=7, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def heavy_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("heavy")
    generate(out, people=3000, seed=11, as_of=AS_OF, dirt=DirtConfig.heavy())
    return out


def test_validate_recognises_every_file_and_counts_match_truth(world20k):
    truth = pl.read_csv(world20k / "truth" / "files.csv")
    lr, sr = validate(world20k / "sources")
    got = {f.name: f for f in lr.files}
    assert set(got) == set(truth["file"].to_list())
    for t in truth.iter_rows(named=True):
        f = got[t["file"]]
        assert f.source == t["source"], t["file"]
        assert f.rows == t["rows"], t["file"]
        quarantined = sum(n for (s, fl, _r), n in sr.quarantined.items() if fl == t["file"])
        assert quarantined == t["quarantined"], t["file"]
        assert sr.duplicates.get((t["source"], t["file"]), 0) == t["duplicate"], t["file"]


def test_validate_quarantine_reasons_match_truth(world20k):
    rows = pl.read_parquet(world20k / "truth" / "rows.parquet")
    want = rows.filter(pl.col("expected") == "quarantined").group_by("file", "quarantine_reason").len()
    _, sr = validate(world20k / "sources")
    got = {(fl, r): n for (_s, fl, r), n in sr.quarantined.items()}
    assert got == {(f, r): n for f, r, n in want.iter_rows()}


def test_validate_command_prints_every_file(world20k):
    res = CliRunner().invoke(app, ["-q", "validate", str(world20k / "sources")])
    assert res.exit_code == 0, res.stderr
    for name in pl.read_csv(world20k / "truth" / "files.csv")["file"].to_list():
        assert f"{name}: " in res.stdout


def test_nothing_lost_with_every_kind_of_dirt(heavy_world, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KuomianError, match="no usable ID number"):  # heavy dirt trips the damage guard ...
        refresh(heavy_world / "sources", out, as_of=AS_OF)
    assert not out.exists()
    res = refresh(heavy_world / "sources", out, as_of=AS_OF, accept_damaged_ids=True)  # ... unless accepted
    assert any("ID damage accepted" in w for w in res.warnings)
    truth = pl.read_parquet(heavy_world / "truth" / "rows.parquet").with_columns(pl.col("row").cast(pl.Int64))
    dirt_kinds = set(truth["dirt"].str.split(",").explode().drop_nulls().to_list()) - {""}
    assert len(dirt_kinds) >= 20, dirt_kinds  # every kind of dirt is present
    links = pl.read_parquet(out / "links.parquet")
    # one links row per input row, no more, no fewer
    assert links.height == truth.height
    assert links.select("source", "file", "row").is_duplicated().sum() == 0
    joined = truth.join(links, on=["source", "file", "row"], how="left")
    assert joined["outcome"].null_count() == 0
    # the generator's junk rows end where they belong, with the reason
    q = joined.filter(pl.col("expected") == "quarantined")
    assert (q["outcome"] == "quarantined").all()
    assert (q["reason"] == q["quarantine_reason"]).all()
    d = joined.filter(pl.col("expected") == "duplicate")
    assert (d["outcome"] == "duplicate").all()
    # reconciliation balances per file, against what the reader counted
    recon = pl.read_csv(out / "reconciliation.csv", encoding="utf8-lossy")
    assert recon.height == truth["file"].n_unique()
    assert recon["是否平衡"].to_list() == [True] * recon.height
    per_file = truth.group_by("file").len()
    assert dict(zip(recon["文件"], recon["读取行数"], strict=True)) == dict(per_file.iter_rows())
    # every quarantined row is in quarantine.parquet with its raw values
    quarantine = pl.read_parquet(out / "quarantine.parquet")
    assert quarantine.height == (links["outcome"] == "quarantined").sum()
    assert quarantine["reason"].null_count() == 0
