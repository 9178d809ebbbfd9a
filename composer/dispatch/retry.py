"""The one retry policy: how long to wait before attempt n + 1, and when to give up.

    policy = RetryPolicy((10, 60, 300))
    due = policy.next_attempt(attempts=1, now=time.time())   # None: give up

The dispatcher uses it for a recipient's temporary failures (4xx, 429) and for a relay it
cannot reach (then it waits, and stops as interrupted when the delays are spent).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...] = (10.0, 60.0, 300.0)  # seconds before retry 1, 2, 3...
    jitter: float = 0.2  # each delay is drawn from +-20 %, so retries do not come in waves
    uniform: Callable[[float, float], float] = field(
        default=random.uniform, repr=False, compare=False
    )

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay(self, attempts: int) -> float | None:
        """Seconds to wait after `attempts` failed attempts; None when they are spent."""
        if attempts < 1 or attempts > len(self.delays):
            return None
        base = self.delays[attempts - 1]
        return base * self.uniform(1 - self.jitter, 1 + self.jitter)

    def next_attempt(self, attempts: int, now: float) -> float | None:
        """When to try again after `attempts` failed attempts, or None: give up."""
        wait = self.delay(attempts)
        return None if wait is None else now + wait
