"""The review queue: tasks opened from matches, flags and escalations, grouped, ordered, and
claimed under a lease.

Copies of one picture are one task: an item joins the open, unclaimed task holding the same
file or a file that matched one of the same bank entries, instead of opening another, so a
reviewer decides forty copies once. Work is ordered imminent danger first, then the most severe
classification, then the matches that most need human eyes (perceptual, or from an
unverified bank) before exact matches to verified banks, then age.

Leases are taken with one conditional UPDATE, so two reviewers never hold the same task on
SQLite or PostgreSQL; an abandoned lease simply expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from vigil.actions.outbox import industry_of
from vigil.banks.classification import severity_rank
from vigil.signals import get_signal_type
from vigil.store import Bank, Content, Match, ReviewItem, ReviewTask, UploadEvent, utcnow
from vigil.store.review_models import TASK_QUEUES

if TYPE_CHECKING:  # the pipeline calls this module: no import back at run time
    from vigil.pipeline.matching import FoundMatch

MAX_REASON_CHARS = 3000
"""The CyberTipline's limit on `escalateToHighPriority`, which an escalation reason becomes."""
LEAD_ROLES = frozenset({"lead", "admin"})
REVIEW_ROLES = frozenset({"reviewer", *LEAD_ROLES})
"""Who may take review tasks."""


class ReviewError(Exception):
    """A review action that cannot be done as asked; the message says why."""


class TaskNotFound(ReviewError, LookupError):
    pass


class LeaseLost(ReviewError):
    """The task is not (or no longer) held by this reviewer."""


def is_exact(signal_type: str) -> bool:
    """Exact hashes (MD5, SHA-1, SHA-256) match only identical bytes."""
    return get_signal_type(signal_type).max_threshold == 0


def check_reason(reason: str | None, what: str = "reason") -> str:
    """A required free-text reason: non-empty, at most MAX_REASON_CHARS characters."""
    text = (reason or "").strip()
    if not text:
        raise ReviewError(f"a {what} is required")
    if len(text) > MAX_REASON_CHARS:
        raise ReviewError(f"the {what} is {len(text)} characters; at most {MAX_REASON_CHARS}")
    return text


@dataclass(frozen=True)
class Reviewer:
    """Who acts on the queue: a console user's id and roles."""

    user_id: int
    roles: frozenset[str]

    @property
    def is_lead(self) -> bool:
        return bool(self.roles & LEAD_ROLES)


# --- Opening tasks ------------------------------------------------------------------------


def _open_task_for(
    session: Session, content: Content, entry_ids: set[int], now: datetime
) -> ReviewTask | None:
    """The oldest open, unclaimed task in the main queue that holds this file or a file that
    matched any of the same bank entries: copies, however they were altered."""
    related = (
        select(ReviewItem.task_id)
        .join(Match, Match.content_id == ReviewItem.content_id)
        .where(Match.entry_id.in_(entry_ids))
        .union(select(ReviewItem.task_id).where(ReviewItem.content_id == content.id))
    )
    return session.scalars(
        select(ReviewTask)
        .where(
            ReviewTask.id.in_(related.scalar_subquery()),
            ReviewTask.status == "open",
            ReviewTask.queue == "main",
            or_(ReviewTask.lease_expires.is_(None), ReviewTask.lease_expires < now),
        )
        .order_by(ReviewTask.id)
        .limit(1)
    ).first()


def _has_item(session: Session, content: Content, upload_event: UploadEvent | None) -> bool:
    """Whether this upload (or, for a scan, this content at all) is already in some task."""
    query = select(ReviewItem.id).where(ReviewItem.content_id == content.id)
    if upload_event is not None:
        query = query.where(ReviewItem.upload_event_id == upload_event.id)
    return session.scalar(query.limit(1)) is not None


def _add_item(
    session: Session,
    task: ReviewTask,
    content: Content,
    upload_event: UploadEvent | None,
    now: datetime,
) -> ReviewItem:
    item = ReviewItem(
        task=task,
        content_id=content.id,
        upload_event_id=upload_event.id if upload_event is not None else None,
        created=now,
    )
    session.add(item)
    return item


def queue_matches(
    session: Session,
    content: Content,
    matches: Sequence[FoundMatch],
    *,
    upload_event: UploadEvent | None = None,
    now: datetime | None = None,
) -> ReviewTask | None:
    """Put a content's (unsuppressed) matches before a reviewer, in the caller's transaction,
    after their `match` rows were added (`vigil.pipeline.recording.record_matches` does both):
    copies are found through them.

    Joins the open task of the same cluster or opens one. When every match is exact and every
    matched bank is verified with the `auto_confirm_exact` policy, the task is confirmed by
    the policy instead (see `vigil.review.decisions.auto_confirm`): the files are recorded as
    not viewed. A scan that finds content already queued adds nothing; a new upload of it
    is a new item (another incident to report)."""
    from vigil.review.decisions import auto_confirm

    if not matches or _has_item(session, content, upload_event):
        return None
    now = now or utcnow()
    banks = {
        bank.id: bank
        for bank in session.scalars(select(Bank).where(Bank.id.in_({m.bank_id for m in matches})))
    }
    severity = max(severity_rank(industry_of(m)) for m in matches)
    exact_verified = all(
        is_exact(m.signal_type) and m.bank_id in banks and banks[m.bank_id].trust == "verified"
        for m in matches
    )
    automatic = exact_verified and all(
        banks[m.bank_id].review_policy == "auto_confirm_exact" for m in matches
    )
    entry_ids = {m.entry_id for m in matches}
    task = None if automatic else _open_task_for(session, content, entry_ids, now)
    if task is None:
        task = ReviewTask(
            source="match",
            account_id=upload_event.account_id if upload_event is not None else None,
            severity=severity,
            exact_verified=exact_verified,
            created=now,
            updated=now,
        )
        session.add(task)
    else:
        task.severity = max(task.severity, severity)
        task.exact_verified = task.exact_verified and exact_verified
        task.updated = now
    _add_item(session, task, content, upload_event, now)
    session.flush()
    if automatic:
        auto_confirm(session, task, [industry_of(m) for m in matches], now=now)
    return task


@dataclass(frozen=True)
class Flag:
    """A report about content from outside the bank matches: a user's report, an external
    classifier's flag, or a person escalating it by hand (imminent danger)."""

    source: str  # flag | user_report | escalation
    reporter: str | None = None
    """Who sent it: the classifier's name, the reporting user's id, the escalating person."""
    label: str | None = None
    score: float | None = None
    reason: str | None = None
    imminent_danger: bool = False

    def details(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in (
                ("reporter", self.reporter),
                ("label", self.label),
                ("score", self.score),
                ("reason", self.reason),
            )
            if value is not None
        }


def open_flag(
    session: Session,
    content: Content,
    flag: Flag,
    *,
    matches: Sequence[FoundMatch] = (),
    upload_event: UploadEvent | None = None,
    now: datetime | None = None,
) -> ReviewTask:
    """Open a task for flagged content (always a task of its own: a flag is somebody's
    judgement, not a copy of one already queued). Imminent danger goes to the escalated
    queue with its reason, which must be given."""
    if flag.source not in ("flag", "user_report", "escalation"):
        raise ReviewError(f"unknown flag source {flag.source!r}")
    now = now or utcnow()
    reason = (
        check_reason(flag.reason, "reason for the escalation") if flag.imminent_danger else None
    )
    task = ReviewTask(
        source=flag.source,
        queue="escalated" if flag.imminent_danger else "main",
        account_id=upload_event.account_id if upload_event is not None else None,
        imminent_danger=flag.imminent_danger,
        escalation_reason=reason,
        severity=max((severity_rank(industry_of(m)) for m in matches), default=0),
        exact_verified=False,
        flag_details=flag.details(),
        created=now,
        updated=now,
    )
    session.add(task)
    _add_item(session, task, content, upload_event, now)
    session.flush()
    return task


# --- Ordering and counts ------------------------------------------------------------------

_QUEUE_ORDER = case({name: rank for rank, name in enumerate(TASK_QUEUES)}, value=ReviewTask.queue)


def _queue_order() -> tuple[Any, ...]:
    return (
        _QUEUE_ORDER,
        ReviewTask.imminent_danger.desc(),
        ReviewTask.severity.desc(),
        ReviewTask.exact_verified,
        ReviewTask.created,
        ReviewTask.id,
    )


def _available_to(reviewer: Reviewer, now: datetime) -> list[Any]:
    """Open tasks this reviewer may take: unleased (or theirs), not a second opinion they
    asked for, and a second opinion only when asked of them or, unassigned, of any lead."""
    conditions: list[Any] = [
        ReviewTask.status == "open",
        or_(
            ReviewTask.lease_expires.is_(None),
            ReviewTask.lease_expires < now,
            ReviewTask.lease_user_id == reviewer.user_id,
        ),
        or_(ReviewTask.excluded_user_id.is_(None), ReviewTask.excluded_user_id != reviewer.user_id),
    ]
    assigned_here = ReviewTask.assigned_user_id == reviewer.user_id
    if reviewer.is_lead:
        conditions.append(or_(ReviewTask.assigned_user_id.is_(None), assigned_here))
    else:
        conditions.append(
            or_(
                assigned_here,
                # excluded_user_id: a second opinion was asked (an escalated one keeps its queue)
                ReviewTask.assigned_user_id.is_(None)
                & (ReviewTask.queue != "second_opinion")
                & ReviewTask.excluded_user_id.is_(None),
            )
        )
    return conditions


def list_queue(
    session: Session,
    reviewer: Reviewer,
    *,
    queue: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> list[ReviewTask]:
    """The tasks this reviewer may take, in the order they should be worked."""
    now = now or utcnow()
    query = select(ReviewTask).where(*_available_to(reviewer, now))
    if queue is not None:
        query = query.where(ReviewTask.queue == queue)
    return list(session.scalars(query.order_by(*_queue_order()).limit(limit)))


@dataclass(frozen=True)
class QueueCount:
    queue: str
    open: int
    oldest: datetime | None

    def age(self, now: datetime) -> timedelta | None:
        return None if self.oldest is None else now - self.oldest


def queue_counts(session: Session) -> list[QueueCount]:
    """Open tasks and the oldest one's creation time, for every queue (empty ones too)."""
    rows = {
        queue: (count, oldest)
        for queue, count, oldest in session.execute(
            select(ReviewTask.queue, func.count(), func.min(ReviewTask.created))
            .where(ReviewTask.status == "open")
            .group_by(ReviewTask.queue)
        )
    }
    result = []
    for name in TASK_QUEUES:
        count, oldest = rows.get(name, (0, None))
        if oldest is not None and oldest.tzinfo is None:  # SQLite's MIN() loses the type
            oldest = ReviewTask.created.type.process_result_value(oldest, session.bind.dialect)  # type: ignore[union-attr]
        result.append(QueueCount(name, int(count), oldest))
    return result


def related_tasks(session: Session, task: ReviewTask, *, limit: int = 20) -> list[ReviewTask]:
    """Other open tasks from the same uploader: decided one after the other, they make up
    one report about that account."""
    if task.account_id is None:
        return []
    return list(
        session.scalars(
            select(ReviewTask)
            .where(
                ReviewTask.account_id == task.account_id,
                ReviewTask.id != task.id,
                ReviewTask.status == "open",
            )
            .order_by(*_queue_order())
            .limit(limit)
        )
    )


# --- Leases -------------------------------------------------------------------------------


def get_task(session: Session, task_id: int) -> ReviewTask:
    task = session.get(ReviewTask, task_id)
    if task is None:
        raise TaskNotFound(f"no review task {task_id}")
    return task


def claim(
    session: Session,
    task_id: int,
    reviewer: Reviewer,
    *,
    lease: timedelta,
    now: datetime | None = None,
) -> ReviewTask:
    """Take (or renew) the lease on a task; LeaseLost when someone else holds it or the
    reviewer may not take it. A task a bank policy confirmed can be claimed too, so that a
    reviewer may still look at what nobody viewed."""
    now = now or utcnow()
    conditions = _available_to(reviewer, now)
    conditions[0] = or_(
        ReviewTask.status == "open",
        (ReviewTask.status == "decided") & ReviewTask.decided_by.is_(None),
    )
    taken = session.execute(
        update(ReviewTask)
        .where(ReviewTask.id == task_id, *conditions)
        .values(lease_user_id=reviewer.user_id, lease_expires=now + lease)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        get_task(session, task_id)  # TaskNotFound first, when it is that
        raise LeaseLost(f"task {task_id} is held by another reviewer or not yours to take")
    task = get_task(session, task_id)
    session.refresh(task, ["lease_user_id", "lease_expires"])
    return task


def claim_next(
    session: Session,
    reviewer: Reviewer,
    *,
    lease: timedelta,
    queue: str | None = None,
    now: datetime | None = None,
) -> ReviewTask | None:
    """Claim the first task in order this reviewer may take; None when there is none. A
    task another reviewer claims in the meantime is skipped."""
    now = now or utcnow()
    held = session.scalars(
        select(ReviewTask)
        .where(
            ReviewTask.status == "open",
            ReviewTask.lease_user_id == reviewer.user_id,
            ReviewTask.lease_expires >= now,
        )
        .order_by(*_queue_order())
        .limit(1)
    ).first()
    if held is not None and (queue is None or held.queue == queue):
        return claim(session, held.id, reviewer, lease=lease, now=now)
    for task in list_queue(session, reviewer, queue=queue, limit=20, now=now):
        try:
            return claim(session, task.id, reviewer, lease=lease, now=now)
        except LeaseLost:
            continue
    return None


def holds(task: ReviewTask, reviewer: Reviewer, now: datetime) -> bool:
    return (
        task.lease_user_id == reviewer.user_id
        and task.lease_expires is not None
        and task.lease_expires >= now
    )


def require_lease(
    session: Session, task_id: int, reviewer: Reviewer, now: datetime | None = None
) -> ReviewTask:
    """The task, if this reviewer holds its lease; LeaseLost otherwise."""
    task = get_task(session, task_id)
    if not holds(task, reviewer, now or utcnow()):
        raise LeaseLost(f"you do not hold task {task_id}: claim it first")
    return task


def release(session: Session, task: ReviewTask) -> None:
    task.lease_user_id = None
    task.lease_expires = None
