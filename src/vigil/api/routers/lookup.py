"""`/v1/lookup` (one hash, or up to 1000 in a batch) and `/v1/compare`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from vigil.api.errors import FieldError
from vigil.api.observability import MATCHES
from vigil.api.security import Matcher, State
from vigil.pipeline.matching import MatchOutcome
from vigil.pipeline.online import HashQuery, compare_hashes, lookup_hashes, parse_query

router = APIRouter(prefix="/v1", tags=["lookup"])
MAX_BATCH = 1000


def _query(
    signal_type: str, value: str, loc: list[str | int], value_field: str = "value"
) -> HashQuery:
    try:
        return parse_query(signal_type, value)
    except KeyError as error:
        raise FieldError([*loc, "signal_type"], str(error.args[0])) from None
    except ValueError as error:
        raise FieldError([*loc, value_field], str(error)) from None


def _result(query: HashQuery, outcome: MatchOutcome) -> dict[str, Any]:
    for match in outcome.matches:
        MATCHES.labels(match.bank).inc()
    return {
        "signal_type": query.signal_type,
        "value": query.value,
        "matches": [m.as_json() for m in outcome.matches],
    }


@router.get("/lookup")
async def lookup_one(
    state: State,
    _: Matcher,
    signal_type: str = Query(..., max_length=32, examples=["pdq"]),
    value: str = Query(..., max_length=65_536),
) -> dict[str, Any]:
    """Banks holding this hash (PDQ: within each bank's threshold). Answered on the event
    loop (one search takes less than a thread hand-off), searched together with the other
    lookups in flight in this worker (`vigil.api.batching`)."""
    query = _query(signal_type, value, ["query"])
    return _result(query, await state.lookups.lookup(query))


class HashIn(BaseModel):
    signal_type: str = Field(max_length=32, examples=["pdq"])
    value: str = Field(max_length=65_536)


class LookupBatch(BaseModel):
    hashes: list[HashIn] = Field(min_length=1, max_length=MAX_BATCH)


@router.post("/lookup")
async def lookup_many(batch: LookupBatch, state: State, _: Matcher) -> dict[str, Any]:
    """Up to 1000 hashes in one call; results in the order given."""
    queries = [
        _query(item.signal_type, item.value, ["body", "hashes", i])
        for i, item in enumerate(batch.hashes)
    ]
    outcomes = await run_in_threadpool(lookup_hashes, state.matcher, queries)
    return {"results": [_result(q, o) for q, o in zip(queries, outcomes, strict=True)]}


class CompareIn(BaseModel):
    signal_type: str = Field(max_length=32, examples=["pdq"])
    a: str = Field(max_length=65_536)
    b: str = Field(max_length=65_536)
    threshold: int | None = Field(None, ge=0, description="Default: the type's own.")


@router.post("/compare")
async def compare(body: CompareIn, _: Matcher) -> dict[str, Any]:
    """Distance between two hashes and whether they match."""
    a = _query(body.signal_type, body.a, ["body"], "a")
    b = _query(body.signal_type, body.b, ["body"], "b")
    try:
        result = compare_hashes(a, b, body.threshold)
    except ValueError as error:
        raise FieldError(["body", "threshold"], str(error)) from None
    return {
        "signal_type": result.signal_type,
        "distance": result.distance,
        "threshold": result.threshold,
        "match": result.match,
    }
