"""Standardising a source in parts (Kunming's scale) gives exactly what one part gives."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuomian.core.db import connect, frame
from kuomian.stages import standardise as std_mod
from kuomian.stages.load import load
from kuomian.synth import DirtConfig, generate

AS_OF = date(2026, 3, 1)


@pytest.fixture(scope="module")
def dirty_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("parts")
    generate(out, people=3000, seed=21, as_of=AS_OF, dirt=DirtConfig.heavy())
    return out / "sources"


def _standardise(sources, part_rows: int | None, workers: int | None = None):
    con = connect()
    loaded = load(sources)
    saved = std_mod.PART_ROWS, std_mod.STANDARDISE_WORKERS
    std_mod.PART_ROWS = part_rows or saved[0]
    std_mod.STANDARDISE_WORKERS = workers or saved[1]
    try:
        report = std_mod.standardise(con, loaded)
    finally:
        std_mod.PART_ROWS, std_mod.STANDARDISE_WORKERS = saved
    tables = {
        name: frame(
            con,
            f"SELECT * FROM {name} ORDER BY {'row_id' if name != 'std_quarantine_raw' else 'source, file, row'}",
        )
        for name in ["std_household", "std_enrollment", "std_quarantine_raw"]
    }
    return report, tables


def test_parts_of_whole_files_equal_one_part(dirty_world):
    one_report, one = _standardise(dirty_world, None)
    # the household extract comes in nine street files: parts of ~one file each
    many_report, many = _standardise(dirty_world, 500)
    assert sum(one_report.duplicates.values()) > 0, "the heavy world should hold exact duplicates"
    assert many_report.rows == one_report.rows
    assert many_report.quarantined == one_report.quarantined
    assert many_report.duplicates == one_report.duplicates
    assert many_report.id_kinds == one_report.id_kinds
    for name, df in one.items():
        assert many[name].equals(df), name


def test_sources_standardised_side_by_side_equal_one_after_the_other(dirty_world):
    one_report, one = _standardise(dirty_world, None, workers=1)
    two_report, two = _standardise(dirty_world, None, workers=2)
    assert two_report == one_report
    for name, df in one.items():
        assert two[name].equals(df), name


def test_a_row_repeated_in_a_later_part_is_a_duplicate():
    row = {"source": "household", "file": "a.csv", "row": 2, "id_number": "53018119900307001X"}
    schema = {"source": pl.String, "file": pl.String, "row": pl.Int64, "id_number": pl.String}
    first = pl.DataFrame([row], schema=schema)
    later = pl.DataFrame([{**row, "file": "b.csv", "row": 7}], schema=schema)
    seen = std_mod.Duplicates()
    h = {"_dup_h1": 11, "_dup_h2": 22}
    a = seen.mark(
        first.with_columns(
            row_state=pl.lit("ok"),
            reason=pl.lit(None, pl.String),
            **{k: pl.lit(v, pl.UInt64) for k, v in h.items()},
        )
    )
    b = seen.mark(
        later.with_columns(
            row_state=pl.lit("ok"),
            reason=pl.lit(None, pl.String),
            **{k: pl.lit(v, pl.UInt64) for k, v in h.items()},
        )
    )
    assert a["row_state"].to_list() == ["ok"]
    assert b["row_state"].to_list() == ["duplicate"]
    assert b["reason"].to_list() == ["exact_duplicate"]


def test_parts_are_whole_files_in_order():
    frames = [pl.DataFrame({"x": list(range(n))}) for n in (3, 4, 10, 1, 1)]
    parts = list(std_mod.parts_of(frames, part_rows=6))
    assert [p.height for p in parts] == [3, 4, 10, 2]
    assert frames == []  # handed over: each frame freed once its part is built


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2), st.booleans()), max_size=60),
    st.lists(st.integers(1, 15), min_size=1, max_size=6),
)
def test_duplicates_across_parts_equal_duplicates_in_one_frame(rows, cuts):
    """Tiny hash ranges force rows that share the first hash but not the second."""
    frame = pl.DataFrame(
        {
            "_dup_h1": [h1 if usable else None for h1, _, usable in rows],
            "_dup_h2": [h2 if usable else None for _, h2, usable in rows],
            "row_state": ["ok" if usable else "quarantined" for *_, usable in rows],
            "reason": [None if usable else "empty_row" for *_, usable in rows],
        },
        schema={"_dup_h1": pl.UInt64, "_dup_h2": pl.UInt64, "row_state": pl.String, "reason": pl.String},
    )
    whole = std_mod.Duplicates().mark(frame)
    tracker, parts, start = std_mod.Duplicates(), [], 0
    for size in cuts:
        parts.append(tracker.mark(frame.slice(start, size)))
        start += size
    parts.append(tracker.mark(frame.slice(start)))
    assert pl.concat(parts).equals(whole)
