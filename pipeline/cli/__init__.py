"""``kuomian`` — the command line. A thin layer: parse, call a command function, print.

Every command has ``--help`` with an example, prints progress on stderr, ends
with a short summary, and exits non-zero with one clear line on an error
(a traceback only with ``--debug``). No full ID number is ever printed.

The typer app and what every command shares (options, one-line errors, progress) are in
:mod:`.base`; the commands, by group: :mod:`.refresh` (refresh, validate), :mod:`.demo` (demo,
clean), :mod:`.answers` (review import, survey import), :mod:`.lists` (check, progress,
compare), :mod:`.rules` (rules export, rules check). Importing them registers them on ``app``.
"""

from __future__ import annotations

from .base import app, friendly_errors

# Importing a group registers its commands; --help lists them in this order.
# isort: off
from . import refresh, demo, answers, lists, rules  # noqa: F401, E402
# isort: on

__all__ = ["app", "friendly_errors", "main"]


def main() -> None:
    """Console entry point."""
    from ..core.errors import install_signal_handlers

    install_signal_handlers()
    app()
