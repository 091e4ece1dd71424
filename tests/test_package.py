"""The package as a whole: it installs from a wheel and runs; it imports on a platform without
POSIX-only modules; its modules import each other without a cycle.

The module list comes from pyproject.toml's ``[tool.setuptools.package-dir]`` (the card's
top-level folders mapped into ``kuomian``), so a new module is covered without touching this file.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
# What the wheel is built from (bench/ and tests/ are not installed).
BUILD_FILES = ["pyproject.toml", "README.md", "pipeline", "schemas", "rules", "sources"]


def package_modules() -> dict[str, Path]:
    """Every module of the package: dotted name (``kuomian.stages.link``) -> source file."""
    out: dict[str, Path] = {}
    for pkg, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([pkg, *parts])
            # a sub-folder mapped elsewhere (kuomian.schemas) is listed under its own mapping
            out.setdefault(name, path)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (at the top or inside functions)."""
    modules = package_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # ``from pkg import name``: the module pkg.name when there is one, else pkg itself
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in modules else src for a in node.names]
            for t in targets:
                if t in modules and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (c := visit(n)):
                return c
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_module_list_covers_the_package():
    modules = package_modules()
    # the five stages, the commands, the CLI and the schemas: the graph below is over all of them
    for name in ("kuomian.cli", "kuomian.stages.link", "kuomian.commands.run", "kuomian.schemas.persons"):
        assert name in modules, name
    assert all(m == "kuomian" or m.startswith("kuomian.") for m in modules)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_between_the_package_modules():
    graph = import_graph()
    # the graph is real: the refresh imports every stage
    assert {"kuomian.stages.load", "kuomian.stages.link", "kuomian.stages.publish"} <= graph[
        "kuomian.commands.run"
    ]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_imports_without_posix_only_modules():
    """Bureau desktops run Windows: nothing POSIX-only (fcntl, pwd, grp) on the import path."""
    code = (
        "import importlib, json, sys\n"
        "for name in ('fcntl', 'pwd', 'grp'):\n"
        "    sys.modules[name] = None  # import fails as on Windows\n"
        "failed = {}\n"
        f"for m in {sorted(package_modules())!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ImportError as e:\n"
        "        failed[m] = str(e)\n"
        "print(json.dumps(failed))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    failed = json.loads(res.stdout.strip().splitlines()[-1])
    assert failed == {}, failed


@pytest.mark.packaging
def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path):
    """``pip install`` of the built wheel (not editable) into a clean venv, then ``kuomian demo`` from a
    folder outside the checkout. The dependencies come from this environment (a path file), so
    nothing but the build backend is fetched."""
    src = tmp_path / "src"
    src.mkdir()
    files = subprocess.run(
        ["git", "ls-files", "-z", *BUILD_FILES], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for rel in filter(None, files):
        target = src / rel.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / rel.decode()).read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    res = subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheels"), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (wheel,) = (tmp_path / "wheels").glob("kuomian-*.whl")

    # One import package, kuomian, carrying the default policy; nothing else at the top.
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names}
    dist_info = next(t for t in tops if t.endswith(".dist-info"))
    assert tops == {"kuomian", dist_info}, tops
    with zipfile.ZipFile(wheel) as z:
        assert z.read(f"{dist_info}/top_level.txt").decode().split() == ["kuomian"]
    for data in (
        "kuomian/rules/statuses.yaml",
        "kuomian/rules/matching.yaml",
        "kuomian/sources/_common.yaml",
    ):
        assert data in names, data
    assert not any(n.startswith(("kuomian/bench", "bench/", "tests/")) for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # the dependencies: this environment's site-packages, after the venv's own
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_kuomian_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n", encoding="utf-8")
    res = subprocess.run(
        [*pip, "--python", str(py), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = subprocess.run([*pip, "--python", str(py), "check"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    installed = {p.name for p in site.iterdir()} - {"_kuomian_test_deps.pth", "__pycache__"}
    assert installed == {"kuomian", dist_info}, installed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUOMIAN_", "PYTHON"))}
    env["KUOMIAN_STATE"] = str(tmp_path / "state")
    where = subprocess.run(
        [py, "-c", "import kuomian; print(kuomian.__file__)"], cwd=elsewhere, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), where
    kuomian = venv / ("Scripts/kuomian.exe" if os.name == "nt" else "bin/kuomian")
    res = subprocess.run(
        [kuomian, "demo", "--people", "2000", "--out", "demo"], cwd=elsewhere, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    out = elsewhere / "demo" / "registry"
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["registry"] > 0
    assert (out / "persons.parquet").stat().st_size > 0
    assert (out / "report.html").read_text("utf-8").rstrip().endswith("</html>")


# Imports run one way: cli → commands → stages → report → readers → core (synth → core; the
# pandera schemas beside the stages; cli/ is kuomian.cli). A module may import its own layer or a lower one, at the top
# or inside a function. A new sub-package must be placed here before it can be imported.
LAYERS = {
    "cli": 6, "commands": 5, "stages": 4, "schemas": 4, "report": 3, "readers": 2, "synth": 1, "core": 0,
}  # fmt: skip


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"  # kuomian/__init__ holds only __version__


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, targets in sorted(graph.items()):
        for t in sorted(targets):
            a, b = layer_of(mod), layer_of(t)
            assert a in LAYERS and b in LAYERS, f"place the sub-package of {mod} / {t} in LAYERS"
            if LAYERS[b] > LAYERS[a]:
                out.append(f"{mod} -> {t}")
    return out


def test_the_layer_check_finds_an_upward_import():
    graph = {
        "kuomian.core.reconcile": {"kuomian.stages.link"},
        "kuomian.stages.link": {"kuomian.core.decisions"},
        "kuomian.synth.world": {"kuomian.report.html"},
    }
    assert upward_imports(graph) == [
        "kuomian.core.reconcile -> kuomian.stages.link",
        "kuomian.synth.world -> kuomian.report.html",
    ]


def test_imports_run_one_way_through_the_layers():
    graph = import_graph()
    # function-level imports count: cli imports the commands inside its functions
    assert any("kuomian.commands.run" in t for m, t in graph.items() if m.startswith("kuomian.cli."))
    assert upward_imports(graph) == []


# The raw policy readers of core/config.py: outside core/ every module reads the typed, checked
# Policy (kuomian.core.policy.policy()) instead, so a policy key has one way in.
RAW_POLICY_READERS = {
    "load_rules", "load_sources", "streets", "street_names", "street_lookup", "vocabulary",
    "common_fields", "_read_yaml", "file_rules",
}  # fmt: skip


def raw_policy_reads() -> list[str]:
    """``module: name`` for every raw policy reader imported or named (``config.load_rules``)
    outside core/, at the top or inside functions."""
    out = []
    for mod, path in package_modules().items():
        if mod.startswith("kuomian.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] in (
                "config",
                "readers",
                "base",
            ):
                out += [f"{mod}: {a.name}" for a in node.names if a.name in RAW_POLICY_READERS]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "config"
            ) and node.attr in RAW_POLICY_READERS:
                out.append(f"{mod}: config.{node.attr}")
    return sorted(out)


def test_only_core_reads_the_policy_files_raw():
    assert raw_policy_reads() == []
    from kuomian import readers

    assert not hasattr(readers, "file_rules")  # rules/files.yaml is policy().file_rules


@pytest.mark.packaging
def test_the_wheelhouse_installs_with_the_index_switched_off(tmp_path):
    """``make wheelhouse`` for this machine's platform and Python only (the full one fetches three
    platforms' wheels: too much for CI), then its install script into a fresh place with pip's
    index switched off (PIP_NO_INDEX=1), and ``kuomian demo`` with what it installed."""
    from bench.wheelhouse import main as wheelhouse

    house = wheelhouse(["--here", "--out", str(tmp_path / "wheelhouse")])
    names = {p.name for p in house.iterdir()}
    assert {"install.sh", "install.bat"} <= names
    assert any(n.startswith("kuomian-") and n.endswith(".whl") for n in names)
    assert all(n.endswith(".whl") for n in names - {"install.sh", "install.bat"}), names
    bat = (house / "install.bat").read_bytes()
    assert b"\r\n" in bat and b"--no-index" in bat
    bat.decode("gbk")  # cmd.exe on a Chinese Windows reads it in code page 936

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUOMIAN_", "PYTHON", "PIP_"))}
    env |= {
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "KUOMIAN_STATE": str(tmp_path / "state"),
    }
    target = tmp_path / "installed"
    if os.name == "nt":
        cmd = ["cmd", "/c", str(house / "install.bat"), str(target)]
    else:
        cmd = ["sh", str(house / "install.sh"), str(target)]
        env["PYTHON"] = sys.executable  # this Python (the wheelhouse is for its version)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    kuomian = target / ("Scripts/kuomian.exe" if os.name == "nt" else "bin/kuomian")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run(
        [kuomian, "demo", "--people", "500", "--out", "demo"], cwd=elsewhere, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((elsewhere / "demo" / "registry" / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["registry"] > 0


def test_every_package_of_the_source_is_in_the_wheel_list():
    """pyproject.toml lists the packages by name (pipeline/ is installed as kuomian): a folder of
    modules missing from the list is missing from the wheel (cli/ and stages/link/ were, once)."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"]
    )
    found = {
        "kuomian" + "".join("." + p for p in d.relative_to(root / "pipeline").parts)
        for d in [root / "pipeline", *(root / "pipeline").rglob("*")]
        if d.is_dir() and (d / "__init__.py").exists()
    }
    assert found - listed == set()
