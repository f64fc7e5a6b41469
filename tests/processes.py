"""What a Python process that a test starts needs from the test's own environment."""

from __future__ import annotations

import os
from pathlib import Path


def pythonpath(*first: Path) -> str:
    """PYTHONPATH for a child: these folders first, then this process's own, which the
    date-shifted runs (tests/timeshift) need the child to keep."""
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([*(str(path) for path in first), *([inherited] if inherited else [])])
