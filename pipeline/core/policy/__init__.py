"""The policy in force, as typed objects checked once before any data is read.

:func:`load_policy` reads every file of a policy folder (``rules/*.yaml``,
``rules/streets.csv``, ``sources/*.yaml``; the defaults or the bureau's own
folder given by ``--rules`` / ``KUOMIAN_RULES``, see :mod:`.config`) and checks
it: an unknown key, a value of the wrong type, or a reference to a source,
field, status, group, vocabulary value or track that does not exist stops the
command with one line naming the file, the key and what is allowed (exit 1),
before a single extract is opened.

Every module outside ``core/`` reads the policy through :func:`policy` (the
:class:`Policy` in force, checked once and kept for the run): the raw readers of
:mod:`.config` (``load_rules``, ``load_sources``, …) are core's own
(``tests/test_package.py`` checks it).

The package: :mod:`.model` (the frozen objects and the rule language's names), :mod:`.checks`
(the checker and ``sources/*.yaml``), :mod:`.load` (one function per ``rules/`` file, in order),
:mod:`.export` (the defaults written out, what a folder changes). Every name is re-exported here.
"""

from __future__ import annotations

from .checks import NUMBER_LIMIT, STREET_NAME_MAX
from .export import DATA_FILE_SUFFIXES, ID_KEYS, POLICY_FILE_SUFFIXES, differences, export_defaults
from .load import FILE_COUNT_LIMITS, FILE_LIMITS, clear_cache, load_policy, policy
from .model import (
    CANDIDATES,
    CONDITION_KEYS,
    ENTITY_FIELDS,
    FIELD_TYPES,
    ID_KINDS,
    IDENT,
    NAME_EVIDENCE,
    NEEDED_SOURCES,
    PENSION_CONDITIONS,
    PERSON_FIELDS,
    PREDICATE_OPS,
    ROLES,
    RULE_FILES,
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

__all__ = [
    "CANDIDATES",
    "CONDITION_KEYS",
    "DATA_FILE_SUFFIXES",
    "Damage",
    "FileRules",
    "Guards",
    "PreviousGuard",
    "Tasks",
    "ENTITY_FIELDS",
    "ExclusionReason",
    "FIELD_TYPES",
    "FILE_COUNT_LIMITS",
    "FILE_LIMITS",
    "Group",
    "Groups",
    "IDENT",
    "ID_KEYS",
    "ID_KINDS",
    "Indicators",
    "MatchRule",
    "Matching",
    "NAME_EVIDENCE",
    "NEEDED_SOURCES",
    "NUMBER_LIMIT",
    "PENSION_CONDITIONS",
    "PERSON_FIELDS",
    "POLICY_FILE_SUFFIXES",
    "PREDICATE_OPS",
    "Policy",
    "PolicyError",
    "ROLES",
    "RULE_FILES",
    "Retirement",
    "STREET_NAME_MAX",
    "SURVEY_FIELDS",
    "StatusRule",
    "Statuses",
    "Survey",
    "SurveyColumn",
    "SurveyExclusion",
    "SurveyStatus",
    "TARGET_KEYS",
    "TargetRule",
    "Targets",
    "Track",
    "clear_cache",
    "differences",
    "export_defaults",
    "fingerprint",
    "load_policy",
    "policy",
]
