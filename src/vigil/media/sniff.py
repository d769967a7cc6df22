"""Tell images from videos by their first bytes, never by the file name.

Names lie (uploads are hostile); container signatures do not depend on them.
"""

from __future__ import annotations

from enum import StrEnum

SNIFF_BYTES = 32

# ISO base media (`ftyp`) brands that mean a still image (HEIF/HEIC/AVIF family).
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
# QuickTime files may start with an atom other than `ftyp`.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


class MediaType(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


def sniff_media_type(head: bytes) -> MediaType | None:
    """The media type announced by a file's first bytes, or None when not recognised."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")):
        return MediaType.IMAGE
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return MediaType.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaType.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return MediaType.VIDEO
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska and WebM
        return MediaType.VIDEO
    if head[4:8] == b"ftyp":
        return MediaType.IMAGE if head[8:12] in _IMAGE_BRANDS else MediaType.VIDEO
    if head[4:8] in _QUICKTIME_ATOMS:
        return MediaType.VIDEO
    return None
