"""The online path: one upload from a platform, hashed, matched and recorded in one call.

The API's `/v1/hash`, `/v1/match` and the Hasher-Matcher-Actioner compatible routes all go
through here, so an upload is treated the same whichever route it came in by. Recording is
one transaction: the content, its signals, the upload event, the matches and the actions
they fire commit together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil.config import MediaLimits
from vigil.media import ErrorCode
from vigil.pipeline.hashing import HashOptions, HashRecord, hash_file
from vigil.pipeline.matching import BankMatcher, MatchOutcome
from vigil.pipeline.recording import record_content, record_matches
from vigil.pipeline.scan import scan_options
from vigil.review.queue import Flag, open_flag
from vigil.signals import get_signal_type
from vigil.store import Database, UploadEvent
from vigil.vault.media import MediaStore


class UploadRejected(Exception):
    """An upload Vigil cannot hash; nothing about it was stored. `code` is the media error
    code (`unsupported_format`, `too_large`, ...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Uploader:
    """Who uploaded the content, as the platform says: kept for reporting and legal process."""

    account_id: str | None = None
    screen_name: str | None = None
    ip_address: str | None = None
    event_time: datetime | None = None


@dataclass(frozen=True)
class MatchedUpload:
    """The result of `record_upload`: the hash record, what matched, and the stored ids."""

    record: HashRecord
    outcome: MatchOutcome
    content_id: int
    upload_id: int
    task_id: int | None = None
    """The review task a flag opened."""

    def as_json(self) -> dict[str, Any]:
        """The `vigil hash` record with `matches`, and the ids Vigil stored it under."""
        result = {
            **self.record.as_json(),
            "matches": [m.as_json() for m in self.outcome.matches],
            "content_id": self.content_id,
            "upload_id": self.upload_id,
        }
        if self.task_id is not None:
            result["task_id"] = self.task_id
        return result


def online_options(limits: MediaLimits, vpdq_seconds_per_hash: float) -> HashOptions:
    """What an upload is hashed with: everything a bank can hold, PDQ's query variants."""
    return scan_options(fast_decode=limits.fast_decode, vpdq_seconds_per_hash=vpdq_seconds_per_hash)


def hash_upload(path: Path, name: str, limits: MediaLimits, options: HashOptions) -> HashRecord:
    """Hash an uploaded file; `name` (the upload's file name or URL) replaces the temporary
    path in the record. Raises `UploadRejected` for anything that is not a decodable image or
    video, since a half-hashed upload must not be recorded or answered as if matched."""
    record = hash_file(path, limits, options)
    record.path = name
    if record.error is not None:
        raise UploadRejected(record.error.code, record.error.message)
    return record


def record_upload(
    database: Database,
    record: HashRecord,
    outcome: MatchOutcome,
    *,
    content_ref: str | None = None,
    uploader: Uploader | None = None,
    token_id: int | None = None,
    write_lock: AbstractContextManager[Any] | None = None,
    media: tuple[MediaStore, Path] | None = None,
    flag: Flag | None = None,
) -> MatchedUpload:
    """Record a matched upload, with its upload event, the actions its matches fire and its
    review task, in one transaction. Matching (`BankMatcher.match`) is the caller's, so a
    server can run the CPU-bound part and the database part in separate queues. `write_lock`
    is held around the transaction only: a server passes one lock per process so its threads
    queue for SQLite's single writer in order instead of polling for it (which left some
    waiting for seconds). `media` (the store and the uploaded file) keeps a matched or
    flagged file for the reviewers before the transaction; a `flag` always opens a task."""
    uploader = uploader or Uploader()
    sha256 = record.value("sha256")
    if media is not None and sha256 is not None and (outcome.matches or flag is not None):
        store, path = media
        store.keep(path, sha256)
    with write_lock or nullcontext(), database.session(immediate=True) as session:
        content = record_content(session, record)
        event = UploadEvent(
            content_id=content.id,
            content_ref=content_ref,
            file_name=Path(record.path).name[-255:] or None,
            account_id=uploader.account_id,
            screen_name=uploader.screen_name,
            ip_address=uploader.ip_address,
            event_time=uploader.event_time,
            token_id=token_id,
        )
        session.add(event)
        session.flush()
        record_matches(session, content, outcome, upload_event=event)
        task_id = None
        if flag is not None:
            task_id = open_flag(
                session, content, flag, matches=outcome.matches, upload_event=event
            ).id
        return MatchedUpload(record, outcome, content.id, event.id, task_id)


@dataclass(frozen=True)
class HashQuery:
    """A hash given by value: its signal type and canonical value."""

    signal_type: str
    value: str


def parse_query(signal_type: str, value: str) -> HashQuery:
    """Validate a hash from outside; KeyError for an unknown type, ValueError (with the
    reason) for a malformed value."""
    kind = get_signal_type(signal_type.strip().lower())
    return HashQuery(kind.name, kind.parse(value))


def lookup_hashes(matcher: BankMatcher, queries: Sequence[HashQuery]) -> list[MatchOutcome]:
    """Match hashes given by value, in order, batched per signal type."""
    outcomes: list[MatchOutcome | None] = [None] * len(queries)
    by_type: dict[str, list[int]] = defaultdict(list)
    for position, query in enumerate(queries):
        by_type[query.signal_type].append(position)
    for signal_type, positions in by_type.items():
        found = matcher.lookup(signal_type, [queries[i].value for i in positions])
        for position, outcome in zip(positions, found, strict=True):
            outcomes[position] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


@dataclass(frozen=True)
class Comparison:
    signal_type: str
    distance: int
    threshold: int
    match: bool


def compare_hashes(a: HashQuery, b: HashQuery, threshold: int | None = None) -> Comparison:
    """Distance between two hashes of one type and whether they match at `threshold` (the
    type's default when None). For vPDQ the threshold is per frame and the distance is
    `100 - the share of b's frames matched`; the match is the reference video rule."""
    if a.signal_type != b.signal_type:
        raise ValueError("both hashes must be of the same signal type")
    kind = get_signal_type(a.signal_type)
    limit = kind.default_threshold if threshold is None else threshold
    if not 0 <= limit <= kind.max_threshold:
        raise ValueError(f"threshold must be 0-{kind.max_threshold}")
    distance = kind.distance(a.value, b.value)
    return Comparison(kind.name, distance, limit, kind.matches(a.value, b.value, limit))
