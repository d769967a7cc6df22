"""Matched media kept for the people who must see it: sealed at rest under its SHA-256.

The original bytes of a match are sealed (`vigil.vault.crypto`) under their SHA-256, so the
disk holds ciphertext only and every read proves the bytes are the ones that matched. The
review console renders them (`vigil.review.media`); a submitted report uploads them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from vigil.config import Settings
from vigil.vault.blobs import BlobStore, FileBlobStore
from vigil.vault.crypto import SealError, open_sealed, seal
from vigil.vault.keys import KeyProvider, LocalKeyProvider

_SHA256 = re.compile(r"[0-9a-f]{64}")


class MediaStore:
    """Matched media, sealed under its SHA-256 (the blob key, and the aad it is bound to)."""

    def __init__(self, blobs: BlobStore, keys: KeyProvider) -> None:
        self._blobs = blobs
        self._keys = keys

    def keep(self, path: Path, sha256: str) -> bool:
        """Seal and store the file at `path`, which must hash to `sha256` (`ValueError`
        otherwise, and nothing is stored). False, doing nothing, when it is already kept."""
        _check_sha256(sha256)
        if self._blobs.exists(sha256):
            return False
        data = Path(path).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ValueError(f"{path} has SHA-256 {actual}, not {sha256}: not kept")
        self._blobs.put(sha256, seal(data, aad=_aad(sha256), keys=self._keys))
        return True

    def exists(self, sha256: str) -> bool:
        _check_sha256(sha256)
        return self._blobs.exists(sha256)

    def read(self, sha256: str) -> bytes:
        """The kept bytes (`KeyError` when not kept); `SealError` unless they open and still
        hash to `sha256`."""
        _check_sha256(sha256)
        data = open_sealed(self._blobs.get(sha256), aad=_aad(sha256), keys=self._keys)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise SealError(f"the media kept as {sha256} does not hash to it")
        return data


def media_store(settings: Settings) -> MediaStore:
    """The media store of a Vigil home: blobs in `media/`, the key in `keys/vault.key`."""
    return MediaStore(
        FileBlobStore(settings.home / "media"),
        LocalKeyProvider.open(settings.home / "keys" / "vault.key"),
    )


def _check_sha256(sha256: str) -> None:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"expected a SHA-256 as 64 lower-case hex digits, not {sha256!r:.80}")


def _aad(sha256: str) -> bytes:
    return b"vigil-media:" + sha256.encode()
