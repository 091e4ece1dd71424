"""One kind of error a user sees: a clear sentence, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .i18n import _
from .ids import redact_ids


class KuomianError(Exception):
    """An error the user can act on.

    The message names the file (and row where there is one) and says what to
    do. Any ID-like number in it is masked before it is shown.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(redact_ids(message))
        if exit_code is not None:
            self.exit_code = exit_code


class FileProblem(KuomianError):
    """A file that cannot be used as it is (empty, truncated, wrong encoding, …)."""

    def __init__(self, path, problem: str, action: str, *, row: int | None = None, source: str | None = None):
        where = str(path) if row is None else _("{path}, row {row}").format(path=path, row=row)
        self.path = str(path)
        self.row = row
        self.source = source
        self.problem = problem
        super().__init__(
            _("{where}: {problem}. {action}").format(where=where, problem=problem, action=action)
        )


class OutputExists(KuomianError):
    exit_code = 3


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM arrived: the command stops and publishes nothing
    (exit 128 + the signal's number: 130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_signals_seen: list[int] = []


_held: list[int] = []  # > 0 while a block must not be cut (publishing's two renames)
_pending: list[int] = []


def _on_signal(signum, frame) -> None:
    _signals_seen.append(signum)
    if _held:
        _pending.append(signum)  # delivered when the block ends
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then interrupt as usual.

    Done in Python, not with ``pthread_sigmask``: the kernel hands a process's signal to any
    thread that does not block it (polars and DuckDB start their own), but Python always runs
    the handler in the main thread, where this flag is read. Off the main thread: no change."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, _on_signal)
    _held.append(1)
    try:
        yield
    finally:
        _held.pop()
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if not _held and _pending:
        signum = _pending[-1]
        _pending.clear()
        raise Interrupted(signum)


def last_signal() -> int | None:
    """The last SIGINT/SIGTERM this process received (DuckDB turns one into "Query interrupted")."""
    return _signals_seen[-1] if _signals_seen else None


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM become :class:`Interrupted`, so that ``finally`` blocks run (the staging
    folder is removed) and the exit code says which signal it was. Main thread only."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, _on_signal)
