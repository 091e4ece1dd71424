"""The refresh: load → standardise → link → classify → publish, timed, atomic.

The CLI calls :func:`refresh` and :func:`validate`; tests, the demo, the
evaluation and the benchmark call them too. The stages are the list :data:`STAGES`, run in
order by :func:`run_stages` on one :class:`Run`, with :class:`StageHook` s around each: the
timer always, the bench's probes and the tests' faults when they install them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from .. import __version__
from ..core.config import home
from ..core.db import connect, memory_at_most
from ..core.decisions import stored_decisions
from ..core.errors import KuomianError
from ..core.fileio import check_output_target, published_persons, publishing
from ..core.i18n import _
from ..core.ids import redact_ids
from ..core.policy import differences as policy_differences
from ..core.policy import fingerprint as policy_fingerprint
from ..core.policy import load_policy, policy
from ..core.privacy import key_path, load_key
from ..readers import discover
from ..stages.classify import ClassifyReport, classify
from ..stages.link import LinkReport, link
from ..stages.load import LoadReport, file_manifest, load
from ..stages.publish import PublishReport, publish
from ..stages.standardise import StandardiseReport, standardise
from .guards import GuardReport, check_guards, manifest_section
from .survey import keep_imported_answers


@dataclass
class RefreshResult:
    out_dir: Path
    load: LoadReport
    standardise: StandardiseReport
    link: LinkReport
    classify: ClassifyReport
    publish: PublishReport
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class StageHook:
    """Called around every stage of the refresh (see :data:`STAGES`); override what you need.

    The refresh always runs its :class:`Timer`; the bench adds probes (bench/probes.py) and the
    reliability tests add faults through :func:`install_hook` or ``refresh(hooks=…)``. ``after``
    is called only when the stage succeeded; an exception raised by a hook fails the run like
    one raised by the stage (nothing is published).
    """

    def before(self, stage: str, run: Run) -> None:
        pass

    def after(self, stage: str, run: Run) -> None:
        pass


class Timer(StageHook):
    """Wall seconds per stage, into ``run.timings`` (the manifest's ``stage_seconds``)."""

    def __init__(self) -> None:
        self._t0 = 0.0

    def before(self, stage: str, run: Run) -> None:
        self._t0 = time.perf_counter()

    def after(self, stage: str, run: Run) -> None:
        run.timings[stage] = round(time.perf_counter() - self._t0, 3)


# Hooks added to every refresh of this process, after the timer (the bench's probes, the tests' faults).
_installed: list[StageHook] = []


def install_hook(hook: StageHook) -> None:
    """Add ``hook`` to every later refresh of this process (a test launcher, the bench)."""
    _installed.append(hook)


def rules_fingerprint() -> dict[str, str]:
    """SHA-256 of every declaration in force (sources/ and rules/)."""
    return policy_fingerprint(home())


def policy_manifest() -> dict:
    """Which policy folder was used, and which of its files differ from the installed defaults."""
    p = load_policy()
    return {
        "folder": redact_ids(str(p.root)),
        "default": p.is_default,
        "differs_from_defaults": p.differs_from_defaults(),
        "differences": policy_differences(p),
    }


# Extracts bigger than this (in bytes on disk) are refreshed with DuckDB's tables in a file:
# Anning's 1M rows are ~0.2 GB and run in memory; Kunming's 18M rows are ~3.3 GB.
ON_DISK_BYTES = 1 << 30
# While such a run publishes, Python holds the persons (8.7M rows at Kunming: GBs) and DuckDB
# only writes links.parquet and the small tables: DuckDB gives its cached pages back down to this.
# (Kunming, peak RSS: 12,382 MiB without it; 11,882 and 11,936 with it. The persons' keys kept as
# a DuckDB table and links.parquet written first raised it to 12,424-12,442 MiB: not kept.)
PUBLISH_ON_DISK_MEMORY = "2GB"


def input_bytes(sources_dir: Path) -> int:
    """Total size of the files the refresh may read: those directly in SOURCES_DIR (a subfolder of
    backups is not read, so it does not count)."""
    return sum(p.stat().st_size for p in discover(Path(sources_dir)))


# The shapes of ID cells without a usable ID (stages/standardise.py ``_id_shape``): what the guard
# says it saw, and what to do.
ID_SHAPES = {
    "text_formula": (
        _('the ID cells are written as text formulas ="…"'),
        _('export the list again as .xlsx, or as CSV without the ="…" wrapping'),
    ),
    "scientific": (
        _("the IDs are written in scientific notation (5.30181E+17: Excel kept only 15 digits)"),
        _("set the column to Text in Excel, paste the IDs again from the source system and export it again"),
    ),
    "quotes": (
        _("the ID cells hold quote marks"),
        _("remove the quotes around the IDs and export the file again"),
    ),
    "spaces": (
        _("the ID cells hold spaces inside the number"),
        _("remove the spaces and export the file again"),
    ),
    "stray_characters": (
        _("the ID cells hold characters that are not digits or X"),
        _("check the ID column (a shifted column?) and export the file again"),
    ),
    "length": (_("the IDs are cut short or too long"), _("check the ID column and export the file again")),
    "check_digit": (
        _("the IDs have the right length but a wrong check digit or birth date (mistyped)"),
        _("check the IDs against the source system and export the file again"),
    ),
    "blank": (
        _("the ID column is blank"),
        _("fill in the IDs from the source system and export the file again"),
    ),
}


def _id_shape_cause(sr: StandardiseReport, keys) -> str:
    """The most common shape of the bad ID cells of ``keys`` (source, file, sheet), its remedy and
    one masked example."""
    seen: Counter = Counter()
    example: dict[str, str] = {}
    for (src, file, sheet, shape), n in sr.bad_id_shapes.items():
        if (src, file, sheet) in keys:
            seen[shape] += n
            example.setdefault(shape, sr.bad_id_examples.get((src, file, sheet, shape), ""))
    if not seen:
        return _("the ID column is blank, cut short or mistyped: check it and export the file again")
    shape = seen.most_common(1)[0][0]
    what, remedy = ID_SHAPES.get(shape, ID_SHAPES["check_digit"])
    if example.get(shape):
        return _("{what} (e.g. {example}): {remedy}").format(what=what, example=example[shape], remedy=remedy)
    return _("{what}: {remedy}").format(what=what, remedy=remedy)


def damage_check(sr: StandardiseReport, *, accept: bool = False) -> list[str]:
    """The damage guard (``rules/files.yaml`` ``damage``): too many rows without a usable ID in a
    required source or in one file or sheet stops the run with one message, unless ``accept``;
    then the findings come back as warnings. Returns the warnings (for the summary, the
    manifest and the report). Streets without household rows: the guards (guards.py)."""
    cfg = policy().file_rules.damage
    sources = policy().sources
    findings: list[str] = []

    def cause(keys) -> str:
        numeric = sum(sr.numeric_ids.get(k, 0) for k in keys)
        bad = sum(sr.no_usable_id.get(k, 0) for k in keys)
        if bad and numeric >= bad / 2:
            return _(
                "the ID column is stored as numbers (Excel kept only 15 digits): set the column to Text "
                "in Excel, paste the IDs again from the source system and export it again"
            )
        return _id_shape_cause(sr, keys)

    for (src, file, sheet), n in sorted(sr.person_rows.items()):
        bad = sr.no_usable_id.get((src, file, sheet), 0)
        if n and bad >= cfg.min_rows and bad / n > cfg.file_share:
            values = dict(
                file=file, sheet=repr(sheet), bad=bad, n=n, share=bad / n, limit=cfg.file_share,
                cause=cause([(src, file, sheet)]),
            )  # fmt: skip
            if sheet:
                text = _(
                    "{file}, sheet {sheet}: {bad} of {n} rows ({share:.0%}) have no usable ID number "
                    "(limit {limit:.0%}). Likely cause: {cause}"
                )
            else:
                text = _(
                    "{file}: {bad} of {n} rows ({share:.0%}) have no usable ID number "
                    "(limit {limit:.0%}). Likely cause: {cause}"
                )
            findings.append(text.format(**values))
    for name, s in sources.items():
        keys = [k for k in sr.person_rows if k[0] == name]
        n = sum(sr.person_rows[k] for k in keys)
        bad = sum(sr.no_usable_id.get(k, 0) for k in keys)
        if s.required and n and bad >= cfg.min_rows and bad / n > cfg.required_source_share:
            findings.append(
                _(
                    "{source} ({label}): {bad} of {n} rows ({share:.1%}) have no usable ID number "
                    "(limit {limit:.0%} for a required source). Likely cause: {cause}"
                ).format(
                    source=name,
                    label=s.label,
                    bad=bad,
                    n=n,
                    share=bad / n,
                    limit=cfg.required_source_share,
                    cause=cause(keys),
                )  # fmt: skip
            )
    if findings and not accept:
        raise KuomianError(
            _(
                "{findings}. Nothing was published. Fix the files and run again, or add --accept-damaged-ids "
                "to publish anyway (those rows are then quarantined or matched only with the name)."
            ).format(findings=_("; ").join(findings))
        )
    return [_("ID damage accepted (--accept-damaged-ids): {finding}").format(finding=f) for f in findings]


@dataclass
class Run:
    """One refresh as it goes from stage to stage: its settings, connection and reports.

    Each stage of :data:`STAGES` reads what the earlier ones left here and adds its own report.
    """

    sources_dir: Path
    con: duckdb.DuckDBPyConnection
    as_of: date = field(default_factory=date.today)
    key: bytes = b""
    staging: Path | None = None
    out_dir: Path | None = None
    previous: Path | None = None
    overrides: dict[Path, str] | None = None
    skip_bad_files: bool = False
    accept_damaged_ids: bool = False
    accept_drift: bool = False
    accept_missing_streets: bool = False
    check_damage: bool = True  # the damage guard and the guards (refresh; not validate)
    settings: dict = field(default_factory=dict)
    started: datetime = field(default_factory=datetime.now)
    progress: Callable[[str], None] = lambda m: None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    decisions: pl.DataFrame | None = None  # review decisions carried from the registries this run follows
    load: LoadReport | None = None
    standardise: StandardiseReport | None = None
    link: LinkReport | None = None
    classify: ClassifyReport | None = None
    publish: PublishReport | None = None
    guards: GuardReport | None = None


def _load(r: Run) -> None:
    """Extract files → ``LoadReport`` (frames per file; nothing in DuckDB yet)."""
    r.load = load(r.sources_dir, overrides=r.overrides, skip_bad_files=r.skip_bad_files, progress=r.progress)
    r.progress(r.load.summary())


def _standardise(r: Run) -> None:
    """→ ``std_rows`` (and its side tables)."""
    assert r.load is not None
    r.standardise = standardise(r.con, r.load, progress=r.progress)
    r.progress(r.standardise.summary())
    if r.check_damage:
        r.warnings = damage_check(r.standardise, accept=r.accept_damaged_ids)
        assert r.load is not None
        r.guards = check_guards(
            r.load, r.standardise, previous=r.previous, accept_drift=r.accept_drift,
            accept_missing_streets=r.accept_missing_streets, progress=r.progress,
        )  # fmt: skip
        r.warnings += r.guards.warnings
        for w in r.warnings:
            r.progress(_("WARNING {warning}").format(warning=w))


def _link(r: Run) -> None:
    """``std_rows`` → ``link_persons``, ``links``, ``link_review``."""
    prev = Path(r.previous).resolve() if r.previous is not None else None
    r.decisions = stored_decisions(prev, r.out_dir, progress=r.progress)
    r.link = link(r.con, r.key, progress=r.progress, decisions=r.decisions, as_of=r.as_of)
    r.progress(r.link.summary())


def _classify(r: Run) -> None:
    """``link_persons``, ``links`` → the persons' statuses and groups."""
    r.classify = classify(r.con, r.as_of, progress=r.progress)
    r.progress(r.classify.summary())


def _publish(r: Run) -> None:
    """Everything → the files of OUT_DIR, written into the staging folder (moved into place later)."""
    assert r.load and r.link and r.classify and r.staging
    lr, kr, cr = r.load, r.link, r.classify
    manifest = {
        "tool": "kuomian",
        "version": __version__,
        "as_of": r.as_of.isoformat(),
        "started_at": r.started.isoformat(timespec="seconds"),
        "sources_dir": redact_ids(str(Path(r.sources_dir).resolve())),
        "previous": redact_ids(str(r.previous)) if r.previous else None,
        "inputs": file_manifest(lr),
        "sources_present": lr.sources_present,
        "sources_missing": lr.sources_missing,
        "warnings": r.warnings,
        "guards": manifest_section(r.guards, previous=r.previous) if r.guards else None,
        "policy": policy_manifest(),
        "rules": rules_fingerprint(),
        "settings": r.settings,
        "counts": {
            "persons": kr.persons,
            "household_persons": kr.persons_local,
            "registry": cr.registry,
            "statuses": dict(cr.statuses),
            "groups": {str(k): v for k, v in sorted(cr.groups.items())},
            "review_rows": kr.review_rows,
            "shared_id_numbers": kr.shared_ids,
            "shared_id_persons": kr.shared_id_persons,
            "employers": cr.employers,
        },  # fmt: skip
        "stage_seconds": r.timings,
        "finished_at": datetime.now().isoformat(timespec="seconds"),
    }
    on_disk = bool(r.settings.get("on_disk"))
    with memory_at_most(r.con, PUBLISH_ON_DISK_MEMORY) if on_disk else contextlib.nullcontext():
        r.publish = publish(
            r.con,
            r.staging,
            key=r.key,
            as_of=r.as_of,
            previous=r.previous,
            manifest=manifest,
            decisions=r.decisions,
            # a city too big for memory writes one file at a time: beside the other writers the
            # hand-offs would hold their frames in memory at the same time
            overlap=not on_disk,
        )


# The refresh, in order: (name, what the stage does to the run).
STAGES: list[tuple[str, Callable[[Run], None]]] = [
    ("load", _load),
    ("standardise", _standardise),
    ("link", _link),
    ("classify", _classify),
    ("publish", _publish),
]


def run_stages(r: Run, stages: list[tuple[str, Callable[[Run], None]]], hooks: list[StageHook]) -> None:
    """The stage loop: each stage in order, every hook's ``before`` ahead of it and every hook's
    ``after`` (in the same order: the timer first, so later hooks see the stage's time) once it
    succeeded."""
    for name, stage in stages:
        for h in hooks:
            h.before(name, r)
        stage(r)
        for h in hooks:
            h.after(name, r)


def validate(
    sources_dir: Path, *, overrides=None, progress=lambda m: None
) -> tuple[LoadReport, StandardiseReport]:
    """Load and standardise only (``kuomian validate``)."""
    load_policy()  # every policy file checked before any data is read
    r = Run(Path(sources_dir), connect(), overrides=overrides, check_damage=False, progress=progress)
    try:
        run_stages(r, STAGES[:2], hooks=[])
    finally:
        r.con.close()
    assert r.load is not None and r.standardise is not None
    return r.load, r.standardise


def refresh(
    sources_dir: Path,
    out_dir: Path,
    *,
    as_of: date | None = None,
    previous: Path | None = None,
    force: bool = False,
    overrides=None,
    skip_bad_files: bool = False,
    accept_damaged_ids: bool = False,
    accept_drift: bool = False,
    accept_missing_streets: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
    on_disk: bool | None = None,
    progress=lambda m: None,
    hooks: list[StageHook] | None = None,
) -> RefreshResult:
    """Run the whole pipeline (:data:`STAGES`) and publish OUT_DIR atomically.

    ``on_disk``: keep DuckDB's tables in a file in the run's private temp folder rather than
    in memory; by default (None) when the extracts total more than :data:`ON_DISK_BYTES`, or
    when ``KUOMIAN_ON_DISK=1``. ``hooks``: called around every stage, after the timer and the
    hooks of :func:`install_hook`.
    """
    load_policy()  # every policy file checked before any data is read
    discover(Path(sources_dir))  # a SOURCES_DIR that is no folder: one line before any key, lock or staging
    as_of = as_of or date.today()
    if previous is not None:
        published_persons(previous, name="--previous", hint="Point it at last year's OUT_DIR.")
    out_dir = check_output_target(out_dir, force=force, inputs=(Path(sources_dir),))
    prev = Path(previous).resolve() if previous is not None else None
    started = datetime.now()
    # An import into PREV meanwhile would be missing from this run: PREV is locked too.
    with publishing(out_dir, force=force, progress=progress, also_lock=prev) as stage:
        keep_imported_answers(out_dir, prev)
        # The staging folder becomes OUT_DIR: owner-only unless shared output was asked for
        # (the DuckDB spill folder inside it is always 0700, see db.connect).
        tmp = stage / ".duckdb_tmp"
        con = None
        try:
            if on_disk is None:
                on_disk = os.environ.get("KUOMIAN_ON_DISK") == "1" or input_bytes(sources_dir) > ON_DISK_BYTES
            con = connect(temp_dir=tmp, threads=threads, memory_limit=memory_limit, on_disk=on_disk)
            settings = {
                "threads": threads,
                "memory_limit": memory_limit,
                "on_disk": on_disk,
                "skip_bad_files": skip_bad_files,
                "accept_damaged_ids": accept_damaged_ids,
                "accept_drift": accept_drift,
                "accept_missing_streets": accept_missing_streets,
                "person_key_file": redact_ids(str(key_path())),
                "python": platform.python_version(),
            }  # fmt: skip
            r = Run(
                Path(sources_dir), con, as_of=as_of, key=load_key(announce=progress), staging=stage,
                out_dir=out_dir, previous=previous, overrides=overrides, skip_bad_files=skip_bad_files,
                accept_damaged_ids=accept_damaged_ids, accept_drift=accept_drift,
                accept_missing_streets=accept_missing_streets, settings=settings, started=started, progress=progress,
            )  # fmt: skip
            run_stages(r, STAGES, [Timer(), *_installed, *(hooks or [])])
            con.close()
            con = None
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
            raise
    assert r.load and r.standardise and r.link and r.classify and r.publish
    progress(r.publish.summary())
    return RefreshResult(out_dir, r.load, r.standardise, r.link, r.classify, r.publish, r.timings, r.warnings)
