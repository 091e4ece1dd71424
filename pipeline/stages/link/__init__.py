"""Stage 3 — link: decide which person every extract row is about.

Entry point: :func:`link`. Reads ``std_rows`` and writes

* ``link_persons``    — the population: household persons by canonical ID,
  plus people whose valid ID appears only in a source that adds people
  (``role: adds_people`` in ``sources/``);
* ``link_candidates`` — (row, person, rule, name score) pairs proposed by the
  cascade of ``rules/matching.yaml``; every rule is an equi-join in DuckDB
  (blocking), so cost grows with the data, never with its square;
* ``link_review``     — rows a person must decide, with their candidates;
* ``links``           — one row per standardised row: outcome, person,
  rule, confidence.

Names are scored with rapidfuzz on candidate pairs only (vectorised).

The cascade itself (:func:`cascade`: trivial links, candidates, name scores, decisions) is a
list of :class:`Step` s over tables named by a :class:`LinkTables`, run in one place
(:func:`run_steps`); the refresh runs it on ``link_rows``/``link_persons``, and
:func:`match_to_persons` runs the very same steps on any standardised rows against a published
population (``kuomian check``, and anything else that matches a list against a registry).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from ...core.db import first_row, rows, scalar
from ...core.i18n import _
from .cascade import (
    EXACT_ID_METHODS,
    NAME_JOINS,
    NOTE_SQL,
    candidates_step,
    cascade,
    decide_steps,
    score_candidates,
    trivial_step,
)
from .common import MATCH_COLUMNS, REFRESH_TABLES, LinkTables, Step, run_steps
from .decisions import _fingerprints, finalise, load_decisions
from .evidence import listing_evidence
from .match import match_to_persons, persons_for_link
from .population import SHARED_ID_REASON, build_former, build_population, shared_ids

__all__ = [
    "EXACT_ID_METHODS", "MATCH_COLUMNS", "NAME_JOINS", "NOTE_SQL", "REFRESH_TABLES", "SHARED_ID_REASON",
    "LinkReport", "LinkTables", "Step", "build_former", "build_population", "candidates_step", "cascade",
    "decide_steps", "finalise", "link", "listing_evidence", "load_decisions", "match_to_persons",
    "persons_for_link", "run_steps", "score_candidates", "shared_ids", "trivial_step",
]  # fmt: skip


@dataclass
class LinkReport:
    outcomes: Counter = field(default_factory=Counter)  # (source, outcome) -> rows
    rules: Counter = field(default_factory=Counter)  # (source, rule) -> rows linked by it
    persons: int = 0
    persons_local: int = 0
    review_rows: int = 0
    decisions_applied: int = 0
    shared_ids: int = 0  # ID numbers the household extract gives to two people (重号)
    shared_id_persons: int = 0  # the persons holding them (each holder is a person)

    def summary(self) -> str:
        by: Counter[str] = Counter()
        for (_source, o), n in self.outcomes.items():
            by[o] += n
        parts = ", ".join(f"{n} {o}" for o, n in by.most_common())
        return _("link: {persons} persons ({household} household); rows {outcomes}").format(
            persons=self.persons, household=self.persons_local, outcomes=parts
        )


def link(
    con: duckdb.DuckDBPyConnection,
    key: bytes,
    *,
    progress=lambda msg: None,
    decisions: pl.DataFrame | None = None,
    as_of: date | None = None,
) -> LinkReport:
    """Resolve every standardised row; see the module docstring for the tables written.

    ``decisions``: the review decisions carried from the registries this run follows
    (:func:`kuomian.core.decisions.stored_decisions`). ``as_of``: the run's date (a person's
    age, for the plausibility checks; None: today)."""
    from dataclasses import replace

    progress(_("link: building the population"))
    build_population(con, key)
    t = replace(REFRESH_TABLES, as_of=as_of)
    # Rows that define a person are settled; nearly all others are settled by one join
    # (trivial_step). Only what is left goes through the cascade: ``link_rows``.
    usable = "(SELECT r.* FROM std_rows r ANTI JOIN link_defining d USING (row_id) WHERE r.row_state = 'ok')"
    run_steps(
        con,
        [
            trivial_step(t, usable),
            Step(t.rows, f"SELECT r.* FROM {usable} r ANTI JOIN {t.out('trivial')} t USING (row_id)"),
        ],
    )
    _fingerprints(con, key)
    report = LinkReport()
    report.decisions_applied = load_decisions(con, key, decisions)
    con.execute(f"DELETE FROM {t.rows} WHERE row_id IN (SELECT row_id FROM link_confirmed)")
    cascade(con, t, progress)
    finalise(con)
    listing_evidence(con)
    # Scratch: everything they hold is in ``links`` now (half a million rows each at Anning's
    # size: dropped, so that classify has DuckDB's memory).
    for scratch in (
        "link_candidates_raw", "link_rows", "link_defining", "link_trivial", "link_decisions", "link_former_raw",
        "_link_composed", "_link_new_composed",
    ):  # fmt: skip
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
    for src, outcome, n in rows(con, "SELECT source, outcome, count(*) FROM links GROUP BY ALL"):
        report.outcomes[(src, outcome)] += n
    for src, rule, n in rows(
        con,
        "SELECT source, match_rule, count(*) FROM links WHERE outcome IN ('linked', 'new_person') GROUP BY ALL",
    ):
        report.rules[(src, rule)] += n
    report.persons, report.persons_local = first_row(
        con, "SELECT count(*), count(*) FILTER (WHERE hukou_local) FROM link_persons"
    )
    report.review_rows = scalar(con, "SELECT count(*) FROM links WHERE outcome = 'review'")
    report.shared_ids, report.shared_id_persons = first_row(
        con, "SELECT count(DISTINCT id_canonical), count(*) FROM link_shared_ids"
    )
    return report
