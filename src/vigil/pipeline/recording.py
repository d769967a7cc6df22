"""Record results in the database: one `content` row per distinct file, its signals, the
matches the scan found for it (re-recording the same bytes never duplicates anything), and,
in the same transaction, the webhook actions those matches fire (`vigil.actions` outbox) and
the review tasks that put them before a person (`vigil.review`). A matched file's bytes are
kept, encrypted, for the reviewers (`vigil.vault.media`) before its transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.actions.outbox import enqueue_actions
from vigil.config import Settings
from vigil.pipeline.hashing import HashRecord
from vigil.pipeline.matching import FoundMatch, MatchOutcome
from vigil.review.queue import queue_matches
from vigil.store import (
    Content,
    Database,
    Match,
    UploadEvent,
    open_database,
    record_hashes,
    utcnow,
)
from vigil.vault.media import MediaStore


class HashRecorder:
    """Buffers results and writes them in batches, one transaction a batch.

    Records without a SHA-256 (unreadable files) have nothing to key a content row on and are
    left to the output alone. With `media`, matched files are kept for review as they come.
    """

    def __init__(
        self, database: Database, batch_size: int = 500, *, media: MediaStore | None = None
    ) -> None:
        self.database = database
        self.batch_size = batch_size
        self.media = media
        self._buffer: list[tuple[HashRecord, MatchOutcome | None]] = []

    @classmethod
    def open(cls, settings: Settings) -> HashRecorder:
        return cls(open_database(settings))

    def add(self, record: HashRecord, outcome: MatchOutcome | None = None) -> None:
        sha256 = record.value("sha256")
        if sha256 is None:
            return
        if self.media is not None and outcome is not None and outcome.matches:
            self.media.keep(Path(record.path), sha256)
        self._buffer.append((record, outcome))
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        with self.database.session() as session:
            for record, outcome in self._buffer:
                content = record_content(session, record)
                if outcome is not None:
                    record_matches(session, content, outcome)
        self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self.database.dispose()


def record_content(session: Session, record: HashRecord) -> Content:
    sha256 = record.value("sha256")
    assert sha256 is not None
    return record_hashes(
        session,
        sha256=sha256,
        md5=record.value("md5"),
        size=record.bytes or 0,
        media_type=record.media_type.value if record.media_type else None,
        signals=[s for name, s in record.signals.items() if name != "sha256"],
    )


def record_matches(
    session: Session,
    content: Content,
    outcome: MatchOutcome,
    upload_event: UploadEvent | None = None,
) -> None:
    """Upsert one `match` row per (content, entry, signal type); a repeat scan only moves
    `last_seen` and the suppression flag. Then queue the actions the (unsuppressed) matches
    fire and the review task they open, in this same session, so the match, its pending
    actions and its review commit together; one delivery per rule and upload event (or per
    content when there is no upload event)."""
    found: Sequence[tuple[FoundMatch, bool]] = [
        *((m, False) for m in outcome.matches),
        *((m, True) for m in outcome.suppressed),
        *((m, False) for m in outcome.suppressing),
    ]
    if not found:
        return
    existing = {
        (row.entry_id, row.signal_type): row
        for row in session.scalars(select(Match).where(Match.content_id == content.id))
    }
    now = utcnow()
    for match, suppressed in found:
        row = existing.get((match.entry_id, match.signal_type))
        if row is not None:
            row.last_seen = now
            row.suppressed = suppressed
            row.distance = min(row.distance, match.distance)
            continue
        session.add(
            Match(
                content_id=content.id,
                bank_id=match.bank_id,
                entry_id=match.entry_id,
                bank_name=match.bank,
                bank_kind=match.bank_kind,
                signal_type=match.signal_type,
                distance=match.distance,
                dihedral=match.dihedral,
                query_variant=match.query_variant,
                classification=match.classification,
                suppressed=suppressed,
                created=now,
                last_seen=now,
            )
        )
    if outcome.matches:
        enqueue_actions(
            session, content=content, outcome=outcome, upload_event=upload_event, now=now
        )
        queue_matches(session, content, outcome.matches, upload_event=upload_event, now=now)
