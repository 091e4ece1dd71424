"""person_key and row fingerprints: standard HMAC-SHA256, written without digits."""

from __future__ import annotations

import hashlib
import hmac
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.privacy import fingerprint, fingerprints, person_key, person_keys

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
