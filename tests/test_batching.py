"""Concurrent lookups in one worker are searched together, each answered with its own
result, exactly as if looked up alone."""

from __future__ import annotations

import asyncio
import random

import pytest

from bank_helpers import rand_hex
from vigil import banks
from vigil.api.batching import LookupBatcher
from vigil.banks import NewEntry
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.online import HashQuery, parse_query
from vigil.store import Database

BANK = [rand_hex(random.Random(100 + i), "pdq") for i in range(200)]


@pytest.fixture
def matcher(db: Database) -> BankMatcher:
    with db.session() as session:
        banks.create_bank(session, "b", default_classification="A2")
        banks.add_entries(session, "b", [NewEntry("pdq", value) for value in BANK])
    return BankMatcher.from_database(db)


def _queries(count: int) -> list[HashQuery]:
    """Five near copies of bank entries (one bit flipped), then random hashes."""
    rng = random.Random(22)
    held = [f"{int(v, 16) ^ (1 << rng.randrange(256)):064x}" for v in BANK[:5]]
    values = held + [rand_hex(rng, "pdq") for _ in range(count - len(held))]
    return [parse_query("pdq", value) for value in values]


def test_concurrent_lookups_share_one_search_and_keep_their_own_results(
    matcher: BankMatcher,
) -> None:
    queries = _queries(12)
    alone = [matcher.lookup("pdq", [q.value])[0] for q in queries]
    batcher = LookupBatcher(lambda: matcher)

    async def run() -> list[list[tuple[int, int]]]:
        outcomes = await asyncio.gather(*(batcher.lookup(q) for q in queries))
        return [[(m.entry_id, m.distance) for m in o.matches] for o in outcomes]

    together = asyncio.run(run())
    assert together == [[(m.entry_id, m.distance) for m in o.matches] for o in alone]
    assert sum(1 for found in together if found) == 5
    assert (batcher.batches, batcher.looked_up) == (1, 12)


def test_a_lone_lookup_is_not_delayed_into_a_later_batch(matcher: BankMatcher) -> None:
    query = _queries(5)[0]
    batcher = LookupBatcher(lambda: matcher)

    async def run() -> None:
        for _ in range(3):
            outcome = await batcher.lookup(query)
            assert [m.classification for m in outcome.matches] == ["A2"]

    asyncio.run(run())
    assert (batcher.batches, batcher.looked_up) == (3, 3)


def test_a_failing_search_fails_every_waiting_request(matcher: BankMatcher) -> None:
    def broken() -> BankMatcher:
        raise RuntimeError("index gone")

    batcher = LookupBatcher(broken)
    queries = _queries(5)[:3]

    async def run() -> list[BaseException | object]:
        return await asyncio.gather(*(batcher.lookup(q) for q in queries), return_exceptions=True)

    results = asyncio.run(run())
    assert [str(r) for r in results] == ["index gone"] * 3
