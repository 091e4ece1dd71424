"""Readers: the extracts and every file the tool reads back, as text.

They find and recognise the files of SOURCES_DIR (:mod:`.recognise`), choose each sheet's header
row (:mod:`.headers`), read CSV and other text (:mod:`.text`), workbooks (:mod:`.workbook`) and
Parquet (:mod:`.parquet`) within the limits of ``rules/files.yaml`` (:mod:`.bounds`), and hand back
one :class:`Table` per sheet (:mod:`.tables`). The load stage (``stages/load.py``) and the commands
(review, survey, check, progress) use them; they import only ``core``.
"""

from .base import (
    EXTRA_COL,
    NUMERIC_ID_COL,
    ROW_COL,
    FileInfo,
    HeaderChoice,
    ReadResult,
    SheetInfo,
    Table,
    limits,
)
from .bounds import check_workbook_bounds
from .headers import choose_header, header_finder
from .parquet import read_parquet
from .recognise import READABLE, discover, parse_overrides, recognise, sources_by_glob, sources_in_file
from .tables import read_any, read_every, read_tables
from .text import check_text_bounds, read_csv, read_csv_tables
from .workbook import WORKBOOK_FORMATS, numeric_cells, open_workbook, read_sheet_grid, workbook_tables

__all__ = [
    "EXTRA_COL",
    "NUMERIC_ID_COL",
    "READABLE",
    "ROW_COL",
    "WORKBOOK_FORMATS",
    "FileInfo",
    "HeaderChoice",
    "ReadResult",
    "SheetInfo",
    "Table",
    "check_text_bounds",
    "check_workbook_bounds",
    "choose_header",
    "discover",
    "header_finder",
    "limits",
    "numeric_cells",
    "open_workbook",
    "parse_overrides",
    "read_any",
    "read_csv",
    "read_csv_tables",
    "read_every",
    "read_parquet",
    "read_sheet_grid",
    "read_tables",
    "recognise",
    "sources_by_glob",
    "sources_in_file",
    "workbook_tables",
]
