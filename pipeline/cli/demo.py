"""``kuomian demo`` (a synthetic Anning run end to end) and ``kuomian clean``."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import KuomianError
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
from .refresh import _print_refresh_summary

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

    from ..commands.progress import run_progress
    from ..commands.run import refresh as run_refresh
    from ..core.fileio import check_output_target
    from ..synth import ShapeConfig, generate_with_later_enrolment

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
    from ..commands.survey import import_answers
    from ..synth.survey import fill_handoff, second_visit

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
    from ..core.fileio import sweep_dead_runs

    removed = sweep_dead_runs(progress)
    say(_("removed {folders} leftover folders of interrupted runs").format(folders=len(removed)))
