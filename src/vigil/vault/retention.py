"""Why each vault item is kept, until when, and its destruction once nothing keeps it.

Every reason to keep an item is a clock (`vault_clock`) with its own end:

* `report`: a submitted report is a request to preserve its contents for one year
  (18 U.S.C. 2258A(h), as amended by the REPORT Act 2024): until the request's
  `preserve_until`.
* `preservation_request`: a 2703(f) letter: 90 days, renewed once for 90 more (`renew`); a
  third period needs legal process, so a second renewal is refused.
* `legal_hold`: until the hold is released (`create_hold`, `release_hold`).
* `voluntary`: the platform keeps it longer on its own decision, until a given date.

An item is kept while any of its clocks runs (not released, and no end or an end after
now). `sweep` destroys the others by crypto-shredding: their wrapped data key is removed from
the database first (committed), then their bytes are deleted; a crash in between leaves
bytes nobody can decrypt, which the next sweep removes. `destroy_on_request` does the same at
once for law enforcement's request to destroy (2258B(c)), under any clock except a legal
hold, which only its release lifts.

Functions that destroy (`sweep`, `destroy_on_request`) commit the session themselves, in the
order crash safety needs; the others flush and leave the commit to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from vigil.store import LegalHold, VaultClock, VaultDestruction, VaultItem, begin_immediate
from vigil.vault.blobs import FileBlobStore, ListableBlobStore
from vigil.vault.items import (
    ItemNotFound,
    Vault,
    VaultError,
    account_clause,
    audit,
    check_reason,
)

log = logging.getLogger(__name__)

PRESERVATION_PERIOD = timedelta(days=90)
"""18 U.S.C. 2703(f): 90 days, and 90 more on a renewed request."""
MAX_RENEWALS = 1
ORPHAN_GRACE = timedelta(hours=24)
"""Bytes without any item row are removed once this old: younger ones may belong to an item
being written right now (its row is not committed yet)."""
SWEEP_BATCH = 100
MAX_REFERENCE_CHARS = 200


class RetentionError(VaultError):
    """A clock or hold operation refused (a third renewal, an expired clock, ...)."""


class ItemOnHold(VaultError):
    """A destroy request for items under a legal hold: refused until the hold is released."""


# --- Clocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """One reason to keep an item (a `vault_clock` row to be), made by the constructors."""

    reason: str
    expires_at: datetime | None
    reference: str | None = None
    hold_id: int | None = None

    @classmethod
    def report(cls, until: datetime, reference: str) -> Clock:
        """A report's preservation (2258A(h)): until the request's `preserve_until`."""
        return cls("report", until, reference)

    @classmethod
    def preservation_request(cls, now: datetime, reference: str) -> Clock:
        """A 2703(f) letter: 90 days from `now` (`renew` adds 90 more, once)."""
        return cls("preservation_request", now + PRESERVATION_PERIOD, reference)

    @classmethod
    def legal_hold(cls, hold: LegalHold) -> Clock:
        """Until the hold is released."""
        return cls("legal_hold", None, f"hold {hold.id}: {hold.name}"[:200], hold.id)

    @classmethod
    def voluntary(cls, until: datetime, reference: str) -> Clock:
        """The platform's own decision to keep the item until `until`."""
        return cls("voluntary", until, reference)


def is_running(clock: VaultClock, now: datetime) -> bool:
    """Whether `clock` still keeps its item at `now`."""
    return clock.released_at is None and (clock.expires_at is None or clock.expires_at > now)


def running_clause(now: datetime) -> ColumnElement[bool]:
    """SQL: the `VaultItem` has a clock running at `now`."""
    return exists().where(
        VaultClock.item_id == VaultItem.id,
        VaultClock.released_at.is_(None),
        or_(VaultClock.expires_at.is_(None), VaultClock.expires_at > now),
    )


def apply_clock(session: Session, item: VaultItem, clock: Clock, *, now: datetime) -> VaultClock:
    """Add `clock` to `item`. Applied again (same reason, reference and hold, not released),
    the existing clock is kept and, except for a 2703(f) request (which only `renew`
    extends), runs to the later end."""
    if item.wrapped_key is None:
        raise VaultError(f"vault item {item.id} was destroyed; nothing can keep it now")
    for existing in item.clocks:
        if (
            existing.reason == clock.reason
            and existing.reference == clock.reference
            and existing.hold_id == clock.hold_id
            and existing.released_at is None
        ):
            later = existing.expires_at is not None and (
                clock.expires_at is None or clock.expires_at > existing.expires_at
            )
            if clock.reason != "preservation_request" and later:
                existing.expires_at = clock.expires_at
            session.flush()
            return existing
    added = VaultClock(
        reason=clock.reason,
        reference=clock.reference,
        hold_id=clock.hold_id,
        starts_at=now,
        expires_at=clock.expires_at,
        renewals=0,
    )
    item.clocks.append(added)
    session.flush()
    return added


def kept_until(item: VaultItem, now: datetime) -> datetime | None:
    """The end of the item's last running clock; None when one has no end (or none runs:
    check `is_kept`)."""
    running = [clock for clock in item.clocks if is_running(clock, now)]
    if not running or any(clock.expires_at is None for clock in running):
        return None
    return max(clock.expires_at for clock in running if clock.expires_at is not None)


def is_kept(item: VaultItem, now: datetime) -> bool:
    return item.wrapped_key is not None and any(is_running(c, now) for c in item.clocks)


def _reference(reference: str) -> str:
    text = (reference or "").strip()
    if not text:
        raise RetentionError("a reference is required (the request's number or name)")
    if len(text) > MAX_REFERENCE_CHARS:
        raise RetentionError(f"the reference is longer than {MAX_REFERENCE_CHARS} characters")
    return text


def _live_items(
    session: Session, item_ids: Iterable[int] = (), account_key: str | None = None
) -> list[VaultItem]:
    """The named items (each must exist and not be destroyed) and the account's live items,
    locked for update, by id."""
    ids = list(dict.fromkeys(item_ids))
    found: dict[int, VaultItem] = {}
    if ids:
        rows = session.scalars(
            select(VaultItem).where(VaultItem.id.in_(ids)).with_for_update()
        ).all()
        found = {row.id: row for row in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise ItemNotFound(f"no vault item {', '.join(map(str, missing))}")
        gone = [i for i in ids if found[i].wrapped_key is None]
        if gone:
            raise VaultError(f"vault item {', '.join(map(str, gone))} was already destroyed")
    if account_key is not None:
        for row in session.scalars(
            select(VaultItem)
            .where(account_clause(account_key), VaultItem.wrapped_key.is_not(None))
            .with_for_update()
        ):
            found[row.id] = row
    return [found[i] for i in sorted(found)]


def preserve_existing(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    item_ids: Sequence[int] = (),
    account_key: str | None = None,
) -> list[VaultClock]:
    """A 2703(f) preservation letter for what the vault already holds (it reaches only data
    already kept): a 90-day `preservation_request` clock on each item."""
    reference = _reference(reference)
    items = _live_items(session, item_ids, account_key)
    if not items:
        raise RetentionError("no live vault items match: nothing to preserve")
    clocks = [
        apply_clock(session, item, Clock.preservation_request(now, reference), now=now)
        for item in items
    ]
    audit(
        session,
        "vault.preservation_request",
        "vault_item",
        None,
        {"actor": actor, "reference": reference, "item_ids": [i.id for i in items]},
    )
    return clocks


def renew(session: Session, clock_id: int, *, actor: str, now: datetime) -> VaultClock:
    """A renewed 2703(f) request: the clock runs 90 days more from its current end. Only
    once, and only while it still runs (`RetentionError` otherwise)."""
    clock = session.get(VaultClock, clock_id, with_for_update=True, populate_existing=True)
    if clock is None:
        raise RetentionError(f"no vault clock {clock_id}")
    if clock.reason != "preservation_request":
        raise RetentionError(
            f"clock {clock_id} is a {clock.reason} clock: only preservation requests are renewed"
        )
    if clock.renewals >= MAX_RENEWALS:
        raise RetentionError(
            f"clock {clock_id} was already renewed: 2703(f) allows one renewal of 90 days;"
            " keeping the data longer needs legal process (a hold) or a voluntary decision"
        )
    if not is_running(clock, now) or clock.expires_at is None:
        raise RetentionError(
            f"clock {clock_id} ended on {clock.expires_at}: a new request is needed"
        )
    clock.expires_at = clock.expires_at + PRESERVATION_PERIOD
    clock.renewals += 1
    session.flush()
    audit(
        session,
        "vault.renew",
        "vault_clock",
        str(clock.id),
        {"actor": actor, "item_id": clock.item_id, "expires_at": clock.expires_at.isoformat()},
    )
    return clock


def keep_voluntarily(
    session: Session,
    item_ids: Sequence[int],
    *,
    until: datetime,
    reference: str,
    actor: str,
    now: datetime,
) -> list[VaultClock]:
    """Keep items until `until` on the platform's own decision."""
    reference = _reference(reference)
    if until <= now:
        raise RetentionError("a voluntary retention must end in the future")
    items = _live_items(session, item_ids)
    clocks = [apply_clock(session, i, Clock.voluntary(until, reference), now=now) for i in items]
    audit(
        session,
        "vault.keep",
        "vault_item",
        None,
        {
            "actor": actor,
            "reference": reference,
            "until": until.isoformat(),
            "item_ids": [i.id for i in items],
        },
    )
    return clocks


# --- Legal holds ----------------------------------------------------------------------


def create_hold(
    session: Session,
    name: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    item_ids: Sequence[int] = (),
    account_key: str | None = None,
) -> tuple[LegalHold, list[VaultClock]]:
    """A legal hold on the named items and/or every live item of an account (items stored
    for the account later are not covered: hold them by id). Nothing under it is destroyed,
    by the sweep or by a destroy request, until `release_hold`."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise RetentionError("a hold needs a name of 1 to 200 characters")
    reason = check_reason(reason)
    if not item_ids and account_key is None:
        raise RetentionError("a hold names items or an account")
    items = _live_items(session, item_ids, account_key)
    if not items:
        raise RetentionError(f"account {account_key!r} has no live vault items to hold")
    hold = LegalHold(name=name, reason=reason, created_by=actor, created=now)
    session.add(hold)
    session.flush()
    clocks = [apply_clock(session, item, Clock.legal_hold(hold), now=now) for item in items]
    audit(
        session,
        "vault.hold",
        "legal_hold",
        str(hold.id),
        {
            "actor": actor,
            "name": name,
            "reason": reason,
            "item_ids": [i.id for i in items],
            "account_key": account_key,
        },
    )
    return hold, clocks


def release_hold(session: Session, hold_id: int, *, actor: str, now: datetime) -> LegalHold:
    """Release a hold: its clocks stop; items nothing else keeps go at the next sweep."""
    hold = session.get(LegalHold, hold_id, with_for_update=True, populate_existing=True)
    if hold is None:
        raise RetentionError(f"no legal hold {hold_id}")
    if hold.released_at is not None:
        raise RetentionError(f"legal hold {hold_id} was already released on {hold.released_at}")
    hold.released_at = now
    hold.released_by = actor
    clocks = session.scalars(
        select(VaultClock).where(VaultClock.hold_id == hold.id, VaultClock.released_at.is_(None))
    ).all()
    for clock in clocks:
        clock.released_at = now
    session.flush()
    audit(
        session,
        "vault.release",
        "legal_hold",
        str(hold.id),
        {"actor": actor, "name": hold.name, "item_ids": sorted({c.item_id for c in clocks})},
    )
    return hold


def list_holds(session: Session, *, include_released: bool = False) -> list[LegalHold]:
    query = select(LegalHold).order_by(LegalHold.id.desc())
    if not include_released:
        query = query.where(LegalHold.released_at.is_(None))
    return list(session.scalars(query))


# --- Destruction ----------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep destroyed (or, dry, would destroy)."""

    dry_run: bool
    due: list[int] = field(default_factory=list)
    """Items no clock keeps any more."""
    shredded: list[int] = field(default_factory=list)
    leftover_bytes: list[str] = field(default_factory=list)
    """Blobs of already-shredded items still in a store (`<storage>:<key>`): deleted."""
    orphans: list[str] = field(default_factory=list)
    """Blobs of no item (a write interrupted before its row was committed), older than the
    grace period: deleted."""
    temporaries: int = 0


def _shred(
    session: Session,
    item: VaultItem,
    *,
    reason: str,
    reference: str | None,
    actor: str,
    now: datetime,
) -> None:
    item.wrapped_key = None
    item.shredded_at = now
    session.add(
        VaultDestruction(
            item_id=item.id,
            sha256=item.sha256,
            kind=item.kind,
            reason=reason,
            reference=reference,
            actor=actor,
            at=now,
        )
    )
    audit(
        session,
        "vault.shred",
        "vault_item",
        str(item.id),
        {"actor": actor, "reason": reason, "reference": reference, "sha256": item.sha256},
    )


def _delete_bytes(vault: Vault, items: Iterable[VaultItem]) -> None:
    for item in items:
        vault.store_for(item.storage).delete(item.blob_key)


def _write_transaction(session: Session) -> None:
    """End the read transaction and start a writing one (SQLite: holding the write lock)."""
    session.commit()
    begin_immediate(session)


def sweep(
    session: Session,
    vault: Vault,
    *,
    now: datetime,
    dry_run: bool = False,
    actor: str = "system",
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> SweepResult:
    """Destroy the items no clock keeps at `now` (reason `expired`), then remove bytes left
    in the stores by earlier interruptions. `dry_run` lists without changing anything.

    Per batch: the wrapped keys are removed and the destruction recorded, committed, and only
    then are the bytes deleted. Commits the session (call it with nothing pending).
    """
    result = SweepResult(dry_run=dry_run)
    result.due = list(
        session.scalars(
            select(VaultItem.id)
            .where(VaultItem.wrapped_key.is_not(None), ~running_clause(now))
            .order_by(VaultItem.id)
        )
    )
    if dry_run:
        _stray_blobs(session, vault, now, orphan_grace, result, delete=False)
        return result
    for start in range(0, len(result.due), SWEEP_BATCH):
        batch = result.due[start : start + SWEEP_BATCH]
        _write_transaction(session)
        items = list(
            session.scalars(
                select(VaultItem)
                .where(
                    VaultItem.id.in_(batch),
                    VaultItem.wrapped_key.is_not(None),
                    ~running_clause(now),  # checked again, holding the rows
                )
                .order_by(VaultItem.id)
                .with_for_update()
            )
        )
        for item in items:
            _shred(session, item, reason="expired", reference=None, actor=actor, now=now)
        session.commit()  # the keys are gone: the items are destroyed
        result.shredded.extend(item.id for item in items)
        _delete_bytes(vault, items)
    session.commit()
    _stray_blobs(session, vault, now, orphan_grace, result, delete=True)
    session.commit()
    if result.shredded or result.leftover_bytes or result.orphans:
        log.info(
            "vault sweep: %d items shredded, %d leftover blobs and %d orphans removed",
            len(result.shredded),
            len(result.leftover_bytes),
            len(result.orphans),
        )
    return result


def _stray_blobs(
    session: Session,
    vault: Vault,
    now: datetime,
    grace: timedelta,
    result: SweepResult,
    *,
    delete: bool,
) -> None:
    """Bytes no live item needs: those of shredded items (a sweep or destroy interrupted
    after its commit) and, older than `grace`, those of no item at all (a write
    interrupted before its row was committed)."""
    for name, store in vault.stores.items():
        rows = session.execute(
            select(VaultItem.blob_key, VaultItem.wrapped_key.is_(None)).where(
                VaultItem.storage == name
            )
        ).all()
        if not isinstance(store, ListableBlobStore):
            # Without a listing, every shredded item's blob is deleted again (idempotent).
            for key, shredded in rows:
                if shredded and store.exists(key):
                    result.leftover_bytes.append(f"{name}:{key}")
                    if delete:
                        store.delete(key)
            continue
        shredded_by_key = {key: bool(shredded) for key, shredded in rows}
        for key, modified in store.list_keys():
            state = shredded_by_key.get(key)
            if state is None:
                if modified < now - grace:
                    result.orphans.append(f"{name}:{key}")
                    if delete:
                        store.delete(key)
            elif state:
                result.leftover_bytes.append(f"{name}:{key}")
                if delete:
                    store.delete(key)
        if delete and isinstance(store, FileBlobStore):
            result.temporaries += store.remove_stale_temporaries(now - grace)


def destroy_on_request(
    session: Session,
    vault: Vault,
    item_ids: Sequence[int],
    *,
    reference: str,
    actor: str,
    now: datetime,
) -> list[int]:
    """Law enforcement's request to destroy (2258B(c)): the items are shredded now, whatever
    report, preservation or voluntary clock still runs, and recorded with reason
    `destroy_request` and the request's `reference`. Refused as a whole (`ItemOnHold`, naming
    the holds) when any item is under a legal hold: a hold is lifted only by its release.
    Items already destroyed are skipped. Returns the ids shredded. Commits the session."""
    reference = _reference(reference)
    ids = list(dict.fromkeys(item_ids))
    if not ids:
        raise VaultError("name the items to destroy")
    _write_transaction(session)
    rows = session.scalars(select(VaultItem).where(VaultItem.id.in_(ids)).with_for_update()).all()
    found = {row.id: row for row in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        session.rollback()
        raise ItemNotFound(f"no vault item {', '.join(map(str, missing))}")
    held = session.execute(
        select(VaultClock.item_id, LegalHold.id, LegalHold.name)
        .join(LegalHold, LegalHold.id == VaultClock.hold_id)
        .where(
            VaultClock.item_id.in_(ids),
            VaultClock.reason == "legal_hold",
            and_(VaultClock.released_at.is_(None), LegalHold.released_at.is_(None)),
        )
        .order_by(VaultClock.item_id, LegalHold.id)
    ).all()
    if held:
        session.rollback()
        names = "; ".join(
            f"item {item_id} is under legal hold {hold_id} ({name!r})"
            for item_id, hold_id, name in held
        )
        raise ItemOnHold(
            f"destroy request {reference!r} refused: {names}. Release the hold first"
            " (vigil vault release HOLD_ID) if the request should prevail."
        )
    items = [found[i] for i in ids if found[i].wrapped_key is not None]
    for item in items:
        _shred(session, item, reason="destroy_request", reference=reference, actor=actor, now=now)
    session.commit()
    _delete_bytes(vault, items)
    return [item.id for item in items]
