"""Each policy file's checks, one function per ``rules/*.yaml`` (and ``rules/streets.csv``),
in the order :func:`_load` runs them; :func:`load_policy` and :func:`policy` (cached per folder)."""

from __future__ import annotations

import csv
import re
from datetime import date
from functools import lru_cache
from pathlib import Path

from ..config import Source, Street, clear_caches, common_fields, defaults_home, home, on_clear_caches
from ..i18n import _
from .checks import _Conditions, _Ctx, _kind, _odd_characters, _rules_file, _sources
from .model import (
    CANDIDATES,
    ID_KINDS,
    IDENT,
    NAME_EVIDENCE,
    PENSION_CONDITIONS,
    SURVEY_FIELDS,
    TARGET_KEYS,
    Damage,
    ExclusionReason,
    FileRules,
    Group,
    Groups,
    Guards,
    Indicators,
    Matching,
    MatchRule,
    Policy,
    PolicyError,
    PreviousGuard,
    Retirement,
    Statuses,
    StatusRule,
    Survey,
    SurveyColumn,
    SurveyExclusion,
    SurveyStatus,
    TargetRule,
    Targets,
    Tasks,
    Track,
    fingerprint,
)


@lru_cache(maxsize=8)
def _load(root: Path) -> Policy:
    """Every file of the policy folder ``root``, checked in this order (the first mistake stops)."""
    vocabularies = _vocabularies(root)
    sources = _sources(root, vocabularies)
    groups_p, conds = _groups(root, sources, vocabularies)
    statuses = _statuses(root, conds)
    indicators = _indicators(root, statuses)
    matching = _matching(root, sources)
    survey_p = _survey(root, statuses)
    key_targets = _targets(root, survey_p, groups_p)
    codes, streets = _streets(root)
    retirement = _retirement(root, groups_p, statuses, vocabularies)
    tasks = _check_tasks(root, codes, vocabularies)
    file_rules = _check_files(root, sources)
    files = fingerprint(root)
    return Policy(
        root=root,
        is_default=root.resolve() == defaults_home().resolve(),
        statuses=statuses,
        groups=groups_p,
        indicators=indicators,
        survey=survey_p,
        retirement=retirement,
        sources=sources,
        files=files,
        matching=matching,
        vocabularies={v: {c: tuple(map(str, sp)) for c, sp in e.items()} for v, e in vocabularies.items()},
        streets=streets,
        targets=key_targets,
        file_rules=file_rules,
        tasks=tasks,
        common_fields=common_fields(root),
    )


def _vocabularies(root: Path) -> dict[str, dict]:
    """rules/vocabularies.yaml: vocabulary -> canonical value -> spellings."""
    ctx, voc = _rules_file(root, "vocabularies")
    voc = ctx.mapping(voc, _("top level"), (), tuple(voc) if isinstance(voc, dict) else ())
    vocabularies: dict[str, dict] = {}
    for name, entries in voc.items():
        entries = ctx.mapping(entries, name, (), tuple(entries) if isinstance(entries, dict) else ())
        for canonical, spellings in entries.items():
            ctx.list_(spellings, f"{name}.{canonical}", nonempty=False)
        vocabularies[name] = entries
    return vocabularies


def _groups(root: Path, sources: dict[str, Source], vocabularies: dict) -> tuple[Groups, _Conditions]:
    """rules/groups.yaml; the condition checker it makes (group ids known) checks statuses.yaml too."""
    ctx, g = _rules_file(root, "groups")
    g = ctx.mapping(g, _("top level"), ("groups", "upgradable_groups", "employers"))
    ids: set[int] = set()
    raw_groups = ctx.list_(g["groups"], "groups")
    for i, grp in enumerate(raw_groups):
        ctx.mapping(grp, f"groups[{i}]", ("group", "priority", "label", "action", "when"))
        gid = ctx.int_(grp["group"], f"groups[{i}].group", 1, 8)
        if gid in ids:
            raise ctx.fail(
                where=f"groups[{i}].group", what=_("group {gid} is declared twice").format(gid=gid)
            )
        ids.add(gid)
    conds = _Conditions(sources, vocabularies, ids)
    groups, prios, fallback = [], set(), 0
    for i, grp in enumerate(raw_groups):
        w = f"groups[{i}]"
        prio = ctx.int_(grp["priority"], f"{w}.priority", 1, 1000)
        if prio in prios:
            raise ctx.fail(where=f"{w}.priority", what=_("priority {prio} is used twice").format(prio=prio))
        prios.add(prio)
        conds.check(ctx, grp["when"], f"{w}.when", groups_any=False, no_other_group=True)
        from ..rules_engine import uses_no_other_group

        fallback += uses_no_other_group(grp["when"])
        groups.append(Group(grp["group"], prio, ctx.shown(grp["label"], f"{w}.label"),
                            ctx.shown(grp["action"], f"{w}.action"), grp["when"]))  # fmt: skip
    if fallback > 1:
        raise ctx.fail(where="groups", what=_("only one group may use no_other_group"))
    upgradable = [
        ctx.one_of(x, "upgradable_groups", sorted(ids), _("group"))
        for x in ctx.list_(g["upgradable_groups"], "upgradable_groups", nonempty=False)
    ]
    emp = ctx.mapping(g["employers"], "employers", ("min_withheld_months",))
    groups_p = Groups(
        tuple(sorted(groups, key=lambda x: x.priority)),
        tuple(upgradable),
        ctx.int_(emp["min_withheld_months"], "employers.min_withheld_months", 0, 12),
    )
    return groups_p, conds


def _statuses(root: Path, conds: _Conditions) -> Statuses:
    """rules/statuses.yaml: the exclusion reasons, the status rules, registry and survey statuses."""
    ctx, s = _rules_file(root, "statuses")
    s = ctx.mapping(s, _("top level"), ("excluded", "statuses", "registry_statuses"), ("survey_statuses",))
    ex = ctx.mapping(s["excluded"], "excluded", ("status", "label", "reasons"))
    excluded = ctx.str_(ex["status"], "excluded.status", IDENT)
    reasons, seen = [], set()
    for i, r in enumerate(ctx.list_(ex["reasons"], "excluded.reasons", nonempty=False)):
        w = f"excluded.reasons[{i}]"
        ctx.mapping(r, w, ("reason", "label", "when"))
        name = ctx.str_(r["reason"], f"{w}.reason", IDENT)
        if name in seen:
            raise ctx.fail(where=f"{w}.reason", what=_("{name!r} is declared twice").format(name=name))
        seen.add(name)
        conds.check(ctx, r["when"], f"{w}.when", groups_any=False, no_other_group=False)
        reasons.append(ExclusionReason(name, ctx.shown(r["label"], f"{w}.label"), r["when"]))
    rules, seen = [], {excluded}
    for i, r in enumerate(ctx.list_(s["statuses"], "statuses")):
        w = f"statuses[{i}]"
        ctx.mapping(r, w, ("status", "label", "when"))
        name = ctx.str_(r["status"], f"{w}.status", IDENT)
        if name in seen:
            raise ctx.fail(where=f"{w}.status", what=_("{name!r} is declared twice").format(name=name))
        seen.add(name)
        conds.check(ctx, r["when"], f"{w}.when", groups_any=True, no_other_group=False)
        rules.append(StatusRule(name, ctx.shown(r["label"], f"{w}.label"), r["when"]))
    known = [r.status for r in rules]
    registry = tuple(
        ctx.one_of(x, f"registry_statuses[{i}]", known, _("status"))
        for i, x in enumerate(ctx.list_(s["registry_statuses"], "registry_statuses"))
    )
    survey_statuses = []
    for i, r in enumerate(ctx.list_(s.get("survey_statuses", []), "survey_statuses", nonempty=False)):
        w = f"survey_statuses[{i}]"
        ctx.mapping(r, w, ("status", "label"), ("self_reported",))
        name = ctx.str_(r["status"], f"{w}.status", IDENT)
        if name in seen:
            raise ctx.fail(where=f"{w}.status", what=_("{name!r} is declared twice").format(name=name))
        seen.add(name)
        survey_statuses.append(
            SurveyStatus(
                name,
                ctx.str_(r["label"], f"{w}.label"),
                ctx.bool_(r.get("self_reported", False), f"{w}.self_reported"),
            )
        )
    statuses = Statuses(
        excluded, ctx.shown(ex["label"], "excluded.label"), tuple(reasons), tuple(rules), registry,
        tuple(survey_statuses),
    )  # fmt: skip
    return statuses


def _indicators(root: Path, statuses: Statuses) -> Indicators:
    """rules/indicators.yaml: the yearly targets and which statuses count as enrolled, contributing, employed."""
    ctx, ind = _rules_file(root, "indicators")
    ind = ctx.mapping(
        ind, _("top level"), ("targets", "enrolled_statuses", "contribution_statuses", "employee_statuses")
    )
    tg = ctx.mapping(ind["targets"], "targets", ("coverage", "employee_share"))
    targets = {}
    for k in ("coverage", "employee_share"):
        m = ctx.mapping(tg[k], f"targets.{k}", (), tuple(tg[k]) if isinstance(tg[k], dict) else ())
        if not m:
            raise ctx.fail(where=f"targets.{k}", what=_("name at least one year: rate"))
        targets[k] = {str(y): ctx.num(v, f"targets.{k}.{y}", 0, 1) for y, v in m.items()}
        for y in targets[k]:
            if not re.fullmatch(r"\d{4}", y):
                raise ctx.fail(where=f"targets.{k}.{y}", what=_('a target is keyed by its year, e.g. "2025"'))
    all_statuses = list(statuses.all)

    def status_list(key: str) -> tuple[str, ...]:
        return tuple(
            ctx.one_of(x, f"{key}[{i}]", all_statuses, _("status"))
            for i, x in enumerate(ctx.list_(ind[key], key))
        )

    indicators = Indicators(targets["coverage"], targets["employee_share"], status_list("enrolled_statuses"),
                            status_list("contribution_statuses"), status_list("employee_statuses"))  # fmt: skip
    return indicators


def _matching(root: Path, sources: dict[str, Source]) -> Matching:
    """rules/matching.yaml: name agreement, name evidence and parts, plausibility, the match rules."""
    ctx, m = _rules_file(root, "matching")
    m = ctx.mapping(
        m, _("top level"), ("name_agreement", "rules"),
        ("name_evidence", "name_parts", "plausibility", "no_silent_listing"),
    )  # fmt: skip
    na = ctx.mapping(m["name_agreement"], "name_agreement", ("agree", "same"), ("understood",))
    ctx.num(na["agree"], "name_agreement.agree", 0, 1)
    ctx.num(na["same"], "name_agreement.same", 0, 1)
    if "understood" in na:
        ctx.num(na["understood"], "name_agreement.understood", float(na["agree"]), 1)
    ev = ctx.mapping(m.get("name_evidence") or {}, "name_evidence", (), NAME_EVIDENCE)
    for k, v in ev.items():
        ctx.str_(v, f"name_evidence.{k}")
    parts = ctx.mapping(m.get("name_parts") or {}, "name_parts", (), tuple(m.get("name_parts") or {}))
    for ch, spellings in parts.items():
        if len(str(ch)) != 1:
            raise ctx.fail(
                where=f"name_parts.{ch}", what=_("a key is one character (the rare character itself)")
            )
        for j, sp in enumerate(ctx.list_(spellings, f"name_parts.{ch}")):
            if len(ctx.str_(sp, f"name_parts.{ch}[{j}]")) < 2:
                raise ctx.fail(
                    where=f"name_parts.{ch}[{j}]", what=_("write the parts: at least two characters")
                )
    pl_ = ctx.mapping(
        m.get("plausibility") or {},
        "plausibility",
        (),
        ("adult_only_sources", "adult_age", "corrected_birth_days", "home_code_share"),
    )
    for j, src in enumerate(ctx.list_(pl_.get("adult_only_sources", []), "plausibility.adult_only_sources",
                                      nonempty=False)):  # fmt: skip
        ctx.one_of(src, f"plausibility.adult_only_sources[{j}]", sorted(sources), "source")
    if "adult_age" in pl_:
        ctx.int_(pl_["adult_age"], "plausibility.adult_age", 0, 30)
    if "corrected_birth_days" in pl_:
        ctx.int_(pl_["corrected_birth_days"], "plausibility.corrected_birth_days", 0, 3660)
    if "home_code_share" in pl_:
        ctx.num(pl_["home_code_share"], "plausibility.home_code_share", 0, 1)
    nsl = ctx.mapping(m.get("no_silent_listing") or {}, "no_silent_listing", (), ("sources",))
    for j, src in enumerate(ctx.list_(nsl.get("sources", []), "no_silent_listing.sources", nonempty=False)):
        ctx.one_of(src, f"no_silent_listing.sources[{j}]", sorted(sources), "source")
    seen = set()
    match_rules = []
    for i, r in enumerate(ctx.list_(m["rules"], "rules")):
        w = f"rules[{i}]"
        ctx.mapping(r, w, ("rule", "id_kinds", "candidates", "name", "confidence"),
                    ("label", "band", "min_digits", "prefer_same_street", "review_reason"))  # fmt: skip
        name = ctx.str_(r["rule"], f"{w}.rule", IDENT)
        if name in seen:
            raise ctx.fail(where=f"{w}.rule", what=_("{name!r} is declared twice").format(name=name))
        seen.add(name)
        for j, k in enumerate(ctx.list_(r["id_kinds"], f"{w}.id_kinds")):
            ctx.one_of(k, f"{w}.id_kinds[{j}]", ID_KINDS, _("ID kind"))
        ctx.one_of(r["candidates"], f"{w}.candidates", CANDIDATES, _("candidate method"))
        ctx.one_of(r["name"], f"{w}.name", ("agree", "same"), _("name threshold"))
        ctx.num(r["confidence"], f"{w}.confidence", 0, 1)
        if "band" in r:
            ctx.one_of(r["band"], f"{w}.band", ("auto", "review"), _("band"))
        if "min_digits" in r:
            ctx.int_(r["min_digits"], f"{w}.min_digits", 6, 17)
        if "prefer_same_street" in r:
            ctx.bool_(r["prefer_same_street"], f"{w}.prefer_same_street")
        if "label" in r:
            ctx.str_(r["label"], f"{w}.label")
        if "review_reason" in r:
            ctx.str_(r["review_reason"], f"{w}.review_reason")
        match_rules.append(
            MatchRule(
                name,
                str(r.get("label", name)),
                tuple(r["id_kinds"]),
                r["candidates"],
                r["name"],
                float(r["confidence"]),
                r.get("band", "auto"),
                r.get("min_digits"),
                bool(r.get("prefer_same_street", False)),
                str(r.get("review_reason") or "rule needs a person to confirm"),
            )  # fmt: skip
        )
    if "id_equal" not in {r["candidates"] for r in m["rules"]}:
        raise ctx.fail(where="rules", what=_("one rule must use candidates: id_equal (the exact-ID rule)"))
    matching = Matching(
        float(na["agree"]), float(na["same"]), tuple(match_rules),
        understood=float(na["understood"]) if "understood" in na else None,
        name_parts={str(k): tuple(str(v) for v in vs) for k, vs in parts.items()},
        adult_only_sources=tuple(pl_.get("adult_only_sources") or ()),
        adult_age=int(pl_.get("adult_age", 0)),
        corrected_birth_days=int(pl_.get("corrected_birth_days", 0)),
        home_code_share=float(pl_.get("home_code_share", 0.0)),
        no_silent_listing=tuple(nsl.get("sources") or ()),
    )  # fmt: skip
    return matching


def _survey(root: Path, statuses: Statuses) -> Survey:
    """rules/survey.yaml: the columns of the survey sheet, then their effects."""
    ctx, sv = _rules_file(root, "survey")
    sv = ctx.mapping(sv, _("top level"), ("columns", "effects"))
    survey, seen = [], set()
    for i, c in enumerate(ctx.list_(sv["columns"], "columns")):
        w = f"columns[{i}]"
        ctx.mapping(c, w, ("field", "header"), ("allowed", "type", "stored"))
        stored = ctx.bool_(c.get("stored", True), f"{w}.stored")
        field = (
            ctx.one_of(c["field"], f"{w}.field", SURVEY_FIELDS, _("survey field"))
            if stored
            else ctx.str_(c["field"], f"{w}.field", IDENT)
        )
        if field in seen:
            raise ctx.fail(where=f"{w}.field", what=_("{field!r} is declared twice").format(field=field))
        seen.add(field)
        typ = ctx.one_of(c.get("type", "text"), f"{w}.type", ("text", "date"), _("type"))
        allowed = tuple(
            ctx.str_(a, f"{w}.allowed[{j}]")
            for j, a in enumerate(ctx.list_(c.get("allowed", []), f"{w}.allowed", nonempty=False))
        )
        survey.append(SurveyColumn(field, ctx.str_(c["header"], f"{w}.header"), allowed, typ, stored))
    missing = [f for f in SURVEY_FIELDS if f not in seen]
    if missing:
        raise ctx.fail(
            where="columns",
            what=_("the survey columns {missing} are missing (persons.parquet stores them)").format(
                missing=", ".join(missing)
            ),
        )
    return _survey_effects(ctx, sv["effects"], tuple(survey), statuses)


def _streets(root: Path) -> tuple[set[str], tuple[Street, ...]]:
    """rules/streets.csv: street_code,street_name; the codes and the streets in file order."""
    path = root / "rules" / "streets.csv"
    if not path.is_file():
        raise PolicyError(
            _("{path}: missing. It lists street_code,street_name (12-digit codes).").format(path=path)
        )
    with open(path, encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["street_code", "street_name"]:
            raise PolicyError(
                _("{path}: the header must be street_code,street_name, got {header}.").format(
                    path=path, header=",".join(reader.fieldnames or [])
                )
            )
        codes, street_list = set(), []
        for n, r in enumerate(reader, start=2):
            if not re.fullmatch(r"\d{12}", r["street_code"] or "") or not (r["street_name"] or "").strip():
                raise PolicyError(
                    _("{path}, row {n}: street_code must be 12 digits and street_name not empty.").format(
                        path=path, n=n
                    )
                )
            if r["street_code"] in codes:
                raise PolicyError(
                    _("{path}, row {n}: street_code {street_code} is listed twice.").format(
                        path=path, n=n, street_code=r["street_code"]
                    )
                )
            bad = _odd_characters(r["street_name"].strip())
            if bad:
                raise PolicyError(
                    _(
                        "{path}, row {n}: street_name holds {bad}, which no street's name has. Write the name as the street is called (e.g. 连然街道)."
                    ).format(path=path, n=n, bad=bad)
                )
            codes.add(r["street_code"])
            street_list.append(Street(r["street_code"], r["street_name"].strip()))
    return codes, tuple(street_list)


def _answers(ctx: _Ctx, value, where: str, columns: tuple[SurveyColumn, ...]) -> tuple[str, tuple[str, ...]]:
    """``{field: F, answers: [...]}``: F a stored survey column with a list, every answer one of it."""
    by_field = {c.field: c for c in columns if c.stored and c.allowed}
    f = ctx.one_of(value["field"], f"{where}.field", list(by_field), _("survey field with a list of answers"))
    answers = tuple(
        ctx.one_of(
            a,
            f"{where}.answers[{j}]",
            by_field[f].allowed,
            _("answer of {header}").format(header=by_field[f].header),
        )
        for j, a in enumerate(ctx.list_(value["answers"], f"{where}.answers"))
    )
    return f, answers


def _survey_effects(ctx: _Ctx, e, columns: tuple[SurveyColumn, ...], statuses: Statuses) -> Survey:
    """survey.yaml ``effects``: what the answers do (rules.md, "After the survey")."""
    e = ctx.mapping(e, "effects", ("exclude", "insured_elsewhere", "not_found"))
    exclude, reasons = [], {r.reason for r in statuses.reasons}
    for i, x in enumerate(ctx.list_(e["exclude"], "effects.exclude", nonempty=False)):
        w = f"effects.exclude[{i}]"
        ctx.mapping(x, w, ("field", "answers", "reason", "label"))
        f, answers = _answers(ctx, x, w, columns)
        reason = ctx.str_(x["reason"], f"{w}.reason", IDENT)
        if reason in reasons:
            raise ctx.fail(
                where=f"{w}.reason",
                what=_("{reason!r} is already an exclusion reason (statuses.yaml or above)").format(
                    reason=reason
                ),
            )
        reasons.add(reason)
        exclude.append(SurveyExclusion(f, answers, reason, ctx.shown(x["label"], f"{w}.label")))
    w = "effects.insured_elsewhere"
    ie = ctx.mapping(e["insured_elsewhere"], w, ("status", "from", "when"))
    status = ctx.one_of(ie["status"], f"{w}.status", [s.status for s in statuses.survey],
                        _("status (declare it in statuses.yaml survey_statuses)"))  # fmt: skip
    known = [r.status for r in statuses.statuses]
    from_ = tuple(
        ctx.one_of(x, f"{w}.from[{i}]", known, _("status"))
        for i, x in enumerate(ctx.list_(ie["from"], f"{w}.from"))
    )
    when = []
    for i, x in enumerate(ctx.list_(ie["when"], f"{w}.when")):
        ctx.mapping(x, f"{w}.when[{i}]", ("field", "answers"))
        when.append(_answers(ctx, x, f"{w}.when[{i}]", columns))
    w = "effects.not_found"
    nf = ctx.mapping(e["not_found"], w, ("field", "answers", "visits", "reason"))
    nf_field, nf_answers = _answers(ctx, nf, w, columns)
    if not any(c.type == "date" and c.field == "surveyed_on" for c in columns):
        raise ctx.fail(
            where="columns",
            what=_("surveyed_on must be a column of type: date (visits are told apart by it)"),
        )
    return Survey(
        columns=columns, exclude=tuple(exclude), elsewhere_status=status, elsewhere_from=from_,
        elsewhere_when=tuple(when), not_found_field=nf_field, not_found_answers=nf_answers,
        not_found_visits=ctx.int_(nf["visits"], f"{w}.visits", 2, 10),
        not_found_reason=ctx.shown(nf["reason"], f"{w}.reason"),
    )  # fmt: skip


def _targets(root: Path, survey: Survey, groups: Groups) -> Targets:
    """rules/targets.yaml: levels, then rules evaluated in order (the first that applies)."""
    ctx, t = _rules_file(root, "targets")
    t = ctx.mapping(t, _("top level"), ("levels", "rules"))
    lv = t["levels"]
    levels = {
        ctx.str_(str(k), "levels", re.compile(r"^[A-Z]$")): ctx.shown(v, f"levels.{k}")
        for k, v in ctx.mapping(lv, "levels", (), tuple(lv) if isinstance(lv, dict) else ()).items()
    }
    if not levels:
        raise ctx.fail(where="levels", what=_("name at least one level, e.g. A: 重点"))
    rules = []
    for i, r in enumerate(ctx.list_(t["rules"], "rules")):
        w = f"rules[{i}]"
        ctx.mapping(r, w, ("priority", "reason", "when"))
        prio = ctx.one_of(r["priority"], f"{w}.priority", list(levels), _("level"))
        _target_condition(ctx, r["when"], f"{w}.when", survey, groups)
        rules.append(TargetRule(prio, ctx.shown(r["reason"], f"{w}.reason"), r["when"]))
    if rules[-1].when != {"always": True}:
        raise ctx.fail(
            where=f"rules[{len(rules) - 1}].when",
            what=_("the last rule must be {always: true} (every registry person gets a level)"),
        )
    return Targets(levels, tuple(rules))


def _target_condition(ctx: _Ctx, cond, where: str, survey: Survey, groups: Groups) -> None:
    if not isinstance(cond, dict) or not cond:
        raise ctx.fail(
            where, _("a condition must be a non-empty mapping, got {kind}").format(kind=_kind(cond))
        )
    fields = {c.field: c for c in survey.stored}
    if "any" in cond or "all" in cond:
        k = "any" if "any" in cond else "all"
        ctx.mapping(cond, where, (k,))
        for i, c in enumerate(ctx.list_(cond[k], f"{where}.{k}")):
            _target_condition(ctx, c, f"{where}.{k}[{i}]", survey, groups)
    elif "not" in cond:
        ctx.mapping(cond, where, ("not",))
        _target_condition(ctx, cond["not"], f"{where}.not", survey, groups)
    elif "answer" in cond:
        ctx.mapping(cond, where, ("answer", "in"))
        f = ctx.one_of(
            cond["answer"],
            f"{where}.answer",
            [c.field for c in survey.stored if c.allowed],
            _("survey field"),
        )
        for j, a in enumerate(ctx.list_(cond["in"], f"{where}.in")):
            ctx.one_of(
                a,
                f"{where}.in[{j}]",
                fields[f].allowed,
                _("answer of {header}").format(header=fields[f].header),
            )
    elif "answered" in cond:
        ctx.mapping(cond, where, ("answered",))
        ctx.one_of(cond["answered"], f"{where}.answered", list(fields), _("survey field"))
    elif "age" in cond:
        ctx.mapping(cond, where, ("age",))
        pred = ctx.mapping(cond["age"], f"{where}.age", (), ("==", ">=", ">", "<=", "<"))
        if not pred:
            raise ctx.fail(where=f"{where}.age", what=_("name an operator (==, >=, >, <=, <)"))
        for op, v in pred.items():
            ctx.int_(v, f"{where}.age.{op}", 0, 150)
    elif "groups_any" in cond:
        ctx.mapping(cond, where, ("groups_any",))
        for i, g in enumerate(ctx.list_(cond["groups_any"], f"{where}.groups_any")):
            ctx.one_of(g, f"{where}.groups_any[{i}]", sorted(groups.by_id()), _("group"))
    elif "pension" in cond:
        ctx.mapping(cond, where, ("pension",))
        ctx.one_of(cond["pension"], f"{where}.pension", PENSION_CONDITIONS, _("pension condition"))
    elif "always" in cond:
        ctx.mapping(cond, where, ("always",))
        if cond["always"] is not True:
            raise ctx.fail(where=f"{where}.always", what=_("write always: true"))
    else:
        raise ctx.fail(
            where,
            _("unknown condition (allowed keys: {target_keys})").format(target_keys=", ".join(TARGET_KEYS)),
        )


# rules/files.yaml limits: the sane range of each (a limit of 0 or below refuses every file).
FILE_LIMITS = {
    "max_unpacked_mb": (1, 1_000_000),
    "max_compression_ratio": (1, 10_000),
    "max_columns": (10, 100_000),
    "max_cell_mb": (0.001, 1024),
    "max_cells_per_byte": (0.001, 10_000),
    "max_sheets": (1, 1_000_000),
    "max_text_mb": (1, 1_000_000),
    "max_line_mb": (0.001, 100_000),
    "max_parquet_rows": (1, 10**12),
    "max_parquet_mb": (1, 1_000_000),
}
FILE_COUNT_LIMITS = {"max_sheets", "max_parquet_rows"}  # whole numbers


def _check_files(root: Path, sources: dict[str, Source]) -> FileRules:
    """rules/files.yaml (read by the load stage): header search, row patterns, unreadable formats,
    reading limits, the damage guard. Optional: a folder without it uses the installed default
    (and a file without ``guards`` the default's guards)."""
    if not (root / "rules" / "files.yaml").is_file():
        return _defaults_for(root, "rules/files.yaml").file_rules
    ctx, f = _rules_file(root, "files")
    f = ctx.mapping(f, _("top level"), ("header", "rows", "cannot_read", "limits", "damage"), ("guards",))
    h = ctx.mapping(f["header"], "header", ("search_rows", "data_sheet_matches"))
    ctx.int_(h["search_rows"], "header.search_rows", 1, 100)
    ctx.int_(h["data_sheet_matches"], "header.data_sheet_matches", 1, 100)
    rows = ctx.mapping(f["rows"], "rows", (), ("total_row", "footer_row"))
    for reason, pattern in rows.items():
        try:
            re.compile(ctx.str_(pattern, f"rows.{reason}"))
        except re.error as e:
            raise ctx.fail(
                where=f"rows.{reason}", what=_("not a regular expression ({e})").format(e=e)
            ) from None
    kinds = f["cannot_read"] if isinstance(f["cannot_read"], dict) else {}
    for suffix in ctx.mapping(f["cannot_read"], "cannot_read", (), tuple(kinds)):
        ctx.str_(suffix, f"cannot_read.{suffix}", re.compile(r"^\.[a-z0-9]+$"))
        ctx.str_(kinds[suffix], f"cannot_read.{suffix}")
    lim = ctx.mapping(f["limits"], "limits", tuple(FILE_LIMITS))
    for k, (lo, hi) in FILE_LIMITS.items():
        if k in FILE_COUNT_LIMITS:
            ctx.int_(lim[k], f"limits.{k}", int(lo), int(hi))
        else:
            ctx.num(lim[k], f"limits.{k}", lo, hi)
    d = ctx.mapping(f["damage"], "damage", ("required_source_share", "file_share", "min_rows"))
    ctx.num(d["required_source_share"], "damage.required_source_share", 0, 1)
    ctx.num(d["file_share"], "damage.file_share", 0, 1)
    ctx.int_(d["min_rows"], "damage.min_rows", 0, 10**9)
    if "guards" in f:  # optional: a bureau's file that predates the guards uses the installed default's
        guards = _check_guards(ctx, f["guards"], {n: tuple(src.fields) for n, src in sources.items()})
    else:
        guards = _defaults_for(root, "rules/files.yaml").file_rules.guards
    return FileRules(
        search_rows=h["search_rows"],
        data_sheet_matches=h["data_sheet_matches"],
        rows=dict(rows),
        cannot_read={str(k): str(v) for k, v in kinds.items()},
        limits=dict(lim),
        damage=Damage(d["required_source_share"], d["file_share"], d["min_rows"]),
        guards=guards,
        own_guards="guards" in f,
    )


def _defaults_for(root: Path, what: str) -> Policy:
    """The installed default policy, for what a bureau's older folder lacks (``what``: the file)."""
    if root.resolve() == defaults_home().resolve():  # the defaults themselves lack it: no fallback
        raise PolicyError(_("{path}: missing from the installed defaults.").format(path=root / what))
    return load_policy(defaults_home())


def _check_guards(ctx, g, sources: dict[str, tuple[str, ...]]) -> Guards:
    """rules/files.yaml ``guards`` (commands/guards.py): shares in 0–1, known sources and columns."""
    g = ctx.mapping(g, "guards", ("min_rows", "expected_fill", "fill_drop", "previous"))
    ctx.int_(g["min_rows"], "guards.min_rows", 0, 10**9)
    ctx.num(g["fill_drop"], "guards.fill_drop", 0, 1)
    exp = g["expected_fill"]
    for src in ctx.mapping(exp, "guards.expected_fill", (), tuple(exp) if isinstance(exp, dict) else ()):
        ctx.one_of(src, f"guards.expected_fill.{src}", sources, _("source"))
        cols = exp[src] or {}
        for col in ctx.mapping(
            cols, f"guards.expected_fill.{src}", (), tuple(cols) if isinstance(cols, dict) else ()
        ):
            ctx.one_of(
                col,
                f"guards.expected_fill.{src}.{col}",
                sources[src],
                _("column of {source}").format(source=src),
            )
            ctx.num(cols[col], f"guards.expected_fill.{src}.{col}", 0, 1)
    p = ctx.mapping(g["previous"], "guards.previous", ("rows_fall", "rows_growth", "fill_drop"))
    ctx.num(p["rows_fall"], "guards.previous.rows_fall", 0, 1)
    ctx.num(p["rows_growth"], "guards.previous.rows_growth", 1, 1000)
    ctx.num(p["fill_drop"], "guards.previous.fill_drop", 0, 1)
    return Guards(
        min_rows=g["min_rows"],
        expected_fill={str(src): dict(cols or {}) for src, cols in exp.items()},
        fill_drop=g["fill_drop"],
        previous=PreviousGuard(p["rows_fall"], p["rows_growth"], p["fill_drop"]),
    )


def _check_tasks(root: Path, street_codes: set[str], vocabularies: dict) -> Tasks:
    """rules/tasks.yaml (read by ``kuomian progress``): years → streets → tasks; the counted values.
    Optional: a folder without it uses the installed default."""
    if not (root / "rules" / "tasks.yaml").is_file():
        return _defaults_for(root, "rules/tasks.yaml").tasks
    ctx, t = _rules_file(root, "tasks")
    t = ctx.mapping(
        t or {}, _("top level"), (), ("tasks", "enrolled_statuses", "employee_schemes", "resident_schemes")
    )
    tasks = t.get("tasks") or {}
    ctx.mapping(tasks, "tasks", (), tuple(tasks) if isinstance(tasks, dict) else ())
    by_year: dict[str, dict[str, dict[str, int | None]]] = {}
    for year, streets in tasks.items():
        if not re.fullmatch(r"\d{4}", str(year)):
            raise ctx.fail(
                where=f"tasks.{year}", what=_('a year\'s tasks are keyed by the year, e.g. "2026"')
            )
        streets = ctx.mapping(
            streets or {}, f"tasks.{year}", (), tuple(streets or {}) if isinstance(streets, dict) else ()
        )
        for code, task in streets.items():
            w = f"tasks.{year}.{code}"
            if str(code) not in street_codes:
                raise ctx.fail(
                    w, _("not a street code of rules/streets.csv (write the 12-digit code in quotes)")
                )
            task = ctx.mapping(task or {}, w, (), ("enrolment", "employee"))
            for k, v in task.items():
                if v is not None:
                    ctx.int_(v, f"{w}.{k}", 0, 10**8)
            by_year.setdefault(str(year), {})[str(code)] = {
                "enrolment": task.get("enrolment"),
                "employee": task.get("employee"),
            }
    for key, vocab in (
        ("enrolled_statuses", "enroll_status"),
        ("employee_schemes", "scheme"),
        ("resident_schemes", "scheme"),
    ):
        allowed = list(vocabularies.get(vocab, {}))
        for i, v in enumerate(ctx.list_(t.get(key, []), key, nonempty=False)):
            if allowed:
                ctx.one_of(v, f"{key}[{i}]", allowed, _("{vocab} value").format(vocab=vocab))
    return Tasks(
        by_year=by_year,
        enrolled_statuses=tuple(
            t.get("enrolled_statuses") or _defaults_for(root, "rules/tasks.yaml").tasks.enrolled_statuses
        ),
        employee_schemes=tuple(t.get("employee_schemes") or ()),
        resident_schemes=tuple(t.get("resident_schemes") or ()),
    )


def _retirement(root: Path, groups: Groups, statuses: Statuses, vocabularies: dict) -> Retirement:
    ctx, r = _rules_file(root, "retirement")
    r = ctx.mapping(r, _("top level"), ("tracks", "track_by_sex", "minimum_contribution", "measures"))
    tracks = {}
    raw = ctx.mapping(r["tracks"], "tracks", (), tuple(r["tracks"]) if isinstance(r["tracks"], dict) else ())
    for name, t in raw.items():
        w = f"tracks.{name}"
        ctx.mapping(t, w, ("old_age", "first_cohort", "birth_months_per_month", "cap_age"), ("label",))
        fc = t["first_cohort"]
        if not (isinstance(fc, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", fc)):
            raise ctx.fail(
                where=f"{w}.first_cohort",
                what=_('write the first month of birth as "YYYY-MM" (quoted), got {kind}').format(
                    kind=_kind(fc)
                ),
            )
        old = ctx.int_(t["old_age"], f"{w}.old_age", 40, 70)
        cap = ctx.int_(t["cap_age"], f"{w}.cap_age", old, 75)
        tracks[name] = Track(name, str(t.get("label", name)), old, (int(fc[:4]), int(fc[5:])),
                             ctx.int_(t["birth_months_per_month"], f"{w}.birth_months_per_month", 1, 24), cap)  # fmt: skip
    if not tracks:
        raise ctx.fail(where="tracks", what=_("declare at least one track"))
    by_sex = ctx.mapping(r["track_by_sex"], "track_by_sex", (), tuple(vocabularies.get("sex", {})))
    for sex, t in by_sex.items():
        ctx.one_of(t, f"track_by_sex.{sex}", list(tracks), _("track"))
    mc = ctx.mapping(r["minimum_contribution"], "minimum_contribution",
                     ("years", "rise_from", "rise_months_per_year", "max_years"))  # fmt: skip
    if not isinstance(mc["rise_from"], date):
        raise ctx.fail(
            where="minimum_contribution.rise_from",
            what=_("expected a date YYYY-MM-DD, got {kind}").format(kind=_kind(mc["rise_from"])),
        )
    ms = ctx.mapping(
        r["measures"], "measures", ("elderly_unenrolled", "past_pension_date", "short_of_minimum")
    )
    el = ctx.mapping(
        ms["elderly_unenrolled"], "measures.elderly_unenrolled", ("min_age", "statuses", "measure")
    )
    for i, s in enumerate(ctx.list_(el["statuses"], "measures.elderly_unenrolled.statuses")):
        ctx.one_of(s, f"measures.elderly_unenrolled.statuses[{i}]", statuses.all, _("status"))
    pp = ctx.mapping(
        ms["past_pension_date"], "measures.past_pension_date", ("measure",), ("keep_group_action",)
    )
    keep = [ctx.one_of(g, "measures.past_pension_date.keep_group_action", sorted(groups.by_id()), _("group"))
            for g in ctx.list_(pp.get("keep_group_action", []), "measures.past_pension_date.keep_group_action", nonempty=False)]  # fmt: skip
    sm = ctx.mapping(ms["short_of_minimum"], "measures.short_of_minimum", ("note",))
    return Retirement(
        tracks=tracks,
        track_by_sex=dict(by_sex),
        minimum_years=ctx.num(mc["years"], "minimum_contribution.years", 0, 50),
        rise_from=mc["rise_from"],
        rise_months_per_year=ctx.int_(
            mc["rise_months_per_year"], "minimum_contribution.rise_months_per_year", 0, 12
        ),
        maximum_years=ctx.num(mc["max_years"], "minimum_contribution.max_years", 0, 50),
        elderly_age=ctx.int_(el["min_age"], "measures.elderly_unenrolled.min_age", 40, 100),
        elderly_statuses=tuple(el["statuses"]),
        elderly_measure=ctx.shown(el["measure"], "measures.elderly_unenrolled.measure"),
        past_pension_measure=ctx.shown(pp["measure"], "measures.past_pension_date.measure"),
        past_pension_keep_group_action=tuple(keep),
        short_note=ctx.shown(sm["note"], "measures.short_of_minimum.note"),
    )


def load_policy(root: Path | None = None) -> Policy:
    """The policy of ``root`` (default: the folder in force), checked; cached per folder."""
    root = Path(root or home())
    if not (root / "rules").is_dir() or not (root / "sources").is_dir():
        raise PolicyError(
            _(
                "{root}: not a policy folder (it needs rules/ and sources/). Create one with `kuomian rules export DIR`, then pass --rules DIR."
            ).format(root=root)
        )
    return _load(root.resolve())


_IN_FORCE: dict[Path, Policy] = {}  # home() -> its checked policy: policy() is cheap per call


def policy() -> Policy:
    """The policy in force (see :func:`.config.home`), checked once and kept until the caches are
    cleared (``--rules``, :func:`clear_cache`): every module reads it, per file, not per row."""
    root = home()
    p = _IN_FORCE.get(root)
    if p is None:
        p = _IN_FORCE[root] = load_policy(root)
    return p


def _forget() -> None:
    _load.cache_clear()
    _IN_FORCE.clear()


on_clear_caches(_forget)


def clear_cache() -> None:
    clear_caches()
