"""The checker: :class:`_Ctx` (one-line errors naming file and key), the rule language's
conditions (:class:`_Conditions`), street names, and ``sources/*.yaml``."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Any

from ..config import Source, load_sources
from ..i18n import _
from ..ids import redact_ids
from .model import (
    CONDITION_KEYS,
    ENTITY_FIELDS,
    FIELD_TYPES,
    IDENT,
    NEEDED_SOURCES,
    PERSON_FIELDS,
    PREDICATE_OPS,
    ROLES,
    PolicyError,
)

NUMBER_LIMIT = 1e12  # a number compared with a field in a condition (months, amounts, sizes)


class _Ctx:
    """Where we are (file and key path) while checking, for one-line errors."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, what: str) -> PolicyError:
        return PolicyError(
            _(
                "{file}: {where}: {what}. Fix the file (`kuomian rules export DIR` writes the defaults to compare with)."
            ).format(file=self.file, where=where, what=what)
        )

    def mapping(self, value, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(
                where,
                _("expected a mapping with keys {keys}, got {kind}").format(
                    keys=", ".join(required + optional), kind=_kind(value)
                ),
            )
        allowed = required + optional
        for k in value:
            if k not in allowed:
                raise self.fail(
                    where,
                    _("unknown key {k!r} (allowed: {allowed})").format(
                        k=k, allowed=", ".join(map(str, allowed))
                    ),
                )
        for k in required:
            if k not in value:
                raise self.fail(where, _("missing key {k!r}").format(k=k))
        return value

    def str_(self, value, where: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, _("expected a non-empty text, got {kind}").format(kind=_kind(value)))
        if "\x00" in value:
            raise self.fail(where, _("a text holding a NUL character (\\0) is no policy value"))
        if pattern and not pattern.match(value):
            raise self.fail(
                where, _("{value!r} must be lower-case letters, digits and _").format(value=value)
            )
        return value

    def shown(self, value, where: str) -> str:
        """A text that outputs show (a label, an action, a measure): an ID number typed into it
        is masked (first 6 + last 4), as everywhere else."""
        return redact_ids(self.str_(value, where))

    def int_(self, value, where: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, _("expected a whole number, got {kind}").format(kind=_kind(value)))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, _("{value} is out of range ({lo}…{hi})").format(value=value, lo=lo, hi=hi))
        return value

    def num(self, value, where: str, lo: float | None = None, hi: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, _("expected a number, got {kind}").format(kind=_kind(value)))
        if not math.isfinite(value):  # YAML's .nan / .inf are numbers too
            raise self.fail(where, _("{value} is not a finite number").format(value=value))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, _("{value} is out of range ({lo}…{hi})").format(value=value, lo=lo, hi=hi))
        return float(value)

    def bool_(self, value, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, _("expected true or false, got {kind}").format(kind=_kind(value)))
        return value

    def list_(self, value, where: str, nonempty: bool = True) -> list:
        if not isinstance(value, list) or (nonempty and not value):
            raise self.fail(
                where,
                (
                    _("expected a non-empty list [...], got {kind}")
                    if nonempty
                    else _("expected a list [...], got {kind}")
                ).format(kind=_kind(value)),
            )
        return value

    def one_of(self, value, where: str, allowed, what: str | None = None):
        if value not in allowed:
            what = what or _("value")
            raise self.fail(
                where,
                _("unknown {what} {value!r} (allowed: {allowed})").format(
                    what=what, value=value, allowed=", ".join(map(str, allowed))
                ),
            )
        return value


STREET_NAME_MAX = 40  # characters; the longest township name in Yunnan has about a dozen


def _odd_characters(name: str) -> str:
    """What makes ``name`` no street's name (control characters, quotes, ``;``, ``\\``, length), or ''."""
    import unicodedata

    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return _("the control character U+{code:04X}").format(code=ord(ch))
        if ch in "'\"`;\\/":  # quotes and ; are SQL's, / and \\ a path's (a hand-off is named by its street)
            return _("the character {ch!r}").format(ch=ch)
    if len(name) > STREET_NAME_MAX:
        return _("{n} characters (more than {max})").format(n=len(name), max=STREET_NAME_MAX)
    return ""


def _kind(value) -> str:
    if value is None:
        return _("nothing")
    if isinstance(value, (dict, list)):
        return type(value).__name__ + " " + repr(value)[:60]
    return f"{type(value).__name__} {value!r}"[:80]


class _Conditions:
    """Checks conditions of the rule language against the sources, fields and groups in force."""

    def __init__(self, sources: dict[str, Source], vocabularies: dict[str, dict], group_ids: set[int]):
        self.sources = sources
        self.vocab = {name: set(map(str, v)) for name, v in vocabularies.items()}
        self.group_ids = group_ids

    def _field_kind(self, f) -> str:
        if f.type == "category" and f.vocabulary:
            return f"category:{f.vocabulary}"
        return {"int": "number", "number": "number", "date": "date"}.get(f.type, "text")

    def check(self, ctx: _Ctx, cond, where: str, *, groups_any: bool, no_other_group: bool) -> None:
        if not isinstance(cond, dict) or not cond:
            raise ctx.fail(
                where, _("a condition must be a non-empty mapping, got {kind}").format(kind=_kind(cond))
            )
        unknown = [k for k in cond if k not in CONDITION_KEYS and k not in PREDICATE_OPS]
        if unknown:
            raise ctx.fail(
                where,
                _("unknown condition key {key!r} (allowed: {allowed})").format(
                    key=unknown[0], allowed=", ".join(CONDITION_KEYS[:1] + CONDITION_KEYS[2:])
                ),
            )
        kw = {"groups_any": groups_any, "no_other_group": no_other_group}
        if "any" in cond or "all" in cond:
            k = "any" if "any" in cond else "all"
            ctx.mapping(cond, where, (k,))
            for i, c in enumerate(ctx.list_(cond[k], f"{where}.{k}")):
                self.check(ctx, c, f"{where}.{k}[{i}]", **kw)
        elif "not" in cond:
            ctx.mapping(cond, where, ("not",))
            self.check(ctx, cond["not"], f"{where}.not", **kw)
        elif "always" in cond:
            ctx.mapping(cond, where, ("always",))
            ctx.bool_(cond["always"], f"{where}.always")
        elif "source" in cond:
            ctx.mapping(cond, where, ("source",), ("where",))
            src = ctx.one_of(cond["source"], f"{where}.source", list(self.sources), _("source"))
            fields = {n: f for n, f in self.sources[src].fields.items() if n not in ("id_number", "name")}
            preds = cond.get("where") or {}
            ctx.mapping(preds, f"{where}.where", (), tuple(fields))
            for name, pred in preds.items():
                self.predicate(ctx, pred, f"{where}.where.{name}", self._field_kind(fields[name]))
        elif "entity" in cond:
            ctx.mapping(cond, where, ("entity",))
            preds = ctx.mapping(cond["entity"], f"{where}.entity", (), tuple(ENTITY_FIELDS))
            if not preds:
                raise ctx.fail(
                    where=f"{where}.entity",
                    what=_("name at least one field ({entity_fields})").format(
                        entity_fields=", ".join(ENTITY_FIELDS)
                    ),
                )
            for name, pred in preds.items():
                self.predicate(ctx, pred, f"{where}.entity.{name}", ENTITY_FIELDS[name])
        elif "person" in cond:
            ctx.mapping(cond, where, ("person",), PREDICATE_OPS)
            name = ctx.one_of(cond["person"], f"{where}.person", list(PERSON_FIELDS), _("person field"))
            pred = {k: v for k, v in cond.items() if k != "person"}
            self.predicate(ctx, pred, where, PERSON_FIELDS[name])
        elif "age" in cond:
            ctx.mapping(cond, where, ("age",))
            self.predicate(ctx, cond["age"], f"{where}.age", "age")
        elif "groups_any" in cond:
            if not groups_any:
                raise ctx.fail(where, _("groups_any is allowed in statuses.yaml's statuses only"))
            ctx.mapping(cond, where, ("groups_any",))
            for i, g in enumerate(ctx.list_(cond["groups_any"], f"{where}.groups_any")):
                ctx.one_of(g, f"{where}.groups_any[{i}]", sorted(self.group_ids), _("group"))
        elif "no_other_group" in cond:
            if not no_other_group:
                raise ctx.fail(where, _("no_other_group is allowed in groups.yaml only"))
            ctx.mapping(cond, where, ("no_other_group",))
            if cond["no_other_group"] is not True:
                raise ctx.fail(where=f"{where}.no_other_group", what=_("write no_other_group: true"))
        else:
            raise ctx.fail(
                where, _("a predicate needs a field: write {person: FIELD, …} or {source: S, where: …}")
            )

    def predicate(self, ctx: _Ctx, pred, where: str, kind: str) -> None:
        ctx.mapping(pred, where, (), PREDICATE_OPS)
        ops = [k for k in pred if k != "blank"]
        if not ops:
            raise ctx.fail(
                where,
                _("name an operator ({predicate_ops})").format(predicate_ops=", ".join(PREDICATE_OPS[:-1])),
            )
        if "blank" in pred:
            ctx.bool_(pred["blank"], f"{where}.blank")
        for op in ops:
            values = ctx.list_(pred[op], f"{where}.{op}") if op in ("in", "not_in") else [pred[op]]
            for v in values:
                self._value(ctx, v, f"{where}.{op}", kind)

    def _value(self, ctx: _Ctx, v, where: str, kind: str) -> None:
        if kind.startswith("category:"):
            vocab = kind.split(":", 1)[1]
            allowed = self.vocab.get(vocab)
            if allowed is not None and str(v) not in allowed:
                raise ctx.fail(
                    where,
                    _("{v!r} is not a value of vocabulary {vocab} (allowed: {allowed})").format(
                        v=v, vocab=vocab, allowed=", ".join(sorted(allowed))
                    ),
                )
        elif kind == "number":
            ctx.num(v, where, -NUMBER_LIMIT, NUMBER_LIMIT)
        elif kind == "age":
            ctx.num(v, where, 0, 150)
        elif kind == "bool":
            ctx.bool_(v, where)
        elif kind == "date":
            if isinstance(v, dict):
                ctx.mapping(v, where, ("as_of",))
                rel = ctx.mapping(v["as_of"] or {}, f"{where}.as_of", (), ("years",))
                ctx.int_(rel.get("years", 0), f"{where}.as_of.years", -150, 150)
            elif not isinstance(v, date):
                raise ctx.fail(
                    where,
                    _("expected a date (YYYY-MM-DD) or {{as_of: {{years: N}}}}, got {kind}").format(
                        kind=_kind(v)
                    ),
                )
        elif isinstance(v, (dict, list)) or v is None:
            raise ctx.fail(where, _("expected a single value, got {kind}").format(kind=_kind(v)))
        elif isinstance(v, str) and "\x00" in v:
            raise ctx.fail(where, _("a text holding a NUL character (\\0) is no policy value"))
        elif isinstance(v, float) and not math.isfinite(v):
            raise ctx.fail(where, _("{v} is not a finite number").format(v=v))


def _sources(root: Path, vocabularies: dict) -> dict[str, Source]:
    folder = root / "sources"
    common = _read(folder / "_common.yaml")
    ctx = _Ctx(f"{folder / '_common.yaml'}")
    common = ctx.mapping(common, _("top level"), (), tuple(common) if isinstance(common, dict) else ())
    for name, spec in common.items():
        _field_spec(ctx, spec, name, vocabularies)
    names = set()
    for path in sorted(folder.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        ctx = _Ctx(str(path))
        d = ctx.mapping(
            _read(path),
            _("top level"),
            ("source", "role"),
            ("label", "department", "required", "globs", "common", "fields"),
        )
        name = ctx.str_(d["source"], "source", IDENT)
        if name in names:
            raise ctx.fail(where="source", what=_("{name!r} is declared twice").format(name=name))
        names.add(name)
        ctx.one_of(d["role"], "role", ROLES, _("role"))
        if "required" in d:
            ctx.bool_(d["required"], "required")
        for i, g in enumerate(ctx.list_(d.get("globs", []), "globs", nonempty=False)):
            ctx.str_(g, f"globs[{i}]")
        for i, c in enumerate(ctx.list_(d.get("common", []), "common", nonempty=False)):
            ctx.one_of(c, f"common[{i}]", list(common), _("common field"))
        fields = ctx.mapping(d.get("fields") or {}, "fields", (), tuple(d.get("fields") or {}))
        for fname, spec in fields.items():
            ctx.str_(fname, f"fields.{fname}", IDENT)
            _field_spec(ctx, spec, f"fields.{fname}", vocabularies)
    sources = load_sources(root)
    missing = [s for s in NEEDED_SOURCES if s not in sources]
    if missing:
        raise PolicyError(
            _(
                "{folder}: the tool needs sources {needed_sources}; missing: {missing}. Restore their files (`kuomian rules export DIR` writes the defaults)."
            ).format(folder=folder, needed_sources=", ".join(NEEDED_SOURCES), missing=", ".join(missing))
        )
    if [s for s in sources.values() if s.role == "base"] != [sources["household"]]:
        raise PolicyError(_("{folder}: exactly one source, household, has role: base.").format(folder=folder))
    return sources


def _field_spec(ctx: _Ctx, spec, where: str, vocabularies: dict) -> None:
    ctx.mapping(spec, where, (), ("aliases", "type", "required", "vocabulary"))
    for i, a in enumerate(ctx.list_(spec.get("aliases", []), f"{where}.aliases", nonempty=False)):
        ctx.str_(a, f"{where}.aliases[{i}]")
    t = ctx.one_of(spec.get("type", "text"), f"{where}.type", FIELD_TYPES, _("type"))
    if "required" in spec:
        ctx.bool_(spec["required"], f"{where}.required")
    if t == "category" or "vocabulary" in spec:
        ctx.one_of(spec.get("vocabulary"), f"{where}.vocabulary", sorted(vocabularies), _("vocabulary"))


def _read(path: Path):
    if not path.is_file():
        raise PolicyError(
            _(
                "{path}: missing. A policy folder holds rules/ and sources/ as `kuomian rules export DIR` writes them."
            ).format(path=path)
        )
    from ..config import _read_yaml

    return _read_yaml(path)


def _rules_file(root: Path, name: str) -> tuple[_Ctx, Any]:
    path = root / "rules" / f"{name}.yaml"
    return _Ctx(str(path)), _read(path)
