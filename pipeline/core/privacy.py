"""The bureau's secret key, ``person_key`` and row fingerprints.

``person_key`` = ``"P"`` + the first 16 hex digits (64 bits) of HMAC-SHA256(key,
canonical ID), each written as a letter (0–f → A–R without I and O). The same ID gives the same key in every run
and on every machine that holds the same key file; without the key it cannot
be reversed (a plain hash of the ~1e11 possible IDs can be brute-forced in a
day, an HMAC cannot).

Where the key lives: the file named by ``KUOMIAN_KEY_FILE``, else
``<state folder>/person_key.secret`` where the state folder is
``KUOMIAN_STATE`` or ``~/.kuomian``. The first run creates it (32 random
bytes, owner-only permissions) and says so. It is never written into any
output. If it is lost, a new one is created: every ``person_key`` changes,
but nothing else is lost — ``--previous`` carries answers forward by ID
number, and review decisions are re-asked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .errors import KuomianError
from .i18n import _


def state_dir() -> Path:
    d = Path(os.environ.get("KUOMIAN_STATE") or Path.home() / ".kuomian")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def key_path() -> Path:
    env = os.environ.get("KUOMIAN_KEY_FILE")
    return Path(env) if env else state_dir() / "person_key.secret"


def load_key(create: bool = True, announce=lambda msg: None) -> bytes:
    """The bureau's key; created (and announced) on first use."""
    return _load_key(str(key_path()), create, announce)


MIN_KEY_BYTES = 32


def _new_key() -> str:
    """The end of the key errors' advice (a clause of its own, after a comma)."""
    return _(
        "or move it away so that kuomian creates a new one (every person_key then changes; "
        "--previous still carries answers forward by ID number)"
    )


MAX_KEY_FILE_BYTES = 4096  # a key is 64 hex digits; a bigger "key file" is something else


def _file_kind(mode: int) -> str:
    import stat

    for test, what in (
        (stat.S_ISDIR, _("a folder")),
        (stat.S_ISFIFO, _("a named pipe (FIFO)")),
        (stat.S_ISCHR, _("a device")),
        (stat.S_ISBLK, _("a device")),
        (stat.S_ISSOCK, _("a socket")),
    ):
        if test(mode):
            return what
    return _("not a file")


def check_key_file(path: Path) -> bytes:
    """The key in ``path``, or one line saying what is wrong with the file and how to fix it.

    Refused: empty, not hex, shorter than 32 bytes (anyone could compute person_key), not owned
    by this user, readable or writable by others (where the platform has owners and modes).
    """
    import stat

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            # a FIFO would block forever, /dev/zero would fill memory, a folder cannot be read
            raise KuomianError(
                _(
                    "{path}: the person_key secret must be a regular file, and this is {file_kind}. Point KUOMIAN_KEY_FILE at the key file itself, {new_key}."
                ).format(path=path, file_kind=_file_kind(st.st_mode), new_key=_new_key())
            )
        # O_NONBLOCK: should it be swapped for a FIFO after the check, opening it does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise KuomianError(
                    _(
                        "{path}: the person_key secret must be a regular file. Point KUOMIAN_KEY_FILE at the key file itself, {new_key}."
                    ).format(path=path, new_key=_new_key())
                )
            raw = os.read(fd, MAX_KEY_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as e:
        raise KuomianError(
            _(
                "{path}: the person_key secret cannot be read ({strerror}). Fix its permissions, {new_key}."
            ).format(path=path, strerror=e.strerror, new_key=_new_key())
        ) from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KuomianError(
            _(
                "{path}: the person_key secret is larger than {max_key_file_bytes} bytes, so it is not a key file. Point KUOMIAN_KEY_FILE at the key file itself, {new_key}."
            ).format(path=path, max_key_file_bytes=MAX_KEY_FILE_BYTES, new_key=_new_key())
        )
    text = raw.decode("ascii", errors="replace").strip()
    if not text:
        raise KuomianError(
            _("{path}: the person_key secret is empty. Restore it from your backup, {new_key}.").format(
                path=path, new_key=_new_key()
            )
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KuomianError(
            _(
                "{path}: the person_key secret is not a hexadecimal key. Restore it from your backup, {new_key}."
            ).format(path=path, new_key=_new_key())
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise KuomianError(
            _(
                "{path}: the person_key secret holds {n_key} bytes, fewer than {min_key_bytes}, so person_key could be guessed. Replace it with a longer key from your backup, {new_key}."
            ).format(path=path, n_key=len(key), min_key_bytes=MIN_KEY_BYTES, new_key=_new_key())
        )
    getuid = getattr(os, "getuid", None)
    if getuid is not None:  # POSIX owners and modes; on Windows the folder's ACL protects the file
        if st.st_uid != getuid():
            raise KuomianError(
                _(
                    "{path}: the person_key secret belongs to another user. Copy it to a file of your own (chmod 600) and point KUOMIAN_KEY_FILE at it."
                ).format(path=path)
            )
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise KuomianError(
                _(
                    "{path}: the person_key secret is readable or writable by others (mode {mode:o}). Run chmod 600 {path}, and replace the key if others may have read it."
                ).format(path=path, mode=stat.S_IMODE(st.st_mode))
            )
    return key


@lru_cache(maxsize=4)
def _load_key(path_str: str, create: bool, announce) -> bytes:
    path = Path(path_str)
    if path.exists():
        return check_key_file(path)
    if not create:
        raise FileNotFoundError(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    announce(
        _("created a new person_key secret at {path} (keep it safe: it makes person_key stable)").format(
            path=path
        )
    )
    return key


class _Hmac:
    """HMAC-SHA256 with the key's inner and outer pads hashed once (RFC 2104), then copied
    for every message: the same digest as ``hmac.digest``, five times faster on millions of IDs."""

    def __init__(self, key: bytes):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, msg: bytes) -> str:
        inner = self.inner.copy()
        inner.update(msg)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


# Hex digits written as letters (no I or O): a key never holds a run of digits that a scan
# for ID numbers would flag, and Excel always keeps it as text.
_LETTERS = str.maketrans("0123456789abcdef", "ABCDEFGHJKLMNPQR")


def person_key(id_canonical: str, key: bytes) -> str:
    """The person_key of a person_id (UTF-8, as DuckDB encodes it: a shared number holder's ID#name)."""
    return "P" + hmac.digest(key, id_canonical.encode("utf-8"), "sha256").hex()[:16].translate(_LETTERS)


def person_keys(ids: Sequence[str | None], key: bytes) -> list[str | None]:
    h = _Hmac(key)
    return ["P" + h.hexdigest(i.encode("utf-8"))[:16].translate(_LETTERS) if i else None for i in ids]


# The same digests computed by DuckDB, vectorised over a column (``sha256`` of BLOBs is
# HMAC's two hashes; the pads are bound as parameters, so the key never appears in SQL text
# or in an error message). ``tests/test_privacy_keys.py`` checks they equal the Python ones.
_HMAC_SQL = "sha256($hmac_outer || unhex(sha256($hmac_inner || encode({msg}))))"


def key_params(key: bytes) -> dict[str, bytes]:
    """The parameters every :func:`person_key_sql` / :func:`fingerprint_sql` query needs."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return {"hmac_inner": bytes(b ^ 0x36 for b in key), "hmac_outer": bytes(b ^ 0x5C for b in key)}


def _letters_sql(hex_sql: str, n: int) -> str:
    return f"translate(left({hex_sql}, {n}), '0123456789abcdef', 'ABCDEFGHJKLMNPQR')"


def person_key_sql(id_sql: str) -> str:
    """SQL for :func:`person_key` of the VARCHAR expression ``id_sql`` (NULL stays NULL)."""
    return f"'P' || {_letters_sql(_HMAC_SQL.format(msg=id_sql), 16)}"


def fingerprint_sql(*parts_sql: str) -> str:
    """SQL for :func:`fingerprint` of VARCHAR expressions (a NULL part counts as '')."""
    msg = "concat_ws(chr(31), " + ", ".join(f"coalesce({p}, '')" for p in parts_sql) + ")"
    return f"'F' || {_letters_sql(_HMAC_SQL.format(msg=msg), 20)}"


def fingerprint(*parts: str | None, key: bytes) -> str:
    """A keyed digest of a row's identity (source, raw ID, name key, …): stable, not reversible."""
    msg = "\x1f".join(p or "" for p in parts).encode("utf-8")
    return "F" + hmac.digest(key, msg, "sha256").hex()[:20].translate(_LETTERS)


def fingerprints(rows: list[tuple], key: bytes) -> list[str]:
    """:func:`fingerprint` for many rows at once."""
    h = _Hmac(key)
    return [
        "F" + h.hexdigest("\x1f".join(p or "" for p in parts).encode("utf-8"))[:20].translate(_LETTERS)
        for parts in rows
    ]
