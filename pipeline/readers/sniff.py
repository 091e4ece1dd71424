"""What a file really is, from its first bytes: departments' ".xls" files are often an HTML table
(government web systems), SpreadsheetML 2003 XML or plain text, and Excel opens them all."""

from __future__ import annotations

import codecs
from pathlib import Path

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
SPREADSHEETML_NS = "urn:schemas-microsoft-com:office:spreadsheet"
# extensions whose content decides the format (a .csv is always read as text: a workbook named
# .csv is refused with its own message)
SNIFFED = {".xls", ".xlsx", ".xlsm", ".ods", ".htm", ".html", ".xml", ".txt", ".tsv"}


def _head_text(head: bytes) -> str:
    """The first bytes as text, well enough to see the markup they start with."""
    if head.startswith(codecs.BOM_UTF8):
        return head[3:].decode("utf-8", "ignore")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", "ignore")
    return head.decode("latin-1")


def real_format(path: Path) -> str:
    """``csv`` (any delimited text), ``xlsx``, ``xlsm``, ``xls``, ``ods``, ``parquet``, ``html`` or
    ``xml`` (SpreadsheetML 2003), by the file's first bytes for the extensions in :data:`SNIFFED`,
    by the extension for the others."""
    suffix = path.suffix.lower()
    by_name = {".csv": "csv", ".parquet": "parquet"}.get(suffix, suffix.lstrip("."))
    if suffix not in SNIFFED:
        return by_name
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return by_name  # the reader says what is wrong
    if head.startswith(ZIP_MAGIC):
        if b"opendocument.spreadsheet" in head[:200]:
            return "ods"
        return "xlsm" if suffix == ".xlsm" else "xlsx"
    if head.startswith(OLE_MAGIC):
        return "xls"
    if head.startswith(b"PAR1"):
        return "parquet"
    text = _head_text(head).lstrip().lower()
    if text.startswith("<"):
        if text.startswith("<?xml") and SPREADSHEETML_NS in text and "<html" not in text:
            return "xml"
        if "<html" in text or "<table" in text or text.startswith("<!doctype html"):
            return "html"
    if suffix in (".htm", ".html"):
        return "html"
    if suffix in (".xlsx", ".xlsm", ".ods"):
        return by_name  # damaged or not a workbook: the workbook reader says so
    if (
        suffix == ".xls"
        and b"\x00" in head
        and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    ):
        return "xls"  # binary but not OLE: a damaged workbook
    return "csv" if suffix in (".xls", ".txt", ".tsv", ".xml") else by_name
