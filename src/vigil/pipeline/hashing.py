"""Hash files into records: one `HashRecord` per file, never an exception out of a batch.

The same functions serve `vigil hash`, the demo and (later) the API and the backfill, so a file
is hashed the same way whichever door it came in by.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.config import MediaLimits
from vigil.media import ErrorCode, MediaError, MediaType, open_media
from vigil.signals import SIGNAL_TYPES, Signal, SignalType, get_signal_type
from vigil.signals.pdq_query import PDQWithQueriesSignal
from vigil.signals.vpdq import VPDQSignal

DEFAULT_SIGNALS: dict[MediaType, tuple[str, ...]] = {
    MediaType.IMAGE: ("md5", "sha256", "pdq"),
    MediaType.VIDEO: ("md5", "sha256", "vpdq"),
}
EXACT_SIGNALS = ("md5", "sha256")


@dataclass(frozen=True)
class HashOptions:
    """What to compute: signal names (None = the defaults per media type) and how."""

    signals: tuple[str, ...] | None = None
    fast_decode: bool = True
    vpdq_seconds_per_hash: float = 1.0
    pdq_query_variants: bool = False
    """Also compute PDQ's query-side variants (dihedral, trimmed, ...) for matching."""

    def __post_init__(self) -> None:
        for name in self.signals or ():
            get_signal_type(name)  # unknown names fail here, before any file is read

    def wanted(self, media_type: MediaType | None) -> tuple[str, ...]:
        """The signals to compute for a file of this type (only exact ones for unknown types)."""
        if media_type is None:
            return tuple(n for n in (self.signals or EXACT_SIGNALS) if n in EXACT_SIGNALS)
        return tuple(
            name
            for name in self.signals or DEFAULT_SIGNALS[media_type]
            if media_type in SIGNAL_TYPES[name].media_types
        )


@dataclass
class HashRecord:
    """The result for one file; `as_json()` gives exactly the documented keys."""

    path: str
    media_type: MediaType | None = None
    bytes: int | None = None
    signals: dict[str, Signal] = field(default_factory=dict)
    error: MediaError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self, name: str) -> str | None:
        signal = self.signals.get(name)
        return signal.value if signal else None

    def as_json(self) -> dict[str, Any]:
        pdq = self.signals.get("pdq")
        vpdq = self.signals.get("vpdq")
        return {
            "path": self.path,
            "media_type": self.media_type.value if self.media_type else None,
            "bytes": self.bytes,
            "md5": self.value("md5"),
            "sha256": self.value("sha256"),
            "pdq": pdq.value if pdq else None,
            "pdq_quality": pdq.quality if pdq else None,
            "vpdq": [frame.as_json() for frame in vpdq.detail] if vpdq else None,
            "error": self.error.as_dict() if self.error else None,
        }


def hash_file(path: Path, limits: MediaLimits, options: HashOptions) -> HashRecord:
    """Hash one file. Exact digests are kept even when decoding fails, since a corrupt copy
    of known material still matches by MD5/SHA-256."""
    record = HashRecord(path=str(path))
    try:
        media = open_media(path, limits)
        record.bytes = media.size
        record.media_type = media.media_type
        for name in options.wanted(media.media_type):
            record.signals[name] = _signal_type(name, options).compute(
                media, fast=options.fast_decode
            )
        if media.media_type is None:
            raise MediaError(
                ErrorCode.UNSUPPORTED_FORMAT, "not an image or video format Vigil decodes"
            )
    except MediaError as exc:
        record.error = exc
    except Exception as exc:  # a decoder bug must cost one file, not the batch
        record.error = MediaError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    return record


def _signal_type(name: str, options: HashOptions) -> SignalType:
    """The registered signal type, or the variant these options ask for (vPDQ at their
    sampling interval, PDQ with its query-side variants)."""
    if name == "vpdq":
        return VPDQSignal(seconds_per_hash=options.vpdq_seconds_per_hash)
    if name == "pdq" and options.pdq_query_variants:
        return PDQWithQueriesSignal()
    return get_signal_type(name)


def hash_files(
    paths: Iterable[Path], limits: MediaLimits, options: HashOptions, *, workers: int = 1
) -> Iterator[HashRecord]:
    """Hash files in input order, in `workers` processes (1 = in this process).

    A worker that dies (a decoder crash) costs only the file it was on: the pool is rebuilt,
    and the files that were in flight are retried one at a time to find the culprit.
    """
    if workers <= 1:
        for path in paths:
            yield hash_file(path, limits, options)
        return
    window = workers * 4
    pool = ProcessPoolExecutor(max_workers=workers)
    pending: list[tuple[Path, Future[HashRecord]]] = []
    try:
        iterator = iter(paths)
        while True:
            while len(pending) < window and (queued := next(iterator, None)) is not None:
                pending.append((queued, pool.submit(hash_file, queued, limits, options)))
            if not pending:
                return
            path, future = pending.pop(0)
            try:
                yield future.result()
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                for retry in [path, *(p for p, _ in pending)]:
                    yield _hash_isolated(retry, limits, options)
                pending.clear()
                pool = ProcessPoolExecutor(max_workers=workers)
    finally:
        pool.shutdown(cancel_futures=True)


def _hash_isolated(path: Path, limits: MediaLimits, options: HashOptions) -> HashRecord:
    with ProcessPoolExecutor(max_workers=1) as single:
        try:
            return single.submit(hash_file, path, limits, options).result()
        except BrokenProcessPool:
            return HashRecord(
                path=str(path),
                error=MediaError(ErrorCode.INTERNAL, "the decoder crashed on this file"),
            )


def default_workers() -> int:
    """One worker per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
