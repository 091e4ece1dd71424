"""``make wheelhouse``: everything an intranet machine needs to install kuomian without the internet.

Writes ``dist/wheelhouse/`` (``--out``): the project's wheel, every dependency's wheel for
Windows x86-64 (``win_amd64``), Linux x86-64 and Linux aarch64 (manylinux up to glibc 2.28:
Kylin V10 and UOS on 鲲鹏/飞腾 machines have 2.28) for one CPython version (3.12 unless
``--python``), and ``install.bat`` / ``install.sh``, which make a virtualenv and install from the
folder with ``pip install --no-index --find-links``. Copy the folder to a USB stick; on the
target machine run the script of its platform. The wheels are fetched with
``pip download --only-binary=:all: --platform … --python-version … --implementation cp``, so a
dependency without a wheel for a platform stops it with pip's message.

``--here`` fetches for this machine's platform and Python only (the packaging test: it installs
from that wheelhouse with the index switched off and runs the demo).

Usage::

    python -m bench.wheelhouse [--out dist/wheelhouse] [--python 3.12] [--here]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_FILES = ["pyproject.toml", "README.md", "pipeline", "schemas", "rules", "sources"]
GLIBC_MINORS = range(17, 29)  # manylinux_2_17 … manylinux_2_28
# The environment markers of each platform: pip evaluates a dependency's markers
# (``colorama; platform_system == "Windows"``) for the machine it runs on, not for --platform.
MARKERS = {
    "win_amd64": {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
    },
    "linux_x86_64": {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    },
    "linux_aarch64": {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "aarch64",
    },
}
PLATFORMS = {
    "win_amd64": ["win_amd64"],
    "linux_x86_64": ["manylinux2014_x86_64"] + [f"manylinux_2_{m}_x86_64" for m in GLIBC_MINORS],
    "linux_aarch64": ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in GLIBC_MINORS],
}

INSTALL_SH = """#!/bin/sh
# 离线安装 kuomian（Linux，x86-64 或 aarch64）：在本文件夹运行  sh install.sh [安装目录]
# 需要 Python {py}（python{py}）；默认装到 ~/kuomian-venv，装好后运行 ~/kuomian-venv/bin/kuomian --help
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
TARGET=${{1:-$HOME/kuomian-venv}}
PY=${{PYTHON:-python{py}}}
command -v "$PY" >/dev/null 2>&1 || {{ echo "找不到 $PY：请先安装 Python {py}（或用 PYTHON=/path/to/python{py} sh install.sh）。"; exit 1; }}
"$PY" -m venv "$TARGET"
"$TARGET/bin/python" -m pip install --no-index --find-links "$HERE" "kuomian=={version}"
echo "安装完成：$TARGET/bin/kuomian"
"""

INSTALL_BAT = """@echo off
rem 离线安装 kuomian（Windows 64 位）：双击运行，或在命令行运行  install.bat [安装目录]
rem 需要 Python {py}（python.org 的安装包，带 py 启动器）；默认装到 %USERPROFILE%\\kuomian-venv
setlocal
set "HERE=%~dp0"
set "TARGET=%~1"
if "%TARGET%"=="" set "TARGET=%USERPROFILE%\\kuomian-venv"
py -{py} -m venv "%TARGET%"
if errorlevel 1 (
  echo 找不到 Python {py}：请先安装 Python {py}（64 位），安装时勾选 py launcher。
  pause
  exit /b 1
)
"%TARGET%\\Scripts\\python.exe" -m pip install --no-index --find-links "%HERE%." "kuomian=={version}"
if errorlevel 1 (
  pause
  exit /b 1
)
echo 安装完成：%TARGET%\\Scripts\\kuomian.exe
pause
"""


def run(cmd: list[str]) -> None:
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def build_wheel(out: Path) -> Path:
    """The project's wheel, built from the files git tracks (a clean copy, not the work tree)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", *BUILD_FILES], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for rel in filter(None, files):
            target = src / rel.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((REPO / rel.decode()).read_bytes())
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)])
    (wheel,) = out.glob("kuomian-*.whl")
    return wheel


def download(out: Path, wheel: Path | str, python: str | None, platforms: list[str] | None) -> None:
    """A wheel or requirement and its dependencies into ``out``: for ``platforms`` and ``python``,
    or for this machine."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(out)]
    if platforms is not None and python is not None:
        abi = "cp" + python.replace(".", "")
        for p in platforms:
            cmd += ["--platform", p]
        cmd += ["--python-version", python, "--implementation", "cp"]
        cmd += ["--abi", abi, "--abi", "abi3", "--abi", "none"]
    run([*cmd, str(wheel)])


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_for(out: Path, markers: dict[str, str], python: str) -> list[str]:
    """Requirements of the wheels in ``out`` that hold on the target (its markers) but have no
    wheel there: the dependencies pip skipped because their markers are false on this machine."""
    from packaging.requirements import Requirement

    env = {
        "python_version": python,
        "python_full_version": python + ".0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
        **markers,
    }
    have = {_norm(p.name.split("-")[0]) for p in out.glob("*.whl")}
    wanted: set[str] = set()
    for wheel in out.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            text = z.read(meta).decode("utf-8", "replace")
        for line in text.splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is not None and req.marker.evaluate(env) and _norm(req.name) not in have:
                wanted.add(str(Requirement(f"{req.name}{req.specifier}")))
    return sorted(wanted)


def scripts(out: Path, python: str, version: str) -> None:
    sh = out / "install.sh"
    sh.write_text(INSTALL_SH.format(py=python, version=version), encoding="utf-8", newline="\n")
    sh.chmod(0o755)
    # cmd.exe reads a .bat in the console's code page: GBK (936) on a Chinese Windows; CRLF lines
    bat = INSTALL_BAT.format(py=python, version=version).replace("\n", "\r\n")
    (out / "install.bat").write_bytes(bat.encode("gbk"))


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "dist" / "wheelhouse")
    ap.add_argument("--python", default="3.12", help="the CPython version of the target machines")
    ap.add_argument("--here", action="store_true", help="this machine's platform and Python only")
    args = ap.parse_args(argv)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wheel = build_wheel(out)
    version = wheel.name.split("-")[1]
    python = args.python
    if args.here:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        download(out, wheel, None, None)
    else:
        for name, platforms in PLATFORMS.items():
            print(f"== {name}, CPython {python}", flush=True)
            download(out, wheel, python, platforms)
            tried: set[str] = set()
            while extra := missing_for(out, MARKERS[name], python):
                if set(extra) <= tried:
                    raise SystemExit(f"{name}: no wheel found for {', '.join(extra)}")
                tried |= set(extra)
                for req in extra:
                    download(out, req, python, platforms)
    scripts(out, python, version)
    wheels = sorted(out.glob("*.whl"))
    size = sum(p.stat().st_size for p in wheels)
    print(f"{out}: {len(wheels)} wheels, {size / 1e6:.0f} MB, install.sh, install.bat")
    return out


if __name__ == "__main__":
    main()
