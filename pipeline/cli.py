"""``kuomian`` — the command line. A thin layer: parse, call a stage function, print.

Every command has ``--help`` with an example, prints progress on stderr, ends
with a short summary, and exits non-zero with one clear line on an error
(a traceback only with ``--debug``). No full ID number is ever printed.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from .core.errors import KuomianError
from .core.i18n import _
from .core.ids import redact_ids

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

    from .core.errors import last_signal
    from .core.fileio import published_in_this_run

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

    from .core.fileio import current_target

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
    from .core.db import check_memory_limit

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
            from .core.fileio import sweep_dead_runs

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
    from .core.config import use_policy
    from .core.policy import clear_cache, load_policy

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


@app.command(
    help=_(
        "The annual refresh: load, match, classify and publish the registry.\n\n"
        "Example: kuomian refresh extracts/2026 --out output/2026 --as-of 2026-03-01 --previous "
        "output/2025"
    ),
)
@friendly_errors
def refresh(
    sources_dir: Annotated[Path, typer.Argument(help=_("Folder holding the departments' extracts."))],
    out: Annotated[Path, typer.Option("--out", help=_("Output folder (published atomically)."))],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help=_("Reference date YYYY-MM-DD (default: today)."))
    ] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help=_("Last run's OUT_DIR: carry answers forward."))
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing OUT_DIR."))] = False,
    source: SourceOpt = None,
    skip_bad_files: Annotated[
        bool,
        typer.Option(
            "--skip-bad-files", help=_("Skip unreadable files of optional sources (listed in the manifest).")
        ),
    ] = False,
    accept_damaged_ids: Annotated[
        bool,
        typer.Option(
            "--accept-damaged-ids",
            help=_(
                "Publish even when many rows have no usable ID (e.g. an ID column stored as numbers); "
                "the summary and the report then warn in red."
            ),
        ),
    ] = False,
    accept_drift: Annotated[
        bool,
        typer.Option(
            "--accept-drift",
            help=_(
                "Publish even when what was read does not look like what should have been read (a column "
                "a source normally fills mostly empty; with --previous, a street's rows or fill rates far from "
                "last year's); the summary and the report then warn in red."
            ),
        ),
    ] = False,
    accept_missing_streets: Annotated[
        bool,
        typer.Option(
            "--accept-missing-streets",
            help=_(
                "Publish even when a street has no household rows; the summary and the report then warn in red."
            ),
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", help=_("DuckDB threads."))] = None,
    memory_limit: Annotated[
        str | None, typer.Option("--memory-limit", help=_("DuckDB memory limit, e.g. 4GB."))
    ] = None,
    on_disk: Annotated[
        bool | None,
        typer.Option(
            "--on-disk/--in-memory",
            help=_(
                "Keep DuckDB's tables in a file in the run's private temp folder (default: "
                "only when the extracts exceed 1 GiB, e.g. a whole prefecture)."
            ),
        ),
    ] = None,
    rules: RulesOpt = None,
):
    d = _as_of(as_of)
    _run_options(threads, memory_limit)
    use_rules(rules)
    from .commands.run import refresh as run_refresh
    from .readers import parse_overrides

    res = run_refresh(
        sources_dir, out, as_of=d, previous=previous, force=force,
        overrides=parse_overrides(source or []), skip_bad_files=skip_bad_files,
        accept_damaged_ids=accept_damaged_ids, accept_drift=accept_drift,
        accept_missing_streets=accept_missing_streets, threads=threads, memory_limit=memory_limit, on_disk=on_disk, progress=progress,
    )  # fmt: skip
    _print_refresh_summary(res)


def _print_refresh_summary(res) -> None:
    c = res.classify
    k = res.link
    say(_("published {folder}").format(folder=res.out_dir))
    say(
        _("  persons {persons} (household {household}), registry {registry}, review rows {review}").format(
            persons=k.persons, household=k.persons_local, registry=c.registry, review=k.review_rows
        )
    )
    groups = ", ".join(f"{g}: {n}" for g, n in sorted(c.groups.items()))
    say(_("  registry by group: {groups}").format(groups=groups))
    timings = ", ".join(f"{s} {t:.1f}" for s, t in res.timings.items())
    say(_("  stage seconds: {timings}").format(timings=timings))
    pr = res.publish
    if pr.survey_statuses or pr.disagreements:
        say(
            _(
                "  survey answers carried: {statuses} persons take their status from the survey; "
                "{disagreements} answers disagree with this year's extracts (see survey_disagreements.csv)"
            ).format(statuses=pr.survey_statuses, disagreements=pr.disagreements)
        )
    for w in res.warnings:
        typer.secho(one_line(_("  WARNING: {warning}").format(warning=w)), fg="red")


@app.command(
    help=_(
        "Load and check the extracts only: per file, its source, rows read, rows quarantined by "
        "reason, the fill rate of the columns the guards watch; then every finding of the guards.\n\n"
        "Example: kuomian validate extracts/2026 --previous output/2025"
    ),
)
@friendly_errors
def validate(
    sources_dir: Annotated[Path, typer.Argument(help=_("Folder holding the extracts."))],
    source: SourceOpt = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous", help=_("Last run's OUT_DIR: compare rows and fill rates per street with it.")
        ),
    ] = None,
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.guards import check_guards
    from .commands.run import validate as run_validate
    from .readers import parse_overrides

    lr, sr = run_validate(sources_dir, overrides=parse_overrides(source or []), progress=progress)
    guards = check_guards(lr, sr, previous=previous, stop=False, progress=progress)
    for f in lr.files:
        if f.how == "ignored":
            say(_("{file}: ignored — {problem}").format(file=f.name, problem=f.problem))
            continue
        if f.how in ("not read", "copy"):  # a subfolder, not a regular file, a copy of another file
            say(_("{file}: not read — {problem}").format(file=f.name, problem=f.problem))
            continue
        if f.source is None:
            say(
                _("{file}: not recognised (its name and headers fit no source) — ignored").format(file=f.name)
            )
            continue
        say(
            _("{file}: {source} (by {how}), {rows} rows, {format}{encoding}").format(
                file=f.name,
                source=f.source,
                how=f.how,
                rows=f.rows,
                format=f.format,
                encoding=" " + f.encoding if f.encoding else "",
            )
        )
        for s in f.sheets:
            if s.skipped:
                say(_("    sheet {sheet}: skipped — {why}").format(sheet=repr(s.name), why=s.skipped))
            elif s.name:
                say(
                    _("    sheet {sheet}: {rows} rows (header in row {header_row})").format(
                        sheet=repr(s.name), rows=s.rows, header_row=s.header_row
                    )
                )
            fill = guards.file_fill.get((f.source, f.name, s.name))
            if fill and s.skipped is None:
                rates = ", ".join(f"{fld} {rate:.0%}" for fld, (_k, _n, rate) in fill.items())
                if s.name:
                    say(_("    sheet {sheet} filled: {rates}").format(sheet=repr(s.name), rates=rates))
                else:
                    say(_("    filled: {rates}").format(rates=rates))
        q = {r: n for (s, fl, r), n in sr.quarantined.items() if s == f.source and fl == f.name}
        d = sr.duplicates.get((f.source, f.name), 0)
        if q:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(q.items()))
            say(_("    quarantined: {reasons}").format(reasons=reasons))
        if d:
            say(_("    exact duplicates: {rows}").format(rows=d))
        if f.extra_columns:
            say(
                _("    extra columns kept but not used: {columns}").format(columns=", ".join(f.extra_columns))
            )
    problems = []
    for (s, fld, v), n in sr.unknown_values.most_common(10):
        problems.append(
            _("{source}.{field}: unknown value {value} ({rows} rows)").format(
                source=s, field=fld, value=repr(v), rows=n
            )
        )
    for (s, fld), n in sr.unparsed.most_common(10):
        problems.append(
            _("{source}.{field}: {rows} values could not be read").format(source=s, field=fld, rows=n)
        )
    for (s, kind), n in sorted(sr.id_kinds.items()):
        if kind == "bad_check":
            problems.append(_("{source}: {rows} ID numbers fail their check digit").format(source=s, rows=n))
        elif kind == "excel":
            problems.append(_("{source}: {rows} ID numbers damaged by Excel").format(source=s, rows=n))
    if problems:
        say(_("first problems:"))
        for p in problems[:12]:
            say(_("  - {problem}").format(problem=p))
    if lr.sources_missing:
        say(_("optional sources absent: {sources}").format(sources=", ".join(lr.sources_missing)))
    from .commands.run import damage_check

    for w in damage_check(sr, accept=True):
        # validate publishes nothing, so nothing was accepted: the finding without that opening
        # (commands/run.py's English opening; once translated there, it stays in the Chinese line)
        finding = w.removeprefix("ID damage accepted (--accept-damaged-ids): ")
        typer.secho(one_line(_("WARNING: {warning}").format(warning=finding)), fg="red")
    for w in guards.warnings:
        typer.secho(redact_ids(_("WARNING: {warning}").format(warning=w)), fg="red")
    if previous is not None and guards.previous_note:
        say(_("guards against the previous run: not applicable — {why}").format(why=guards.previous_note))
    total = sum(sr.rows.values())
    say(
        _("{files} files, {rows} rows, {quarantined} quarantined").format(
            files=len([f for f in lr.files if f.source]), rows=total, quarantined=sum(sr.quarantined.values())
        )
    )


MIN_DEMO_PEOPLE = 500


@app.command(
    help=_(
        "Generate a realistic synthetic Anning (with every kind of dirt and, unless --tidy, files "
        "shaped as departments send them), run the refresh on it, import two streets' filled-in "
        "hand-offs (every kind of answer, then a second visit to those not found), then the bulletin "
        "(kuomian progress) with the bureau's enrolment extract of a year later.\n\n"
        "Example: kuomian demo --people 20000 --out output/demo"
    ),
)
@friendly_errors
def demo(
    people: Annotated[int, typer.Option("--people", help=_("Size of the generated Anning."))] = 20000,
    out: Annotated[
        Path, typer.Option("--out", help=_("Folder for the generated extracts and the outputs."))
    ] = Path("output/demo"),
    seed: Annotated[int, typer.Option("--seed", help=_("Random seed (same seed, same world)."))] = 1,
    as_of: Annotated[
        str, typer.Option("--as-of", help=_("Reference date of the generated world."))
    ] = "2026-03-01",
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing demo folder."))] = False,
    rules: RulesOpt = None,
    tidy: Annotated[
        bool,
        typer.Option("--tidy", help=_("Tidy files only (no title rows, extra sheets, footers, .xls/.ods).")),
    ] = False,
):
    if people < MIN_DEMO_PEOPLE:
        # fewer people leave some street or some department's file without rows: not a demo
        raise KuomianError(
            _(
                "--people {people}: the demo needs at least {minimum} people so that every street and "
                "every department's file has rows. Give --people {minimum} or more."
            ).format(people=people, minimum=MIN_DEMO_PEOPLE)
        )
    use_rules(rules)
    import shutil

    from .commands.progress import run_progress
    from .commands.run import refresh as run_refresh
    from .core.fileio import check_output_target
    from .synth import ShapeConfig, generate_with_later_enrolment

    out = Path(out)
    if os.path.lexists(out):
        if not force:
            raise KuomianError(
                _("{folder} already exists. Add --force to replace it, or choose another --out.").format(
                    folder=out
                )
            )
        # only a demo folder kuomian made (its registry/manifest.json) is removed, never a link's target
        shutil.rmtree(check_output_target(out, force=True, manifest="registry/manifest.json", kind="demo"))
    d = _as_of(as_of)
    progress(
        _("generating {people} people (seed {seed}) into {folder}").format(
            people=people, seed=seed, folder=out / "sources"
        )
    )
    summary, later = generate_with_later_enrolment(
        out, people=people, seed=seed, as_of=d, shapes=None if tidy else ShapeConfig.real()
    )
    res = run_refresh(out / "sources", out / "registry", as_of=d, progress=progress)
    _print_refresh_summary(res)
    say(
        _("  extracts: {sources}   ground truth: {truth}").format(
            sources=out / "sources", truth=out / "truth"
        )
    )
    say(
        _("  open {report} in a browser; hand-offs in {handoffs}").format(
            report=out / "registry" / "report.html", handoffs=out / "registry" / "handoff"
        )
    )
    _demo_survey(out, d, seed)
    later_as_of = date.fromisoformat(summary["later_as_of"])
    progress(_("the bulletin: the enrolment extract of {date} against the registry").format(date=later_as_of))
    pr = run_progress(out / "registry", later, out / "bulletin", as_of=later_as_of, progress=progress)
    say(
        _(
            "bulletin {date}: registry {registry}, enrolled since listing {enrolled} "
            "(employee {employee}, resident {resident}, "
            "insured elsewhere as the survey reports {elsewhere}), "
            "switched to the employee scheme {switched}"
        ).format(
            date=later_as_of,
            registry=pr.registry,
            enrolled=pr.enrolled,
            employee=pr.by_scheme["employee"],
            resident=pr.by_scheme["resident"],
            elsewhere=pr.by_scheme["elsewhere"],
            switched=pr.switched,
        )
    )
    say(
        _("  open {bulletin}; the later extract is in {extract}").format(
            bulletin=out / "bulletin" / "bulletin.html", extract=out / "enrolment_later"
        )
    )


def _demo_survey(out: Path, as_of: date, seed: int) -> None:
    """The demo's survey: the first two streets' hand-offs filled in as workbooks (every kind of
    answer), imported; then a second visit to those not found, imported."""
    from .commands.survey import import_answers
    from .synth.survey import fill_handoff, second_visit

    folder = out / "survey"
    folder.mkdir(exist_ok=True)
    handoffs = sorted((out / "registry" / "handoff").glob("5301810*.csv"))[:2]
    first = [
        fill_handoff(h, folder / f"{h.stem}_已填.xlsx", as_of=as_of, seed=seed + i)
        for i, h in enumerate(handoffs)
    ]
    res = import_answers(first, out / "registry", progress=progress)
    again = [second_visit(f, folder / f.name.replace("_已填", "_第二次走访")) for f in first]
    res2 = import_answers(again, out / "registry", progress=progress)
    e = res2.effects
    say(
        _(
            "survey: {streets} streets' hand-offs filled in ({folder}); applied {applied} answers, "
            "then {again} of a second visit"
        ).format(streets=len(first), folder=folder, applied=len(res.applied), again=len(res2.applied))
    )
    say(_("  the answers acted: {effects}").format(effects=", ".join(f"{k} {v}" for k, v in e.items())))


@review_app.command(
    "import",
    help=_(
        "Store review decisions (是 links, 否 forbids) for the next refresh.\n\n"
        "Example: kuomian review import output/2026/review.xlsx --registry output/2026"
    ),
)
@friendly_errors
def review_import(
    file: Annotated[Path, typer.Argument(help=_("The review.xlsx with the 决定 column filled in."))],
    registry: Annotated[Path, typer.Option("--registry", help=_("The OUT_DIR the review.xlsx came from."))],
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.review import import_decisions

    res = import_decisions(file, registry)
    c = res["counts"]
    say(
        _("decisions: 是 {yes}, 否 {no}, 不确定 {unsure}, blank {blank}, rejected {rejected}").format(
            yes=c["是"], no=c["否"], unsure=c["不确定"], blank=c["blank"], rejected=c["rejected"]
        )
    )
    for p in res["problems"][:20]:
        say(_("  - {problem}").format(problem=p))
    say(
        _(
            "stored {stored} decisions in {registry}; a refresh with --previous {registry} "
            "(or --force into it) applies them"
        ).format(stored=res["stored"], registry=registry)
    )
    if c["rejected"]:  # like survey import: the good rows are stored, the exit code says not all were
        raise fail(
            _(
                "{rejected} rows rejected (the other decisions were stored): correct the rows listed "
                "above and import the file again"
            ).format(rejected=c["rejected"]),
            1,
        )


@survey_app.command(
    "import",
    help=_(
        "Store the door-to-door survey answers of filled-in hand-offs in OUT_DIR; the answers act.\n\n"
        "走访结果 已死亡 / 已迁出本市 take the person off the registry (excluded, with the survey as the reason); "
        "已在外地参保 makes them enrolled_elsewhere (counted as insured, self-reported); not found on two "
        "visits flags them for the bureau; this year's key targets (重点等级, rules/targets.yaml) are "
        "recomputed. A hand-off belongs to the registry that wrote it (its 实名库批次 column): a file of "
        "another registry is refused unless --any-registry; answers dated before the registry's as-of "
        "date are not applied.\n\n"
        "Rows are matched by 编号; answers are checked against rules/survey.yaml; blank cells are not "
        "answers. A file changes only the street its name names (a row for a person of another street "
        "is reported, not written); two rows for one person with different answers are reported and "
        "neither is applied. Importing the same file again changes nothing.\n\n"
        "Exit codes: 0 every row with answers was stored (or already there); 1 some rows were "
        "rejected, their 编号 was not found, of another street or in conflict (the good rows are stored "
        "all the same: correct the rows listed and import the file again), or a bad file or folder; 4 "
        "another run holds OUT_DIR.\n\n"
        "Example: kuomian survey import output/2026/handoff/530181001000_连然街道.csv --registry "
        "output/2026"
    ),
)
@friendly_errors
def survey_import(
    files: Annotated[
        list[Path],
        typer.Argument(
            help=_("Filled-in hand-offs (.csv as the refresh wrote it or as Excel saved it, or .xlsx).")
        ),
    ],
    registry: Annotated[Path, typer.Option("--registry", help=_("The OUT_DIR the hand-offs came from."))],
    any_street: Annotated[
        bool,
        typer.Option("--any-street", help=_("Apply rows for people of other streets too (not advised).")),
    ] = False,
    any_registry: Annotated[
        bool,
        typer.Option(
            "--any-registry",
            help=_(
                "Accept a hand-off written from another registry (another year's, another run's; not advised)."
            ),
        ),
    ] = False,
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.survey import import_answers

    res = import_answers(files, registry, any_street=any_street, any_registry=any_registry, progress=progress)
    say(
        _(
            "rows {rows}: applied {applied}, unchanged {unchanged}, rejected {rejected}, "
            "not found {not_found}, without answers {blank}, dated before the registry {too_early}"
        ).format(
            rows=res.rows,
            applied=len(res.applied),
            unchanged=res.unchanged,
            rejected=len(res.rejected),
            not_found=len(res.not_found),
            blank=res.blank,
            too_early=len(res.too_early),
        )
    )
    if res.effects:
        e = res.effects
        say(
            _(
                "in the registry now: {effects} (persons whose answers act: excluded by the survey, "
                "insured elsewhere, not found on two visits)"
            ).format(effects=", ".join(f"{k} {v}" for k, v in e.items()))
        )
    for f, their in res.other_registry:
        say(
            redact_ids(
                _("  {file}: written from registry {registry}, imported with --any-registry").format(
                    file=f, registry=their
                )
            )
        )
    if res.superseded:
        say(
            _("  kept the later visit: {rows} rows are dated before the answer already stored").format(
                rows=len(res.superseded)
            )
        )
    for f, row, on in res.too_early[:30]:
        say(
            redact_ids(
                _(
                    "  not applied {file} row {row}: 调查日期 {date} is before the registry's as-of date"
                ).format(file=f, row=row, date=on)
            )
        )
    for f, row, why in res.rejected[:30]:
        say(_("  rejected {file} row {row}: {why}").format(file=f, row=row, why=why))
    for f, row, key in res.not_found[:30]:
        say(
            _("  not found {file} row {row}: 编号 {key} is not in {persons}").format(
                file=f, row=row, key=key, persons=registry / "persons.parquet"
            )
        )
    for f, row, key in res.other_street[:30]:
        say(
            _(
                "  not written {file} row {row}: 编号 {key} lives in another street "
                "(add --any-street if this is right)"
            ).format(file=f, row=row, key=key)
        )
    for f, row, f2, row2 in res.conflicts[:30]:
        say(
            _(
                "  conflict {file} row {row} and {file2} row {row2}: one person, different answers; "
                "neither applied"
            ).format(file=f, row=row, file2=f2, row2=row2)
        )
    if res.files_written:
        say(
            _("wrote {files} files in {registry}: {persons} persons changed").format(
                files=len(res.files_written), registry=registry, persons=res.persons_changed
            )
        )
    else:
        say(_("unchanged: {registry} already holds these answers").format(registry=registry))
    if res.rejected or res.not_found or res.other_street or res.conflicts or res.too_early:
        raise fail(
            _(
                "{rejected} rows rejected, {not_found} not found, {other_street} of "
                "another street, {conflicts} in conflict, {too_early} dated before the registry's "
                "as-of date (the other rows were stored): correct the rows listed above and import the file again"
            ).format(
                rejected=len(res.rejected),
                not_found=len(res.not_found),
                other_street=len(res.other_street),
                conflicts=len(res.conflicts),
                too_early=len(res.too_early),
            ),
            1,
        )


@app.command(
    help=_(
        "Remove what killed kuomian runs left behind (private staging folders holding IDs).\n\n"
        "Every later kuomian command does this too; this does it on demand. Only folders of dead "
        "runs, of this user, are removed.\n\n"
        "Example: kuomian clean"
    ),
)
@friendly_errors
def clean():
    from .core.fileio import sweep_dead_runs

    removed = sweep_dead_runs(progress)
    say(_("removed {folders} leftover folders of interrupted runs").format(folders=len(removed)))


@app.command(
    help=_(
        "数据比对: match any list against a published run and write it back with 匹配结果, 参保状态, 重点群体, 所属街道, "
        "是否在实名库.\n\n"
        "Example: kuomian check 民政低保名单.xlsx --registry output/2026 --out 低保名单_比对结果.xlsx"
    ),
)
@friendly_errors
def check(
    list_file: Annotated[
        Path, typer.Argument(help=_("Any list (.xlsx/.csv) with 姓名 and usually 身份证号 columns."))
    ],
    registry: Annotated[Path, typer.Option("--registry", help=_("A published OUT_DIR to compare against."))],
    out: Annotated[
        Path, typer.Option("--out", help=_("The result: the same list plus five columns (.xlsx or .csv)."))
    ],
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing result file."))] = False,
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.check import check_list

    res = check_list(list_file, registry, out, force=force, progress=progress)
    if res.skipped:
        say(
            _("checked {rows} rows of {file} ({skipped} empty/total rows skipped)").format(
                rows=res.rows, file=res.list_file, skipped=res.skipped
            )
        )
    else:
        say(_("checked {rows} rows of {file}").format(rows=res.rows, file=res.list_file))
    for label, n in res.results.most_common():
        say(_("  {label}: {rows}").format(label=label, rows=n))
    say(_("  in the registry (是否在实名库 = 是): {rows}").format(rows=res.in_registry))
    say(_("wrote {file}").format(file=res.out))


@app.command(
    "progress",
    help=_(
        "The quarterly bulletin (进度通报): who of the registry has enrolled since listing, per street "
        "and community, against the tasks.\n\n"
        "Matches the extract's rows to the registry's people with the refresh's cascade and writes "
        "progress.parquet, bulletin.xlsx, bulletin.html and reconciliation.csv into --out; the "
        "bulletin's figures are kept in REGISTRY_DIR/progress_history/ so that the December "
        "assessment shows every bulletin of the year side by side. Tasks: rules/tasks.yaml (default: "
        "each street's gap to the target).\n\n"
        "Example: kuomian progress output/2026 参保信息_2026Q2.xlsx --as-of 2026-06-30 --out "
        "output/2026_Q2"
    ),
)
@friendly_errors
def progress_cmd(
    registry: Annotated[Path, typer.Argument(help=_("The published registry (OUT_DIR of kuomian refresh)."))],
    files: Annotated[
        list[Path], typer.Argument(help=_("The new enrolment extract(s) (参保 files: .xlsx, .xls or .csv)."))
    ],
    out: Annotated[Path, typer.Option("--out", help=_("Folder for the bulletin (published atomically)."))],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help=_("Date of the extract YYYY-MM-DD (default: today)."))
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing --out folder."))] = False,
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.progress import OUTCOMES, run_progress

    res = run_progress(registry, files, out, as_of=_as_of(as_of), force=force, progress=progress)
    outcomes = ", ".join(f"{OUTCOMES[k]} {res.outcomes.get(k, 0)}" for k in OUTCOMES)
    if res.balanced:
        line = _("{rows} rows of {files} files: {outcomes}")
    else:
        line = _("{rows} rows of {files} files: {outcomes} — NOT BALANCED, see reconciliation.csv")
    say(line.format(rows=res.rows_read, files=len(res.files), outcomes=outcomes))
    say(
        _(
            "registry {registry}: enrolled since listing {enrolled} (employee {employee}, "
            "resident {resident}, insured elsewhere as the survey reports {elsewhere}), "
            "switched to the employee scheme {switched}, surveyed {surveyed}"
        ).format(
            registry=res.registry,
            enrolled=res.enrolled,
            employee=res.by_scheme["employee"],
            resident=res.by_scheme["resident"],
            elsewhere=res.by_scheme["elsewhere"],
            switched=res.switched,
            surveyed=res.surveyed,
        )
    )
    dates = ", ".join(d.isoformat() for d in res.bulletins)
    if res.previous:
        say(
            _("previous bulletin: {previous}; bulletins this year: {dates}").format(
                previous=res.previous, dates=dates
            )
        )
    else:
        say(_("previous bulletin: none this year; bulletins this year: {dates}").format(dates=dates))
    for note in res.notes:
        say(_("  note: {note}").format(note=note))
    say(_("wrote {folder}: open bulletin.html").format(folder=res.out_dir))


@app.command(
    help=_(
        "What changed between two runs: newly enrolled, newly listed, left, changed group or street; "
        "per street; indicators.\n\n"
        "Example: kuomian compare output/2025 output/2026 --out output/diff_2025_2026"
    ),
)
@friendly_errors
def compare(
    old: Annotated[Path, typer.Argument(help=_("The earlier OUT_DIR."))],
    new: Annotated[Path, typer.Argument(help=_("The later OUT_DIR."))],
    out: Annotated[Path, typer.Option("--out", help=_("Folder for the differences (published atomically)."))],
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing DIFF_DIR."))] = False,
    rules: RulesOpt = None,
):
    use_rules(rules)
    from .commands.compare import LISTS, compare_runs

    res = compare_runs(old, new, out, force=force, progress=progress)
    say(
        _("registry {old} ({old_as_of}) → {new} ({new_as_of})").format(
            old=res.registry_old,
            old_as_of=res.as_of_old or old,
            new=res.registry_new,
            new_as_of=res.as_of_new or new,
        )
    )
    for k, label in LISTS.items():
        say(_("  {label} {list}: {persons}").format(label=label, list=k, persons=res.counts.get(k, 0)))
    for note in res.notes:
        say(_("  note: {note}").format(note=note))
    say(_("wrote {folder}: {files}").format(folder=res.out_dir, files=", ".join(res.files)))


@rules_app.command(
    "export",
    help=_(
        "Write the installed default policy (rules/ and sources/) into FOLDER for the bureau to edit.\n\n"
        "Then use it with --rules FOLDER on every command (or set KUOMIAN_RULES=FOLDER).\n\n"
        "Example: kuomian rules export 安宁政策 && kuomian refresh extracts/2026 --out output/2026 "
        "--rules 安宁政策"
    ),
)
@friendly_errors
def rules_export(
    folder: Annotated[Path, typer.Argument(help=_("Folder to write rules/ and sources/ into."))],
    force: Annotated[
        bool, typer.Option("--force", help=_("Replace rules/ and sources/ already there."))
    ] = False,
):
    from .core.policy import export_defaults

    written = export_defaults(folder, force=force)
    say(
        _("wrote {files} files into {rules} and {sources}").format(
            files=written, rules=folder / "rules", sources=folder / "sources"
        )
    )
    say(
        _(
            "  edit them, then: kuomian rules check --rules {folder}; kuomian refresh … --rules {folder}"
        ).format(folder=folder)
    )


@rules_app.command(
    "check",
    help=_(
        "Check a policy folder (every key, type and reference) and say where it differs from the "
        "defaults.\n\n"
        "Example: kuomian rules check --rules 安宁政策"
    ),
)
@friendly_errors
def rules_check(rules: RulesOpt = None):
    from .core.policy import load_policy

    use_rules(rules)
    p = load_policy()
    say(_("policy {folder}: {files} files, all checked").format(folder=p.root, files=len(p.files)))
    from .core.policy import differences

    diff = differences(p)
    if not diff:
        say(_("  same as the installed defaults"))
    for f, keys in diff.items():
        if keys:
            say(_("  differs from the defaults: {file}: {keys}").format(file=f, keys=", ".join(keys)))
        else:
            say(_("  differs from the defaults: {file}").format(file=f))


def main() -> None:
    """Console entry point."""
    from .core.errors import install_signal_handlers

    install_signal_handlers()
    app()


if __name__ == "__main__":
    main()
