"""``kuomian refresh`` (the annual run) and ``kuomian validate`` (what a refresh would read)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.i18n import _
from ..core.ids import redact_ids
from .base import (
    RulesOpt,
    SourceOpt,
    _as_of,
    _run_options,
    app,
    friendly_errors,
    one_line,
    progress,
    say,
    use_rules,
)


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
    from ..commands.run import refresh as run_refresh
    from ..readers import parse_overrides

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
    from ..commands.guards import check_guards
    from ..commands.run import validate as run_validate
    from ..readers import parse_overrides

    lr, sr = run_validate(sources_dir, overrides=parse_overrides(source or []), progress=progress)
    guards = check_guards(lr, sr, previous=previous, stop=False, progress=progress)
    for f in lr.files:
        _say_file(f, sr, guards)
    _say_problems(sr)
    if lr.sources_missing:
        say(_("optional sources absent: {sources}").format(sources=", ".join(lr.sources_missing)))
    from ..commands.run import damage_check

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


def _say_file(f, sr, guards) -> None:
    """``validate``'s lines for one file: its source, sheets, fill rates, quarantine, duplicates."""
    if f.how == "ignored":
        say(_("{file}: ignored — {problem}").format(file=f.name, problem=f.problem))
        return
    if f.how in ("not read", "copy"):  # a subfolder, not a regular file, a copy of another file
        say(_("{file}: not read — {problem}").format(file=f.name, problem=f.problem))
        return
    if f.source is None:
        say(_("{file}: not recognised (its name and headers fit no source) — ignored").format(file=f.name))
        return
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
        say(_("    extra columns kept but not used: {columns}").format(columns=", ".join(f.extra_columns)))


def _say_problems(sr) -> None:
    """``validate``'s first problems: unknown values, unread values, damaged ID numbers."""
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
