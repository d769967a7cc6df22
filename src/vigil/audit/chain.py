"""The audit chain: appending events, each hashed over its contents and the previous hash.

Every event is one row of `audit_event`. Its `hash` is::

    sha256( canonical(seq, at, actor, action, object_type, object_id, details) + prev_hash )

where `canonical` is the JSON object ``{"action", "actor", "at", "details", "object_id",
"object_type", "seq"}`` written with sorted keys, no whitespace and only ASCII (`\\uXXXX`
escapes), `at` being ISO 8601 in UTC with microseconds (`2026-11-25T09:30:00.000000+00:00`),
encoded as ASCII; `prev_hash` is the previous event's hash as 64 lower-case hex digits
(64 zeros before the first event, seq 1). `hash` is lower-case hex.

Writers serialise on the single `audit_head` row: one statement both locks and advances it
(`UPDATE audit_head SET seq = seq + n WHERE id = 1 RETURNING seq, hash`), the events are
inserted, and the head takes the last event's hash, all in the caller's transaction. A
second writer's UPDATE waits for the first to commit (PostgreSQL's row lock; SQLite's single
writer) and then sees its head, so the chain never forks, whatever the number of threads or
processes. Older SQLite without RETURNING (before 3.35) reads the head back after the UPDATE,
which is as safe there: the UPDATE already holds the database's write lock.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.orm import Session

from vigil.store.types import utcnow
from vigil.store.vault_models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first event (and the head's hash while the chain is empty)."""
HEAD_ID = 1

_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditHead.__table__)

_SECRET_WORDS = (
    "password",
    "passphrase",
    "passwd",
    "secret",
    "csrf",
    "wrapped_key",
    "private_key",
    "api_key",
    "credential",
)
_HARMLESS_TOKEN_SUFFIXES = frozenset({"id", "ids", "name", "names", "count", "scopes"})


class AuditError(RuntimeError):
    """The audit chain cannot be written (its head row is missing, say)."""


@dataclass(frozen=True)
class Entry:
    """An event waiting for its place in the chain."""

    actor: str
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


# --- Details: never media, never secrets -----------------------------------------------------


def _is_secret_key(key: str) -> bool:
    """Whether a details key names something secret: a password or its hash, a secret, a
    CSRF token, a wrapped key, a token (`token_id`, `token_name` are fine)."""
    lowered = key.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    parts = [part for part in re.split(r"[^a-z0-9]+", lowered) if part]
    if not any(part in ("token", "tokens") or part.endswith("token") for part in parts):
        return False
    return parts[-1] not in _HARMLESS_TOKEN_SUFFIXES


_DROP = object()


def _scrub(value: Any) -> Any:
    """`value` made safe and plain for the audit log: keys naming secrets are dropped (at any
    depth), bytes are dropped (no media ever enters the log), datetimes become ISO 8601 UTC,
    tuples and sets lists, NaN and infinities strings; anything else unknown its `str`."""
    cleaned = _clean(value)
    return None if cleaned is _DROP else cleaned


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _DROP
    if isinstance(value, datetime):
        return format_at(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return _clean(value.value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if _is_secret_key(name):
                continue
            cleaned = _clean(item)
            if cleaned is not _DROP:
                out[name] = cleaned
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [cleaned for cleaned in map(_clean, items) if cleaned is not _DROP]
    return str(value)


def clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """`details` scrubbed (see `_scrub`) and normalised to exactly what the JSON column gives
    back, so the hash computed now is the hash recomputed from the stored row."""
    scrubbed = _scrub(dict(details or {}))
    normalised: dict[str, Any] = json.loads(_dumps(scrubbed))
    return normalised


# --- Canonical encoding and hash -------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def format_at(at: datetime) -> str:
    """`at` in the canonical form: ISO 8601, UTC, microseconds (`...T09:30:00.000000+00:00`)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime refused: audit times are timezone-aware UTC")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None,
    details: Mapping[str, Any],
) -> bytes:
    """The bytes an event's hash covers (with the previous hash appended)."""
    return _dumps(
        {
            "action": action,
            "actor": actor,
            "at": format_at(at),
            "details": details,
            "object_id": object_id,
            "object_type": object_type,
            "seq": seq,
        }
    ).encode("ascii")


def link_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical encoding followed by `prev_hash` (ASCII hex)."""
    digest = hashlib.sha256(canonical(seq, at, actor, action, object_type, object_id, details))
    digest.update(prev_hash.encode("ascii"))
    return digest.hexdigest()


# --- Appending --------------------------------------------------------------------------------


def _short(value: str, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"an audit event needs a non-empty {what}")
    if len(value) > limit:
        raise ValueError(f"{what} longer than {limit} characters: {value[:40]!r}...")
    return value


def _object_id(object_id: object) -> str | None:
    if object_id is None:
        return None
    return str(object_id)[:64]


def _lock_head(connection: Connection, count: int) -> tuple[int, str]:
    """Advance the head by `count` links, locking it until the transaction ends; the head's
    seq after the advance and its hash (the previous event's) before."""
    advance = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq + count)
    if connection.dialect.update_returning:
        row = connection.execute(advance.returning(_HEAD.c.seq, _HEAD.c.hash)).one_or_none()
    else:  # SQLite < 3.35: the UPDATE holds the write lock, reading back is as safe
        connection.execute(advance)
        query = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == HEAD_ID)
        row = connection.execute(query).one_or_none()
    if row is None:
        raise AuditError("the audit chain's head (audit_head id 1) is missing")
    return int(row[0]), str(row[1])


def append_entries(connection: Connection, entries: Sequence[Entry]) -> list[AuditEvent]:
    """Add `entries` to the chain, in order, on `connection`'s transaction (see module doc).
    Core statements only, so no ORM flush event fires. Returns the events (not attached to
    any session)."""
    if not entries:
        return []
    now = utcnow()
    prepared = [
        (
            _short(entry.actor, 200, "actor"),
            _short(entry.action, 64, "action"),
            _short(entry.object_type, 64, "object type"),
            _object_id(entry.object_id),
            clean_details(entry.details),
            (entry.at or now).astimezone(UTC),
        )
        for entry in entries
    ]
    last_seq, prev_hash = _lock_head(connection, len(prepared))
    seq = last_seq - len(prepared)
    events: list[AuditEvent] = []
    for actor, action, object_type, object_id, details, at in prepared:
        seq += 1
        digest = link_hash(seq, at, actor, action, object_type, object_id, details, prev_hash)
        events.append(
            AuditEvent(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                details=details,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash = digest
    connection.execute(
        insert(_EVENTS),
        [
            {
                "seq": event.seq,
                "at": event.at,
                "actor": event.actor,
                "action": event.action,
                "object_type": event.object_type,
                "object_id": event.object_id,
                "details": event.details,
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
            for event in events
        ],
    )
    connection.execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(hash=prev_hash))
    return events


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    details: Mapping[str, Any] | None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event now, in `session`'s transaction: the head stays locked until that
    transaction ends, so call it late in the transaction (or use `vigil.audit.record`, which
    appends at commit). `details` are scrubbed of secrets and bytes."""
    entry = Entry(actor, action, object_type, _object_id(object_id), dict(details or {}), at)
    (event,) = append_entries(session.connection(), [entry])
    return event
