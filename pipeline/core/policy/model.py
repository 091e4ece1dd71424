"""The typed policy: the frozen objects every module reads (:class:`Policy` and its parts),
the names and vocabularies of the rule language, and :class:`PolicyError`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from ..config import Field, Source, Street, defaults_home, normalise_header
from ..errors import KuomianError

RULE_FILES = (
    "statuses", "groups", "indicators", "matching", "vocabularies", "survey", "retirement", "targets",
)  # fmt: skip
# Columns of a person row a `{person: FIELD}` condition may name (classify's cls_base).
PERSON_FIELDS = {
    "hukou_local": "bool", "name": "text", "sex": "category:sex", "birth_date": "date", "age": "number",
    "hukou_type": "category:hukou_type", "person_status": "category:person_status", "address": "text",
    "ethnicity": "text", "household_no": "text", "street_code": "text", "community": "text",
    "match_confidence": "number", "needs_review": "bool",
}  # fmt: skip
# Columns of an entity (tax ∪ market by 统一社会信用代码) an `{entity: …}` condition may name.
ENTITY_FIELDS = {
    "in_tax": "bool", "in_market": "bool", "tax_entity_type": "category:entity_type",
    "tax_entity_size": "category:entity_size", "tax_status": "category:tax_status",
    "market_entity_type": "category:entity_type", "established": "date",
}  # fmt: skip
CONDITION_KEYS = ("source", "where", "entity", "person", "age", "groups_any", "no_other_group", "always",
                  "any", "all", "not")  # fmt: skip
PREDICATE_OPS = ("in", "not_in", "==", ">=", ">", "<=", "<", "blank")
FIELD_TYPES = ("id", "name", "text", "date", "street", "int", "number", "category")
ROLES = ("base", "adds_people", "match_only")
ID_KINDS = ("valid", "upgraded", "bad_check", "excel", "unusable")
CANDIDATES = ("id_equal", "same_household_name", "one_edit", "id_prefix", "name_birth", "name_place",
              "name_prefix", "former_id_equal", "id_equal_former_name", "same_birth_place_name",
              "name_birth_near", "birth_corrected", "name_prefix_elsewhere", "shared_id_equal")  # fmt: skip
NAME_EVIDENCE = ("placeholder", "mask", "note", "latin", "parts")
# Survey answers persons.parquet stores (outputs.md); other columns must say `stored: false`.
SURVEY_FIELDS = (
    "visit_result", "ability_to_pay", "willingness", "reason_not_enrolled", "income_band", "employment",
    "surveyed_on",
)  # fmt: skip
# The condition keys of rules/targets.yaml (a small language of its own, on persons.parquet).
TARGET_KEYS = ("answer", "answered", "age", "groups_any", "pension", "always", "any", "all", "not")
PENSION_CONDITIONS = ("enough_years", "before")
# Sources the stages name directly (the population base, enrolment, the entity and employer lists).
NEEDED_SOURCES = ("household", "enrollment", "income", "market", "tax")
IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class PolicyError(KuomianError):
    """A policy file that cannot be used as written (exit 1)."""


# ---------------------------------------------------------------- the typed policy


@dataclass(frozen=True)
class ExclusionReason:
    reason: str
    label: str
    when: dict


@dataclass(frozen=True)
class StatusRule:
    status: str
    label: str
    when: dict


@dataclass(frozen=True)
class SurveyStatus:
    """A status only a survey answer gives (statuses.yaml ``survey_statuses``)."""

    status: str
    label: str
    self_reported: bool


@dataclass(frozen=True)
class Statuses:
    excluded: str
    excluded_label: str
    reasons: tuple[ExclusionReason, ...]
    statuses: tuple[StatusRule, ...]
    registry: tuple[str, ...]
    survey: tuple[SurveyStatus, ...] = ()  # statuses only a survey answer gives

    @property
    def all(self) -> tuple[str, ...]:
        """Every status a person can have (the excluded one first, the survey's last)."""
        return (self.excluded, *(s.status for s in self.statuses), *(s.status for s in self.survey))


@dataclass(frozen=True)
class Group:
    group: int
    priority: int
    label: str
    action: str
    when: dict


@dataclass(frozen=True)
class Groups:
    groups: tuple[Group, ...]
    upgradable: tuple[int, ...]
    employer_min_withheld_months: int

    def by_id(self) -> dict[int, Group]:
        return {g.group: g for g in self.groups}


@dataclass(frozen=True)
class Indicators:
    coverage_targets: dict[str, float]
    employee_share_targets: dict[str, float]
    enrolled: tuple[str, ...]
    contribution: tuple[str, ...]
    employee: tuple[str, ...]


@dataclass(frozen=True)
class MatchRule:
    rule: str
    label: str
    id_kinds: tuple[str, ...]
    candidates: str
    name: str  # agree | same
    confidence: float
    band: str = "auto"  # auto | review
    min_digits: int | None = None
    prefer_same_street: bool = False
    review_reason: str = "rule needs a person to confirm"


@dataclass(frozen=True)
class Matching:
    agree: float
    same: float
    rules: tuple[MatchRule, ...]
    understood: float | None = None  # None: agree
    # a rare character -> its spellings as parts
    name_parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # plausibility
    adult_only_sources: tuple[str, ...] = ()
    adult_age: int = 0
    corrected_birth_days: int = 0
    home_code_share: float = 0.0
    no_silent_listing: tuple[str, ...] = ()  # sources whose unaccepted rows flag a person


@dataclass(frozen=True)
class SurveyColumn:
    field: str
    header: str
    allowed: tuple[str, ...]
    type: str
    stored: bool


@dataclass(frozen=True)
class SurveyExclusion:
    field: str
    answers: tuple[str, ...]
    reason: str  # exclusion_reason
    label: str


@dataclass(frozen=True)
class Survey:
    """rules/survey.yaml: the hand-off's survey columns and what their answers do."""

    columns: tuple[SurveyColumn, ...]
    exclude: tuple[SurveyExclusion, ...]
    elsewhere_status: str  # status of a person insured in another city (self-reported)
    elsewhere_from: tuple[str, ...]  # … given to persons whose status from the extracts is one of these
    elsewhere_when: tuple[tuple[str, tuple[str, ...]], ...]  # (field, answers): any applies
    not_found_field: str
    not_found_answers: tuple[str, ...]
    not_found_visits: int
    not_found_reason: str

    @property
    def stored(self) -> tuple[SurveyColumn, ...]:
        return tuple(c for c in self.columns if c.stored)


@dataclass(frozen=True)
class TargetRule:
    priority: str
    reason: str
    when: dict


@dataclass(frozen=True)
class Targets:
    """rules/targets.yaml: this year's key targets (target_priority, target_reason)."""

    levels: dict[str, str]  # priority → label, in order (A first)
    rules: tuple[TargetRule, ...]


@dataclass(frozen=True)
class Track:
    """A statutory retirement-age track of the 2024 decision (rules/retirement.yaml)."""

    name: str
    label: str
    old_age: int
    first_cohort: tuple[int, int]  # (year, month) of the first births whose age is raised
    birth_months_per_month: int  # months of birth per month of delay
    cap_age: int

    def age_months(self, birth: date) -> int:
        """Statutory age in months for a person born on ``birth``."""
        idx = (birth.year - self.first_cohort[0]) * 12 + (birth.month - self.first_cohort[1])
        delay = (
            0 if idx < 0 else min(idx // self.birth_months_per_month + 1, (self.cap_age - self.old_age) * 12)
        )
        return self.old_age * 12 + delay


@dataclass(frozen=True)
class Retirement:
    tracks: dict[str, Track]
    track_by_sex: dict[str, str]
    minimum_years: float
    rise_from: date
    rise_months_per_year: int
    maximum_years: float
    elderly_age: int
    elderly_statuses: tuple[str, ...]
    elderly_measure: str
    past_pension_measure: str
    past_pension_keep_group_action: tuple[int, ...]
    short_note: str

    def minimum_months(self, on: date) -> int:
        """Minimum contribution period (months) that applies on a date."""
        base = round(self.minimum_years * 12)
        if on < self.rise_from:
            return base
        steps = (
            on.year
            - self.rise_from.year
            + (1 if (on.month, on.day) >= (self.rise_from.month, self.rise_from.day) else 0)
        )
        return min(round(self.maximum_years * 12), base + steps * self.rise_months_per_year)


@dataclass(frozen=True)
class Damage:
    """rules/files.yaml ``damage``: the guard against rows without a usable ID."""

    required_source_share: float
    file_share: float
    min_rows: int


@dataclass(frozen=True)
class PreviousGuard:
    """rules/files.yaml ``guards.previous``: against the previous run's manifest."""

    rows_fall: float
    rows_growth: float
    fill_drop: float


@dataclass(frozen=True)
class Guards:
    """rules/files.yaml ``guards`` (commands/guards.py; the installed default's when a bureau's
    file predates them)."""

    min_rows: int
    expected_fill: dict[str, dict[str, float]]  # source -> column -> share of rows filled
    fill_drop: float
    previous: PreviousGuard


@dataclass(frozen=True)
class FileRules:
    """rules/files.yaml (the installed default's when a bureau's folder predates it): how
    departments' files are read."""

    search_rows: int  # header.search_rows
    data_sheet_matches: int  # header.data_sheet_matches
    rows: dict[str, str]  # reason (total_row, footer_row) -> pattern
    cannot_read: dict[str, str]  # suffix -> the program it belongs to
    limits: dict[str, float]
    damage: Damage
    guards: Guards
    own_guards: bool  # False: the file predates the guards (the default's are in force)

    @cached_property
    def footer_re(self) -> re.Pattern:
        """Any total or footer row pattern (``rows``)."""
        return re.compile("|".join(f"(?:{p})" for p in self.rows.values()))


@dataclass(frozen=True)
class Tasks:
    """rules/tasks.yaml (read by ``kuomian progress``; the installed default's when a bureau's
    folder lacks it): the year's tasks per street and what the bulletin counts."""

    by_year: dict[str, dict[str, dict[str, int | None]]]  # year -> street code -> {enrolment, employee}
    enrolled_statuses: tuple[str, ...]
    employee_schemes: tuple[str, ...]
    resident_schemes: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    root: Path
    is_default: bool
    statuses: Statuses
    groups: Groups
    indicators: Indicators
    survey: Survey
    retirement: Retirement
    sources: dict[str, Source]
    files: dict[str, str]  # "rules/statuses.yaml" -> SHA-256
    matching: Matching
    vocabularies: dict[str, dict[str, tuple[str, ...]]]  # vocabulary -> canonical -> spellings
    streets: tuple[Street, ...]
    targets: Targets
    file_rules: FileRules
    tasks: Tasks
    common_fields: dict[str, Field]  # sources/_common.yaml: the fields every source may name

    @cached_property
    def street_names(self) -> dict[str, str]:
        """12-digit street code -> street name, in rules/streets.csv order."""
        return {s.code: s.name for s in self.streets}

    @cached_property
    def street_lookup(self) -> dict[str, str]:
        """Any accepted spelling of a street (name, short name, 9- or 12-digit code) -> 12-digit code."""
        out: dict[str, str] = {}
        for s in self.streets:
            out[s.code] = s.code
            out[s.code[:9]] = s.code
            out[normalise_header(s.name)] = s.code
            out[normalise_header(s.name.removesuffix("街道"))] = s.code
            out[normalise_header(s.name.removesuffix("街道") + "镇")] = s.code
        return out

    def vocabulary(self, name: str) -> dict[str, str]:
        """spelling (normalised) -> canonical value for one vocabulary."""
        return self._vocabulary_maps[name]

    @cached_property
    def _vocabulary_maps(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for name, vocab in self.vocabularies.items():
            m: dict[str, str] = {}
            for canonical, spellings in vocab.items():
                for s in [canonical, *spellings]:
                    m[normalise_header(str(s))] = canonical
            out[name] = m
        return out

    @property
    def enrolled_outside_registry(self) -> tuple[str, ...]:
        """Statuses counted as enrolled that are not registry statuses (a registry person who
        reaches one of them has enrolled)."""
        return tuple(s for s in self.indicators.enrolled if s not in self.statuses.registry)

    def differs_from_defaults(self) -> list[str]:
        """Files whose content is not the installed defaults' (or that the defaults lack)."""
        if self.is_default:
            return []
        defaults = fingerprint(defaults_home())
        names = sorted(set(self.files) | set(defaults))
        return [n for n in names if self.files.get(n) != defaults.get(n)]


def fingerprint(root: Path) -> dict[str, str]:
    """SHA-256 of every file of a policy folder (``sources/`` and ``rules/``)."""
    out = {}
    for folder in ("sources", "rules"):
        for p in sorted((root / folder).glob("*")):
            if p.is_file():
                out[f"{folder}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
