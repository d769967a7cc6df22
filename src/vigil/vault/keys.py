"""Key-encryption keys: who can unwrap the per-item data keys of the vault.

Every sealed item has its own random data key; only that small key is encrypted ("wrapped")
with a long-lived key-encryption key (KEK). The KEK can then live somewhere else (a file
here, a KMS or HSM later) and be rotated by re-wrapping data keys, never by re-encrypting
the evidence. `KeyProvider` is the whole interface such a backend needs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from vigil.vault.blobs import fsync_dir, make_private_dir

KEK_BYTES = 32
"""AES-256."""

_KEY_ID_HEX = 16
_CREATION_WAIT_SECONDS = 1.0
"""How long to wait for another process that has just created the key file to fill it."""


class KeyFileError(Exception):
    """A key file that cannot be trusted or used (permissions, size, not a file)."""


class UnwrapError(Exception):
    """A wrapped key this provider did not wrap, or that was altered."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under one key-encryption key.

    `unwrap` raises `UnwrapError` for a wrapped key it cannot authenticate; any other
    exception means the provider itself failed (unreachable KMS, ...), not the data.
    """

    @property
    def key_id(self) -> str:
        """Names the KEK (stored next to each wrapped key) without revealing it."""
        ...

    def wrap(self, data_key: bytes) -> bytes:
        """Encrypt and authenticate `data_key` under the KEK."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key `wrap` was given; `UnwrapError` if `wrapped` is not one of ours."""
        ...


class LocalKeyProvider:
    """A KEK kept in a local file, readable by its owner only.

    Wrapping is AES key wrap (RFC 3394, `cryptography`'s `aes_key_wrap`): deterministic and
    nonce-free, so there is no nonce to repeat and no limit on the number of keys wrapped
    under one KEK; its 8-byte integrity check makes a wrong KEK or an altered wrapped key fail.
    """

    __slots__ = ("_kek", "_key_id")

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes, not {len(kek)}")
        self._kek = bytes(kek)
        self._key_id = hashlib.sha256(self._kek).hexdigest()[:_KEY_ID_HEX]

    @classmethod
    def open(cls, path: Path) -> LocalKeyProvider:
        """The KEK in `path`, created (random, mode 0o600, directory 0o700) on first use.

        Safe when several processes start at once: the file is created exclusively, and a
        process that loses the race reads the winner's key. An existing file readable or
        writable by group or others, or not exactly 32 bytes, is refused with `KeyFileError`.
        """
        path = Path(path)
        make_private_dir(path.parent)
        kek = secrets.token_bytes(KEK_BYTES)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return cls(_read_key_file(path))
        try:
            try:
                written = os.write(fd, kek)
                if written != KEK_BYTES:
                    raise OSError(f"short write to {path}: {written} of {KEK_BYTES} bytes")
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            # Nothing can have been sealed with a key that was never completely written.
            path.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        return cls(kek)

    @property
    def key_id(self) -> str:
        """The first 16 hex digits of the KEK's SHA-256."""
        return self._key_id

    def wrap(self, data_key: bytes) -> bytes:
        """`data_key` (16 bytes or more, a multiple of 8) wrapped: 8 bytes longer."""
        return aes_key_wrap(self._kek, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._kek, wrapped)
        except (InvalidUnwrap, ValueError) as exc:
            raise UnwrapError(
                f"the data key does not unwrap under key {self._key_id}"
                " (another key wrapped it, or it was altered)"
            ) from exc

    def __repr__(self) -> str:
        return f"LocalKeyProvider(key_id={self._key_id!r})"


def _read_key_file(path: Path) -> bytes:
    """The 32 bytes of an existing key file, once its permissions and size check out."""
    deadline = time.monotonic() + _CREATION_WAIT_SECONDS
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileError(f"the key file {path} is not a regular file")
            if info.st_mode & 0o077:
                raise KeyFileError(
                    f"the key file {path} is accessible to group or others (mode"
                    f" {stat.S_IMODE(info.st_mode):o}); refusing it: run `chmod 600 {path}`"
                    " if the key has not leaked, otherwise rotate it"
                )
            data = os.read(fd, KEK_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) == KEK_BYTES:
            return data
        if len(data) < KEK_BYTES and time.monotonic() < deadline:
            time.sleep(0.01)  # another process may have created it and not yet written it
            continue
        size = f"{len(data)} bytes" if len(data) <= KEK_BYTES else "more bytes"
        raise KeyFileError(
            f"the key file {path} holds {size}, not {KEK_BYTES}: it is not a Vigil key"
            " (an empty one is left by an interrupted creation, and can be removed)"
        )
