"""No silent listing (issue 20): ``link_evidence``, the enrolment rows a person could be and the
run did not accept."""

from __future__ import annotations

import duckdb
import polars as pl

from ...core import names
from ...core.db import frame, store
from ...core.labels import EVIDENCE_LABELS, REVIEW_REASON_LABELS
from .common import _composed_names, _masked_sql, _near_sql, _rules, _sql_list, _wildcard_like


def listing_evidence(con: duckdb.DuckDBPyConnection) -> None:
    """``link_evidence`` (person_id, evidence): rows of the sources of ``no_silent_listing`` in
    rules/matching.yaml that could be a person's and were not accepted — in review with them as
    a candidate; in review or unmatched with the same name (characters or sound) and the same
    birth date, or the same address code and a near birth date (a corrected number); unmatched
    with an ID one character from theirs; or with a name whose placeholders or mask fit theirs
    and an ID that begins like theirs (or the same birth date). Such a person is never listed
    without a flag (classify: needs_review; the hand-off shows the evidence, IDs masked)."""
    watched = list(_rules().no_silent_listing)
    src = _sql_list(watched or ["-"])
    masked = f"coalesce({_masked_sql('s.id_digits')}, '-')"
    # the few rows concerned, once (every part below reads them)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _le_rows AS
            SELECT l.row_id, l.file, l.row, l.outcome, l.reason, s.id_digits, s.id_canonical,
                   s.name_key, s.name_py, s.birth_date, s.street_code, s.community
            FROM links l JOIN std_rows s USING (row_id)
            WHERE l.source IN ({src}) AND l.outcome IN ('review', 'unmatched')"""
    )
    rows_sql = "_le_rows"
    head = f"SELECT p.person_id, s.row_id, s.file, s.row, {masked} AS id_masked"
    _composed_names(con, rows_sql)  # (read by a part: a rare character written as its parts)
    _one_of_surname(con, rows_sql)  # (read by a part: a damaged ID, its street, one person of the surname)
    parts = _evidence_parts(rows_sql, head)
    # the reasons in Chinese for the hand-off (core/labels.py), as a table of parameters
    con.execute("CREATE OR REPLACE TEMP TABLE _le_labels (why VARCHAR, shown VARCHAR)")
    con.executemany(
        "INSERT INTO _le_labels VALUES (?, ?)", list({**REVIEW_REASON_LABELS, **EVIDENCE_LABELS}.items())
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE link_evidence AS
        WITH e AS (
            SELECT * FROM ({" UNION ALL ".join(parts)})
            QUALIFY row_number() OVER (PARTITION BY person_id, row_id ORDER BY prio) = 1
        )
        SELECT person_id,
               '可能已参保: ' || string_agg(file || ' 第' || row || '行 ' || id_masked || ' (' || coalesce(lb.shown, e.why) || ')',
                                        '; ' ORDER BY row_id) AS evidence
        FROM e LEFT JOIN _le_labels lb ON lb.why = e.why GROUP BY person_id
        """
    )
    con.execute("DROP TABLE IF EXISTS _le_labels")
    con.execute("DROP TABLE IF EXISTS _le_surname")
    con.execute("DROP TABLE IF EXISTS _le_rows")


def _one_of_surname(con: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """``_le_surname`` (row_id, person_id): rows of ``rows_sql`` whose ID Excel cut to its first
    digits (5.30121E+17) and that name a street and community, where exactly one person of that
    street and community has an ID beginning with those digits and the row's surname (its first
    character, or, a name in Latin letters, beginning with the very pinyin of that person's surname).
    Such a row may be theirs under a former name the household does not list (闫超's row as YANXIAO)."""
    pairs = frame(
        con,
        f"""SELECT s.row_id, s.name_key, s.name_py, p.person_id, p.name_key AS p_key
            FROM {rows_sql} s JOIN link_persons p
              ON p.street_code = s.street_code AND p.community = s.community
             AND left(p.person_id, 6) = left(s.id_digits, 6)
            WHERE s.id_canonical IS NULL AND length(s.id_digits) >= 6 AND s.name_key <> ''
              AND starts_with(p.person_id, s.id_digits) AND p.name_key <> ''
              -- the same surname character, or a name in Latin letters (its sound is compared below)
              AND (left(p.name_key, 1) = left(s.name_key, 1) OR regexp_full_match(s.name_key, '[A-Za-z]+'))""",
    )
    surname = pl.col("p_key").str.slice(0, 1)
    # the surname's characters, or (a name in Latin letters) its very pinyin (杨 yang is not 闫 yan)
    latin = pl.col("name_key").str.contains(r"^[A-Za-z]+$")
    sounds = {
        k: names.exact_sound(k) for k in pairs.filter(latin).select(surname.unique()).to_series().to_list()
    }
    sound = surname.replace_strict(sounds, default="", return_dtype=pl.String)
    agree = pairs.filter(
        (pl.col("name_key").str.slice(0, 1) == surname)
        | (latin & (sound != "") & pl.col("name_key").str.to_lowercase().str.starts_with(sound))
    )
    one = agree.filter(pl.len().over("row_id") == 1).select("row_id", "person_id")
    store(con, "_le_surname", one)


def _evidence_parts(rows_sql: str, head: str) -> list[str]:
    """The SELECTs of :func:`listing_evidence`, one per kind of evidence (``head``: the select
    list; ``rows_sql``: the watched rows in review or unmatched; ``_link_composed`` built)."""
    parts = [
        f"""{head}, s.reason AS why, 1 AS prio FROM {rows_sql} s JOIN link_review v USING (row_id)
            JOIN link_persons p USING (person_id) WHERE s.outcome = 'review'""",
        *(
            f"""{head}, 'not accepted: same name, same or near birth date' AS why, 2 AS prio FROM {rows_sql} s
            JOIN link_persons p ON p.{k} = s.{k}
             AND {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")}
            WHERE s.{k} <> ''"""
            for k in ("name_key", "name_py")
        ),
        # a placeholder or mask (? *) stands for one character: the rest of the name, its length
        # and the surviving ID digits (or the birth date) agree
    ]
    # either name may hold the placeholders (the household's or the extract's), or both (张*凤 in
    # the extract, 张婷? in the household: each character agrees or one of the two is lost)
    both = (
        "list_bool_and([substr(s.name_key, i, 1) = substr(p.name_key, i, 1) OR substr(s.name_key, i, 1) "
        "IN ('?', '*') OR substr(p.name_key, i, 1) IN ('?', '*') for i in range(1, length(s.name_key) + 1)])"
    )
    fits = [
        *(
            f"regexp_matches({holder}.name_key, '[?*]') "
            f"AND {other}.name_key LIKE {_wildcard_like(f'{holder}.name_key')} ESCAPE '!'"
            for holder, other in (("s", "p"), ("p", "s"))
        ),
        f"regexp_matches(s.name_key, '[?*]') AND regexp_matches(p.name_key, '[?*]') AND {both}",
    ]
    for fit in fits:
        parts.append(
            f"""{head}, 'not accepted: name with placeholders fits, ID begins alike' AS why, 3 AS prio
            FROM {rows_sql} s JOIN link_persons p
              ON left(p.name_key, 1) = left(s.name_key, 1) AND length(p.name_key) = length(s.name_key)
            WHERE {fit} AND left(s.name_key, 1) NOT IN ('?', '*')
              AND (starts_with(p.person_id, left(s.id_digits, 6)) OR p.birth_date = s.birth_date)"""
        )
    # the same name (characters or sound) and an ID two characters or fewer from theirs (a typo, a
    # swap); an ID taken for Excel's (15 digits and 000: a swapped number that happens to end so) by its 15
    near = (
        "((length(s.id_digits) = 18 AND hamming(left(p.person_id, 18), s.id_digits) <= 2) "
        "OR (length(s.id_digits) = 15 AND hamming(left(p.person_id, 15), s.id_digits) <= 2))"
    )
    parts.append(
        f"""{head}, 'not accepted: same name, ID two characters or fewer from theirs' AS why, 4 AS prio
            FROM {rows_sql} s JOIN link_persons p ON p.name_key = s.name_key
            WHERE {near}
            UNION ALL
            {head}, 'not accepted: same name, ID two characters or fewer from theirs', 4
            FROM {rows_sql} s JOIN link_persons p ON p.name_py = s.name_py
            WHERE {near} AND s.name_py <> ''"""
    )
    # a damaged ID (Excel): the same name (characters or sound) and every surviving digit
    for k in ("name_key", "name_py"):
        parts.append(
            f"""{head}, 'not accepted: same name, the surviving ID digits agree' AS why, 4 AS prio
                FROM {rows_sql} s JOIN link_persons p ON p.{k} = s.{k}
                WHERE s.{k} <> '' AND s.id_canonical IS NULL AND length(s.id_digits) >= 6
                  AND starts_with(p.person_id, s.id_digits)"""
        )
    # a relative's row with the ID's owner's number: the member of the owner's household of that name;
    # a name the household lists as someone's former name (曾用名), with an ID that begins alike
    for k, former_k in (("name_key", "former_key"), ("name_py", "former_py")):
        parts.append(
            f"""{head}, 'not accepted: a member of the household of the ID''s owner with that name' AS why, 3 AS prio
                FROM {rows_sql} s JOIN link_persons o ON o.person_id = s.id_canonical
                JOIN link_persons p ON p.household_no = o.household_no AND p.person_id <> o.person_id
                 AND p.{k} = s.{k}
                WHERE s.{k} <> ''"""
        )
        parts.append(
            f"""{head}, 'not accepted: their former name, ID begins alike' AS why, 3 AS prio
                FROM {rows_sql} s JOIN link_former f ON f.{former_k} = s.{k}
                JOIN link_persons p ON p.person_id = f.person_id
                WHERE s.{k} <> '' AND (starts_with(p.person_id, left(s.id_digits, 6))
                                       OR {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")})"""
        )
    # a rare character written as its parts (name_parts of rules/matching.yaml): the name put back together
    parts.append(
        f"""{head}, 'not accepted: same name once its parts are put together' AS why, 3 AS prio
            FROM {rows_sql} s JOIN _link_composed c USING (row_id) JOIN link_persons p ON p.name_key = c.composed
            WHERE {_near_sql("p.person_id", "p.birth_date", "s.id_canonical", "s.birth_date")}
               OR starts_with(p.person_id, left(s.id_digits, 6))"""
    )
    # a damaged ID in a row with a street: its digits, the street and community and the surname fit one person
    parts.append(
        f"""{head}, 'not accepted: the surviving ID digits, street, community and surname fit them alone' AS why,
                  4 AS prio
            FROM {rows_sql} s JOIN _le_surname u USING (row_id) JOIN link_persons p ON p.person_id = u.person_id"""
    )
    for a, b in ((1, 7), (1, 13), (7, 13)):
        parts.append(
            f"""{head}, 'not accepted: ID one character from theirs' AS why, 4 AS prio
                FROM {rows_sql} s JOIN link_persons p ON substr(p.person_id, {a}, 6) = substr(s.id_digits, {a}, 6)
                 AND substr(p.person_id, {b}, 6) = substr(s.id_digits, {b}, 6)
                WHERE s.outcome = 'unmatched' AND length(s.id_digits) = 18 AND hamming(left(p.person_id, 18), s.id_digits) = 1"""
        )
    return parts
