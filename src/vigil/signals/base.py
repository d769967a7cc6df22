"""The `SignalType` interface: one small class per kind of hash.

Modelled on python-threatexchange's SignalType: a signal type knows how to compute its value
from a file, how far apart two values are, and when two values count as a match. The index,
the banks and the pipeline work through this interface only, so a new hash (a licensed
PhotoDNA plug-in, say) is one class and one registry entry.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from vigil.media import MediaFile, MediaType

_HEX_DIGITS = frozenset(string.hexdigits)


def parse_hex(text: str, length: int, name: str) -> str:
    """Normalise a fixed-length hex value from outside (lower case, no surrounding space);
    ValueError says what is wrong. Every character is checked: no inner spaces slip by."""
    value = text.strip().lower()
    if len(value) != length or not _HEX_DIGITS.issuperset(value):
        raise ValueError(f"{name} must be {length} hexadecimal characters")
    return value


@dataclass(frozen=True)
class Signal:
    """A computed value of one signal type for one file.

    `value` is the canonical text form stored in banks and the database. `quality` is 0-100
    for perceptual hashes and None for exact ones. `detail` carries a structured form where
    the text is not enough for a reader (vPDQ's per-frame list).
    """

    signal_type: str
    value: str
    quality: int | None = None
    detail: Any = None


class SignalType(ABC):
    """A kind of hash: compute, parse, distance, threshold, quality rule."""

    name: ClassVar[str]
    media_types: ClassVar[frozenset[MediaType]]
    """Media this signal type is computed for."""
    default_threshold: ClassVar[int]
    """Largest distance that still counts as a match (0 for exact hashes)."""
    max_threshold: ClassVar[int]
    """Largest threshold a bank may configure."""
    min_quality: ClassVar[int] = 0
    """Values with a lower quality are stored but never matched."""

    @abstractmethod
    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        """Compute the signal for a file; raises `MediaError` when it cannot."""

    @abstractmethod
    def parse(self, text: str) -> str:
        """Validate and normalise a value from outside; raises ValueError with the reason."""

    @abstractmethod
    def distance(self, a: str, b: str) -> int:
        """Distance between two canonical values (0 = identical)."""

    def matches(self, a: str, b: str, threshold: int | None = None) -> bool:
        """Whether two values match at `threshold` (the type's default when None)."""
        limit = self.default_threshold if threshold is None else threshold
        return self.distance(a, b) <= limit

    def usable(self, quality: int | None) -> bool:
        """The quality rule: whether a value of this quality may be matched at all."""
        return quality is None or quality >= self.min_quality
