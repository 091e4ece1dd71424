"""Which row of a sheet is its header: the row among the first rows (``rules/files.yaml``
``header.search_rows``) that names the most columns of a source, or of a list of wanted names."""

from __future__ import annotations

from ..core.config import Source, normalise_header
from ..core.i18n import _
from ..core.policy import policy
from .base import HeaderChoice


def choose_header(rows: list[list[str]], source: Source) -> HeaderChoice | None:
    """The header row among ``rows`` (the first rows of a sheet): the one naming the most columns
    of ``source``; a blank cell under a vertically merged header (序号, 姓名 over two rows) takes
    the name above it. The earliest wins a tie. None when no row names any column."""
    best: HeaderChoice | None = None
    for k, row in enumerate(rows):
        cells = list(row)
        if k > 0:
            above = rows[k - 1]
            for j, c in enumerate(cells):
                if not c and j < len(above) and above[j]:
                    cells[j] = above[j]
        fields = {f for c in cells if c for f in [source.match_header(c)] if f}
        if fields and (best is None or len(fields) > len(best.fields)):
            best = HeaderChoice(k, cells, fields)
    return best


def _first_rows_text(rows) -> str:
    """What a row holds, for a message: its first non-blank cells."""
    vals = [c for c in rows if c][:6]
    return "、".join(repr(v[:20]) for v in vals) if vals else _("nothing")


def header_finder(wanted: set[str]):
    """A ``choose`` for files with known headers (review, survey): the row among the first
    rows holding the most of ``wanted`` (normalised header names)."""
    norm = {normalise_header(w) for w in wanted}

    def choose(rows: list[list[str]]) -> HeaderChoice | None:
        best = None
        for k, row in enumerate(rows):
            hits = {normalise_header(c) for c in row if c} & norm
            if hits and (best is None or len(hits) > len(best.fields)):
                best = HeaderChoice(k, list(row), hits)
        return best

    return choose


def _source_chooser(source: Source):
    """The ``choose`` of a source's files: a sheet is read when its best row names every required
    column; skipped (with a reason) when it names few columns; a row naming several columns but
    lacking a required one is kept, for the missing-column message."""
    n = policy().file_rules.data_sheet_matches
    required = {f.name for f in source.required_fields}

    def choose(rows: list[list[str]]):
        c = choose_header(rows, source)
        if c is None:
            return None
        if required <= c.fields or len(c.fields) >= n:
            return c
        return _("no header row of {source} in its first rows (best: row {row}, {cells})").format(
            source=source.name, row=c.k + 1, cells=_first_rows_text(c.cells)
        )

    return choose
