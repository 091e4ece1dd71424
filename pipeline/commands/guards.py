"""Guards against what nobody foresaw (spec outputs.md): does what was read look like what
should have been read?

Entry point: :func:`check_guards`, called by the refresh right after the standardise stage
(and by ``validate``, which only prints). It reads no table: only the figures the stages already
counted — the :class:`~kuomian.stages.load.LoadReport` (files, sheets, their mapped columns) and
the :class:`~kuomian.stages.standardise.StandardiseReport` (person rows and filled cells per file
and sheet, per street × source) — and, with ``--previous``, the ``guards`` figures of the
previous run's ``manifest.json``. Thresholds are ``rules/files.yaml`` ``guards``.

Findings, each one sentence (where, the figure now vs expected, likely cause, remedy):

* a street of the household source with no rows (``--accept-missing-streets``);
* a mapped column that the source normally fills (``guards.expected_fill``) mostly empty in a
  file or sheet (``--accept-drift``);
* with ``--previous``, per street × source: rows far below or far above the previous run's, a
  column much emptier than in the previous run, a source's whole population far beyond the
  previous run's (``--accept-drift``).

Without the flag a finding stops the run before publishing (one line, exit 1); with it, the
finding is a warning that the summary, ``manifest.json`` and ``report.html`` show in red.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import KuomianError
from ..core.i18n import _
from ..core.ids import redact_ids
from ..core.policy import Guards, policy
from ..stages.load import LoadReport
from ..stages.standardise import StandardiseReport

DRIFT_FLAG = "--accept-drift"
STREETS_FLAG = "--accept-missing-streets"
FIGURES_VERSION = 1
NO_STREET = ""  # the street bucket of rows whose street is unknown (or a source without one)


@dataclass
class Finding:
    text: str  # one sentence: where, figure, likely cause, remedy
    flag: str  # the flag that accepts it


@dataclass
class GuardReport:
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # accepted findings and notes below the bar
    figures: dict = field(default_factory=dict)  # for manifest.json (next year's run compares with it)
    previous_note: str | None = None  # why the comparison with the previous run was not made
    # per (source, file, sheet): the fill rate of each judged column (validate prints them)
    file_fill: dict[tuple[str, str, str], dict[str, tuple[int, int, float]]] = field(default_factory=dict)


def guard_rules() -> Guards:
    """``rules/files.yaml`` ``guards`` (the installed default's when a bureau's file predates it)."""
    return policy().file_rules.guards


def _short(text: str, n: int = 40) -> str:
    """A name from a file (header, sheet) as a message shows it: at most ``n`` characters."""
    return text if len(text) <= n else text[: n - 1] + "…"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _column_label(lr: LoadReport, file: str, sheet: str, fld: str) -> str:
    """The column as the file names it (``社区 (community)``), else the field's name."""
    for f in lr.files:
        if f.name != file:
            continue
        for s in f.sheets:
            if s.name == sheet:
                for h, c in s.columns.items():
                    if c == fld:
                        return f"{_short(h)} ({fld})"
        for h, c in f.columns.items():
            if c == fld:
                return f"{_short(h)} ({fld})"
    return fld


def _mapped(lr: LoadReport, file: str, sheet: str) -> set[str] | None:
    """The fields the header of that file's sheet named (None: unknown, e.g. a hand-made report)."""
    for f in lr.files:
        if f.name != file:
            continue
        for s in f.sheets:
            if s.name == sheet and s.skipped is None and s.columns:
                return set(s.columns.values())
        return set(f.columns.values()) or None
    return None


def _where(file: str, sheet: str) -> str:
    """Where in the files: the file, and its sheet when it has one."""
    return _("{file}, sheet {sheet}").format(file=file, sheet=repr(_short(sheet))) if sheet else file


def figures(sr: StandardiseReport) -> dict:
    """What next year's run compares with: per source, per street (code; "" unknown), person
    rows and the fill rate of each field."""
    out: dict = {}
    for (src, code), n in sorted(sr.street_rows.items()):
        fill = {
            fld: round(k / n, 4)
            for (s, c, fld), k in sorted(sr.street_filled.items())
            if s == src and c == code and n
        }
        out.setdefault(src, {})[code] = {"rows": n, "fill": fill}
    return {"version": FIGURES_VERSION, "street_codes": [st.code for st in policy().streets], "streets": out}


def _previous_figures(previous: Path) -> tuple[dict | None, str | None]:
    """The previous run's figures (checked: they come from a file), or why there are none."""
    path = Path(previous) / "manifest.json"
    shown = redact_ids(str(path))
    why = _("{path} predates them (this run's manifest keeps them for next year's run)").format(path=shown)
    damaged = _("{path}: its guard figures are damaged").format(path=shown)
    try:
        m = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None, _("{path} cannot be read").format(path=shown)
    g = m.get("guards") if isinstance(m, dict) else None
    fig = g.get("figures") if isinstance(g, dict) else None
    if (
        not isinstance(fig, dict)
        or fig.get("version") != FIGURES_VERSION
        or not isinstance(fig.get("streets"), dict)
    ):
        return None, why
    clean: dict = {}
    for src, by_street in fig["streets"].items():
        if not isinstance(by_street, dict):
            return None, damaged
        for code, v in by_street.items():
            rows = v.get("rows") if isinstance(v, dict) else None
            fill = v.get("fill") if isinstance(v, dict) else None
            if not (
                isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 and isinstance(fill, dict)
            ):
                return None, damaged
            if not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0 <= x <= 1
                for x in fill.values()
            ):
                return None, damaged
            clean.setdefault(str(src), {})[str(code)] = {"rows": rows, "fill": dict(fill)}
    codes = fig.get("street_codes")
    if codes != [st.code for st in policy().streets]:
        # the streets were reorganised since (rules/streets.csv): only whole sources compare
        clean = {
            src: {"*": {"rows": sum(v["rows"] for v in by.values()), "fill": {}}} for src, by in clean.items()
        }
    return clean, None


def _missing_streets(lr: LoadReport, sr: StandardiseReport, cfg: Guards) -> tuple[list[Finding], list[str]]:
    """Streets of the household (base) source without a usable row: a finding when the source is
    big enough to judge (``min_rows`` a street on average), else a plain warning."""
    sources = policy().sources
    base = [n for n, s in sources.items() if s.role == "base"]
    if not base or not (sr.base_streets or any(k[0] in base for k in sr.person_rows)):
        return [], []
    all_streets = policy().streets
    empty = [st for st in all_streets if not sr.base_streets.get(st.code)]
    if not empty:
        return [], []
    base_rows = sum(n for k, n in sr.person_rows.items() if k[0] in base)
    judged = base_rows >= cfg.min_rows * len(all_streets)
    unread = [
        _("{file} ({why})").format(file=f.name, why=f.problem or f.how)
        for f in lr.files
        if f.how in ("ignored", "skipped", "unrecognised", "not read", "copy")
    ]
    unread += [
        _("{file}, sheet {sheet} ({why})").format(file=f.name, sheet=repr(_short(s.name)), why=s.skipped)
        for f in lr.files
        for s in f.sheets
        if s.skipped is not None
    ]
    findings, warnings = [], []
    for st in empty:
        mine = [u for u in unread if st.name in u or st.name.removesuffix("街道") in u]
        could = mine or unread
        files = _(", ").join(could[:5]) + (" …" if len(could) > 5 else "")
        if judged and could:
            findings.append(
                Finding(
                    _(
                        "{street}: no household rows — is a file or sheet missing? Not read, and could be it: "
                        "{files}. Remedy: put the street's household file (or sheet) in SOURCES_DIR, saved as "
                        ".xlsx or .csv"
                    ).format(street=st.name, files=files),
                    STREETS_FLAG,
                )
            )
        elif judged:
            findings.append(
                Finding(
                    _(
                        "{street}: no household rows — is a file or sheet missing? Remedy: put the street's "
                        "household file (or sheet) in SOURCES_DIR, saved as .xlsx or .csv"
                    ).format(street=st.name),
                    STREETS_FLAG,
                )
            )
        elif could:
            warnings.append(
                _(
                    "{street}: no household rows — is a file or sheet missing? Not read, and could be it: {files}."
                ).format(street=st.name, files=files)
            )
        else:
            warnings.append(
                _("{street}: no household rows — is a file or sheet missing?").format(street=st.name)
            )
    return findings, warnings


def _fill_findings(
    lr: LoadReport, sr: StandardiseReport, cfg: Guards, rep: GuardReport
) -> tuple[list[Finding], set[tuple[str, str]]]:
    """A mapped column the source normally fills, mostly empty in a file or sheet."""
    expected = cfg.expected_fill
    findings, seen = [], set()
    for (src, file, sheet), n in sorted(sr.person_rows.items()):
        cols = expected.get(src) or {}
        mapped = _mapped(lr, file, sheet)
        rates = {}
        for fld, want in cols.items():
            if mapped is not None and fld not in mapped:
                continue  # not a column of this file: nothing to judge
            k = sr.filled.get((src, file, sheet, fld), 0)
            rate = k / n if n else 0.0
            rates[fld] = (k, n, rate)
            if n >= cfg.min_rows and rate < want - cfg.fill_drop:
                workbook = Path(file).suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods")
                if workbook:
                    text = _(
                        "{where}, column {column}: filled in {rate} of {n} rows, normally {want} (the run stops "
                        "below {bar}). Likely cause: merged cells not read, or the column left blank in the "
                        "export? Remedy: open the file, fill the column in every row (unmerge merged cells and "
                        "fill them down), save and run again"
                    )
                else:
                    text = _(
                        "{where}, column {column}: filled in {rate} of {n} rows, normally {want} (the run stops "
                        "below {bar}). Likely cause: the column left blank in the export, or the header names "
                        "another column? Remedy: open the file, fill the column in every row (unmerge merged "
                        "cells and fill them down), save and run again"
                    )
                findings.append(
                    Finding(
                        text.format(
                            where=_where(file, sheet),
                            column=_column_label(lr, file, sheet, fld),
                            rate=_pct(rate),
                            n=n,
                            want=_pct(want),
                            bar=_pct(want - cfg.fill_drop),
                        ),  # fmt: skip
                        DRIFT_FLAG,
                    )
                )
                seen.add((src, fld))
        if rates:
            rep.file_fill[(src, file, sheet)] = rates
    return findings, seen


def _previous_findings(
    sr: StandardiseReport, prev: dict, cfg: Guards, reported_fill: set[tuple[str, str]]
) -> list[Finding]:
    """Per street × source: rows and fill rates against the previous run's; per source: its
    whole population."""
    names = policy().street_names
    sources = policy().sources
    findings, grown = _grown_sources(sr, prev, cfg)
    for src, by_street in sorted(prev.items()):
        label = sources[src].label if src in sources else src
        for code, v in sorted(by_street.items()):
            if code == "*":
                continue  # the previous run's streets were others: its whole source only
            street = names.get(code, _("no street given") if code == NO_STREET else code)
            findings += _street_rows_findings(sr, cfg, src, label, code, street, v["rows"], grown)
            findings += _street_fill_findings(sr, cfg, src, label, code, street, v, reported_fill)
    return findings


def _grown_sources(sr: StandardiseReport, prev: dict, cfg: Guards) -> tuple[list[Finding], set[str]]:
    """Sources whose person rows grew past ``previous.rows_growth`` times the previous run's."""
    p, min_rows = cfg.previous, cfg.min_rows
    sources = policy().sources
    findings: list[Finding] = []
    now_total: dict[str, int] = defaultdict(int)
    for (src, _code), n in sr.street_rows.items():
        now_total[src] += n
    grown: set[str] = set()
    for src, by_street in sorted(prev.items()):
        before = sum(v["rows"] for v in by_street.values())
        now = now_total.get(src, 0)
        if before >= min_rows and now > before * p.rows_growth and now - before >= min_rows:
            grown.add(src)
            findings.append(
                Finding(
                    _(
                        "{source} ({label}): {now} rows, {times:.1f} times the previous run's {before} (the run "
                        "stops above {growth:g} times). Likely cause: a backup copy or last year's files read too? "
                        "Remedy: keep only this year's files directly in SOURCES_DIR (move copies and old files "
                        "out of it), then run again"
                    ).format(
                        source=src,
                        label=sources[src].label if src in sources else src,
                        now=now,
                        times=now / before,
                        before=before,
                        growth=p.rows_growth,
                    ),  # fmt: skip
                    DRIFT_FLAG,
                )
            )
    return findings, grown


def _street_rows_findings(
    sr: StandardiseReport, cfg: Guards, src: str, label: str, code: str, street: str, before: int,
    grown: set[str],
) -> list[Finding]:  # fmt: skip
    """A street's rows of a source fell below ``previous.rows_fall`` or grew past ``rows_growth``."""
    p, min_rows = cfg.previous, cfg.min_rows
    base = {n for n, s in policy().sources.items() if s.role == "base"}
    now = sr.street_rows.get((src, code), 0)
    findings: list[Finding] = []
    if before < min_rows:
        return findings
    fell = now < before * (1 - p.rows_fall) and before - now >= min_rows
    if fell and not (src in base and now == 0 and code in policy().street_names):
        findings.append(
            Finding(
                _(
                    "{street}, {source} ({label}): {now} rows, the previous run had {before} (the run "
                    "stops below {bar} of it). Likely cause: a file or sheet missing? Remedy: add the "
                    "missing file or sheet to SOURCES_DIR and run again"
                ).format(
                    street=street,
                    source=src,
                    label=label,
                    now=now,
                    before=before,
                    bar=_pct(1 - p.rows_fall),
                ),  # fmt: skip
                DRIFT_FLAG,
            )
        )
    elif src not in grown and now > before * p.rows_growth and now - before >= min_rows:
        cause = (
            _(
                "the street column blank or written in a way not recognised (merged cells not read?)? "
                "Remedy: fill the street column in every row with the street's name or code, then run again"
            )
            if code == NO_STREET
            else _(
                "a backup copy read too? Remedy: keep only this year's files directly in SOURCES_DIR, "
                "then run again"
            )
        )
        findings.append(
            Finding(
                _(
                    "{street}, {source} ({label}): {now} rows, {times:.1f} times the previous run's "
                    "{before} (the run stops above {growth:g} times). Likely cause: {cause}"
                ).format(
                    street=street,
                    source=src,
                    label=label,
                    now=now,
                    times=now / before,
                    before=before,
                    growth=p.rows_growth,
                    cause=cause,
                ),  # fmt: skip
                DRIFT_FLAG,
            )
        )
    return findings


def _street_fill_findings(
    sr: StandardiseReport, cfg: Guards, src: str, label: str, code: str, street: str, v: dict,
    reported_fill: set[tuple[str, str]],
) -> list[Finding]:  # fmt: skip
    """A street's column of a source filled ``previous.fill_drop`` less than in the previous run."""
    p = cfg.previous
    findings: list[Finding] = []
    now = sr.street_rows.get((src, code), 0)
    if v["rows"] < cfg.min_rows or now < cfg.min_rows:
        return findings
    for fld in cfg.expected_fill.get(src) or {}:
        was = v["fill"].get(fld)
        if was is None or (src, fld) in reported_fill:
            continue
        rate = sr.street_filled.get((src, code, fld), 0) / now
        if was - rate > p.fill_drop:
            findings.append(
                Finding(
                    _(
                        "{street}, {source} ({label}), column {column}: filled in {rate} of {now} rows, "
                        "the previous run {was} (the run stops {drop:.0%} below it). Likely cause: merged "
                        "cells not read, or the column left out of this year's export? Remedy: fill the "
                        "column in every row (unmerge merged cells), or ask the department to export it "
                        "again"
                    ).format(
                        street=street,
                        source=src,
                        label=label,
                        column=fld,
                        rate=_pct(rate),
                        now=now,
                        was=_pct(was),
                        drop=p.fill_drop,
                    ),  # fmt: skip
                    DRIFT_FLAG,
                )
            )
    return findings


def check_guards(
    lr: LoadReport,
    sr: StandardiseReport,
    *,
    previous: Path | None = None,
    accept_drift: bool = False,
    accept_missing_streets: bool = False,
    stop: bool = True,
    progress=lambda m: None,
) -> GuardReport:
    """Every guard on what the load and standardise stages counted.

    ``stop`` (the refresh): raise :class:`KuomianError` (one line, nothing published) when a
    finding is not accepted by its flag; ``validate`` passes ``stop=False`` and prints. Returns
    the figures for the manifest and the warnings (accepted findings, in red downstream).
    """
    cfg = guard_rules()
    rep = GuardReport(figures=figures(sr))
    street_findings, rep.warnings = _missing_streets(lr, sr, cfg)
    fill_findings, reported = _fill_findings(lr, sr, cfg, rep)
    rep.findings = street_findings + fill_findings
    if previous is not None:
        prev, rep.previous_note = _previous_figures(Path(previous))
        if prev is None:
            progress(
                _("guards against the previous run: not applicable — {why}").format(why=rep.previous_note)
            )
        else:
            rep.findings += _previous_findings(sr, prev, cfg, reported)
    # names read from the files (sheets, headers, file names) may hold an ID number: masked
    rep.findings = [Finding(redact_ids(f.text), f.flag) for f in rep.findings]
    rep.warnings = [redact_ids(w) for w in rep.warnings]
    accepted = {DRIFT_FLAG: accept_drift, STREETS_FLAG: accept_missing_streets}
    stopping = [f for f in rep.findings if not accepted[f.flag]]
    if stop and stopping:
        flags = sorted({f.flag for f in stopping})
        shown = _("; ").join(f.text for f in stopping[:5])
        if len(stopping) > 5:
            shown = _("{findings}; and {n} more like these").format(findings=shown, n=len(stopping) - 5)
        if len(flags) == 1:
            text = _(
                "{findings}. Nothing was published. Fix the files and run again, or add {flag} to publish "
                "anyway (the summary, the report and manifest.json then say so in red)."
            ).format(findings=shown, flag=flags[0])
        else:
            text = _(
                "{findings}. Nothing was published. Fix the files and run again, or add {flag} and {flag2} to "
                "publish anyway (the summary, the report and manifest.json then say so in red)."
            ).format(findings=shown, flag=flags[0], flag2=flags[1])
        raise KuomianError(text)
    rep.warnings = [
        _("accepted ({flag}): {finding}").format(flag=f.flag, finding=f.text) if accepted[f.flag] else f.text
        for f in rep.findings
    ] + rep.warnings
    return rep


def manifest_section(rep: GuardReport, *, previous: Path | None) -> dict:
    """``manifest.json`` ``guards``: this run's figures, what was accepted, the comparison made."""
    return {
        "figures": rep.figures,
        "accepted": [f.text for f in rep.findings],
        "previous": (
            None
            if previous is None
            else ("compared" if rep.previous_note is None else f"not applicable: {rep.previous_note}")
        ),
    }
