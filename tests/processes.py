"""What a Python process that a test starts needs from the test's own environment."""

from __future__ import annotations

import os
from pathlib import Path


def pythonpath(*first: Path) -> str:
    """PYTHONPATH for a child: these folders first, then this process's own, which the
    date-shifted runs (tests/timeshift) need the child to keep; made absolute, since the
    child may run in another folder."""
    inherited = [os.path.abspath(entry) for entry in
                 os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return os.pathsep.join([*(str(path) for path in first), *inherited])
