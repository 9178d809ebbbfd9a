"""A token bucket: at most `rate` messages per second on average, bursts up to `burst`.

Unlike sleeping a fixed time after every N messages (which lets the real rate fall well
below the setting whenever sending itself takes time), the bucket refills continuously,
so time spent sending counts towards the wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.clock, self.sleep = clock, sleep
        self.tokens = self.burst
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def acquire(self, n: float = 1.0) -> float:
        """Take `n` tokens, waiting as needed; returns the seconds waited. `n` may exceed
        the burst: the wait is then what that many messages cost at the rate."""
        waited = 0.0
        need = min(n, self.burst)
        self._refill()
        # The tolerance stops float rounding from turning the last wait into a spin.
        while self.tokens < need - 1e-9:
            pause = (need - self.tokens) / self.rate
            self.sleep(pause)
            waited += pause
            self._refill()
        self.tokens -= n  # may go negative for n > burst: the debt is paid by the next wait
        return waited
