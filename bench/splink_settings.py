"""Splink 5 (DuckDB backend) configuration for linking Anning's extract rows to household persons.

Written for this data, from the same standardised identity columns kuomian's linker
reads (``std_rows``): one input table per side, both with the columns

* ``unique_id``  — the std row id;
* ``id``         — ``id_canonical`` when the ID is valid / upgraded, else the digits that
  survived (``id_digits``: 18 bad characters, or the 15 digits Excel kept), else null;
* ``id_prefix``  — ``left(id, 14)`` (address code + birth date), null when shorter;
* ``id_tail``    — ``substr(id, 15, 4)`` (sequence + check), null when shorter than 18;
* ``name_key``   — simplified-character name key; ``name_py`` — fuzzy pinyin key;
* ``dob``        — birth date (from the ID — also from one whose check digit fails — else as
  stated); ``street`` — 12-digit street code.

Blocking (pairs generated for prediction; a pair found by an earlier rule is not repeated):
exact ID; ID prefix (address code + birth date, catches a typo or Excel damage in the last
digits); name key + birth date and pinyin key + birth date (no usable ID); name key + ID tail
(a typo in the first 14 digits); name key + the 6-digit address code when Excel left fewer than
14 digits; name key + street when a side has no ID at all.

Comparisons: ID (exact / one substitution / an adjacent swap or two substitutions / the
15 digits Excel kept / the few digits Excel kept / else), name (exact key with term-frequency adjustment / same pinyin / one
character differs / else), birth date and street (exact / else). Every comparison has a
null level. Parameters are trained (u by random sampling, m by EM on three blocking rules
that each leave the other comparisons free), see ``splink_run.py``.
"""

from __future__ import annotations


def _null(col: str) -> dict:
    return {
        "sql_condition": f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
        "label_for_charts": f"{col} missing",
        "is_null_level": True,
    }


ELSE = {"sql_condition": "ELSE", "label_for_charts": "else"}
# Hamming distance only between IDs of equal length (DuckDB raises otherwise). Cheap: damerau_levenshtein
# costs ~11 µs a pair here, levenshtein ~3 µs, this ~0.2 µs — it decides how long u-sampling takes.
_HAMMING = 'CASE WHEN length("id_l") = length("id_r") THEN hamming("id_l", "id_r") END'


def _prefix_agrees(lo: int, hi: int) -> str:
    """One side is an Excel-damaged ID (lo..hi surviving digits) that starts the other."""
    return (
        f'(length("id_r") BETWEEN {lo} AND {hi} AND starts_with("id_l", "id_r")) '
        f'OR (length("id_l") BETWEEN {lo} AND {hi} AND starts_with("id_r", "id_l"))'
    )


ID_COMPARISON = {
    "output_column_name": "id",
    "comparison_description": "resident ID number",
    "comparison_levels": [
        _null("id"),
        {"sql_condition": '"id_l" = "id_r"', "label_for_charts": "exact"},
        {
            "sql_condition": f"{_HAMMING} = 1",
            "label_for_charts": "one substitution",
            # Too rare among random pairs for u-sampling to see (1e7 pairs): fixed, about a tenth of
            # the u that sampling finds for two substitutions (~3e-6 here). Left untrained the level
            # would carry no weight and every mistyped ID would lose its best evidence.
            "u_probability": 3e-7,
            "fix_u_probability": True,
        },
        {"sql_condition": f"{_HAMMING} = 2", "label_for_charts": "adjacent swap or two substitutions"},
        {
            "sql_condition": _prefix_agrees(15, 17) + ' OR left("id_l", 15) = left("id_r", 15)',
            "label_for_charts": "the 15 digits Excel kept agree",
        },
        {"sql_condition": _prefix_agrees(6, 14), "label_for_charts": "the few digits Excel kept agree"},
        ELSE,
    ],
}

NAME_COMPARISON = {
    "output_column_name": "name",
    "comparison_description": "name (simplified key, fuzzy pinyin key)",
    "comparison_levels": [
        _null("name_key"),
        {
            "sql_condition": '"name_key_l" = "name_key_r"',
            "label_for_charts": "same characters",
            "tf_adjustment_column": "name_key",
            "tf_adjustment_weight": 1.0,
        },
        {"sql_condition": '"name_py_l" = "name_py_r"', "label_for_charts": "same sound (homophone)"},
        {
            "sql_condition": 'levenshtein("name_key_l", "name_key_r") <= 1',
            "label_for_charts": "one character differs",
        },
        ELSE,
    ],
}

DOB_COMPARISON = {
    "output_column_name": "dob",
    "comparison_description": "birth date",
    "comparison_levels": [
        _null("dob"),
        {"sql_condition": '"dob_l" = "dob_r"', "label_for_charts": "exact"},
        ELSE,
    ],
}

STREET_COMPARISON = {
    "output_column_name": "street",
    "comparison_description": "street code",
    "comparison_levels": [
        _null("street"),
        {"sql_condition": '"street_l" = "street_r"', "label_for_charts": "exact"},
        ELSE,
    ],
}

BLOCKING_RULES = [
    "l.id = r.id",
    "l.id_prefix = r.id_prefix",
    "l.name_key = r.name_key AND l.dob = r.dob",
    "l.name_py = r.name_py AND l.dob = r.dob",
    "l.name_key = r.name_key AND l.id_tail = r.id_tail",
    # an Excel-damaged ID keeps only its first digits (often just the 6-digit address code)
    "l.name_key = r.name_key AND left(l.id, 6) = left(r.id, 6) AND (length(l.id) < 14 OR length(r.id) < 14)",
    # no ID at all: name and street
    "l.name_key = r.name_key AND l.street = r.street AND (l.id IS NULL OR r.id IS NULL)",
]

# EM sessions: each blocks on columns the others estimate.
EM_BLOCKING_RULES = [
    "l.name_key = r.name_key AND l.dob = r.dob",  # estimates id, street
    "l.id = r.id",  # estimates name, dob, street
    "l.name_key = r.name_key AND l.street = r.street",  # estimates id (every kind of ID damage), dob
]


def settings(probability_two_random_records_match: float) -> dict:
    """The Splink settings dictionary (link_only: household persons ↔ other extract rows)."""
    return {
        "link_type": "link_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": probability_two_random_records_match,
        "blocking_rules_to_generate_predictions": [{"blocking_rule": r} for r in BLOCKING_RULES],
        "comparisons": [ID_COMPARISON, NAME_COMPARISON, DOB_COMPARISON, STREET_COMPARISON],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "max_iterations": 20,
        "em_convergence": 0.0001,
    }


# The SQL that turns std_rows into the two input tables (DuckDB). ``{std}`` is the Parquet path.
INPUT_SQL = """
WITH s AS (
    SELECT row_id, source, row_state, id_kind,
           coalesce(id_canonical, id_digits) AS id,
           nullif(name_key, '') AS name_key, nullif(name_py, '') AS name_py,
           -- the birth date the ID states, even when its check digit fails (a typo elsewhere leaves it right)
           coalesce(birth_date, try_strptime(substr(id_digits, 7, 8), '%Y%m%d')::DATE) AS dob,
           street_code AS street
    FROM read_parquet('{std}')
)
SELECT row_id AS unique_id, id,
       CASE WHEN length(id) >= 14 THEN left(id, 14) END AS id_prefix,
       CASE WHEN length(id) = 18 THEN substr(id, 15, 4) END AS id_tail,
       name_key, name_py, dob, street
FROM s
WHERE {where}
"""

# The base: household rows that define a person (first row per trusted ID), as kuomian's population base.
BASE_WHERE = (
    "source = 'household' AND row_state = 'ok' AND id_kind IN ('valid', 'upgraded') "
    "QUALIFY row_number() OVER (PARTITION BY id ORDER BY row_id) = 1"
)
ROWS_WHERE = "source <> 'household' AND row_state = 'ok'"
