"""A new user's first minutes, timed: build the wheel, install it in a fresh venv, run
`tierdesk demo` from an empty folder (issue 18).

    python bench/first_hour.py

Prints the build, install and demo times and the demo's summary line. The install needs
PyPI (or pip's cache) for the dependencies, as a user's would.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.package.fresh_install import build_and_install, run  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tierdesk-first-hour-") as folder:
        work = Path(folder)
        installed = build_and_install(work)
        print(f"wheel build: {installed.build_seconds:.1f} s ({installed.wheel.name}, "
              f"{installed.wheel.stat().st_size / 1024:.0f} KiB)")
        print(f"fresh venv + pip install of the wheel: {installed.install_seconds:.1f} s")
        empty = work / "empty"
        empty.mkdir()
        started = time.monotonic()
        done = run([str(installed.tierdesk), "demo"], cwd=empty, timeout=300)
        print(f"tierdesk demo from an empty folder: {time.monotonic() - started:.1f} s")
        print(f"its summary line: {done.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
