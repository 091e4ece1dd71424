"""Issue 21, item 1: no value is ever SQL.

A scan of the package's source (its syntax tree, not a grep): every f-string, ``%``-formatting,
``.format(...)`` call and ``+`` concatenation that builds SQL text may put into it only

* a value passed through the one quoting helper (``sql_literal``, or ``literal`` of the rules
  engine, which calls it) or checked as an identifier (``ident``), or ``int(...)``/``len(...)``;
* a constant;
* a name from the allow-list below: a SQL fragment or identifier that the code itself owns, each
  with the reason it cannot carry a value from a user, a file or rules/.

Anything else (a policy value, a path, an option, a name read from a file) fails the test with
its file and line. A quote written by hand around an interpolation (``'{x}'``) always fails: that
is exactly how a ``'`` in a street name became code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|CREATE|DROP|DELETE|UPDATE|COPY|SET|WHEN|THEN|CASE|FROM|WHERE|JOIN|TABLE|"
    r"ATTACH|PRAGMA|EXISTS|UNION|VALUES|DATE|AND|OR|IN)\b"
    # SQL functions written in lower case (a fragment such as "year({birth}) - {n}")
    r"|\b(year|month|day|substr|left|length|coalesce|least|greatest|translate|concat_ws|sha256|unhex|"
    r"encode|to_months|hamming|starts_with|list_filter|list_sort|count|min|max|sum|nullif|trim|"
    r"any_value|bit_or|json_object|read_parquet|read_csv|read_text)\("
)
# Calls whose result is safe SQL text whatever their argument.
SAFE_CALLS = {
    "sql_literal": "the one quoting helper (core/db.py): doubles quotes, refuses NUL and non-finite numbers",
    "literal": "rules_engine.literal: every rules/ value through sql_literal",
    "ident": "core/db.py: checks a plain identifier ([A-Za-z_][A-Za-z0-9_]*) or raises",
    "int": "a whole number cannot carry SQL",
    "len": "a whole number",
}
# Names (variables, attributes, functions returning SQL) that the code owns. Each is either a
# SQL fragment built by code that this same scan checks, or an identifier the code chose.
ALLOWED = {
    # stages/classify.py
    "fields": "classify: `s.<field>` list, every field through ident()",
    "as_of_sql": "classify: literal(as_of) (a date)",
    "source_bits": "classify: WHEN sql_literal(source) THEN <index>",
    "source_names": "classify: a list of sql_literal(source)",
    "flag_sql": "classify: compile_condition(...) fragments (rules engine, values through literal)",
    "status_cases": "classify: WHEN <compiled condition> THEN sql_literal(status)",
    "reason_cases": "classify: WHEN <compiled condition> THEN sql_literal(reason)",
    "tag_items": "classify: CASE fragments built from group numbers (int, checked 1..8) and code",
    "in_registry": "classify: status IN (literal(...))",
    "allowed_for_upgradable": "classify: str() of group numbers (ints checked by policy.py)",
    "other": "classify: c<group number> column names (ints checked by policy.py)",
    "cond": "classify: c<group number> column names; link: _rivals_sql's code-owned conditions",
    "n": "group numbers (ints, checked 1..8 by policy.py) and step indexes",
    "compile_condition": "the rules engine: SQL from a checked condition, values through literal()",
    "measure_sql": "classify: SQL built here from literal() values",
    "pension_date_sql": "classify: SQL built here from ints of rules/retirement.yaml",
    "minimum_months_sql": "classify: SQL built here from numbers of rules/retirement.yaml",
    "on": "classify: a code-owned column expression (s.pension_date)",
    "sex": "classify: a code-owned column expression (s.sex)",
    "birth": "classify: a code-owned column expression (s.birth_date)",
    "idx": "classify: SQL arithmetic on code-owned columns and ints",
    "delay": "classify: SQL arithmetic on code-owned columns and ints",
    "cases": "a CASE fragment built from literal()/sql_literal values",
    "months": "an int (int() of a checked policy number) or a CASE fragment of ints",
    "base": "classify: round(...) of a checked policy number (an int)",
    "top": "classify: round(...) of a checked policy number (an int)",
    "steps": "classify: SQL arithmetic on a code-owned column and ints",
    "d": "classify: literal(as_of)",
    "action": "classify: CASE of literal(group action)",
    "keep": "classify: group numbers (ints checked by policy.py)",
    "elderly": "classify: literal() of statuses",
    "registry": "classify: literal() of statuses",
    "q": "classify: a list of sql_literal(status)",
    "MATCHED": "classify: a code constant",
    "person_columns_sql": "classify: PERSON_COLUMNS, code constants (SQL of code-owned joins), names through ident()",
    # stages/link/
    "MATCH_COLUMNS": "link: a code constant",
    "fp": "link: fingerprint_sql(...) of code-owned columns",
    # stages/link/, issue 20 (names understood, former and corrected IDs, no silent listing)
    "a_id": "link: _near_sql's arguments, code-owned column expressions (p.person_id, r.id_canonical)",
    "b_id": "link: _near_sql's arguments, code-owned column expressions",
    "a_birth": "link: _near_sql's arguments, code-owned column expressions (p.birth_date)",
    "b_birth": "link: _near_sql's arguments, code-owned column expressions",
    "holder": "link: a table alias chosen by the code (s, p, t, b)",
    "id_col": "link: a code-owned column name (id_canonical)",
    "col": "link: a code-owned column expression handed to _masked_sql/_wildcard_like",
    "h": "link: a table alias chosen by the code (p or r)",
    "o": "link: a table alias chosen by the code (p or r)",
    "former_k": "link: a code-owned column name (former_key, former_py)",
    "t_from": "link: a FROM clause of code-owned tables",
    "b_from": "link: a FROM clause of code-owned tables",
    "near": "link: _near_sql(...) of code-owned columns (the window an int of rules/)",
    "suspect": "link: a UNION of SELECTs built here from code-owned fragments",
    "none": "link: NULL columns (a code constant)",
    "former": "link: code-owned column expressions of link_former",
    "alt": "link: one of none / former (code constants)",
    "t.former": "link: the name of a code-owned table (LinkTables)",
    "as_of": "link: DATE sql_literal(as_of) or current_date",
    "child": "link: a condition built here from _sql_list() of sources and int(age)",
    "chosen0": "link: the name of a code-owned table",
    "masked": "link: _masked_sql() of a code-owned column",
    "src": "link: _sql_list() of source names (each through sql_literal)",
    "SPECIAL_EVIDENCE_SQL": "link: _sql_list() of names.SPECIAL_EVIDENCE (code constants through sql_literal)",
    "SHOWN_EVIDENCE_SQL": "link: _sql_list() of code constants",
    "_near_sql": "link: SQL from code-owned column expressions and int(_near_days())",
    "_wildcard_like": "link: SQL from a code-owned column expression and constants",
    "_masked_sql": "link: SQL from a code-owned column expression and constants",
    "row_person_sql": "link: a row's person_id, person_id_sql() of code-owned aliases and constants",
    "_plausible_sql": "link: SQL from _sql_list() of sources, int(age) and sql_literal(as_of)",
    "_fits_sql": "link: SQL from _sql_list() of sources, int(age) and sql_literal(as_of)",
    "rejected": "link: EXISTS over a code-owned table name (LinkTables.forbidden) or false",
    "who": "link: a UNION of SELECTs from code-owned CTE names",
    "c": "link: a code-owned CTE name (_np0, _cb)",
    "own": "link: EXISTS over a code-owned CTE and _sql_list() of source names",
    "_rivals_sql": "link: SQL from code-owned tables and fragments",
    "_home_codes_sql": "link: SQL from a code-owned table name and sql_literal(share)",
    "holders_sql": "link: SQL from a code-owned table name (the persons of a LinkTables) and constants",
    "holder_id_sql": "link: SQL concatenating code-owned column expressions (d.id_canonical, r.name)",
    "person_id_sql": "link: a CASE over code-owned column expressions of link_defining and std_rows",
    "defining": "link: person_id_sql's argument, the alias of the code-owned table link_defining",
    "both": "link: a constant SQL fragment (two names agree where neither lost a character)",
    "fit": "link: one of three code-owned conditions on two names with placeholders (evidence.py)",
    "shared": "link: _shared_ctes() of code-owned tables and fragments",
    "unowned": "link: a sub-select of a code-owned CTE and _sql_list() of ID kinds",
    "wild": "link: regexp_matches over ident(table)",
    "fingerprint_sql": "core/privacy.py: HMAC SQL over code-owned column expressions and $parameters",
    "person_key_sql": "core/privacy.py: HMAC SQL over a code-owned column expression and $parameters",
    "_HMAC_SQL": "core/privacy.py: a code constant with $parameters for the key",
    "id_sql": "core/privacy.py: a code-owned column expression",
    "msg": "core/privacy.py: concat_ws of code-owned column expressions",
    "_sql_list": "link: a list of sql_literal(...)",
    "head": "link: SELECT head with sql_literal(rule) and sql_literal(order)",
    "rows": "link: a sub-select over a code-owned table with _sql_list(...)",
    "rows_sql": "link: a code-owned sub-select",
    "P": "link: a code-owned table name (LinkTables.persons)",
    "a": "link: 1, 7 or 13 (code constants)",
    "b": "link: 1, 7 or 13 (code constants)",
    "prefix": "link: p.prefix15 or p.prefix15_rounded (code constants)",
    "join": "link: NAME_JOINS, code constants",
    "k": "link: name_key or name_py (code constants)",
    "where": "link: NAME_JOINS conditions (code constants) / rules engine fragments",
    "conf": "link: WHEN sql_literal(kind) THEN sql_literal(confidence)",
    "parts": "link: UNION ALL of fragments built above",
    "values": "link: rows of sql_literal(...)",
    "_rules_values": "link: an inline table of sql_literal(...) values",
    "forbidden": "link: ANTI JOIN of a code-owned table name",
    "scratch": "link: a code-owned table name (LinkTables.temp)",
    "scored": "link: a code-owned table name",
    "chosen": "link: a code-owned table name",
    "differs": "link: a code-owned table name",
    "out": "link: LinkTables.out(...): a code-owned table name",
    "persons": "link: LinkTables.persons: a code-owned table name",
    "table": "a code-owned table name",
    "sql": "link: Step.sql, built above from code and sql_literal",
    "column": "rules engine: `alias.` + ident(field)",
    "adding": "link: _sql_list(...) of source names",
    "usable": "link: a code constant sub-select",
    "IDENTITY_COLUMNS": "standardise: code constants (column names)",
    "EXTRA_COL": "standardise: a code constant (column name)",
    "selects": "standardise: SELECT fragments over ident(std_<source>)",
    "raw_cols": "standardise: sql_literal(field), ident(field) pairs",
    "i": "an int from enumerate()",
    "g.group": "a group number, an int checked 1..8 by policy.py",
    "t.old_age": "a retirement track's age, an int checked 40..70 by policy.py",
    "t.cap_age": "a retirement track's cap, an int checked by policy.py",
    "t.birth_months_per_month": "an int checked 1..24 by policy.py",
    "r.rise_months_per_year": "an int checked 0..12 by policy.py",
    "r.elderly_age": "an int checked 40..100 by policy.py",
    "t.first_cohort[0]": "a track's first birth year, an int parsed from YYYY-MM by policy.py",
    "t.first_cohort[1]": "a track's first birth month, an int parsed from YYYY-MM by policy.py",
    "hex_sql": "core/privacy.py: SQL from _HMAC_SQL over code-owned columns",
    "p": "core/privacy.py: a code-owned column expression (fingerprint_sql's parts)",
    "rf.year": "rise_from, a date checked by policy.py: an int",
    "rf.month": "rise_from, a date checked by policy.py: an int",
    "rf.day": "rise_from, a date checked by policy.py: an int",
}
# The helper itself is where quotes are written.
EXEMPT_FUNCTIONS = {("core/db.py", "sql_literal")}


USED: set[str] = set()  # allow-list entries the scan of the package needed


def _allowed(key: str | None) -> bool:
    if key in ALLOWED:
        USED.add(key)
        return True
    return False


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return None


def _text(node: ast.AST) -> str:
    """The constant text of an f-string / string / concatenation (formatted parts left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + " " + _text(node.right)
    return ""


def _problems(expr: ast.AST) -> list[str]:
    """What in ``expr`` (an interpolated expression) is not known to be safe SQL text."""
    if isinstance(expr, ast.Constant):
        return []
    if isinstance(expr, ast.JoinedStr):  # checked where it is built, as an f-string of its own
        return [p for v in expr.values if isinstance(v, ast.FormattedValue) for p in _problems(v.value)]
    if isinstance(expr, ast.Call):
        fname = _name(expr.func)
        if fname in SAFE_CALLS:
            return []
        if fname == "format" and isinstance(expr.func, ast.Attribute) and _allowed(_name(expr.func.value)):
            return [p for a in [*expr.args, *(k.value for k in expr.keywords)] for p in _problems(a)]
        if fname == "join" and isinstance(expr.func, ast.Attribute):
            return [p for a in expr.args for p in _problems(a)]
        if fname in ("str", "round", "float", "bool", "repr") and expr.args:
            return [p for a in expr.args for p in _problems(a)]
        if _allowed(fname):
            return []
        return [f"a call to {fname or ast.unparse(expr.func)}()"]
    if isinstance(expr, (ast.GeneratorExp, ast.ListComp)):
        return _problems(expr.elt)
    if isinstance(expr, ast.BoolOp):
        return [p for v in expr.values for p in _problems(v)]
    if isinstance(expr, ast.IfExp):
        return _problems(expr.body) + _problems(expr.orelse)
    if isinstance(expr, ast.BinOp):
        return _problems(expr.left) + _problems(expr.right)
    if isinstance(expr, ast.Compare):  # a bool
        return []
    if isinstance(expr, ast.Subscript):  # a lookup: allowed only as written in the allow-list
        return [] if _allowed(ast.unparse(expr)) else [ast.unparse(expr)]
    if isinstance(expr, (ast.Name, ast.Attribute)):
        return [] if _allowed(ast.unparse(expr)) or _allowed(_name(expr)) else [ast.unparse(expr)]
    return [ast.unparse(expr)]


def _hand_quoted(node: ast.JoinedStr) -> list[str]:
    """Interpolations with a quote written by hand right before and after: '{x}'."""
    out = []
    vals = node.values
    for i, v in enumerate(vals):
        if not isinstance(v, ast.FormattedValue):
            continue
        before = vals[i - 1] if i > 0 else None
        after = vals[i + 1] if i + 1 < len(vals) else None
        if (
            isinstance(before, ast.Constant)
            and str(before.value).endswith("'")
            and isinstance(after, ast.Constant)
            and str(after.value).startswith("'")
        ):
            out.append(f"'{{{ast.unparse(v.value)}}}' quoted by hand")
    return out


def scan(source: str, filename: str) -> list[str]:
    """Every place in ``source`` where SQL text is built from something not known to be safe."""
    tree = ast.parse(source, filename)
    exempt = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        and any(filename.endswith(p) and f.name == fn for p, fn in EXEMPT_FUNCTIONS)
        for n in ast.walk(f)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        bad: list[str] = []
        if isinstance(node, ast.JoinedStr):
            text = _text(node)
            sqlish = bool(SQL_WORDS.search(text))
            # a fragment made only of quotes and punctuation ("'{n}'") is SQL-to-be as well
            bare = not re.search(r"[A-Za-z\u4e00-\u9fff]", text) and "'" in text
            if sqlish or bare:
                bad += _hand_quoted(node)
            if sqlish:
                for v in node.values:
                    if isinstance(v, ast.FormattedValue):
                        bad += _problems(v.value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if SQL_WORDS.search(_text(node.left)):
                bad += _problems(node.right)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            if isinstance(node.left, ast.Constant) and SQL_WORDS.search(_text(node.left)):
                bad += _problems(node.right)
            elif isinstance(node.right, ast.Constant) and SQL_WORDS.search(_text(node.right)):
                bad += _problems(node.left)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and (SQL_WORDS.search(_text(node.func.value)) or _allowed(_name(node.func.value)))
        ):
            bad += [p for a in [*node.args, *(k.value for k in node.keywords)] for p in _problems(a)]
        found += [f"{filename}:{node.lineno}: {b}" for b in bad]
    return found


def test_the_scan_catches_every_way_a_value_became_sql():
    """The scanner itself, on the attacks of issue 21 (as they were written)."""
    attacks = {
        "streets": "streets_sql = ' '.join(f\"WHEN '{c}' THEN '{n}'\" for c, n in names.items())",
        "memory": "con.execute(f\"SET memory_limit = '{memory_limit}'\")",
        "path": "con.execute(f\"COPY t TO '{path}' (FORMAT parquet)\")",
        "percent": "con.execute(\"SELECT * FROM t WHERE name = '%s'\" % name)",
        "format": 'con.execute("SELECT * FROM read_parquet({p})".format(p=user_path))',
        "concat": 'con.execute("SELECT * FROM t WHERE a = " + user_value)',
        "list": "names = ', '.join(f\"'{n}'\" for n in statuses)",
        "policy": "sql = f\"WHEN x THEN {r['reason']}\"",
    }
    for what, code in attacks.items():
        assert scan(code, what), f"the scan misses the {what} attack"
    safe = [
        'con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")',
        'con.execute("SELECT * FROM t WHERE name = ?", [name])',
        'con.execute(f"DROP TABLE IF EXISTS {ident(name)}")',
        "msg = f\"sheet '{name}' has no header\"",  # a message, not SQL
    ]
    for code in safe:
        assert not scan(code, "safe"), code


def test_no_sql_in_the_package_is_built_from_a_value():
    USED.clear()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += scan(path.read_text("utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not found, "SQL built from values (use parameters, sql_literal or ident):\n" + "\n".join(found)
    # the allow-list holds only what the package needs: an entry no longer used goes
    assert not set(ALLOWED) - USED, f"allow-list entries nothing needs: {sorted(set(ALLOWED) - USED)}"


def test_every_allowed_name_has_a_reason():
    assert all(len(why) > 10 for why in [*ALLOWED.values(), *SAFE_CALLS.values()])
