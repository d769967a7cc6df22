"""A file from outside, checked against the limits and typed by its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from vigil.config import MediaLimits
from vigil.media.errors import ErrorCode, MediaError
from vigil.media.sniff import SNIFF_BYTES, MediaType, sniff_media_type

_CHUNK = 1 << 20


@dataclass
class MediaFile:
    """One file to hash: where it is, how big, what it is, and the limits it is held to."""

    path: Path
    size: int
    media_type: MediaType | None
    limits: MediaLimits
    _digests: dict[str, str] = field(default_factory=dict, repr=False)

    def digest(self, algorithm: str) -> str:
        """Hex digest of the bytes; MD5, SHA-1 and SHA-256 are computed together in one read."""
        if algorithm not in self._digests:
            hashers = {name: hashlib.new(name) for name in ("md5", "sha1", "sha256")}
            hashers.setdefault(algorithm, hashlib.new(algorithm))
            with self.path.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    for hasher in hashers.values():
                        hasher.update(chunk)
            self._digests.update({name: h.hexdigest() for name, h in hashers.items()})
        return self._digests[algorithm]


def open_media(path: Path, limits: MediaLimits) -> MediaFile:
    """Check existence, size limits and type of `path` without decoding it."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise MediaError(ErrorCode.UNREADABLE, f"{path} is not a regular file")
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    except FileNotFoundError as exc:
        raise MediaError(ErrorCode.NOT_FOUND, f"{path} does not exist") from exc
    except OSError as exc:
        raise MediaError(ErrorCode.UNREADABLE, f"cannot read {path}: {exc.strerror}") from exc
    if size == 0:
        raise MediaError(ErrorCode.EMPTY, "the file is empty")
    if size > limits.max_file_bytes:
        raise MediaError(
            ErrorCode.TOO_LARGE,
            f"{size} bytes exceeds the limit of {limits.max_file_bytes} (VIGIL_MAX_FILE_BYTES)",
        )
    return MediaFile(path=path, size=size, media_type=sniff_media_type(head), limits=limits)
