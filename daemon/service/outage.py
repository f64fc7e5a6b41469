"""One server's availability as the daemon sees it: one log line when an outage starts
(with the reason), one when it ends, and the backoff to wait between tries meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from daemon.outbound.backoff import Backoff

log = logging.getLogger("tierdesk.service")


class Outage:
    """Shared by the loops that use one server (the database is used by all three)."""

    def __init__(self, name: str, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._clock = clock
        self._since: float | None = None
        self._lock = threading.Lock()  # the ingest and clock threads and the event loop
        self.reason: str | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, reason: str, loop: str, exc_info: BaseException | None = None) -> float:
        """Note a failure; returns the seconds to wait before the next try. `exc_info` is for
        failures nobody expected (a bug): their first line carries the traceback."""
        with self._lock:
            if self._since is None:
                self._since = self._clock()
                log.warning("%s unavailable: %s; retrying with backoff", self.name, reason,
                            exc_info=exc_info,
                            extra={"loop": loop, "server": self.name, "reason": reason})
            self.reason = reason
            return self.backoff.next_delay()

    def ok(self, loop: str) -> None:
        """Note a success; ends the outage, if any, with one line."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            seconds = self._clock() - self._since
            self._since, self.reason = None, None
            self.backoff.reset()
        log.info("%s available again after %.1f s", self.name, seconds,
                 extra={"loop": loop, "server": self.name, "outage_s": round(seconds, 1)})
