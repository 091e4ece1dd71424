"""Render ``report.html`` in headless Chromium and check the screenshot is not blank.

Usage: python -m bench.render_check OUT_DIR/report.html [--png report.png]

Needs Debian's ``chromium`` (``make report-check`` installs it). The page must
render offline: Chromium runs with networking features off, so anything the
page tried to fetch would simply be missing from the picture.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path


def png_pixels(path: Path) -> tuple[int, int, bytes, int]:
    """(width, height, raw scanlines, bytes per pixel) of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, width = 8, b"", 0
    height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}[colour] * depth // 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat), bpp


def unfiltered_rows(width: int, height: int, raw: bytes, bpp: int) -> list[bytes]:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif ftype == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif ftype == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(cur))
        prev = cur
    return rows


def ink_share(path: Path) -> float:
    """Share of sampled pixels that are not (near) white."""
    width, height, raw, bpp = png_pixels(path)
    rows = unfiltered_rows(width, height, raw, bpp)
    inked = total = 0
    for row in rows[::4]:
        for x in range(0, width * bpp, bpp * 4):
            total += 1
            if min(row[x : x + min(bpp, 3)]) < 235:
                inked += 1
    return inked / max(total, 1)


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2400) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("chromium is not installed: apt-get install chromium (make report-check does it)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
            html.resolve().as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="render report.html and check it is not blank")
    ap.add_argument("html", type=Path)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)
    png = args.png or args.html.with_suffix(".png")
    screenshot(args.html, png)
    share = ink_share(png)
    print(f"{png}: {share * 100:.1f}% of the page is ink")
    if share < 0.02:
        print("the rendered report looks blank", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
