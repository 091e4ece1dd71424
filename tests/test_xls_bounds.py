""".xls bounded before calamine reads it (issue #21 item 2; pitfalls.md: two bytes changed in a 50 KB
.xls asked for 11.5 GB): the named attacks, then a byte-flip fuzz over a LibreOffice-made file, in a
subprocess whose address space is capped at 2 GiB. Every mutant either reads or is one line naming
the file; never a traceback, a Rust panic or memory running out."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.core.errors import FileProblem
from kuomian.readers import read_tables
from kuomian.readers.xls import _Compound, _sheets

runner = CliRunner()
XLS = Path(__file__).parent / "fixtures" / "office" / "world" / "参保信息.xls"  # saved by LibreOffice
ID1 = "530181199005031235"


def _stream_offsets(data: bytes) -> tuple[bytes, list[int]]:
    """The Workbook stream and, for each of its bytes, where it lies in the file."""
    cfb = _Compound(data)
    entry = next(e for e in cfb.entries if e[:64].decode("utf-16-le").split("\x00")[0] == "Workbook")
    sid, size = struct.unpack_from("<II", entry, 116)
    where: list[int] = []
    while len(where) < size:
        where.extend(range((sid + 1) * cfb.ssz, (sid + 2) * cfb.ssz))
        sid = cfb.fat[sid]
    return cfb.stream("Workbook") or b"", where[:size]


def _record(data: bytes, typ: int, sheet: int = 0) -> int:
    """The stream offset of the first record of this type in a sheet."""
    stream, _ = _stream_offsets(data)
    pos = _sheets(stream)[sheet][0]
    while True:
        t, n = struct.unpack_from("<HH", stream, pos)
        if t == typ:
            return pos
        pos += 4 + n


def _patch(data: bytes, stream_pos: int, fmt: str, *values) -> bytes:
    """``data`` with ``values`` packed at a Workbook stream offset (which may straddle sectors)."""
    _, where = _stream_offsets(data)
    b = bytearray(data)
    for i, byte in enumerate(struct.pack(fmt, *values)):
        b[where[stream_pos + i]] = byte
    return bytes(b)


def refused(path: Path) -> str:
    with pytest.raises(FileProblem) as exc:
        read_tables(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    return msg


def test_the_libreoffice_xls_still_reads():
    res = read_tables(XLS)
    assert [t.sheet for t in res.tables] == ["企业职工基本养老保险", "城乡居民基本养老保险"]


def test_extent_a_cell_moved_to_the_last_row_is_refused(tmp_path):
    """The measured attack: one cell record's row and column changed to huge values. BIFF8 allows
    row 65,535 and column 255, and calamine would fill a 65,535 × 256 grid (1 GB measured)."""
    data = XLS.read_bytes()
    pos = _record(data, 0x00FD)  # a LABELSST cell
    path = tmp_path / "参保信息.xls"
    path.write_bytes(_patch(data, pos + 4, "<HH", 0xFFFF, 0xFF))
    msg = refused(path)
    assert "sheet '企业职工基本养老保险': the workbook is damaged" in msg
    assert "65,535 rows × 256 columns" in msg and "save it again" in msg
    path.write_bytes(_patch(data, pos + 4, "<HH", 3, 0xFFFF))
    assert "column 65536, past the 256 columns" in refused(path)


def test_a_cell_outside_biff8_is_refused_through_the_cli(tmp_path):
    data = XLS.read_bytes()
    pos = _record(data, 0x027E, sheet=1)  # an RK cell of the second sheet
    (tmp_path / "参保信息.xls").write_bytes(_patch(data, pos + 6, "<H", 300))
    res = runner.invoke(app, ["-q", "validate", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1
    assert "sheet '城乡居民基本养老保险': the workbook is damaged (a cell in column 301" in res.stderr


def test_sparse_sheets_are_bounded_together(tmp_path):
    """calamine holds every sheet's grid at once: two sheets of 960,000 cells each (a cell moved
    to row 60,000, column 16) pass one by one and are refused together."""
    data = XLS.read_bytes()
    for sheet in (0, 1):
        pos = _record(data, 0x00FD, sheet)
        data = _patch(data, pos + 4, "<HH", 59_999, 15)
    path = tmp_path / "参保信息.xls"
    path.write_bytes(data)
    msg = refused(path)
    assert "sheet '城乡居民基本养老保险': the workbook is damaged (with this sheet" in msg


def test_dimensions_past_biff8_or_inverted_are_refused(tmp_path):
    data = XLS.read_bytes()
    pos = _record(data, 0x0200)
    path = tmp_path / "参保信息.xls"
    path.write_bytes(_patch(data, pos + 4, "<IIHH", 0, 0xFFFFFFF0, 0, 10))  # rows to 4 billion
    assert "declares rows 1 to 4,294,967,280" in refused(path).replace("4294967280", "4,294,967,280")
    path.write_bytes(_patch(data, pos + 4, "<IIHH", 20, 5, 0, 10))  # first row after the last
    assert "the workbook is damaged" in refused(path)
    path.write_bytes(_patch(data, pos + 4, "<IIHH", 0, 65536, 0, 256))  # legal, far past its cells
    assert "65,536 rows × 256 columns" in refused(path)


def test_a_mulrk_with_its_columns_inverted_is_refused(tmp_path):
    """MULRK: row, first column, values, last column; calamine subtracts them unchecked."""
    data = XLS.read_bytes()
    stream, _ = _stream_offsets(data)
    # the fixture has no MULRK: turn an RK record into a one-value MULRK with columns 9..2
    pos = _record(data, 0x027E)
    n = struct.unpack_from("<H", stream, pos + 2)[0]
    assert n == 10
    path = tmp_path / "参保信息.xls"
    path.write_bytes(_patch(data, pos, "<HHHH", 0x00BD, 10, 0, 9))
    raw = _patch(path.read_bytes(), pos + 12, "<H", 2)
    path.write_bytes(raw)
    assert "cells from column 10 to 3" in refused(path)


def _header_patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "values", "says"),
    [
        ("FAT sectors counted in billions", 44, "<I", (0xFFFFFF00,), "more sectors than the file"),
        ("mini FAT length read as calamine's DIFAT size", 64, "<I", (0x7FFF,), "more sectors than the file"),
        ("the directory starts past the file", 48, "<I", (5000,), "a sector past the file"),
    ],
)
def test_a_malformed_container_is_one_line(tmp_path, what, offset, fmt, values, says):
    path = tmp_path / "参保信息.xls"
    path.write_bytes(_header_patch(XLS.read_bytes(), offset, fmt, *values))
    msg = refused(path)
    assert "the workbook is damaged" in msg and says in msg, (what, msg)


def test_a_difat_sector_pointing_at_itself_is_one_line(tmp_path):
    """calamine follows the DIFAT chain without a loop check ("TODO: check if in infinite loop")."""
    data = XLS.read_bytes()
    cfb = _Compound(data)
    last = cfb.nsectors - 1
    b = bytearray(_header_patch(data, 68, "<II", last, 1))
    struct.pack_into("<I", b, (last + 2) * cfb.ssz - 4, last)  # its next-sector pointer: itself
    path = tmp_path / "参保信息.xls"
    path.write_bytes(bytes(b))
    assert "a loop in its sector allocation table" in refused(path)


def test_a_loop_in_the_directory_chain_is_one_line(tmp_path):
    data = XLS.read_bytes()
    cfb = _Compound(data)
    d = cfb.dir_start
    fat_sector = struct.unpack_from("<I", data, 76)[0]  # the first FAT sector holds entry d
    b = bytearray(data)
    struct.pack_into("<I", b, (fat_sector + 1) * cfb.ssz + 4 * d, d)  # dir sector -> itself
    path = tmp_path / "参保信息.xls"
    path.write_bytes(bytes(b))
    assert "a broken chain of sectors" in refused(path)


def test_a_workbook_stream_larger_than_the_file_is_one_line(tmp_path):
    data = XLS.read_bytes()
    cfb = _Compound(data)
    i = next(i for i, e in enumerate(cfb.entries) if e[:16].decode("utf-16-le") == "Workbook")
    dir_offset = (cfb.dir_start + 1) * cfb.ssz + 128 * i  # the fixture's directory is one sector
    path = tmp_path / "参保信息.xls"
    path.write_bytes(_header_patch(data, dir_offset + 120, "<I", 0x7FFFFFF0))
    assert "a stream larger than the file" in refused(path)


FUZZ_CHILD = textwrap.dedent(
    """
    import json, resource, sys, traceback
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from kuomian.core.errors import FileProblem
    from kuomian.readers import read_tables
    for p in sorted(Path(sys.argv[1]).glob("*.xls")):
        try:
            res = read_tables(p)
            out = {"file": p.name, "ok": sum(t.body.height for t in res.tables)}
        except FileProblem as e:
            out = {"file": p.name, "problem": str(e)}
        except BaseException as e:  # a traceback, a PanicException, a MemoryError: all failures
            out = {"file": p.name, "bad": type(e).__name__ + ": " + str(e)[:300]}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    """
)


def test_byte_flip_fuzz_reads_or_gives_one_line_under_2_gib(tmp_path):
    """200 copies of the LibreOffice file with 1-4 bytes changed (fixed seed): half anywhere in
    the file, half on the row / column / length fields of the Workbook stream's records."""
    data = XLS.read_bytes()
    stream, where = _stream_offsets(data)
    fields = []  # file offsets of each record's length and first two u16 (row, col of a cell)
    for pos, _ in _sheets(stream):
        p = pos
        while p + 4 <= len(stream):
            t, n = struct.unpack_from("<HH", stream, p)
            fields += [where[k] for k in range(p + 2, min(p + 8, p + 4 + n, len(stream)))]
            p += 4 + n
            if t == 0x000A:
                break
    rng = random.Random(2026)
    for i in range(200):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(b)) if i % 2 else rng.choice(fields)
            b[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        (tmp_path / f"m{i:03d}.xls").write_bytes(bytes(b))
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and len(results) == 200, (
        f"the reader died after {len(results)} mutants (exit {proc.returncode}): {proc.stderr[-2000:]}"
    )
    bad = [r for r in results if "bad" in r]
    assert not bad, bad[:5]
    for r in results:
        if "problem" in r:
            assert "\n" not in r["problem"] and r["problem"].startswith(str(tmp_path / r["file"]))
    refused_n = sum("problem" in r for r in results)
    assert 20 <= refused_n <= 190, refused_n  # the fuzz really reaches both outcomes
