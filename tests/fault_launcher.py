"""Test-only launcher: the real ``kuomian`` CLI with a fault hooked into the end of one stage.

    python -m tests.fault_launcher fail STAGE -- ARGS…
        raise a simulated "disk full" (OSError 28) when STAGE has finished;
    python -m tests.fault_launcher pause STAGE MARKER [GO] -- ARGS…
        when STAGE has finished, write MARKER and wait (up to 600 s) until the file GO exists,
        so that a test can kill or interrupt the process at a known point, or let it go on;
    python -m tests.fault_launcher swap MOMENT MARKER [GO] -- ARGS…
        the same pause inside publishing's swap (MOMENT: ``swap`` before the first rename,
        ``between_renames``, ``after_renames`` before the old copy is removed), through
        ``kuomian.core.fileio.SWAP_HOOKS``.

The hook goes in through :func:`kuomian.commands.run.install_hook`; nothing in the package
reads the environment for this.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kuomian.commands.run import StageHook, install_hook


class FailAfter(StageHook):
    def __init__(self, stage: str):
        self.stage = stage

    def after(self, stage, run):
        if stage == self.stage:
            raise OSError(28, f"No space left on device (simulated in stage {stage})")


class PauseAfter(StageHook):
    def __init__(self, stage: str, marker: Path, go: Path | None):
        self.stage, self.marker, self.go = stage, marker, go

    def after(self, stage, run):
        if stage != self.stage:
            return
        self.marker.write_text(stage, encoding="utf-8")
        end = time.monotonic() + 600
        while time.monotonic() < end and not (self.go and self.go.exists()):
            time.sleep(0.05)


def main(argv: list[str]) -> None:
    sep = argv.index("--")
    what, stage, *rest = argv[:sep]
    if what == "fail":
        install_hook(FailAfter(stage))
    elif what == "swap":
        from kuomian.core import fileio

        pause = PauseAfter(stage, Path(rest[0]), Path(rest[1]) if len(rest) > 1 else None)
        fileio.SWAP_HOOKS.append(lambda moment: pause.after(moment, None))
    elif what == "pause":
        install_hook(PauseAfter(stage, Path(rest[0]), Path(rest[1]) if len(rest) > 1 else None))
    else:
        raise SystemExit(f"unknown fault {what!r}: fail or pause")
    from kuomian.cli import main as cli_main

    sys.argv = ["kuomian", *argv[sep + 1 :]]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
