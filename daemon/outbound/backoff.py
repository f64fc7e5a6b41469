"""Exponential backoff with jitter, shared by the reconnecting adapters and the sender."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(attempt: int, base: float, cap: float, factor: float, jitter: float,
                  u: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based): exponential, capped, and
    shortened by up to `jitter` (0..1) of itself using the uniform draw u in [0, 1)."""
    ceiling = min(cap, base * factor ** min(attempt, 64))
    return ceiling * (1.0 - jitter * u)


@dataclass
class Backoff:
    """Exponential backoff with jitter for reconnects; `reset()` after a success."""

    base: float = 1.0
    cap: float = 300.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        delay = backoff_delay(self.attempt, self.base, self.cap, self.factor, self.jitter,
                              self.rng.random())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
