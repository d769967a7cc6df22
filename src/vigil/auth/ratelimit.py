"""Per-key request rate limiting for the HTTP API (a token bucket per API token).

Each key has a bucket that refills at `per_minute / 60` requests a second and holds at most
the *burst*: `per_minute / 6` rounded up, at least 1, i.e. ten seconds' worth of requests. A
client idle for ten seconds may send that many at once; a steady client gets exactly its
rate. The limiter is in memory, per process: with N API workers a token may make up to N
times its limit in the worst case, which is the price of not asking the database per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9  # float refill error tolerated, so a request exactly on time is allowed


def burst_for(per_minute: int) -> int:
    """Requests a full bucket allows at once: ten seconds' worth, rounded up, at least 1."""
    return max(1, math.ceil(per_minute / 6))


@dataclass
class _Bucket:
    tokens: float
    updated: float
    full_at: float
    """When the bucket is full again if unused; from then it is the same as a new one."""


class RateLimiter:
    """Token buckets keyed by a string (an API token's id or name), thread-safe.

    Memory stays bounded: a bucket that has refilled is forgotten (a new one would be
    identical), and beyond `max_keys` live buckets the least recently used is dropped (that
    key starts again with a full bucket).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, per_minute: int) -> float | None:
        """Count one request of `key`: None when allowed, else the seconds until the next
        request would be (a `Retry-After`); a refused request uses nothing up."""
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError(f"per_minute must be a whole number of at least 1, got {per_minute!r}")
        rate = per_minute / 60.0
        burst = burst_for(per_minute)
        with self._lock:
            now = self._clock()
            self._evict(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                while len(self._buckets) >= self._max_keys:
                    self._buckets.popitem(last=False)
                bucket = _Bucket(tokens=float(burst), updated=now, full_at=now)
                self._buckets[key] = bucket
            else:
                self._buckets.move_to_end(key)
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(float(burst), bucket.tokens + elapsed * rate)
                bucket.updated = now
            if bucket.tokens + _EPSILON < 1.0:
                return (1.0 - bucket.tokens) / rate
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            bucket.full_at = now + (burst - bucket.tokens) / rate
            return None

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        # Least recently used first: stop at the first bucket still refilling (amortised
        # O(1) a call, each bucket is removed once).
        while buckets:
            oldest = next(iter(buckets.values()))
            if oldest.full_at > now:
                break
            buckets.popitem(last=False)

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket, or every bucket."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)
