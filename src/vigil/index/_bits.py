"""Conversions between hash text, byte arrays and 64-bit words, and Hamming distances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

PDQ_BYTES = 32
PDQ_WORDS = 4

Words: TypeAlias = NDArray[np.uint64]
"""n x 4 array of 64-bit words: a PDQ hash's 32 bytes read as little-endian words. Hamming
distance is the popcount of the XOR whatever the word order, so no byte swapping is needed."""

HashInput: TypeAlias = NDArray[np.uint8] | Sequence[str]
"""PDQ hashes: an n x 32 uint8 array (the hash's bytes, as `bytes.fromhex(hex)`) or hex texts."""

Ids: TypeAlias = NDArray[np.integer[Any]] | Sequence[int]


def hex_to_bytes(values: Sequence[str], size: int) -> NDArray[np.uint8]:
    """n x `size` uint8 array of hex texts of `size` bytes each; ValueError names a bad one."""
    length = 2 * size
    for position, value in enumerate(values):
        if not isinstance(value, str) or len(value) != length:
            raise ValueError(
                f"hash {position}: expected {length} hexadecimal characters, got {value!r:.80}"
            )
    try:
        raw = bytes.fromhex("".join(values))
    except ValueError:
        for position, value in enumerate(values):
            try:
                bytes.fromhex(value)
            except ValueError:
                raise ValueError(f"hash {position}: not hexadecimal: {value!r:.80}") from None
        raise  # pragma: no cover - some value must have failed
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), size).copy()


def bytes_to_hex(array: NDArray[np.uint8]) -> list[str]:
    """Hex texts of the rows of a uint8 array."""
    return [row.tobytes().hex() for row in np.asarray(array, dtype=np.uint8)]


def pdq_array(hashes: HashInput) -> NDArray[np.uint8]:
    """n x 32 uint8 array of PDQ hashes given as hex texts or as an array (validated)."""
    if isinstance(hashes, np.ndarray):
        if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != PDQ_BYTES:
            raise ValueError(
                f"PDQ hashes must be an n x {PDQ_BYTES} uint8 array, got {hashes.dtype} "
                f"{hashes.shape}"
            )
        return np.ascontiguousarray(hashes)
    if isinstance(hashes, str):
        raise TypeError("expected a sequence of hex texts, got a single string")
    return hex_to_bytes(list(hashes), PDQ_BYTES)


def to_words(array: NDArray[np.uint8]) -> Words:
    """n x 4 uint64 words of an n x 32 uint8 array (a view when possible)."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    return data.view(np.dtype("<u8")).astype(np.uint64, copy=False).reshape(-1, PDQ_WORDS)


def words_to_bytes(words: Words) -> NDArray[np.uint8]:
    """The n x 32 uint8 form of n x 4 words."""
    data = np.ascontiguousarray(words).astype(np.dtype("<u8"), copy=False)
    return data.view(np.uint8).reshape(-1, PDQ_BYTES)


def as_ids(ids: Ids) -> NDArray[np.int64]:
    """A 1-d int64 array of ids."""
    array = np.asarray(ids)
    if array.ndim != 1:
        array = array.reshape(-1)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"ids must be integers, got {array.dtype}")
    if array.dtype == np.uint64 and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in a signed 64-bit integer")
    return array.astype(np.int64, copy=False)


def distances(words: Words, query: Words) -> NDArray[np.int32]:
    """Hamming distances between each row of `words` and one query (shape (4,) or (1, 4))."""
    result: NDArray[np.int32] = np.bitwise_count(words ^ query.reshape(1, PDQ_WORDS)).sum(
        axis=1, dtype=np.int32
    )
    return result
