"""Real-file shapes: how departments' workbooks look after someone "tidied" them in an office program.

A :class:`ShapeConfig` with ``real_shaped=True`` turns some of the tidy file plans of
``render.build_plans`` into shaped workbooks (spec: extracts.md, "How departments' files are
shaped"); the other files stay as they are:

* ``multi_sheet``: the household streets that come as workbooks go into one workbook with one
  sheet per street (``户籍人口_分街道.xlsx``); the low-income list is split into one sheet per
  category (低保 / 特困 / 致贫返贫); the roster into one sheet per list;
* ``title_rows``: a merged title (``安宁市2026年城乡低保对象花名册``) in row 1, often a
  ``填报单位：… 填报日期：…`` line and sometimes a blank row under it, above the header;
* ``two_row_header``: a merged group header row (``户籍信息``, ``法定代表人(经营者)信息``) above
  the column names (the lower row names every column);
* ``instructions_sheet``: a ``填表说明`` sheet first in the workbook; ``empty_sheet``: an empty
  ``Sheet3`` after the data sheets;
* ``footer``: below the data a ``合计`` / ``总计`` row with the count, blank rows, and ``制表人：…``,
  ``审核人：…``, ``填报日期：…`` (in one row or in three) — quarantined as ``total_row``,
  ``empty_row`` and ``footer_row``;
* ``xls`` / ``ods``: a few workbooks written as ``.xlsx`` and converted by LibreOffice (one
  ``soffice`` call per format and world); without ``soffice`` on the PATH they stay ``.xlsx``;
* ``number_cell_id``: IDs written as number cells (what Excel keeps: 15 significant digits), the
  ``id_excel_numeric`` kind of dirt at ``number_cell_ids`` per row of a shaped sheet. In a
  household sheet only persons that appear in no other extract get one: their household row can
  only be quarantined (``base_id_unusable``), so the tool cannot know them (``id_damaged`` in the
  truth persons) and nothing else of theirs depends on it.

Files round 2 (issue 19; their own random stream, so the shapes above are unchanged):

* ``merged_cells``: in some shaped household and low-income sheets, every run of equal
  consecutive 社区 (and 户号) cells is one vertically merged range holding the value in its top
  cell (xlsx written with xlsxwriter's ``merge_range``; .xls / .ods keep the ranges through
  LibreOffice). The truth is unchanged: the value belongs to every row the range spans;
* ``html_xls``: the platform list as what government web systems export, an HTML table named
  ``.xls`` (GBK declared, a ``colspan`` title row, ``<th>`` header; truth sheet ""), and
  ``xml_xls``: the ride-hailing list as SpreadsheetML 2003 XML named ``.xls`` (a merged title row;
  truth sheet = its worksheet's name). Row numbers count the title row, as Excel shows them;
* ``tsv``: a tab-separated ``.tsv``; ``utf16_txt``: Excel's "Unicode text" ``.txt`` (UTF-16 with
  its BOM, tabs, CRLF); ``ctrl_z``: a GB18030 CSV with CRLF ending in a DOS end-of-file mark;
  ``formula_id``: a CSV whose ID cells are written ``="530…"``;
* ``2025备份/`` inside SOURCES_DIR with copies of a household and an enrolment file: not
  extracts (only the files directly in SOURCES_DIR are), so not in the truth.

Every decision is drawn from ``random.Random(f"{seed}-shapes")``: the shaped plans depend only on
the world, the seed and the config; a tidy world is byte for byte what it was without shapes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import names as N

SHAPE_KINDS = (
    "title_rows",
    "two_row_header",
    "multi_sheet",
    "instructions_sheet",
    "empty_sheet",
    "footer",
    "xls",
    "ods",
    "number_cell_id",
    "merged_cells",
    "html_xls",
    "xml_xls",
    "tsv",
    "utf16_txt",
    "ctrl_z",
    "formula_id",
)
# Files of other formats than the workbooks: an HTML table or SpreadsheetML 2003 XML named .xls,
# tab-separated text (.tsv, or Excel's UTF-16 "Unicode text" .txt)
TEXT_FORMATS = ("tsv",)
WEB_FORMATS = ("html", "xml")
# Workbooks above this many cells are written row by row (xlsxwriter's constant_memory), where a
# merged range cannot be written: their sheets are never merged.
MERGE_MAX_CELLS = 2_000_000
BACKUP_FOLDER = "2025备份"
WORKBOOK_FORMATS = ("xlsx", "xls", "ods")
XLS_MAX_ROWS = 60_000  # .xls holds 65,536 rows per sheet; LibreOffice is slow on big files anyway


@dataclass(frozen=True)
class ShapeConfig:
    """Which real-file shapes a world gets. ``ShapeConfig()`` is tidy; ``ShapeConfig.real()`` is
    what ``kuomian demo`` makes: some files shaped, not all. Rates are per shaped sheet (title,
    two-row header, footer), per shaped workbook (instructions, empty sheet) or per row
    (``number_cell_ids``)."""

    real_shaped: bool = False
    title_rows: float = 0.8
    unit_line: float = 0.7  # of titled sheets: the 填报单位 / 填报日期 line under the title
    blank_after_title: float = 0.25
    two_row_header: float = 0.5
    footer: float = 0.75
    instructions_sheet: float = 0.6
    empty_sheet: float = 0.5
    number_cell_ids: float = 0.004
    multi_sheet: bool = True
    office_formats: bool = True  # .xls and .ods through LibreOffice
    # of the shaped household and low-income sheets: 社区 and 户号 merged over consecutive equal rows
    merged_cells: float = 0.6
    web_formats: bool = True  # the platform list as an HTML-table ".xls", the ride-hailing one as XML ".xls"
    text_formats: bool = True  # a .tsv, a UTF-16 "Unicode text" .txt, a GB18030 CSV ending in Ctrl-Z
    formula_ids: bool = True  # one CSV writes its IDs as ="530…" (to keep Excel from damaging them)
    backup_folder: bool = True  # 2025备份/ inside SOURCES_DIR with copies of some files (never read)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not 0.0 <= v <= 1.0:
                raise ValueError(f"ShapeConfig.{f.name} must be a rate between 0 and 1, got {v!r}")

    @classmethod
    def real(cls) -> ShapeConfig:
        return cls(real_shaped=True)

    @classmethod
    def every(cls) -> ShapeConfig:
        """Every shaped sheet gets every shape (for tests)."""
        return cls(
            real_shaped=True, title_rows=1.0, unit_line=1.0, blank_after_title=0.5, two_row_header=1.0,
            footer=1.0, instructions_sheet=1.0, empty_sheet=1.0, number_cell_ids=0.05, merged_cells=1.0,
        )  # fmt: skip


@dataclass
class SheetShape:
    """How one shaped sheet is laid out (see the module docstring)."""

    kinds: tuple[str, ...]  # shape kinds of this sheet and its workbook (written to the truth)
    title: str | None = None
    unit_line: tuple[str, str] | None = None  # (填报单位：…, 填报日期：…)
    blank_after_title: bool = False
    groups: dict[str, str] = field(default_factory=dict)  # key -> group label (two-row header)
    footer: str | None = None  # "one_row" | "rows"
    footer_blanks: int = 0
    total_word: str = "合计"
    clerk: str = ""
    auditor: str = ""
    fill_date: str = ""
    number_cells: float = 0.0
    damageable: frozenset[int] = frozenset()  # household sheets: persons whose ID may be a number cell
    instructions: bool = False  # workbook: a 填表说明 sheet first (set on its first sheet)
    empty_sheet: str | None = None  # workbook: an empty sheet after this one (set on its last sheet)
    merged: tuple[str, ...] = ()  # keys whose runs of equal consecutive cells are merged vertically

    def title_height(self) -> int:
        return (self.title is not None) + (self.unit_line is not None) + self.blank_after_title

    def header_height(self) -> int:
        return self.title_height() + (2 if self.groups else 1)


GROUPS = {
    "household": {
        **dict.fromkeys(
            (
                "household_no",
                "name",
                "id_number",
                "sex",
                "birth_date",
                "ethnicity",
                "relation",
                "hukou_type",
                "person_status",
            ),
            "户籍信息",
        ),  # fmt: skip
        **dict.fromkeys(("street", "community", "address"), "住址信息"),
    },
    "tax": {
        **dict.fromkeys(
            ("entity_id", "entity_name", "entity_type", "entity_size", "tax_status"), "纳税人信息"
        ),
        **dict.fromkeys(("name", "id_number"), "法定代表人(经营者)信息"),
    },
    "market": {
        **dict.fromkeys(
            ("entity_id", "entity_name", "entity_type", "established", "address"), "市场主体信息"
        ),
        **dict.fromkeys(("name", "id_number"), "法定代表人(经营者)信息"),
    },
    "lowincome": {
        **dict.fromkeys(("name", "id_number", "street", "community"), "救助对象信息"),
        **dict.fromkeys(("category", "since"), "救助信息"),
    },
    "enrollment": {
        **dict.fromkeys(("name", "id_number", "street"), "人员信息"),
        **dict.fromkeys(("scheme", "enroll_status", "employer", "insured_place"), "参保信息"),
    },
    "roster": {
        **dict.fromkeys(("name", "id_number", "street"), "人员信息"),
        **dict.fromkeys(("category", "department"), "名单信息"),
    },
}
UNITS = {
    "household": "安宁市公安局",
    "lowincome": "安宁市民政局",
    "tax": "国家税务总局安宁市税务局",
    "market": "安宁市市场监督管理局",
    "enrollment": "安宁市社会保险中心",
    "roster": "安宁市人力资源和社会保障局",
}
CLERKS = ("李燕", "张丽萍", "王建华", "赵敏", "杨晓东", "普春梅", "李云华")
INSTRUCTIONS = (
    "填表说明",
    "1、本表按街道（乡镇）或类别分工作表填报，请勿修改表头。",
    "2、身份证号码请填写18位，单元格格式应设置为“文本”，避免以科学计数法显示。",
    "3、日期请按“YYYY-MM-DD”格式填写。",
    "4、表格填报完成后经审核人签字确认，报安宁市人力资源和社会保障局。",
)


def office_available() -> bool:
    return shutil.which("soffice") is not None


def apply_shapes(plans: list, w, cfg: ShapeConfig | None, seed: int | str) -> list:
    """The plans of a real-shaped world: some tidy plans replaced by shaped ones (one plan per
    sheet; the sheets of one workbook share ``name`` and follow each other)."""
    if cfg is None or not cfg.real_shaped:
        return plans
    rng = random.Random(f"{seed}-shapes")
    office = cfg.office_formats and office_available()
    year = w.as_of.year
    d = w.as_of - timedelta(days=3)
    fill_dates = (f"{d.year}年{d.month}月{d.day}日", d.isoformat(), f"{d.year}.{d.month}.{d.day}")
    elsewhere = {r["_p"] for p in plans if p.source != "household" for r in p.records}
    by_name = {p.name: p for p in plans}

    def shape(
        source: str, title: str, book_kinds: tuple[str, ...], recs: list, *, groups: bool = True
    ) -> SheetShape:
        kinds = set(book_kinds)
        s = SheetShape(kinds=())
        colon = "：" if rng.random() < 0.7 else ":"
        if rng.random() < cfg.title_rows:
            s.title = title
            kinds.add("title_rows")
            if rng.random() < cfg.unit_line:
                s.unit_line = (f"填报单位{colon}{UNITS[source]}", f"填报日期{colon}{rng.choice(fill_dates)}")
            s.blank_after_title = rng.random() < cfg.blank_after_title
        if groups and source in GROUPS and rng.random() < cfg.two_row_header:
            s.groups = GROUPS[source]
            kinds.add("two_row_header")
        if rng.random() < cfg.footer:
            s.footer = rng.choice(("one_row", "rows"))
            s.footer_blanks = rng.choice((0, 1, 1, 2))
            s.total_word = rng.choice(("合计", "合计", "总计"))
            s.clerk, s.auditor = (f"制表人{colon}{rng.choice(CLERKS)}", f"审核人{colon}{rng.choice(CLERKS)}")
            s.fill_date = f"填报日期{colon}{rng.choice(fill_dates)}"
            kinds.add("footer")
        s.number_cells = cfg.number_cell_ids
        if source == "household":
            s.damageable = frozenset(r["_p"] for r in recs if r["_p"] not in elsewhere)
        s.kinds = tuple(k for k in SHAPE_KINDS if k in kinds)
        return s

    def book(name: str, fmt: str, sheets: list[tuple[str, Any, list, str]]) -> list:
        """Shaped plans of one workbook: sheets = (sheet name, tidy plan, records, title)."""
        book_kinds = {fmt} if fmt in ("xls", "ods") else set()
        if len(sheets) > 1:
            book_kinds.add("multi_sheet")
        instructions = rng.random() < cfg.instructions_sheet
        empty = rng.random() < cfg.empty_sheet
        if instructions:
            book_kinds.add("instructions_sheet")
        if empty:
            book_kinds.add("empty_sheet")
        out = []
        for j, (sheet, tidy, recs, title) in enumerate(sheets):
            s = shape(tidy.source, title, tuple(sorted(book_kinds)), recs)
            s.instructions = instructions and j == 0
            s.empty_sheet = "Sheet3" if empty and j == len(sheets) - 1 else None
            out.append(replace(tidy, name=name, fmt=fmt, encoding=None, records=recs, sheet=sheet, shape=s))
        return out

    def fits(recs: list) -> bool:
        return len(recs) <= XLS_MAX_ROWS

    replaced: dict[str, list] = {}  # tidy plan name -> shaped plans (emitted at the first replaced plan)
    # household: the streets that come as workbooks, one sheet per street; the last of them alone as .xls
    hh_books = [p for p in plans if p.source == "household" and p.fmt == "xlsx"]
    single = hh_books.pop() if hh_books else None
    street_name = {f"户籍人口_{s[1]}.xlsx": s[1] for s in N.STREETS}
    if hh_books:
        if cfg.multi_sheet and len(hh_books) > 1:
            sheets = [(street_name[p.name], p, p.records, f"安宁市{year}年{street_name[p.name]}户籍人口花名册")
                      for p in hh_books]  # fmt: skip
            replaced[hh_books[0].name] = book("户籍人口_分街道.xlsx", "xlsx", sheets)
            for p in hh_books[1:]:
                replaced[p.name] = []
        else:
            for p in hh_books:
                sn = street_name[p.name]
                replaced[p.name] = book(
                    p.name, "xlsx", [(sn, p, p.records, f"安宁市{year}年{sn}户籍人口花名册")]
                )
    if single is not None:
        sn = street_name[single.name]
        fmt = "xls" if office and fits(single.records) else "xlsx"
        replaced[single.name] = book(
            f"户籍人口_{sn}.{fmt}", fmt, [(sn, single, single.records, f"安宁市{year}年{sn}户籍人口登记表")]
        )

    # low-income: one sheet per category, as .ods (民政 offices on domestic systems use LibreOffice)
    li = by_name.get("低保低收入人口.csv")
    if li is not None:
        cats: dict[str, list] = {}
        for r in li.records:
            cats.setdefault(r["category"], []).append(r)
        fmt = "ods" if office and fits(li.records) else "xlsx"
        if cfg.multi_sheet:
            sheets = [(c, li, recs, f"安宁市{year}年城乡{c}对象花名册") for c, recs in cats.items()]
        else:
            sheets = [("Sheet1", li, li.records, f"安宁市{year}年城乡低保对象花名册")]
        replaced[li.name] = book(f"低保低收入人口.{fmt}", fmt, sheets)
    dis = by_name.get("困难残疾人.xlsx")
    if dis is not None:
        fmt = "xls" if office and fits(dis.records) else "xlsx"
        replaced[dis.name] = book(
            f"困难残疾人.{fmt}", fmt, [("残疾人名单", dis, dis.records, f"安宁市{year}年困难重度残疾人名单")]
        )
    for tidy_name, sheet, title in (
        ("纳税主体登记.xlsx", "纳税主体", f"安宁市{year}年纳税主体登记信息表"),
        ("新增市场主体.csv", "Sheet1", f"安宁市{year}年新增市场主体名录"),
        ("机关事业单位参保人员.xlsx", "参保人员", f"安宁市{year}年机关事业单位参保人员名册"),
    ):
        p = by_name.get(tidy_name)
        if p is not None:
            replaced[p.name] = book(
                tidy_name.rsplit(".", 1)[0] + ".xlsx", "xlsx", [(sheet, p, p.records, title)]
            )
    # the roster stays one sheet: its lists are small (a 4-row sheet with one blank ID is 25% damaged)
    ros = by_name.get("特殊人员名单.xlsx")
    if ros is not None:
        replaced[ros.name] = book(
            ros.name, "xlsx", [("名单", ros, ros.records, f"安宁市{year}年特殊人员名单")]
        )

    out = []
    for p in plans:
        out.extend(replaced.get(p.name, [p]))
    return _round_two(out, cfg, seed, year)


def _round_two(plans: list, cfg: ShapeConfig, seed: int | str, year: int) -> list:
    """The shapes of files round 2 (issue 19), drawn from their own random stream so that the
    shapes above stay what they were: merged 社区 / 户号 cells, an HTML-table and a SpreadsheetML
    ".xls", a .tsv and a UTF-16 .txt, a CSV ending in Ctrl-Z, ``="…"`` ID cells."""
    rng = random.Random(f"{seed}-shapes-round2")
    cells: dict[str, int] = {}
    for p in plans:
        cells[p.name] = cells.get(p.name, 0) + len(p.records) * (len(p.keys) + 1)

    def add(shape: SheetShape, kind: str) -> SheetShape:
        kinds = set(shape.kinds) | {kind}
        return replace(shape, kinds=tuple(k for k in SHAPE_KINDS if k in kinds))

    out = []
    for p in plans:
        if (
            p.shape is not None
            and p.source in ("household", "lowincome")
            and p.fmt in WORKBOOK_FORMATS
            and "community" in p.keys
            and cells[p.name] <= MERGE_MAX_CELLS
            and rng.random() < cfg.merged_cells
        ):
            merged = tuple(k for k in ("community", "household_no") if k in p.keys)
            # a list formatted for printing is sorted by community (households kept together)
            recs = sorted(p.records, key=lambda r: r.get("community") or "")
            p = replace(p, records=recs, shape=replace(add(p.shape, "merged_cells"), merged=merged))
        elif p.shape is None and cfg.web_formats and p.name == "平台从业人员.csv":
            shape = SheetShape(kinds=("title_rows", "html_xls"), title=f"安宁市{year}年平台从业人员信息表")
            p = replace(p, name="平台从业人员.xls", fmt="html", encoding="gbk", sheet="", shape=shape)
        elif p.shape is None and cfg.web_formats and p.name == "新就业形态_网约车.xlsx":
            shape = SheetShape(kinds=("title_rows", "xml_xls"), title=f"安宁市{year}年网约车驾驶员名单")
            p = replace(
                p, name="新就业形态_网约车.xls", fmt="xml", encoding=None, sheet="网约车驾驶员", shape=shape
            )
        elif p.shape is None and cfg.text_formats and p.name == "中职学生学籍.csv":
            p = replace(p, name="中职学生学籍.tsv", fmt="tsv", shape=SheetShape(kinds=("tsv",)))
        elif p.shape is None and cfg.text_formats and p.name == "被征地农民名单.csv":
            shape = SheetShape(kinds=("tsv", "utf16_txt"))
            p = replace(p, name="被征地农民名单.txt", fmt="tsv", encoding="utf-16", shape=shape)
        elif p.shape is None and cfg.text_formats and p.name == "参保信息_城乡居民.csv":
            p = replace(p, encoding="gb18030", shape=SheetShape(kinds=("ctrl_z",)))
        elif p.shape is None and cfg.formula_ids and p.name == "参保信息_企业职工.csv":
            p = replace(p, shape=SheetShape(kinds=("formula_id",)))
        out.append(p)
    return out


def write_backups(plans: list, src_dir: Path, cfg: ShapeConfig | None) -> list[str]:
    """``2025备份/`` inside SOURCES_DIR with copies of the first household file and the
    enrolment files, as a clerk keeps them: only the files directly in SOURCES_DIR are extracts,
    so these are never read (listed as not read). Returns the copies' paths (relative)."""
    if cfg is None or not cfg.real_shaped or not cfg.backup_folder:
        return []
    names = [p.name for p in plans if p.source == "household"][:1]
    names += [p.name for p in plans if p.source == "enrollment" and p.fmt in ("csv", "xlsx")][:1]
    folder = src_dir / BACKUP_FOLDER
    folder.mkdir(exist_ok=True)
    done = []
    for name in dict.fromkeys(names):
        if (src_dir / name).is_file():
            shutil.copy2(src_dir / name, folder / name)
            done.append(f"{BACKUP_FOLDER}/{name}")
    return done


# --------------------------------------------------------------------------- LibreOffice


def convert(files: list[Path], fmt: str, out_dir: Path) -> None:
    """Convert ``.xlsx`` files to ``fmt`` (xls | ods) into ``out_dir`` with one ``soffice`` call.

    A private LibreOffice profile keeps this call apart from any other soffice running."""
    if not files:
        return
    soffice = shutil.which("soffice")
    if soffice is None:
        raise RuntimeError(
            "LibreOffice (soffice) is needed to write .xls / .ods files; it is not on the PATH"
        )
    with tempfile.TemporaryDirectory(prefix="kuomian-soffice-") as profile:
        res = subprocess.run(
            [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
             "--convert-to", fmt, "--outdir", str(out_dir), *map(str, files)],
            capture_output=True, text=True, timeout=600, env={**os.environ, "HOME": profile},
        )  # fmt: skip
    missing = [f.name for f in files if not (out_dir / f"{f.stem}.{fmt}").is_file()]
    if res.returncode != 0 or missing:
        raise RuntimeError(
            f"LibreOffice could not convert {', '.join(missing) or 'the files'} to .{fmt} "
            f"(exit {res.returncode}): {res.stderr.strip()[-300:]}"
        )
