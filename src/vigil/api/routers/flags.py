"""`POST /v1/flags`: content put before a reviewer by a user's report, an external
classifier, or a person escalating it; hashed, matched and recorded like `/v1/match`."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request

from vigil.api.routers.hashing import ERRORS, UPLOAD_BODY, match_upload
from vigil.api.security import Matcher, State
from vigil.api.uploads import FlagIn, FlagMeta, receive_upload

router = APIRouter(prefix="/v1", tags=["review"])


def _flag_body() -> dict[str, Any]:
    body = copy.deepcopy(UPLOAD_BODY)
    content = body["requestBody"]["content"]
    flag_schema = FlagIn.model_json_schema()
    multipart = content["multipart/form-data"]["schema"]
    multipart["required"] = ["file", "flag"]
    multipart["properties"]["flag"] = {
        "type": "string",
        "description": "JSON object: source, reporter, label, score, reason, imminent_danger",
    }
    json_body = content["application/json"]["schema"]
    json_body["required"] = ["url", "flag"]
    json_body["properties"]["flag"] = flag_schema
    return body


@router.post("/flags", status_code=201, openapi_extra=_flag_body(), responses=ERRORS)
async def flag_content(request: Request, state: State, principal: Matcher) -> dict[str, Any]:
    """Open a review task for this content whether or not it matches a bank; returns the
    `/v1/match` record with the `task_id`. Imminent danger (with a reason) goes to the top
    of the escalated queue."""
    async with receive_upload(request, state.settings, FlagMeta) as upload:
        assert isinstance(upload.meta, FlagMeta)
        result = await match_upload(state, upload, principal, upload.meta.flag.to_flag())
    return result.as_json()
