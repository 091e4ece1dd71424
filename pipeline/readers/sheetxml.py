"""The parts of an .xlsx zip read without a spreadsheet library: which XML part holds each sheet,
and a sheet's XML streamed in pieces (for the cell types and the bound checks)."""

from __future__ import annotations

import re
import zipfile


def _col_letter(idx: int) -> str:
    s = ""
    idx += 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n - 1


def _xlsx_sheet_parts(z: zipfile.ZipFile) -> list[str]:
    """The worksheet XML part of every sheet, in the workbook's order (as fastexcel lists them)."""
    try:
        wb = z.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except KeyError:
        return []
    targets = {}
    for m in re.finditer(r"<Relationship\b[^>]*>", rels):
        tag = m.group(0)
        rid, tgt = re.search(r'\bId="([^"]+)"', tag), re.search(r'\bTarget="([^"]+)"', tag)
        if rid and tgt:
            t = tgt.group(1).lstrip("/")
            targets[rid.group(1)] = t if t.startswith("xl/") else "xl/" + t
    parts = []
    for m in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", wb):
        rid = re.search(r'\br:id="([^"]+)"|\b\w+:id="([^"]+)"', m.group(0))
        parts.append(targets.get((rid.group(1) or rid.group(2)) if rid else "", ""))
    return parts


def _stream(z: zipfile.ZipFile, part: str, fn, cut: tuple[bytes, ...] = (b"<c ", b"<row")) -> None:
    """Feed a zip entry to ``fn`` in 1 MB pieces cut before one of the tags ``cut``."""
    with z.open(part) as fh:
        tail = b""
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            last = max(buf.rfind(t) for t in cut)
            body, tail = (buf[:last], buf[last:]) if last > 0 else (buf, b"")
            fn(body)
        fn(tail)


def _xlsx_sheet_names(z: zipfile.ZipFile) -> list[str]:
    wb = z.read("xl/workbook.xml").decode("utf-8", "replace")
    return [
        (found.group(1) if (found := re.search(r'\bname="([^"]*)"', m.group(0))) else "")
        for m in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", wb)
    ]
