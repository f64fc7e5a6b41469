"""Who holds a claim, and whether that process is gone, so its claims need not wait out their
lease. A sender killed between claiming mail and recording it must not hold that mail back
for the whole lease (15 minutes) once the daemon is running again.

A claim names its process as host:pid:namespace, the namespace being the kernel's boot id and
the inode of the process's PID namespace. Only a process of the same boot of the same kernel,
in the same PID namespace, can tell whether that PID still exists (a host name alone can be
shared by two machines, and every kernel numbers its first PID namespace alike); for any
other claimer nothing is known and the lease decides, also after a reboot. A reused PID
looks alive: again the lease decides. Both mistakes are on the safe side (later, never twice).
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


@cache
def _namespace() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}.{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux: no claim can be checked
        return ""


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_namespace()}"


def is_gone(claimer: str | None) -> bool:
    """True only when `claimer` is provably a process that no longer exists."""
    parts = (claimer or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0 or not _namespace():
        return False
    host, pid, namespace = parts
    if host != socket.gethostname() or namespace != _namespace() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False
