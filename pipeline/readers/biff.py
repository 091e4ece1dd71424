"""The merged ranges of an Excel 97–2003 ``.xls``: its MERGEDCELLS records (0x00E5), per sheet.

fastexcel (calamine) gives the value of a merged range in its top-left cell only and says nothing
of the range, so the ``Workbook`` stream is read here: a small OLE compound-file reader (header,
FAT, directory, mini stream) and a walk over the BIFF8 records. Everything is bounded by the file
itself (chains are followed at most once per sector); a damaged file gives no ranges (the workbook
reader then says what is wrong), never an exception.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .sniff import OLE_MAGIC

END = 0xFFFFFFFA  # sector numbers from here up are markers (end of chain, free, FAT, DIFAT)
Range = tuple[int, int, int, int]  # first row, first column, last row, last column (0-based)


def _u32s(buf: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(buf) // 4}I", buf[: len(buf) // 4 * 4]))


def _chain(start: int, fat: list[int], limit: int) -> list[int]:
    """The sectors of a chain, stopping at its end, a loop or ``limit`` sectors."""
    out: list[int] = []
    seen: set[int] = set()
    while start < END and start < len(fat) and start not in seen and len(out) < limit:
        seen.add(start)
        out.append(start)
        start = fat[start]
    return out


def ole_stream(data: bytes, names: tuple[str, ...]) -> bytes | None:
    """The first stream named one of ``names`` (case-insensitive) in an OLE compound file, or None."""
    if not data.startswith(OLE_MAGIC) or len(data) < 512:
        return None
    shift, mini_shift = struct.unpack_from("<HH", data, 0x1E)
    if shift not in (9, 12) or mini_shift != 6:
        return None
    size, n_sectors = 1 << shift, len(data) // (1 << shift)

    def sector(i: int) -> bytes:
        return data[(i + 1) * size : (i + 2) * size]

    (n_fat, dir_start, _, cutoff, minifat_start, n_minifat, difat_start, n_difat) = struct.unpack_from(
        "<IIIIIIII", data, 0x2C
    )
    fat_sectors = [s for s in _u32s(data[0x4C:0x200]) if s < END]
    nxt = difat_start
    for _ in range(min(n_difat, n_sectors)):
        if nxt >= END or nxt >= n_sectors:
            break
        words = _u32s(sector(nxt))
        fat_sectors += [s for s in words[:-1] if s < END]
        nxt = words[-1]
    fat: list[int] = []
    for s in fat_sectors[: min(n_fat, n_sectors)]:
        fat += _u32s(sector(s))
    directory = b"".join(sector(s) for s in _chain(dir_start, fat, n_sectors))
    entries = []
    for o in range(0, len(directory) - 127, 128):
        n = min(struct.unpack_from("<H", directory, o + 0x40)[0], 64)
        name = directory[o : o + max(n - 2, 0)].decode("utf-16-le", "replace")
        kind = directory[o + 0x42]
        start, length = struct.unpack_from("<II", directory, o + 0x74)
        entries.append((name, kind, start, length))
    if not entries:
        return None
    wanted = {n.lower() for n in names}
    hit = next((e for e in entries if e[1] == 2 and e[0].lower() in wanted), None)
    if hit is None:
        return None
    _, _, start, length = hit
    if length > len(data):
        return None
    if length >= cutoff:
        return b"".join(sector(s) for s in _chain(start, fat, n_sectors))[:length]
    # a small stream lives in the mini stream (the root entry's chain), in 64-byte sectors
    root = b"".join(sector(s) for s in _chain(entries[0][2], fat, n_sectors))
    minifat: list[int] = []
    for s in _chain(minifat_start, fat, min(n_minifat, n_sectors)):
        minifat += _u32s(sector(s))
    return b"".join(root[m * 64 : m * 64 + 64] for m in _chain(start, minifat, len(root) // 64 + 1))[:length]


def _records(stream: bytes, pos: int):
    """(type, body, position) of the BIFF records from ``pos``."""
    while pos + 4 <= len(stream):
        kind, n = struct.unpack_from("<HH", stream, pos)
        yield kind, stream[pos + 4 : pos + 4 + n], pos
        pos += 4 + n


def _sheet_name(body: bytes) -> str | None:
    """The name in a BIFF8 BOUNDSHEET record (ShortXLUnicodeString after 6 bytes)."""
    if len(body) < 8:
        return None
    n, wide = body[6], body[7] & 1
    raw = body[8 : 8 + n * (2 if wide else 1)]
    return raw.decode("utf-16-le", "replace") if wide else raw.decode("latin-1")


def xls_merges(path: Path) -> dict[str, list[Range]]:
    """Sheet name -> its merged ranges, for a BIFF8 ``.xls`` (empty for BIFF5 or a damaged file)."""
    try:
        data = path.read_bytes()
        stream = ole_stream(data, ("Workbook", "Book"))
        if not stream or len(stream) < 8:
            return {}
        kind, body, _ = next(_records(stream, 0))
        if kind != 0x0809 or struct.unpack_from("<H", body, 0)[0] != 0x0600:
            return {}  # not BIFF8
        sheets: list[tuple[int, str]] = []
        for kind, body, _ in _records(stream, 0):
            if kind == 0x0085 and (name := _sheet_name(body)) is not None:
                sheets.append((struct.unpack_from("<I", body, 0)[0], name))
            elif kind == 0x000A:  # the end of the globals
                break
        out: dict[str, list[Range]] = {}
        for offset, name in sheets:
            depth, ranges = 0, []
            for kind, body, _ in _records(stream, offset):
                if kind == 0x0809:
                    depth += 1
                elif kind == 0x000A:
                    depth -= 1
                    if depth <= 0:
                        break
                elif kind == 0x00E5 and depth == 1 and len(body) >= 2:
                    n = min(struct.unpack_from("<H", body, 0)[0], (len(body) - 2) // 8)
                    for k in range(n):
                        r0, r1, c0, c1 = struct.unpack_from("<HHHH", body, 2 + 8 * k)
                        if r0 <= r1 and c0 <= c1:
                            ranges.append((r0, c0, r1, c1))
            if ranges:
                out[name] = ranges
        return out
    except (struct.error, OSError, ValueError, IndexError, StopIteration):
        return {}
