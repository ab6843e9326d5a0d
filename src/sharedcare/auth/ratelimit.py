"""Per-client rate limiting: one token bucket per key (a client id, or an address before authentication).

A bucket holds up to `burst` tokens and refills at `rate` per second; each request takes one. An empty bucket
answers 429 with Retry-After: the seconds until a token is back. Buckets idle long enough to be full again are
dropped, so memory stays bounded by the number of recently active clients.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, rate: float | None = None) -> float:
        """0 if the request may proceed, else the seconds to wait. `rate` overrides the default for this key."""
        per_second = self.rate if rate is None else rate
        if per_second <= 0:
            return 0.0
        now = self.clock()
        burst = max(self.burst, per_second)
        with self._lock:
            tokens, then = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - then) * per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / per_second
            if now - self._last_sweep > 60:
                self._sweep(now, burst / per_second)
        return wait

    def _sweep(self, now: float, full_after: float) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        self._last_sweep = now


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
