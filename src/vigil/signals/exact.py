"""Cryptographic digests of the file bytes: what most law-enforcement hash sets use."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from vigil.media import MediaFile, MediaType
from vigil.signals.base import Signal, SignalType, parse_hex


class DigestSignal(SignalType):
    """An exact match on a digest of the bytes; distance is 0 or 1."""

    algorithm: ClassVar[str]
    media_types = frozenset(MediaType)
    default_threshold = 0
    max_threshold = 0

    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        return Signal(self.name, media.digest(self.algorithm))

    def parse(self, text: str) -> str:
        return parse_hex(text, hashlib.new(self.algorithm).digest_size * 2, self.name)

    def distance(self, a: str, b: str) -> int:
        return 0 if a.lower() == b.lower() else 1


class MD5Signal(DigestSignal):
    name = "md5"
    algorithm = "md5"


class SHA1Signal(DigestSignal):
    """SHA-1 of the bytes: with MD5, what most law-enforcement hash sets (VICS) carry."""

    name = "sha1"
    algorithm = "sha1"


class SHA256Signal(DigestSignal):
    name = "sha256"
    algorithm = "sha256"
