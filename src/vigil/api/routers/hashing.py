"""`POST /v1/hash` and `POST /v1/match`: an upload (multipart `file`) or `{"url": ...}`."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Request

from vigil.api.observability import HASHES, MATCHES
from vigil.api.security import Hasher, Matcher, State
from vigil.api.state import ServiceState
from vigil.api.uploads import ReceivedUpload, receive_upload
from vigil.auth import TokenPrincipal
from vigil.pipeline.hashing import HashRecord
from vigil.pipeline.matching import MatchOutcome
from vigil.pipeline.online import MatchedUpload, hash_upload, online_options, record_upload
from vigil.review import Flag

router = APIRouter(prefix="/v1", tags=["hashing"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "content_ref": {"type": "string", "maxLength": 256},
                        "uploader": {
                            "type": "string",
                            "description": "JSON object: account_id, screen_name, ip_address,"
                            " event_time",
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string"},
                        "content_ref": {"type": "string", "maxLength": 256},
                        "uploader": {"type": "object"},
                    },
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "The file is too large (bytes, pixels, duration, frames)."},
    415: {"description": "Not an image or video format Vigil decodes."},
    422: {"description": "A field is invalid, or the file is truncated or corrupt."},
}


def _hash(state: ServiceState, upload: ReceivedUpload) -> HashRecord:
    settings = state.settings
    options = online_options(settings.media_limits, settings.vpdq_seconds_per_hash)
    record = hash_upload(upload.path, upload.name, settings.media_limits, options)
    for signal_type in record.signals:
        HASHES.labels(signal_type).inc()
    return record


@router.post("/hash", openapi_extra=UPLOAD_BODY, responses=ERRORS)
async def hash_content(request: Request, state: State, _: Hasher) -> dict[str, Any]:
    """Hash an upload; returns the `vigil hash` record. Nothing is stored."""
    async with receive_upload(request, state.settings) as upload:
        record = await anyio.to_thread.run_sync(_hash, state, upload, limiter=state.uploads)
    return record.as_json()


async def match_upload(
    state: ServiceState, upload: ReceivedUpload, principal: TokenPrincipal, flag: Flag | None
) -> MatchedUpload:
    """Hash, match and record a received upload (with its flag, if any); a matched or
    flagged file is kept for the reviewers."""

    def hash_and_match() -> tuple[HashRecord, MatchOutcome]:
        record = _hash(state, upload)
        (outcome,) = state.matcher.match([record])
        return record, outcome

    record, outcome = await anyio.to_thread.run_sync(hash_and_match, limiter=state.uploads)
    uploader = upload.meta.uploader
    result = await anyio.to_thread.run_sync(
        partial(
            record_upload,
            state.database,
            record,
            outcome,
            content_ref=upload.meta.content_ref,
            uploader=uploader.to_uploader() if uploader else None,
            token_id=principal.id,
            write_lock=state.write_lock,
            media=(state.media, upload.path),
            flag=flag,
        )
    )
    for match in outcome.matches:
        MATCHES.labels(match.bank).inc()
    return result


@router.post("/match", openapi_extra=UPLOAD_BODY, responses=ERRORS)
async def match_content(request: Request, state: State, principal: Matcher) -> dict[str, Any]:
    """Hash, match and record an upload in one call; returns the record with `matches`,
    and the ids it was stored under. Matches fire the banks' actions (webhooks) and open
    review tasks."""
    async with receive_upload(request, state.settings) as upload:
        result = await match_upload(state, upload, principal, None)
    return result.as_json()
