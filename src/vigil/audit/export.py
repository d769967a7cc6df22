"""Reading the audit log out: JSON Lines for an auditor, the latest events for a person."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.audit.chain import format_at
from vigil.store.vault_models import AuditEvent

BATCH = 1000


def event_json(event: Any) -> dict[str, Any]:
    """One event as an exported JSON object (every column, `at` in the canonical form)."""
    return {
        "seq": int(event.seq),
        "at": format_at(event.at),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export(
    session: Session,
    out: TextIO,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the events (of one object type / object, from `since` included to `until`
    excluded) to `out` as JSON Lines, in seq order; how many were written. A full export
    (no filter) can be checked link by link with the hash rule in docs/audit.md."""
    columns = AuditEvent.__table__.c
    query = select(AuditEvent.__table__).order_by(columns.seq)
    if object_type is not None:
        query = query.where(columns.object_type == object_type)
    if object_id is not None:
        query = query.where(columns.object_id == str(object_id))
    if since is not None:
        query = query.where(columns.at >= since)
    if until is not None:
        query = query.where(columns.at < until)
    written = 0
    with closing(session.execute(query.execution_options(yield_per=BATCH))) as rows:
        for row in rows:
            out.write(json.dumps(event_json(row), sort_keys=True, ensure_ascii=True) + "\n")
            written += 1
    return written


def recent(session: Session, limit: int = 50) -> list[AuditEvent]:
    """The latest `limit` events, newest first."""
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)))
