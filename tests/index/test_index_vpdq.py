"""VPDQIndex gives exactly `compare_videos`' shares for every stored video (random hashes)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from vigil.index import VideoHit, VPDQIndex
from vigil.index.synthetic import flip_exactly, random_pdq
from vigil.signals.vpdq import VpdqFrame, compare_videos, videos_match


def make_video(rng: np.random.Generator, scenes: NDArray[np.uint8], frames: int) -> list[VpdqFrame]:
    """Frames drawn from a few scene hashes with a little noise, some repeated exactly, some of
    low quality (below 50), as real vPDQ output looks."""
    picks = scenes[rng.integers(0, scenes.shape[0], size=frames)]
    noisy = flip_exactly(rng, picks, rng.integers(0, 12, size=frames))
    repeat = rng.random(frames) < 0.3
    noisy[repeat] = picks[repeat]
    qualities = rng.choice(
        [0, 30, 49, 50, 80, 100], size=frames, p=[0.05, 0.05, 0.05, 0.15, 0.4, 0.3]
    )
    return [
        VpdqFrame(i, float(i), int(q), row.tobytes().hex())
        for i, (row, q) in enumerate(zip(noisy, qualities, strict=True))
    ]


def expected_hits(
    videos: dict[int, list[VpdqFrame]],
    query: list[VpdqFrame],
    threshold: int,
    compared_share: float,
    query_share: float,
) -> list[VideoHit]:
    hits = []
    for video_id, frames in videos.items():
        result = compare_videos(query, frames, distance_threshold=threshold)
        if result.compared_match_percent > 0 and videos_match(result, compared_share, query_share):
            hits.append(
                VideoHit(video_id, result.query_match_percent, result.compared_match_percent)
            )
    return sorted(
        hits, key=lambda h: (-h.compared_match_percent, -h.query_match_percent, h.video_id)
    )


@pytest.fixture(scope="module")
def library() -> tuple[dict[int, list[VpdqFrame]], list[list[VpdqFrame]]]:
    rng = np.random.default_rng(2024)
    stories = [random_pdq(rng, int(rng.integers(2, 8))) for _ in range(25)]
    videos: dict[int, list[VpdqFrame]] = {}
    for video_id in range(150):
        story = stories[video_id % len(stories)]
        videos[1_000 + video_id] = make_video(rng, story, int(rng.integers(1, 40)))
    videos[2_000] = [VpdqFrame(0, 0.0, 10, random_pdq(rng, 1)[0].tobytes().hex())]  # unusable
    queries = [make_video(rng, stories[i], int(rng.integers(1, 30))) for i in range(12)]
    queries.append(make_video(rng, random_pdq(rng, 3), 10))  # unrelated
    queries.append([VpdqFrame(0, 0.0, 20, stories[0][0].tobytes().hex())])  # no usable frame
    queries.append(videos[1_003][:5])  # part of a stored video
    return videos, queries


@pytest.mark.parametrize(
    ("threshold", "compared_share", "query_share"),
    [(31, 80.0, 0.0), (31, 50.0, 50.0), (10, 1e-9, 0.0), (0, 30.0, 0.0), (48, 100.0, 100.0)],
)
def test_search_equals_compare_videos_for_every_video(
    library: tuple[dict[int, list[VpdqFrame]], list[list[VpdqFrame]]],
    threshold: int,
    compared_share: float,
    query_share: float,
) -> None:
    videos, queries = library
    index = VPDQIndex()
    for video_id, frames in videos.items():
        index.add(video_id, frames)
    found = index.search_many(queries, threshold, compared_share, query_share)
    for query, hits in zip(queries, found, strict=True):
        assert hits == expected_hits(videos, query, threshold, compared_share, query_share)
        assert hits == index.search(query, threshold, compared_share, query_share)
    assert any(found), "the library should produce some matches"


def test_updates_and_array_input(
    library: tuple[dict[int, list[VpdqFrame]], list[list[VpdqFrame]]],
) -> None:
    videos, queries = library
    index = VPDQIndex()
    ids = list(videos)
    index.add_many(ids, [videos[i] for i in ids])
    query = videos[1_003]
    before = index.search(query, 31, 1.0)
    assert 1_003 in [h.video_id for h in before]
    index.set_enabled([1_003], False)
    assert 1_003 not in [h.video_id for h in index.search(query, 31, 1.0)]
    assert index.is_enabled(1_003) is False
    index.set_enabled([1_003], True)
    assert index.search(query, 31, 1.0) == before
    index.remove([1_003])
    assert 1_003 not in [h.video_id for h in index.search(query, 31, 1.0)] and 1_003 not in index
    # Replace a video with another's frames, given as (hashes, qualities) arrays.
    other = videos[1_004]
    hashes = np.stack([np.frombuffer(bytes.fromhex(f.pdq), np.uint8) for f in other])
    index.add(1_005, (hashes, [f.quality for f in other]))
    remaining = {k: v for k, v in videos.items() if k != 1_003}
    remaining[1_005] = other
    for q in queries:
        assert index.search(q, 31, 50.0) == expected_hits(remaining, q, 31, 50.0, 0.0)
    for _ in range(3):  # many removals renumber the frame owners
        index.remove(list(remaining)[:60])
        remaining = dict(list(remaining.items())[60:])
        for q in queries[:5]:
            assert index.search(q, 31, 50.0) == expected_hits(remaining, q, 31, 50.0, 0.0)


def test_bad_input_is_refused() -> None:
    index = VPDQIndex()
    with pytest.raises(ValueError, match="compared_share"):
        index.search([], 31, 120.0)
    with pytest.raises(ValueError, match="quality"):
        index.add(1, (["ab" * 32], [101]))
    with pytest.raises(ValueError, match="2 frame hashes for 1"):
        index.add(1, (["ab" * 32, "cd" * 32], [50]))
    assert index.search([], 31) == []
