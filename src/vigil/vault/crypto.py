"""Envelope encryption: each item under its own data key, the data key under the KEK.

A sealed blob names the key that wrapped its data key and carries everything else needed to
open it, so blobs can move between stores and keys can be rotated by re-wrapping alone.

Layout (big-endian, every length explicit):

    b"VGLSEAL1"                       magic and format version
    u8  len, key id (ASCII)           which KEK wrapped the data key
    u16 len, wrapped data key
    u8  len, nonce (12 bytes)
    u64 len, ciphertext               AES-256-GCM, with its 16-byte tag at the end

The GCM associated data is everything before the ciphertext followed by the caller's `aad`
(the header is self-delimiting, so the concatenation is unambiguous): a blob only opens
unaltered, whole, and for the purpose `aad` names (a blob moved under another key fails).

`encrypt_item` / `decrypt_item` are the vault items' variant: the same AES-256-GCM under a
fresh data key, but the wrapped data key is handed back to be kept apart from the blob (in
the database), so that deleting it alone destroys the item ("crypto-shredding").
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.vault.keys import KeyProvider, UnwrapError

MAGIC = b"VGLSEAL1"
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class SealError(Exception):
    """A blob that does not open: altered, truncated, malformed, another key or another aad."""


def seal(plaintext: bytes, *, aad: bytes, keys: KeyProvider) -> bytes:
    """`plaintext` encrypted under a fresh data key, wrapped by `keys`, bound to `aad`.

    Up to 2 GiB - 1 of plaintext (a limit of the AES-GCM implementation).
    """
    data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    key_id = keys.key_id.encode("ascii")
    wrapped = keys.wrap(data_key)
    if len(key_id) > 0xFF or len(wrapped) > 0xFFFF:
        raise ValueError("the key provider's key id or wrapped key is too long to store")
    ciphertext_length = len(plaintext) + TAG_BYTES
    header = b"".join(
        (
            MAGIC,
            struct.pack(">B", len(key_id)),
            key_id,
            struct.pack(">H", len(wrapped)),
            wrapped,
            struct.pack(">B", len(nonce)),
            nonce,
            struct.pack(">Q", ciphertext_length),
        )
    )
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, header + aad)
    return header + ciphertext


def open_sealed(blob: bytes, *, aad: bytes, keys: KeyProvider) -> bytes:
    """The plaintext of a blob `seal` made with the same `aad` and KEK; else `SealError`."""
    reader = _Reader(blob)
    if reader.take(len(MAGIC)) != MAGIC:
        raise SealError("not a sealed blob of a format this version reads (bad magic)")
    key_id_bytes = reader.take(reader.length(">B"))
    wrapped = reader.take(reader.length(">H"))
    nonce = reader.take(reader.length(">B"))
    ciphertext_length = reader.length(">Q")
    header_end = reader.offset
    ciphertext = reader.view(ciphertext_length)
    if reader.offset != len(reader.blob):
        raise SealError(f"{len(reader.blob) - reader.offset} unexpected bytes after the ciphertext")
    if len(nonce) != NONCE_BYTES or ciphertext_length < TAG_BYTES:
        raise SealError("malformed sealed blob (nonce or ciphertext of the wrong size)")
    key_id = key_id_bytes.decode("ascii", errors="replace")
    if key_id != keys.key_id:
        raise SealError(f"sealed under key {key_id!r:.40}, but the key in use is {keys.key_id!r}")
    return _decrypt(
        keys,
        wrapped,
        nonce,
        ciphertext,
        reader.blob[:header_end].tobytes() + aad,
        owner="the blob's",
        forged="the blob does not authenticate: it was altered, or is opened with another aad",
    )


def _decrypt(
    keys: KeyProvider,
    wrapped: bytes,
    nonce: bytes,
    ciphertext: memoryview,
    associated: bytes,
    *,
    owner: str,
    forged: str,
) -> bytes:
    """Unwrap the data key and open the ciphertext; every failure a `SealError` (`owner`
    names whose key it is in the message, `forged` is said when it does not authenticate)."""
    try:
        data_key = keys.unwrap(wrapped)
    except UnwrapError as exc:
        raise SealError(f"{owner} data key does not unwrap: {exc}") from exc
    if len(data_key) != DATA_KEY_BYTES:
        raise SealError(f"{owner} data key has the wrong size")
    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext, associated)
    except InvalidTag:
        raise SealError(forged) from None


class _Reader:
    """Reads the fields of a blob in order; running out of bytes is a `SealError`."""

    def __init__(self, blob: bytes) -> None:
        self.blob = memoryview(blob)
        self.offset = 0

    def view(self, count: int) -> memoryview:
        """The next `count` bytes, without copying them (the ciphertext can be large)."""
        end = self.offset + count
        if end > len(self.blob):
            raise SealError(
                f"truncated sealed blob: {len(self.blob)} bytes, a field ends at byte {end}"
            )
        field = self.blob[self.offset : end]
        self.offset = end
        return field

    def take(self, count: int) -> bytes:
        return self.view(count).tobytes()

    def length(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(value)


# --- Vault items: the wrapped data key kept apart from the bytes ---------------------------

ITEM_MAGIC = b"VGLITEM1"
"""Magic and format version of a vault item's blob (see `encrypt_item`)."""


def encrypt_item(plaintext: bytes, *, aad: bytes, keys: KeyProvider) -> tuple[bytes, str, bytes]:
    """`plaintext` under a fresh AES-256-GCM data key: `(wrapped_key, key_id, blob)`.

    Unlike `seal`, the blob does not carry the wrapped data key: the caller keeps
    `wrapped_key` and `key_id` elsewhere (the vault keeps them in the database), so deleting
    that one small value destroys the item wherever copies of the blob went
    ("crypto-shredding"). The blob is::

        b"VGLITEM1"            magic and format version
        u8  len, nonce         12 bytes
        ciphertext             AES-256-GCM, its 16-byte tag at the end

    The GCM associated data is the header followed by `aad`, which names what the item is
    (its id and authenticated metadata): a blob opens only whole, unaltered, with its own
    wrapped key and for the item it was written for. Up to 2 GiB - 1 of plaintext.
    """
    data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    key_id = keys.key_id
    if len(key_id.encode("ascii")) > 64:
        raise ValueError("the key provider's key id is longer than 64 characters")
    wrapped = keys.wrap(data_key)
    header = ITEM_MAGIC + struct.pack(">B", len(nonce)) + nonce
    return wrapped, key_id, header + AESGCM(data_key).encrypt(nonce, plaintext, header + aad)


def decrypt_item(
    blob: bytes, *, wrapped_key: bytes, key_id: str, aad: bytes, keys: KeyProvider
) -> bytes:
    """The plaintext of a blob `encrypt_item` made with the same `aad`, opened with its
    `wrapped_key` under the KEK `key_id`; `SealError` for anything else (another item's key
    or blob, an altered byte, a truncated blob, another KEK)."""
    reader = _Reader(blob)
    if reader.take(len(ITEM_MAGIC)) != ITEM_MAGIC:
        raise SealError("not a vault item blob of a format this version reads (bad magic)")
    nonce = reader.take(reader.length(">B"))
    if len(nonce) != NONCE_BYTES:
        raise SealError("malformed vault item blob (nonce of the wrong size)")
    header_end = reader.offset
    ciphertext = reader.view(len(reader.blob) - header_end)
    if len(ciphertext) < TAG_BYTES:
        raise SealError("truncated vault item blob (shorter than its tag)")
    if key_id != keys.key_id:
        raise SealError(f"the item's key was wrapped by key {key_id!r:.70}, not {keys.key_id!r}")
    return _decrypt(
        keys,
        wrapped_key,
        nonce,
        ciphertext,
        reader.blob[:header_end].tobytes() + aad,
        owner="the item's",
        forged="the item does not authenticate: its bytes, its wrapped key or its metadata were"
        " altered, or the blob belongs to another item",
    )
