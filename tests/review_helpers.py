"""Synthetic worlds for the review room's tests: people, banks, contents, uploads, matches.

Every hash is random hex made here; nothing comes from a real hash list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.auth.users import create_user
from vigil.banks import add_entry, create_bank
from vigil.pipeline.matching import FoundMatch, MatchOutcome
from vigil.review import Reviewer
from vigil.store import (
    Bank,
    BankEntry,
    Content,
    Report,
    ReportFile,
    ReviewItem,
    ReviewTask,
    UploadEvent,
    record_hashes,
)

RNG = random.Random(20260301)
T0 = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
"""A clock for the tests, later than any `utcnow()` the pipeline stamps rows with, so a lease
taken at T0 is still held when the pipeline looks for an open task."""
LEASE = timedelta(minutes=15)
PASSWORD = "correct horse battery staple"
BITS = {"md5": 128, "sha256": 256, "pdq": 256}


def rand_hex(signal_type: str) -> str:
    bits = BITS[signal_type]
    return f"{RNG.getrandbits(bits):0{bits // 4}x}"


def near(pdq: str, bits: int = 5) -> str:
    """A PDQ hash `bits` bits away from `pdq`."""
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


@dataclass(frozen=True)
class Team:
    a: Reviewer
    b: Reviewer
    c: Reviewer
    lead: Reviewer


def person(session: Session, name: str, *roles: str) -> Reviewer:
    user = create_user(session, name, PASSWORD, roles=list(roles))
    return Reviewer(user.id, frozenset(user.roles))


def make_team(session: Session) -> Team:
    return Team(
        person(session, "alice", "reviewer"),
        person(session, "bob", "reviewer"),
        person(session, "carol", "reviewer"),
        person(session, "lena", "lead"),
    )


def make_bank(
    session: Session,
    name: str,
    *,
    trust: str = "verified",
    kind: str = "match",
    review_policy: str = "review",
) -> Bank:
    return create_bank(session, name, kind=kind, trust=trust, review_policy=review_policy)


def make_entry(
    session: Session,
    bank: Bank,
    industry: str | None = None,
    signal_type: str = "md5",
    value: str | None = None,
) -> BankEntry:
    entry, new = add_entry(
        session, bank, signal_type, value or rand_hex(signal_type), classification=industry
    )
    assert new
    return entry


def found(entry: BankEntry, bank: Bank, *, distance: int = 0) -> FoundMatch:
    """What the matcher reports for a hit on `entry` (hand-made, as in the actions tests)."""
    return FoundMatch(
        bank=bank.name,
        bank_id=bank.id,
        bank_kind=bank.kind,
        entry_id=entry.id,
        signal_type=entry.signal_type,
        distance=distance,
        classification=entry.industry,
    )


def outcome(*matches: FoundMatch) -> MatchOutcome:
    return MatchOutcome(matches=list(matches), suppressed=[], suppressing=[])


def new_content(session: Session, *, md5: str | None = None, pdq: str | None = None) -> Content:
    """A content row recorded as the pipeline records one (MD5 also as a signal)."""
    md5 = md5 or rand_hex("md5")
    signals: list[tuple[str, str, int | None]] = [("md5", md5, None)]
    if pdq is not None:
        signals.append(("pdq", pdq, 100))
    return record_hashes(
        session,
        sha256=rand_hex("sha256"),
        md5=md5,
        size=2048,
        media_type="image",
        signals=signals,
    )


def upload(session: Session, content: Content, account: str | None = None) -> UploadEvent:
    event = UploadEvent(
        content_id=content.id,
        content_ref=f"post/{RNG.getrandbits(32)}",
        account_id=account,
        ip_address="192.0.2.7",
    )
    session.add(event)
    session.flush()
    return event


def all_tasks(session: Session) -> list[ReviewTask]:
    session.flush()
    return list(session.scalars(select(ReviewTask).order_by(ReviewTask.id)))


def items_of(session: Session, task: ReviewTask | int) -> list[ReviewItem]:
    task_id = task if isinstance(task, int) else task.id
    session.flush()
    return list(
        session.scalars(
            select(ReviewItem).where(ReviewItem.task_id == task_id).order_by(ReviewItem.id)
        )
    )


@dataclass(frozen=True)
class Draft:
    """A report holding a task's files, as the review tests look at it."""

    account_key: str
    status: str
    industry: str | None
    auto_confirmed: bool
    escalation_reason: str | None
    item_ids: list[int]


def drafts_of(session: Session, task: ReviewTask) -> list[Draft]:
    """The reports that hold this task's files, by account."""
    session.flush()
    item_ids = [item.id for item in items_of(session, task)]
    holding = select(ReportFile.report_id).where(ReportFile.item_id.in_(item_ids))
    reports = session.scalars(select(Report).where(Report.id.in_(holding))).all()
    return sorted(
        (
            Draft(
                r.account_key,
                r.status,
                r.industry,
                r.auto_confirmed,
                r.escalation_reason,
                [f.item_id for f in r.files if f.item_id in item_ids],
            )
            for r in reports
        ),
        key=lambda d: d.account_key,
    )
