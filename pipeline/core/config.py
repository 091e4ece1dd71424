"""Declarations as data: ``sources/*.yaml`` and ``rules/*.yaml``.

The code only evaluates what these files say. The defaults are package data
(``kuomian/rules``, ``kuomian/sources`` in an installed wheel; the top-level
folders of a checkout). A bureau keeps its own policy in a folder holding
``rules/`` and ``sources/`` (written by ``kuomian rules export DIR``) and names it
with ``--rules DIR`` or the environment variable ``KUOMIAN_RULES``
(``KUOMIAN_HOME``, the older name, is still read). Every file is checked by
:mod:`.policy` before any data is read.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import yaml

from .errors import KuomianError
from .i18n import _

_ACTIVE: dict[str, Path | None] = {"folder": None}


@cache
def defaults_home() -> Path:
    """The folder holding the installed default ``rules/`` and ``sources/``.

    Installed from a wheel they are package data inside ``kuomian/``; in a checkout they
    are the top-level folders beside ``pipeline/`` (the package's source folder).
    """
    package = Path(__file__).resolve().parent.parent
    return package if (package / "rules").is_dir() else package.parent


def home() -> Path:
    """The policy folder in force: ``--rules`` (:func:`use_policy`), else ``KUOMIAN_RULES``,
    else ``KUOMIAN_HOME``, else the installed defaults."""
    if _ACTIVE["folder"] is not None:
        return _ACTIVE["folder"]
    env = os.environ.get("KUOMIAN_RULES") or os.environ.get("KUOMIAN_HOME")
    return Path(env) if env else defaults_home()


def use_policy(folder: Path | None) -> None:
    """Use this policy folder (``--rules DIR``) for the rest of the process; None: back to the default."""
    _ACTIVE["folder"] = Path(folder).resolve() if folder is not None else None
    clear_caches()


def normalise_header(h: str) -> str:
    """Header comparison form: NFKC (full-width → half-width), no spaces at all."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(h)))


def strip_unit(h: str) -> str:
    """``年收入(元)`` → ``年收入`` (only a trailing bracketed part)."""
    return re.sub(r"\([^()]*\)$", "", h)


@dataclass(frozen=True)
class Field:
    name: str
    aliases: tuple[str, ...]
    type: str = "text"  # id | name | text | date | street | int | number | category
    required: bool = False
    vocabulary: str | None = None


@dataclass(frozen=True)
class Source:
    name: str
    label: str
    required: bool
    role: str  # base | adds_people | match_only
    globs: tuple[str, ...]
    fields: dict[str, Field] = field(default_factory=dict)
    path: Path | None = None

    @property
    def required_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.required]

    def match_header(self, header: str) -> str | None:
        """The canonical field a header names, or None."""
        norm = normalise_header(header)
        for candidate in (norm, strip_unit(norm)):
            for f in self.fields.values():
                if candidate in self._alias_forms(f):
                    return f.name
        return None

    @staticmethod
    @cache
    def _alias_forms_cached(aliases: tuple[str, ...]) -> frozenset[str]:
        return frozenset(normalise_header(a) for a in aliases)

    def _alias_forms(self, f: Field) -> frozenset[str]:
        return self._alias_forms_cached(f.aliases)


def _read_yaml(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            # libyaml's loader where PyYAML was built with it: the same documents, 5x faster
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as e:
        raise KuomianError(
            _("{path}: cannot read this declaration ({e}). Fix the YAML and run again.").format(
                path=path, e=e
            )
        ) from None


def load_sources(root: Path | None = None) -> dict[str, Source]:
    """Every ``sources/<name>.yaml``, in a stable order (household first)."""
    return _load_sources(Path(root or home()))


@lru_cache(maxsize=8)
def _load_sources(root: Path) -> dict[str, Source]:
    folder = root / "sources"
    common = _read_yaml(folder / "_common.yaml")
    out: dict[str, Source] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        d = _read_yaml(path)
        fields: dict[str, Field] = {}
        for name in d.get("common", []):
            fields[name] = _field(name, common[name])
        for name, spec in (d.get("fields") or {}).items():
            fields[name] = _field(name, spec)
        out[d["source"]] = Source(
            name=d["source"],
            label=d.get("label", d["source"]),
            required=bool(d.get("required", False)),
            role=d.get("role", "match_only"),
            globs=tuple(d.get("globs", [])),
            fields=fields,
            path=path,
        )
    order = ["household", "enrollment"]
    return dict(sorted(out.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0])))


def common_fields(root: Path | None = None) -> dict[str, Field]:
    """``sources/_common.yaml``: the fields every source may name (``common:``), by name."""
    common = _read_yaml(Path(root or home()) / "sources" / "_common.yaml")
    return {name: _field(name, spec) for name, spec in common.items()}


def _field(name: str, spec: dict) -> Field:
    return Field(
        name=name,
        aliases=tuple(spec.get("aliases", [])),
        type=spec.get("type", "text"),
        required=bool(spec.get("required", False)),
        vocabulary=spec.get("vocabulary"),
    )


def load_rules(name: str, root: Path | None = None):
    """One ``rules/<name>.yaml`` as plain data."""
    return _load_rules(name, Path(root or home()))


@lru_cache(maxsize=32)
def _load_rules(name: str, root: Path):
    return _read_yaml(root / "rules" / f"{name}.yaml")


def vocabulary(name: str) -> dict[str, str]:
    """spelling (normalised) → canonical value for one vocabulary."""
    vocab = load_rules("vocabularies")[name]
    out: dict[str, str] = {}
    for canonical, spellings in vocab.items():
        for s in [canonical, *spellings]:
            out[normalise_header(str(s))] = canonical
    return out


@dataclass(frozen=True)
class Street:
    code: str
    name: str


def streets(root: Path | None = None) -> list[Street]:
    return _streets(Path(root or home()))


@lru_cache(maxsize=8)
def _streets(root: Path) -> list[Street]:
    with open(root / "rules" / "streets.csv", encoding="utf-8-sig") as fh:
        return [Street(r["street_code"], r["street_name"]) for r in csv.DictReader(fh)]


def street_lookup() -> dict[str, str]:
    """Any accepted spelling of a street (name, short name, 9- or 12-digit code) → 12-digit code."""
    out: dict[str, str] = {}
    for s in streets():
        out[s.code] = s.code
        out[s.code[:9]] = s.code
        out[normalise_header(s.name)] = s.code
        out[normalise_header(s.name.removesuffix("街道"))] = s.code
        out[normalise_header(s.name.removesuffix("街道") + "镇")] = s.code
    return out


def street_names() -> dict[str, str]:
    return {s.code: s.name for s in streets()}


_ON_CLEAR: list = []  # what else forgets (the checked Policy: core/policy/load.py)


def on_clear_caches(fn) -> None:
    """Call ``fn()`` whenever the declarations read are forgotten (:func:`clear_caches`)."""
    _ON_CLEAR.append(fn)


def clear_caches() -> None:
    """Forget every declaration read (after the policy folder in force changed), and the
    checked policy made of them."""
    for fn in _ON_CLEAR:
        fn()
    _load_rules.cache_clear()
    _load_sources.cache_clear()
    _streets.cache_clear()


# The readers were lru_caches once: ``load_rules.cache_clear()`` still forgets what was read.
load_rules.cache_clear = clear_caches  # type: ignore[attr-defined]
load_sources.cache_clear = clear_caches  # type: ignore[attr-defined]
streets.cache_clear = clear_caches  # type: ignore[attr-defined]
