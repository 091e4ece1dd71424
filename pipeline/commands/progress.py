"""``kuomian progress``: the quarterly bulletin (每季度通报) of the streets' progress against their tasks.

Entry point: :func:`run_progress`. It reads

* ``REGISTRY_DIR/persons.parquet`` — the published registry: who was listed (status
  ``unenrolled`` or ``resident_upgradable``), their street, community, group, and the
  survey answers imported so far (``kuomian survey import``);
* ``REGISTRY_DIR/indicators.csv`` — the default tasks: each street's gap to the target;
* ``REGISTRY_DIR/progress_history/<as_of>.parquet`` — the registry's earlier bulletins;
* ``rules/tasks.yaml`` — the tasks the bureau set, and what counts as enrolled;
* one or more new enrolment extracts (参保 files of any shape, encoding and dirt the refresh
  reads: :func:`pipeline.stages.load.load_file` and
  :func:`pipeline.stages.standardise.standardise_frame`, exact duplicates found across files);

matches the extract rows to the registry's people with the refresh's cascade — the same
route as ``kuomian check`` (:func:`kuomian.stages.link.match_to_persons`, against every person
of persons.parquet, so that a row of someone outside the registry is not taken for a
registry person) — and publishes OUT_DIR atomically:

* ``progress.parquet`` — one row per registry person (and per person a survey answer says is
  insured elsewhere; not those it took off as deceased or moved out): ``person_key``,
  ``street_code``, ``street_name``, ``community``, ``group``, ``status`` (at listing, from the
  extracts), ``enrolled`` (an enrolment row in ``enrolled_statuses`` — 参保缴费 or 待遇领取 — now
  exists, or the survey's 已在外地参保), ``scheme`` (``employee`` / ``resident`` / ``elsewhere``
  (self-reported) / null), ``surveyed`` (visited: answers or a survey date imported),
  ``target_priority`` (this year's key targets, rules/targets.yaml);
* ``progress_rows.parquet`` — one row per extract row: ``source``, ``file``, ``sheet``, ``row``,
  ``outcome``, ``person_key`` (no ID number), ``match_rule``, ``reason``;
* ``reconciliation.csv`` — per file: rows read = registry + not in registry + unmatched +
  review + duplicates + quarantined;
* ``bulletin.xlsx`` and ``bulletin.html`` — per street and community (:func:`bulletin_frame`;
  written by :mod:`pipeline.report.bulletin`);

and writes this bulletin's figures into ``REGISTRY_DIR/progress_history/<as_of>.parquet``
(replacing a bulletin of the same date), so that the December assessment shows every
bulletin of the year side by side. No full ID number is written outside the Parquet files
(and those hold only person_key).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import cast

import polars as pl

from ..core.errors import KuomianError
from ..core.i18n import _
from ..core.ids import person_refs
from ..core.labels import CITY, NO_COMMUNITY, PROGRESS_OUTCOMES, PROGRESS_RECON_HEADERS
from ..core.policy import policy
from ..report.survey_progress import (
    ANSWER_FIELDS,
    answered_expr,
    street_name_expr,
    visited_expr,
)

HISTORY = "progress_history"
# Row outcomes of the extract, in the order of the reconciliation.
OUTCOMES = PROGRESS_OUTCOMES


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class Task:
    enrolment: int | None
    employee: int | None
    enrolment_basis: str  # 任务分解 (rules/tasks.yaml) or 默认: 距…年目标缺口
    employee_basis: str


def counting_rules() -> dict[str, list[str]]:
    """What the bulletin counts (rules/tasks.yaml): enrolled statuses, employee and resident schemes."""
    t = policy().tasks
    return {
        "enrolled_statuses": list(t.enrolled_statuses),
        "employee_schemes": list(t.employee_schemes),
        "resident_schemes": list(t.resident_schemes),
    }


def target_year(kind: str, year: int) -> str | None:
    """The target year a bulletin of ``year`` counts against: the first not before it, else the last."""
    ind = policy().indicators
    targets = {"coverage": ind.coverage_targets, "employee_share": ind.employee_share_targets}[kind]
    years = sorted(str(y) for y in targets)
    later = [y for y in years if int(y) >= year]
    return later[0] if later else (years[-1] if years else None)


def tasks_for(year: int, indicators: pl.DataFrame | None) -> dict[str, Task]:
    """street_code → Task for ``year``: rules/tasks.yaml where set (checked with the policy: whole
    numbers, known street codes), else the gap to the target."""
    set_ = policy().tasks.by_year.get(str(year)) or {}
    known = policy().street_names
    cov_year, emp_year = target_year("coverage", year), target_year("employee_share", year)
    gaps: dict[str, tuple[int | None, int | None]] = {}
    if indicators is not None:
        for r in indicators.iter_rows(named=True):
            gaps[r["street_code"]] = (
                _int_or_none(r.get(f"coverage_gap_{cov_year}")),
                _int_or_none(r.get(f"employee_gap_{emp_year}")),
            )
    out: dict[str, Task] = {}
    for code in known:
        given = set_.get(code) or {}
        enrol, emp = given.get("enrolment"), given.get("employee")
        gap = gaps.get(code, (None, None))
        out[code] = Task(
            enrolment=enrol if enrol is not None else gap[0],
            employee=emp if emp is not None else gap[1],
            enrolment_basis="任务分解" if enrol is not None else f"默认: 距{cov_year}年参保率目标缺口",
            employee_basis="任务分解" if emp is not None else f"默认: 距{emp_year}年职工占比目标缺口",
        )
    return out


def _int_or_none(v) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def read_indicators(registry: Path) -> pl.DataFrame | None:
    """indicators.csv of the registry with its canonical column names (None when absent)."""
    from ..core.labels import indicator_headers

    path = registry / "indicators.csv"
    if not path.exists():
        return None
    df = pl.read_csv(path, infer_schema=False, encoding="utf8")
    df = df.rename({c: c.lstrip("\ufeff") for c in df.columns})
    back = {h: c for c, h in indicator_headers().items()}
    return df.rename({c: back[c] for c in df.columns if c in back})


# ---------------------------------------------------------------- matching


@dataclass
class ProgressReport:
    out_dir: Path
    as_of: date
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    outcomes: Counter = field(default_factory=Counter)
    registry: int = 0
    enrolled: int = 0  # enrolled since listing (unenrolled at listing, enrolled now)
    by_scheme: Counter = field(default_factory=Counter)
    switched: int = 0
    surveyed: int = 0
    previous: date | None = None
    bulletins: list[date] = field(default_factory=list)  # of the year, this one included
    balanced: bool = True
    notes: list[str] = field(default_factory=list)


def read_extracts(files: list[Path], progress=lambda m: None) -> tuple[pl.DataFrame, dict[str, int]]:
    """Every row of the enrolment files, standardised as the refresh does; and rows read per file."""
    from ..readers import FileInfo
    from ..stages.match_list import read_list
    from ..stages.standardise import Duplicates

    src = policy().sources["enrollment"]
    dups = Duplicates()
    parts, rows_read = [], {}
    names = Counter(Path(f).name for f in files)
    offset = 0
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise KuomianError(
                _("{path}: no such file. Give the new enrolment extract(s) (.xlsx, .xls or .csv).").format(
                    path=f
                )
            )
        progress(_("reading {file}").format(file=f.name))
        info = FileInfo(f, src.name, "argument")
        if names[f.name] > 1:
            info.shown_as = f"{f.parent.name}/{f.name}"
        std = read_list(f, src, info, dups=dups, offset=offset)
        if info.name in rows_read:
            raise KuomianError(_("{path}: given twice. Give each extract once.").format(path=f))
        rows_read[info.name] = info.rows
        offset += std.height
        parts.append(std)
    return pl.concat(parts, how="diagonal_relaxed"), rows_read


def match_extract(std: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Per extract row: source, file, row, outcome, person_id, person_key, match_rule, reason,
    scheme, enroll_status (outcome: a key of OUTCOMES)."""
    from ..stages.match_list import match_list

    decisions = match_list(std, persons, pl.col("row_state") == "ok")
    rows = std.select(
        "row_id", "source", "file", "sheet", "row", "row_state", "reason", "scheme", "enroll_status"
    )  # fmt: skip
    rows = rows.join(decisions.rename({"outcome": "decision"}), on="row_id", how="left")
    who = persons.select(
        person_refs(persons).alias("person_id"),
        "person_key",
        pl.col("status").is_in(list(policy().statuses.registry)).alias("_listed"),
    )
    rows = rows.join(who, on="person_id", how="left")
    outcome = (
        pl.when(pl.col("row_state") == "quarantined")
        .then(pl.lit("quarantined"))
        .when(pl.col("row_state") == "duplicate")
        .then(pl.lit("duplicate"))
        .when(pl.col("decision") == "review")
        .then(pl.lit("review"))
        .when((pl.col("decision") == "linked") & pl.col("_listed").fill_null(False))
        .then(pl.lit("registry"))
        .when((pl.col("decision") == "linked") & pl.col("person_key").is_not_null())
        .then(pl.lit("not_registry"))
        .otherwise(pl.lit("unmatched"))
    )
    linked = outcome.is_in(["registry", "not_registry"])
    return (
        rows.with_columns(outcome=outcome)
        .with_columns(
            person_id=pl.when(linked).then(pl.col("person_id")),
            person_key=pl.when(linked).then(pl.col("person_key")),
            match_rule=pl.when(linked).then(pl.col("match_rule")),
            reason=pl.when(pl.col("outcome").is_in(["quarantined", "duplicate"])).then(pl.col("reason")),
        )
        .sort("row_id")
    )


def progress_frame(persons: pl.DataFrame, rows: pl.DataFrame, listed_on: date | None = None) -> pl.DataFrame:
    """progress.parquet: one row per registry person (see the module docstring). ``listed_on``: the
    registry's as-of date; an answer 已在外地参保 older than it (carried from an earlier year's
    registry) is no enrolment since this listing, so that person is not counted again."""
    rules = counting_rules()
    hits = rows.filter(
        (pl.col("outcome") == "registry") & pl.col("enroll_status").is_in(rules["enrolled_statuses"])
    )
    per = hits.group_by("person_key").agg(
        employee=pl.col("scheme").is_in(rules["employee_schemes"]).any(),
        resident=pl.col("scheme").is_in(rules["resident_schemes"]).any(),
    )
    p = policy()
    elsewhere = p.survey.elsewhere_status
    # listed: the registry, and those a survey answer says are insured elsewhere (self-reported:
    # they count as enrolled since listing); those the survey took off (deceased, moved out) are not
    for f in ("extract_status", "extract_group", "target_priority"):
        if f not in persons.columns:
            persons = persons.with_columns(pl.lit(None, dtype=pl.String).alias(f))
    if "surveyed_on" not in persons.columns:
        persons = persons.with_columns(surveyed_on=pl.lit(None, dtype=pl.Date))
    told_since = pl.lit(True) if listed_on is None else (pl.col("surveyed_on") >= listed_on).fill_null(True)
    reg = persons.filter(
        pl.col("status").is_in(list(p.statuses.registry)) | ((pl.col("status") == elsewhere) & told_since)
    )
    for f in (*ANSWER_FIELDS, "surveyed_on"):
        if f not in reg.columns:
            reg = reg.with_columns(pl.lit(None, dtype=pl.String).alias(f))
    self_reported = pl.col("status") == elsewhere
    matched = pl.col("employee").is_not_null()
    out = reg.join(per, on="person_key", how="left").select(
        "person_key",
        "street_code",
        "street_name",
        "community",
        pl.coalesce(pl.col("group").cast(pl.Int8), pl.col("extract_group").cast(pl.Int8)).alias("group"),
        pl.coalesce("extract_status", "status").alias("status"),  # at listing
        (matched | self_reported).alias("enrolled"),
        pl.when(pl.col("employee"))
        .then(pl.lit("employee"))
        .when(matched)
        .then(pl.lit("resident"))
        .when(self_reported)
        .then(pl.lit("elsewhere"))
        .otherwise(None)
        .alias("scheme"),
        visited_expr().alias("surveyed"),
        answered_expr().alias("answered"),
        pl.col("target_priority").cast(pl.String),
    )
    return out.sort("street_code", "community", "person_key", nulls_last=True)


# ---------------------------------------------------------------- the bulletin's figures

FIGURES = [
    "registry", "enrolled", "enrolled_employee", "enrolled_resident", "switched", "employee_total",
    "surveyed", "answered", "left_to_visit", "enrolled_elsewhere",
]  # fmt: skip


def target_figures() -> list[str]:
    """Per level of rules/targets.yaml: listed (``target_A``) and enrolled since (``target_A_enrolled``)."""
    return [f"target_{k}{s}" for k in policy().targets.levels for s in ("", "_enrolled")]


def _counts(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    new = (pl.col("status") == "unenrolled") & pl.col("enrolled")
    targets = []
    for k in policy().targets.levels:
        is_k = pl.col("target_priority") == k
        targets += [is_k.sum().cast(pl.Int64).alias(f"target_{k}"),
                    (is_k & new).sum().cast(pl.Int64).alias(f"target_{k}_enrolled")]  # fmt: skip
    return df.group_by(by, maintain_order=True).agg(
        *targets,
        enrolled_elsewhere=(new & (pl.col("scheme") == "elsewhere")).sum().cast(pl.Int64),
        registry=pl.len().cast(pl.Int64),
        enrolled=new.sum().cast(pl.Int64),
        enrolled_employee=(new & (pl.col("scheme") == "employee")).sum().cast(pl.Int64),
        enrolled_resident=(new & (pl.col("scheme") == "resident")).sum().cast(pl.Int64),
        switched=((pl.col("status") == "resident_upgradable") & (pl.col("scheme") == "employee"))
        .sum()
        .cast(pl.Int64),
        surveyed=pl.col("surveyed").sum().cast(pl.Int64),
        answered=pl.col("answered").sum().cast(pl.Int64),
    )


def bulletin_frame(prog: pl.DataFrame, tasks: dict[str, Task], as_of: date) -> pl.DataFrame:
    """One row per street (level ``street``), per community (``community``) and the city (``city``):
    the FIGURES, the tasks and their basis, completion (enrolled / enrolment task, employee_total /
    employee task), and the rank (streets by completion; communities within their street by the
    share of their registry enrolled)."""
    names = policy().street_names
    df = _level_counts(prog, names)
    df = _with_tasks(df, tasks)
    df = _with_completion_and_rank(df)
    order = {"street": 0, "community": 1, "city": 2}
    street_order = {c: i for i, c in enumerate(names)}
    df = df.with_columns(
        _o=pl.col("level").replace_strict(order, return_dtype=pl.Int64),
        _s=pl.col("street_code").replace_strict(street_order, default=len(names), return_dtype=pl.Int64),
        as_of=pl.lit(as_of),
    ).sort("_o", "_s", "community", nulls_last=True)
    return df.select(
        "as_of", "level", "street_code", "street_name", "community", *FIGURES,
        "task_enrolment", "task_enrolment_basis", "task_employee", "task_employee_basis",
        "completion", "employee_completion", "enrolled_share", "rank", *target_figures(),
    )  # fmt: skip


def _level_counts(prog: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame:
    """The FIGURES per street (every street of rules/streets.csv, zeros when nobody is listed),
    per community and for the city, with employee_total, left_to_visit and the street's name."""
    p = prog.with_columns(
        street_code=pl.col("street_code").fill_null(""),
        community=pl.col("community").fill_null(NO_COMMUNITY),
    )
    streets = _counts(p, ["street_code"]).with_columns(
        level=pl.lit("street"), community=pl.lit(None, pl.String)
    )
    # every street of rules/streets.csv appears, with zeros when it has nobody listed
    all_codes = pl.DataFrame({"street_code": list(names)})
    streets = all_codes.join(streets, on="street_code", how="full", coalesce=True).with_columns(
        level=pl.lit("street"), community=pl.lit(None, pl.String)
    )
    communities = _counts(p, ["street_code", "community"]).with_columns(level=pl.lit("community"))
    city = _counts(p.with_columns(_all=pl.lit(1)), ["_all"]).drop("_all")
    city = city.with_columns(
        level=pl.lit("city"), street_code=pl.lit(None, pl.String), community=pl.lit(None, pl.String)
    )
    extra = ["enrolled_elsewhere", *target_figures()]
    cols = ["level", "street_code", "community", *FIGURES[:5], "surveyed", "answered", *extra]
    df = pl.concat(
        [d.select([c for c in cols if c in d.columns]) for d in (streets, communities, city)],
        how="diagonal_relaxed",
    )
    df = df.with_columns(
        [
            pl.col(c).fill_null(0).cast(pl.Int64)
            for c in ("registry", *FIGURES[1:5], "surveyed", "answered", *extra)
        ]
    )
    df = df.with_columns(
        employee_total=pl.col("enrolled_employee") + pl.col("switched"),
        left_to_visit=pl.col("registry") - pl.col("surveyed"),
        street_name=pl.when(pl.col("level") == "city").then(pl.lit(CITY)).otherwise(street_name_expr()),
    )
    return df


def _with_tasks(df: pl.DataFrame, tasks: dict[str, Task]) -> pl.DataFrame:
    """Each street's tasks and their basis; the city's tasks are the streets' sum."""
    t_en = {c: t.enrolment for c, t in tasks.items()}
    t_em = {c: t.employee for c, t in tasks.items()}
    b_en = {c: t.enrolment_basis for c, t in tasks.items()}
    b_em = {c: t.employee_basis for c, t in tasks.items()}
    is_street = pl.col("level") == "street"
    code = pl.col("street_code")
    df = df.with_columns(
        task_enrolment=pl.when(is_street).then(
            code.replace_strict(t_en, default=None, return_dtype=pl.Int64)
        ),
        task_employee=pl.when(is_street).then(code.replace_strict(t_em, default=None, return_dtype=pl.Int64)),
        task_enrolment_basis=pl.when(is_street).then(
            code.replace_strict(b_en, default=None, return_dtype=pl.String)
        ),
        task_employee_basis=pl.when(is_street).then(
            code.replace_strict(b_em, default=None, return_dtype=pl.String)
        ),
    )
    street_tasks = df.filter(is_street)
    city_en = street_tasks["task_enrolment"].drop_nulls().sum()
    city_em = street_tasks["task_employee"].drop_nulls().sum()
    is_city = pl.col("level") == "city"
    df = df.with_columns(
        task_enrolment=pl.when(is_city).then(pl.lit(city_en, pl.Int64)).otherwise(pl.col("task_enrolment")),
        task_employee=pl.when(is_city).then(pl.lit(city_em, pl.Int64)).otherwise(pl.col("task_employee")),
    )
    return df


def _with_completion_and_rank(df: pl.DataFrame) -> pl.DataFrame:
    """Completion against the tasks, the share enrolled, and the rank (streets by completion;
    communities within their street by the share of their registry enrolled)."""
    is_street = pl.col("level") == "street"
    df = df.with_columns(
        completion=pl.when(pl.col("task_enrolment") > 0).then(pl.col("enrolled") / pl.col("task_enrolment")),
        employee_completion=pl.when(pl.col("task_employee") > 0).then(
            pl.col("employee_total") / pl.col("task_employee")
        ),
        enrolled_share=pl.when(pl.col("registry") > 0).then(pl.col("enrolled") / pl.col("registry")),
    )
    # rank: streets by completion (then enrolled); communities within the street by the share enrolled
    rank_street = (
        pl.struct(pl.col("completion").fill_null(-1.0), pl.col("enrolled"))
        .rank("min", descending=True)
        .over(pl.col("level"), pl.col("street_code") == "")  # people with no street are not ranked
    )
    rank_comm = (
        pl.struct(pl.col("enrolled_share").fill_null(-1.0), pl.col("enrolled"))
        .rank("min", descending=True)
        .over(["level", "street_code"])
    )
    df = df.with_columns(
        rank=pl.when(is_street & (pl.col("street_code") != ""))
        .then(rank_street)
        .when(pl.col("level") == "community")
        .then(rank_comm)
        .otherwise(None)
        .cast(pl.Int64)
    )
    return df


def read_history(registry: Path) -> pl.DataFrame | None:
    folder = registry / HISTORY
    if not folder.is_dir():
        return None
    parts = []
    for p in sorted(folder.glob("*.parquet")):
        try:
            parts.append(pl.read_parquet(p))
        except Exception:  # a damaged entry: skip it, the bulletin says so
            continue
    return pl.concat(parts, how="diagonal_relaxed") if parts else None


def with_changes(current: pl.DataFrame, history: pl.DataFrame | None) -> tuple[pl.DataFrame, date | None]:
    """Add change_enrolled / change_employee / change_completion against the latest earlier bulletin of the year."""
    as_of = current["as_of"][0]
    prev_date: date | None = None
    if history is not None and history.height:
        earlier = history.filter((pl.col("as_of") < as_of) & (pl.col("as_of").dt.year() == as_of.year))
        if earlier.height:
            prev_date = cast(date, earlier["as_of"].max())
            prev = earlier.filter(pl.col("as_of") == prev_date).select(
                "level", "street_code", "community",
                pl.col("enrolled").alias("_p_en"), pl.col("employee_total").alias("_p_em"),
                pl.col("completion").alias("_p_c"),
            )  # fmt: skip
            current = current.join(
                prev, on=["level", "street_code", "community"], how="left", nulls_equal=True
            )
            current = current.with_columns(
                change_enrolled=pl.col("enrolled") - pl.col("_p_en"),
                change_employee=pl.col("employee_total") - pl.col("_p_em"),
                change_completion=pl.col("completion") - pl.col("_p_c"),
            ).drop("_p_en", "_p_em", "_p_c")
            return current, prev_date
    return current.with_columns(
        change_enrolled=pl.lit(None, pl.Int64),
        change_employee=pl.lit(None, pl.Int64),
        change_completion=pl.lit(None, pl.Float64),
    ), prev_date


def year_history(current: pl.DataFrame, history: pl.DataFrame | None) -> pl.DataFrame:
    """Every bulletin of the current one's year up to it (street and city rows), this one included."""
    as_of = current["as_of"][0]
    keep = ["as_of", "level", "street_code", "street_name", "community", *FIGURES, "task_enrolment",
            "task_employee", "completion", "employee_completion"]  # fmt: skip
    frames = [current.select(keep)]
    if history is not None and history.height:
        h = history.filter((pl.col("as_of") < as_of) & (pl.col("as_of").dt.year() == as_of.year))
        if h.height:
            frames.insert(0, h.select([c for c in keep if c in h.columns]))
    return pl.concat(frames, how="diagonal_relaxed").filter(pl.col("level") != "community").sort("as_of")


# ---------------------------------------------------------------- the command


def run_progress(
    registry: Path,
    files: list[Path],
    out_dir: Path,
    *,
    as_of: date,
    force: bool = False,
    progress=lambda m: None,
) -> ProgressReport:
    """Match the extracts against the registry and publish OUT_DIR (see the module docstring)."""
    from ..core import fileio
    from ..core.fileio import (
        check_output_target,
        output_lock,
        published_persons,
        publishing,
        write_parquet_atomically,
    )
    from ..report.bulletin import write_bulletin_html, write_bulletin_xlsx
    from ..stages.publish import write_frame_csv

    registry = Path(registry)
    persons_path = published_persons(
        registry, name="", hint=_("Give the published registry (the OUT_DIR of kuomian refresh).")
    )
    if not files:
        raise KuomianError(
            _("give at least one enrolment extract (the new 参保 file of the insurance bureau).")
        )
    resolved = Path(out_dir).resolve()
    if resolved == registry.resolve() or registry.resolve() in resolved.parents:
        raise KuomianError(
            _("--out {out}: that is inside the registry; choose a folder of its own.").format(out=resolved)
        )
    out_dir = check_output_target(out_dir, force=force, inputs=tuple(Path(f) for f in files), kind="progress")

    report = ProgressReport(out_dir=out_dir, as_of=as_of, files=[Path(f).name for f in files])
    persons = pl.read_parquet(persons_path)
    std, rows_read = read_extracts([Path(f) for f in files], progress)
    progress(
        _("matching {rows} rows against {persons} persons").format(rows=std.height, persons=persons.height)
    )
    rows = match_extract(std, persons)
    report.rows_read = sum(rows_read.values())
    report.outcomes.update(dict(rows.group_by("outcome").len().iter_rows()))

    recon = reconciliation(rows, rows_read)
    report.balanced = bool(recon["balanced"].all())
    from .survey import registry_identity

    prog = progress_frame(persons, rows, registry_identity(registry)[1])
    indicators = read_indicators(registry)
    if indicators is None:
        report.notes.append(
            _("indicators.csv missing in the registry: streets without a task in rules/tasks.yaml have none")
        )
    tasks = tasks_for(as_of.year, indicators)
    current = bulletin_frame(prog, tasks, as_of)
    history = read_history(registry)
    current, report.previous = with_changes(current, history)
    side_by_side = year_history(current, history)
    report.bulletins = sorted(set(side_by_side["as_of"].to_list()))

    city = current.filter(pl.col("level") == "city").row(0, named=True)
    report.registry = city["registry"]
    report.enrolled = city["enrolled"]
    report.by_scheme.update(
        {"employee": city["enrolled_employee"], "resident": city["enrolled_resident"],
         "elsewhere": city["enrolled_elsewhere"]}
    )  # fmt: skip
    report.switched = city["switched"]
    report.surveyed = city["surveyed"]

    with publishing(out_dir, force=force, progress=progress) as stage:
        prog.drop("answered").write_parquet(stage / "progress.parquet")
        rows.select(
            "source", "file", "sheet", "row", "outcome", "person_key", "match_rule", "reason"
        ).write_parquet(stage / "progress_rows.parquet")
        write_frame_csv(stage / "reconciliation.csv", recon, RECON_HEADERS)
        progress(_("writing bulletin.xlsx and bulletin.html"))
        write_bulletin_xlsx(stage / "bulletin.xlsx", current, side_by_side, recon, report)
        write_bulletin_html(stage / "bulletin.html", current, side_by_side, recon, report)
        # the history entry goes with the registry (under its lock: not while a survey import writes)
        with output_lock(registry.resolve(), wait=fileio.IMPORT_WAIT):
            folder = registry / HISTORY
            folder.mkdir(mode=0o700, exist_ok=True)
            write_parquet_atomically(current, folder / f"{as_of.isoformat()}.parquet")
        # marks OUT_DIR as kuomian's, so that a later --force may replace it (and nothing else)
        (stage / "manifest.json").write_text(
            json.dumps({"tool": "kuomian", "kind": "progress", "as_of": as_of.isoformat()}),
            encoding="utf-8",
        )
    return report


RECON_HEADERS = PROGRESS_RECON_HEADERS


def reconciliation(rows: pl.DataFrame, rows_read: dict[str, int]) -> pl.DataFrame:
    """Per file: rows read (by the reader) against the sum of the outcomes."""
    counts = (
        rows.group_by("file", "outcome").len().pivot(on="outcome", index="file", values="len").fill_null(0)
    )
    for o in OUTCOMES:
        if o not in counts.columns:
            counts = counts.with_columns(pl.lit(0, dtype=pl.UInt32).alias(o))
    read = pl.DataFrame(
        {"file": list(rows_read), "rows_read": list(rows_read.values())},
        schema={"file": pl.String, "rows_read": pl.Int64},
    )
    out = read.join(counts, on="file", how="full", coalesce=True).fill_null(0)
    total = pl.sum_horizontal([pl.col(o).cast(pl.Int64) for o in OUTCOMES])
    return out.with_columns(balanced=pl.col("rows_read") == total).select(
        "file", "rows_read", *OUTCOMES, "balanced"
    )
