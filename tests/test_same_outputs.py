"""The same outputs as before the code was rearranged (issue 13), apart from the new columns.

``tests/golden/outputs_2000/`` holds what the refresh of commit 3555d94 (the package arranged
by role, before the policy objects, the stage loop, the link steps over named tables, the
loader's sheets and the trust boundary) published for a tidy 2,000-person world, seed 1, as-of
2026-03-01, under a fixed key: persons (without ``id_number``), links, quarantine, indicators
and employers. This test refreshes the same world with today's code and compares, leaving out
only the columns added since (``pension_date``, ``measure``, ``sheet``, ``review_evidence``, ``shared_id``,
the survey's of issue 25).

When a change is meant to alter these outputs, regenerate the golden files with
``python tests/test_same_outputs.py`` and say in the commit what changed and why.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

GOLDEN = Path(__file__).parent / "golden" / "outputs_2000"
AS_OF = date(2026, 3, 1)
# issue 25: the new survey answers, their evidence and effects, this year's key targets
SURVEY_COLUMNS = (
    "visit_result", "income_band", "employment", "survey_file", "survey_row", "not_found_visits", "not_found_on",
    "survey_flag", "extract_status", "extract_exclusion_reason", "extract_group", "target_priority", "target_reason",
    "prev_target_priority",
)  # fmt: skip
NEW_COLUMNS = ("pension_date", "measure", "id_number", "review_evidence", "shared_id", *SURVEY_COLUMNS)


def snapshot(root: Path) -> dict[str, bytes]:
    """Generate the world under ``root``, refresh it, and return the comparable outputs as CSV."""
    from kuomian.commands.run import refresh
    from kuomian.synth import generate

    world = root / "world"
    generate(world, people=2000, seed=1, as_of=AS_OF)
    refresh(world / "sources", world / "out", as_of=AS_OF, force=True)
    out = world / "out"
    persons = pl.read_parquet(out / "persons.parquet")
    persons = persons.drop([c for c in NEW_COLUMNS if c in persons.columns]).sort("person_key")
    persons = persons.with_columns(
        [
            pl.col(c).cast(pl.List(pl.String)).list.join("|")
            for c, d in persons.schema.items()
            if isinstance(d, pl.List)
        ]
    )
    links = pl.read_parquet(out / "links.parquet").select(
        "source", "file", "row", "outcome", "person_key", "match_rule", "confidence"
    )
    quarantine = pl.read_parquet(out / "quarantine.parquet").select("source", "file", "row", "reason")
    frames = {
        "persons": persons,
        "links": links.sort("source", "file", "row"),
        "quarantine": quarantine.sort("source", "file", "row"),
    }
    snap = {}
    for name, df in frames.items():
        buf = io.BytesIO()
        df.write_csv(buf)
        snap[name] = buf.getvalue()
    for name in ("indicators", "employers"):
        snap[name] = (out / f"{name}.csv").read_bytes()
    return snap


def fixed_key(root: Path) -> dict[str, str]:
    key = root / "key.secret"
    key.write_text("ab" * 32)
    os.chmod(key, 0o600)
    return {"KUOMIAN_KEY_FILE": str(key), "KUOMIAN_STATE": str(root / "state")}


@pytest.mark.parametrize("name", ["persons", "links", "quarantine", "indicators", "employers"])
def test_outputs_are_the_same_as_before_apart_from_new_columns(name, same_world_snapshot):
    golden = gzip.decompress((GOLDEN / f"{name}.csv.gz").read_bytes())
    got = same_world_snapshot[name]
    if got != golden:
        old = golden.decode("utf-8-sig").splitlines()
        new = got.decode("utf-8-sig").splitlines()
        diff = [
            f"line {i + 1}: was {a!r}, now {b!r}"
            for i, (a, b) in enumerate(zip(old, new, strict=False))
            if a != b
        ]
        pytest.fail(f"{name}: {len(old)} → {len(new)} lines; first differences: {diff[:3]}")


@pytest.fixture(scope="module")
def same_world_snapshot(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("same_outputs")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in fixed_key(root).items():
            mp.setenv(k, v)
        return snapshot(root)


if __name__ == "__main__":  # regenerate the golden files (only for an intended change)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(fixed_key(Path(tmp)))
        for name, data in snapshot(Path(tmp)).items():
            (GOLDEN / f"{name}.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    sys.exit(0)
