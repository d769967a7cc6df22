"""Safe video frame iteration with PyAV, selecting and converting frames as vPDQ does.

The frame rules follow Meta's reference vPDQ (ThreatExchange `vpdq/cpp`, `filehasher.cpp`):

- the first video stream of the container is decoded; frames are numbered 0, 1, 2, ... in the
  order the decoder returns them (presentation order);
- the frame rate is the stream's average frame rate, or its base (`r_frame_rate`) when the
  average is unknown;
- with `seconds_per_hash` = s > 0 a frame is kept when `number % step == 0`, where
  `step = int(s * frame_rate)` (at least 1); s = 0 keeps every frame;
- a kept frame's timestamp is `number / frame_rate`, computed in single precision like the
  reference;
- kept frames are converted to RGB24 with swscale's area filter at the stream's size, or at
  the downsample width/height when given (each dimension separately).

Every failure on input from outside becomes a `MediaError` with a code; the container is
closed whatever happens, including when the caller stops iterating early.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation
from numpy.typing import NDArray

from vigil.config import MediaLimits
from vigil.media.errors import ErrorCode, MediaError
from vigil.media.sniff import SNIFF_BYTES, MediaType, sniff_media_type
from vigil.media.source import open_media

MIN_HASHABLE_SIDE = 5
"""The reference refuses frames narrower or lower than this (PDQ needs a few pixels)."""

INTERPOLATION = Interpolation.AREA
"""swscale filter of the current reference (`SWS_AREA`), also for the colour conversion alone.

Most sample hashes shipped with the reference were made by an earlier revision that used
`SWS_LANCZOS`; against those, frames differ by a few bits (well inside the conformance rule),
while hashes made by the current reference are reproduced bit for bit."""

# Top-level ISO base media (MP4/MOV) boxes: a known box running past the end of the file
# means the file was cut short (typically a phone recording with its `moov` index at the end).
_ISO_TOP_LEVEL_BOXES = frozenset(
    {
        b"ftyp",
        b"moov",
        b"mdat",
        b"free",
        b"skip",
        b"wide",
        b"uuid",
        b"pnot",
        b"moof",
        b"mfra",
        b"sidx",
        b"styp",
        b"meta",
        b"pdin",
        b"emsg",
        b"prft",
        b"ssix",
    }
)
_ISO_MAX_BOXES = 256
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_SEGMENT = 0x18538067
_EBML_PROBE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One selected frame: its number as the reference counts it, its time and its pixels."""

    index: int
    """0-based number of the frame among all decoded frames (not only the selected ones)."""
    timestamp: float
    """Seconds: `index / frame_rate` in single precision, as the reference computes it."""
    rgb: NDArray[np.uint8]
    """H x W x 3 uint8, C-contiguous."""


def frame_step(seconds_per_hash: float, frame_rate: float) -> int:
    """Keep every `frame_step(...)`-th frame: `int(seconds_per_hash * frame_rate)`, at least 1.

    0 seconds per hash keeps every frame; so does an interval shorter than one frame.
    """
    return max(1, int(seconds_per_hash * frame_rate))


def reference_timestamp(index: int, frame_rate: float) -> float:
    """`index / frame_rate` in single precision, the reference's timestamp of a frame."""
    return float(np.float32(index) / np.float32(frame_rate))


def iter_frames(
    path: Path,
    limits: MediaLimits,
    *,
    seconds_per_hash: float,
    width: int | None = None,
    height: int | None = None,
) -> Iterator[VideoFrame]:
    """Decode `path` and yield the frames vPDQ hashes, as RGB arrays.

    `seconds_per_hash` 0 yields every frame. `width` and `height`, when given, downsample each
    frame to that size before it is returned (the reference's downsample options); otherwise
    frames keep the stream's size.

    Limits (checked before decoding from the container's header where it says, and again
    while decoding): `max_video_seconds`, `max_video_frames` (all decoded frames count),
    `max_image_pixels` (frame size), `video_timeout_seconds` (wall clock from the first
    `next()` call, including the caller's time between frames; it is checked between packets,
    so one pathological packet can overrun it). Raises only `MediaError` once iterating, and
    `ValueError` at once for invalid arguments.
    """
    if not seconds_per_hash >= 0:  # also rejects NaN
        raise ValueError("seconds_per_hash must be >= 0")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value < MIN_HASHABLE_SIDE:
            raise ValueError(f"{name} must be at least {MIN_HASHABLE_SIDE}")
    return _frames(Path(path), limits, seconds_per_hash, width, height)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to decode and how, worked out from the container before decoding."""

    frame_rate: float
    step: int
    width: int
    height: int
    start_seconds: float


def _frames(
    path: Path,
    limits: MediaLimits,
    seconds_per_hash: float,
    width: int | None,
    height: int | None,
) -> Iterator[VideoFrame]:
    deadline = time.monotonic() + limits.video_timeout_seconds
    size = open_media(path, limits).size  # existence, emptiness and size limits
    cut = _cut_short_container(path, size)
    if cut is not None:
        raise MediaError(ErrorCode.TRUNCATED, cut)
    container = _open(path)
    try:
        try:
            stream = _video_stream(container)
            plan = _plan(container, stream, limits, seconds_per_hash, width, height)
        except MediaError:
            raise
        except Exception as exc:
            raise _unexpected(exc) from exc
        yield from _decode(container, stream, plan, limits, size, deadline)
    finally:
        with contextlib.suppress(Exception):  # closing must never mask the real outcome
            container.close()


def _open(path: Path) -> Any:
    """Open the container (header and stream probing only)."""
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except FileNotFoundError as exc:
        raise MediaError(ErrorCode.NOT_FOUND, f"{path} does not exist") from exc
    except (IsADirectoryError, PermissionError) as exc:
        raise MediaError(ErrorCode.UNREADABLE, f"cannot read {path}") from exc
    except av.error.EOFError as exc:
        raise MediaError(
            ErrorCode.TRUNCATED, "the file ends before its container header does"
        ) from exc
    except (av.error.InvalidDataError, av.error.DemuxerNotFoundError) as exc:
        raise _open_error(path) from exc
    except MemoryError as exc:
        raise MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to open") from exc
    except av.FFmpegError as exc:
        raise MediaError(ErrorCode.CORRUPT, f"cannot open the video: {_reason(exc)}") from exc
    except OSError as exc:
        raise MediaError(ErrorCode.UNREADABLE, f"cannot read {path}: {exc.strerror}") from exc
    except Exception as exc:
        raise _unexpected(exc) from exc


def _open_error(path: Path) -> MediaError:
    """Why FFmpeg could not make sense of the file: damaged, or not a video at all."""
    try:
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    except OSError:
        head = b""
    if sniff_media_type(head) is MediaType.VIDEO:
        return MediaError(ErrorCode.CORRUPT, "the video container is damaged")
    return MediaError(ErrorCode.UNSUPPORTED_FORMAT, "not a video format Vigil decodes")


def _cut_short_container(path: Path, size: int) -> str | None:
    """Why the container's own structure says the file is longer than it is, or None.

    Checks the sizes MP4/MOV top-level boxes, the Matroska/WebM segment and the AVI RIFF
    chunk declare: an upload or copy that was cut short fails here before any decoding,
    even where FFmpeg would quietly decode the frames that remain. Sizes a writer left
    open (streamed Matroska, an `mdat` running to the end) are not held against a file.
    """
    try:
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
            if head[4:8] == b"ftyp" or head[4:8] in _QUICKTIME_ATOMS:
                if _iso_box_runs_past_end(stream, size):
                    return "the file ends inside an MP4/MOV box"
            elif head.startswith(_EBML_MAGIC):
                if _matroska_segment_runs_past_end(stream, size):
                    return "the file ends inside its Matroska/WebM segment"
            elif head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                declared = int.from_bytes(head[4:8], "little")
                if declared and 8 + declared > size:
                    return "the file ends inside its AVI RIFF chunk"
    except OSError:
        return None
    return None


def _iso_box_runs_past_end(stream: Any, size: int) -> bool:
    """Whether an ISO-BMFF file's known top-level boxes say it is longer than it is."""
    offset = 0
    for _ in range(_ISO_MAX_BOXES):
        if offset + 8 > size:
            return False
        stream.seek(offset)
        header = stream.read(16)
        if len(header) < 8:
            return False
        box_size = int.from_bytes(header[:4], "big")
        box_type = header[4:8]
        if box_type not in _ISO_TOP_LEVEL_BOXES:
            return False
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                return True
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # the box runs to the end of the file
            return False
        if box_size < 8:
            return False
        if offset + box_size > size:
            return True
        offset += box_size
    return False


def _matroska_segment_runs_past_end(stream: Any, size: int) -> bool:
    """Whether a Matroska/WebM file's Segment element declares more bytes than remain."""
    stream.seek(0)
    data = stream.read(_EBML_PROBE_BYTES)
    header = _ebml_element(data, 0)
    if header is None:
        return False
    _, header_end = header  # the EBML header element, skipped whole
    segment = _ebml_element(data, header_end, expected_id=_MATROSKA_SEGMENT)
    if segment is None:
        return False
    declared, data_start = segment
    return declared >= 0 and data_start + declared > size


def _ebml_element(
    data: bytes, offset: int, expected_id: int | None = None
) -> tuple[int, int] | None:
    """(data size or -1 when unknown, offset after the element or after its header).

    For `expected_id` (the Segment) the offset returned is where its data starts; otherwise
    it is where the element ends. None when the bytes are not a well-formed element.
    """
    element_id = _ebml_vint(data, offset, keep_marker=True)
    if element_id is None:
        return None
    value, length = element_id
    if expected_id is not None and value != expected_id:
        return None
    element_size = _ebml_vint(data, offset + length, keep_marker=False)
    if element_size is None:
        return None
    declared, size_length = element_size
    data_start = offset + length + size_length
    if declared == (1 << (7 * size_length)) - 1:  # all ones: size unknown (streamed)
        declared = -1
    if expected_id is not None:
        return declared, data_start
    if declared < 0:
        return None
    return declared, data_start + declared


def _ebml_vint(data: bytes, offset: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at `offset`: (value, byte length)."""
    if offset >= len(data) or data[offset] == 0:
        return None
    first = data[offset]
    length = 8 - first.bit_length() + 1
    if offset + length > len(data):
        return None
    value = int.from_bytes(data[offset : offset + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length


def _video_stream(container: Any) -> Any:
    videos = container.streams.video
    if not videos:
        raise MediaError(ErrorCode.UNSUPPORTED_FORMAT, "the file has no video stream")
    stream = videos[0]  # the reference hashes the first video stream
    if stream.codec_context is None:
        raise MediaError(ErrorCode.UNSUPPORTED_FORMAT, "no decoder for the video codec")
    return stream


def _plan(
    container: Any,
    stream: Any,
    limits: MediaLimits,
    seconds_per_hash: float,
    width: int | None,
    height: int | None,
) -> _Plan:
    context = stream.codec_context
    source_width, source_height = int(context.width), int(context.height)
    if source_width <= 0 or source_height <= 0:
        raise MediaError(
            ErrorCode.CORRUPT, f"the video reports size {source_width}x{source_height}"
        )
    target_width, target_height = width or source_width, height or source_height
    for frame_width, frame_height in ((source_width, source_height), (target_width, target_height)):
        _check_pixels(frame_width, frame_height, limits)
    if min(target_width, target_height) < MIN_HASHABLE_SIDE:
        raise MediaError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"{target_width}x{target_height} frames are too small to hash"
            f" (at least {MIN_HASHABLE_SIDE}x{MIN_HASHABLE_SIDE})",
        )

    rate = _frame_rate(stream)
    if rate is None:
        raise MediaError(ErrorCode.CORRUPT, "the video's frame rate is unknown or zero")

    duration = _declared_seconds(container, stream)
    if duration is not None and duration > limits.max_video_seconds:
        raise _too_long(duration, limits)
    declared_frames = int(stream.frames or 0)
    if declared_frames > limits.max_video_frames:
        raise _too_many_frames(declared_frames, limits)

    start = 0.0
    if stream.start_time is not None and stream.time_base is not None:
        start = float(stream.start_time * stream.time_base)
    return _Plan(
        frame_rate=rate,
        step=frame_step(seconds_per_hash, rate),
        width=target_width,
        height=target_height,
        start_seconds=start,
    )


def _frame_rate(stream: Any) -> float | None:
    """The average frame rate, or the base rate when the average is unknown (reference rule)."""
    for rate in (stream.average_rate, stream.base_rate):
        if isinstance(rate, Fraction) and rate.denominator != 0 and rate.numerator != 0:
            value = float(rate)
            if value > 0 and np.isfinite(value):
                return value
    return None


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """Duration from the header: the video stream's when known, else the container's."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def _decode(
    container: Any,
    stream: Any,
    plan: _Plan,
    limits: MediaLimits,
    size: int,
    deadline: float,
) -> Iterator[VideoFrame]:
    number = 0
    packets = container.demux(stream)
    last_packet: Any = None
    while True:
        _check_deadline(deadline, limits)
        try:
            packet = next(packets)
        except StopIteration:
            break
        except MediaError:
            raise
        except Exception as exc:
            raise _decode_error(exc, last_packet, size, number) from exc
        last_packet = packet
        try:
            decoded = stream.decode(packet)
        except Exception as exc:
            raise _decode_error(exc, packet, size, number) from exc
        for frame in decoded:
            _check_pixels(frame.width, frame.height, limits)  # the size can change mid-stream
            if number + 1 > limits.max_video_frames:
                raise _too_many_frames(number + 1, limits)
            position = max(number / plan.frame_rate, _pts_seconds(frame, plan))
            if position > limits.max_video_seconds:
                raise _too_long(position, limits)
            if number % plan.step == 0:
                try:
                    rgb = _to_rgb(frame, plan)
                except Exception as exc:
                    raise _decode_error(exc, packet, size, number) from exc
                yield VideoFrame(number, reference_timestamp(number, plan.frame_rate), rgb)
                _check_deadline(deadline, limits)
            number += 1
        if _cut_short(packet, size):
            raise MediaError(
                ErrorCode.TRUNCATED, f"the file ends inside a video packet after {number} frames"
            )
    if number == 0:
        raise MediaError(ErrorCode.CORRUPT, "no video frame could be decoded")


def _to_rgb(frame: Any, plan: _Plan) -> NDArray[np.uint8]:
    converted = frame.reformat(
        width=plan.width, height=plan.height, format="rgb24", interpolation=INTERPOLATION
    )
    return np.ascontiguousarray(converted.to_ndarray(), dtype=np.uint8)


def _pts_seconds(frame: Any, plan: _Plan) -> float:
    """Presentation time relative to the stream start; 0 when the frame has none."""
    if frame.pts is None or frame.time_base is None:
        return 0.0
    return float(frame.pts * frame.time_base) - plan.start_seconds


def _cut_short(packet: Any, size: int) -> bool:
    """A packet the demuxer could only partly read because the file ends."""
    if packet is None or packet.size == 0 or not packet.is_corrupt:
        return False
    pos = packet.pos
    return pos is not None and pos >= 0 and pos + packet.size >= size


def _decode_error(exc: BaseException, packet: Any, size: int, frames: int) -> MediaError:
    """The error for a failure while demuxing or decoding, after `frames` good frames."""
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, MemoryError):
        return MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to decode")
    if not isinstance(exc, av.FFmpegError):
        return _unexpected(exc)
    where = f"after {frames} frames: {_reason(exc)}"
    if isinstance(exc, av.error.EOFError) or _cut_short(packet, size):
        return MediaError(ErrorCode.TRUNCATED, f"the file ends early, {where}")
    if isinstance(exc, av.error.DecoderNotFoundError | av.error.PatchWelcomeError):
        return MediaError(ErrorCode.UNSUPPORTED_FORMAT, f"cannot decode the video, {where}")
    return MediaError(ErrorCode.CORRUPT, f"the video is damaged, {where}")


def _unexpected(exc: BaseException) -> MediaError:
    if isinstance(exc, MemoryError):
        return MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to decode")
    return MediaError(ErrorCode.INTERNAL, f"unexpected {type(exc).__name__} while decoding")


def _reason(exc: BaseException) -> str:
    """FFmpeg's reason without the file name PyAV appends (names are not ours to echo)."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else type(exc).__name__


def _check_pixels(width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_image_pixels:
        raise MediaError(
            ErrorCode.TOO_MANY_PIXELS,
            f"{width}x{height} frames exceed the limit of {limits.max_image_pixels} pixels"
            " (VIGIL_MAX_IMAGE_PIXELS)",
        )


def _check_deadline(deadline: float, limits: MediaLimits) -> None:
    if time.monotonic() > deadline:
        raise MediaError(
            ErrorCode.TIMEOUT,
            f"decoding took longer than {limits.video_timeout_seconds:g} s"
            " (VIGIL_VIDEO_TIMEOUT_SECONDS)",
        )


def _too_long(seconds: float, limits: MediaLimits) -> MediaError:
    return MediaError(
        ErrorCode.VIDEO_TOO_LONG,
        f"the video lasts more than {limits.max_video_seconds:g} s"
        f" ({seconds:.1f} s seen; VIGIL_MAX_VIDEO_SECONDS)",
    )


def _too_many_frames(frames: int, limits: MediaLimits) -> MediaError:
    return MediaError(
        ErrorCode.TOO_MANY_FRAMES,
        f"the video has more than {limits.max_video_frames} frames"
        f" ({frames} seen; VIGIL_MAX_VIDEO_FRAMES)",
    )
