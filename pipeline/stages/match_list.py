"""Match a list against a published registry: the one route of ``kuomian check`` and ``kuomian progress``.

A list file is read as a source (:func:`..stages.load.load_file`), standardised with the refresh's
own functions (:func:`..stages.standardise.standardise_frame`), numbered (``row_id``), and its
usable rows matched against a published ``persons.parquet`` with the refresh's cascade
(:func:`..stages.link.match_to_persons`). No table of a refresh is read or written.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..readers import FileInfo
from .link import match_to_persons
from .load import load_file
from .standardise import Duplicates, StandardiseReport, standardise_frame

DECISION_SCHEMA = {"row_id": pl.Int64, "outcome": pl.String, "person_id": pl.String, "match_rule": pl.String}


def read_list(
    path: Path,
    source,
    info: FileInfo,
    *,
    dups: Duplicates | None = None,
    offset: int = 0,
    tables_out: list | None = None,
) -> pl.DataFrame:
    """The file's rows, standardised, with ``row_id`` = ``offset`` + the row's sequence number
    (several files matched together are numbered one after the other)."""
    loaded = load_file(path, source, info, tables_out=tables_out)
    std = standardise_frame(loaded, source, StandardiseReport(), dups)
    return std.with_columns(row_id=pl.col("_seq").cast(pl.Int64) + offset)


def match_list(std: pl.DataFrame, persons: pl.DataFrame, usable: pl.Expr) -> pl.DataFrame:
    """Per matched row of ``std`` (those where ``usable`` holds): row_id, outcome ('linked' or
    'review'), person_id, match_rule. A row absent from it matched nobody."""
    rows = std.filter(usable)
    if not rows.height:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return match_to_persons(rows, persons).select(*DECISION_SCHEMA)
