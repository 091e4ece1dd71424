"""``kuomian compare``: what changed between two published runs.

Entry point: :func:`compare_runs`. Joins the two ``persons.parquet`` on the
ID number and sorts the people of either registry into

* 新参保 ``newly_enrolled`` — in the OLD registry, now receiving a pension or
  enrolled (employee or resident scheme): the campaign's result;
* 新入库 ``newly_listed`` — in the NEW registry, not in the OLD one;
* 其他原因出库 ``left_registry`` — in the OLD registry, not in the NEW one and
  not enrolled: excluded (deceased, moved out, student, …) or no longer in the
  population;
* 群体变化 ``group_changed`` — in both registries, another priority group;
* 街道变化 ``street_changed`` — in both registries, another street;

then totals per street and the two ``indicators.csv`` side by side. DIFF_DIR
holds one CSV per list (UTF-8 with BOM, Chinese headers, masked IDs),
``streets.csv``, ``indicators.csv`` and ``compare.html`` (self-contained); it
is published like a refresh: staged beside DIFF_DIR, fsynced, renamed into
place, owner-only.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..core.errors import KuomianError
from ..core.fileio import published_persons
from ..core.i18n import _
from ..core.ids import mask_id_expr, person_refs, shared_numbers
from ..core.labels import CITY, CITY_CODE, NOT_IN_POPULATION, group_labels, status_labels, status_text
from ..core.labels import COMPARE_INDICATORS as INDICATORS
from ..core.labels import COMPARE_LISTS as LISTS
from ..core.labels import COMPARE_PERSON_HEADERS as PERSON_HEADERS
from ..core.labels import COMPARE_RATES as RATES
from ..core.labels import COMPARE_STREET_HEADERS as STREET_HEADERS
from ..core.labels import STREET_CODE_HEADER as CODE_HEADER
from ..core.labels import UNASSIGNED_STREET as UNASSIGNED_LABEL
from ..core.policy import policy


@dataclass
class CompareReport:
    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    registry_old: int = 0
    registry_new: int = 0
    as_of_old: str = ""
    as_of_new: str = ""
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = _(", ").join(f"{LISTS[k]} {v}" for k, v in self.counts.items())
        return _("compare: registry {old} → {new}; {lists}").format(
            old=self.registry_old, new=self.registry_new, lists=parts
        )


def _read_persons(folder: Path, which: str) -> pl.DataFrame:
    p = published_persons(folder, name=which, hint=_("Give two OUT_DIRs of kuomian refresh."))
    cols = ["id_number", "person_key", "name", "street_code", "street_name", "community", "status",
            "exclusion_reason", "group"]  # fmt: skip
    have = pl.read_parquet_schema(p)
    cols += ["shared_id"] if "shared_id" in have else []
    return pl.read_parquet(p, columns=cols).with_columns(pl.col("group").cast(pl.Int64))


def _as_of(folder: Path) -> str:
    try:
        return json.loads((Path(folder) / "manifest.json").read_text("utf-8")).get("as_of", "") or ""
    except (OSError, ValueError):
        return ""


def changes_frame(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """One row per person of either run with the category flags (full IDs: never written as is)."""
    # who is who: the ID, told apart by name where either registry has it shared (重号)
    both = shared_numbers(old, new)
    o = old.rename({c: f"o_{c}" for c in old.columns if c != "id_number"})
    n = new.rename({c: f"n_{c}" for c in new.columns if c != "id_number"})
    o = o.with_columns(_ref=person_refs(old, both))
    n = n.with_columns(_ref=person_refs(new, both)).drop("id_number")
    j = o.join(n, on="_ref", how="full", coalesce=True)
    j = j.with_columns(id_number=pl.coalesce("id_number", pl.col("_ref").str.slice(0, 18))).drop("_ref")
    p = policy()
    was = pl.col("o_status").is_in(list(p.statuses.registry)).fill_null(False)
    now = pl.col("n_status").is_in(list(p.statuses.registry)).fill_null(False)
    enrolled = pl.col("n_status").is_in(list(p.enrolled_outside_registry)).fill_null(False)
    j = j.with_columns(
        newly_enrolled=was & enrolled,
        newly_listed=now & ~was,
        left_registry=was & ~now & ~enrolled,
        group_changed=was & now & pl.col("o_group").ne_missing(pl.col("n_group")),
        street_changed=was & now & pl.col("o_street_code").ne_missing(pl.col("n_street_code")),
        in_old=was,
        in_new=now,
    )
    return j.filter(pl.col("in_old") | pl.col("in_new"))


def _label_exprs() -> list[pl.Expr]:
    groups = group_labels()
    statuses = status_labels()

    def st(prefix: str) -> pl.Expr:
        return pl.col(f"{prefix}_status").replace_strict(
            statuses, default=pl.col(f"{prefix}_status"), return_dtype=pl.String
        )

    def gr(prefix: str) -> pl.Expr:
        return pl.col(f"{prefix}_group").replace_strict(groups, default=None, return_dtype=pl.String)

    def street(prefix: str) -> pl.Expr:
        return (
            pl.when(pl.col(f"{prefix}_status").is_null())
            .then(pl.lit(""))
            .otherwise(pl.col(f"{prefix}_street_name").fill_null(UNASSIGNED_LABEL))
        )

    return [
        pl.coalesce("n_person_key", "o_person_key").alias("person_key"),
        pl.coalesce("n_name", "o_name").alias("name"),
        mask_id_expr(pl.col("id_number")).alias("id_masked"),
        street("o").alias("o_street"),
        street("n").alias("n_street"),
        pl.coalesce("n_community", "o_community").alias("community"),
        st("o").alias("o_status"),
        st("n").fill_null(pl.lit(NOT_IN_POPULATION)).alias("n_status"),
        gr("o").alias("o_group"),
        gr("n").alias("n_group"),
    ]


def person_list(changes: pl.DataFrame, which: str) -> pl.DataFrame:
    part = changes.filter(pl.col(which))
    if which == "left_registry":
        notes = [
            status_text(s, r) if s else NOT_IN_POPULATION
            for s, r in zip(part["n_status"].to_list(), part["n_exclusion_reason"].to_list(), strict=True)
        ]
    elif which == "newly_listed":
        notes = [
            "首次进入人口名单" if s is None else f"原为{status_text(s, r)}"
            for s, r in zip(part["o_status"].to_list(), part["o_exclusion_reason"].to_list(), strict=True)
        ]
    else:
        notes = [""] * part.height
    out = part.select(*_label_exprs(), pl.Series("note", notes, dtype=pl.String))
    sort_street = "n_street" if which in ("newly_listed", "group_changed", "street_changed") else "o_street"
    return out.sort([sort_street, "community", "name", "person_key"], nulls_last=True).select(
        list(PERSON_HEADERS)
    )


def street_totals(changes: pl.DataFrame) -> pl.DataFrame:
    names = policy().street_names
    o_code = pl.col("o_street_code").fill_null("")
    n_code = pl.col("n_street_code").fill_null("")

    def count(code: pl.Expr, cond: pl.Expr, name: str) -> pl.DataFrame:
        return changes.filter(cond).group_by(code.alias("street_code")).agg(pl.len().alias(name))

    parts = [
        count(o_code, pl.col("in_old"), "registry_old"),
        count(n_code, pl.col("in_new"), "registry_new"),
        count(o_code, pl.col("newly_enrolled"), "newly_enrolled"),
        count(n_code, pl.col("newly_listed"), "newly_listed"),
        count(o_code, pl.col("left_registry"), "left_registry"),
        count(n_code, pl.col("group_changed"), "group_changed"),
        count(n_code, pl.col("street_changed"), "moved_in"),
        count(o_code, pl.col("street_changed"), "moved_out"),
    ]
    codes = sorted(set(names) | {c for p in parts for c in p["street_code"].to_list()})
    out = pl.DataFrame({"street_code": codes}, schema={"street_code": pl.String})
    for p in parts:
        out = out.join(p, on="street_code", how="left")
    value_cols = [c for c in STREET_HEADERS if c != "street_name"]
    out = out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in value_cols])
    out = out.with_columns(
        street_name=pl.col("street_code").replace_strict(
            names, default=UNASSIGNED_LABEL, return_dtype=pl.String
        )
    )
    # streets of the bureau always, 未分配街道 only when someone is there
    out = out.filter(pl.col("street_code").is_in(list(names)) | (pl.sum_horizontal(value_cols) > 0))
    city = out.select(pl.lit(CITY_CODE).alias("street_code"), pl.lit(CITY).alias("street_name"),
                      *[pl.col(c).sum() for c in value_cols])  # fmt: skip
    both = pl.concat([out.select(city.columns), city], how="vertical")
    return both.select(*STREET_HEADERS, is_city=pl.col("street_code") == CITY_CODE)


def _read_indicators(folder: Path) -> pl.DataFrame | None:
    p = Path(folder) / "indicators.csv"
    if not p.exists():
        return None
    df = pl.read_csv(p, infer_schema=False, encoding="utf8-lossy")
    df = df.rename({c: c.lstrip("\ufeff") for c in df.columns})
    if "街道" not in df.columns:
        return None
    keep = [c for c in INDICATORS if c in df.columns]
    # the code picks the city's row (a run without the column: no row is the city's)
    code = pl.col(CODE_HEADER) if CODE_HEADER in df.columns else pl.lit(None, pl.String)
    return df.select(
        "街道", *[pl.col(c).cast(pl.Float64, strict=False) for c in keep], code.alias("street_code")
    )


def indicators_side_by_side(old_dir: Path, new_dir: Path) -> pl.DataFrame | None:
    o, n = _read_indicators(old_dir), _read_indicators(new_dir)
    if o is None or n is None:
        return None
    metrics = [c for c in INDICATORS if c in o.columns and c in n.columns]
    j = o.select("街道", *metrics, "street_code").join(
        n.select("街道", *metrics, "street_code"), on="街道", how="full", coalesce=True, suffix="_new"
    )
    order = {name: i for i, name in enumerate(n["街道"].to_list())}
    j = j.with_columns(
        _o=pl.col("街道").replace_strict(order, default=len(order), return_dtype=pl.Int64)
    ).sort("_o")
    cols = [pl.col("街道"), pl.coalesce("street_code_new", "street_code").alias("street_code")]
    for m in metrics:
        digits = 4 if m in RATES else 0
        old_v, new_v = pl.col(m), pl.col(f"{m}_new")
        cols += [
            old_v.round(digits).alias(f"{m}(原)"),
            new_v.round(digits).alias(f"{m}(现)"),
            (new_v - old_v).round(digits).alias(f"{m}变化"),
        ]
    out = j.select(cols)
    counts = [
        c for c in out.columns if not any(c.startswith(r) for r in RATES) and c not in ("街道", "street_code")
    ]
    return out.with_columns([pl.col(c).cast(pl.Int64) for c in counts])


# ---------------------------------------------------------------- the page


def compare_html(report: CompareReport, streets: pl.DataFrame, indicators: pl.DataFrame | None) -> str:
    from ..report.html import CSS, _table, grouped_bar_chart

    esc = html.escape
    body = [
        "<h1>安宁市扩面对象实名库 — 两次更新对比</h1>",
        f"<p class='note'>原: {esc(report.as_of_old or '—')} · 现: {esc(report.as_of_new or '—')}</p>",
        "<section id='summary'><h2>一、变化概况</h2><table><tr><th>项目</th><th>人数</th><th>明细文件</th></tr>",
        f"<tr><td>原实名库</td><td>{report.registry_old}</td><td></td></tr>",
        f"<tr><td>现实名库</td><td>{report.registry_new}</td><td></td></tr>",
    ]
    for k, label in LISTS.items():
        body.append(f"<tr><td>{esc(label)}</td><td>{report.counts.get(k, 0)}</td><td>{k}.csv</td></tr>")
    body.append("</table></section>")
    body.append("<section id='streets'><h2>二、各街道变化</h2>")
    body.append(_table(streets, STREET_HEADERS, total="is_city"))
    body.append("</section>")
    if indicators is not None:
        body.append("<section id='indicators'><h2>三、指标对比</h2>")
        rows = indicators.filter(pl.col("street_code").ne_missing(CITY_CODE))
        if "参保率(原)" in indicators.columns:
            body.append(
                grouped_bar_chart(
                    rows["街道"].to_list(),
                    {"原": rows["参保率(原)"].to_list(), "现": rows["参保率(现)"].to_list()},
                    "参保率 原/现",
                )
            )
        fmt = {c: _pct_or_pp(c) for c in indicators.columns if any(c.startswith(r) for r in RATES)}
        shown = indicators.with_columns(is_city=pl.col("street_code").eq_missing(CITY_CODE)).drop(
            "street_code"
        )
        body.append(_table(shown, None, fmt, total="is_city"))
        body.append("</section>")
    return (
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>实名库对比</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def _pct_or_pp(col: str):
    if col.endswith("变化"):
        return lambda v: f"{v * 100:+.1f}个百分点"
    return lambda v: f"{v * 100:.1f}%"


# ---------------------------------------------------------------- the command


def compare_runs(
    old_dir: Path, new_dir: Path, out_dir: Path, *, force: bool = False, progress=lambda m: None
) -> CompareReport:
    """Compare two OUT_DIRs and publish DIFF_DIR (see the module docstring)."""
    from ..core.fileio import check_output_target, publishing

    old_dir, new_dir = Path(old_dir), Path(new_dir)
    old = _read_persons(old_dir, "OLD_OUT_DIR")
    new = _read_persons(new_dir, "NEW_OUT_DIR")
    if Path(out_dir).resolve() in (old_dir.resolve(), new_dir.resolve()):
        raise KuomianError(
            _("--out {out}: that is one of the runs being compared; choose another folder.").format(
                out=out_dir
            )
        )
    out_dir = check_output_target(out_dir, force=force, inputs=(old_dir, new_dir), kind="DIFF_DIR")
    report = CompareReport(out_dir=out_dir, as_of_old=_as_of(old_dir), as_of_new=_as_of(new_dir))
    progress(_("comparing persons"))
    changes = changes_frame(old, new)
    report.registry_old = int(changes["in_old"].sum())
    report.registry_new = int(changes["in_new"].sum())
    streets = street_totals(changes)
    indicators = indicators_side_by_side(old_dir, new_dir)
    if indicators is None:
        report.notes.append(_("indicators.csv missing in one of the runs: no indicator comparison"))

    from ..core.cells import write_people_csv
    from ..stages.publish import write_frame_csv

    with publishing(out_dir, force=force, progress=progress) as stage:
        for k in LISTS:
            lst = person_list(changes, k)
            report.counts[k] = lst.height
            write_frame_csv(stage / f"{k}.csv", lst, PERSON_HEADERS)
            report.files.append(f"{k}.csv")
        write_frame_csv(stage / "streets.csv", streets, STREET_HEADERS)
        report.files.append("streets.csv")
        if indicators is not None:
            write_people_csv(stage / "indicators.csv", indicators.drop("street_code"))
            report.files.append("indicators.csv")
        (stage / "compare.html").write_text(compare_html(report, streets, indicators), encoding="utf-8")
        report.files.append("compare.html")
        # marks DIFF_DIR as kuomian's, so that a later --force may replace it (and nothing else)
        (stage / "manifest.json").write_text(
            json.dumps({"tool": "kuomian", "kind": "compare", "files": report.files}, ensure_ascii=False),
            encoding="utf-8",
        )
    return report
