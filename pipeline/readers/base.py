"""What every reader shares: the file rules and limits in force, the shape of a table read
(:class:`Table`, :class:`ReadResult`), the header row chosen, and the file / sheet records
(:class:`FileInfo`, :class:`SheetInfo`) the load stage, ``validate`` and the manifest report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..core.ids import redact_ids
from ..core.policy import policy

ROW_COL = "_row"


EXTRA_COL = "_extra"


NUMERIC_ID_COL = "_id_numeric"


@dataclass
class SheetInfo:
    """One sheet of a workbook (name "" for a CSV or Parquet file): read, or skipped and why."""

    name: str
    index: int = 0
    header_row: int = 0  # the row the header was found in (1 = first)
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    numeric_ids: int = 0  # ID cells stored as numbers (Excel-damaged)
    skipped: str | None = None


@dataclass
class FileInfo:
    path: Path
    source: str | None
    how: str  # override | glob | headers | unrecognised | ignored | skipped
    format: str = ""
    encoding: str = ""
    rows: int = 0
    size: int = 0
    sha256: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # original header -> canonical field
    extra_columns: list[str] = field(default_factory=list)
    problem: str | None = None  # set when a bad optional file was skipped
    shown_as: str = ""  # set by recognise() when the file name alone is ambiguous
    sheets: list[SheetInfo] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The name every output (``file`` columns, reconciliation, manifest) shows: an ID number in it masked."""
        return self.shown_as or redact_ids(self.path.name)


def limits() -> dict:
    """``rules/files.yaml`` ``limits`` of the policy in force (:class:`~..core.policy.FileRules`)."""
    return policy().file_rules.limits


def _footer_re() -> re.Pattern:
    """Any total or footer row pattern of ``rules/files.yaml`` (``rows``)."""
    return policy().file_rules.footer_re


@dataclass
class Table:
    """One sheet of a workbook, or a whole CSV / Parquet file, as text.

    ``body`` has columns c0… (every cell a string); its first row is the user's row
    ``first_row`` (title rows and the header counted). ``col_offset`` is the sheet column
    of c0 (a workbook reader drops empty columns on the left)."""

    sheet: str
    index: int
    header: list[str]
    header_row: int  # the row the user sees the header in (1 = first)
    body: pl.DataFrame
    first_row: int
    col_offset: int = 0
    # (user row, body column) of the cells stored as numbers, when the reader knows them from the
    # markup (SpreadsheetML ``ss:Type="Number"``, HTML ``sdval`` / ``x:num``); None for the others
    number_cells: set[tuple[int, int]] | None = None


@dataclass
class HeaderChoice:
    k: int  # index among the rows searched
    cells: list[str]
    fields: set[str]


@dataclass
class ReadResult:
    format: str
    encoding: str
    tables: list[Table]
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (sheet index, name, why)
    reader: object = None  # a workbook's fastexcel reader (for the cell types)
    parts: object = None  # an .xlsx's zip, opened once for the whole read (workbook.XlsxParts)

    def close(self) -> None:
        """Close what the read keeps open (an .xlsx's zip)."""
        close = getattr(self.parts, "close", None)
        if close is not None:
            close()


def _cell_text(v) -> str:
    return "" if v is None else str(v).strip()


def _reraise_interrupts(e: BaseException) -> None:
    if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise e
