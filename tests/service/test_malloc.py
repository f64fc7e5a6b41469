"""service/malloc.py on this machine's glibc: one arena unless the admin chose, and trimming."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = ("from daemon.service.malloc import limit_arenas, release_free_memory; "
         "print(limit_arenas()); release_free_memory()")


def _run(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_the_daemon_limits_glibc_to_one_arena() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"


def test_an_admins_malloc_arena_max_is_left_alone() -> None:
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False"
