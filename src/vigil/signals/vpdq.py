"""vPDQ, Meta's video hash: one PDQ hash per selected frame, with its quality and timestamp.

Computed in Vigil from PyAV frames (`vigil.media.video`, which follows the reference's frame
selection, numbering, timestamps and RGB conversion) hashed with the reference C++ PDQ.

Canonical text (the reference's hash-file format): one line per hashed frame,
`frame_number,quality,pdq_hex,timestamp_seconds`, the timestamp with 3 decimals, each line
ending in a newline; frame numbers strictly increase.

Comparing two videos (the reference's brute-force matcher): drop frames of quality below 50,
keep one frame per distinct hash, then count the frames of each video that have a frame of
the other within Hamming distance 31. The shares of such frames are the query and compared
match percentages; the videos match when the compared share reaches 80% and the query share
reaches a second threshold (default 0%).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vigil.config import MediaLimits
from vigil.media import MediaFile, MediaType
from vigil.media.video import MIN_HASHABLE_SIDE, iter_frames
from vigil.signals.base import Signal, SignalType
from vigil.signals.pdq import pdq_from_pixels

DISTANCE_THRESHOLD = 31
"""Largest per-frame Hamming distance that counts as a frame match."""
QUALITY_THRESHOLD = 50
"""Frames of lower quality take no part in matching."""
COMPARED_MATCH_PERCENT = 80.0
"""Share of the compared video's unique frames that must match for a video match."""
QUERY_MATCH_PERCENT = 0.0
"""Share of the query video's unique frames that must match for a video match."""

_LINE = re.compile(
    r"(?P<frame>0|[1-9][0-9]{0,11}),(?P<quality>0|[1-9][0-9]{0,2}),(?P<pdq>[0-9a-fA-F]{64}),"
    r"(?P<timestamp>[0-9]{1,12}(?:\.[0-9]{1,12})?)"
)
_ROW_CHUNK = 256  # query frames per block of the distance matrix (bounds memory)


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """The hash of one frame: number, time in seconds (3 decimals), quality 0-100, PDQ hex."""

    frame: int
    timestamp: float
    quality: int
    pdq: str

    def as_json(self) -> dict[str, int | float | str]:
        """The `{frame, timestamp, quality, pdq}` object of a hash record."""
        return {
            "frame": self.frame,
            "timestamp": self.timestamp,
            "quality": self.quality,
            "pdq": self.pdq,
        }

    as_dict = as_json


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """How much of each video matched the other, in percent of its unique usable frames."""

    query_match_percent: float
    compared_match_percent: float


def format_timestamp(seconds: float) -> str:
    """The reference's timestamp text: fixed point, 3 decimals."""
    return f"{seconds:.3f}"


def format_vpdq(frames: Iterable[VpdqFrame]) -> str:
    """The canonical text: one `frame,quality,pdq,timestamp` line per frame, newline-ended."""
    return "".join(
        f"{f.frame},{f.quality},{f.pdq},{format_timestamp(f.timestamp)}\n" for f in frames
    )


def parse_vpdq(text: str) -> list[VpdqFrame]:
    """Parse and validate vPDQ text; `ValueError` names the first bad line (1-based).

    Accepts exactly the canonical form, with `\\r\\n` line ends, hex in either case and a
    timestamp with any number of decimals (normalised to 3). Frame numbers must strictly
    increase, quality must be 0-100, and there must be at least one frame.
    """
    if not text.strip():
        raise ValueError("vpdq has no frames")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line
    frames: list[VpdqFrame] = []
    previous = -1
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        match = _LINE.fullmatch(line)
        if match is None:
            raise ValueError(
                f"vpdq line {number}: expected frame_number,quality,pdq_hex,timestamp"
                f" (got {line[:100]!r})"
            )
        frame, quality = int(match["frame"]), int(match["quality"])
        if quality > 100:
            raise ValueError(f"vpdq line {number}: quality {quality} is not in 0-100")
        if frame <= previous:
            raise ValueError(f"vpdq line {number}: frame number {frame} does not follow {previous}")
        timestamp = float(match["timestamp"])
        if not math.isfinite(timestamp):
            raise ValueError(f"vpdq line {number}: timestamp is not a finite number")
        previous = frame
        frames.append(VpdqFrame(frame, _round_timestamp(timestamp), quality, match["pdq"].lower()))
    return frames


def _round_timestamp(seconds: float) -> float:
    """The value the 3-decimal text stands for, so text and objects round-trip exactly."""
    return float(format_timestamp(seconds))


def hash_video(
    path: Path,
    limits: MediaLimits,
    *,
    seconds_per_hash: float = 1.0,
    width: int | None = None,
    height: int | None = None,
) -> list[VpdqFrame]:
    """vPDQ of a video file; raises `MediaError` when it cannot be decoded within the limits."""
    hashes: list[VpdqFrame] = []
    for frame in iter_frames(
        path, limits, seconds_per_hash=seconds_per_hash, width=width, height=height
    ):
        pdq, quality = pdq_from_pixels(frame.rgb)
        hashes.append(VpdqFrame(frame.index, _round_timestamp(frame.timestamp), quality, pdq))
    return hashes


def _usable_unique(frames: Iterable[VpdqFrame], quality_threshold: int) -> list[str]:
    """Hashes of the frames of sufficient quality, each distinct hash once, in order."""
    seen: dict[str, None] = {}
    for frame in frames:
        if frame.quality >= quality_threshold:
            seen.setdefault(frame.pdq.lower(), None)
    return list(seen)


def _as_words(hashes: Sequence[str]) -> NDArray[np.uint64]:
    """n x 4 array of 64-bit words, so XOR and popcount give Hamming distances."""
    raw = b"".join(bytes.fromhex(h) for h in hashes)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hashes), 4)


def compare_videos(
    query_frames: Iterable[VpdqFrame],
    compared_frames: Iterable[VpdqFrame],
    *,
    distance_threshold: int = DISTANCE_THRESHOLD,
    quality_threshold: int = QUALITY_THRESHOLD,
) -> VideoMatch:
    """Match two vPDQ hashes frame by frame (the reference's brute-force matcher).

    Frames below `quality_threshold` are dropped and identical hashes counted once; a frame
    matches when some frame of the other video is within `distance_threshold` (inclusive).
    Returns the percentage of each side's remaining frames that matched; 0 for both when
    either side has no usable frame.

    As python-threatexchange's `match_VPDQ_hash_brute` (and the field's rule of distance
    <= 31); the reference's C++ command-line matcher counts only distances strictly below the
    threshold. Quality is filtered before duplicates are dropped, so a low-quality copy of a
    hash never hides a usable one.
    """
    query = _usable_unique(query_frames, quality_threshold)
    compared = _usable_unique(compared_frames, quality_threshold)
    if not query or not compared:
        return VideoMatch(0.0, 0.0)
    query_words, compared_words = _as_words(query), _as_words(compared)
    compared_hit = np.zeros(len(compared), dtype=bool)
    query_hits = 0
    for start in range(0, len(query), _ROW_CHUNK):
        block = query_words[start : start + _ROW_CHUNK]
        distances = np.bitwise_count(block[:, None, :] ^ compared_words[None, :, :]).sum(
            axis=2, dtype=np.int32
        )
        close = distances <= distance_threshold
        query_hits += int(close.any(axis=1).sum())
        compared_hit |= close.any(axis=0)
    return VideoMatch(
        query_match_percent=query_hits * 100.0 / len(query),
        compared_match_percent=int(compared_hit.sum()) * 100.0 / len(compared),
    )


def videos_match(
    result: VideoMatch,
    compared_threshold: float = COMPARED_MATCH_PERCENT,
    query_threshold: float = QUERY_MATCH_PERCENT,
) -> bool:
    """Whether a comparison is a video match: both shares reach their thresholds."""
    return (
        result.compared_match_percent >= compared_threshold
        and result.query_match_percent >= query_threshold
    )


class VPDQSignal(SignalType):
    """vPDQ as a signal type. `default_threshold` is the per-frame Hamming distance."""

    name = "vpdq"
    media_types = frozenset({MediaType.VIDEO})
    default_threshold = DISTANCE_THRESHOLD
    max_threshold = 64
    min_quality = QUALITY_THRESHOLD

    def __init__(
        self,
        seconds_per_hash: float = 1.0,
        width: int | None = None,
        height: int | None = None,
        *,
        compared_match_percent: float = COMPARED_MATCH_PERCENT,
        query_match_percent: float = QUERY_MATCH_PERCENT,
    ) -> None:
        """`seconds_per_hash` 0 hashes every frame; `width`/`height` downsample first."""
        if not seconds_per_hash >= 0 or math.isinf(seconds_per_hash):
            raise ValueError("seconds_per_hash must be a finite number >= 0")
        for label, value in (("width", width), ("height", height)):
            if value is not None and value < MIN_HASHABLE_SIDE:
                raise ValueError(f"{label} must be at least {MIN_HASHABLE_SIDE}")
        for label, share in (
            ("compared_match_percent", compared_match_percent),
            ("query_match_percent", query_match_percent),
        ):
            if not 0 <= share <= 100:
                raise ValueError(f"{label} must be in 0-100")
        self.seconds_per_hash = seconds_per_hash
        self.width = width
        self.height = height
        self.compared_match_percent = compared_match_percent
        self.query_match_percent = query_match_percent

    def hash_file(self, path: Path, limits: MediaLimits) -> list[VpdqFrame]:
        """The per-frame hashes of a video file with this signal's settings."""
        return hash_video(
            path,
            limits,
            seconds_per_hash=self.seconds_per_hash,
            width=self.width,
            height=self.height,
        )

    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        """Hash the video. `fast` has no effect (it concerns image decoding only).

        The signal's quality is the best frame quality, so the quality rule (`usable`) says
        whether any frame of the video can take part in matching.
        """
        frames = self.hash_file(media.path, media.limits)
        return Signal(
            self.name,
            format_vpdq(frames),
            quality=max(f.quality for f in frames),
            detail=frames,
        )

    def parse(self, text: str) -> str:
        return format_vpdq(parse_vpdq(text))

    def compare(self, a: str, b: str, threshold: int | None = None) -> VideoMatch:
        """Compare vPDQ texts `a` (query) and `b` (compared) at a per-frame `threshold`."""
        limit = self.default_threshold if threshold is None else threshold
        return compare_videos(
            parse_vpdq(a),
            parse_vpdq(b),
            distance_threshold=limit,
            quality_threshold=self.min_quality,
        )

    def distance(self, a: str, b: str) -> int:
        """`round(100 - compared_match_percent)` for query `a` against compared video `b`.

        0 means every unique usable frame of `b` has a frame of `a` within 31 bits; 100 means
        none has. Not symmetric. Use `compare` for both shares and `matches` for the
        reference's video-match decision.
        """
        return round(100.0 - self.compare(a, b).compared_match_percent)

    def matches(self, a: str, b: str, threshold: int | None = None) -> bool:
        """The video-match rule: with frames matching at Hamming distance <= `threshold`
        (default 31), the compared share of `b` reaches `compared_match_percent` (80) and
        the query share of `a` reaches `query_match_percent` (0)."""
        return videos_match(
            self.compare(a, b, threshold),
            compared_threshold=self.compared_match_percent,
            query_threshold=self.query_match_percent,
        )
