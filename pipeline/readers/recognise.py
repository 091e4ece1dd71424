"""Which files of SOURCES_DIR are extracts, and of which source: ``--source NAME=PATH`` first,
then the file-name globs, then the headers of the first rows. No data is read beyond headers."""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from pathlib import Path

from ..core.config import Source, load_sources
from ..core.errors import FileProblem, KuomianError
from ..core.ids import redact_ids
from .base import FileInfo, _cell_text, file_rules
from .bounds import _check_width
from .headers import choose_header
from .parquet import read_parquet
from .tables import _refuse_unreadable
from .text import _csv_records, _decode, _sniff_delimiter, check_text_bounds
from .workbook import WORKBOOK_FORMATS, _chart_sheets, open_workbook, read_sheet_grid

READABLE = {".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods", ".parquet"}


def discover(sources_dir: Path) -> list[Path]:
    """Every file below SOURCES_DIR, in a stable order; Office lock files and hidden files skipped."""
    if not sources_dir.is_dir():
        raise KuomianError(f"{sources_dir}: no such folder. Give the folder that holds the extracts.")
    out = []
    for p in sorted(sources_dir.rglob("*")):
        if not p.is_file() or p.name.startswith((".", "~$")):
            continue
        out.append(p)
    return out


def sources_by_glob(name: str, sources: dict[str, Source]) -> list[str]:
    low = name.lower()
    return [s.name for s in sources.values() if any(fnmatch.fnmatch(low, g.lower()) for g in s.globs)]


def sources_in_file(path: Path, sources: dict[str, Source]) -> list[str]:
    """The sources whose required columns some sheet of the file names in one of its first rows
    (the best-matching source per sheet)."""
    n = file_rules()["header"]["search_rows"]
    heads: list[list[list[str]]] = []
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        check_text_bounds(path)
        data = path.read_bytes()
        if not data.strip():
            raise FileProblem(path, "the file is empty", "Ask the department to export it again.")
        text, _ = _decode(path, data)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        first = text[: text.find("\n")] if "\n" in text else text
        heads.append(_csv_records(path, text, _sniff_delimiter(first[:100_000]), n)[0])
    elif suffix in WORKBOOK_FORMATS:
        reader = open_workbook(path)
        charts = _chart_sheets(path)
        for i, name in enumerate(reader.sheet_names):
            if i in charts:
                continue
            grid, _ = read_sheet_grid(reader, path, i, name)
            _check_width(path, grid, name)
            heads.append([[_cell_text(v) for v in r] for r in grid.head(n).rows()])
    else:
        header, _ = read_parquet(path)
        heads.append([header])
    found: set[str] = set()
    for rows in heads:
        hits = []
        for s in sources.values():
            c = choose_header(rows, s)
            if c is not None and all(f.name in c.fields for f in s.required_fields):
                hits.append((len(c.fields), s.name))
        if hits:
            best = max(k for k, _ in hits)
            found.update(name for k, name in hits if k == best)
    return sorted(found, key=list(sources).index)


def parse_overrides(pairs: list[str]) -> dict[Path, str]:
    """``--source NAME=PATH`` values → {resolved path: source}."""
    sources = load_sources()
    out: dict[Path, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise KuomianError(f"--source {pair!r}: write it as NAME=PATH, e.g. --source tax=纳税2025.xlsx.")
        name, path = pair.split("=", 1)
        if name not in sources:
            raise KuomianError(f"--source {pair!r}: unknown source {name!r}. Known: {', '.join(sources)}.")
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise KuomianError(f"--source {pair!r}: {path} is not a file.")
        out[p] = name
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def recognise(sources_dir: Path, overrides: dict[Path, str] | None = None) -> list[FileInfo]:
    """Decide the source of every file (no data read beyond headers)."""
    sources = load_sources()
    overrides = overrides or {}
    infos: list[FileInfo] = []
    files = discover(sources_dir)
    seen = set()
    for p in files:
        rp = p.resolve()
        seen.add(rp)
        hits = sources_by_glob(p.name, sources)
        if p.suffix.lower() not in READABLE:
            kind = file_rules()["cannot_read"].get(p.suffix.lower())
            if kind and (hits or rp in overrides):
                _refuse_unreadable(p)
            what = f"{kind} file" if kind else f"{p.suffix or 'no extension'}"
            infos.append(FileInfo(p, None, "ignored", problem=f"not an extract ({what})"))
            continue
        if rp in overrides:
            infos.append(FileInfo(p, overrides[rp], "override"))
            continue
        if len(hits) > 1:
            raise KuomianError(
                f"{p}: the file name fits more than one source ({', '.join(hits)}). "
                f"Rename the file or say which it is with --source {hits[0]}={p}."
            )
        if hits:
            infos.append(FileInfo(p, hits[0], "glob"))
            continue
        try:
            hits = sources_in_file(p, sources)
        except FileProblem:
            infos.append(FileInfo(p, None, "unrecognised", problem="unreadable, and its name fits no source"))
            continue
        if len(hits) > 1:
            raise KuomianError(
                f"{p}: the headers fit more than one source ({', '.join(hits)}). "
                f"Say which it is with --source {hits[0]}={p}."
            )
        infos.append(FileInfo(p, hits[0] if hits else None, "headers" if hits else "unrecognised"))
    for rp, name in overrides.items():
        if rp not in seen:
            infos.append(FileInfo(rp, name, "override"))
    for info in infos:
        info.size = info.path.stat().st_size
    _disambiguate(infos, sources_dir)
    return infos


def _disambiguate(infos: list[FileInfo], sources_dir: Path) -> None:
    """Two files shown under one name (the same name in two folders, or names that differ only in a
    masked ID) would share their rows' ``file``: show those by their path below SOURCES_DIR, numbered
    if that still collides."""
    names = Counter(i.name for i in infos)
    for info in infos:
        if names[info.name] > 1:
            try:
                info.shown_as = redact_ids(info.path.relative_to(sources_dir).as_posix())
            except ValueError:  # an --source file outside SOURCES_DIR
                info.shown_as = redact_ids(info.path.as_posix())
    seen: Counter[str] = Counter()
    for info in infos:
        seen[info.name] += 1
        if seen[info.name] > 1:
            info.shown_as = f"{info.name} ({seen[info.name]})"
