"""Why a file could not be hashed, as a machine-readable code and a human message.

Every failure on input from outside becomes a `MediaError`; the pipeline turns it into a row
of the batch's output so nothing is lost and nothing crashes the run.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable codes that scripts, the API and the summary line rely on."""

    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    VIDEO_TOO_LONG = "video_too_long"
    TOO_MANY_FRAMES = "too_many_frames"
    TIMEOUT = "timeout"
    INTERNAL = "internal_error"


class MediaError(Exception):
    """A file that cannot be decoded or hashed, with the reason."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[MediaError], tuple[ErrorCode, str]]:
        # Results cross process boundaries; the default would call __init__ with one argument.
        return (MediaError, (self.code, self.message))

    def as_dict(self) -> dict[str, str]:
        """The `error` object of a hash record."""
        return {"code": self.code.value, "message": self.message}
