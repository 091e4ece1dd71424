"""Atomic file I/O: the one way kuomian writes files, locks folders and cleans up after itself.

* :func:`write_atomically` — a file through a uniquely named temporary file beside it
  (created exclusively, owner-only), fsync, ``os.replace``, fsync of the folder;
* :class:`Lock` / :func:`output_lock` — a cross-platform lock (the ``filelock`` library) beside
  a folder, held while a command writes it; a second command fails with one clear line;
* :func:`make_staging` / :func:`move_into_place` — the private staging folder beside OUT_DIR
  (``.OUT.staging-<pid>``, 0700, created exclusively) and the two renames that publish it;
* :func:`check_replaceable` — what ``--force`` may replace (a kuomian output folder of ours only);
* :func:`clean_leftovers` / :func:`sweep_dead_runs` — staging folders and old copies of killed
  runs. Every staging folder is recorded in the state folder (``runs/<token>.json``, written
  after its run took ``runs/<token>.lock``, which it holds until it ends); any later command
  removes the folders of runs that are dead (their lock is free: the operating system releases
  it when a process dies, even by SIGKILL) and older than itself.

"Ours" means: not a symbolic link, and (where the platform has owners, i.e. not Windows) owned by
this user. On Windows permission bits do not exist beyond read-only: files get the folder's ACL.
Nothing here imports a POSIX-only module (``fcntl``, ``pwd``, ``grp``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import KuomianError, OutputExists, signals_held
from .i18n import _

if TYPE_CHECKING:
    from filelock import BaseFileLock

IMPORT_WAIT = 30.0  # seconds an import waits for a refresh or another import holding the folder
_GETUID = getattr(os, "getuid", None)  # absent on Windows


def shared_output() -> bool:
    return os.environ.get("KUOMIAN_SHARED_OUTPUT") == "1"


@contextlib.contextmanager
def private_umask(enabled: bool = True) -> Iterator[None]:
    """Files written meanwhile are owner-only (0600 files, 0700 folders) unless KUOMIAN_SHARED_OUTPUT=1."""
    if not enabled or shared_output():
        yield
        return
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _default_mode() -> int:
    if shared_output():
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
    return 0o600


# ---------------------------------------------------------------- ownership


def is_ours(path: Path) -> bool:
    """``path`` exists, is not a symbolic link and (where owners exist) belongs to this user."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode):
        return False
    return _GETUID is None or st.st_uid == _GETUID()


def remove_tree(path: Path) -> bool:
    """Remove a folder of ours (never a link's target, never someone else's); True if removed."""
    if not is_ours(path):
        return False
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return not os.path.lexists(path)


# ---------------------------------------------------------------- fsync


def fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # a folder cannot be opened for fsync on Windows; NTFS journals the rename
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb+" if os.name == "nt" else "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(dirpath))


# ---------------------------------------------------------------- one file


def write_atomically(path: Path, write: Callable[[BinaryIO], None], mode: int | None = None) -> None:
    """Write ``path`` through a temporary file beside it: fsync, then ``os.replace``.

    The temporary name is unique (pid and random) and created exclusively, so two writers never
    share it and a planted file or link is never followed. The new file gets the permissions of
    the file it replaces (owner-only for a new file unless ``KUOMIAN_SHARED_OUTPUT=1``); it is
    never readable by others while it is written.
    """
    path = Path(path)
    if mode is None:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _default_mode()
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_parquet_atomically(df, path: Path) -> None:
    write_atomically(path, lambda fh: df.write_parquet(fh))


# ---------------------------------------------------------------- locks


class Lock:
    """An exclusive lock on ``path`` (a lock file), through ``filelock`` (flock / msvcrt).

    ``wait`` seconds to wait for another holder (0: fail at once). Fails with one clear
    line naming ``folder`` (exit 4). A lock file that is a link or not ours is refused.
    """

    def __init__(self, path: Path, folder: Path, *, wait: float = 0, what: str | None = None):
        self.path = Path(path)
        self.folder = folder
        self.wait = wait
        self.what = what or _("another kuomian run is writing this folder right now")
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> Lock:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(self.path) and not is_ours(self.path):
            raise KuomianError(
                _(
                    "{path}: this lock file is a link or belongs to another user, so kuomian will not use it. Remove it (or choose another --out) and run again."
                ).format(path=self.path),
            )
        lock = FileLock(
            self.path, timeout=self.wait, mode=0o666 if shared_output() else 0o600,
            thread_local=False, preserve_lock_file=True,
        )  # fmt: skip
        try:
            lock.acquire()
        except Timeout:
            raise KuomianError(
                _(
                    "{folder}: {what}. Wait for it to finish (nothing has been changed by this command)."
                ).format(folder=self.folder, what=self.what),
                exit_code=4,
            ) from None
        self._lock = lock
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.release()
            self._lock = None


def output_lock(out_dir: Path, *, wait: float = 0, what: str | None = None) -> Lock:
    """The lock beside OUT_DIR (``.OUT.lock``): refreshes, compares and imports into it take it."""
    out_dir = Path(out_dir).absolute()
    return Lock(out_dir.parent / f".{out_dir.name}.lock", out_dir, wait=wait, what=what)


# ---------------------------------------------------------------- run records (item: leftovers)


def _runs_dir() -> Path:
    from .privacy import state_dir

    d = state_dir() / "runs"
    d.mkdir(exist_ok=True, mode=0o700)
    return d


class RunRecord:
    """While alive, a command holds ``runs/<token>.lock``; ``runs/<token>.json`` names its staging folder."""

    def __init__(self, staging: Path):
        self.staging = Path(staging).absolute()
        self.token = f"{int(time.time())}-{os.getpid()}-{secrets.token_hex(4)}"
        folder = _runs_dir()
        self.lock = Lock(folder / f"{self.token}.lock", folder)
        self.record = folder / f"{self.token}.json"

    def __enter__(self) -> RunRecord:
        self.lock.__enter__()
        fd = os.open(self.record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"staging": str(self.staging), "pid": os.getpid(), "started": time.time()}, fh)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):
            self.record.unlink()
        self.lock.__exit__()
        with contextlib.suppress(OSError):
            self.lock.path.unlink()


def sweep_dead_runs(progress: Callable[[str], None] = lambda m: None) -> list[Path]:
    """Remove the staging folders of dead runs older than this command (see the module docstring)."""
    from filelock import FileLock, Timeout

    removed: list[Path] = []
    now = time.time()
    try:
        folder = _runs_dir()
        records = sorted(folder.glob("*.json"))
    except OSError:
        return removed
    for rec in records:
        try:
            if not is_ours(rec) or os.lstat(rec).st_mtime > now:
                continue
            lock = FileLock(
                folder / f"{rec.stem}.lock", timeout=0, thread_local=False, preserve_lock_file=True
            )
            lock.acquire()
        except (Timeout, OSError):
            continue  # alive (or not ours to judge)
        try:
            if not rec.exists():
                continue
            staging: Path | None
            try:
                staging = Path(json.loads(rec.read_text("utf-8"))["staging"])
            except (ValueError, KeyError, TypeError, OSError):
                staging = None
            dead = staging is not None and ".staging-" in staging.name and os.path.lexists(staging)
            if dead and staging is not None and remove_tree(staging):
                removed.append(staging)
                progress(_("removed the leftovers of an interrupted run ({name})").format(name=staging.name))
            if staging is not None and staging.name.startswith(".") and ".staging-" in staging.name:
                # killed while replacing its OUT_DIR: put the old copy back, or remove a stale one
                out_name, _sep, pid = staging.name[1:].rpartition(".staging-")
                with contextlib.suppress(OSError):
                    repair_swap(staging.parent / out_name, progress, pid=pid)
            with contextlib.suppress(OSError):
                rec.unlink()
        finally:
            lock.release()
            with contextlib.suppress(OSError):
                (folder / f"{rec.stem}.lock").unlink()
    return removed


# ---------------------------------------------------------------- staging and publishing a folder


def staging_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.staging-{os.getpid()}"


def make_staging(path: Path) -> Path:
    """Create the private staging folder ``path`` exclusively (0700; a planted one is never reused)."""
    try:
        os.mkdir(path, 0o777 if shared_output() else 0o700)
    except FileExistsError:
        if not remove_tree(path):
            raise KuomianError(
                _(
                    "{path}: a folder or link that is not kuomian's is in the way. Remove it and run again."
                ).format(path=path)
            ) from None
        os.mkdir(path, 0o777 if shared_output() else 0o700)
    return path


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A recorded private staging folder beside ``out_dir``, removed on any error."""
    stage = staging_dir(out_dir)
    with RunRecord(stage):
        make_staging(stage)
        try:
            yield stage
        except Exception as e:
            full = _no_room_left(stage)
            remove_tree(stage)
            if full and getattr(e, "errno", None) != errno.ENOSPC:
                # a library may tell a full disk in its own words (polars: "Invalid thrift:
                # transport error"): say what it was, while the files that filled it are there
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(stage)) from e
            raise
        except BaseException:
            remove_tree(stage)
            raise
        remove_tree(stage)  # moved into place by then (no-op), or a work folder that is done


def _no_room_left(folder: Path) -> bool:
    """The file system of ``folder`` is full: under 1 MB free, and under 5 % of its size."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return False
    return usage.free < min(1_000_000, usage.total // 20)


@contextlib.contextmanager
def private_workdir(prefix: str) -> Iterator[Path]:
    """A recorded, owner-only work folder in the state folder (``check``'s DuckDB spill files)."""
    from .privacy import state_dir

    tmp = state_dir() / "tmp"
    tmp.mkdir(exist_ok=True, mode=0o700)
    with staging(tmp / f"{prefix}-{secrets.token_hex(4)}") as stage:
        yield stage


def _is_kuomian_output(folder: Path, manifest: str = "manifest.json") -> bool:
    try:
        return json.loads((folder / manifest).read_text("utf-8")).get("tool") == "kuomian"
    except (OSError, ValueError, AttributeError):
        return False


def clean_leftovers(out_dir: Path, progress: Callable[[str], None] = lambda m: None) -> None:
    """Remove staging folders of killed runs into OUT_DIR; restore OUT_DIR if a run died between its
    two renames. Only leftovers of ours are touched (a planted folder or link is left alone)."""
    out_dir = Path(out_dir)
    for p in out_dir.parent.glob(f".{out_dir.name}.staging-*"):
        if remove_tree(p):
            progress(_("removed the leftovers of an interrupted run ({name})").format(name=p.name))
        else:
            progress(_("left {name} alone: it is a link or not yours").format(name=p.name))
    repair_swap(out_dir, progress)


def _swap_marker(out_dir: Path, pid: int | str) -> Path:
    return out_dir.parent / f".{out_dir.name}.swap-{pid}"


def repair_swap(
    out_dir: Path, progress: Callable[[str], None] = lambda m: None, *, pid: str | None = None
) -> None:
    """Finish what a run killed while replacing OUT_DIR left (:func:`move_into_place`).

    An old copy ``.OUT.old-PID`` is put back only when its run's swap marker ``.OUT.swap-PID``
    (written before the first rename, removed after the second) says the run died between the
    two renames and OUT_DIR is absent. Any other old copy is stale (its run published the newer
    OUT_DIR, which someone may have removed since): it is removed, never restored."""
    out_dir = Path(out_dir)
    which = pid or "*"  # one dead run's (kuomian clean, without OUT_DIR's lock), or all (under it)
    olds = sorted(p for p in out_dir.parent.glob(f".{out_dir.name}.old-{which}") if is_ours(p) and p.is_dir())
    for p in olds:
        pid = p.name.rsplit("-", 1)[-1]
        marker = _swap_marker(out_dir, pid)
        cut = is_ours(marker) and not os.path.lexists(out_dir)
        if cut and _is_kuomian_output(p):
            os.replace(p, out_dir)
            fsync_dir(out_dir.parent)
            progress(_("restored {out_dir} from an interrupted replacement").format(out_dir=out_dir))
        elif remove_tree(p):
            progress(
                _("removed {name}, an old copy of {folder} that a finished run left").format(
                    name=p.name, folder=out_dir.name
                )
            )
    for m in out_dir.parent.glob(f".{out_dir.name}.swap-{which}"):
        if is_ours(m):
            with contextlib.suppress(OSError):
                m.unlink()


def published_folder_holding(path: Path) -> Path | None:
    """The folder kuomian published (its manifest.json says so) that ``path`` is inside, if any."""
    for folder in Path(os.path.abspath(path)).parents:
        if _is_kuomian_output(folder):
            return folder
    return None


def _refuse(out_dir: Path, why: str) -> KuomianError:
    return KuomianError(
        _("--out {out_dir}: {why}. Choose another --out (a new folder, or one kuomian published).").format(
            out_dir=out_dir, why=why
        )
    )


def published_persons(folder: Path, *, name: str, hint: str) -> Path:
    """``folder/persons.parquet`` of a published OUT_DIR; else exit 1 with one line naming the
    option or argument (``name``, e.g. ``--registry``), the folder and what to do (``hint``)."""
    folder = Path(folder)
    where = f"{name} {folder}" if name else str(folder)
    if not folder.is_dir():
        raise KuomianError(_("{where}: no such folder. {hint}").format(where=where, hint=hint))
    path = folder / "persons.parquet"
    if not path.exists():
        raise KuomianError(
            _("{where}: not a kuomian output folder (no persons.parquet). {hint}").format(
                where=where, hint=hint
            )
        )
    check_registry_file(path, where=where, hint=hint)
    return path


# What every persons.parquet kuomian published holds (the columns the commands that read one need).
REGISTRY_COLUMNS = ("id_number", "person_key", "name", "street_code", "status", "group")


def check_registry_file(
    path: Path, *, where: str, hint: str, columns: tuple[str, ...] = REGISTRY_COLUMNS
) -> None:
    """``path`` is a persons.parquet of a registry: Parquet, with ``columns``, and at least one
    person; else one line naming the file (its footer only is read, not the data)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        names = set(meta.schema.names)
    except Exception:  # pyarrow raises ArrowInvalid / OSError on a file that is not Parquet
        raise KuomianError(
            _("{where}: {path} is not a Parquet file kuomian wrote. {hint}").format(
                where=where, path=path, hint=hint
            )
        ) from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise KuomianError(
            _("{where}: {path} is not a kuomian registry (no column {missing}). {hint}").format(
                where=where, path=path, missing=", ".join(missing), hint=hint
            )
        )
    if meta.num_rows == 0:
        raise KuomianError(
            _("{where}: {path} holds no persons, so it is no registry to build on. {hint}").format(
                where=where, path=path, hint=hint
            )
        )


def check_output_target(
    out: Path,
    *,
    force: bool,
    inputs: tuple[Path, ...] = (),
    kind: str = "OUT_DIR",
    manifest: str = "manifest.json",
) -> Path:
    """Check OUT_DIR before anything is written; its absolute, resolved path.

    Refused always: ``/``, the home folder (or a folder holding it), a folder that holds or is
    inside one of ``inputs`` (SOURCES_DIR). With ``force`` and an existing OUT_DIR: a symbolic
    link, something not ours, or a non-empty folder that is not a kuomian output (no manifest.json
    of kuomian's).
    Without ``force`` an existing OUT_DIR is refused (exit 3).
    """
    out = Path(out)
    absolute = Path(os.path.abspath(out))
    if os.path.islink(absolute):
        raise _refuse(out, _("it is a symbolic link, and kuomian never replaces a link's target"))
    resolved = absolute.resolve()
    home = Path.home().resolve()
    if resolved == Path(resolved.anchor) or resolved == home or home.is_relative_to(resolved):
        raise _refuse(out, _("that is the root or your home folder"))
    for src in inputs:
        s = Path(src).resolve()
        if resolved == s or resolved.is_relative_to(s) or s.is_relative_to(resolved):
            raise _refuse(out, _("it holds or is inside the input folder {src}").format(src=src))
    if os.path.lexists(resolved):
        if not force:
            raise OutputExists(
                _("{out} already exists. Add --force to replace it, or choose another --out.").format(out=out)
            )
        if not is_ours(resolved) or not resolved.is_dir():
            raise _refuse(out, _("it is not a folder of yours, so --force will not replace it"))
        if not _is_kuomian_output(resolved) and any(
            resolved.iterdir()
        ):  # an empty folder holds nothing to lose
            raise _refuse(
                out,
                _(
                    "it is not a folder kuomian published (no manifest.json of kuomian), so --force will not "
                    "replace it ({kind})"
                ).format(kind=kind),
            )
    return resolved


# The OUT_DIR this process is writing (for a "disk full" message) and the one it published.
_target: list[Path] = []
_published: list[Path] = []


def current_target() -> Path | None:
    return _target[-1] if _target else None


def published_in_this_run() -> Path | None:
    """The OUT_DIR this process has published, if it has (an interruption after that is no loss)."""
    return _published[-1] if _published else None


def move_into_place(stage: Path, out_dir: Path, force: bool) -> None:
    """fsync the staging folder, then rename it to OUT_DIR (the old one aside, then removed).

    The swap runs with SIGINT/SIGTERM held, between a swap marker written before the first
    rename and removed after the second (:func:`repair_swap` reads it after a SIGKILL)."""
    fsync_tree(stage)
    old_holder: list[Path] = []
    try:
        _swap(stage, out_dir, force, old_holder)
    finally:
        # after publishing, even when a held Ctrl-C is delivered as the signals come back
        if old_holder and published_in_this_run() == Path(out_dir):
            remove_tree(old_holder[0])


def _swap(stage: Path, out_dir: Path, force: bool, old_holder: list[Path]) -> None:
    with signals_held():
        if os.path.lexists(out_dir):
            if not force:
                raise OutputExists(
                    _("{out_dir} already exists. Add --force to replace it, or choose another --out.").format(
                        out_dir=out_dir
                    )
                )
            if not is_ours(out_dir) or not (_is_kuomian_output(out_dir) or not any(Path(out_dir).iterdir())):
                raise _refuse(
                    out_dir, _("it is not a folder kuomian published, so --force will not replace it")
                )
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            old_holder.append(old)
            if os.path.lexists(old) and not remove_tree(old):
                raise _refuse(out_dir, _("{name} beside it is a link or not yours").format(name=old.name))
            marker = _swap_marker(out_dir, os.getpid())
            if os.path.lexists(marker) and not remove_tree(marker):
                raise _refuse(out_dir, _("{name} beside it is a link or not yours").format(name=marker.name))
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
            fsync_dir(out_dir.parent)
            _hook("swap")  # tests: a kill between marker and renames
            os.replace(out_dir, old)
            _hook("between_renames")  # tests: a kill (or a held Ctrl-C) between the two renames
            os.replace(stage, out_dir)
            fsync_dir(out_dir.parent)
            marker.unlink()
            _hook("after_renames")  # tests: a kill before the old copy is removed
        else:
            os.replace(stage, out_dir)
        fsync_dir(out_dir.parent)
        _published.append(Path(out_dir))


# Test-only pauses inside the swap (tests/fault_launcher.py installs them); never set otherwise.
SWAP_HOOKS: list[Callable[[str], None]] = []


def _hook(moment: str) -> None:
    for h in SWAP_HOOKS:
        h(moment)


@contextlib.contextmanager
def publishing(
    out_dir: Path,
    *,
    force: bool,
    progress: Callable[[str], None] = lambda m: None,
    also_lock: Path | None = None,
) -> Iterator[Path]:
    """Publish a folder atomically: the one way ``refresh``, ``compare`` and ``progress`` write
    their OUT_DIR.

    Removes dead runs' leftovers, makes what follows owner-only (:func:`private_umask`), locks
    OUT_DIR (and ``also_lock``, a folder the run reads that an import could change meanwhile),
    repairs an interrupted replacement, then yields a private staging folder beside OUT_DIR.
    When the block ends without an error the staging folder is fsynced and moved into place as
    OUT_DIR (:func:`move_into_place`); on any error it is removed and OUT_DIR is untouched.
    """
    out_dir = Path(out_dir)
    sweep_dead_runs(progress)
    _target.append(out_dir.absolute())
    with private_umask(), output_lock(out_dir), contextlib.ExitStack() as held:
        if also_lock is not None and Path(also_lock).resolve() != out_dir.resolve():
            held.enter_context(
                output_lock(also_lock, what=_("another kuomian command is writing this folder right now"))
            )
        clean_leftovers(out_dir, progress)
        with staging(out_dir) as stage:
            yield stage
            move_into_place(stage, out_dir, force)
