"""Cryptographic digests of the file bytes: what most law-enforcement hash sets use."""

from __future__ import annotations

import hashlib
import string
from typing import ClassVar

from vigil.media import MediaFile, MediaType
from vigil.signals.base import Signal, SignalType

_HEX = frozenset(string.hexdigits)


class DigestSignal(SignalType):
    """An exact match on a digest of the bytes; distance is 0 or 1."""

    algorithm: ClassVar[str]
    media_types = frozenset(MediaType)
    default_threshold = 0
    max_threshold = 0

    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        return Signal(self.name, media.digest(self.algorithm))

    def parse(self, text: str) -> str:
        value = text.strip().lower()
        length = hashlib.new(self.algorithm).digest_size * 2
        if len(value) != length or not _HEX.issuperset(value):
            raise ValueError(f"{self.name} must be {length} hexadecimal characters")
        return value

    def distance(self, a: str, b: str) -> int:
        return 0 if a.lower() == b.lower() else 1


class MD5Signal(DigestSignal):
    name = "md5"
    algorithm = "md5"


class SHA256Signal(DigestSignal):
    name = "sha256"
    algorithm = "sha256"
