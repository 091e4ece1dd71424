"""The refresh: load → standardise → link → classify → publish, timed, atomic.

The CLI calls :func:`refresh` and :func:`validate`; tests, the demo, the
evaluation and the benchmark call them too.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .. import __version__
from ..core.config import home
from ..core.db import connect
from ..core.errors import KuomianError
from ..core.fileio import (
    check_output_target,
    clean_leftovers,
    move_into_place,
    output_lock,
    private_umask,
    staging,
    sweep_dead_runs,
)
from ..core.ids import redact_ids
from ..core.policy import differences as policy_differences
from ..core.policy import fingerprint as policy_fingerprint
from ..core.policy import load_policy
from ..core.privacy import key_path, load_key
from ..stages.classify import ClassifyReport, classify
from ..stages.link import LinkReport, link
from ..stages.load import LoadReport, file_manifest, file_rules, load
from ..stages.publish import PublishReport, publish
from ..stages.standardise import StandardiseReport, standardise
from .review import stored_decisions
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


class Timer:
    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)


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


def input_bytes(sources_dir: Path) -> int:
    """Total size of the files below SOURCES_DIR."""
    return sum(p.stat().st_size for p in Path(sources_dir).rglob("*") if p.is_file())


def damage_check(sr: StandardiseReport, *, accept: bool = False) -> list[str]:
    """The damage guard (``rules/files.yaml`` ``damage``): too many rows without a usable ID in a
    required source or in one file or sheet stops the run with one message, unless ``accept``;
    then the findings come back as warnings. A street of the base source with no rows is a
    warning too. Returns the warnings (for the summary, the manifest and the report)."""
    from ..core.config import load_sources, streets

    cfg = file_rules()["damage"]
    sources = load_sources()
    findings: list[str] = []

    def cause(keys) -> str:
        numeric = sum(sr.numeric_ids.get(k, 0) for k in keys)
        bad = sum(sr.no_usable_id.get(k, 0) for k in keys)
        if bad and numeric >= bad / 2:
            return (
                "the ID column is stored as numbers (Excel kept only 15 digits): set the column to Text "
                "in Excel, paste the IDs again from the source system and export it again"
            )
        return "the ID column is blank, cut short or mistyped: check it and export the file again"

    for (src, file, sheet), n in sorted(sr.person_rows.items()):
        bad = sr.no_usable_id.get((src, file, sheet), 0)
        if n and bad >= cfg["min_rows"] and bad / n > cfg["file_share"]:
            where = f"{file}" + (f", sheet {sheet!r}" if sheet else "")
            findings.append(
                f"{where}: {bad} of {n} rows ({bad / n:.0%}) have no usable ID number "
                f"(limit {cfg['file_share']:.0%}). Likely cause: {cause([(src, file, sheet)])}"
            )
    for name, s in sources.items():
        keys = [k for k in sr.person_rows if k[0] == name]
        n = sum(sr.person_rows[k] for k in keys)
        bad = sum(sr.no_usable_id.get(k, 0) for k in keys)
        if s.required and n and bad >= cfg["min_rows"] and bad / n > cfg["required_source_share"]:
            findings.append(
                f"{name} ({s.label}): {bad} of {n} rows ({bad / n:.1%}) have no usable ID number "
                f"(limit {cfg['required_source_share']:.0%} for a required source). Likely cause: {cause(keys)}"
            )
    if findings and not accept:
        raise KuomianError(
            "; ".join(findings)
            + ". Nothing was published. Fix the files and run again, or add --accept-damaged-ids to publish "
            "anyway (those rows are then quarantined or matched only with the name)."
        )
    warnings = [f"ID damage accepted (--accept-damaged-ids): {f}" for f in findings]
    if sr.base_streets or any(k[0] in sources and sources[k[0]].role == "base" for k in sr.person_rows):
        for st in streets():
            if not sr.base_streets.get(st.code):
                warnings.append(f"{st.name}: no household rows — is a file or sheet missing?")
    return warnings


def validate(
    sources_dir: Path, *, overrides=None, progress=lambda m: None
) -> tuple[LoadReport, StandardiseReport]:
    """Load and standardise only (``kuomian validate``)."""
    load_policy()  # every policy file checked before any data is read
    con = connect()
    try:
        lr = load(sources_dir, overrides=overrides, progress=progress)
        sr = standardise(con, lr, progress=progress)
    finally:
        con.close()
    return lr, sr


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
    threads: int | None = None,
    memory_limit: str | None = None,
    on_disk: bool | None = None,
    progress=lambda m: None,
    _fail_in_stage: str | None = None,
) -> RefreshResult:
    """Run the whole pipeline and publish OUT_DIR atomically.

    ``on_disk``: keep DuckDB's tables in a file in the run's private temp folder rather than
    in memory; by default (None) when the extracts total more than :data:`ON_DISK_BYTES`, or
    when ``KUOMIAN_ON_DISK=1``.
    """
    load_policy()  # every policy file checked before any data is read
    as_of = as_of or date.today()
    if previous is not None and not (Path(previous) / "persons.parquet").exists():
        raise KuomianError(
            f"--previous {previous}: no persons.parquet there. Point it at last year's OUT_DIR."
        )
    out_dir = check_output_target(out_dir, force=force, inputs=(Path(sources_dir),))
    prev = Path(previous).resolve() if previous is not None else None
    started = datetime.now()
    timer = Timer()
    sweep_dead_runs(progress)
    with private_umask(), output_lock(out_dir), ExitStack() as held:
        if prev is not None and prev != out_dir:
            # An import into PREV meanwhile would be missing from this run: PREV is locked too.
            held.enter_context(
                output_lock(prev, what="another kuomian command is writing this folder right now")
            )
        keep_imported_answers(out_dir, prev)
        clean_leftovers(out_dir, progress)
        stage = held.enter_context(staging(out_dir))
        # The staging folder becomes OUT_DIR: owner-only unless shared output was asked for
        # (the DuckDB spill folder inside it is always 0700, see db.connect).
        tmp = stage / ".duckdb_tmp"
        con = None
        try:
            if on_disk is None:
                on_disk = os.environ.get("KUOMIAN_ON_DISK") == "1" or input_bytes(sources_dir) > ON_DISK_BYTES
            con = connect(temp_dir=tmp, threads=threads, memory_limit=memory_limit, on_disk=on_disk)
            key = load_key(announce=progress)
            with timer.stage("load"):
                lr = load(sources_dir, overrides=overrides, skip_bad_files=skip_bad_files, progress=progress)
            progress(lr.summary())
            _maybe_fail(_fail_in_stage, "load")
            with timer.stage("standardise"):
                sr = standardise(con, lr, progress=progress)
            progress(sr.summary())
            warnings = damage_check(sr, accept=accept_damaged_ids)
            for w in warnings:
                progress(f"WARNING {w}")
            _maybe_fail(_fail_in_stage, "standardise")
            with timer.stage("link"):
                decisions = stored_decisions(prev, out_dir, progress=progress)
                kr = link(con, key, progress=progress, decisions=decisions)
            progress(kr.summary())
            _maybe_fail(_fail_in_stage, "link")
            with timer.stage("classify"):
                cr = classify(con, as_of, progress=progress)
            progress(cr.summary())
            _maybe_fail(_fail_in_stage, "classify")
            manifest = {
                "tool": "kuomian",
                "version": __version__,
                "as_of": as_of.isoformat(),
                "started_at": started.isoformat(timespec="seconds"),
                "sources_dir": redact_ids(str(Path(sources_dir).resolve())),
                "previous": redact_ids(str(previous)) if previous else None,
                "inputs": file_manifest(lr),
                "sources_present": lr.sources_present,
                "sources_missing": lr.sources_missing,
                "warnings": warnings,
                "policy": policy_manifest(),
                "rules": rules_fingerprint(),
                "settings": {
                    "threads": threads,
                    "memory_limit": memory_limit,
                    "on_disk": on_disk,
                    "skip_bad_files": skip_bad_files,
                    "accept_damaged_ids": accept_damaged_ids,
                    "person_key_file": redact_ids(str(key_path())),
                    "python": platform.python_version(),
                },  # fmt: skip
                "counts": {
                    "persons": kr.persons,
                    "household_persons": kr.persons_local,
                    "registry": cr.registry,
                    "statuses": dict(cr.statuses),
                    "groups": {str(k): v for k, v in sorted(cr.groups.items())},
                    "review_rows": kr.review_rows,
                    "employers": cr.employers,
                },  # fmt: skip
            }
            with timer.stage("publish"):
                manifest["stage_seconds"] = timer.timings
                manifest["finished_at"] = datetime.now().isoformat(timespec="seconds")
                pr = publish(con, stage, key=key, as_of=as_of, previous=previous, manifest=manifest,
                             decisions=decisions)  # fmt: skip
                _maybe_fail(_fail_in_stage, "publish")
            con.close()
            con = None
            shutil.rmtree(tmp, ignore_errors=True)
            move_into_place(stage, out_dir, force)
        except BaseException:
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
            raise
    progress(pr.summary())
    return RefreshResult(out_dir, lr, sr, kr, cr, pr, timer.timings, warnings)


def _maybe_fail(wanted: str | None, stage: str) -> None:
    """Fault injection for the reliability tests, at the end of each stage.

    ``KUOMIAN_FAIL_IN_STAGE=<stage>`` (or the private argument) raises a simulated
    "disk full"; ``KUOMIAN_PAUSE_IN_STAGE=<stage>`` writes ``<staging>/.paused`` and
    sleeps, so that a test can SIGKILL the process at a known point.
    """
    wanted = wanted or os.environ.get("KUOMIAN_FAIL_IN_STAGE")
    if wanted == stage:
        raise OSError(28, f"No space left on device (simulated in stage {stage})")
    if os.environ.get("KUOMIAN_PAUSE_IN_STAGE") == stage:
        marker = os.environ.get("KUOMIAN_PAUSE_MARKER")
        if marker:
            Path(marker).write_text(stage, encoding="utf-8")
        time.sleep(600)
