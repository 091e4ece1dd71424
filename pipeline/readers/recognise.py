"""Which files of SOURCES_DIR are extracts, and of which source: ``--source NAME=PATH`` first,
then the file-name globs, then the headers of the first rows. No data is read beyond headers."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections import Counter
from pathlib import Path

from ..core.config import Source
from ..core.errors import FileProblem, KuomianError
from ..core.i18n import _
from ..core.ids import redact_ids
from ..core.policy import policy
from .base import FileInfo
from .headers import choose_header
from .parquet import read_parquet
from .sniff import real_format
from .tables import _refuse_unreadable, read_tables
from .text import _csv_records, _sniff_delimiter, check_text_bounds, text_of, unwrap_text_formula

READABLE = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".ods", ".parquet", ".htm", ".html", ".xml"}


def discover(sources_dir: Path) -> list[Path]:
    """The regular files directly in SOURCES_DIR (a link to one counts), in a stable order; Office
    lock files and hidden files skipped. Subfolders and what is not a regular file are
    :func:`not_files`."""
    return [p for p, kind in _entries(sources_dir) if kind is None]


def not_files(sources_dir: Path) -> list[tuple[Path, str]]:
    """What else SOURCES_DIR holds, with what it is: subfolders (last year's copies, backups) and
    anything that is not a regular file (a named pipe, a device, a socket, a broken link). They are
    listed, never opened."""
    return [(p, kind) for p, kind in _entries(sources_dir) if kind is not None]


def _entries(sources_dir: Path) -> list[tuple[Path, str | None]]:
    if not sources_dir.is_dir():
        raise KuomianError(
            _("{folder}: no such folder. Give the folder that holds the extracts.").format(folder=sources_dir)
        )
    out: list[tuple[Path, str | None]] = []
    for p in sorted(sources_dir.iterdir()):
        if p.name.startswith((".", "~$")):
            continue
        try:
            mode = os.stat(p).st_mode  # follows a link; never opens the file
        except OSError:
            out.append((p, "a broken link"))
            continue
        if stat.S_ISREG(mode):
            out.append((p, None))
        elif stat.S_ISDIR(mode):
            out.append((p, "a subfolder"))
        else:
            kind = (
                "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file"
            )  # fmt: skip
            out.append((p, kind))
    return out


def _not_read(p: Path, kind: str) -> FileInfo:
    """A FileInfo for a subfolder or something that is not a regular file."""
    if kind == "a subfolder":
        problem = _("a subfolder: not read (only the files directly in the sources folder are extracts)")
        return FileInfo(p, None, "not read", problem=problem, shown_as=redact_ids(p.name) + "/")
    problem = {
        "a broken link": _("a broken link, not a regular file: never opened"),
        "a named pipe (FIFO)": _("a named pipe (FIFO), not a regular file: never opened"),
        "a socket": _("a socket, not a regular file: never opened"),
        "a device": _("a device, not a regular file: never opened"),
    }.get(kind, _("not a regular file, not a regular file: never opened"))
    return FileInfo(p, None, "not read", problem=problem)


def _copies(files: list[Path], overrides: dict[Path, str]) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Readable files whose content (SHA-256) an earlier one already has -> that one, and every
    readable file's SHA-256. A file named with ``--source`` is the one read when it has a copy."""
    first: dict[str, Path] = {}
    hashes: dict[Path, str] = {}
    candidates = [p for p in overrides] + [p for p in files if p.resolve() not in overrides]
    sizes: dict[Path, int] = {}
    for p in candidates:
        if p.suffix.lower() in READABLE:
            try:
                sizes[p] = p.stat().st_size
            except OSError:
                continue  # the reader says what is wrong
    shared = Counter(sizes.values())
    for p, size in sizes.items():
        if shared[size] < 2:
            continue  # no other file of its size: no copy (hashed after its reader's bounds)
        try:
            hashes[p] = _sha256(p)
        except OSError:
            continue
        first.setdefault(hashes[p], p)
    return {p: first[h] for p, h in hashes.items() if first[h] != p}, hashes


def sources_by_glob(name: str, sources: dict[str, Source]) -> list[str]:
    low = name.lower()
    return [s.name for s in sources.values() if any(fnmatch.fnmatch(low, g.lower()) for g in s.globs)]


def sources_in_file(path: Path, sources: dict[str, Source]) -> list[str]:
    """The sources whose required columns some sheet of the file names in one of its first rows
    (the best-matching source per sheet)."""
    n = policy().file_rules.search_rows
    heads: list[list[list[str]]] = []
    fmt = real_format(path)
    if fmt == "csv":
        check_text_bounds(path)
        data = path.read_bytes()
        if not data.strip():
            raise FileProblem(path, _("the file is empty"), _("Ask the department to export it again."))
        text, _encoding = text_of(path, data)
        first = text[: text.find("\n")] if "\n" in text else text
        records = _csv_records(path, text, _sniff_delimiter(first[:100_000], path), n)[0]
        heads.append([[unwrap_text_formula(c) for c in r] for r in records])
    elif fmt == "parquet":
        header, _body = read_parquet(path)
        heads.append([header])
    else:  # every sheet's first rows, as the reader sees them (merged ranges filled)

        def keep(rows: list[list[str]]) -> None:
            heads.append(rows)

        read_tables(path, keep).close()
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
    sources = policy().sources
    out: dict[Path, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise KuomianError(
                _("--source {pair!r}: write it as NAME=PATH, e.g. --source tax=纳税2025.xlsx.").format(
                    pair=pair
                )
            )
        name, path = pair.split("=", 1)
        if name not in sources:
            raise KuomianError(
                _("--source {pair!r}: unknown source {name!r}. Known: {known}.").format(
                    pair=pair, name=name, known=", ".join(sources)
                )
            )
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise KuomianError(_("--source {pair!r}: {path} is not a file.").format(pair=pair, path=path))
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
    sources = policy().sources
    overrides = overrides or {}
    infos: list[FileInfo] = []
    files = discover(sources_dir)
    copy_of, hashes = _copies(files, overrides)
    seen = set()
    for p in files:
        rp = p.resolve()
        seen.add(rp)
        first = copy_of.get(p) or copy_of.get(rp)
        if first is not None:
            shown = redact_ids(first.name if first.parent == p.parent else str(first))
            problem = _("a copy of {file} (the same content): not read").format(file=shown)
            infos.append(FileInfo(p, None, "copy", problem=problem))
            continue
        hits = sources_by_glob(p.name, sources)
        if p.suffix.lower() not in READABLE:
            kind = policy().file_rules.cannot_read.get(p.suffix.lower())
            if kind and (hits or rp in overrides):
                _refuse_unreadable(p)
            if kind:
                problem = _("not an extract ({kind} file)").format(kind=kind)
            elif p.suffix:
                problem = _("not an extract ({extension})").format(extension=p.suffix)
            else:
                problem = _("not an extract (no extension)")
            infos.append(FileInfo(p, None, "ignored", problem=problem))
            continue
        if rp in overrides:
            infos.append(FileInfo(p, overrides[rp], "override"))
            continue
        if len(hits) > 1:
            raise KuomianError(
                _(
                    "{path}: the file name fits more than one source ({sources}). "
                    "Rename the file or say which it is with --source {first}={path}."
                ).format(path=p, sources=", ".join(hits), first=hits[0])
            )
        if hits:
            infos.append(FileInfo(p, hits[0], "glob"))
            continue
        try:
            hits = sources_in_file(p, sources)
        except FileProblem:
            problem = _("unreadable, and its name fits no source")
            infos.append(FileInfo(p, None, "unrecognised", problem=problem))
            continue
        if len(hits) > 1:
            raise KuomianError(
                _(
                    "{path}: the headers fit more than one source ({sources}). "
                    "Say which it is with --source {first}={path}."
                ).format(path=p, sources=", ".join(hits), first=hits[0])
            )
        infos.append(FileInfo(p, hits[0] if hits else None, "headers" if hits else "unrecognised"))
    for rp, name in overrides.items():
        if rp not in seen:
            infos.append(FileInfo(rp, name, "override"))
    for info in infos:
        info.size = info.path.stat().st_size
        info.sha256 = hashes.get(info.path, "")
    infos += [_not_read(p, kind) for p, kind in not_files(sources_dir)]
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
