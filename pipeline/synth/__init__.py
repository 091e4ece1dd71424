"""Deterministic synthetic Anning (安宁市) extracts with ground truth.

``generate(out_dir, people, seed, as_of, dirt)`` writes (after removing the files
already directly in those two folders):

* ``out_dir/sources/``: the extract files as the departments export them (xlsx, csv in
  UTF-8 / UTF-8 with BOM / GB18030, one parquet with string columns), dirty per ``dirt``;
* ``out_dir/truth/persons.parquet``: one row per world person (every one appears in some
  extract row): ``id_number`` (true 18-digit ID), ``name`` (legal name, U+00B7 dot),
  ``sex``, ``birth_date`` (Date), ``in_population``, ``hukou_local``, ``hukou_type``,
  ``street_code`` (12 digits; non-local: the street their rows give, else null),
  ``community``, ``status``, ``exclusion_reason``, ``group`` (Int64, null outside the
  registry), ``group_tags`` (List[Int64], sorted), ``registry``. Computed from the clean
  world by an independent implementation of rules.md (see ``truth.py``); people outside
  the population (enrollment / student only) have null status;
* ``out_dir/truth/rows.parquet``: one row per data row of every extract file (and per footer
  row of a shaped sheet): ``source``, ``file``, ``sheet`` (the sheet's name in a workbook, ""
  for CSV and Parquet), ``row`` (the row number the user sees in that sheet, title rows
  included; header = 1 in a tidy file), ``person_id`` (null for empty / total / footer /
  no-identity rows), ``dirt`` (comma-separated kinds, "" if clean), ``expected`` (person |
  unmatched | duplicate | quarantined), ``quarantine_reason`` (empty_row | total_row |
  footer_row | no_identity | base_id_unusable | null), ``shape`` (comma-separated shape kinds
  of the row's sheet, see ``shapes.py``; "" in a tidy file);
* ``out_dir/truth/files.csv``: file, source, format, encoding, rows, and the number of
  rows per expected value.

``shapes=ShapeConfig.real()`` gives a real-shaped world (``shapes.py``): some files become
workbooks as departments send them (title rows, two-row headers, a sheet per street or category,
an instructions sheet, an empty sheet, footers, .xls / .ods through LibreOffice, number cells in ID
columns; and, files round 2: merged 社区 / 户号 cells, an HTML-table and a SpreadsheetML ".xls", a
.tsv, a UTF-16 .txt, a CSV ending in Ctrl-Z, ``="…"`` ID cells, and ``2025备份/`` with copies of some
files, which are not extracts and are not in the truth; the summary lists them as ``not_read``);
its truth persons have ``id_damaged`` (the person's only row has a number-cell ID).

``people`` is the size of the household (户籍) population; non-local people (in the
tax, income, market, low-income, platform and roster extracts only) and outsiders (in
enrollment / student only, never in the population) come on top (about +3%).

``generate_years(out_dir, people, seed, as_of, years=2, dirt)`` writes the same world over
consecutive years (``out_dir/year1``, ``out_dir/year2``, …, each with ``sources/`` and
``truth/`` as above; year 1 is exactly what ``generate`` writes): each year is the previous
one a year later (enrolments, scheme switches, deaths, move-outs, street moves, births,
16th birthdays, graduations, new entities and platform workers, people leaving lists; see
``age.py``), and its truth adds ``transitions.parquet``, the categories ``kuomian compare``
should find between the two years.

Destructive ID dirt (typo, swap, Excel number/scientific, blank, a relative's ID) is only
applied to rows of household people and outsiders, never to non-local people, whose ID
could then not be recovered from any other source.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import shutil
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa

from .age import CATEGORIES, AgeRates, age_world, transitions
from .bad import write_bad_files
from .dirt import DIRT_KINDS, DirtConfig
from .render import build_plans, render_file, write_book, write_file
from .shapes import BACKUP_FOLDER, SHAPE_KINDS, ShapeConfig, apply_shapes, convert, write_backups
from .truth import compute_persons
from .world import LOCAL, NONLOCAL, World, _Gen, build_world

__all__ = [
    "DirtConfig", "DIRT_KINDS", "ShapeConfig", "SHAPE_KINDS", "generate", "generate_sharded", "generate_years", "AgeRates", "write_bad_files", "build_world", "World",
    "generate_with_later_enrolment",
]  # fmt: skip

EXPECTED_VALUES = ("person", "unmatched", "duplicate", "quarantined")

ROWS_ARROW = {
    "source": pa.string(),
    "file": pa.string(),
    "sheet": pa.string(),
    "row": pa.int32(),
    "person_id": pa.string(),
    "dirt": pa.string(),
    "expected": pa.string(),
    "quarantine_reason": pa.string(),
    "shape": pa.string(),
}

# (world, plans, books, dirt config, seed, sources dir, conversion dir), shared with forked workers
_JOB: tuple | None = None


def _render_job(b: int) -> tuple[int, list[dict]]:
    """Render and write the file ``books[b]`` (the indexes of its plans: one per sheet)."""
    assert _JOB is not None
    w, plans, books, cfg, seed, src_dir, convert_dir = _JOB
    rfs = [render_file(plans[i], w, cfg, seed) for i in books[b]]
    write_book(rfs, src_dir, convert_dir)
    return b, [rf.truth for rf in rfs]


def _clear(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        if f.is_file():
            f.unlink()


def generate(
    out_dir: Path,
    people: int = 20000,
    seed: int = 1,
    as_of: date = date(2026, 3, 1),
    dirt: DirtConfig | None = None,
    workers: int | None = None,
    shapes: ShapeConfig | None = None,
) -> dict:
    """Generate the extracts and the ground truth; return a small summary.

    ``workers``: processes rendering the files (default: 2 from 100 000 people on, else 1).
    The output does not depend on it. ``shapes``: real-file shapes (``ShapeConfig.real()``:
    title rows, several sheets, footers, .xls / .ods, …; see ``shapes.py``); default tidy.
    """
    t0 = time.perf_counter()
    w = build_world(people, seed, as_of)
    summary, _ = write_world(w, Path(out_dir), people, seed, seed, dirt, workers, shapes)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def generate_sharded(
    out_dir: Path,
    people: int,
    seed: int = 1,
    as_of: date = date(2026, 3, 1),
    shard_people: int = 500_000,
    dirt: DirtConfig | None = None,
    workers: int | None = None,
    progress=lambda msg: None,
    shapes: ShapeConfig | None = None,
) -> dict:
    """A world too big to hold in memory at once (Kunming, 8.5M): districts of at most
    ``shard_people`` people, generated one after the other.

    District ``i`` is an Anning-like world with seed ``seed * 1000 + i``; its extracts go to
    ``out_dir/sources/dNN_<name>`` (each district sends its own files, as Kunming's would; all
    directly in SOURCES_DIR, since only those are extracts: a subfolder is never read), its
    truth is appended to ``out_dir/truth`` with ``file`` written the same way; a real-shaped
    district's backup copies go to ``sources/2025备份/dNN_<name>``. ID numbers and entity codes are unique
    across districts: district ``i > 0`` writes its local address codes as ``53{i+1:02d}..``
    instead of Anning's, and every district reserves the IDs it drew before the next one draws.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    n = max(1, -(-people // shard_people))
    src_dir, truth_dir = out / "sources", out / "truth"
    shutil.rmtree(src_dir, ignore_errors=True)
    src_dir.mkdir(parents=True)
    _clear(truth_dir)
    reserved: tuple[set[str], set[str]] = (set(), set())
    rows, persons, files = [], [], []
    totals: Counter[str] = Counter()
    for i in range(n):
        size = people // n + (1 if i < people % n else 0)
        tag = f"d{i + 1:02d}"
        progress(f"district {tag}: {size:,} people")
        w = build_world(size, seed * 1000 + i, as_of, reserved, district=i)
        part = out / f".{tag}"
        shutil.rmtree(part, ignore_errors=True)
        summary, _ = write_world(w, part, size, seed * 1000 + i, seed * 1000 + i, dirt, workers, shapes)
        del w
        for f in sorted((part / "sources").iterdir()):
            if f.is_dir():  # the backup folder: its copies, renamed alike, under one folder
                (src_dir / f.name).mkdir(exist_ok=True)
                for g in sorted(f.iterdir()):
                    g.rename(src_dir / f.name / f"{tag}_{g.name}")
            else:
                f.rename(src_dir / f"{tag}_{f.name}")
        prefix = pl.lit(tag + "_") + pl.col("file")
        rows.append(pl.read_parquet(part / "truth" / "rows.parquet").with_columns(file=prefix))
        persons.append(pl.read_parquet(part / "truth" / "persons.parquet"))
        files.append(pl.read_csv(part / "truth" / "files.csv", infer_schema=False).with_columns(file=prefix))
        totals.update(summary["rows"])
        shutil.rmtree(part)
    pl.concat(rows).write_parquet(truth_dir / "rows.parquet", compression="zstd", statistics=False)
    all_persons = pl.concat(persons)
    all_persons.write_parquet(truth_dir / "persons.parquet", compression="zstd", statistics=False)
    file_table = pl.concat(files)
    file_table.write_csv(truth_dir / "files.csv")
    return {
        "out_dir": str(out),
        "districts": n,
        "files": file_table["file"].to_list(),
        "rows": dict(totals),
        "persons": all_persons.height,
        "population": int(all_persons["in_population"].sum()),
        "seed": seed,
        "as_of": as_of.isoformat(),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def generate_years(
    out_dir: Path,
    people: int = 20000,
    seed: int = 1,
    as_of: date = date(2026, 3, 1),
    years: int = 2,
    dirt: DirtConfig | None = None,
    workers: int | None = None,
    rates: AgeRates | None = None,
    shapes: ShapeConfig | None = None,
) -> list[dict]:
    """The same world over ``years`` consecutive years, for ``kuomian compare``.

    Writes ``out_dir/year1/{sources,truth}``, ``out_dir/year2/{sources,truth}``, …:
    year 1 is byte for byte what ``generate(out_dir/year1, people, seed, as_of, dirt)``
    writes; year k+1 is the world of year k one year later (as-of date + 1 year; see
    ``age.py`` for what changes), rendered with fresh dirt. Persons keep their ID and name.
    From year 2 on, ``truth/`` also holds ``transitions.parquet`` (see
    :func:`pipeline.synth.age.transitions`): per person of either registry the category
    ``kuomian compare`` of the two years should give. Returns one summary per year; from
    year 2 on with ``changes`` (counts per kind of change) and ``transitions`` (persons
    per category).
    """
    if years < 1:
        raise ValueError("years must be at least 1")
    t0 = time.perf_counter()
    out = Path(out_dir)
    g = _Gen(people, seed, as_of)
    w = g.run()
    summaries: list[dict] = []
    prev: pl.DataFrame | None = None
    for k in range(1, years + 1):
        t1 = time.perf_counter()
        changes = age_world(g, k, rates) if k > 1 else {}
        summary, persons = write_world(
            w, out / f"year{k}", people, seed, seed if k == 1 else f"{seed}-year{k}", dirt, workers, shapes
        )
        summary["year"] = k
        if prev is not None:
            tr = transitions(prev, persons)
            tr.write_parquet(
                out / f"year{k}" / "truth" / "transitions.parquet", compression="zstd", statistics=False
            )
            summary["changes"] = changes
            summary["transitions"] = {c: int(tr[c].sum()) for c in CATEGORIES}
        summary["seconds"] = round(time.perf_counter() - (t0 if k == 1 else t1), 2)
        summaries.append(summary)
        prev = persons
    return summaries


def generate_with_later_enrolment(
    out_dir: Path,
    people: int = 20000,
    seed: int = 1,
    as_of: date = date(2026, 3, 1),
    dirt: DirtConfig | None = None,
    shapes: ShapeConfig | None = None,
) -> tuple[dict, list[Path]]:
    """``generate`` (``out_dir/sources``, ``out_dir/truth``, the same files), then the same world a
    year later (as ``generate_years`` ages it) and only its enrolment extracts, written to
    ``out_dir/enrolment_later/``: the bureau's next extract, for ``kuomian progress`` (the demo;
    tidy files whatever ``shapes`` says). Returns (year 1's summary with ``later_as_of``, the later files)."""
    out = Path(out_dir)
    g = _Gen(people, seed, as_of)
    w = g.run()
    summary, _ = write_world(w, out, people, seed, seed, dirt, shapes=shapes)
    age_world(g, 2)
    later = out / "enrolment_later"
    _clear(later)
    cfg = dirt if dirt is not None else DirtConfig()
    files = []
    for plan in build_plans(w, random.Random(f"{seed}-plans"), people):
        if plan.source == "enrollment":
            write_file(render_file(plan, w, cfg, f"{seed}-year2"), later)
            files.append(later / plan.name)
    summary["later_as_of"] = w.as_of.isoformat()
    return summary, files


def write_world(
    w: World,
    out: Path,
    people: int,
    seed: int,
    render_seed: int | str,
    dirt: DirtConfig | None = None,
    workers: int | None = None,
    shapes: ShapeConfig | None = None,
) -> tuple[dict, pl.DataFrame]:
    """Render ``w`` into ``out/sources`` and write ``out/truth``; return (summary, truth persons).

    ``render_seed`` seeds the dirt and headers of every file (``generate``: the world's seed).
    Persons that no extract row mentions (possible in an aged world) are left out of the truth.
    A real-shaped world's truth persons have ``id_damaged``: the person's only row, in the
    household source, has its ID as a number cell (the tool cannot know them).
    """
    t0 = time.perf_counter()
    cfg = dirt if dirt is not None else DirtConfig()
    src_dir = out / "sources"
    truth_dir = out / "truth"
    _clear(src_dir)
    shutil.rmtree(src_dir / BACKUP_FOLDER, ignore_errors=True)
    _clear(truth_dir)

    plans = build_plans(w, random.Random(f"{seed}-plans"), people)
    plans = apply_shapes(plans, w, shapes, render_seed)
    books: list[list[int]] = []  # plan indexes per file (a shaped workbook: one plan per sheet)
    book_of: dict[str, int] = {}
    for i, plan in enumerate(plans):
        if plan.name not in book_of:
            book_of[plan.name] = len(books)
            books.append([])
        books[book_of[plan.name]].append(i)
    street_shown: set[int] = set()
    present: set[int] = set()
    for plan in plans:
        present.update(r["_p"] for r in plan.records)
        if "street" in plan.keys:
            street_shown.update(r["_p"] for r in plan.records if w.kind[r["_p"]] == NONLOCAL)

    convert_dir = Path(tempfile.mkdtemp(prefix="kuomian-synth-"))
    truths: dict[int, list[dict]] = {}
    n_workers = workers if workers is not None else (2 if people >= 100_000 else 1)
    try:
        if n_workers > 1 and "fork" in mp.get_all_start_methods():
            # fork: the workers share the world copy-on-write; they render and write csv/xlsx files
            # (no polars in the workers), the parent writes the parquet files and computes the truth.
            global _JOB
            _JOB = (w, plans, books, cfg, render_seed, src_dir, convert_dir)
            cost = {
                b: sum(len(plans[i].records) * (len(plans[i].keys) + 1) * (1 if plans[i].fmt == "csv" else 4)
                       for i in ix)
                for b, ix in enumerate(books)
            }  # fmt: skip
            child = sorted(
                (b for b, ix in enumerate(books) if plans[ix[0]].fmt != "parquet"), key=lambda b: -cost[b]
            )
            try:
                with mp.get_context("fork").Pool(n_workers) as pool:
                    it = pool.imap_unordered(_render_job, child, chunksize=1)
                    for b, ix in enumerate(books):
                        if plans[ix[0]].fmt == "parquet":
                            truths[b] = _render_job(b)[1]
                    persons = compute_persons(w, street_shown)
                    for b, t in it:
                        truths[b] = t
            finally:
                _JOB = None
        else:
            for b, ix in enumerate(books):
                rfs = [render_file(plans[i], w, cfg, render_seed) for i in ix]
                write_book(rfs, src_dir, convert_dir)
                truths[b] = [rf.truth for rf in rfs]
                del rfs
            persons = compute_persons(w, street_shown)
        for fmt in ("xls", "ods"):
            todo = [convert_dir / (plans[ix[0]].name.rsplit(".", 1)[0] + ".xlsx") for ix in books
                    if plans[ix[0]].fmt == fmt]  # fmt: skip
            convert(todo, fmt, src_dir)
        backups = write_backups(plans, src_dir, shapes)
    finally:
        shutil.rmtree(convert_dir, ignore_errors=True)
    if len(present) < w.n:
        persons = persons.filter(pl.Series([p in present for p in range(w.n)]))

    file_rows: list[dict] = []
    rows_per_source: Counter[str] = Counter()
    parts = []
    damaged: set[str] = set()
    for b, ix in enumerate(books):
        plan = plans[ix[0]]
        m = 0
        counts: Counter[str] = Counter()
        for tr in truths.pop(b):
            parts.append(pa.table({k: pa.array(tr[k], type=ROWS_ARROW[k]) for k in ROWS_ARROW}))
            m += len(tr["row"])
            counts.update(tr["expected"])
            if plan.source == "household" and plan.shape is not None:
                damaged.update(
                    pid for pid, r in zip(tr["person_id"], tr["quarantine_reason"], strict=True)
                    if r == "base_id_unusable"
                )  # fmt: skip
        file_rows.append(
            {
                "file": plan.name,
                "source": plan.source,
                "format": plan.fmt,
                "encoding": plan.encoding or "",
                "rows": m,
                **{k: counts.get(k, 0) for k in EXPECTED_VALUES},
            }
        )
        rows_per_source[plan.source] += m
    rows = cast(pl.DataFrame, pl.from_arrow(pa.concat_tables(parts)))
    if shapes is not None and shapes.real_shaped:
        persons = persons.with_columns(id_damaged=pl.col("id_number").is_in(sorted(damaged)))
    rows.write_parquet(truth_dir / "rows.parquet", compression="zstd", statistics=False)
    persons.write_parquet(truth_dir / "persons.parquet", compression="zstd", statistics=False)
    pl.DataFrame(file_rows).write_csv(truth_dir / "files.csv")

    summary = {
        "out_dir": str(out),
        "files": [f["file"] for f in file_rows],
        "rows": dict(rows_per_source),
        "persons": persons.height,
        "population": int(persons["in_population"].sum()),
        "household_persons": sum(1 for k in w.kind if k == LOCAL),
        "not_read": backups,  # copies in a subfolder of SOURCES_DIR: never extracts
        "seed": seed,
        "as_of": w.as_of.isoformat(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return summary, persons
