"""Coalescing concurrent single-hash lookups into one batched index search.

A PDQ search's cost is mostly fixed per call (numpy dispatch over the index's tables), so
one search of 16 hashes costs little more than one of a single hash. Requests that are in
flight in a worker at the same moment (the usual case under load: many keep-alive
connections) hand their hash to the batcher and await their own result; the batcher
searches once for all of them on the next turn of the event loop. Under light load a
batch holds one hash and nothing is delayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vigil.pipeline.matching import BankMatcher, MatchOutcome
from vigil.pipeline.online import HashQuery, lookup_hashes


class LookupBatcher:
    """One per worker process; used only from its event loop."""

    def __init__(self, matcher: Callable[[], BankMatcher]) -> None:
        self._matcher = matcher
        self._pending: list[tuple[HashQuery, asyncio.Future[MatchOutcome]]] = []
        self.batches = 0
        self.looked_up = 0

    async def lookup(self, query: HashQuery) -> MatchOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[MatchOutcome] = loop.create_future()
        self._pending.append((query, future))
        if len(self._pending) == 1:
            loop.call_soon(self._search)
        return await future

    def _search(self) -> None:
        batch, self._pending = self._pending, []
        live = [(query, future) for query, future in batch if not future.cancelled()]
        if not live:
            return
        self.batches += 1
        self.looked_up += len(live)
        try:
            outcomes = lookup_hashes(self._matcher(), [query for query, _ in live])
        except Exception as error:  # each waiting request answers with the failure
            for _, future in live:
                future.set_exception(error)
            return
        for (_, future), outcome in zip(live, outcomes, strict=True):
            future.set_result(outcome)
