"""Reading an upload from a request: a multipart file or `{"url": ...}` fetched safely.

The body lands in a temporary file (deleted when the request ends) whose size is capped
while it is copied, so a hostile upload can neither fill memory nor be half-read.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    model_validator,
)
from starlette.datastructures import UploadFile

from vigil.api.errors import FieldError
from vigil.config import Settings
from vigil.media import ErrorCode
from vigil.media.fetch import FetchPolicy, fetch_url
from vigil.pipeline.online import Uploader, UploadRejected
from vigil.review import Flag

_COPY_CHUNK = 1024 * 1024


class UploaderIn(BaseModel):
    """Who uploaded the content, as the platform knows it."""

    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(None, max_length=256)
    screen_name: str | None = Field(None, max_length=256)
    ip_address: IPvAnyAddress | None = None
    event_time: AwareDatetime | None = Field(None, description="When the upload happened.")

    def to_uploader(self) -> Uploader:
        return Uploader(
            account_id=self.account_id,
            screen_name=self.screen_name,
            ip_address=str(self.ip_address) if self.ip_address else None,
            event_time=self.event_time,
        )


class UploadMeta(BaseModel):
    """What `/v1/match` stores with an upload for later reporting and legal process."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=4096, description="Fetch the file from here.")
    content_ref: str | None = Field(
        None, max_length=256, description="The platform's own id for the content."
    )
    uploader: UploaderIn | None = None


class FlagIn(BaseModel):
    """Why content is put before a reviewer without (or besides) a bank match."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["flag", "user_report", "escalation"] = Field(
        "flag",
        description="`flag`: an external classifier; `user_report`: a user of the platform;"
        " `escalation`: a person at the platform, by hand.",
    )
    reporter: str | None = Field(
        None, max_length=256, description="The classifier's name, or the reporting user's id."
    )
    label: str | None = Field(None, max_length=256, description="The classifier's label.")
    score: float | None = Field(None, ge=0, le=1, description="The classifier's score, 0-1.")
    reason: str | None = Field(
        None, max_length=3000, description="Free text; required with imminent danger."
    )
    imminent_danger: bool = Field(
        False, description="A child may be in danger now: top of the escalated queue."
    )

    @model_validator(mode="after")
    def _reason_for_danger(self) -> FlagIn:
        if self.imminent_danger and not (self.reason or "").strip():
            raise ValueError("imminent danger needs a reason")
        return self

    def to_flag(self) -> Flag:
        return Flag(
            source=self.source,
            reporter=self.reporter,
            label=self.label,
            score=self.score,
            reason=self.reason,
            imminent_danger=self.imminent_danger,
        )


class FlagMeta(UploadMeta):
    """What `/v1/flags` takes: an upload's fields and the flag."""

    flag: FlagIn


_JSON_FIELDS = ("uploader", "flag")
"""Multipart fields that carry a JSON object."""


@dataclass
class ReceivedUpload:
    path: Path
    name: str
    meta: UploadMeta


def _meta(data: dict[str, Any], model: type[UploadMeta]) -> UploadMeta:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise FieldError(["body", *first["loc"]], first["msg"]) from None


async def copy_capped(upload: UploadFile, target: Path, limit: int) -> None:
    """Copy an uploaded file to `target`, refusing it (`too_large`, 413) past `limit` bytes;
    the caller removes `target` on failure."""
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(_COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadRejected(ErrorCode.TOO_LARGE, f"the file is larger than {limit} bytes")
            out.write(chunk)


@asynccontextmanager
async def receive_upload(
    request: Request, settings: Settings, model: type[UploadMeta] = UploadMeta
) -> AsyncIterator[ReceivedUpload]:
    """The upload in a request, in a temporary file removed afterwards; its other fields
    validated by `model`."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise FieldError(["body", "file"], "a multipart field 'file' is required")
            fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
            for name in _JSON_FIELDS:
                if name in fields:
                    try:
                        fields[name] = json.loads(fields[name])
                    except ValueError:
                        raise FieldError(["body", name], "must be a JSON object") from None
            meta = _meta(fields, model)
            handle, name = tempfile.mkstemp(prefix="vigil-upload-")
            os.close(handle)
            path = Path(name)
            try:
                await copy_capped(upload, path, settings.max_file_bytes)
                yield ReceivedUpload(path, upload.filename or "upload", meta)
            finally:
                path.unlink(missing_ok=True)
    elif content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise FieldError(["body"], "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise FieldError(["body"], "must be a JSON object")
        meta = _meta(body, model)
        if not meta.url:
            raise FieldError(["body", "url"], "a url (or a multipart file) is required")
        policy = FetchPolicy.from_settings(settings)
        fetched = await run_in_threadpool(fetch_url, meta.url, policy)
        with fetched:  # removes the fetched file
            yield ReceivedUpload(fetched.path, meta.url, meta)
    else:
        raise UploadRejected(
            ErrorCode.UNSUPPORTED_FORMAT,
            "send multipart/form-data with a 'file' field, or application/json with a 'url'",
        )
