"""Stage 2 — standardise: canonical IDs, names, dates, streets and categories.

Entry point: :func:`standardise`. Takes the frames the load stage read and writes
``std_<source>`` (every loaded row, typed, with ``row_state`` ``ok`` /
``duplicate`` / ``quarantined`` and a reason) and the view ``std_rows`` (the
identity columns of every source, what the linker reads). Nothing is dropped:
a row that cannot be used is kept with its reason.
"""

from __future__ import annotations

import functools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ..core import dates, ids, names
from ..core.config import Source
from ..core.db import ident, sql_literal, store
from ..core.i18n import _
from ..core.policy import policy
from ..core.text import CONTROL_RE, LINE_BREAKS_RE, clean_text, on_distinct
from ..readers import EXTRA_COL, NUMERIC_ID_COL
from .load import LoadReport, empty_frame

IDENTITY_COLUMNS = [
    "row_id", "source", "file", "sheet", "row", "row_state", "reason",
    "id_canonical", "id_kind", "id_digits", "name", "name_key", "name_py",
    "sex", "birth_date", "birth_date_stated", "street_code", "community",
]  # fmt: skip

USABLE_ID_KINDS = ("valid", "upgraded")
NOT_DATA = ("empty_row", "total_row", "footer_row")  # rows that are not people


def _row_patterns() -> dict[str, str]:
    """``rules/files.yaml`` ``rows``: reason → pattern of a row that is not a person (totals, footers)."""
    return dict(policy().file_rules.rows)


@dataclass
class StandardiseReport:
    rows: Counter = field(default_factory=Counter)  # (source, file) -> rows
    quarantined: Counter = field(default_factory=Counter)  # (source, file, reason) -> rows
    duplicates: Counter = field(default_factory=Counter)  # (source, file) -> rows
    id_kinds: Counter = field(default_factory=Counter)  # (source, kind) -> rows
    unknown_values: Counter = field(default_factory=Counter)  # (source, field, value) -> rows
    unparsed: Counter = field(
        default_factory=Counter
    )  # (source, field) -> rows with a value that did not parse
    flags: Counter = field(default_factory=Counter)  # (source, flag) -> rows
    # the damage guard: per (source, file, sheet), rows that hold a person (not empty, total or
    # footer rows), those of them without a usable ID, and ID cells stored as numbers
    person_rows: Counter = field(default_factory=Counter)
    no_usable_id: Counter = field(default_factory=Counter)
    numeric_ids: Counter = field(default_factory=Counter)
    # the shape of those IDs (see :func:`_id_shape`): (source, file, sheet, shape) -> rows, and
    # one masked example per key
    bad_id_shapes: Counter = field(default_factory=Counter)
    bad_id_examples: dict = field(default_factory=dict)
    base_streets: Counter = field(default_factory=Counter)  # street_code -> usable rows of the base source
    # the guards (commands/guards.py): per (source, file, sheet, field) and per (source, street_code
    # or "", field), person rows whose raw cell is filled; per (source, street_code or ""), person rows
    filled: Counter = field(default_factory=Counter)
    street_rows: Counter = field(default_factory=Counter)
    street_filled: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        q = sum(self.quarantined.values())
        d = sum(self.duplicates.values())
        return _("standardise: {rows} rows, {quarantined} quarantined, {duplicates} exact duplicates").format(
            rows=sum(self.rows.values()), quarantined=q, duplicates=d
        )


def _id_shape(raw: pl.Expr) -> pl.Expr:
    """What an ID cell without a usable ID looks like, for the damage guard's message."""
    v = raw.str.strip_chars()
    return (
        pl.when(v.is_null() | (v == ""))
        .then(pl.lit("blank"))
        .when(v.str.starts_with("="))
        .then(pl.lit("text_formula"))
        .when(v.str.contains(r"^[0-9](?:\.[0-9]+)?[Ee]\+?[0-9]+$"))
        .then(pl.lit("scientific"))
        .when(v.str.contains("['\"‘’“”]"))
        .then(pl.lit("quotes"))
        .when(v.str.contains(r"\s"))
        .then(pl.lit("spaces"))
        .when(v.str.contains(r"[^0-9Xx]"))
        .then(pl.lit("stray_characters"))
        .when(~v.str.len_chars().is_in([15, 18]))
        .then(pl.lit("length"))
        .otherwise(pl.lit("check_digit"))
    )


def _count_bad_id_shapes(out: pl.DataFrame, source: str, report: StandardiseReport) -> None:
    """Per (file, sheet), the shapes of the person rows' ID cells that hold no usable ID (not the
    number cells, counted apart), with one masked example each."""
    bad = out.filter(
        ~pl.col("id_kind").is_in(USABLE_ID_KINDS)
        & ~pl.col(NUMERIC_ID_COL)
        & (pl.col("reason").is_null() | ~pl.col("reason").is_in(NOT_DATA))
    )
    if bad.is_empty():
        return
    shapes = (
        bad.select("file", "sheet", _id_shape(pl.col("raw_id_number")).alias("shape"), "raw_id_number")
        .group_by("file", "sheet", "shape")
        .agg(pl.len().alias("n"), pl.col("raw_id_number").drop_nulls().first().alias("example"))
    )
    for file, sheet, shape, n, example in shapes.iter_rows():
        report.bad_id_shapes[(source, file, sheet, shape)] += n
        shown = ids.redact_ids(str(example or "")[:40])
        report.bad_id_examples.setdefault(
            (source, file, sheet, shape), ids.mask_id(shown) if shown == example else shown
        )


def _nfkc_trim(col: pl.Expr) -> pl.Expr:
    return col.str.normalize("NFKC").str.strip_chars()


def _blank(col: pl.Expr) -> pl.Expr:
    return col.is_null() | (col.str.strip_chars() == "")


def _category(col: pl.Expr, vocab: dict[str, str]) -> pl.Expr:
    # without the control characters too: a value that is not in the vocabulary is kept
    # without them (_stated_and_derived), and must not become a spelling of it then
    key = col.str.normalize("NFKC").str.replace_all(CONTROL_RE, "").str.replace_all(r"\s+", "")
    return key.replace_strict(vocab, default=None, return_dtype=pl.String)


def _number(col: pl.Expr) -> pl.Expr:
    s = _nfkc_trim(col).str.replace_all(r"[,，\s]|元$", "")
    return s.cast(pl.Float64, strict=False)


def _int(col: pl.Expr) -> pl.Expr:
    return _number(col.str.replace(r"个?月$", "")).round(0).cast(pl.Int64, strict=False)


def standardise_frame(
    df: pl.DataFrame, source: Source, report: StandardiseReport, earlier: Duplicates | None = None
) -> pl.DataFrame:
    """Standardise one source's loaded rows (a pure function of the frame, for tests).

    ``earlier``: when the frame is one part of a source, the :class:`Duplicates` tracker of
    the parts before it (a row equal to one of theirs is a duplicate too); it learns this part.
    """
    patterns = _row_patterns()
    out = _identity(df)
    out = _typed_fields(out, source)
    out = _not_person_marks(out, source, patterns)
    _count_unparsed(out, source, report, patterns)
    out = _stated_and_derived(out, source)
    out = _row_states(out, source, patterns)
    out = (earlier if earlier is not None else Duplicates()).mark(out.with_row_index("_seq"))
    _tally(out, source, report)
    drop = [
        "name_raw", "sex_id", "birth_date_id", *[f"_{r}" for r in patterns],
        *[f"raw_{c}" for c in source.fields], *DUP_HASHES,
    ]  # fmt: skip
    return out.drop(drop)


def _identity(df: pl.DataFrame) -> pl.DataFrame:
    """The ID (``id_canonical``, ``id_kind``, ``id_digits``), the name as shown and its match
    keys, and the sex and birth date the ID gives (``sex_id``, ``birth_date_id``)."""
    out = ids.add_id_columns(df, "id_number", NUMERIC_ID_COL)
    out = out.with_columns(
        name=names.display_names(df.get_column("name").cast(pl.String)),
        name_raw=pl.col("name").fill_null(""),
    )
    out = names.add_name_keys(out, "name_raw")
    return out.with_columns(
        sex_id=pl.when(pl.col("id_canonical").is_not_null()).then(
            pl.when(pl.col("id_canonical").str.slice(16, 1).cast(pl.Int32) % 2 == 1)
            .then(pl.lit("男"))
            .otherwise(pl.lit("女"))
        ),
        birth_date_id=pl.col("id_canonical").str.slice(6, 8).str.to_date("%Y%m%d", strict=False),
    )


def _typed_fields(out: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Every field typed (each expensive conversion once per distinct value), the raw values
    kept beside as ``raw_<field>``, the street as its code and name, the community cleaned."""
    st_lookup = policy().street_lookup
    typed: list[pl.Series] = []
    for f in source.fields.values():
        if f.name in ("id_number", "name", "street", "community"):
            continue
        col = out.get_column(f.name)
        if f.type == "date":
            typed.append(on_distinct(col, dates.date_expr, pl.Date))
        elif f.type == "int":
            typed.append(on_distinct(col, _int, pl.Int64))
        elif f.type == "number":
            typed.append(on_distinct(col, _number, pl.Float64))
        elif f.type == "category" and f.vocabulary:
            vocab = policy().vocabulary(f.vocabulary)
            typed.append(on_distinct(col, functools.partial(_category, vocab=vocab), pl.String))
        else:
            typed.append(clean_text(col))  # NUL and control characters never reach an output
    raw = out.select([pl.col(c).alias(f"raw_{c}") for c in source.fields])
    out = pl.concat([out, raw], how="horizontal")
    street_key = on_distinct(
        out.get_column("street"),
        lambda e: (
            e.str.normalize("NFKC")
            .str.replace_all(r"\s+", "")
            .replace_strict(st_lookup, default=None, return_dtype=pl.String)
        ),
        pl.String,
    )
    out = out.with_columns(
        *typed,
        street_key.alias("street_code"),
        clean_text(out.get_column("community")).alias("community"),
    )
    return out.with_columns(
        street_name=pl.col("street_code").replace_strict(policy().street_names, default=None)
    )


def _not_person_marks(out: pl.DataFrame, source: Source, patterns: dict[str, str]) -> pl.DataFrame:
    """``_<reason>`` per pattern of rules/files.yaml ``rows``: a total or footer row (合计,
    制表人:…). Such a row has no valid ID: only those rows are looked at, not every cell."""
    maybe = out.get_column("id_kind") != "valid"
    marks = {r: pl.Series(f"_{r}", [False] * out.height, dtype=pl.Boolean) for r in patterns}
    if maybe.any():
        idx = maybe.arg_true()
        sub = out[idx].select(
            [
                (
                    pl.any_horizontal(
                        [
                            pl.col(f"raw_{c}").fill_null("").str.normalize("NFKC").str.contains(pat)
                            for c in source.fields
                        ]
                    )
                    | pl.col(EXTRA_COL)
                    .fill_null("")
                    .str.normalize("NFKC")
                    .str.contains(':"' + pat.removeprefix("^"))
                ).alias(f"_{r}")
                for r, pat in patterns.items()
            ]
        )
        for r in patterns:
            marks[r] = marks[r].scatter(idx, sub.get_column(f"_{r}"))
    return out.with_columns(list(marks.values()))


def _count_unparsed(
    out: pl.DataFrame, source: Source, report: StandardiseReport, patterns: dict[str, str]
) -> None:
    """Data-quality figures: per field, the filled cells of person rows that did not parse
    (a category or street value nobody knows is counted per value). One pass counts them all;
    only a field with such cells is looked at again."""
    not_person = pl.any_horizontal([pl.col(f"_{r}") for r in patterns]) & (pl.col("id_kind") != "valid")
    checked = {
        f.name: ~_blank(pl.col(f"raw_{f.name}"))
        & pl.col("street_code" if f.name == "street" else f.name).is_null()
        & ~not_person
        for f in source.fields.values()
        if f.name not in ("id_number", "name", "community")
    }
    if not checked:
        return
    counts = out.select([e.sum().alias(name) for name, e in checked.items()]).row(0, named=True)
    for name, n in counts.items():
        if not n:
            continue
        f = source.fields[name]
        if f.type == "category" or name == "street":
            unparsed = out.filter(checked[name])
            for v, k in unparsed.group_by(f"raw_{name}").len().iter_rows():
                report.unknown_values[(source.name, name, v)] += k
        else:
            report.unparsed[(source.name, name)] += n


def _stated_and_derived(out: pl.DataFrame, source: Source) -> pl.DataFrame:
    """An unknown category value kept as written (visible downstream); the birth date and sex
    as stated, the flags where they disagree with the ID, and the ID's where it has them."""
    out = out.with_columns(
        [
            pl.coalesce(
                pl.col(f.name),
                pl.col(f"raw_{f.name}")
                .str.replace_all(LINE_BREAKS_RE, " ")
                .str.replace_all(CONTROL_RE, "")
                .str.strip_chars(),
            ).alias(f.name)
            for f in source.fields.values()
            if f.type == "category"
        ]
    )
    stated_birth = pl.col("birth_date") if "birth_date" in source.fields else pl.lit(None, dtype=pl.Date)
    stated_sex = pl.col("sex") if "sex" in source.fields else pl.lit(None, dtype=pl.String)
    out = out.with_columns(
        birth_date_stated=stated_birth,
        flag_birth_mismatch=stated_birth.is_not_null()
        & pl.col("birth_date_id").is_not_null()
        & (stated_birth != pl.col("birth_date_id")),
        flag_sex_mismatch=stated_sex.is_not_null()
        & pl.col("sex_id").is_not_null()
        & (stated_sex != pl.col("sex_id")),
    )
    return out.with_columns(
        sex=pl.coalesce(pl.col("sex_id"), stated_sex),
        birth_date=pl.coalesce(pl.col("birth_date_id"), stated_birth),
    )


def _all_blank(out: pl.DataFrame, source: Source) -> pl.Series:
    """Rows with every cell blank, unknown columns too. Only the rows whose ID and name cells
    are blank (a few) are looked at whole."""
    every = pl.all_horizontal([_blank(pl.col(f"raw_{c}")) for c in source.fields]) & (
        pl.col(EXTRA_COL).is_null() | ~pl.col(EXTRA_COL).str.contains(r':"[^"\s]')
    )
    first = [c for c in ("id_number", "name") if c in source.fields]
    if not first:
        return out.select(every.alias("all_blank")).to_series()
    maybe = out.select(pl.all_horizontal([_blank(pl.col(f"raw_{c}")) for c in first])).to_series()
    if not maybe.any():
        return pl.Series("all_blank", [False] * out.height, dtype=pl.Boolean)
    idx = maybe.arg_true()
    return maybe.scatter(idx, out[idx].select(every).to_series()).alias("all_blank")


def _row_states(out: pl.DataFrame, source: Source, patterns: dict[str, str]) -> pl.DataFrame:
    """``reason`` and ``row_state`` (quarantined with its reason, else ok), and the two hashes
    an exact duplicate is found by (:class:`Duplicates` marks them)."""
    all_blank = _all_blank(out, source)
    no_identity = (pl.col("id_kind") == "unusable") & (pl.col("name_key") == "")
    household_no_id = (pl.col("id_kind") != "valid") & (pl.col("id_kind") != "upgraded")
    reason: Any = pl.when(all_blank).then(pl.lit("empty_row"))  # a when/then chain
    for r in patterns:
        reason = reason.when(pl.col(f"_{r}") & (pl.col("id_kind") != "valid")).then(pl.lit(r))
    reason = reason.when(no_identity).then(pl.lit("no_identity"))
    if source.role == "base":
        reason = reason.when(household_no_id).then(pl.lit("base_id_unusable"))
    out = out.with_columns(reason=reason.otherwise(None))
    return out.with_columns(
        row_state=pl.when(pl.col("reason").is_not_null()).then(pl.lit("quarantined")).otherwise(pl.lit("ok")),
        # An exact duplicate is a usable row equal in every field to an earlier usable row. The
        # comparison key is a 128-bit hash of every raw value, so that duplicates can be found
        # across the files of a source without holding their text (two different rows sharing
        # both 64-bit hashes: about 1 in 10^20 at Kunming's 18 million rows).
        **{
            h: pl.when(pl.col("reason").is_null()).then(
                pl.struct([f"raw_{c}" for c in source.fields] + [EXTRA_COL]).hash(seed=seed)
            )
            for h, seed in DUP_HASHES.items()
        },
    )


def _tally(out: pl.DataFrame, source: Source, report: StandardiseReport) -> None:
    """The report's figures of one part: rows, quarantined and duplicate rows, person rows
    (usable IDs, number cells, ID shapes), the base's streets, filled cells, ID kinds, flags."""
    counts = out.group_by("file", "sheet", "row_state", "reason", "id_kind", NUMERIC_ID_COL).len()
    for file, sheet, state, rsn, kind, numeric, n in counts.iter_rows():
        report.rows[(source.name, file)] += n
        if state == "quarantined":
            report.quarantined[(source.name, file, rsn)] += n
        elif state == "duplicate":
            report.duplicates[(source.name, file)] += n
        if rsn not in NOT_DATA:
            report.person_rows[(source.name, file, sheet)] += n
            if kind not in USABLE_ID_KINDS:
                report.no_usable_id[(source.name, file, sheet)] += n
            if numeric:
                report.numeric_ids[(source.name, file, sheet)] += n
    _count_bad_id_shapes(out, source.name, report)
    if source.role == "base":
        for code, n in out.filter(pl.col("row_state") == "ok").group_by("street_code").len().iter_rows():
            report.base_streets[code] += n
    _count_filled(out, source, report)
    for kind, n in out.group_by("id_kind").len().iter_rows():
        report.id_kinds[(source.name, kind)] += n
    for flag in ("flag_birth_mismatch", "flag_sex_mismatch"):
        n = int(out.get_column(flag).sum())
        if n:
            report.flags[(source.name, flag)] += n


def _count_filled(out: pl.DataFrame, source: Source, report: StandardiseReport) -> None:
    """The guards' figures: how many person rows (not empty, total or footer rows) have each
    field's raw cell filled, per file and sheet and per street (``street_code``, "" unknown).
    One group-by on (file, sheet, street): a few hundred groups, summed both ways here."""
    fields = [f for f in source.fields if f not in ("id_number", "name")]
    person = pl.col("reason").is_null() | ~pl.col("reason").is_in(list(NOT_DATA))
    # a cell holding anything but white space (what _blank says, in one regex pass: ~20 % faster)
    filled = [(person & pl.col(f"raw_{f}").cast(pl.String).str.contains(r"\S").fill_null(False)).sum().alias(f)
              for f in fields]  # fmt: skip
    street = pl.col("street_code").fill_null("").alias("_street")
    groups = out.group_by("file", "sheet", street).agg(person.sum().alias("_n"), *filled)
    for r in groups.iter_rows(named=True):
        if not r["_n"]:
            continue
        report.street_rows[(source.name, r["_street"])] += r["_n"]
        for f in fields:
            report.filled[(source.name, r["file"], r["sheet"], f)] += r[f]
            report.street_filled[(source.name, r["_street"], f)] += r[f]


DUP_HASHES = {"_dup_h1": 1, "_dup_h2": 2}  # column -> hash seed


class Duplicates:
    """The usable rows seen so far in one source (their hashes), to find exact duplicates
    when a source is standardised in parts.

    The first copies are kept as two numpy arrays sorted by the first hash: each part is
    looked up by binary search and merged in, so a source of many parts costs what one does
    (checking every part against a growing set would grow with the square of the parts)."""

    def __init__(self):
        self.h1 = np.empty(0, dtype=np.uint64)  # sorted
        self.h2 = np.empty(0, dtype=np.uint64)  # aligned with h1

    def mark(self, out: pl.DataFrame) -> pl.DataFrame:
        key = pl.struct(list(DUP_HASHES))
        usable = pl.col("_dup_h1").is_not_null()
        out = out.with_columns(_dup=usable & ~key.is_first_distinct())
        fresh = out.select(pl.arg_where(usable & ~pl.col("_dup"))).to_series().to_numpy()
        a = out.get_column("_dup_h1").gather(fresh).to_numpy()
        b = out.get_column("_dup_h2").gather(fresh).to_numpy()
        # this part's candidates in hash order: binary searches of sorted keys stay in cache
        order = np.argsort(a, kind="stable")
        fresh, a, b = fresh[order], a[order], b[order]
        seen = np.zeros(len(fresh), dtype=bool)  # equal to a first copy of an earlier part
        if len(self.h1) and len(fresh):
            lo = np.searchsorted(self.h1, a, "left")
            hi = np.searchsorted(self.h1, a, "right")
            one = hi - lo == 1
            seen[one] = self.h2[lo[one]] == b[one]
            for i in np.nonzero(hi - lo > 1)[0]:  # rows sharing the first hash: check the second
                seen[i] = bool((self.h2[lo[i] : hi[i]] == b[i]).any())
            if seen.any():
                out = out.with_columns(out.get_column("_dup").scatter(np.sort(fresh[seen]), True))
        new1, new2 = a[~seen], b[~seen]
        at = np.searchsorted(self.h1, new1, "right")
        self.h1, self.h2 = np.insert(self.h1, at, new1), np.insert(self.h2, at, new2)
        return out.with_columns(
            row_state=pl.when("_dup").then(pl.lit("duplicate")).otherwise(pl.col("row_state")),
            reason=pl.when("_dup").then(pl.lit("exact_duplicate")).otherwise(pl.col("reason")),
        ).drop("_dup")


# A source is standardised in parts of about this many rows (whole files, in order): the
# memory a source needs is one part's, so Kunming's 8.5M household rows never sit in one frame.
PART_ROWS = 250_000


def parts_of(frames: list[pl.DataFrame], part_rows: int | None = None):
    """Consecutive frames concatenated into parts of at most ``part_rows`` rows (a bigger
    frame is a part of its own); each frame is released as soon as its part is built."""
    part_rows = part_rows or PART_ROWS
    batch: list[pl.DataFrame] = []
    n = 0
    while frames:
        df = frames.pop(0)
        if batch and n + df.height > part_rows:
            yield pl.concat(batch, how="vertical") if len(batch) > 1 else batch[0]
            batch, n = [], 0
        batch.append(df)
        n += df.height
        del df
    if batch:
        yield pl.concat(batch, how="vertical") if len(batch) > 1 else batch[0]


def standardise(
    con: duckdb.DuckDBPyConnection, loaded: LoadReport, progress=lambda msg: None
) -> StandardiseReport:
    """Build ``std_<source>`` for every source, ``std_quarantine_raw`` and the ``std_rows`` view.

    Takes the loaded frames in parts of whole files (see :data:`PART_ROWS`; each freed once
    stored), so a source's memory is one part's; exact duplicates are found across parts.
    """
    from ..schemas.standardised import validate_identity

    sources = policy().sources
    con.execute(
        "CREATE OR REPLACE TABLE std_quarantine_raw "
        "(source VARCHAR, file VARCHAR, sheet VARCHAR, row BIGINT, raw VARCHAR, raw_extra VARCHAR)"
    )
    # Row ids are unique across sources: the source's offset + the row's sequence within it.
    offsets, offset = {}, 0
    for name in sources:
        offsets[name] = offset
        offset += loaded.rows_by_source.get(name, 0) + 1

    def one_source(name: str) -> tuple[StandardiseReport, list[pl.DataFrame]]:
        source, report, quarantined = sources[name], StandardiseReport(), []
        cur = con.cursor()  # a DuckDB connection per thread
        try:
            progress(_("standardising {source}").format(source=name))
            frames = loaded.take_frames(name) or [empty_frame(source)]
            earlier = Duplicates()
            seq = 0
            for k, df in enumerate(parts_of(frames)):
                out = standardise_frame(df, source, report, earlier)
                quarantined.append(df[out.filter(pl.col("row_state") == "quarantined").get_column("_seq")])
                del df
                out = out.with_columns(row_id=pl.col("_seq").cast(pl.Int64) + (offsets[name] + seq)).drop(
                    "_seq"
                )
                seq += out.height
                validate_identity(out.select(IDENTITY_COLUMNS), name)
                # the unmapped cells (JSON) and the number-cell mark are for this stage only:
                # quarantine.csv keeps a quarantined row's raw cells (std_quarantine_raw)
                store(cur, f"std_{name}", out.drop(EXTRA_COL, NUMERIC_ID_COL), append=k > 0)
                del out
        finally:
            cur.close()
        return report, quarantined

    # Two sources at a time: much of standardising is polars work that runs outside the GIL,
    # and the biggest sources go first so the two workers finish together.
    order = sorted(sources, key=lambda n: -loaded.rows_by_source.get(n, 0))
    with ThreadPoolExecutor(max_workers=STANDARDISE_WORKERS) as pool:
        done = dict(zip(order, pool.map(one_source, order), strict=True))
    report = StandardiseReport()
    for name in sources:
        part_report, quarantined = done[name]
        for attr in (
            "rows", "quarantined", "duplicates", "id_kinds", "unknown_values", "unparsed", "flags",
            "person_rows", "no_usable_id", "numeric_ids", "bad_id_shapes", "bad_id_examples", "base_streets",
            "filled", "street_rows", "street_filled",
        ):  # fmt: skip
            getattr(report, attr).update(getattr(part_report, attr))
        # kept here, not by the workers: two writers to one table wait on each other
        _keep_quarantined_raw(con, pl.concat(quarantined), sources[name])
    selects = [f"SELECT {', '.join(IDENTITY_COLUMNS)} FROM {ident('std_' + name)}" for name in sources]
    con.execute("CREATE OR REPLACE VIEW std_rows AS " + " UNION ALL ".join(selects))
    return report


STANDARDISE_WORKERS = 2  # sources standardised at once (this machine has 2 cores)


def _keep_quarantined_raw(con, raw: pl.DataFrame, source: Source) -> None:
    """The raw values of a source's quarantined rows, as JSON (quarantine.csv shows them)."""
    if not raw.height:
        return
    con.register("_kuomian_raw", raw)
    try:
        raw_cols = ", ".join(f"{sql_literal(f)}, {ident(f)}" for f in source.fields)
        con.execute(
            f"INSERT INTO std_quarantine_raw SELECT source, file, sheet, row, "
            f"CAST(json_object({raw_cols}) AS VARCHAR), {EXTRA_COL} FROM _kuomian_raw"
        )
    finally:
        con.unregister("_kuomian_raw")
