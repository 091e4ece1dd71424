"""One kind of error a user sees: a clear sentence, never a traceback."""

from __future__ import annotations

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
        where = f"{path}" + (f", row {row}" if row is not None else "")
        self.path = str(path)
        self.row = row
        self.source = source
        self.problem = problem
        super().__init__(f"{where}: {problem}. {action}")


class OutputExists(KuomianError):
    exit_code = 3
