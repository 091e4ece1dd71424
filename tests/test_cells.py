"""The one writer path of cells for people (core/cells.py): what the fast paths must keep."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from kuomian.core.cells import people_frame, quote_triggers, redact_ids_expr
from kuomian.core.ids import redact_ids

# text made of what matters here: digits (ID-like runs), X, formula triggers, CJK, spaces
TEXT = st.one_of(
    st.none(),
    st.text(alphabet="0123456789Xx=+-@ 号组\t", max_size=40),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=3), st.from_regex(r"[0-9]{15,19}[Xx]?", fullmatch=True),
              st.text(alphabet="0123456789 组", max_size=5)),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_redaction_only_where_needed_is_redaction_everywhere(values):
    """people_frame masks only cells with a 15-digit run; the result equals masking every cell."""
    df = pl.DataFrame({"a": values, "n": list(range(len(values)))}, schema={"a": pl.String, "n": pl.Int64})
    everywhere = df.select(redact_ids_expr(pl.col("a"))).to_series().to_list()
    got = people_frame(df, csv=False).get_column("a").to_list()
    assert got == everywhere
    # and as ids.redact_ids masks free text (the scalar path of logs and errors)
    assert [v if v is None else redact_ids(v) for v in values] == got
    assert people_frame(df).get_column("n").to_list() == list(range(len(values)))


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_quote_triggers_after_the_workbook_frame_is_the_csv_frame(values):
    """Hand-offs make the cells safe once (workbook form) and add the CSV's leading ' after."""
    df = pl.DataFrame({"a": values, "l": [[v or "", "x"] for v in values]})
    assert quote_triggers(people_frame(df, csv=False)).equals(people_frame(df, csv=True))


def test_an_id_typed_into_an_address_is_masked_and_a_formula_quoted():
    df = pl.DataFrame(
        {"address": ["连然街道1组 530181199001011234 号", '=HYPERLINK("x")', "短号 12345", None]}
    )
    out = quote_triggers(people_frame(df, csv=False)).get_column("address").to_list()
    assert out == ["连然街道1组 530181********1234 号", '\'=HYPERLINK("x")', "短号 12345", None]
