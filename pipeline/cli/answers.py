"""What comes back from the streets: ``kuomian review import`` and ``kuomian survey import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.i18n import _
from ..core.ids import redact_ids
from .base import (
    RulesOpt,
    fail,
    friendly_errors,
    progress,
    review_app,
    say,
    survey_app,
    use_rules,
)


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
    from ..commands.review import import_decisions

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
    from ..commands.survey import import_answers

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
    _say_survey_rows(res, registry)
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


def _say_survey_rows(res, registry: Path) -> None:
    """``survey import``'s rows one by one (the first 30 of each kind): another registry's files,
    later visits kept, and the rows not applied, rejected, not found, of another street, in conflict."""
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
