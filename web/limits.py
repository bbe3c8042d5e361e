"""Rate limits in the process: a token bucket per (what, who), e.g. logins per address, ingests per station.

A bucket holds ``capacity`` tokens and gains ``rate`` per second; a request takes one
or is refused with the seconds to wait. Buckets are kept per app (one process of
``twin serve``); several processes each keep their own.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by (name, key).

    Parameters
    ----------
    limits:
        name -> (capacity, tokens gained per second).
    """

    MAX_KEYS = 100_000  # forget idle buckets past this many (a flood of addresses must not grow memory)

    def __init__(self, limits: dict[str, tuple[float, float]]):
        self.limits = dict(limits)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, name: str, key: str, now: float | None = None) -> float:
        """Take one token; 0 if allowed, else the seconds until one is there (nothing taken)."""
        capacity, rate = self.limits[name]
        t = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) > self.MAX_KEYS:
                self._buckets.clear()
            b = self._buckets.get((name, key))
            if b is None:
                b = self._buckets[(name, key)] = _Bucket(float(capacity), t)
            b.tokens = min(float(capacity), b.tokens + (t - b.stamp) * rate)
            b.stamp = t
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return math.inf if rate <= 0 else (1.0 - b.tokens) / rate
