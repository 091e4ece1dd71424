""".xls (BIFF in an OLE compound file) checked before calamine reads it.

calamine reads the whole compound file and every sheet when the workbook is opened, and a sheet
becomes a dense grid over the extent of its cell records (``Range::from_sparse``): one corrupted
row or column index in a 50 KB file asked for 11.5 GB. So this module walks the container and the
BIFF records itself, strictly bounded (every read within the file, every sector chain without a
loop and no longer than the file), and refuses, with one line, a container that is malformed, a
cell or DIMENSIONS record outside BIFF8's own grid (65,536 rows × 256 columns), and a sheet whose
cells spread over a grid far bigger than the bytes that hold them (``max_cells_per_byte``). It
reads only the file's bytes; it writes nothing.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..core.errors import FileProblem
from ..core.i18n import _

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENDOFCHAIN = 0xFFFFFFFE
_RESERVED = 0xFFFFFFFA  # sector ids from here on are markers, not sectors
_DIFSECT = 0xFFFFFFFC
_MINI_CUTOFF = 4096  # calamine reads every stream under 4096 bytes from the mini stream
_STREAM_NAMES = ("Workbook", "Book", "WORKBOOK", "BOOK")  # calamine's order
BIFF8_ROWS = 65_536
BIFF8_COLS = 256
_GRID_FLOOR = 1_000_000  # as for .xlsx: a grid this size is never refused for being sparse

# The cell records calamine turns into cells: (row, col) are the first two u16 of each.
_CELLS = {0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006}
_MULRK, _MULBLANK, _BLANK, _ROW, _DIMENSIONS = 0x00BD, 0x00BE, 0x0201, 0x0208, 0x0200
_BOF, _EOF, _CONTINUE, _BOUNDSHEET = 0x0809, 0x000A, 0x003C, 0x0085


class Damaged(Exception):
    """The container or a record is impossible; the message says which (no cell values in it)."""


def damaged(path: Path, what: str, sheet: str | None = None) -> FileProblem:
    problem = (
        _("sheet {sheet!r}: the workbook is damaged ({what})").format(sheet=sheet, what=what)
        if sheet
        else _("the workbook is damaged ({what})").format(what=what)
    )
    return FileProblem(
        path, problem, _("Open it in Excel or WPS and save it again (as .xlsx), or ask for a new export.")
    )


def too_many_sheets(path: Path, n: int, limit: int) -> FileProblem:
    return FileProblem(
        path,
        _("the workbook has {n:,} sheets (more than {limit:,})").format(n=n, limit=limit),
        _("No department exports that many; keep the sheets of the list and save it again as .xlsx."),
    )


class _Compound:
    """An OLE compound file held in memory, read only through bounded, loop-free sector chains."""

    def __init__(self, data: bytes):
        self.data = data
        if len(data) < 512 or not data.startswith(OLE_SIGNATURE):
            raise Damaged(_("it is not a complete OLE compound file"))
        shift, mini_shift = struct.unpack_from("<HH", data, 30)
        if shift not in (9, 12) or mini_shift != 6:
            raise Damaged(
                _("sector sizes 2^{shift} / 2^{mini_shift}").format(shift=shift, mini_shift=mini_shift)
            )
        self.ssz = 1 << shift
        # sectors wholly or partly inside the file (sector i starts at (i + 1) * ssz)
        self.nsectors = max(0, (len(data) - 1) // self.ssz)  # the header counts as one sector
        fat_len, self.dir_start = struct.unpack_from("<II", data, 44)
        self.mini_fat_start, self.mini_fat_len, difat_start, difat_len = struct.unpack_from("<IIII", data, 60)
        if fat_len > self.nsectors or self.mini_fat_len > self.nsectors or difat_len > self.nsectors:
            raise Damaged(_("its header counts more sectors than the file holds"))
        # calamine reserves its sector list by a u32 read across the mini FAT's start and length
        # (header bytes 62..66): a mini FAT of 256 or more sectors would make it ask for gigabytes.
        # An .xls keeps only a few small streams in its mini stream (a handful of sectors).
        if self.mini_fat_len >= 256:
            raise Damaged(_("its header counts more mini FAT sectors than a workbook has"))
        per = self.ssz // 4
        difat = list(struct.unpack_from("<109I", data, 76))
        sid, seen = difat_start, set[int]()
        while sid < _RESERVED:
            if sid in seen or len(seen) >= self.nsectors:
                raise Damaged(_("a loop in its sector allocation table"))
            seen.add(sid)
            entries = struct.unpack_from(f"<{per}I", self.sector(sid))
            difat.extend(entries[:-1])
            sid = entries[-1]
        fat_ids = [i for i in difat if i < _DIFSECT]
        if len(fat_ids) > self.nsectors or len(set(fat_ids)) != len(fat_ids):
            raise Damaged(_("its sector allocation table lists sectors twice or past the file"))
        fat: list[int] = []
        for i in fat_ids:
            fat.extend(struct.unpack_from(f"<{per}I", self.sector(i)))
        self.fat = fat
        dirs = self.chain(self.dir_start, self.fat, self.ssz, self.nsectors, None)
        self.entries = [dirs[i : i + 128] for i in range(0, len(dirs) - 127, 128)]
        if not self.entries:
            raise Damaged(_("its directory is empty"))
        self.mini = b""
        self.mini_fat: list[int] = []
        if self.mini_fat_len > 0:
            root_start, root_len = self._start_len(self.entries[0])
            self.mini = self.chain(root_start, self.fat, self.ssz, self.nsectors, root_len)
            mf = self.chain(
                self.mini_fat_start, self.fat, self.ssz, self.nsectors, self.mini_fat_len * self.ssz
            )
            self.mini_fat = list(struct.unpack_from(f"<{len(mf) // 4}I", mf))

    def sector(self, sid: int) -> bytes:
        start = (sid + 1) * self.ssz
        if sid >= self.nsectors or start >= len(self.data):
            raise Damaged(_("a sector past the end of the file"))
        return self.data[start : start + self.ssz]

    def _start_len(self, entry: bytes) -> tuple[int, int]:
        start = struct.unpack_from("<I", entry, 116)[0]
        size = struct.unpack_from("<I" if self.ssz == 512 else "<Q", entry, 120)[0]
        if size > len(self.data):
            raise Damaged(_("a stream larger than the file"))
        return start, size

    def chain(self, sid: int, fat: list[int], size: int, count: int, length: int | None) -> bytes:
        """The bytes of a sector chain (``size``-byte sectors, at most ``count`` of them), cut at
        ``length``; a loop, a sector outside the file or a chain shorter than ``length`` is damage."""
        out, seen = bytearray(), set[int]()
        while sid != _ENDOFCHAIN and (length is None or len(out) < length):
            if sid in seen or sid >= count or sid >= len(fat):
                raise Damaged(_("a broken chain of sectors (a loop, or a sector past the file)"))
            seen.add(sid)
            if size == self.ssz:
                out += self.sector(sid)
            else:
                piece = self.mini[sid * size : (sid + 1) * size]
                if not piece:
                    raise Damaged(_("a mini sector past the mini stream"))
                out += piece
            sid = fat[sid]
        if length is not None:
            if len(out) < length:
                raise Damaged(_("a stream longer than its sectors"))
            del out[length:]
        return bytes(out)

    def stream(self, name: str) -> bytes | None:
        """The first directory entry called ``name`` (as calamine finds it), or None."""
        for e in self.entries:
            raw = e[:64].decode("utf-16-le", "replace")
            if raw.split("\x00", 1)[0] != name:
                continue
            start, size = self._start_len(e)
            if size < _MINI_CUTOFF:
                return self.chain(start, self.mini_fat, 64, len(self.mini) // 64, size)
            return self.chain(start, self.fat, self.ssz, self.nsectors, size)
        return None


_HH = struct.Struct("<HH")


def _records(stream: bytes, pos: int):
    """(type, start, end) of each BIFF record from ``pos`` (its data is ``stream[start:end]``);
    a record running past the stream is damage. CONTINUE records come as records of their own."""
    n, unpack = len(stream), _HH.unpack_from
    while pos < n:
        if pos + 4 > n:
            raise Damaged(_("a record cut off at the end of the workbook stream"))
        typ, length = unpack(stream, pos)
        start, pos = pos + 4, pos + 4 + length
        if pos > n:
            raise Damaged(_("a record longer than the workbook stream"))
        yield typ, start, pos


def _joined_end(stream: bytes, end: int) -> int:
    """Where a record's data ends once the CONTINUE records after it are joined to it (as calamine
    reads them)."""
    n = len(stream)
    while end + 4 <= n and _HH.unpack_from(stream, end)[0] == _CONTINUE:
        end = min(n, end + 4 + _HH.unpack_from(stream, end)[1])
    return end


def _sheets(stream: bytes) -> list[tuple[int, str]]:
    """(offset of the sheet's BOF, name) of every BOUNDSHEET record of the globals."""
    out = []
    for typ, start, end in _records(stream, 0):
        if typ == _EOF:
            break
        if typ == _BOUNDSHEET and end - start >= 8:
            pos = struct.unpack_from("<I", stream, start)[0]
            if pos >= len(stream):
                raise Damaged(_("a sheet that starts past the end of the workbook stream"))
            out.append((pos, _sheet_name(stream[start:end])))
    return out


def _sheet_name(data: bytes) -> str:
    n = data[6]
    if len(data) > 8 and data[7] & 1:  # BIFF8 wide characters
        return data[8 : 8 + 2 * n].decode("utf-16-le", "replace")
    if len(data) > 8 and len(data) >= 8 + n and data[7] == 0:
        return data[8 : 8 + n].decode("latin-1")
    return data[7 : 7 + n].decode("latin-1", "replace")


def _outside(col: int) -> Damaged:
    return Damaged(
        _("a cell in column {column}, past the {limit} columns of an .xls").format(
            column=col + 1, limit=BIFF8_COLS
        )
    )


def _check_sheet(stream: bytes, pos: int, budget: int) -> int:
    """Every cell, ROW and DIMENSIONS record of one sheet within BIFF8's grid, and the extent of its
    cells (what calamine allocates) within ``budget`` cells. One pass over the record headers,
    reading only the positions (a sheet of 650,000 cells: well under a second)."""
    lo_r = lo_c = 1 << 32
    hi_r = hi_c = -1
    unpack, n = _HH.unpack_from, len(stream)
    while pos < n:  # _records, inlined: this loop runs once per cell
        if pos + 4 > n:
            raise Damaged(_("a record cut off at the end of the workbook stream"))
        typ, length = unpack(stream, pos)
        start = pos + 4
        end = pos = start + length
        if end > n:
            raise Damaged(_("a record longer than the workbook stream"))
        if typ == _EOF:
            break
        if typ in _CELLS or typ == _BLANK:
            if end - start < 4:
                raise Damaged(_("a cell record too short to hold its position"))
            row, col = unpack(stream, start)
            if col >= BIFF8_COLS:
                raise _outside(col)
            if typ == _BLANK:  # formatting only: calamine makes no cell of it
                continue
            if row < lo_r:
                lo_r = row
            if row > hi_r:
                hi_r = row
            if col < lo_c:
                lo_c = col
            if col > hi_c:
                hi_c = col
        elif typ in (_MULRK, _MULBLANK):
            end = _joined_end(stream, end)  # the next record is read from ``pos`` all the same
            if end - start < 6:
                raise Damaged(_("a cell record too short to hold its position"))
            row, first = unpack(stream, start)
            last = struct.unpack_from("<H", stream, end - 2)[0]
            if first > last or last >= BIFF8_COLS:
                raise Damaged(_("cells from column {first} to {last}").format(first=first + 1, last=last + 1))
            if typ == _MULRK:
                lo_r, hi_r = min(lo_r, row), max(hi_r, row)
                lo_c, hi_c = min(lo_c, first), max(hi_c, last)
        elif typ == _ROW:
            if end - start < 6:
                raise Damaged(_("a ROW record too short"))
            first, last = unpack(stream, start + 2)
            if first > last or last > BIFF8_COLS:
                raise Damaged(
                    _("a row declared over columns {first} to {last}").format(first=first + 1, last=last)
                )
        elif typ == _DIMENSIONS:
            if end - start >= 14:
                r0, r1, c0, c1 = struct.unpack_from("<IIHH", stream, start)
            elif end - start >= 8:
                r0, r1, c0, c1 = struct.unpack_from("<HHHH", stream, start)
            else:
                raise Damaged(_("a DIMENSIONS record too short"))
            if r1 > BIFF8_ROWS or c1 > BIFF8_COLS or r0 > r1 or c0 > c1:
                raise Damaged(
                    _("the sheet declares rows {r0} to {r1} and columns {c0} to {c1}").format(
                        r0=r0 + 1, r1=r1, c0=c0 + 1, c1=c1
                    )
                )
            if (r1 - r0) * (c1 - c0) > budget:
                raise Damaged(
                    _(
                        "the sheet declares {rows:,} rows × {columns:,} columns, far more than it holds"
                    ).format(rows=r1 - r0, columns=c1 - c0)
                )
    if hi_r < 0:
        return 0
    rows, cols = hi_r - lo_r + 1, hi_c - lo_c + 1
    if rows * cols > budget:
        raise Damaged(
            _(
                "its cells are spread over {rows:,} rows × {columns:,} columns, far more than the values it holds"
            ).format(rows=rows, columns=cols)
        )
    return rows * cols


def check_xls(path: Path, data: bytes, cells_per_byte: float, max_sheets: int) -> None:
    """Refuse (FileProblem) an OLE compound file whose container or BIFF records are impossible, or
    that holds more than ``max_sheets`` sheets. A file that is not an OLE file, or has no workbook
    stream, is left to the reader (which says what it is)."""
    if not data.startswith(OLE_SIGNATURE):
        return
    sheet = None
    try:
        cfb = _Compound(data)
        stream = None
        for name in _STREAM_NAMES:
            stream = cfb.stream(name)
            if stream is not None:
                break
        if stream is None:
            return  # an encrypted .xlsx, a Word file named .xls: the reader says what it is
        sheets = _sheets(stream)
        if len(sheets) > max_sheets:
            raise too_many_sheets(path, len(sheets), max_sheets)
        budget = max(_GRID_FLOOR, int(cells_per_byte * len(stream)))
        total = 0  # calamine holds every sheet's grid at once
        for pos, name in sheets:
            sheet = name  # named in the message if this sheet is damaged
            total += _check_sheet(stream, pos, budget)
            if total > budget:
                raise Damaged(
                    _(
                        "with this sheet the workbook's cells are spread over {total:,} cells, "
                        "far more than the values it holds"
                    ).format(total=total)
                )
    except Damaged as e:
        raise damaged(path, str(e), sheet) from None
    except (struct.error, IndexError, ValueError) as e:  # a field read past a record's end
        raise damaged(path, _("a record too short ({error})").format(error=type(e).__name__), sheet) from None
