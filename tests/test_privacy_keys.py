"""person_key and row fingerprints: standard HMAC-SHA256, written without digits."""

from __future__ import annotations

import hashlib
import hmac
import re

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from kuomian.core.db import rows as fetch
from kuomian.core.privacy import (
    fingerprint,
    fingerprint_sql,
    fingerprints,
    key_params,
    person_key,
    person_key_sql,
    person_keys,
)

LETTERS = str.maketrans("0123456789abcdef", "ABCDEFGHJKLMNPQR")


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=100),
    st.lists(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True), max_size=20),
)
def test_person_keys_are_hmac_sha256_of_the_id(key, ids):
    want = ["P" + hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:16].translate(LETTERS) for i in ids]
    assert person_keys(ids, key) == want
    assert [person_key(i, key) for i in ids] == want


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=100), st.lists(st.tuples(st.text(), st.none() | st.text()), max_size=10)
)
def test_fingerprints_match_one_by_one(key, rows):
    assert fingerprints(rows, key) == [fingerprint(*r, key=key) for r in rows]


def test_keys_never_hold_a_digit_so_no_scan_mistakes_them_for_an_id():
    key = b"k" * 32
    keys = person_keys([f"5301811990{i:08d}" for i in range(20000)], key)
    assert all(re.fullmatch(r"P[A-HJ-NP-R]{16}", k) for k in keys)
    assert len(set(keys)) == len(keys)


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=1, max_size=100),
    st.lists(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True) | st.none(), max_size=20),
)
def test_duckdb_person_keys_equal_the_python_ones(key, ids):
    con = duckdb.connect()
    got = fetch(
        con,
        f"SELECT {person_key_sql('i')} FROM unnest($ids::VARCHAR[]) WITH ORDINALITY t(i, n) ORDER BY n",
        {"ids": ids, **key_params(key)},
    )
    assert [g for (g,) in got] == [person_key(i, key) if i is not None else None for i in ids]


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=1, max_size=100),
    st.lists(st.tuples(TEXT, st.none() | TEXT, TEXT), min_size=1, max_size=10),
)
def test_duckdb_fingerprints_equal_the_python_ones(key, rows):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (n INT, a VARCHAR, b VARCHAR, c VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(n, *r) for n, r in enumerate(rows)])
    got = fetch(con, f"SELECT {fingerprint_sql('a', 'b', 'c')} FROM t ORDER BY n", key_params(key))
    assert [g for (g,) in got] == fingerprints(rows, key)
