"""Speed of the hand-off workbooks: this writer (kuomian.core.xlsx) against xlsxwriter.

Writes every street's hand-off workbook (the whole street, then one sheet per community,
as :func:`kuomian.report.handoff.write_handoff_xlsx` lays them out) from a published
``persons.parquet`` and reports the best of ``--repeat`` wall times of:

* ``kuomian``: the writer in use (shared strings, theme; sheet XML built by polars);
* ``--old FILE``: another version of ``core/xlsx.py`` (e.g. ``git show HEAD~1:pipeline/core/xlsx.py``);
* ``xlsxwriter`` and ``xlsxwriter constant_memory``: the same cells, text as text, the same
  drop-downs, frozen panes and print setup, one ``write_string``/``write_number`` per cell.

Usage::

    python -m bench.xlsx_speed OUT_DIR/registry/persons.parquet [--old old_xlsx.py] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import polars as pl

import kuomian.core.xlsx  # noqa: F401  (the writer in use; --old swaps it in sys.modules)
from kuomian.core.cells import people_frame
from kuomian.report import handoff


def _bodies(persons: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    df = handoff.handoff_frame(persons)
    out = []
    for (_code, name), part in df.group_by(["street_code", "street_name"], maintain_order=True):
        out.append((name or "未分配街道", people_frame(part.drop("street_code", "street_name"), csv=False)))
    return out


def _load(path: Path) -> ModuleType:
    """Another version of ``kuomian.core.xlsx`` (its relative imports resolve in kuomian.core)."""
    spec = importlib.util.spec_from_file_location("kuomian.core.xlsx", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    saved = sys.modules["kuomian.core.xlsx"]
    sys.modules["kuomian.core.xlsx"] = mod  # dataclasses look their module up while it runs
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules["kuomian.core.xlsx"] = saved
    return mod


def _kuomian(folder: Path, bodies: list[tuple[str, pl.DataFrame]], module: ModuleType | None = None) -> None:
    """The hand-off workbooks as publish writes them (handoff imports the writer when called)."""
    saved = sys.modules["kuomian.core.xlsx"]
    if module is not None:
        sys.modules["kuomian.core.xlsx"] = module
    try:
        for i, (street, body) in enumerate(bodies):
            handoff.write_handoff_xlsx(folder / f"{i}.xlsx", body, street=street)
    finally:
        sys.modules["kuomian.core.xlsx"] = saved


def _xlsxwriter(folder: Path, bodies: list[tuple[str, pl.DataFrame]], constant_memory: bool) -> None:
    import xlsxwriter

    for i, (street, body) in enumerate(bodies):
        wb = xlsxwriter.Workbook(
            str(folder / f"x{i}.xlsx"),
            {"constant_memory": constant_memory, "strings_to_numbers": False, "strings_to_formulas": False},
        )
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        text = wb.add_format({"num_format": "@", "valign": "top"})
        widths = handoff.handoff_widths(body)
        drops = {body.columns.index(c.header): list(c.allowed) for c in handoff.survey_columns() if c.allowed}
        parts = [("入户调查", body)]
        if "社区" in body.columns:
            parts += [(k or "未填社区", g) for (k,), g in body.group_by("社区", maintain_order=True)]
        for name, part in parts:
            ws = wb.add_worksheet(name[:31])
            ws.freeze_panes(1, 2)
            ws.set_landscape()
            ws.set_paper(9)
            ws.fit_to_pages(1, 0)
            ws.repeat_rows(0)
            ws.set_footer(f"&L{street}&C{name}&R第 &P 页 共 &N 页")
            for j, w in widths.items():
                ws.set_column(j, j, w)
            for j, h in enumerate(part.columns):
                ws.write_string(0, j, h, head)
            numeric = [part.schema[c].is_numeric() for c in part.columns]
            for r, row in enumerate(part.iter_rows(), start=1):
                for j, v in enumerate(row):
                    if v is None or v == "":
                        continue
                    if numeric[j]:
                        ws.write_number(r, j, v)
                    else:
                        ws.write_string(r, j, v, text)
            for j, allowed in drops.items():
                ws.data_validation(
                    1, j, max(part.height, 1), j, {"validate": "list", "source": list(allowed)}
                )
            ws.autofilter(0, 0, part.height, part.width - 1)
        wb.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("persons", type=Path)
    ap.add_argument("--old", type=Path, help="another core/xlsx.py to time")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-xlsxwriter", action="store_true")
    args = ap.parse_args()
    bodies = _bodies(pl.read_parquet(args.persons))
    rows = sum(b.height for _, b in bodies)
    cells = sum(b.height * b.width for _, b in bodies)
    print(
        f"{len(bodies)} workbooks, {rows} rows, {cells} cells on the street sheets (each again on a community sheet)"
    )

    runs: list[tuple[str, Callable[[Path], None]]] = [("kuomian", lambda d: _kuomian(d, bodies))]
    if args.old:
        old = _load(args.old)
        runs.append((f"old ({args.old.name})", lambda d: _kuomian(d, bodies, old)))
    if not args.no_xlsxwriter:
        runs += [
            ("xlsxwriter", lambda d: _xlsxwriter(d, bodies, False)),
            ("xlsxwriter constant_memory", lambda d: _xlsxwriter(d, bodies, True)),
        ]
    # the runs take turns, so that a busy machine slows them alike; best wall and CPU time of each
    wall = {label: float("inf") for label, _ in runs}
    cpu = dict(wall)
    for _ in range(args.repeat):
        for label, fn in runs:
            with tempfile.TemporaryDirectory() as d:
                t, c = time.perf_counter(), time.process_time()
                fn(Path(d))
                wall[label] = min(wall[label], time.perf_counter() - t)
                cpu[label] = min(cpu[label], time.process_time() - c)
    for label, _ in runs:
        print(f"{label:28s} wall {wall[label]:7.2f} s   cpu {cpu[label]:7.2f} s")


if __name__ == "__main__":
    main()
