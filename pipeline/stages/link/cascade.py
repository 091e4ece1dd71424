"""The cascade of ``rules/matching.yaml`` as steps over named tables: trivial links
(:func:`trivial_step`), candidates (:func:`candidates_step`), name scores
(:func:`score_candidates`), decisions (:func:`decide_steps`); :func:`cascade` runs them."""

from __future__ import annotations

import duckdb
import polars as pl

from ...core import names
from ...core.db import sql_literal, store
from ...core.i18n import _
from ...core.policy import MatchRule
from .common import (
    LinkTables,
    Step,
    _base_sources,
    _near_days,
    _near_sql,
    _rules,
    _sql_list,
    _wildcard_like,
    holders_sql,
    run_steps,
)  # fmt: skip


def trivial_step(t: LinkTables, rows_sql: str | None = None) -> Step:
    """``{prefix}_trivial``: rows (of ``rows_sql``, by default ``t.rows``) whose trusted ID belongs
    to a person with the very same name key.

    Nearly every row is one of these; the first rules of the cascade (exact_id,
    upgraded_id) would link them with a name score of 1.0 whatever else is tried,
    so they are settled by one join and only the rest goes through the cascade
    (the caller leaves them out of ``t.rows``).
    """
    # The first exact-ID rule per ID kind; one with band: review is left to the cascade.
    by_kind: dict[str, MatchRule] = {}
    for r in _rules().rules:
        if r.candidates == "id_equal":
            for k in r.id_kinds:
                by_kind.setdefault(k, r)
    by_kind = {k: r for k, r in by_kind.items() if r.band == "auto"}
    if not by_kind:
        return Step(
            t.out("trivial"),
            "SELECT NULL::BIGINT AS row_id, NULL::VARCHAR AS person_id, NULL::VARCHAR AS rule, "
            "NULL::DOUBLE AS confidence, NULL::VARCHAR AS file, NULL::VARCHAR AS source WHERE false",
        )
    cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(r.rule)}" for k, r in by_kind.items())
    conf = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(float(r.confidence))}" for k, r in by_kind.items()
    )
    return Step(
        t.out("trivial"),
        f"""
        SELECT r.row_id, p.person_id, CASE r.id_kind {cases} END AS rule, CASE r.id_kind {conf} END AS confidence,
               r.file, r.source
        FROM {rows_sql or t.rows} r JOIN {t.persons} p ON p.person_id = r.id_canonical AND p.name_key = r.name_key
        WHERE r.id_kind IN ({_sql_list(list(by_kind))}) AND NOT regexp_matches(r.name, {sql_literal(NOTE_SQL)})
        """,
    )


# A name that carries a note (张三(已故), 王五 备注:迁出): resolved by the cascade, which shows it.
NOTE_SQL = r"[(（\[【〔]|备注|注\s*[:：]"


# candidates method -> (join clause with {k} for the name key and {p} for the persons table,
# extra WHERE condition)
NAME_JOINS = {
    "name_birth": ("JOIN {p} p ON p.birth_date = r.birth_date_stated AND p.{k} = r.{k}", ""),
    "same_household_name": (
        "JOIN {p} owner ON owner.person_id = r.id_canonical "
        "JOIN {p} p ON p.household_no = owner.household_no AND p.{k} = r.{k}",
        "p.person_id <> owner.person_id",
    ),
    "name_prefix": (
        "JOIN {p} p ON p.{k} = r.{k} AND left(p.person_id, 6) = left(r.id_digits, 6)",
        "length(r.id_digits) >= 6 AND r.street_code IS NULL AND (r.id_kind <> 'excel' "
        "OR starts_with(p.person_id, r.id_digits) OR p.prefix15_rounded = r.id_digits)",
    ),
    "same_birth_place_name": (
        "JOIN {p} owner ON owner.person_id = r.id_canonical "
        "JOIN {p} p ON p.birth_date = owner.birth_date AND left(p.person_id, 6) = left(owner.person_id, 6) "
        "AND p.{k} = r.{k}",
        "p.person_id <> owner.person_id",
    ),
    "name_place": (
        "JOIN {p} p ON p.street_code = r.street_code AND p.{k} = r.{k}",
        "(r.community IS NULL OR p.community = r.community) "
        "AND (r.id_digits IS NULL OR starts_with(p.person_id, left(r.id_digits, 6)))",
    ),
}


def _home_codes_sql(persons: str) -> str:
    """SQL: the address codes (6 digits) of at least ``plausibility.home_code_share`` of the
    household persons of ``persons`` (the codes whose people the population mostly holds)."""
    share = float(_rules().home_code_share)
    return (
        f"SELECT left(person_id, 6) FROM {persons} WHERE hukou_local GROUP BY 1 "
        f"HAVING count(*) >= {sql_literal(share)} * (SELECT count(*) FROM {persons} WHERE hukou_local)"
    )


def candidates_step(t: LinkTables) -> Step:
    """``{prefix}_candidates_raw``: every (row, person, rule) the cascade proposes (before names are scored)."""
    parts = []
    for order, rule in enumerate(_rules().rules):
        how = rule.candidates
        if how in ("former_id_equal", "id_equal_former_name") and t.former is None:
            continue
        head = f"SELECT r.row_id, p.person_id, {sql_literal(rule.rule)} AS rule, {sql_literal(order)} AS rule_order"
        rows = f"(SELECT * FROM {t.rows} WHERE id_kind IN ({_sql_list(list(rule.id_kinds))}))"
        parts += _method_parts(t, rule, head, rows)
    shared = _shared_ctes(t)
    return Step(
        t.out("candidates_raw"), shared + "SELECT DISTINCT * FROM (" + " UNION ALL ".join(parts) + ")"
    )


def _shared_ctes(t: LinkTables) -> str:
    """The WITH clause of :func:`candidates_step`: what several parts read, computed once.

    ``_unowned``: the rows whose ID is nobody's (rules name_birth_near, birth_corrected);
    ``_cb``: the birth_corrected candidates (row, person, ``hh``: a household person);
    ``_np``: the name_prefix candidates (every surviving digit + name) with ``strong`` (see
    :func:`_np_sql`); ``_own``: (person, source) where the run already holds a row of the person's
    own (a trivial link, or the same name and an ID one keystroke from theirs)."""
    methods = {r.candidates for r in _rules().rules}
    ctes = []
    if methods & {"name_birth_near", "birth_corrected"}:
        ctes.append(
            f"""_unowned AS MATERIALIZED (
            SELECT r.* FROM {t.rows} r ANTI JOIN {t.persons} o ON o.person_id = r.id_canonical
            ANTI JOIN {holders_sql(t.persons)} h ON h.holder_of = r.id_canonical
            WHERE r.id_canonical IS NOT NULL AND r.name_key <> '')"""
        )
    np_ = bool(methods & {"name_prefix", "name_prefix_elsewhere"})
    cb = "birth_corrected" in methods
    if cb:
        # a valid ID that is nobody's and differs from one person's only in the birth-date digits
        # (the same address code and sequence code: a number re-issued after a birth-date
        # correction), a birth date at most corrected_birth_days away, the very same name
        ctes.append(
            f"""_cb AS MATERIALIZED (
            SELECT r.row_id, p.person_id, p.hukou_local AS hh FROM _unowned r
            JOIN {t.persons} p ON p.name_key = r.name_key AND left(p.person_id, 6) = left(r.id_canonical, 6)
             AND substr(p.person_id, 15, 3) = substr(r.id_canonical, 15, 3)
            WHERE abs(date_diff('day', p.birth_date, r.birth_date)) <= {int(_near_days())})"""
        )
    if np_:
        join, where = NAME_JOINS["name_prefix"]
        found = " UNION ".join(
            f"SELECT r.row_id, r.source, p.person_id, p.hukou_local AS hh, p.name_key = r.name_key AS chars, "
            f"{_fits_sql(t)} AS fits FROM {t.rows} r {join.format(k=k, p=t.persons)} WHERE r.{k} <> '' AND {where}"
            for k in ("name_key", "name_py")
        )
        ctes.append(f"_np0 AS MATERIALIZED ({found})")
    if np_ or cb:
        who = " UNION ".join(f"SELECT person_id FROM {c}" for c, on in (("_np0", np_), ("_cb", cb)) if on)
        ctes.append(
            f"""_own_p AS MATERIALIZED ({who}),
            _own AS MATERIALIZED (
                SELECT DISTINCT tv.person_id, tv.source FROM {t.out("trivial")} tv SEMI JOIN _own_p USING (person_id)
                UNION
                SELECT p.person_id, q.source FROM _own_p JOIN {t.persons} p USING (person_id)
                JOIN {t.rows} q ON q.name_key = p.name_key
                WHERE length(q.id_digits) = 18 AND hamming(q.id_digits, left(p.person_id, 18)) <= 1)"""
        )
    if np_:
        ctes.append(f"_np AS MATERIALIZED ({_np_sql(t)})")
    return ("WITH " + ", ".join(ctes) + " ") if ctes else ""


def _np_sql(t: LinkTables) -> str:
    """SQL: the name_prefix candidates of ``_np0`` with ``strong``: every person the row's name and
    surviving digits point to (and who could be linked: plausible, not rejected by a reviewer) is a
    household person of the very same characters (the sound alone
    is not enough: at a city's density a namesake by sound is likelier than a row of theirs) and
    either of a home address code (:func:`_home_codes_sql`) or without a row of their own in the
    row's source (a department lists a person once; a namesake who has one there is somebody else)."""
    # only the candidates that could be linked count (plausible, not rejected by a reviewer)
    rejected = (
        f"EXISTS (SELECT 1 FROM {t.forbidden} f WHERE f.row_id = n.row_id AND f.person_id = n.person_id)"
        if t.forbidden
        else "false"
    )
    return f"""
        SELECT n.row_id, n.person_id,
               coalesce(bool_and(n.hh AND n.chars AND (n.home OR NOT n.own)) FILTER (WHERE n.fits AND NOT {rejected})
                        OVER (PARTITION BY n.row_id), true) AS strong
        FROM (
            SELECT n.*, left(n.person_id, 6) IN ({_home_codes_sql(t.persons)}) AS home,
                   EXISTS (SELECT 1 FROM _own o WHERE o.person_id = n.person_id AND o.source = n.source) AS own
            FROM _np0 n
        ) n"""


def _method_parts(t: LinkTables, rule: MatchRule, head: str, rows: str) -> list[str]:
    """The SELECTs proposing the candidates of one rule (``head``: its select list; ``rows``: the
    rows of its ID kinds) by its ``candidates`` method."""
    P = t.persons
    name, how = rule.rule, rule.candidates
    none = "NULL::VARCHAR AS alt_key, NULL::VARCHAR AS alt_py, NULL::VARCHAR AS alt_name"
    unowned = f"(SELECT * FROM _unowned WHERE id_kind IN ({_sql_list(list(rule.id_kinds))}))"
    former = "f.former_key AS alt_key, f.former_py AS alt_py, f.former_name AS alt_name"
    parts: list[str] = []
    if how == "id_equal":
        parts.append(f"{head}, {none} FROM {rows} r JOIN {P} p ON p.person_id = r.id_canonical")
    elif how == "shared_id_equal":
        # a number the household gives to several people (重号): every holder is a candidate, the
        # row's name picks one (several or none: review against all of them)
        parts.append(f"{head}, {none} FROM {rows} r JOIN {holders_sql(P)} p ON p.holder_of = r.id_canonical")
    elif how == "former_id_equal":
        # the row's ID is a person's former ID: the name may be the current or the former one
        for alt in (none, former):
            parts.append(
                f"{head}, {alt} FROM {rows} r JOIN {t.former} f ON f.former_id = r.id_canonical "
                f"JOIN {P} p ON p.person_id = f.person_id"
            )
    elif how == "id_equal_former_name":
        parts.append(
            f"{head}, {former} FROM {rows} r JOIN {P} p ON p.person_id = r.id_canonical "
            f"JOIN {t.former} f ON f.person_id = p.person_id WHERE f.former_key IS NOT NULL"
        )
    elif how == "name_birth_near":
        # a valid ID that is nobody's: the same name and birth date, or the same name, address
        # code and a birth date at most corrected_birth_days away (a corrected number)
        near = _near_sql("p.person_id", "p.birth_date", "r.id_canonical", "r.birth_date")
        wild = [
            f"left(p.name_key, 1) = left(r.name_key, 1) AND length(p.name_key) = length(r.name_key) "
            f"AND regexp_matches({h}.name_key, '[?*]') AND left({h}.name_key, 1) NOT IN ('?', '*') "
            f"AND {o}.name_key LIKE {_wildcard_like(f'{h}.name_key')} ESCAPE '!'"
            for h, o in (("p", "r"), ("r", "p"))
        ]  # a placeholder on either side
        for on in ("p.name_key = r.name_key", "p.name_py = r.name_py", *wild):
            parts.append(f"{head}, {none} FROM {unowned} r JOIN {P} p ON {on} AND {near}")
    elif how == "birth_corrected":
        # (_cb: see _shared_ctes) only a household person, whose number the household record holds:
        # while the run already holds a row of theirs with the current number in another source,
        # a row with a number days off and the same name is as likely a namesake born nearby (a
        # city's density): corrected_id, a review rule, proposes them instead.
        own = f"SELECT 1 FROM _own o WHERE o.person_id = c.person_id AND o.source NOT IN ({_sql_list(_base_sources())})"
        parts.append(
            f"{head}, {none} FROM _cb c JOIN {unowned} r USING (row_id) JOIN {P} p USING (person_id) "
            f"WHERE c.hh AND NOT EXISTS ({own})"
        )
    elif how == "one_edit":
        # One substituted character leaves two of the three 6-character parts intact:
        # three selective equi-joins, then keep Hamming distance exactly 1.
        for a, b in ((1, 7), (1, 13), (7, 13)):
            parts.append(
                f"{head}, {none} FROM {rows} r JOIN {P} p "
                f"ON substr(p.person_id, {a}, 6) = substr(r.id_digits, {a}, 6) "
                f"AND substr(p.person_id, {b}, 6) = substr(r.id_digits, {b}, 6) "
                f"WHERE hamming(left(p.person_id, 18), r.id_digits) = 1"
            )
        # An adjacent swap: swap each neighbouring pair back and look the result up.
        parts.append(
            f"""{head}, {none} FROM (
                SELECT r0.row_id, substr(r0.id_digits, 1, i - 1) || substr(r0.id_digits, i + 1, 1)
                       || substr(r0.id_digits, i, 1) || substr(r0.id_digits, i + 2) AS swapped
                FROM {rows} r0, range(1, 18) t(i)
                WHERE substr(r0.id_digits, i, 1) <> substr(r0.id_digits, i + 1, 1)
            ) r JOIN {P} p ON p.person_id = r.swapped"""
        )
    elif how == "id_prefix":
        n = int(rule.min_digits or 15)
        # Excel rounds to 15 significant digits (others truncate): accept either form.
        for prefix in ("p.prefix15", "p.prefix15_rounded"):
            parts.append(
                f"{head}, {none} FROM {rows} r JOIN {P} p ON {prefix} = r.id_digits WHERE length(r.id_digits) >= {sql_literal(n)}"
            )
    elif how in ("name_prefix", "name_prefix_elsewhere"):
        # Only the address code survives (5.30121E+17): name + code point to one person only where
        # every candidate of the row is strong (_np_sql); otherwise the extract's outsiders of that
        # code and name are as likely: name_prefix_elsewhere, a review rule. (_np: see _shared_ctes.)
        keep = "p.strong" if how == "name_prefix" else "NOT p.strong"
        parts.append(f"{head}, {none} FROM _np p JOIN {rows} r USING (row_id) WHERE {keep}")
    elif how in NAME_JOINS:
        # Name-keyed rules: one equi-join on the simplified-character key, one on the pinyin key.
        join, where = NAME_JOINS[how]
        for k in ("name_key", "name_py"):
            parts.append(
                f"{head}, {none} FROM {rows} r {join.format(k=k, p=P)} WHERE r.{k} <> ''"
                + (f" AND {where}" if where else "")
            )
    else:
        raise ValueError(
            _("rules/matching.yaml: unknown candidates method {method!r} in rule {rule}").format(
                method=how, rule=name
            )
        )
    return parts


def score_candidates(con: duckdb.DuckDBPyConnection, t: LinkTables) -> None:
    """``{prefix}_candidates``: ``{prefix}_candidates_raw`` plus ``name_score`` (rapidfuzz, vectorised)."""
    pairs = con.sql(
        f"""
        SELECT c.row_id, c.person_id, c.rule, c.rule_order,
               r.name_key AS r_key, r.name_py AS r_py, r.name AS r_name,
               coalesce(c.alt_key, p.name_key) AS p_key, coalesce(c.alt_py, p.name_py) AS p_py,
               coalesce(c.alt_name, p.name) AS p_name
        FROM {t.out("candidates_raw")} c JOIN {t.rows} r USING (row_id) JOIN {t.persons} p USING (person_id)
        """
    ).pl()
    cfg = _rules()
    scores, evidence = names.name_agreement(
        pairs["r_key"].to_list(), pairs["r_py"].to_list(), pairs["p_key"].to_list(), pairs["p_py"].to_list(),
        pairs["r_name"].fill_null("").to_list(), pairs["p_name"].fill_null("").to_list(),
        understood=float(cfg.agree if cfg.understood is None else cfg.understood),
        parts={k: list(vs) for k, vs in cfg.name_parts.items()},
    )  # fmt: skip
    scored = (
        pairs.select("row_id", "person_id", "rule", "rule_order")
        .with_columns(
            name_score=pl.Series(scores, dtype=pl.Float64),
            name_evidence=pl.Series([str(e) for e in evidence], dtype=pl.String),
        )
        # a pair proposed with the current and with the former name: the better agreement counts
        .sort("name_score", descending=True, maintain_order=True)
        .unique(["row_id", "person_id", "rule", "rule_order"], keep="first", maintain_order=True)
    )
    store(con, t.out("candidates"), scored)


def _rules_values() -> str:
    """The rules of ``rules/matching.yaml`` as an inline table (rule, threshold, band, …)."""
    cfg = _rules()
    agree, same = cfg.agree, cfg.same
    values = []
    for r in cfg.rules:
        threshold = float(same if r.name == "same" else agree)
        band, why = str(r.band), str(r.review_reason)
        values.append(
            f"({sql_literal(r.rule)}, {sql_literal(threshold)}::DOUBLE, {sql_literal(band)}, {sql_literal(why)}, "
            f"{sql_literal(float(r.confidence))}::DOUBLE, "
            f"{sql_literal(bool(r.prefer_same_street))}, {sql_literal(r.candidates in ID_ANCHORED_METHODS)}, "
            f"{sql_literal(r.candidates in EXACT_ID_METHODS)}, {sql_literal(r.candidates in UNDERSTOOD_METHODS)})"
        )
    return (
        "(SELECT * FROM (VALUES " + ", ".join(values) + ") "
        "v(rule, threshold, band, review_reason, confidence, prefer_same_street, id_anchored, exact_id, understands))"
    )


# Candidate methods resting on an exact ID (the row's own, or a person's registered former one):
# only the others must pass the plausibility checks (birth date, adults-only sources).
EXACT_ID_METHODS = ("id_equal", "shared_id_equal", "former_id_equal", "id_equal_former_name")
# The row's own ID is the person's: a name that clearly differs is never accepted silently, the row is
# reviewed against every person of that ID (a shared number's holders included).
ID_ANCHORED_METHODS = ("id_equal", "shared_id_equal")
# Those that count a name that agrees once a placeholder, mask, pinyin or parts are understood: the
# exact-ID ones and one_edit (an ID one keystroke
# from the person's, whose check digit failed: valid numbers are too sparse for a neighbour to be
# somebody else's by chance; rival namesakes of the same birth date go to review as for an exact ID)
UNDERSTOOD_METHODS = (*EXACT_ID_METHODS, "one_edit")


SPECIAL_EVIDENCE_SQL = _sql_list(list(names.SPECIAL_EVIDENCE))


SHOWN_EVIDENCE_SQL = _sql_list([*names.SPECIAL_EVIDENCE, "note"])


def _fits_sql(t: LinkTables) -> str:
    """SQL (over ``r`` the row, ``p`` the candidate) true when the pair passes the plausibility
    checks of an automatic rule not resting on an exact ID: not a child for a source about adults
    only, and the row's stated birth date, where it has one, the person's."""
    cfg = _rules()
    adults, age = list(cfg.adult_only_sources), int(cfg.adult_age)
    as_of = f"DATE {sql_literal(t.as_of.isoformat())}" if t.as_of else "current_date"
    child = (
        f"(r.source IN ({_sql_list(adults)}) AND p.birth_date > {as_of} - INTERVAL {int(age)} YEAR)"
        if adults and age
        else "false"
    )
    birth = "(r.birth_date_stated IS NULL OR p.birth_date IS NULL OR r.birth_date_stated = p.birth_date)"
    return f"(NOT coalesce({child}, false) AND {birth})"


def _plausible_sql(t: LinkTables) -> str:
    """SQL (over ``r`` the row, ``p`` the candidate, ``ru`` the rule) true when the pair is plausible."""
    return f"(ru.exact_id OR ru.band <> 'auto' OR {_fits_sql(t)})"


def _rivals_sql(t: LinkTables, chosen: str) -> str:
    """SQL: for each automatic candidate of ``chosen`` whose name agreed only once understood
    (placeholder, mask, pinyin), every other person of the same birth date and address code who
    fits as well (see :func:`decide_steps`)."""
    fits = (
        f"((regexp_matches(r.name_key, '[?*]') AND q.name_key LIKE {_wildcard_like('r.name_key')} ESCAPE '!') "
        "OR (c.name_evidence = 'latin' AND q.name_py = r.name_py) "
        # a name that only resembles the owner's while it is exactly someone else's (twins 张勇 / 张勇华)
        "OR (c.name_evidence = 'fuzzy' AND (q.name_key = r.name_key OR q.name_py = r.name_py)) "
        "OR (c.name_evidence = 'sound' AND q.name_key = r.name_key))"
    )
    P = t.persons
    # The owner's household counts only for a name that resembles the owner's while it is exactly
    # a relative's (王强博's number with 王强, his father's name: a relative's row carrying the
    # owner's ID); not for a placeholder or mask (张** fits most of a family, and the exact ID is
    # the stronger evidence). A name that only sounds like the owner's (刘鑫 with 刘兴's number: liu
    # xin, liu xing) counts where it is a relative's very characters.
    family = (
        "((c.name_evidence = 'fuzzy' AND (q.name_key = r.name_key OR q.name_py = r.name_py)) "
        "OR (c.name_evidence = 'sound' AND q.name_key = r.name_key))"
    )
    return " UNION ".join(
        f"""SELECT c.* REPLACE (q.person_id AS person_id) FROM {chosen} c
            JOIN {t.rows} r USING (row_id) JOIN {P} o ON o.person_id = c.person_id
            JOIN {P} q ON {on} AND q.person_id <> c.person_id
            WHERE c.band = 'auto' AND c.name_evidence IN ({SPECIAL_EVIDENCE_SQL}, 'fuzzy', 'sound') AND {cond}"""
        for on, cond in (
            ("left(q.person_id, 14) = left(o.person_id, 14)", fits),
            ("q.household_no = o.household_no", family),
        )
    )


def decide_steps(t: LinkTables) -> list[Step]:
    """``{prefix}_decisions`` (per row: linked or review, rule, confidence, review reason) and
    ``{prefix}_review`` (for review rows, the candidates that made them so)."""
    scored, chosen, differs = t.temp("scored"), t.temp("chosen"), t.temp("name_differs")
    chosen0 = t.temp("chosen0")
    forbidden = f"ANTI JOIN {t.forbidden} f USING (row_id, person_id)" if t.forbidden else ""
    return [
        Step(
            scored,
            f"""
            SELECT c.*, ru.threshold, ru.band, ru.review_reason, ru.confidence, ru.prefer_same_street,
                   ru.id_anchored,
                   (c.name_score >= ru.threshold OR (ru.band <> 'auto' AND c.name_evidence IN ({SPECIAL_EVIDENCE_SQL})))
                     AND (ru.understands OR ru.band <> 'auto' OR c.name_evidence NOT IN ({SPECIAL_EVIDENCE_SQL}))
                     AND {_plausible_sql(t)} AS passes,
                   (r.street_code IS NOT NULL AND p.street_code = r.street_code) AS same_street
            FROM {t.out("candidates")} c
            JOIN {_rules_values()} ru USING (rule)
            JOIN {t.rows} r USING (row_id)
            JOIN {t.persons} p USING (person_id)
            {forbidden}
            """,
            temp=True,
        ),
        # The deciding candidates: those of the first rule (in cascade order) whose name agrees.
        Step(
            chosen0,
            f"""
            WITH first_rule AS (
                SELECT row_id, min(rule_order) AS rule_order FROM {scored} WHERE passes GROUP BY row_id
            ), chosen AS (
                SELECT c.* FROM {scored} c JOIN first_rule USING (row_id, rule_order) WHERE c.passes
            )
            -- where a rule prefers the row's street, candidates there beat the others
            SELECT * FROM chosen
            QUALIFY NOT prefer_same_street OR NOT bool_or(same_street) OVER (PARTITION BY row_id) OR same_street
            """,
            temp=True,
        ),
        # A name that agrees only once a placeholder, mask or pinyin is understood must not let two
        # people agree: another person of the same birth date and address code (twins: their numbers
        # differ in the sequence digits only) whose name fits it too makes the row a review row with both.
        Step(chosen, f"SELECT * FROM {chosen0} UNION ALL {_rivals_sql(t, chosen0)}", temp=True),
        # A trusted ID whose name clearly differs, with no other rule linking it: never accepted
        # silently (a rule of the review band proposing someone else: reviewed against both).
        Step(
            differs,
            f"""
            SELECT * FROM {scored}
            WHERE id_anchored AND NOT passes AND row_id NOT IN (SELECT row_id FROM {chosen} WHERE band = 'auto')
            """,
            temp=True,
        ),
        Step(
            t.out("decisions"),
            f"""
            WITH per_row AS (
                SELECT row_id, count(*) AS n, any_value(rule) AS rule, any_value(band) AS band,
                       any_value(review_reason) AS why,
                       any_value(confidence) AS confidence, min(person_id) AS person_id,
                       min(name_score) AS name_score, min(name_evidence) AS name_evidence
                FROM {chosen} GROUP BY row_id
            )
            SELECT row_id,
                   CASE WHEN n = 1 AND band = 'auto' THEN 'linked' ELSE 'review' END AS outcome,
                   CASE WHEN n = 1 AND band = 'auto' THEN person_id END AS person_id,
                   -- what made the name agree, where it was more than its characters and sound
                   rule || CASE WHEN name_evidence IN ({SHOWN_EVIDENCE_SQL}) THEN '+' || name_evidence ELSE '' END
                     AS match_rule,
                   CASE WHEN n = 1 AND band = 'auto' THEN confidence * (0.9 + 0.1 * name_score) END AS confidence,
                   CASE WHEN n > 1 THEN 'several candidates agree'
                        WHEN band <> 'auto' THEN why END AS review_reason
            FROM per_row
            UNION ALL
            SELECT row_id, 'review', NULL, any_value(rule), NULL, 'ID matches but the name differs'
            FROM {differs} WHERE row_id NOT IN (SELECT row_id FROM {chosen}) GROUP BY row_id
            UNION ALL
            SELECT row_id, 'linked', person_id, rule, confidence, NULL FROM {t.out("trivial")}
            """,
        ),
        # What a reviewer sees: only the candidates that made the row a review row.
        Step(
            t.out("review"),
            f"""
            SELECT d.row_id, d.match_rule, d.review_reason, c.person_id, c.rule AS candidate_rule, c.name_score
            FROM {t.out("decisions")} d
            JOIN (SELECT row_id, person_id, rule, name_score FROM {chosen}
                  UNION ALL SELECT row_id, person_id, rule, name_score FROM {differs}) c
              ON c.row_id = d.row_id
            WHERE d.outcome = 'review'
            """,
        ),
    ]


def cascade(con: duckdb.DuckDBPyConnection, t: LinkTables, progress=lambda msg: None) -> None:
    """Propose, score and decide for the rows of ``t.rows`` (``{prefix}_trivial`` already built and
    its rows left out of ``t.rows``): writes ``{prefix}_decisions`` and ``{prefix}_review``."""
    progress(_("link: proposing candidates"))
    run_steps(con, [candidates_step(t)])
    progress(_("link: scoring names"))
    score_candidates(con, t)
    run_steps(con, decide_steps(t))
