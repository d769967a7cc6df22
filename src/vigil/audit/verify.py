"""Verification of the audit chain, streaming its events in seq order.

What each check catches:

- an event's stored hash differs from the hash recomputed from its columns and `prev_hash`:
  the row was **modified** (any column: time, actor, action, object, details);
- seqs do not run 1, 2, 3, ...: an event was **deleted** (a gap) or one was **inserted** with
  a seq outside the chain;
- an event's `prev_hash` is not the previous event's hash: events were **reordered** (seqs
  swapped), a row was deleted and the rest renumbered, or a row was rewritten with a
  recomputed hash (the next link no longer points at it);
- the head (`audit_head`) is not at the last event's seq and hash: events were **appended**
  without the head (a forged event at the end) or **removed** from the end, or the head was
  edited;
- with a signed checkpoint: the signature must verify (with the trusted public key when one
  is given), and the event at the checkpoint's seq must still have the signed hash: a history
  **rewritten consistently** (every hash recomputed) up to the checkpoint is caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.audit.chain import GENESIS_HASH, HEAD_ID, link_hash
from vigil.audit.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from vigil.store.vault_models import AuditEvent, AuditHead

BATCH = 1000


@dataclass(frozen=True)
class VerifyResult:
    """`ok`, or the first broken link's seq and what is wrong there."""

    ok: bool
    checked: int
    """Events whose links were checked."""
    first_broken_seq: int | None = None
    """None when ok, or when the problem is not at a seq (a refused checkpoint)."""
    problem: str | None = None
    head_seq: int | None = None
    checkpoint_seq: int | None = None
    """The seq a checkpoint vouched for, when one was given and held."""


def _walk(rows: Iterable[Any], anchor: Checkpoint | None) -> VerifyResult | tuple[int, str]:
    """Check each link in seq order: the first broken one, or (events checked, last hash)."""
    checked = 0
    expected, prev_hash = 1, GENESIS_HASH

    def broken(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, checked, seq, problem)

    for row in rows:
        seq = int(row.seq)
        if seq < expected:
            return broken(seq, f"an event with seq {seq} is outside the chain (which starts at 1)")
        if seq > expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}-{seq - 1}"
            return broken(expected, f"{missing} missing: events were deleted")
        if row.prev_hash != prev_hash:
            return broken(
                seq,
                f"prev_hash does not match the hash of seq {seq - 1}: events were deleted,"
                " reordered, or the one before was rewritten",
            )
        digest = link_hash(
            seq,
            row.at,
            row.actor,
            row.action,
            row.object_type,
            row.object_id,
            row.details,
            row.prev_hash,
        )
        if digest != row.hash:
            return broken(seq, "the hash does not match the event's contents: it was modified")
        if anchor is not None and seq == anchor.seq and row.hash != anchor.hash:
            return broken(
                seq,
                f"the hash differs from the signed checkpoint's: history up to seq {seq}"
                " was rewritten",
            )
        prev_hash = row.hash
        expected += 1
        checked += 1
    return checked, prev_hash


def verify(
    session: Session,
    *,
    from_checkpoint: Path | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> VerifyResult:
    """Check the whole chain (and, with `from_checkpoint`, that the signed head it holds is
    still in the chain; its signature is checked with `public_key` when given, else with the
    key the file names, which proves less: see `Checkpoint.signature_error`)."""
    anchor: Checkpoint | None = None
    if from_checkpoint is not None:
        try:
            anchor = read_checkpoint(from_checkpoint)
        except CheckpointError as error:
            return VerifyResult(False, 0, None, f"checkpoint refused: {error}")
        refused = anchor.signature_error(public_key)
        if refused is not None:
            return VerifyResult(False, 0, None, f"checkpoint refused: {refused}")

    columns = AuditEvent.__table__.c
    query = (
        select(
            columns.seq,
            columns.at,
            columns.actor,
            columns.action,
            columns.object_type,
            columns.object_id,
            columns.details,
            columns.prev_hash,
            columns.hash,
        )
        .order_by(columns.seq)
        .execution_options(yield_per=BATCH)
    )
    with closing(session.execute(query)) as rows:
        walked = _walk(rows, anchor)
    if isinstance(walked, VerifyResult):
        return walked
    checked, prev_hash = walked
    last = checked

    def broken(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, checked, seq, problem)

    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    if head is None:
        return broken(last + 1, "the chain's head (audit_head id 1) is missing")
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > last:
        return broken(
            last + 1,
            f"the head is at seq {head_seq} but the last event is seq {last}: events at the"
            " end were deleted",
        )
    if head_seq < last:
        return broken(
            head_seq + 1,
            f"events after the head's seq {head_seq}: seq {head_seq + 1}-{last} were added"
            " without going through the head",
        )
    if head_hash != prev_hash:
        return broken(head_seq, f"the head's hash does not match the hash of seq {head_seq}")
    if anchor is not None:
        if anchor.seq > last:
            return broken(
                last + 1,
                f"the checkpoint vouches for seq {anchor.seq} but the chain ends at seq"
                f" {last}: events were deleted",
            )
        if anchor.seq == 0 and anchor.hash != GENESIS_HASH:
            return broken(1, "the checkpoint at seq 0 does not hold the genesis hash")
    return VerifyResult(
        True,
        checked,
        head_seq=head_seq,
        checkpoint_seq=None if anchor is None else anchor.seq,
    )
