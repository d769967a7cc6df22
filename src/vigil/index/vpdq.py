"""vPDQ index: videos as sets of frame hashes, matched with the shares of `compare_videos`.

Each stored video keeps all its frames (hash and quality). Its **unique usable** frames
(quality >= 50, each distinct hash once, in order of first appearance: exactly the frames
`vigil.signals.vpdq.compare_videos` compares) are entries of an inner `PDQIndex`, numbered
by consecutive frame ids, so a frame id tells its video by binary search over the videos'
first frame ids.

A search takes the query's unique usable frames, finds every stored frame within the frame
threshold (exact, like the PDQ index), and for each video with at least one matching frame
counts the distinct frames of that video that matched (the compared share) and the distinct
query frames that matched it (the query share). Both are computed with the same arithmetic
as `compare_videos`, so the percentages are equal to it for every video returned; a video
with no frame within the threshold has a compared share of 0 and is never returned.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vigil.index._bits import PDQ_BYTES, HashInput, Ids, as_ids, pdq_array, to_words
from vigil.index._snapshot import SnapshotError, read_snapshot, write_snapshot
from vigil.index.pdq import PDQIndex
from vigil.signals.vpdq import (
    COMPARED_MATCH_PERCENT,
    DISTANCE_THRESHOLD,
    QUALITY_THRESHOLD,
    QUERY_MATCH_PERCENT,
    VpdqFrame,
)

SNAPSHOT_KIND = "vigil.vpdq-index"

FramesInput = Sequence[VpdqFrame] | tuple[HashInput, Sequence[int] | NDArray[np.integer[Any]]]
"""A video's frames: `VpdqFrame`s, or (hashes, qualities) with hashes as hex or n x 32 uint8."""


@dataclass(frozen=True, slots=True)
class VideoHit:
    """A stored video matching a query, with the shares of `compare_videos`."""

    video_id: int
    query_match_percent: float
    """Percent of the query's unique usable frames that matched a frame of the video."""
    compared_match_percent: float
    """Percent of the video's unique usable frames that matched a frame of the query."""


@dataclass(slots=True)
class _Video:
    first_frame: int
    usable: int
    """Unique usable frames (entries of the frame index)."""
    hashes: NDArray[np.uint8]
    qualities: NDArray[np.uint8]
    enabled: bool


def _frames_arrays(frames: FramesInput) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    if isinstance(frames, tuple):
        hashes, qualities = frames
        array = pdq_array(hashes)
        quality = np.asarray(qualities)
    else:
        listed = list(frames)
        array = pdq_array([frame.pdq for frame in listed])
        quality = np.array([frame.quality for frame in listed], dtype=np.int64)
    if quality.shape != (array.shape[0],):
        raise ValueError(f"{array.shape[0]} frame hashes for {quality.size} qualities")
    if quality.size and (int(quality.min()) < 0 or int(quality.max()) > 100):
        raise ValueError("frame quality must be 0-100")
    return array, quality.astype(np.uint8)


def unique_usable(
    hashes: NDArray[np.uint8], qualities: NDArray[np.uint8], quality_threshold: int
) -> NDArray[np.uint8]:
    """The frames `compare_videos` compares: quality >= threshold (filtered first), each
    distinct hash once, in order of first appearance."""
    usable = hashes[qualities >= quality_threshold]
    if not usable.shape[0]:
        return usable
    _, first = np.unique(usable.view(np.dtype((np.void, PDQ_BYTES))).ravel(), return_index=True)
    return usable[np.sort(first)]


class VPDQIndex:
    """Videos (caller's int64 ids) searchable by vPDQ frame matching; adding an id that is
    present replaces the video."""

    def __init__(self, *, quality_threshold: int = QUALITY_THRESHOLD) -> None:
        self.quality_threshold = quality_threshold
        self._frames = PDQIndex()
        self._videos: dict[int, _Video] = {}
        self._next_frame = 0
        self._starts: list[int] = []
        self._owners: list[int] = []
        self._start_array = np.zeros(0, dtype=np.int64)
        self._owner_array = np.zeros(0, dtype=np.int64)

    # -- updating ----------------------------------------------------------------------

    def add(self, video_id: int, frames: FramesInput, *, enabled: bool = True) -> None:
        """Add (or replace) a video's frames; visible to the next search."""
        self.add_many([video_id], [frames], enabled=enabled)

    def add_many(
        self, video_ids: Ids, videos: Sequence[FramesInput], *, enabled: bool = True
    ) -> None:
        """Add (or replace) several videos at once (one update of the frame index)."""
        ids = as_ids(video_ids)
        if ids.size != len(videos):
            raise ValueError(f"{ids.size} ids for {len(videos)} videos")
        if ids.size > 1 and np.unique(ids).size != ids.size:
            raise ValueError("the same id appears twice in one add")
        prepared = [_frames_arrays(frames) for frames in videos]
        self.remove(ids)
        frame_ids: list[NDArray[np.int64]] = []
        frame_hashes: list[NDArray[np.uint8]] = []
        for video_id, (hashes, qualities) in zip(ids.tolist(), prepared, strict=True):
            usable = unique_usable(hashes, qualities, self.quality_threshold)
            first = self._next_frame
            self._next_frame += usable.shape[0]
            self._videos[video_id] = _Video(first, usable.shape[0], hashes, qualities, enabled)
            if usable.shape[0]:  # a video without usable frames owns no frame id
                self._starts.append(first)
                self._owners.append(video_id)
            frame_ids.append(np.arange(first, self._next_frame, dtype=np.int64))
            frame_hashes.append(usable)
        self._start_array = np.array(self._starts, dtype=np.int64)
        self._owner_array = np.array(self._owners, dtype=np.int64)
        if frame_ids:
            self._frames.add(
                np.concatenate(frame_ids),
                np.concatenate(frame_hashes).reshape(-1, PDQ_BYTES),
                enabled=enabled,
            )

    def _frame_ids(self, video_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        parts = [np.zeros(0, dtype=np.int64)]
        for video_id in video_ids.tolist():
            video = self._videos.get(video_id)
            if video is not None:
                parts.append(
                    np.arange(video.first_frame, video.first_frame + video.usable, dtype=np.int64)
                )
        return np.concatenate(parts)

    def _present(self, video_ids: Ids) -> NDArray[np.int64]:
        """The given ids that are stored (vectorised: callers pass millions of other ids)."""
        ids = as_ids(video_ids)
        if not self._videos or not ids.size:
            return np.zeros(0, dtype=np.int64)
        stored = np.fromiter(self._videos, dtype=np.int64, count=len(self._videos))
        return np.intersect1d(ids, stored)

    def remove(self, video_ids: Ids) -> int:
        """Remove videos (unknown ids ignored); returns how many were removed."""
        ids = self._present(video_ids)
        if not ids.size:
            return 0
        self._frames.remove(self._frame_ids(ids))
        removed = 0
        for video_id in ids.tolist():
            if self._videos.pop(video_id, None) is not None:
                removed += 1
        if removed and len(self._starts) > 2 * len(self._videos) + 64:
            self._renumber_owners()
        return removed

    def _renumber_owners(self) -> None:
        """Drop the frame-id ranges of removed videos from the owner table."""
        pairs = sorted(
            (video.first_frame, video_id)
            for video_id, video in self._videos.items()
            if video.usable
        )
        self._starts = [first for first, _ in pairs]
        self._owners = [video_id for _, video_id in pairs]
        self._start_array = np.array(self._starts, dtype=np.int64)
        self._owner_array = np.array(self._owners, dtype=np.int64)

    def set_enabled(self, video_ids: Ids, enabled: bool) -> int:
        """Enable or disable videos (unknown ids ignored); returns how many were found."""
        ids = self._present(video_ids)
        self._frames.set_enabled(self._frame_ids(ids), enabled)
        found = 0
        for video_id in ids.tolist():
            video = self._videos.get(video_id)
            if video is not None:
                video.enabled = enabled
                found += 1
        return found

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._videos

    def frames(self, video_id: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]] | None:
        """A stored video's frames as (n x 32 hashes, qualities), or None when absent."""
        video = self._videos.get(video_id)
        return None if video is None else (video.hashes, video.qualities)

    def is_enabled(self, video_id: int) -> bool | None:
        video = self._videos.get(video_id)
        return None if video is None else video.enabled

    @property
    def frame_index(self) -> PDQIndex:
        """The inner index of unique usable frames (ids are internal frame numbers)."""
        return self._frames

    @property
    def nbytes(self) -> int:
        videos = sum(v.hashes.nbytes + v.qualities.nbytes + 120 for v in self._videos.values())
        return videos + self._frames.nbytes + 16 * len(self._starts)

    def search(
        self,
        query_frames: FramesInput,
        frame_threshold: int = DISTANCE_THRESHOLD,
        compared_share: float = COMPARED_MATCH_PERCENT,
        query_share: float = QUERY_MATCH_PERCENT,
    ) -> list[VideoHit]:
        """Enabled videos whose compared share reaches `compared_share` and query share
        `query_share`, frames matching at Hamming distance <= `frame_threshold`; best first
        (compared share, then query share, descending; then id)."""
        return self.search_many([query_frames], frame_threshold, compared_share, query_share)[0]

    def search_many(
        self,
        queries: Sequence[FramesInput],
        frame_threshold: int = DISTANCE_THRESHOLD,
        compared_share: float = COMPARED_MATCH_PERCENT,
        query_share: float = QUERY_MATCH_PERCENT,
    ) -> list[list[VideoHit]]:
        """`search` for several query videos with one frame-index search."""
        for label, share in (("compared_share", compared_share), ("query_share", query_share)):
            if not 0 <= share <= 100:
                raise ValueError(f"{label} must be in 0-100")
        uniques = []
        for frames in queries:
            hashes, qualities = _frames_arrays(frames)
            uniques.append(unique_usable(hashes, qualities, self.quality_threshold))
        counts = np.array([u.shape[0] for u in uniques], dtype=np.int64)
        results: list[list[VideoHit]] = [[] for _ in uniques]
        if not counts.sum() or not self._videos:
            return results
        owner_of_query_frame = np.repeat(np.arange(len(uniques), dtype=np.int64), counts)
        words = to_words(np.concatenate(uniques).reshape(-1, PDQ_BYTES))
        found = self._frames.search_words(words, frame_threshold)
        if not found.ids.size:
            return results
        videos = len(self._start_array)
        stored_frames = max(1, self._next_frame)
        # Distinct (query, stored frame) pairs, counted per (query, video): compared hits.
        matched = np.unique(owner_of_query_frame[found.query] * stored_frames + found.ids)
        number, frame = np.divmod(matched, stored_frames)
        slot = np.searchsorted(self._start_array, frame, side="right") - 1
        pairs, compared_hits = np.unique(number * videos + slot, return_counts=True)
        # Distinct (query frame, video) pairs, counted per (query, video): query hits.
        slot = np.searchsorted(self._start_array, found.ids, side="right") - 1
        matched = np.unique(found.query * videos + slot)
        query_frame, slot = np.divmod(matched, videos)
        query_pairs, query_hits = np.unique(
            owner_of_query_frame[query_frame] * videos + slot, return_counts=True
        )
        if not np.array_equal(pairs, query_pairs):  # pragma: no cover - both come from `pair`
            raise AssertionError("inconsistent frame match counts")
        for key, compared, matched in zip(
            pairs.tolist(), compared_hits.tolist(), query_hits.tolist(), strict=True
        ):
            number, position = divmod(key, videos)
            video_id = self._owners[position]
            video = self._videos[video_id]
            compared_percent = compared * 100.0 / video.usable
            query_percent = matched * 100.0 / int(counts[number])
            if compared_percent >= compared_share and query_percent >= query_share:
                results[number].append(VideoHit(video_id, query_percent, compared_percent))
        for hits in results:
            hits.sort(key=lambda h: (-h.compared_match_percent, -h.query_match_percent, h.video_id))
        return results

    # -- snapshots ---------------------------------------------------------------------

    def snapshot_arrays(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        ordered = sorted(self._videos.items(), key=lambda item: item[1].first_frame)
        lengths = np.array([v.hashes.shape[0] for _, v in ordered], dtype=np.int64)
        meta, frame_arrays = self._frames.snapshot_arrays()
        arrays: dict[str, NDArray[Any]] = {
            "video.ids": np.array([video_id for video_id, _ in ordered], dtype=np.int64),
            "video.first_frame": np.array([v.first_frame for _, v in ordered], dtype=np.int64),
            "video.usable": np.array([v.usable for _, v in ordered], dtype=np.int64),
            "video.lengths": lengths,
            "video.enabled": np.array([v.enabled for _, v in ordered], dtype=np.uint8),
            "video.hashes": np.concatenate(
                [np.zeros((0, PDQ_BYTES), np.uint8)] + [v.hashes for _, v in ordered]
            ),
            "video.qualities": np.concatenate(
                [np.zeros(0, np.uint8)] + [v.qualities for _, v in ordered]
            ),
        }
        arrays.update({f"frames.{name}": array for name, array in frame_arrays.items()})
        return {
            "quality_threshold": self.quality_threshold,
            "next_frame": self._next_frame,
            "frames": meta,
        }, arrays

    @classmethod
    def from_snapshot_arrays(
        cls, meta: dict[str, Any], arrays: dict[str, NDArray[Any]], source: str = "snapshot"
    ) -> VPDQIndex:
        try:
            index = cls(quality_threshold=int(meta["quality_threshold"]))
            index._next_frame = int(meta["next_frame"])
            frame_arrays = {
                name.removeprefix("frames."): array
                for name, array in arrays.items()
                if name.startswith("frames.")
            }
            index._frames = PDQIndex.from_snapshot_arrays(meta["frames"], frame_arrays, source)
            ids = arrays["video.ids"]
            first = arrays["video.first_frame"]
            usable = arrays["video.usable"]
            lengths = arrays["video.lengths"]
            hashes = arrays["video.hashes"]
            qualities = arrays["video.qualities"]
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, SnapshotError):
                raise
            raise SnapshotError(f"{source}: inconsistent vPDQ index snapshot ({error})") from error
        count = ids.shape[0]
        total = int(lengths.sum()) if lengths.size else 0
        if (
            any(a.shape != (count,) for a in (ids, first, usable, lengths))
            or hashes.shape != (total, PDQ_BYTES)
            or qualities.shape != (total,)
            or (count and (int(lengths.min()) < 0 or int(usable.min()) < 0))
            or (count > 1 and bool(np.any(first[1:] < first[:-1])))
            or (count and int(first[-1] + usable[-1]) > index._next_frame)
        ):
            raise SnapshotError(f"{source}: vPDQ index arrays have inconsistent shapes")
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        enabled = arrays.get("video.enabled", np.ones(count, np.uint8))
        if enabled.shape != (count,):
            raise SnapshotError(f"{source}: vPDQ index arrays have inconsistent shapes")
        for position, video_id in enumerate(ids.tolist()):
            index._videos[video_id] = _Video(
                int(first[position]),
                int(usable[position]),
                hashes[starts[position] : ends[position]],
                qualities[starts[position] : ends[position]],
                bool(enabled[position]),
            )
        if len(index._videos) != count:
            raise SnapshotError(f"{source}: vPDQ index snapshot repeats a video id")
        index._renumber_owners()
        return index

    def save(self, path: str | os.PathLike[str]) -> None:
        meta, arrays = self.snapshot_arrays()
        write_snapshot(path, SNAPSHOT_KIND, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VPDQIndex:
        meta, arrays = read_snapshot(path, SNAPSHOT_KIND)
        return cls.from_snapshot_arrays(meta, arrays, str(path))
