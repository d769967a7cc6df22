"""PDQ, Meta's 256-bit perceptual image hash, through the reference C++ (`pdqhash`)."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import pdqhash
from numpy.typing import NDArray

from vigil.media import MediaFile, MediaType
from vigil.media.images import Pixels, load_pdq_pixels
from vigil.signals.base import Signal, SignalType, parse_hex

PDQ_HEX_LENGTH = 64


class Dihedral(IntEnum):
    """The 8 dihedral variants, in the reference's order."""

    ORIGINAL = 0
    ROTATE_90 = 1
    ROTATE_180 = 2
    ROTATE_270 = 3
    FLIP_X = 4
    FLIP_Y = 5
    FLIP_PLUS_1 = 6
    FLIP_MINUS_1 = 7


def bits_to_hex(bits: NDArray[np.integer]) -> str:
    """The reference hex form of a 256-entry 0/1 vector (most significant bit first)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hex_to_bits(value: str) -> NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(bytes.fromhex(value), dtype=np.uint8))


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two PDQ hex values."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def pdq_from_pixels(pixels: Pixels) -> tuple[str, int]:
    """PDQ hash and quality of decoded pixels."""
    bits, quality = pdqhash.compute(pixels)
    return bits_to_hex(bits), int(quality)


def dihedral_from_pixels(pixels: Pixels) -> tuple[list[str], int]:
    """All 8 dihedral PDQ hashes (reference order, see `Dihedral`) and the quality."""
    vectors, quality = pdqhash.compute_dihedral(pixels)
    return [bits_to_hex(v) for v in vectors], int(quality)


class PDQSignal(SignalType):
    name = "pdq"
    media_types = frozenset({MediaType.IMAGE})
    default_threshold = 31
    max_threshold = 64
    min_quality = 50

    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        value, quality = pdq_from_pixels(load_pdq_pixels(media.path, media.limits, fast=fast))
        return Signal(self.name, value, quality)

    def parse(self, text: str) -> str:
        return parse_hex(text, PDQ_HEX_LENGTH, self.name)

    def distance(self, a: str, b: str) -> int:
        return hamming(a, b)
