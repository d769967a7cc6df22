"""What one API worker process holds for its lifetime: the database, the match index kept
current in the background, the token cache, the rate limiter, the lookup batcher and the
upload queues (the webhook worker lives in the app's lifespan)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import anyio

from vigil.api.batching import LookupBatcher
from vigil.auth import RateLimiter, TokenCache
from vigil.config import Settings
from vigil.pipeline.matching import BankMatcher
from vigil.store import Database
from vigil.vault.media import MediaStore

log = logging.getLogger("vigil.api")


class IndexKeeper:
    """The worker's `BankMatcher`, refreshed every `interval` seconds by a thread (so every
    worker converges on bank changes made through any other) and at once after a bank
    change made through this worker."""

    def __init__(self, matcher: BankMatcher, interval: float) -> None:
        self.matcher = matcher
        self.interval = interval
        self.last_refresh = time.monotonic()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Bring the index up to date now (after this worker changed a bank)."""
        try:
            self.matcher.refresh()
        except Exception as error:
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("match index refresh failed")
            raise
        self.last_error = None
        self.last_refresh = time.monotonic()

    def is_current(self) -> bool:
        """Whether the last refresh succeeded and is recent (three intervals)."""
        return self.last_error is None and time.monotonic() - self.last_refresh < max(
            3 * self.interval, 5.0
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vigil-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # logged in refresh; readiness reports it; try again later
                continue


UPLOAD_THREADS = 1
"""Uploads a worker hashes and matches at once. A worker is one CPU: more threads only
fight over the GIL (measured: 14 ms of CPU an upload with one, 15 with two, 16 with three,
~19 unbounded); recording runs in other threads, so the CPU is not idle while an upload
waits for the database."""


@dataclass
class ServiceState:
    settings: Settings
    database: Database
    index: IndexKeeper
    tokens: TokenCache
    media: MediaStore
    """Matched and flagged files, kept encrypted for the reviewers."""
    limiter: RateLimiter = field(default_factory=RateLimiter)
    uploads: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(UPLOAD_THREADS)
    )
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held around each upload's transaction (see `record_upload`)."""
    lookups: LookupBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.lookups = LookupBatcher(lambda: self.index.matcher)

    @property
    def matcher(self) -> BankMatcher:
        return self.index.matcher
