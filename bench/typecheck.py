"""``make lint``'s type check: mypy over the installed package ``kuomian``, errors shown at the
source files of this checkout.

The package's modules live in the card's top-level folders mapped into ``kuomian`` by
pyproject.toml (``[tool.setuptools.package-dir]``), a mapping mypy cannot follow (nor the
editable install's import hook). So this builds the package's layout from symbolic links in
``build/mypy-tree/`` (from that same mapping), runs ``mypy -p kuomian`` there with the
``[tool.mypy]`` settings of pyproject.toml, and prints mypy's lines with the paths of the real
files. Exit code: mypy's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TREE = REPO / "build" / "mypy-tree"


def build_tree() -> dict[str, str]:
    """The package as links under :data:`TREE`; (path prefix in the tree -> real folder), longest first."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    prefixes = {}
    for pkg, folder in sorted(mapping.items()):
        src = REPO / folder
        if not any(src.rglob("*.py")):
            continue  # package data only (rules/, sources/)
        dest = TREE / pkg.replace(".", "/")
        dest.mkdir(parents=True, exist_ok=True)
        for entry in sorted(src.iterdir()):
            if entry.name != "__pycache__" and not (dest / entry.name).exists():
                (dest / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        prefixes[pkg.replace(".", "/") + "/"] = folder.rstrip("/") + "/"
    return dict(sorted(prefixes.items(), key=lambda kv: -len(kv[0])))


def main() -> int:
    prefixes = build_tree()
    cmd = [
        sys.executable, "-m", "mypy", "-p", "kuomian",
        "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(REPO / ".mypy_cache"),
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=TREE, capture_output=True, text=True)
    for line in (res.stdout + res.stderr).splitlines():
        for tree_prefix, real in prefixes.items():
            if line.startswith(tree_prefix):
                line = real + line[len(tree_prefix) :]
                break
        print(line)
    return res.returncode


if __name__ == "__main__":
    sys.exit(main())
