"""vPDQ: text format, video comparison, the signal type, and safe frame iteration.

Videos here are synthetic (a moving block texture encoded with PyAV), written to tmp dirs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from vigil.config import MediaLimits
from vigil.media import ErrorCode, MediaError, open_media
from vigil.media import video as video_module
from vigil.media.video import (
    VideoFrame,
    frame_step,
    iter_frames,
    reference_timestamp,
)
from vigil.signals import SIGNAL_TYPES, get_signal_type
from vigil.signals.pdq import hamming
from vigil.signals.vpdq import (
    VideoMatch,
    VpdqFrame,
    VPDQSignal,
    compare_videos,
    format_vpdq,
    hash_video,
    parse_vpdq,
    videos_match,
)

LIMITS = MediaLimits()
FPS = 10
FRAMES = 20
WIDTH, HEIGHT = 128, 96

# ----------------------------------------------------------------------------------------
# Synthetic videos
# ----------------------------------------------------------------------------------------


def _texture(seed: int = 7) -> NDArray[np.uint8]:
    """A textured RGB image (8 px blocks of random colours), larger than the frames."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(HEIGHT // 8 + 2, WIDTH // 8 + 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


def synthetic_frames(count: int = FRAMES) -> list[NDArray[np.uint8]]:
    """`count` frames of the texture panning right by 3 px a frame."""
    texture = _texture()
    return [np.ascontiguousarray(texture[:HEIGHT, 3 * i : 3 * i + WIDTH]) for i in range(count)]


def write_video(
    path: Path,
    *,
    container_format: str,
    codec: str,
    pix_fmt: str = "yuv420p",
    frames: int = FRAMES,
    fps: int = FPS,
    options: dict[str, str] | None = None,
) -> Path:
    with av.open(str(path), mode="w", format=container_format, options=options or {}) as out:
        stream: Any = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
        for array in synthetic_frames(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


# (file name, container format, codec, pixel format)
CONTAINERS = [
    ("h264.mp4", "mp4", "libx264", "yuv420p"),
    ("mpeg4.mp4", "mp4", "mpeg4", "yuv420p"),
    ("h264.mkv", "matroska", "libx264", "yuv420p"),
    ("vp8.webm", "webm", "libvpx", "yuv420p"),
    ("vp9.webm", "webm", "libvpx-vp9", "yuv420p"),
    ("mpeg4.avi", "avi", "mpeg4", "yuv420p"),
    ("h264.mov", "mov", "libx264", "yuv420p"),
    ("mjpeg.mov", "mov", "mjpeg", "yuvj420p"),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every synthetic container whose encoder this PyAV build has, by file name."""
    folder = tmp_path_factory.mktemp("videos")
    made: dict[str, Path] = {}
    for name, container_format, codec, pix_fmt in CONTAINERS:
        if _has_encoder(codec):
            made[name] = write_video(
                folder / name, container_format=container_format, codec=codec, pix_fmt=pix_fmt
            )
    # Same video with the MP4 index first (a "fast start" file), and a raw H.264 stream,
    # which declares neither duration nor frame count.
    if _has_encoder("libx264"):
        made["faststart.mp4"] = write_video(
            folder / "faststart.mp4",
            container_format="mp4",
            codec="libx264",
            options={"movflags": "faststart"},
        )
        made["raw.h264"] = write_video(
            folder / "raw.h264", container_format="h264", codec="libx264"
        )
    return made


def _video(videos: dict[str, Path], name: str) -> Path:
    if name not in videos:
        pytest.skip(f"this PyAV build cannot encode {name}")
    return videos[name]


def _any_mp4(videos: dict[str, Path]) -> Path:
    for name in ("h264.mp4", "mpeg4.mp4"):
        if name in videos:
            return videos[name]
    pytest.skip("no MP4 encoder in this PyAV build")


def _error(call: Callable[[], object]) -> MediaError:
    with pytest.raises(MediaError) as caught:
        call()
    return caught.value


def _frames(path: Path, limits: MediaLimits = LIMITS, **kwargs: Any) -> list[VideoFrame]:
    kwargs.setdefault("seconds_per_hash", 0)
    return list(iter_frames(path, limits, **kwargs))


# ----------------------------------------------------------------------------------------
# Frame selection rules
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_per_hash", "frame_rate", "step"),
    [
        (0, 30.0, 1),
        (1, 30.0, 30),
        (1, 29.97, 29),  # truncated, like the reference's int conversion
        (0.5, 10.0, 5),
        (2, 25.0, 50),
        (1, 0.5, 1),  # less than a frame per interval: every frame
        (0.01, 30.0, 1),
    ],
)
def test_frame_step_follows_the_reference(
    seconds_per_hash: float, frame_rate: float, step: int
) -> None:
    assert frame_step(seconds_per_hash, frame_rate) == step


def test_reference_timestamp_is_frame_over_rate() -> None:
    assert reference_timestamp(0, 30.0) == 0.0
    assert f"{reference_timestamp(1, 30.0):.3f}" == "0.033"
    assert f"{reference_timestamp(2, 30.0):.3f}" == "0.067"
    assert reference_timestamp(30, 30.0) == 1.0


# ----------------------------------------------------------------------------------------
# Text format
# ----------------------------------------------------------------------------------------

HEX = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
OTHER_HEX = "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c"

hex_hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def frame_lists(draw: st.DrawFn, min_size: int = 1) -> list[VpdqFrame]:
    gaps = draw(st.lists(st.integers(1, 1000), min_size=min_size, max_size=30))
    frames: list[VpdqFrame] = []
    number = draw(st.integers(0, 10)) - 1
    for gap in gaps:
        number += gap
        frames.append(
            VpdqFrame(
                frame=number,
                timestamp=draw(st.integers(0, 10**9)) / 1000,
                quality=draw(st.integers(0, 100)),
                pdq=draw(hex_hashes),
            )
        )
    return frames


def test_format_is_the_reference_line_format() -> None:
    frames = [VpdqFrame(0, 0.0, 100, HEX), VpdqFrame(1, 0.033, 98, OTHER_HEX)]
    assert format_vpdq(frames) == f"0,100,{HEX},0.000\n1,98,{OTHER_HEX},0.033\n"


@given(frame_lists())
def test_format_parse_round_trip(frames: list[VpdqFrame]) -> None:
    text = format_vpdq(frames)
    assert parse_vpdq(text) == frames
    assert format_vpdq(parse_vpdq(text)) == text


def test_parse_normalises() -> None:
    text = f"0,100,{HEX.upper()},0\r\n5,40,{OTHER_HEX},0.16666"
    assert parse_vpdq(text) == [VpdqFrame(0, 0.0, 100, HEX), VpdqFrame(5, 0.167, 40, OTHER_HEX)]
    assert VPDQSignal().parse(text) == f"0,100,{HEX},0.000\n5,40,{OTHER_HEX},0.167\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"0,100,{HEX},0.000\n1,100,{HEX}", 2),  # missing field
        (f"0,100,{HEX},0.000,7", 1),  # extra field
        (f"0,100,{HEX[:-1]},0.000", 1),  # short hash
        (f"0,100,{HEX[:-1]}g,0.000", 1),  # not hex
        (f"0,101,{HEX},0.000", 1),  # quality out of range
        (f"0,-1,{HEX},0.000", 1),
        (f"0,100,{HEX},-0.5", 1),  # negative timestamp
        (f"0,100,{HEX},nan", 1),
        (f"0,100,{HEX},0.000\n3,100,{HEX},0.1\n3,100,{HEX},0.1", 3),  # repeated frame
        (f"0,100,{HEX},0.000\n3,100,{HEX},0.1\n2,100,{HEX},0.1", 3),  # decreasing frame
        (f"0,100,{HEX},0.000\n\n1,100,{HEX},0.1", 2),  # blank line
        (f" 0,100,{HEX},0.000", 1),  # stray whitespace
        (f"x,100,{HEX},0.000", 1),
        (f"00,100,{HEX},0.000", 1),  # leading zero
    ],
)
def test_parse_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ValueError, match=rf"line {line}\b"):
        parse_vpdq(text)


@pytest.mark.parametrize("text", ["", "\n"])
def test_parse_rejects_no_frames(text: str) -> None:
    with pytest.raises(ValueError, match="no frames"):
        parse_vpdq(text)


@given(st.text(max_size=300))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        frames = parse_vpdq(text)
    except ValueError:
        return
    assert frames  # accepted text has frames and round-trips
    assert parse_vpdq(format_vpdq(frames)) == frames


# ----------------------------------------------------------------------------------------
# Comparing videos
# ----------------------------------------------------------------------------------------


def _flip(value: str, bits: int) -> str:
    """`value` with its lowest `bits` bits inverted (Hamming distance `bits`)."""
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def _video_of(hashes: list[str], quality: int = 100) -> list[VpdqFrame]:
    return [VpdqFrame(i, i / 10, quality, h) for i, h in enumerate(hashes)]


def _random_hashes(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [rng.bytes(32).hex() for _ in range(count)]


def test_identical_videos_match_fully() -> None:
    frames = _video_of(_random_hashes(20, seed=1))
    assert compare_videos(frames, frames) == VideoMatch(100.0, 100.0)


def test_unrelated_videos_do_not_match() -> None:
    # Random 256-bit hashes are ~128 bits apart; none is within 31.
    result = compare_videos(_video_of(_random_hashes(20, 1)), _video_of(_random_hashes(30, 2)))
    assert result == VideoMatch(0.0, 0.0)
    assert not videos_match(result)


def test_distance_threshold_is_inclusive() -> None:
    query = _video_of([HEX])
    assert compare_videos(query, _video_of([_flip(HEX, 31)])) == VideoMatch(100.0, 100.0)
    assert compare_videos(query, _video_of([_flip(HEX, 32)])) == VideoMatch(0.0, 0.0)
    assert compare_videos(query, _video_of([_flip(HEX, 32)]), distance_threshold=32) == (
        VideoMatch(100.0, 100.0)
    )


def test_low_quality_frames_take_no_part() -> None:
    hashes = _random_hashes(4, seed=3)
    query = _video_of(hashes)
    compared = [*_video_of(hashes[:2]), *_video_of(_random_hashes(2, seed=4), quality=49)]
    # The two low-quality frames of `compared` are ignored: all its usable frames match.
    result = compare_videos(query, compared)
    assert result == VideoMatch(50.0, 100.0)
    # Quality exactly at the threshold counts.
    assert compare_videos(query, _video_of(hashes, quality=50)) == VideoMatch(100.0, 100.0)
    # Nothing usable on one side: no match at all.
    assert compare_videos(query, _video_of(hashes, quality=10)) == VideoMatch(0.0, 0.0)
    assert compare_videos([], query) == VideoMatch(0.0, 0.0)


def test_identical_hashes_count_once() -> None:
    a, b, c = _random_hashes(3, seed=5)
    query = _video_of([a, a, a, a, b])  # unique: a, b
    compared = _video_of([a, c])
    assert compare_videos(query, compared) == VideoMatch(50.0, 50.0)


def test_clip_inside_a_longer_video() -> None:
    long_video = _random_hashes(10, seed=6)
    clip = _video_of([_flip(h, 5) for h in long_video[2:4]])
    result = compare_videos(clip, _video_of(long_video))
    assert result == VideoMatch(100.0, 20.0)
    assert not videos_match(result)  # only 20% of the compared video is covered
    assert videos_match(compare_videos(_video_of(long_video), clip))


def test_videos_match_thresholds() -> None:
    assert videos_match(VideoMatch(0.0, 80.0))
    assert not videos_match(VideoMatch(100.0, 79.9))
    assert not videos_match(VideoMatch(10.0, 90.0), query_threshold=20.0)
    assert videos_match(VideoMatch(10.0, 50.0), compared_threshold=50.0)


def test_compare_handles_more_frames_than_one_block() -> None:
    hashes = _random_hashes(600, seed=8)
    result = compare_videos(_video_of(hashes), _video_of(hashes[::-1][:300]))
    assert result == VideoMatch(50.0, 100.0)


@settings(max_examples=50, deadline=None)
@given(frame_lists(), frame_lists(), st.integers(0, 256))
def test_compare_swapping_sides_swaps_shares(
    query: list[VpdqFrame], compared: list[VpdqFrame], threshold: int
) -> None:
    forward = compare_videos(query, compared, distance_threshold=threshold)
    backward = compare_videos(compared, query, distance_threshold=threshold)
    assert forward.query_match_percent == backward.compared_match_percent
    assert forward.compared_match_percent == backward.query_match_percent
    for share in (forward.query_match_percent, forward.compared_match_percent):
        assert 0.0 <= share <= 100.0


@settings(max_examples=50, deadline=None)
@given(frame_lists())
def test_compare_agrees_with_brute_force(frames: list[VpdqFrame]) -> None:
    # Pair every frame with a near or far variant; check against a direct loop.
    compared = [
        VpdqFrame(f.frame, f.timestamp, f.quality, _flip(f.pdq, (f.frame * 7) % 64)) for f in frames
    ]

    def unique(side: list[VpdqFrame]) -> list[str]:
        return list(dict.fromkeys(f.pdq for f in side if f.quality >= 50))

    q, c = unique(frames), unique(compared)
    expected_q = sum(any(hamming(x, y) <= 31 for y in c) for x in q)
    expected_c = sum(any(hamming(y, x) <= 31 for x in q) for y in c)
    result = compare_videos(frames, compared)
    if q and c:
        assert result == VideoMatch(expected_q * 100 / len(q), expected_c * 100 / len(c))
    else:
        assert result == VideoMatch(0.0, 0.0)


# ----------------------------------------------------------------------------------------
# The signal type
# ----------------------------------------------------------------------------------------


def test_vpdq_is_registered() -> None:
    signal = get_signal_type("vpdq")
    assert isinstance(signal, VPDQSignal)
    assert SIGNAL_TYPES["vpdq"] is signal
    assert (signal.default_threshold, signal.max_threshold, signal.min_quality) == (31, 64, 50)
    assert signal.seconds_per_hash == 1.0


def test_signal_distance_and_matches() -> None:
    signal = VPDQSignal()
    hashes = _random_hashes(10, seed=9)
    full = format_vpdq(_video_of(hashes))
    part = format_vpdq(_video_of(hashes[:5]))
    assert signal.distance(full, full) == 0
    assert signal.matches(full, full)
    # Query `part` covers half of `full`: 50% of the compared video, not a match.
    assert signal.distance(part, full) == 50
    assert not signal.matches(part, full)
    # Query `full` covers all of `part`.
    assert signal.distance(full, part) == 0
    assert signal.matches(full, part)
    assert VPDQSignal(compared_match_percent=50.0).matches(part, full)
    assert not VPDQSignal(query_match_percent=60.0).matches(part, full)
    near = format_vpdq(_video_of([_flip(h, 20) for h in hashes]))
    assert signal.matches(near, full)
    assert not signal.matches(near, full, threshold=10)
    with pytest.raises(ValueError, match="line 1"):
        signal.distance("junk", full)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds_per_hash": -1.0},
        {"seconds_per_hash": float("nan")},
        {"seconds_per_hash": float("inf")},
        {"width": 4},
        {"height": 0},
        {"compared_match_percent": 101.0},
        {"query_match_percent": -1.0},
    ],
)
def test_signal_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VPDQSignal(**kwargs)  # type: ignore[arg-type]


def test_signal_compute(videos: dict[str, Path]) -> None:
    path = _any_mp4(videos)
    media = open_media(path, LIMITS)
    signal = VPDQSignal(seconds_per_hash=0.5).compute(media, fast=True)
    frames = signal.detail
    assert signal.signal_type == "vpdq"
    assert [f.frame for f in frames] == [0, 5, 10, 15]
    assert [f.timestamp for f in frames] == [0.0, 0.5, 1.0, 1.5]
    assert signal.value == format_vpdq(frames)
    assert parse_vpdq(signal.value) == frames
    assert signal.quality == max(f.quality for f in frames)
    assert frames[0].as_json() == {
        "frame": 0,
        "timestamp": 0.0,
        "quality": frames[0].quality,
        "pdq": frames[0].pdq,
    }
    # The same file hashed twice gives the same value.
    assert VPDQSignal(seconds_per_hash=0.5).compute(media, fast=False).value == signal.value


# ----------------------------------------------------------------------------------------
# Frame iteration across containers
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [c[0] for c in CONTAINERS])
def test_containers_every_frame(videos: dict[str, Path], name: str) -> None:
    frames = _frames(_video(videos, name), seconds_per_hash=0)
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [f"{f.timestamp:.3f}" for f in frames] == [f"{i / FPS:.3f}" for i in range(FRAMES)]
    for frame in frames:
        assert frame.rgb.shape == (HEIGHT, WIDTH, 3)
        assert frame.rgb.dtype == np.uint8
        assert frame.rgb.flags.c_contiguous
    # The pixels are the synthetic frames, give or take compression.
    error = np.abs(frames[3].rgb.astype(int) - synthetic_frames(4)[3].astype(int)).mean()
    assert error < 20


@pytest.mark.parametrize("name", [c[0] for c in CONTAINERS])
@pytest.mark.parametrize(
    ("seconds_per_hash", "expected"),
    [(1.0, [0, 10]), (0.5, [0, 5, 10, 15]), (0.3, [0, 3, 6, 9, 12, 15, 18]), (0.05, None)],
)
def test_containers_seconds_per_hash(
    videos: dict[str, Path], name: str, seconds_per_hash: float, expected: list[int] | None
) -> None:
    frames = _frames(_video(videos, name), seconds_per_hash=seconds_per_hash)
    assert [f.index for f in frames] == (expected or list(range(FRAMES)))
    assert [f.timestamp for f in frames] == [reference_timestamp(f.index, FPS) for f in frames]


@pytest.mark.parametrize(("width", "height"), [(64, 48), (128, 128), (32, None), (None, 20)])
def test_downsample(videos: dict[str, Path], width: int | None, height: int | None) -> None:
    frames = _frames(_any_mp4(videos), seconds_per_hash=1, width=width, height=height)
    assert len(frames) == 2
    assert frames[0].rgb.shape == (height or HEIGHT, width or WIDTH, 3)


def test_the_same_video_matches_across_containers(videos: dict[str, Path]) -> None:
    reference = hash_video(_any_mp4(videos), LIMITS, seconds_per_hash=0)
    assert min(f.quality for f in reference) >= 50  # the texture hashes well
    for name, path in videos.items():
        other = hash_video(path, LIMITS, seconds_per_hash=0)
        result = compare_videos(reference, other)
        assert videos_match(result), (name, result)
        assert result.compared_match_percent == 100.0, (name, result)


def test_raw_stream_without_duration(videos: dict[str, Path]) -> None:
    frames = _frames(_video(videos, "raw.h264"), seconds_per_hash=0)
    assert len(frames) == FRAMES


def test_bad_arguments_raise_at_once(videos: dict[str, Path]) -> None:
    path = _any_mp4(videos)
    with pytest.raises(ValueError):
        iter_frames(path, LIMITS, seconds_per_hash=-1)
    with pytest.raises(ValueError):
        iter_frames(path, LIMITS, seconds_per_hash=1, width=2)


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert _error(lambda: _frames(tmp_path / "absent.mp4")).code is ErrorCode.NOT_FOUND


def test_directory(tmp_path: Path) -> None:
    assert _error(lambda: _frames(tmp_path)).code is ErrorCode.UNREADABLE


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert _error(lambda: _frames(path)).code is ErrorCode.EMPTY


def test_tiny_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.mp4"
    path.write_bytes(b"\x00")
    assert _error(lambda: _frames(path)).code is ErrorCode.UNSUPPORTED_FORMAT


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(np.random.default_rng(1).bytes(20_000))
    assert _error(lambda: _frames(path)).code is ErrorCode.UNSUPPORTED_FORMAT


def test_random_bytes_after_an_mp4_header(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    header = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
    path.write_bytes(header + np.random.default_rng(2).bytes(20_000))
    assert _error(lambda: _frames(path)).code is ErrorCode.CORRUPT


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video at all\n" * 100)
    assert _error(lambda: _frames(path)).code is ErrorCode.UNSUPPORTED_FORMAT


TRUNCATABLE = [c[0] for c in CONTAINERS] + ["faststart.mp4"]


@pytest.mark.parametrize("name", TRUNCATABLE)
@pytest.mark.parametrize("keep", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated(videos: dict[str, Path], tmp_path: Path, name: str, keep: float) -> None:
    data = _video(videos, name).read_bytes()
    path = tmp_path / f"cut-{name}"
    path.write_bytes(data[: int(len(data) * keep)])
    assert _error(lambda: _frames(path)).code is ErrorCode.TRUNCATED


def test_streamed_matroska_of_unknown_size(videos: dict[str, Path], tmp_path: Path) -> None:
    """A live-written Matroska file leaves its segment size open: not held against it."""
    data = bytearray(_video(videos, "h264.mkv").read_bytes())
    segment = data.index(b"\x18\x53\x80\x67")
    assert data[segment + 4] == 0x01  # PyAV writes an 8-byte size
    data[segment + 5 : segment + 12] = b"\xff" * 7
    path = tmp_path / "live.mkv"
    path.write_bytes(bytes(data))
    assert len(_frames(path)) == FRAMES


def test_truncated_inside_the_header(videos: dict[str, Path], tmp_path: Path) -> None:
    data = _video(videos, "faststart.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:200])
    assert _error(lambda: _frames(path)).code is ErrorCode.TRUNCATED


@pytest.mark.shared
def test_truncated_conformance_video(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "vpdq"
    source = source / "videos" / "chair-19-sd-bar.mp4"
    if not source.is_file():
        pytest.skip(f"{source} is absent (../shared is provided in CI)")
    data = source.read_bytes()
    path = tmp_path / "chair-cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    error = _error(lambda: _frames(path, seconds_per_hash=1))
    assert error.code is ErrorCode.TRUNCATED
    assert "MP4" in error.message


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    with av.open(str(path), mode="w", format="mp4") as out:
        stream: Any = out.add_stream("aac", rate=8000)
        samples = np.sin(np.arange(8000) / 10).astype(np.float32)[None, :]
        for start in range(0, 8000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate = 8000
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    error = _error(lambda: _frames(path))
    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "no video stream" in error.message


def test_too_small_to_hash(tmp_path: Path) -> None:
    path = tmp_path / "small.mkv"
    with av.open(str(path), mode="w", format="matroska") as out:
        stream: Any = out.add_stream("mpeg4", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 4, 4, "yuv420p"
        for _ in range(3):
            pixels = np.zeros((4, 4, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode(None))
    assert _error(lambda: _frames(path)).code is ErrorCode.UNSUPPORTED_FORMAT


# ----------------------------------------------------------------------------------------
# Limits
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv", "raw.h264", "mpeg4.avi"])
def test_too_many_frames(videos: dict[str, Path], name: str) -> None:
    path = _video(videos, name)
    limits = MediaLimits(max_video_frames=5)
    error = _error(lambda: _frames(path, limits))
    assert error.code is ErrorCode.TOO_MANY_FRAMES
    assert "VIGIL_MAX_VIDEO_FRAMES" in error.message
    assert len(_frames(path, MediaLimits(max_video_frames=FRAMES))) == FRAMES


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv", "raw.h264", "vp8.webm"])
def test_too_long(videos: dict[str, Path], name: str) -> None:
    path = _video(videos, name)
    error = _error(lambda: _frames(path, MediaLimits(max_video_seconds=0.5)))
    assert error.code is ErrorCode.VIDEO_TOO_LONG
    assert "VIGIL_MAX_VIDEO_SECONDS" in error.message


def test_too_long_while_decoding(videos: dict[str, Path]) -> None:
    # A raw stream declares no duration: the limit is enforced frame by frame.
    path = _video(videos, "raw.h264")
    seen: list[int] = []
    with pytest.raises(MediaError) as caught:
        for frame in iter_frames(path, MediaLimits(max_video_seconds=0.5), seconds_per_hash=0):
            seen.append(frame.index)
    assert caught.value.code is ErrorCode.VIDEO_TOO_LONG
    assert seen  # some frames came out before the limit was reached


def test_timeout(videos: dict[str, Path]) -> None:
    path = _any_mp4(videos)
    error = _error(lambda: _frames(path, MediaLimits(video_timeout_seconds=1e-9)))
    assert error.code is ErrorCode.TIMEOUT


def test_frame_size_limit(videos: dict[str, Path]) -> None:
    path = _any_mp4(videos)
    error = _error(lambda: _frames(path, MediaLimits(max_image_pixels=WIDTH * HEIGHT - 1)))
    assert error.code is ErrorCode.TOO_MANY_PIXELS
    # The downsample size is held to the same limit.
    limits = MediaLimits(max_image_pixels=WIDTH * HEIGHT)
    error = _error(lambda: _frames(path, limits, width=WIDTH + 8, height=HEIGHT))
    assert error.code is ErrorCode.TOO_MANY_PIXELS
    assert len(_frames(path, limits)) == FRAMES


def test_file_size_limit(videos: dict[str, Path]) -> None:
    path = _any_mp4(videos)
    error = _error(lambda: _frames(path, MediaLimits(max_file_bytes=100)))
    assert error.code is ErrorCode.TOO_LARGE


# ----------------------------------------------------------------------------------------
# Robustness: the container is always closed and only MediaError escapes
# ----------------------------------------------------------------------------------------


class _Tracked:
    """Wraps a PyAV container and records whether it was closed."""

    def __init__(self, inner: Any, log: list[_Tracked]) -> None:
        self._inner = inner
        self.closed = False
        log.append(self)

    def close(self) -> None:
        self.closed = True
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_Tracked]]:
    log: list[_Tracked] = []
    real_open = av.open

    def tracking_open(*args: Any, **kwargs: Any) -> _Tracked:
        return _Tracked(real_open(*args, **kwargs), log)

    monkeypatch.setattr(av, "open", tracking_open)  # the module vigil.media.video uses
    yield log


def test_container_closed_after_full_iteration(
    videos: dict[str, Path], opened: list[_Tracked]
) -> None:
    _frames(_any_mp4(videos))
    assert [c.closed for c in opened] == [True]


def test_container_closed_when_the_caller_stops_early(
    videos: dict[str, Path], opened: list[_Tracked]
) -> None:
    frames = iter_frames(_any_mp4(videos), LIMITS, seconds_per_hash=0)
    next(frames)
    assert [c.closed for c in opened] == [False]
    frames.close()  # type: ignore[attr-defined]
    assert [c.closed for c in opened] == [True]


def test_container_closed_on_errors(
    videos: dict[str, Path], opened: list[_Tracked], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _any_mp4(videos)
    _error(lambda: _frames(path, MediaLimits(max_video_frames=3)))
    _error(lambda: _frames(_video(videos, "raw.h264"), MediaLimits(max_video_seconds=0.5)))
    _error(lambda: _frames(path, MediaLimits(video_timeout_seconds=1e-9)))
    assert len(opened) == 3
    assert all(c.closed for c in opened)
    with monkeypatch.context() as patch:
        patch.setattr(video_module, "_to_rgb", _broken)
        _error(lambda: _frames(path))
    assert len(opened) == 4
    assert opened[-1].closed


def _broken(*args: Any, **kwargs: Any) -> NDArray[np.uint8]:
    raise RuntimeError("boom")


def test_unexpected_errors_become_internal(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video_module, "_to_rgb", _broken)
    error = _error(lambda: _frames(_any_mp4(videos)))
    assert error.code is ErrorCode.INTERNAL


@pytest.fixture(scope="module")
def fuzz_sources(videos: dict[str, Path]) -> list[bytes]:
    names = [n for n in ("faststart.mp4", "h264.mkv", "vp8.webm", "mpeg4.avi") if n in videos]
    return [videos[n].read_bytes() for n in names]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_damaged_videos_raise_only_media_error(
    fuzz_sources: list[bytes], tmp_path: Path, data: st.DataObject
) -> None:
    if not fuzz_sources:
        pytest.skip("no encoder for the fuzz sources")
    source = bytearray(data.draw(st.sampled_from(fuzz_sources)))
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(source) - 1), st.integers(0, 255)), max_size=40)
    )
    for position, value in edits:
        source[position] = value
    keep = data.draw(st.integers(1, len(source)))
    path = tmp_path / "fuzz.bin"
    path.write_bytes(bytes(source[:keep]))
    try:
        frames = _frames(path, MediaLimits(video_timeout_seconds=30), seconds_per_hash=0)
    except MediaError as error:
        assert error.code in set(ErrorCode)
        assert error.message
    else:
        for frame in frames:
            assert frame.rgb.ndim == 3 and frame.rgb.shape[2] == 3


def test_copying_a_video_does_not_change_its_hash(videos: dict[str, Path], tmp_path: Path) -> None:
    source = _any_mp4(videos)
    copy = tmp_path / "renamed.bin"
    shutil.copyfile(source, copy)
    assert hash_video(copy, LIMITS) == hash_video(source, LIMITS)
