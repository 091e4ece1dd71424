"""``kuomian`` — the command line. A thin layer: parse, call a stage function, print.

Every command has ``--help`` with an example, prints progress on stderr, ends
with a short summary, and exits non-zero with one clear line on an error
(a traceback only with ``--debug``). No full ID number is ever printed.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import KuomianError
from ..core.i18n import _
from ..core.ids import redact_ids

app = typer.Typer(
    name="kuomian",
    help=_("扩面 kuomian: build Anning's real-name registry of pension-insurance expansion targets."),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(
    help=_("The policy (rules/ and sources/): export the defaults for editing, check a folder."),
    no_args_is_help=True,
    rich_markup_mode=None,
)
review_app = typer.Typer(
    help=_("The review queue (review.xlsx)."), no_args_is_help=True, rich_markup_mode=None
)
survey_app = typer.Typer(help=_("Door-to-door survey answers."), no_args_is_help=True, rich_markup_mode=None)
app.add_typer(review_app, name="review")
app.add_typer(survey_app, name="survey")
app.add_typer(rules_app, name="rules")

STATE = {"debug": False, "quiet": False}


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` as one line to show: an ID-like number masked, and a control or bidirectional
    character (a newline in a file name, U+202E) written as an escape, so that nothing read
    from a file or folder name can split a line or forge another one."""
    import unicodedata

    def esc(ch: str) -> str:
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if (
            unicodedata.category(ch) in ("Cc", "Zl", "Zp")
            or "\u200b" <= ch <= "\u200f"
            or "\u202a" <= ch <= "\u202e"
        ):
            return f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}"
        return ch

    text = redact_ids(text)
    return "".join(esc(c) for c in text) if any(not c.isprintable() for c in text) else text


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(_("error: {message}").format(message=one_line(message)), err=True)
    return typer.Exit(code)


def say(message: str) -> None:
    """One line on stdout. Any ID-like number in it (a file or folder named by an ID) is masked."""
    typer.echo(one_line(message))


def friendly_errors(fn):
    """Turn every error into one clear line on stderr and an exit code (a traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KuomianError as e:
            if STATE["debug"]:
                raise
            raise fail(str(e), e.exit_code) from None
        except KeyboardInterrupt as e:
            raise _interrupted(getattr(e, "signum", None)) from None
        except OSError as e:
            if STATE["debug"]:
                raise
            if _disk_full(e):
                raise _no_space(e) from None
            if getattr(e, "filename", None):
                text = _(
                    "{error} ({file}). Nothing was published; free the space or fix the permission and run again."
                ).format(error=e.strerror or e, file=e.filename)
            else:
                text = _(
                    "{error}. Nothing was published; free the space or fix the permission and run again."
                ).format(error=e.strerror or e)
            raise fail(text, 1) from None
        except Exception as e:  # the last line of defence: never a traceback, never an ID
            if STATE["debug"]:
                raise
            if _disk_full(e):  # DuckDB's IOException, polars' errors: no errno, only the text
                raise _no_space(e) from None
            if "Query interrupted" in str(e) or type(e).__name__ == "InterruptException":
                # DuckDB noticed Ctrl-C / SIGTERM (our handler ran) and raised its own error
                raise _interrupted(None) from None
            raise fail(
                _("unexpected {kind}: {text}. Run again with --debug and report it.").format(
                    kind=type(e).__name__, text=str(e)[:300]
                ),
                70,
            ) from None
        except BaseException as e:  # a Rust panic (pyo3 PanicException) is not an Exception
            if isinstance(e, (SystemExit, GeneratorExit)) or STATE["debug"]:
                raise
            raise fail(
                _("unexpected {kind}. Run again with --debug and report it.").format(kind=type(e).__name__),
                70,
            ) from None

    return wrapper


def _interrupted(signum: int | None) -> typer.Exit:
    """Ctrl-C or SIGTERM: exit 130 / 143, saying whether the run had already published."""
    import signal

    from ..core.errors import last_signal
    from ..core.fileio import published_in_this_run

    signum = signum or last_signal() or signal.SIGINT
    done = published_in_this_run()
    if done is not None:
        return fail(
            _(
                "interrupted after {folder} was published (that run is complete). Nothing more needs doing."
            ).format(folder=done),
            128 + signum,
        )
    return fail(
        _("interrupted: nothing was published, and the previous output is unchanged. Run the command again."),
        128 + signum,
    )


def _disk_full(e: BaseException) -> bool:
    import errno

    return getattr(e, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) or (
        "No space left on device" in str(e) or "Disk quota exceeded" in str(e)
    )


def _no_space(e: BaseException) -> typer.Exit:
    """One line for a full disk: which folder, how much is free."""
    import re
    import shutil

    from ..core.fileio import current_target

    # the file that did not fit: Python's OSError names it; DuckDB quotes it in its text
    quoted = [Path(q) for q in re.findall(r'"([^"]+)"', str(e))]
    named = [Path(f) for f in (getattr(e, "filename", None),) if f]
    files = [p for p in [*named, *quoted] if p.is_absolute()]
    target = current_target()
    folder = files[0].parent if files else (target.parent if target else Path.cwd())
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        mb = shutil.disk_usage(folder).free // 1_000_000
    except OSError:
        return fail(
            _(
                "not enough space in {folder}: free space unknown (No space left on device). Nothing was "
                "published; free the space (or choose another --out) and run again."
            ).format(folder=folder),
            1,
        )
    return fail(
        _(
            "not enough space in {folder}: free {mb} MB (No space left on device). Nothing was published; "
            "free the space (or choose another --out) and run again."
        ).format(folder=folder, mb=mb),
        1,
    )


def progress(msg: str) -> None:
    if not STATE["quiet"]:
        typer.echo(f"[{datetime.now():%H:%M:%S}] {one_line(msg)}", err=True)


AS_OF_RANGE = (
    date(1990, 1, 1),
    date(2100, 12, 31),
)  # the 18-digit ID exists since 1999; nobody plans past 2100


def _as_of(value: str | None) -> date:
    if not value:
        return date.today()
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise KuomianError(
            _("--as-of {value}: write the date as YYYY-MM-DD, e.g. 2026-03-01.").format(value=repr(value))
        ) from None
    lo, hi = AS_OF_RANGE
    if not lo <= d <= hi:
        raise KuomianError(
            _(
                "--as-of {value}: outside {lo}…{hi}. Give the reference date of the extracts, e.g. 2026-03-01."
            ).format(value=value, lo=lo, hi=hi)
        )
    return d


def _run_options(threads: int | None, memory_limit: str | None) -> None:
    """--threads and --memory-limit, checked before anything is read (they reach DuckDB's SET)."""
    from ..core.db import check_memory_limit

    if threads is not None and not 1 <= threads <= 256:
        raise KuomianError(
            _("--threads {threads}: give a number of threads from 1 to 256, e.g. 2.").format(threads=threads)
        )
    if memory_limit is not None:
        check_memory_limit(memory_limit)


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help=_("Show Python tracebacks on errors."))] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=_("No progress lines."))] = False,
):
    STATE["debug"] = debug
    STATE["quiet"] = quiet
    if ctx.invoked_subcommand != "clean":
        with contextlib.suppress(Exception):  # never stops a command: the leftovers of killed runs go
            from ..core.fileio import sweep_dead_runs

            sweep_dead_runs(progress)


RulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        envvar="KUOMIAN_RULES",
        help=_(
            "The bureau's policy folder (rules/ and sources/, made by `kuomian rules export DIR`); "
            "default: the installed rules."
        ),
    ),
]


def use_rules(rules: Path | None) -> None:
    """Put the policy folder in force and check every file of it, before any data is read."""
    from ..core.config import use_policy
    from ..core.policy import clear_cache, load_policy

    use_policy(rules)
    clear_cache()  # read the files afresh: a long-lived process may see them edited
    load_policy()


SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help=_("Say which source a file is: NAME=PATH (repeatable), e.g. --source tax=纳税.xlsx"),
    ),
]
