"""``kuomian check``: the ad-hoc comparison (数据比对) of any list against a published run.

Entry point: :func:`check_list`. An office sends a list (xlsx/csv, any
encoding the loader reads) with at least a 姓名 column and usually a
身份证号; its headers are found by the common aliases of
``sources/_common.yaml`` (身份证号, 姓名, 街道, 社区) plus 出生日期 when present.
The rows are standardised by the refresh's own functions and matched against
the published ``persons.parquet`` with the refresh's own cascade
(:func:`kuomian.stages.link.match_to_persons`: the same steps, the rules, thresholds and
name keys of ``rules/matching.yaml``), then written back as the same list — every
original column, in order, exactly as read — plus

* 匹配结果   — the label of the rule that matched (rules/matching.yaml),
  待人工核实 when the cascade sends the row to review, or 未匹配;
* 参保状态   — the person's status label (rules/statuses.yaml);
* 重点群体   — 第N类 … for registry persons;
* 所属街道   — the person's street;
* 是否在实名库 — 是 / 否 (blank for rows a person must look at).

Nothing is added that could reveal an ID: the result holds the list's own
cells and labels only. RESULT is ``.xlsx`` (every cell text) or ``.csv``
(UTF-8 with BOM), written atomically and owner-only.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from ..core.cells import CUT_MARK, MAX_CELL, write_people_csv
from ..core.config import Field, Source
from ..core.errors import KuomianError, OutputExists
from ..core.i18n import _
from ..core.ids import person_refs
from ..core.labels import CHECK_RESULT_COLUMNS as RESULT_COLUMNS
from ..core.labels import CHECK_REVIEW as REVIEW
from ..core.labels import CHECK_UNMATCHED as UNMATCHED
from ..core.labels import UNASSIGNED_STREET, group_labels, rule_labels, status_text
from ..core.policy import policy

# ---------------------------------------------------------------- the list as a source


def list_source() -> Source:
    """A source for any list: the common identity fields (none required but 姓名) plus 出生日期."""
    common = policy().common_fields
    fields: dict[str, Field] = {}
    for name in ("id_number", "name", "street", "community"):
        fields[name] = replace(common[name], required=name == "name", vocabulary=None)
    bd = policy().sources["household"].fields.get("birth_date")
    fields["birth_date"] = Field("birth_date", bd.aliases if bd else ("出生日期",), "date", False)
    return Source(name="check", label="比对名单", required=False, role="match_only", globs=(), fields=fields)


@dataclass
class CheckReport:
    list_file: str
    out: Path
    rows: int = 0
    results: Counter = field(default_factory=Counter)  # 匹配结果 -> rows
    in_registry: int = 0
    skipped: int = 0  # empty and total rows

    def summary(self) -> str:
        parts = _(", ").join(f"{k} {v}" for k, v in self.results.most_common())
        return _("check: {rows} rows; {results}; in the registry {in_registry}").format(
            rows=self.rows, results=parts, in_registry=self.in_registry
        )


def check_frame(list_file: Path, persons: pl.DataFrame) -> tuple[list[str], list[list[str]], CheckReport]:
    """(header, records) of the result: the list as read plus the five result columns."""
    from ..readers import FileInfo
    from ..stages.match_list import match_list, read_list

    src = list_source()
    tables: list = []  # the sheets read, as read: every original cell goes back out
    std = read_list(list_file, src, FileInfo(list_file, src.name, "override"), tables_out=tables)
    decisions = match_list(std, persons, pl.col("row_state") != "quarantined")

    # by person_id as match_list returns it (a shared number's holders told apart: person_refs)
    people = {
        r["person_id"]: r
        for r in persons.select(
            person_refs(persons).alias("person_id"),
            "status",
            "exclusion_reason",
            "group",
            "street_name",
            "street_code",
        ).iter_rows(named=True)
    }
    rules = rule_labels()
    groups = group_labels()
    registry_statuses = policy().statuses.registry
    by_row = {r[0]: r[1:] for r in decisions.iter_rows()}
    report = CheckReport(list_file=list_file.name, out=Path())
    results: list[list[str]] = []
    for row_id, state, reason in std.select("row_id", "row_state", "reason").iter_rows():
        if state == "quarantined" and reason in ("empty_row", "total_row"):
            results.append([""] * len(RESULT_COLUMNS))
            report.skipped += 1
            continue
        report.rows += 1
        outcome, pid, rule = by_row.get(row_id, (None, None, None))
        if outcome == "linked" and pid in people:
            p = people[pid]
            listed = p["status"] in registry_statuses
            res = [
                rules.get(rule, rule or ""),
                status_text(p["status"], p["exclusion_reason"]),
                groups.get(p["group"], "") if p["group"] is not None else "",
                p["street_name"] or UNASSIGNED_STREET,
                "是" if listed else "否",
            ]
            report.in_registry += listed
        elif outcome == "review":
            res = [REVIEW, "", "", "", ""]
        else:
            res = [UNMATCHED, "", "", "", "否"]
        report.results[res[0]] += 1
        results.append(res)

    # The list's own columns in order (the union over its sheets, by header); with several sheets,
    # each row also says its sheet and row number.
    names: list[str] = []
    for t in tables:
        names += [h for h in t.header if h not in names]
    where = ["工作表", "行号"] if len(tables) > 1 else []
    added = [c if c not in names else f"{c}(比对)" for c in [*where, *RESULT_COLUMNS]]
    originals = []
    for t in tables:
        pos = {h: j for j, h in reversed(list(enumerate(t.header)))}
        for i, row in enumerate(t.body.rows()):
            cells = [row[pos[h]] if h in pos and pos[h] < len(row) else None for h in names]
            originals.append(
                ["" if v is None else str(v) for v in cells]
                + ([t.sheet, str(t.first_row + i)] if where else [])
            )
    records = [orig + res for orig, res in zip(originals, results, strict=True)]
    return [*names, *added], records, report


def _write_csv(fh, header: list[str], records: list[list[str]]) -> None:
    # every cell of the office's list is text: through the one safe writer, IDs left as they are
    names = [f"c{j}" for j in range(len(header))]
    df = pl.DataFrame(records, schema={n: pl.String for n in names}, orient="row")
    write_people_csv(fh, df.rename(dict(zip(names, header, strict=True))), redact=False)


def _write_xlsx(fh, header: list[str], records: list[list[str]]) -> None:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False, "strings_to_urls": False})
    ws = wb.add_worksheet("比对结果")
    text = wb.add_format({"num_format": "@"})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "num_format": "@"})
    new_head = wb.add_format({"bold": True, "bg_color": "#FCE4D6", "border": 1, "num_format": "@"})
    n_orig = len(header) - len(RESULT_COLUMNS)
    for j, h in enumerate(header):
        ws.write_string(0, j, h, head if j < n_orig else new_head)
    for i, rec in enumerate(records, start=1):
        for j, v in enumerate(rec):
            if v == "":
                ws.write_blank(i, j, None, text)
            else:
                ws.write_string(
                    i, j, v if len(v) <= MAX_CELL else v[: MAX_CELL - len(CUT_MARK)] + CUT_MARK, text
                )
    ws.set_column(0, len(header) - 1, 14, text)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(records), 1), len(header) - 1)
    wb.close()
    fh.write(buf.getvalue())


def check_list(
    list_file: Path, registry: Path, out: Path, *, force: bool = False, progress=lambda m: None
) -> CheckReport:
    """Match ``list_file`` against ``registry/persons.parquet`` and write ``out`` (see the module docstring)."""
    from ..core.fileio import published_folder_holding, published_persons, sweep_dead_runs, write_atomically

    sweep_dead_runs(progress)

    list_file, registry, out = Path(list_file), Path(registry), Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise KuomianError(
            _("--out {out}: give a file name ending in .xlsx or .csv, e.g. 名单_比对结果.xlsx.").format(
                out=out
            )
        )
    persons_path = published_persons(
        registry, name="--registry", hint=_("Point it at a published OUT_DIR (kuomian refresh).")
    )
    if not list_file.is_file():
        raise KuomianError(
            _("{path}: no such file. Give the list to compare (.xlsx or .csv).").format(path=list_file)
        )
    if out.resolve() == list_file.resolve():
        raise KuomianError(
            _("--out {out}: that is the list itself; choose another file name for the result.").format(
                out=out
            )
        )
    inside = published_folder_holding(out)
    if inside is not None:  # --force or not: a published run's files are the run's
        raise KuomianError(
            _(
                "--out {out}: it is inside {inside}, a folder kuomian published, and a result written there "
                "would change that run. Choose a file outside it."
            ).format(out=out, inside=inside)
        )
    if out.exists() and not force:
        raise OutputExists(
            _("{out} already exists. Add --force to replace it, or choose another --out.").format(out=out)
        )
    if not out.parent.is_dir():
        raise KuomianError(
            _("--out {out}: the folder {folder} does not exist.").format(out=out, folder=out.parent)
        )
    progress(_("reading {file}").format(file=list_file.name))
    persons = pl.read_parquet(persons_path)
    header, records, report = check_frame(list_file, persons)
    report.out = out
    progress(_("writing {file}").format(file=out.name))
    writer = _write_xlsx if suffix == ".xlsx" else _write_csv
    write_atomically(out, lambda fh: writer(fh, header, records))
    return report
