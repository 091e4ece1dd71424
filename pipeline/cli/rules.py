"""The policy folder: ``kuomian rules export`` and ``kuomian rules check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.i18n import _
from .base import (
    RulesOpt,
    friendly_errors,
    rules_app,
    say,
    use_rules,
)


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
    from ..core.policy import export_defaults

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
    from ..core.policy import load_policy

    use_rules(rules)
    p = load_policy()
    say(_("policy {folder}: {files} files, all checked").format(folder=p.root, files=len(p.files)))
    from ..core.policy import differences

    diff = differences(p)
    if not diff:
        say(_("  same as the installed defaults"))
    for f, keys in diff.items():
        if keys:
            say(_("  differs from the defaults: {file}: {keys}").format(file=f, keys=", ".join(keys)))
        else:
            say(_("  differs from the defaults: {file}").format(file=f))
