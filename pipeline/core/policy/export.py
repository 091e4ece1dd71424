"""Export of the installed defaults (:func:`export_defaults`) and what a policy folder changes
against them (:func:`differences`)."""

from __future__ import annotations

from pathlib import Path

from ..config import defaults_home
from ..i18n import _
from .model import Policy, PolicyError

DATA_FILE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".et", ".csv", ".txt", ".tsv", ".parquet", ".dbf")
POLICY_FILE_SUFFIXES = (".yaml", ".yml", ".md")


def _data_files(folder: Path, *, keep: tuple[str, ...] = (), except_names: tuple[str, ...] = ()) -> list[str]:
    """Names of the files in ``folder`` (not below) that are data (an extract) or, with ``keep``,
    anything whose suffix is not in ``keep``; empty when ``folder`` is not a folder."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name in except_names or p.name.startswith("."):
            continue
        suffix = p.suffix.lower()
        if (keep and suffix not in keep) or (not keep and suffix in DATA_FILE_SUFFIXES):
            found.append(p.name)
    return found


def export_defaults(folder: Path, *, force: bool = False) -> int:
    """Copy the installed default ``rules/`` and ``sources/`` into ``folder``; the number of files written."""
    import shutil

    folder = Path(folder)
    src = defaults_home()
    if folder.resolve() == src.resolve():
        raise PolicyError(
            _("{folder}: this is the installed defaults' folder. Choose another folder.").format(
                folder=folder
            )
        )
    extracts = _data_files(folder)
    if extracts:  # writing rules/ and sources/ among the extracts would mix policy into data
        raise PolicyError(
            _(
                "{folder}: it holds data files ({extracts}), so it is not a policy folder. Choose an empty or new folder for the policy."
            ).format(folder=folder, extracts=", ".join(extracts[:3]))
        )
    for d in ("rules", "sources"):
        foreign = _data_files(folder / d, keep=POLICY_FILE_SUFFIXES, except_names=("streets.csv",))
        if foreign:  # --force replaces a policy folder, never files that are not policy
            raise PolicyError(
                _(
                    "{folder}: it holds files that are not policy ({foreign}), so --force will not replace it. Choose another folder."
                ).format(folder=folder / d, foreign=", ".join(foreign[:3]))
            )
    there = [folder / d for d in ("rules", "sources") if (folder / d).exists()]
    if there and not force:
        raise PolicyError(
            _(
                "{there} already exists. Add --force to replace it with the defaults, or choose another folder."
            ).format(there=there[0])
        )
    n = 0
    for d in ("rules", "sources"):
        target = folder / d
        if target.is_symlink() or target.is_file():
            raise PolicyError(
                _("{target}: not a folder. Remove it or choose another folder.").format(target=target)
            )
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for p in sorted((src / d).glob("*")):
            if p.is_file():
                shutil.copyfile(p, target / p.name)
                n += 1
    return n


ID_KEYS = ("group", "status", "reason", "rule", "field", "source")


def _diff(a, b, path: str, out: list[str]) -> None:
    """Paths (``groups[group=8].action``) where two parsed YAML values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(dict.fromkeys([*a, *b])):
            p = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                out.append(p + (" (added)" if k not in a else " (removed)"))
            else:
                _diff(a[k], b[k], p, out)
        return
    if isinstance(a, list) and isinstance(b, list) and a and all(isinstance(x, dict) for x in a + b):
        key = next((k for k in ID_KEYS if all(k in x for x in a + b)), None)
        if key is not None:
            ia, ib = {x[key]: x for x in a}, {x[key]: x for x in b}
            if list(ia) != list(ib) and set(ia) == set(ib):
                out.append(f"{path} (order)")
            for k in list(dict.fromkeys([*ia, *ib])):
                p = f"{path}[{key}={k}]"
                if k not in ia or k not in ib:
                    out.append(p + (" (added)" if k not in ia else " (removed)"))
                else:
                    _diff(ia[k], ib[k], p, out)
            return
    if a != b:
        out.append(path or "(whole file)")


def differences(p: Policy, limit: int = 12) -> dict[str, list[str]]:
    """Per file that differs from the installed defaults, the keys that differ (YAML files; other
    files are named only)."""
    from ..config import _read_yaml

    out: dict[str, list[str]] = {}
    for rel in p.differs_from_defaults():
        mine, default = p.root / rel, defaults_home() / rel
        paths: list[str] = []
        if rel.endswith(".yaml") and mine.is_file() and default.is_file():
            _diff(_read_yaml(default), _read_yaml(mine), "", paths)
        elif not default.is_file():
            paths = ["(not in the defaults)"]
        elif not mine.is_file():
            paths = ["(missing: the defaults' file is not used)"]
        out[rel] = paths[:limit] + ([f"… {len(paths) - limit} more"] if len(paths) > limit else [])
    return out
