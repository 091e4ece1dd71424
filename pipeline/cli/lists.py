"""Lists against the registry: ``kuomian check``, ``kuomian progress``, ``kuomian compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.i18n import _
from .base import (
    RulesOpt,
    _as_of,
    app,
    friendly_errors,
    progress,
    say,
    use_rules,
)


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
    from ..commands.check import check_list

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
    from ..commands.progress import OUTCOMES, run_progress

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
    from ..commands.compare import LISTS, compare_runs

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
