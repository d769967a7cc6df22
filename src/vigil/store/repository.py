"""Writing and reading content and its signals.

`record_hashes` is the one write path for hashing results: it is idempotent (calling it
again with the same file changes nothing but `last_seen`), it works the same on SQLite and
PostgreSQL, and it survives two writers recording the same file at once (a lost insert race
is caught in a SAVEPOINT and turned into an update).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeAlias

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store.models import MEDIA_TYPES, Content, ContentSignal, value_digest
from vigil.store.types import utcnow

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")
_RACE_RETRIES = 3


class SignalLike(Protocol):
    """Anything with a signal's three fields, such as `vigil.signals.Signal`."""

    @property
    def signal_type(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def quality(self) -> int | None: ...


SignalInput: TypeAlias = tuple[str, str, int | None] | SignalLike
"""A signal to record: `(signal_type, value, quality)` or an object with those attributes."""


def _triple(item: SignalInput) -> tuple[str, str, int | None]:
    if isinstance(item, tuple):
        signal_type, value, quality = item
        return signal_type, value, quality
    return item.signal_type, item.value, item.quality


def get_content(session: Session, sha256: str) -> Content | None:
    """The content row of a file by its SHA-256 (hex, any case), or None."""
    return session.scalars(select(Content).where(Content.sha256 == sha256.lower())).one_or_none()


def find_signals(session: Session, signal_type: str, value: str) -> Sequence[ContentSignal]:
    """Every stored signal of `signal_type` whose value is exactly `value` (uses the index)."""
    return session.scalars(
        select(ContentSignal)
        .where(
            ContentSignal.signal_type == signal_type,
            ContentSignal.value_digest == value_digest(value),
            ContentSignal.value == value,
        )
        .order_by(ContentSignal.id)
    ).all()


def record_hashes(
    session: Session,
    *,
    sha256: str,
    md5: str | None,
    size: int,
    media_type: str | None,
    signals: Iterable[SignalInput] = (),
    now: datetime | None = None,
) -> Content:
    """Record one hashed file: upsert its content row and add the signals it lacks.

    The content row is found by `sha256`; a new one gets `first_seen = last_seen = now`, an
    existing one keeps `first_seen` and moves `last_seen` forward (never back). A missing
    `md5` or `media_type` is filled in; a signal already stored for the content (same type,
    same value) is not added again, whatever its quality. Flushes but does not commit.
    """
    sha256 = sha256.lower()
    md5 = md5.lower() if md5 is not None else None
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if md5 is not None and not _MD5.fullmatch(md5):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    if media_type is not None and media_type not in MEDIA_TYPES:
        raise ValueError(f"media_type must be one of {MEDIA_TYPES} or None, got {media_type!r}")
    if now is None:
        now = utcnow()
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    wanted: dict[tuple[str, str], tuple[str, str, int | None]] = {}
    for item in signals:
        signal_type, value, quality = _triple(item)
        wanted.setdefault((signal_type, value_digest(value)), (signal_type, value, quality))

    content = _upsert_content(
        session, sha256=sha256, md5=md5, size=size, media_type=media_type, now=now
    )
    if wanted:
        _add_missing_signals(session, content, wanted, now)
    return content


def _upsert_content(
    session: Session,
    *,
    sha256: str,
    md5: str | None,
    size: int,
    media_type: str | None,
    now: datetime,
) -> Content:
    for _ in range(_RACE_RETRIES):
        content = get_content(session, sha256)
        if content is not None:
            if now > content.last_seen:
                content.last_seen = now
            if content.md5 is None and md5 is not None:
                content.md5 = md5
            if content.media_type is None and media_type is not None:
                content.media_type = media_type
            session.flush()
            return content
        content = Content(
            sha256=sha256,
            md5=md5,
            size=size,
            media_type=media_type,
            first_seen=now,
            last_seen=now,
        )
        try:
            with session.begin_nested():
                session.add(content)
        except IntegrityError:
            continue  # another writer inserted the same file first: update theirs
        return content
    raise RuntimeError(f"could not record content {sha256} after {_RACE_RETRIES} attempts")


def _add_missing_signals(
    session: Session,
    content: Content,
    wanted: dict[tuple[str, str], tuple[str, str, int | None]],
    now: datetime,
) -> None:
    for attempt in range(_RACE_RETRIES):
        existing = {
            (signal_type, digest)
            for signal_type, digest in session.execute(
                select(ContentSignal.signal_type, ContentSignal.value_digest).where(
                    ContentSignal.content_id == content.id
                )
            )
        }
        missing = [triple for key, triple in wanted.items() if key not in existing]
        if not missing:
            return
        try:
            with session.begin_nested():
                session.add_all(
                    ContentSignal(
                        content_id=content.id,
                        signal_type=signal_type,
                        value=value,
                        quality=quality,
                        created=now,
                    )
                    for signal_type, value, quality in missing
                )
        except IntegrityError:
            if attempt == _RACE_RETRIES - 1:
                raise
            continue  # another writer added some of them first: add what is still missing
        session.expire(content, ["signals"])
        return
