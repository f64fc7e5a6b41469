"""daemon/service/gc_tuning.py, in a process of its own (it changes the collector process-wide)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from daemon.service.gc_tuning import OLDER, YOUNG, settle_after_startup, thaw
settle_after_startup()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert gc.get_threshold() == (YOUNG, OLDER, OLDER)
class Cycle:
    pass
def garbage():
    a = Cycle(); a.me = a
garbage()
assert gc.collect() > 0  # new cycles are still found
thaw()
assert gc.get_freeze_count() == 0
print("ok")
"""


def test_startup_objects_frozen_new_garbage_still_collected_and_thawed() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
