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
from .core.ids import redact_ids

app = typer.Typer(
    name="kuomian",
    help="扩面 kuomian: build Anning's real-name registry of pension-insurance expansion targets.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(
    help="The policy (rules/ and sources/): export the defaults for editing, check a folder.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
review_app = typer.Typer(help="The review queue (review.xlsx).", no_args_is_help=True, rich_markup_mode=None)
survey_app = typer.Typer(help="Door-to-door survey answers.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(review_app, name="review")
app.add_typer(survey_app, name="survey")
app.add_typer(rules_app, name="rules")

STATE = {"debug": False, "quiet": False}


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {redact_ids(message)}", err=True)
    return typer.Exit(code)


def say(message: str) -> None:
    """One line on stdout. Any ID-like number in it (a file or folder named by an ID) is masked."""
    typer.echo(redact_ids(message))


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
        except KeyboardInterrupt:
            raise fail("interrupted: nothing was published", 130) from None
        except OSError as e:
            if STATE["debug"]:
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise fail(
                f"{e.strerror or e}{where}. Nothing was published; free the space or fix the permission and run again.",
                1,
            ) from None
        except Exception as e:  # the last line of defence: never a traceback, never an ID
            if STATE["debug"]:
                raise
            raise fail(
                f"unexpected {type(e).__name__}: {str(e)[:300]}. Run again with --debug and report it.", 70
            ) from None
        except BaseException as e:  # a Rust panic (pyo3 PanicException) is not an Exception
            if isinstance(e, (SystemExit, GeneratorExit)) or STATE["debug"]:
                raise
            raise fail(f"unexpected {type(e).__name__}. Run again with --debug and report it.", 70) from None

    return wrapper


def progress(msg: str) -> None:
    if not STATE["quiet"]:
        typer.echo(f"[{datetime.now():%H:%M:%S}] {redact_ids(msg)}", err=True)


def _as_of(value: str | None) -> date:
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise KuomianError(f"--as-of {value!r}: write the date as YYYY-MM-DD, e.g. 2026-03-01.") from None


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
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
        help="The bureau's policy folder (rules/ and sources/, made by `kuomian rules export DIR`); "
        "default: the installed rules.",
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
        "--source", help="Say which source a file is: NAME=PATH (repeatable), e.g. --source tax=纳税.xlsx"
    ),
]


@app.command()
@friendly_errors
def refresh(
    sources_dir: Annotated[Path, typer.Argument(help="Folder holding the departments' extracts.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (published atomically).")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reference date YYYY-MM-DD (default: today).")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="Last run's OUT_DIR: carry answers forward.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT_DIR.")] = False,
    source: SourceOpt = None,
    skip_bad_files: Annotated[
        bool,
        typer.Option(
            "--skip-bad-files", help="Skip unreadable files of optional sources (listed in the manifest)."
        ),
    ] = False,
    accept_damaged_ids: Annotated[
        bool,
        typer.Option(
            "--accept-damaged-ids",
            help="Publish even when many rows have no usable ID (e.g. an ID column stored as numbers); "
            "the summary and the report then warn in red.",
        ),
    ] = False,
    accept_drift: Annotated[
        bool,
        typer.Option(
            "--accept-drift",
            help="Publish even when what was read does not look like what should have been read (a column "
            "a source normally fills mostly empty; with --previous, a street's rows or fill rates far from "
            "last year's); the summary and the report then warn in red.",
        ),
    ] = False,
    accept_missing_streets: Annotated[
        bool,
        typer.Option(
            "--accept-missing-streets",
            help="Publish even when a street has no household rows; the summary and the report then warn in red.",
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", help="DuckDB threads.")] = None,
    memory_limit: Annotated[
        str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB.")
    ] = None,
    on_disk: Annotated[
        bool | None,
        typer.Option(
            "--on-disk/--in-memory",
            help="Keep DuckDB's tables in a file in the run's private temp folder (default: "
            "only when the extracts exceed 1 GiB, e.g. a whole prefecture).",
        ),
    ] = None,
    rules: RulesOpt = None,
):
    """The annual refresh: load, match, classify and publish the registry.

    Example: kuomian refresh extracts/2026 --out output/2026 --as-of 2026-03-01 --previous output/2025
    """
    use_rules(rules)
    from .commands.run import refresh as run_refresh
    from .readers import parse_overrides

    res = run_refresh(
        sources_dir, out, as_of=_as_of(as_of), previous=previous, force=force,
        overrides=parse_overrides(source or []), skip_bad_files=skip_bad_files,
        accept_damaged_ids=accept_damaged_ids, accept_drift=accept_drift,
        accept_missing_streets=accept_missing_streets, threads=threads, memory_limit=memory_limit, on_disk=on_disk, progress=progress,
    )  # fmt: skip
    _print_refresh_summary(res)


def _print_refresh_summary(res) -> None:
    c = res.classify
    k = res.link
    say(f"published {res.out_dir}")
    say(
        f"  persons {k.persons} (household {k.persons_local}), registry {c.registry}, review rows {k.review_rows}"
    )
    say("  registry by group: " + ", ".join(f"{g}: {n}" for g, n in sorted(c.groups.items())))
    say("  stage seconds: " + ", ".join(f"{s} {t:.1f}" for s, t in res.timings.items()))
    for w in res.warnings:
        typer.secho(redact_ids(f"  WARNING: {w}"), fg="red")


@app.command()
@friendly_errors
def validate(
    sources_dir: Annotated[Path, typer.Argument(help="Folder holding the extracts.")],
    source: SourceOpt = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous", help="Last run's OUT_DIR: compare rows and fill rates per street with it."
        ),
    ] = None,
    rules: RulesOpt = None,
):
    """Load and check the extracts only: per file, its source, rows read, rows quarantined by reason,
    the fill rate of the columns the guards watch; then every finding of the guards.

    Example: kuomian validate extracts/2026 --previous output/2025
    """
    use_rules(rules)
    from .commands.guards import check_guards
    from .commands.run import validate as run_validate
    from .readers import parse_overrides

    lr, sr = run_validate(sources_dir, overrides=parse_overrides(source or []), progress=progress)
    guards = check_guards(lr, sr, previous=previous, stop=False, progress=progress)
    for f in lr.files:
        if f.how == "ignored":
            say(f"{f.name}: ignored — {f.problem}")
            continue
        if f.how in ("not read", "copy"):  # a subfolder, not a regular file, a copy of another file
            say(f"{f.name}: not read — {f.problem}")
            continue
        if f.source is None:
            say(f"{f.name}: not recognised (its name and headers fit no source) — ignored")
            continue
        say(
            f"{f.name}: {f.source} (by {f.how}), {f.rows} rows, {f.format}{' ' + f.encoding if f.encoding else ''}"
        )
        for s in f.sheets:
            if s.skipped:
                say(f"    sheet {s.name!r}: skipped — {s.skipped}")
            elif s.name:
                say(f"    sheet {s.name!r}: {s.rows} rows (header in row {s.header_row})")
            fill = guards.file_fill.get((f.source, f.name, s.name))
            if fill and s.skipped is None:
                say(
                    f"    {'sheet ' + repr(s.name) + ' ' if s.name else ''}filled: "
                    + ", ".join(f"{fld} {rate:.0%}" for fld, (_k, _n, rate) in fill.items())
                )
        q = {r: n for (s, fl, r), n in sr.quarantined.items() if s == f.source and fl == f.name}
        d = sr.duplicates.get((f.source, f.name), 0)
        if q:
            say("    quarantined: " + ", ".join(f"{r} {n}" for r, n in sorted(q.items())))
        if d:
            say(f"    exact duplicates: {d}")
        if f.extra_columns:
            say("    extra columns kept but not used: " + ", ".join(f.extra_columns))
    problems = []
    for (s, fld, v), n in sr.unknown_values.most_common(10):
        problems.append(f"{s}.{fld}: unknown value {v!r} ({n} rows)")
    for (s, fld), n in sr.unparsed.most_common(10):
        problems.append(f"{s}.{fld}: {n} values could not be read")
    for (s, kind), n in sorted(sr.id_kinds.items()):
        if kind in ("bad_check", "excel"):
            problems.append(
                f"{s}: {n} ID numbers {'fail their check digit' if kind == 'bad_check' else 'damaged by Excel'}"
            )
    if problems:
        say("first problems:")
        for p in problems[:12]:
            say(f"  - {p}")
    if lr.sources_missing:
        say("optional sources absent: " + ", ".join(lr.sources_missing))
    from .commands.run import damage_check

    for w in damage_check(sr, accept=True):
        typer.secho(
            redact_ids(f"WARNING: {w.removeprefix('ID damage accepted (--accept-damaged-ids): ')}"), fg="red"
        )
    for w in guards.warnings:
        typer.secho(redact_ids(f"WARNING: {w}"), fg="red")
    if previous is not None and guards.previous_note:
        say(f"guards against the previous run: not applicable — {guards.previous_note}")
    total = sum(sr.rows.values())
    say(
        f"{len([f for f in lr.files if f.source])} files, {total} rows, {sum(sr.quarantined.values())} quarantined"
    )


@app.command()
@friendly_errors
def demo(
    people: Annotated[int, typer.Option("--people", help="Size of the generated Anning.")] = 20000,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the generated extracts and the outputs.")
    ] = Path("output/demo"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same world).")] = 1,
    as_of: Annotated[
        str, typer.Option("--as-of", help="Reference date of the generated world.")
    ] = "2026-03-01",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing demo folder.")] = False,
    rules: RulesOpt = None,
    tidy: Annotated[
        bool,
        typer.Option("--tidy", help="Tidy files only (no title rows, extra sheets, footers, .xls/.ods)."),
    ] = False,
):
    """Generate a realistic synthetic Anning (with every kind of dirt and, unless --tidy, files shaped
    as departments send them), run the refresh on it, then the bulletin (kuomian progress) with the
    bureau's enrolment extract of a year later.

    Example: kuomian demo --people 20000 --out output/demo
    """
    use_rules(rules)
    import shutil

    from .commands.progress import run_progress
    from .commands.run import refresh as run_refresh
    from .core.fileio import check_output_target
    from .synth import ShapeConfig, generate_with_later_enrolment

    out = Path(out)
    if os.path.lexists(out):
        if not force:
            raise KuomianError(f"{out} already exists. Add --force to replace it, or choose another --out.")
        # only a demo folder kuomian made (its registry/manifest.json) is removed, never a link's target
        shutil.rmtree(check_output_target(out, force=True, manifest="registry/manifest.json", kind="demo"))
    d = _as_of(as_of)
    progress(f"generating {people} people (seed {seed}) into {out / 'sources'}")
    summary, later = generate_with_later_enrolment(
        out, people=people, seed=seed, as_of=d, shapes=None if tidy else ShapeConfig.real()
    )
    res = run_refresh(out / "sources", out / "registry", as_of=d, progress=progress)
    _print_refresh_summary(res)
    say(f"  extracts: {out / 'sources'}   ground truth: {out / 'truth'}")
    say(
        f"  open {out / 'registry' / 'report.html'} in a browser; hand-offs in {out / 'registry' / 'handoff'}"
    )
    later_as_of = date.fromisoformat(summary["later_as_of"])
    progress(f"the bulletin: the enrolment extract of {later_as_of} against the registry")
    pr = run_progress(out / "registry", later, out / "bulletin", as_of=later_as_of, progress=progress)
    say(
        f"bulletin {later_as_of}: registry {pr.registry}, enrolled since listing {pr.enrolled} "
        f"(employee {pr.by_scheme['employee']}, resident {pr.by_scheme['resident']}), "
        f"switched to the employee scheme {pr.switched}"
    )
    say(f"  open {out / 'bulletin' / 'bulletin.html'}; the later extract is in {out / 'enrolment_later'}")


@review_app.command("import")
@friendly_errors
def review_import(
    file: Annotated[Path, typer.Argument(help="The review.xlsx with the 决定 column filled in.")],
    registry: Annotated[Path, typer.Option("--registry", help="The OUT_DIR the review.xlsx came from.")],
    rules: RulesOpt = None,
):
    """Store review decisions (是 links, 否 forbids) for the next refresh.

    Example: kuomian review import output/2026/review.xlsx --registry output/2026
    """
    use_rules(rules)
    from .commands.review import import_decisions

    res = import_decisions(file, registry)
    c = res["counts"]
    say(
        f"decisions: 是 {c['是']}, 否 {c['否']}, 不确定 {c['不确定']}, blank {c['blank']}, rejected {c['rejected']}"
    )
    for p in res["problems"][:20]:
        say(f"  - {p}")
    say(
        f"stored {res['stored']} decisions in {registry}; a refresh with --previous {registry} "
        "(or --force into it) applies them"
    )


@survey_app.command("import")
@friendly_errors
def survey_import(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Filled-in hand-offs (.csv as the refresh wrote it or as Excel saved it, or .xlsx)."
        ),
    ],
    registry: Annotated[Path, typer.Option("--registry", help="The OUT_DIR the hand-offs came from.")],
    any_street: Annotated[
        bool, typer.Option("--any-street", help="Apply rows for people of other streets too (not advised).")
    ] = False,
    rules: RulesOpt = None,
):
    """Store the door-to-door survey answers of filled-in hand-offs in OUT_DIR.

    Rows are matched by 编号; answers are checked against rules/survey.yaml; blank cells are not answers.
    A file changes only the street its name names (a row for a person of another street is reported,
    not written); two rows for one person with different answers are reported and neither is applied.
    Importing the same file again changes nothing.

    Exit codes: 0 every row with answers was stored (or already there); 1 some rows were rejected,
    their 编号 was not found, of another street or in conflict (the good rows are stored all the same:
    correct the rows listed and import the file again), or a bad file or folder; 4 another run holds
    OUT_DIR.

    Example: kuomian survey import output/2026/handoff/530181001000_连然街道.csv --registry output/2026
    """
    use_rules(rules)
    from .commands.survey import import_answers

    res = import_answers(files, registry, any_street=any_street, progress=progress)
    say(
        f"rows {res.rows}: applied {len(res.applied)}, unchanged {res.unchanged}, rejected {len(res.rejected)}, "
        f"not found {len(res.not_found)}, without answers {res.blank}"
    )
    for f, row, why in res.rejected[:30]:
        say(redact_ids(f"  rejected {f} row {row}: {why}"))
    for f, row, key in res.not_found[:30]:
        say(redact_ids(f"  not found {f} row {row}: 编号 {key} is not in {registry / 'persons.parquet'}"))
    for f, row, key in res.other_street[:30]:
        say(
            f"  not written {f} row {row}: 编号 {key} lives in another street (add --any-street if this is right)"
        )
    for f, row, f2, row2 in res.conflicts[:30]:
        say(f"  conflict {f} row {row} and {f2} row {row2}: one person, different answers; neither applied")
    if res.files_written:
        say(f"wrote {len(res.files_written)} files in {registry}: {res.persons_changed} persons changed")
    else:
        say(f"unchanged: {registry} already holds these answers")
    if res.rejected or res.not_found or res.other_street or res.conflicts:
        raise fail(
            f"{len(res.rejected)} rows rejected, {len(res.not_found)} not found, {len(res.other_street)} of "
            f"another street, {len(res.conflicts)} in conflict (the other rows were stored): "
            "correct the rows listed above and import the file again",
            1,
        )


@app.command()
@friendly_errors
def clean():
    """Remove what killed kuomian runs left behind (private staging folders holding IDs).

    Every later kuomian command does this too; this does it on demand. Only folders of dead runs,
    of this user, are removed.

    Example: kuomian clean
    """
    from .core.fileio import sweep_dead_runs

    removed = sweep_dead_runs(progress)
    say(f"removed {len(removed)} leftover folders of interrupted runs")


@app.command()
@friendly_errors
def check(
    list_file: Annotated[
        Path, typer.Argument(help="Any list (.xlsx/.csv) with 姓名 and usually 身份证号 columns.")
    ],
    registry: Annotated[Path, typer.Option("--registry", help="A published OUT_DIR to compare against.")],
    out: Annotated[
        Path, typer.Option("--out", help="The result: the same list plus five columns (.xlsx or .csv).")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing result file.")] = False,
    rules: RulesOpt = None,
):
    """数据比对: match any list against a published run and write it back with 匹配结果, 参保状态, 重点群体, 所属街道, 是否在实名库.

    Example: kuomian check 民政低保名单.xlsx --registry output/2026 --out 低保名单_比对结果.xlsx
    """
    use_rules(rules)
    from .commands.check import check_list

    res = check_list(list_file, registry, out, force=force, progress=progress)
    say(
        f"checked {res.rows} rows of {res.list_file}"
        + (f" ({res.skipped} empty/total rows skipped)" if res.skipped else "")
    )
    for label, n in res.results.most_common():
        say(f"  {label}: {n}")
    say(f"  in the registry (是否在实名库 = 是): {res.in_registry}")
    say(f"wrote {res.out}")


@app.command("progress")
@friendly_errors
def progress_cmd(
    registry: Annotated[Path, typer.Argument(help="The published registry (OUT_DIR of kuomian refresh).")],
    files: Annotated[
        list[Path], typer.Argument(help="The new enrolment extract(s) (参保 files: .xlsx, .xls or .csv).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the bulletin (published atomically).")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date of the extract YYYY-MM-DD (default: today).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out folder.")] = False,
):
    """The quarterly bulletin (进度通报): who of the registry has enrolled since listing, per street and community, against the tasks.

    Matches the extract's rows to the registry's people with the refresh's cascade and writes
    progress.parquet, bulletin.xlsx, bulletin.html and reconciliation.csv into --out; the
    bulletin's figures are kept in REGISTRY_DIR/progress_history/ so that the December
    assessment shows every bulletin of the year side by side. Tasks: rules/tasks.yaml
    (default: each street's gap to the target).

    Example: kuomian progress output/2026 参保信息_2026Q2.xlsx --as-of 2026-06-30 --out output/2026_Q2
    """
    from .commands.progress import OUTCOMES, run_progress

    res = run_progress(registry, files, out, as_of=_as_of(as_of), force=force, progress=progress)
    say(
        f"{res.rows_read} rows of {len(res.files)} files: "
        + ", ".join(f"{OUTCOMES[k]} {res.outcomes.get(k, 0)}" for k in OUTCOMES)
        + ("" if res.balanced else " — NOT BALANCED, see reconciliation.csv")
    )
    say(
        f"registry {res.registry}: enrolled since listing {res.enrolled} (employee {res.by_scheme['employee']}, "
        f"resident {res.by_scheme['resident']}), switched to the employee scheme {res.switched}, surveyed {res.surveyed}"
    )
    say(
        f"previous bulletin: {res.previous or 'none this year'}; bulletins this year: "
        + ", ".join(d.isoformat() for d in res.bulletins)
    )
    for note in res.notes:
        say(f"  note: {note}")
    say(f"wrote {res.out_dir}: open bulletin.html")


@app.command()
@friendly_errors
def compare(
    old: Annotated[Path, typer.Argument(help="The earlier OUT_DIR.")],
    new: Annotated[Path, typer.Argument(help="The later OUT_DIR.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the differences (published atomically).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing DIFF_DIR.")] = False,
    rules: RulesOpt = None,
):
    """What changed between two runs: newly enrolled, newly listed, left, changed group or street; per street; indicators.

    Example: kuomian compare output/2025 output/2026 --out output/diff_2025_2026
    """
    use_rules(rules)
    from .commands.compare import LISTS, compare_runs

    res = compare_runs(old, new, out, force=force, progress=progress)
    say(f"registry {res.registry_old} ({res.as_of_old or old}) → {res.registry_new} ({res.as_of_new or new})")
    for k, label in LISTS.items():
        say(f"  {label} {k}: {res.counts.get(k, 0)}")
    for note in res.notes:
        say(f"  note: {note}")
    say(f"wrote {res.out_dir}: {', '.join(res.files)}")


@rules_app.command("export")
@friendly_errors
def rules_export(
    folder: Annotated[Path, typer.Argument(help="Folder to write rules/ and sources/ into.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace rules/ and sources/ already there.")
    ] = False,
):
    """Write the installed default policy (rules/ and sources/) into FOLDER for the bureau to edit.

    Then use it with --rules FOLDER on every command (or set KUOMIAN_RULES=FOLDER).

    Example: kuomian rules export 安宁政策 && kuomian refresh extracts/2026 --out output/2026 --rules 安宁政策
    """
    from .core.policy import export_defaults

    written = export_defaults(folder, force=force)
    say(f"wrote {written} files into {folder / 'rules'} and {folder / 'sources'}")
    say(f"  edit them, then: kuomian rules check --rules {folder}; kuomian refresh … --rules {folder}")


@rules_app.command("check")
@friendly_errors
def rules_check(rules: RulesOpt = None):
    """Check a policy folder (every key, type and reference) and say where it differs from the defaults.

    Example: kuomian rules check --rules 安宁政策
    """
    from .core.policy import load_policy

    use_rules(rules)
    p = load_policy()
    say(f"policy {p.root}: {len(p.files)} files, all checked")
    from .core.policy import differences

    diff = differences(p)
    if not diff:
        say("  same as the installed defaults")
    for f, keys in diff.items():
        say(f"  differs from the defaults: {f}" + (f": {', '.join(keys)}" if keys else ""))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
