"""A user's first minutes, for real: the wheel built from this checkout, installed (not
editable) in a fresh virtual environment, run from an empty folder. Shared by
tests/package/test_wheel.py and bench/first_hour.py, which prints the times."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    build_seconds: float
    install_seconds: float

    @property
    def tierdesk(self) -> Path:
        return self.venv / "bin" / "tierdesk"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def clean_environment() -> dict[str, str]:
    """The user's shell: no PYTHONPATH (the tests' own, or the date-shifting sitecustomize)
    and nothing of ours that would point back into this checkout."""
    return {key: value for key, value in os.environ.items()
            if key != "PYTHONPATH" and not key.startswith("TIERDESK_")} | {"NO_COLOR": "1"}


def build_and_install(work: Path) -> Installed:
    """`pip wheel .` of the checkout, then `pip install` of that file into a new venv."""
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
         str(ROOT)], cwd=work)
    wheel = next((work / "dist").glob("tierdesk-*.whl"))
    built = time.monotonic()
    venv.create(work / "venv", with_pip=True)
    run([str(work / "venv" / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         str(wheel)], cwd=work)
    return Installed(work / "venv", wheel, built - started, time.monotonic() - built)


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run one step; a failure shows its output instead of a bare exit status."""
    done = subprocess.run(argv, cwd=cwd, env=clean_environment(), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done
