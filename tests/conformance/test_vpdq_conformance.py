"""vPDQ conformance against the reference's per-frame hashes in `../shared/conformance/vpdq`.

For every video: `expected/<name>.txt` (every frame hashed) and, where present,
`expected/<name>-128x128.txt` (frames downsampled to 128x128 before hashing). The reference
regression rule: the same number of frames with the same frame numbers, and a Hamming
distance below 31 for every frame pair where both qualities are >= 50. Timestamps must read
the same to the millisecond.

Hashing every frame of all the videos takes about a minute of CPU, so the videos the
selected tests need are hashed in parallel worker processes, one per core, and each test
waits only for its own.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from vigil.config import MediaLimits
from vigil.signals.pdq import hamming
from vigil.signals.vpdq import VpdqFrame, format_timestamp, hash_video, parse_vpdq

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
VPDQ_DIR = SHARED / "conformance" / "vpdq"
DISTANCE_BELOW = 31
QUALITY_AT_LEAST = 50
DOWNSAMPLED = 128


@dataclass(frozen=True)
class Case:
    video: str
    size: int | None  # downsample width and height; None = full size

    @property
    def video_path(self) -> Path:
        return VPDQ_DIR / "videos" / f"{self.video}.mp4"

    @property
    def expected_path(self) -> Path:
        suffix = "" if self.size is None else f"-{self.size}x{self.size}"
        return VPDQ_DIR / "expected" / f"{self.video}{suffix}.txt"

    @property
    def cost(self) -> float:
        """Rough relative hashing time, to start the longest jobs first."""
        size = self.video_path.stat().st_size
        return size if self.size is None else size / 4


def _cases() -> list[object]:
    videos = VPDQ_DIR / "videos"
    if not videos.is_dir():
        return [
            pytest.param(
                None,
                id="shared-absent",
                marks=pytest.mark.skip(
                    reason=f"conformance material not found at {VPDQ_DIR} (../shared is absent"
                    " in a fresh clone; CI provides it)"
                ),
            )
        ]
    cases: list[object] = []
    for video in sorted(videos.glob("*.mp4")):
        full = Case(video.stem, None)
        cases.append(pytest.param(full, id=video.stem))
        small = Case(video.stem, DOWNSAMPLED)
        if small.expected_path.is_file():
            cases.append(pytest.param(small, id=f"{video.stem}-{DOWNSAMPLED}x{DOWNSAMPLED}"))
    return cases


def _hash_job(case: Case) -> partial[list[VpdqFrame]]:
    """The hashing of one case as a picklable call into `vigil` (for worker processes)."""
    return partial(
        hash_video,
        case.video_path,
        MediaLimits(),
        seconds_per_hash=0,
        width=case.size,
        height=case.size,
    )


@pytest.fixture(scope="module")
def hashed(request: pytest.FixtureRequest) -> Iterator[dict[Case, Future[list[VpdqFrame]]]]:
    """Futures of the vPDQ hashes of every case selected in this run, computed in parallel."""
    selected: set[Case] = set()
    for item in request.session.items:
        if isinstance(item, pytest.Function) and item.module is request.module:
            case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
            if isinstance(case, Case):
                selected.add(case)
    wanted = sorted(selected, key=lambda case: -case.cost)
    if not wanted:
        yield {}
        return
    workers = max(1, min(len(wanted), os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {case: pool.submit(_hash_job(case)) for case in wanted}
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


@pytest.mark.shared
@pytest.mark.parametrize("case", _cases())
def test_vpdq_matches_reference(case: Case, hashed: dict[Case, Future[list[VpdqFrame]]]) -> None:
    assert case.expected_path.is_file(), f"missing reference hashes {case.expected_path}"
    expected = parse_vpdq(case.expected_path.read_text())
    future = hashed.get(case)
    got = future.result(timeout=600) if future is not None else _hash_job(case)()

    assert len(got) == len(expected), "frame count differs from the reference"
    assert [f.frame for f in got] == [f.frame for f in expected], "frame numbers differ"
    assert [format_timestamp(f.timestamp) for f in got] == [
        format_timestamp(f.timestamp) for f in expected
    ], "timestamps differ"

    compared = [
        (mine.frame, hamming(mine.pdq, ref.pdq))
        for mine, ref in zip(got, expected, strict=True)
        if mine.quality >= QUALITY_AT_LEAST and ref.quality >= QUALITY_AT_LEAST
    ]
    too_far = [(frame, distance) for frame, distance in compared if distance >= DISTANCE_BELOW]
    assert not too_far, f"frames at distance >= {DISTANCE_BELOW} (frame, distance): {too_far}"

    distances = [distance for _, distance in compared]
    print(
        f"{case.expected_path.name}: {len(got)} frames, {len(compared)} compared,"
        f" max distance {max(distances, default=0)},"
        f" identical {sum(d == 0 for d in distances)}"
    )
