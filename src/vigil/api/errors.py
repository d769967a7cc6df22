"""How failures become HTTP answers: one JSON shape, the right status, nothing leaked.

`{"detail": <message or list>, "code": <stable code>}`. Field errors use FastAPI's own
validation shape (`loc`, `msg`, `type`) so clients parse one format for 422s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vigil.banks.service import BankError, BankExists, BankNotFound, EntryNotFound
from vigil.media import ErrorCode
from vigil.media.fetch import FetchError
from vigil.pipeline.online import UploadRejected

log = logging.getLogger("vigil.api")

UPLOAD_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNSUPPORTED_FORMAT: 415,
    ErrorCode.EMPTY: 415,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.TOO_MANY_PIXELS: 413,
    ErrorCode.VIDEO_TOO_LONG: 413,
    ErrorCode.TOO_MANY_FRAMES: 413,
    ErrorCode.TIMEOUT: 422,
    ErrorCode.INTERNAL: 500,
}
"""Status per media error code; anything else (truncated, corrupt...) is 422."""


class FieldError(Exception):
    """A request value that is well-formed JSON but wrong (a malformed hash, say): 422 with
    the field's location and the reason, like FastAPI's own validation errors."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)
        self.message = message


def problem(status: int, detail: Any, code: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the exception handlers on `app`."""

    @app.exception_handler(FieldError)
    async def _field(_: Request, exc: FieldError) -> JSONResponse:
        detail = [{"loc": exc.loc, "msg": exc.message, "type": "value_error"}]
        return problem(422, detail, "invalid_value")

    @app.exception_handler(UploadRejected)
    async def _upload(_: Request, exc: UploadRejected) -> JSONResponse:
        return problem(UPLOAD_STATUS.get(exc.code, 422), exc.message, exc.code.value)

    @app.exception_handler(FetchError)
    async def _fetch(_: Request, exc: FetchError) -> JSONResponse:
        return problem(exc.status, str(exc), exc.code)

    @app.exception_handler(BankNotFound)
    @app.exception_handler(EntryNotFound)
    async def _missing(_: Request, exc: BankError) -> JSONResponse:
        return problem(404, str(exc), "not_found")

    @app.exception_handler(BankExists)
    async def _exists(_: Request, exc: BankExists) -> JSONResponse:
        return problem(409, str(exc), "conflict")

    @app.exception_handler(BankError)
    async def _bank(_: Request, exc: BankError) -> JSONResponse:
        return problem(422, str(exc), "invalid_value")
