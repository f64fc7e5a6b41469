"""`run.py run` as a subprocess, its log lines collected as they come (JSON by default)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.processes import pythonpath

ROOT = Path(__file__).resolve().parents[2]
Entry = dict[str, Any]


class Daemon:
    def __init__(self, root: Path, cwd: Path, env: Mapping[str, str] | None = None,
                 log_format: str = "json") -> None:
        self.json = log_format == "json"
        base = env or os.environ
        # A PYTHONPATH the caller gives (tests/timeshift, to run this daemon's clock ahead)
        # comes after the checkout's, before this process's own.
        given = [Path(p) for p in base.get("PYTHONPATH", "").split(os.pathsep) if p]
        environ = {**base, "PYTHONPATH": pythonpath(ROOT, *given)}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "run", "--config", str(root),
             "--log-format", log_format],
            cwd=cwd, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.out: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.process.stderr, self.lines),
                                              (self.process.stdout, self.out))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def entries(self) -> list[Entry]:
        """Every log line parsed: a line that is not one JSON object fails the test."""
        with self._changed:
            lines = list(self.lines)
        return [json.loads(line) for line in lines]

    def messages(self) -> list[str]:
        return [e["msg"] for e in self.entries] if self.json else list(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0,
                 count: int = 1) -> list[str]:
        """Messages matching `predicate`, once there are `count` of them."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                lines = [json.loads(x)["msg"] if self.json else x for x in self.lines]
                found = [m for m in lines if predicate(m)]
                if len(found) >= count:
                    return found
                if self.process.poll() is not None and not self._alive_readers():
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.1))
        pytest.fail(f"no log line as expected within {timeout}s; log:\n" + "\n".join(lines))

    def _alive_readers(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def started(self) -> str:
        return self.wait_for(lambda m: "tierdesk started:" in m, 20)[0]

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def no_traceback(self) -> None:
        text = "\n".join(self.lines + self.out)
        assert "Traceback" not in text, text
