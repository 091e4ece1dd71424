"""A small engine that compiles the conditions in ``rules/*.yaml`` to DuckDB SQL.

A condition is one of::

    {source: S}                                  any linked row of source S
    {source: S, where: {FIELD: PREDICATE, ...}}  … whose fields satisfy every predicate
    {entity: {FIELD: PREDICATE, ...}}            operator of an entity (tax ∪ market by 统一社会信用代码)
    {person: FIELD, in: [v, ...]}                a person field (hukou_type, person_status, …)
    {age: PREDICATE}                             age in whole years at the as-of date
    {groups_any: [1, 3, ...]}                    the person meets one of these groups' conditions
    {no_other_group: true}                       (group 8 only) no other group's condition holds
    {always: true}
    {any: [COND, ...]} | {all: [COND, ...]} | {not: COND}

A predicate is ``{in: [...]}``, ``{"==": v}``, ``{">=": v}``, ``{">": v}``,
``{"<=": v}`` or ``{"<": v}``, optionally with ``blank: true`` (a missing value
passes). A value may be a date relative to the as-of date: ``{as_of: {years: -1}}``
(29 February falls back to 28 February).

Evaluated against a person row aliased ``p`` with a ``person_id`` column and
tables ``cls_rows_<source>`` / ``cls_person_entities``.
"""

from __future__ import annotations

from datetime import date

from .db import ident, sql_literal
from .i18n import _

OPS = {"==": "=", ">=": ">=", ">": ">", "<=": "<=", "<": "<"}


class RuleError(ValueError):
    pass


def shift_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February in a common year
        return d.replace(year=d.year + years, day=28)


def literal(value, as_of: date) -> str:
    """A rules/ value as SQL text, through :func:`pipeline.core.db.sql_literal` (never code);
    ``{as_of: {years: N}}`` is the as-of date shifted by N years."""
    if isinstance(value, dict) and "as_of" in value:
        years = int((value["as_of"] or {}).get("years", 0))
        return sql_literal(shift_years(as_of, years))
    if isinstance(value, (bool, int, float, date)):
        return sql_literal(value)
    return sql_literal(str(value))


def predicate(column: str, pred, as_of: date) -> str:
    if not isinstance(pred, dict):
        raise RuleError(
            _("predicate for {column} must be a mapping, got {pred!r}").format(column=column, pred=pred)
        )
    parts = []
    for op, value in pred.items():
        if op == "blank":
            continue
        if op == "in":
            parts.append(f"{column} IN ({', '.join(literal(v, as_of) for v in value)})")
        elif op == "not_in":
            parts.append(f"{column} NOT IN ({', '.join(literal(v, as_of) for v in value)})")
        elif op in OPS:
            parts.append(f"{column} {OPS[op]} {literal(value, as_of)}")
        else:
            raise RuleError(_("unknown operator {op!r} for {column}").format(op=op, column=column))
    sql = " AND ".join(parts) or "TRUE"
    if pred.get("blank"):
        sql = f"({column} IS NULL OR ({sql}))"
    return sql


def compile_condition(cond, as_of: date, *, group_flags: dict[int, str] | None = None) -> str:
    """SQL boolean expression for one condition (see the module docstring)."""
    if not isinstance(cond, dict) or not cond:
        raise RuleError(_("a condition must be a non-empty mapping, got {cond!r}").format(cond=cond))
    if "any" in cond:
        return (
            "(" + " OR ".join(compile_condition(c, as_of, group_flags=group_flags) for c in cond["any"]) + ")"
        )
    if "all" in cond:
        return (
            "("
            + " AND ".join(compile_condition(c, as_of, group_flags=group_flags) for c in cond["all"])
            + ")"
        )
    if "not" in cond:
        return "(NOT " + compile_condition(cond["not"], as_of, group_flags=group_flags) + ")"
    if "always" in cond:
        return "TRUE" if cond["always"] else "FALSE"
    if "source" in cond:
        src = cond["source"]
        where = " AND ".join(
            predicate(f"r.{ident(f)}", p, as_of) for f, p in (cond.get("where") or {}).items()
        )
        return (
            f"EXISTS (SELECT 1 FROM {ident('cls_rows_' + src)} r WHERE r.person_id = p.person_id"
            + (f" AND {where}" if where else "")
            + ")"
        )
    if "entity" in cond:
        where = " AND ".join(predicate(f"e.{ident(f)}", p, as_of) for f, p in cond["entity"].items())
        return f"EXISTS (SELECT 1 FROM cls_person_entities e WHERE e.person_id = p.person_id AND {where})"
    if "person" in cond:
        pred = {k: v for k, v in cond.items() if k != "person"}
        return predicate(f"p.{ident(cond['person'])}", pred, as_of)
    if "age" in cond:
        return predicate("p.age", cond["age"], as_of)
    if "groups_any" in cond:
        if group_flags is None:
            raise RuleError(_("groups_any is only allowed in statuses"))
        return "(" + " OR ".join(group_flags[g] for g in cond["groups_any"]) + ")"
    raise RuleError(_("unknown condition {cond!r}").format(cond=cond))


def uses_no_other_group(cond) -> bool:
    if isinstance(cond, dict):
        if cond.get("no_other_group"):
            return True
        return any(uses_no_other_group(c) for k in ("any", "all") for c in cond.get(k, []))
    return False


def strip_no_other_group(cond):
    """The condition without its ``no_other_group`` branch (evaluated separately)."""
    if isinstance(cond, dict) and "any" in cond:
        rest = [c for c in cond["any"] if not (isinstance(c, dict) and c.get("no_other_group"))]
        return {"any": rest} if rest else {"always": False}
    if isinstance(cond, dict) and cond.get("no_other_group"):
        return {"always": False}
    return cond
