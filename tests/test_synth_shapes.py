"""The generator's real-file shapes: title rows, two-row headers, several sheets, an instructions
sheet, an empty sheet, footers, .xls / .ods (through LibreOffice), number cells in ID columns —
read back from the written files, and the truth pointing at the cells the user sees."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from kuomian.synth import SHAPE_KINDS, ShapeConfig, generate
from kuomian.synth.dirt import id_excel_numeric
from kuomian.synth.shapes import GROUPS, office_available
from tests.test_synth import SOURCES, header_field, sources_for_name

PEOPLE, SEED = 3000, 2
GROUP_LABELS = {label for groups in GROUPS.values() for label in groups.values()}


def grid(path: Path, fmt: str = "") -> dict[str, list[tuple]]:
    """Every sheet of a workbook as the user sees it: row r (1-based) is ``rows[r - 1]`` (an HTML
    table's only sheet is named "")."""
    if fmt == "xml":
        return xml_grid(path)
    if fmt == "html":
        return {"": html_grid(path)}
    book = fastexcel.read_excel(str(path))
    out = {}
    for name in book.sheet_names:
        df = book.load_sheet(name, header_row=None, dtypes="string").to_polars()
        out[name] = df.rows()
    return out


def xml_grid(path: Path) -> dict[str, list[tuple]]:
    """A SpreadsheetML 2003 workbook's sheets (no ss:Index in what the generator writes)."""
    import xml.etree.ElementTree as ET

    ns = "{urn:schemas-microsoft-com:office:spreadsheet}"
    out = {}
    for ws in ET.parse(path).getroot().iter(f"{ns}Worksheet"):
        rows = []
        for row in ws.iter(f"{ns}Row"):
            cells: list = []
            for c in row.iter(f"{ns}Cell"):
                d = c.find(f"{ns}Data")
                cells.append(d.text if d is not None else None)
                cells.extend([None] * int(c.get(f"{ns}MergeAcross", 0)))
            rows.append(tuple(cells))
        out[ws.get(f"{ns}Name")] = rows
    return out


def html_grid(path: Path) -> list[tuple]:
    """The rows of an HTML table (the charset its meta tag declares), a colspan as empty cells."""
    import re
    from html.parser import HTMLParser

    raw = path.read_bytes()
    charset = re.search(rb"charset=([A-Za-z0-9_-]+)", raw[:1000])
    assert charset is not None
    rows: list[tuple] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.row: list = []
            elif tag in ("td", "th"):
                self.cell, self.span = "", int(dict(attrs).get("colspan") or 1)

        def handle_data(self, data):
            if hasattr(self, "cell") and self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.row += [self.cell or None] + [None] * (self.span - 1)
                self.cell = None
            elif tag == "tr":
                rows.append(tuple(self.row))

    P(convert_charrefs=True).feed(raw.decode(charset.group(1).decode()))
    return rows


def norm(v) -> str:
    return unicodedata.normalize("NFKC", v or "").strip()


@pytest.fixture(scope="module")
def shaped(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shaped")
    generate(out, people=PEOPLE, seed=SEED, shapes=ShapeConfig.every())
    return out


@pytest.fixture(scope="module")
def truth(shaped):
    rows = pl.read_parquet(shaped / "truth" / "rows.parquet")
    persons = pl.read_parquet(shaped / "truth" / "persons.parquet")
    files = pl.read_csv(shaped / "truth" / "files.csv", infer_schema=False)
    return rows, persons, files


@pytest.fixture(scope="module")
def grids(shaped, truth):
    _, _, files = truth
    return {
        f["file"]: grid(shaped / "sources" / f["file"], f["format"])
        for f in files.iter_rows(named=True)
        if f["format"] in ("xlsx", "xls", "ods", "xml", "html")
    }


def test_every_shape_occurs_and_some_files_stay_tidy(truth):
    rows, _, files = truth
    kinds = {k for s in rows["shape"].unique() for k in s.split(",") if k}
    expected = set(SHAPE_KINDS) if office_available() else set(SHAPE_KINDS) - {"xls", "ods"}
    assert kinds == expected
    formats = set(files["format"])
    assert {"csv", "parquet", "xlsx"} <= formats
    if office_available():
        assert {"xls", "ods"} <= formats
    tidy = rows.filter(pl.col("shape") == "")["file"].unique()
    assert tidy.len() >= 6, "a real-shaped world keeps some files tidy"
    assert rows.select("file", "sheet", "row").is_duplicated().sum() == 0
    # every file name still matches exactly one source's globs
    for name in files["file"]:
        assert len(sources_for_name(name)) == 1, name


def test_files_are_really_in_their_format(shaped, truth):
    rows, _, files = truth
    magic = {"xlsx": b"PK", "ods": b"PK", "xls": b"\xd0\xcf\x11\xe0"}  # zip, zip, OLE2 compound file
    for f in files.iter_rows(named=True):
        head = (shaped / "sources" / f["file"]).read_bytes()[:8]
        if f["format"] in magic:
            assert head.startswith(magic[f["format"]]), f["file"]
        if f["format"] == "ods":
            assert (
                b"application/vnd.oasis.opendocument.spreadsheet"
                in (shaped / "sources" / f["file"]).read_bytes()[:200]
            )
    data = {f["file"]: (shaped / "sources" / f["file"]).read_bytes() for f in files.iter_rows(named=True)}
    fmt = dict(zip(files["file"], files["format"], strict=True))
    html = [n for n in data if fmt[n] == "html"]
    assert html and all(n.endswith(".xls") and b"charset=GBK" in data[n][:300] for n in html)
    assert all(b"<th>" in data[n] and b"colspan=" in data[n] for n in html)
    xml = [n for n in data if fmt[n] == "xml"]
    assert xml and all(
        n.endswith(".xls") and b'<?mso-application progid="Excel.Sheet"?>' in data[n] for n in xml
    )
    txt = [n for n in data if n.endswith(".txt")]
    assert txt and all(data[n].startswith(b"\xff\xfe") and "\t".encode("utf-16-le") in data[n] for n in txt)
    assert any(n.endswith(".tsv") and b"\t" in data[n] for n in data)
    assert any(fmt[n] == "csv" and data[n].endswith(b"\r\n\x1a") for n in data)  # Ctrl-Z after CRLF
    formula = rows.filter(pl.col("shape").str.contains("formula_id"))["file"].unique().to_list()
    assert formula and all(b'"=""5' in data[n] for n in formula)
    # the backup folder: copies, not extracts (not in the truth)
    backups = sorted((shaped / "sources" / "2025备份").iterdir())
    assert backups and all(b.read_bytes() == data[b.name] for b in backups)
    assert not rows.filter(pl.col("file").str.contains("备份")).height


def test_sheets_instructions_and_empty_sheets(truth, grids):
    rows, _, _ = truth
    for file, sheets in grids.items():
        data_sheets = rows.filter(pl.col("file") == file)["sheet"].unique(maintain_order=True).to_list()
        shape = set(",".join(rows.filter(pl.col("file") == file)["shape"].unique()).split(","))
        names = list(sheets)
        if "instructions_sheet" in shape:
            assert names[0] == "填表说明" and sheets["填表说明"][0][0] == "填表说明", file
        if "empty_sheet" in shape:
            assert names[-1] == "Sheet3" and not any(any(v for v in r) for r in sheets["Sheet3"]), file
        assert set(names) - set(data_sheets) <= {"填表说明", "Sheet3"}, file
        assert set(data_sheets) <= set(names), file
        if "multi_sheet" in shape:
            assert len(data_sheets) > 1
    hh = rows.filter((pl.col("source") == "household") & pl.col("shape").str.contains("multi_sheet"))
    assert set(hh["sheet"]) and all(s.endswith("街道") for s in hh["sheet"].unique())
    li = rows.filter((pl.col("source") == "lowincome") & pl.col("shape").str.contains("multi_sheet"))
    assert {"低保", "特困"} <= set(li["sheet"])


def test_title_rows_and_headers_are_where_the_truth_says(truth, grids):
    rows, _, _ = truth
    seen_title = seen_group = 0
    for (file, sheet), part in rows.group_by("file", "sheet", maintain_order=True):
        if file not in grids:
            assert sheet == ""
            continue
        if file.endswith(".xls") and sheet == "":  # an HTML table: the title row, then <th>
            assert grids[file][""][0][0].startswith("安宁市") and int(part["row"].min()) == 3
            continue
        g = grids[file][sheet]
        shape = set(part["shape"][0].split(","))
        first = int(part["row"].min())
        header = [norm(v) for v in g[first - 2]]
        source = part["source"][0]
        fields = {header_field(source, h) for h in header if h}
        assert SOURCES[source]["required"] <= fields, (file, sheet, header)
        above = [tuple(norm(v) for v in r) for r in g[: first - 2]]
        for r in above:  # nothing above the header is a column name
            assert not {header_field(source, v) for v in r if v} - {None}, (file, sheet, r)
        if "title_rows" in shape:
            assert above[0][0].startswith("安宁市") and not any(above[0][1:]), (file, sheet)
            seen_title += 1
        else:
            assert "two_row_header" in shape or first == 2
        if "two_row_header" in shape:
            assert set(above[-1]) - {""} <= GROUP_LABELS and set(above[-1]) & GROUP_LABELS, (file, sheet)
            seen_group += 1
        assert int(part["row"].max()) == len(g), "the last truth row is the sheet's last row"
        assert part["row"].to_list() == list(range(first, first + part.height))
    assert seen_title and seen_group


def test_truth_rows_point_at_the_persons_cells(truth, grids):
    rows, persons, _ = truth
    names = dict(zip(persons["id_number"], persons["name"], strict=True))
    checked = footers = 0
    for t in rows.filter(pl.col("file").is_in(list(grids))).iter_rows(named=True):
        cells = grids[t["file"]][t["sheet"]][t["row"] - 1]
        kinds = set(filter(None, t["dirt"].split(",")))
        reason = t["quarantine_reason"]
        if reason == "empty_row":
            assert not any(cells), t
        elif reason == "total_row":
            assert cells[0] in ("合计", "总计"), t
        elif reason == "footer_row":
            texts = [c for c in cells if c]
            assert texts and all(c.startswith(("制表人", "审核人", "填报日期")) for c in texts), t
            footers += 1
        elif t["person_id"] is not None and not any(k.startswith("name_") for k in kinds):
            assert names[t["person_id"]] in cells, t
            if not kinds:
                assert t["person_id"] in cells, t
            checked += 1
    assert checked > 1000 and footers > 5


def test_merged_cells(shaped, truth, grids):
    """A merged range holds its value in its top cell only, and belongs to every row it spans:
    the truth persons of those rows are of that community."""
    import openpyxl

    rows, persons, _ = truth
    community = dict(zip(persons["id_number"], persons["community"], strict=True))
    merged = rows.filter(pl.col("shape").str.contains("merged_cells"))
    assert merged.height and set(merged["source"]) <= {"household", "lowincome"}
    spanned = 0
    for file in merged.filter(pl.col("file").str.ends_with(".xlsx"))["file"].unique().to_list():
        wb = openpyxl.load_workbook(shaped / "sources" / file)
        for sheet in merged.filter(pl.col("file") == file)["sheet"].unique().to_list():
            ws = wb[sheet]
            part = merged.filter(pl.col("sheet") == sheet)
            first = int(part["row"].min())
            heads = [norm(c.value) for c in ws[first - 1]]
            col = (
                next(j for j, h in enumerate(heads) if header_field(part["source"][0], h) == "community") + 1
            )
            who = dict(zip(part["row"], part["person_id"], strict=True))
            ranges = [
                r for r in ws.merged_cells.ranges if r.min_col == col == r.max_col and r.min_row >= first
            ]
            # every run of equal consecutive 社区 cells is merged: no two neighbours left showing
            # the same value (a small sheet may have no run at all: its communities all differ)
            cells = [
                norm(g[col - 1]) if len(g) >= col else ""
                for g in grids[file][sheet][first - 1 : int(part["row"].max())]
            ]
            runs_left = [first + k for k in range(len(cells) - 1) if cells[k] and cells[k] == cells[k + 1]]
            assert not runs_left, (file, sheet, runs_left[:3])
            for r in ranges:
                top = norm(ws.cell(r.min_row, col).value)
                assert top
                for row in range(r.min_row, r.max_row + 1):
                    if row > r.min_row:
                        assert grids[file][sheet][row - 1][col - 1] in (None, ""), (file, sheet, row)
                    if who.get(row):
                        assert norm(community[who[row]]) == top, (file, sheet, row)
                        spanned += 1
    assert spanned > 100


def test_number_cell_ids(truth, grids):
    rows, persons, _ = truth
    nc = rows.filter(pl.col("dirt").str.contains("id_excel_numeric"))
    assert nc.height > 0 and (nc["sheet"] != "").all()
    assert nc.filter(~pl.col("shape").str.contains("number_cell_id") & (pl.col("shape") != "")).height == 0
    for t in nc.iter_rows(named=True):
        cells = grids[t["file"]][t["sheet"]][t["row"] - 1]
        damaged = str(int(id_excel_numeric(t["person_id"])))  # what the number cell reads back as
        assert damaged in cells and t["person_id"] not in cells, t
        assert abs(int(damaged) - int(t["person_id"])) < 1000  # 15 significant digits kept (rounded)
    # household: only persons in no other extract; their row is quarantined, the person flagged
    hh = nc.filter(pl.col("source") == "household")
    assert hh.height > 0
    assert set(hh["expected"]) == {"quarantined"} and set(hh["quarantine_reason"]) == {"base_id_unusable"}
    others = rows.filter(
        (pl.col("source") != "household") & pl.col("person_id").is_in(hh["person_id"].implode())
    )
    assert others.height == 0
    flagged = set(persons.filter(pl.col("id_damaged"))["id_number"])
    assert flagged == set(hh["person_id"])
    # elsewhere a number-cell ID is still that person's row (the Excel-damaged rules match it with the name)
    assert set(nc.filter(pl.col("source") != "household")["expected"]) <= {"person", "duplicate"}


def test_shaped_world_is_deterministic(tmp_path, shaped, truth, grids):
    again = tmp_path / "again"
    generate(again, people=PEOPLE, seed=SEED, shapes=ShapeConfig.every(), workers=2)  # forked workers too
    for name in ("rows.parquet", "persons.parquet", "files.csv"):
        assert (again / "truth" / name).read_bytes() == (shaped / "truth" / name).read_bytes(), name
    _, _, files = truth
    for f in files.iter_rows(named=True):
        a, b = shaped / "sources" / f["file"], again / "sources" / f["file"]
        if f["format"] in ("xls", "ods"):  # LibreOffice stamps the time: compare what the user sees
            assert grid(b) == grids[f["file"]], f["file"]
        else:
            assert a.read_bytes() == b.read_bytes(), f["file"]


def test_tidy_default_has_no_shapes(tmp_path):
    out = tmp_path / "tidy"
    generate(out, people=1500, seed=2, shapes=ShapeConfig())
    rows = pl.read_parquet(out / "truth" / "rows.parquet")
    assert set(rows["shape"]) == {""}
    xlsx = rows.filter(pl.col("file").str.ends_with(".xlsx"))
    assert set(xlsx["sheet"]) == {"Sheet1"} and xlsx["row"].min() == 2
    assert set(rows.filter(~pl.col("file").str.ends_with(".xlsx"))["sheet"]) == {""}
    assert "id_damaged" not in pl.read_parquet(out / "truth" / "persons.parquet").columns


def test_evaluation_joins_truth_and_links_by_file_sheet_and_row(tmp_path, shaped, truth):
    """make eval's scoring on a real-shaped truth: a links.parquet that does exactly what the
    truth expects scores 100%; one sheet's rows linked to the wrong person are counted in that
    sheet only, and a number-cell row linked wrongly is counted as such."""
    from bench.evaluate import score_world

    rows, persons, _ = truth
    outcome = {
        "person": "linked",
        "unmatched": "unmatched",
        "duplicate": "duplicate",
        "quarantined": "quarantined",
    }
    links = rows.select(
        "source", "file", "sheet", pl.col("row").cast(pl.Int64),
        outcome=pl.col("expected").replace_strict(outcome),
        person_key=pl.when(pl.col("expected") == "person").then(pl.col("person_id")),
    )  # fmt: skip
    got = persons.filter(pl.col("in_population") & ~pl.col("id_damaged")).select(
        person_key="id_number",
        id_number="id_number",
        status="status",
        group="group",
        needs_review=pl.lit(False),
    )
    got.write_parquet(tmp_path / "persons.parquet")
    links.write_parquet(tmp_path / "links.parquet")
    truth_dir = shaped / "truth"
    s = score_world(tmp_path, truth_dir)
    assert s.registry["f1"] == 1.0 and s.registry["status_accuracy"] == 1.0 and s.extra_rows == 0
    fs = s.tables["file_sheet"]
    assert (fs["right_n"] == fs["rows"]).all() and fs["wrong_links"].sum() == 0 and fs["missing"].sum() == 0

    # one sheet of a multi-sheet workbook linked to somebody else; one number-cell row too
    multi = rows.filter(pl.col("shape").str.contains("multi_sheet") & (pl.col("expected") == "person"))
    file, sheet = multi["file"][0], multi["sheet"][0]
    nc = rows.filter(pl.col("dirt").str.contains("id_excel_numeric") & (pl.col("expected") == "person")).row(
        0, named=True
    )
    other = persons.filter(pl.col("in_population"))["id_number"][0]
    hit = ((pl.col("file") == file) & (pl.col("sheet") == sheet)) | (
        (pl.col("file") == nc["file"]) & (pl.col("sheet") == nc["sheet"]) & (pl.col("row") == nc["row"])
    )
    links.with_columns(
        person_key=pl.when(hit & (pl.col("outcome") == "linked")).then(pl.lit(other)).otherwise("person_key")
    ).write_parquet(tmp_path / "links.parquet")
    s = score_world(tmp_path, truth_dir)
    fs = s.tables["file_sheet"]
    bad = fs.filter(pl.col("wrong_links") > 0)["file_sheet"].to_list()
    assert f"{file} [{sheet}]" in bad and len(bad) <= 2
    n_sheet = rows.filter(
        (pl.col("file") == file) & (pl.col("sheet") == sheet) & (pl.col("expected") == "person")
    )
    assert (
        fs.filter(pl.col("file_sheet") == f"{file} [{sheet}]")["wrong_links"][0]
        == n_sheet.height - (n_sheet["person_id"] == other).sum()
    )
    assert s.wrong_number_cell == 1
