"""What the console shows of a task: its items with their uploads, matches and reveals, its
history with who decided, and the tasks related to it. Read-only; one place for the queries
so the pages stay thin."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.review.decisions import full_reveals, task_history
from vigil.review.queue import get_task, related_tasks
from vigil.store import (
    AppUser,
    Content,
    Match,
    ReviewDecision,
    ReviewItem,
    ReviewTask,
    UploadEvent,
)

INDUSTRY_BY_SEVERITY = {4: "A1", 3: "A2", 2: "B1", 1: "B2", 0: None}


@dataclass(frozen=True)
class ItemView:
    item: ReviewItem
    content: Content
    upload: UploadEvent | None
    matches: list[Match]
    viewed_by: str | None
    """Who revealed the whole file first (None: nobody has)."""
    viewed_at: datetime | None


@dataclass(frozen=True)
class DecisionView:
    decision: ReviewDecision
    by: str
    """The decider's name, or "bank policy"."""


@dataclass
class TaskView:
    task: ReviewTask
    items: list[ItemView]
    history: list[DecisionView]
    related: list[ReviewTask]
    accounts: list[str] = field(default_factory=list)

    @property
    def industry(self) -> str | None:
        """The most severe classification the matches carry (pre-selects the form)."""
        return INDUSTRY_BY_SEVERITY[self.task.severity]

    @property
    def proposals(self) -> list[DecisionView]:
        return [d for d in self.history if d.decision.kind == "second_opinion"]


def user_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    return {
        user.id: user.display_name or user.username
        for user in session.scalars(select(AppUser).where(AppUser.id.in_(user_ids)))
    }


def decision_views(session: Session, decisions: list[ReviewDecision]) -> list[DecisionView]:
    names = user_names(session, {d.user_id for d in decisions if d.user_id is not None})
    return [
        DecisionView(d, names.get(d.user_id, "?") if d.user_id is not None else "bank policy")
        for d in decisions
    ]


def task_view(session: Session, task_id: int) -> TaskView:
    task = get_task(session, task_id)
    items = list(task.items)
    contents = {
        c.id: c
        for c in session.scalars(
            select(Content).where(Content.id.in_({i.content_id for i in items}))
        )
    }
    uploads = {
        u.id: u
        for u in session.scalars(
            select(UploadEvent).where(
                UploadEvent.id.in_({i.upload_event_id for i in items if i.upload_event_id})
            )
        )
    }
    matches: dict[int, list[Match]] = defaultdict(list)
    for match in session.scalars(
        select(Match)
        .where(Match.content_id.in_(contents.keys()), Match.suppressed.is_(False))
        .order_by(Match.distance, Match.id)
    ):
        matches[match.content_id].append(match)
    reveals = full_reveals(session, [i.id for i in items])
    names = user_names(session, {r.user_id for r in reveals.values()})
    views = [
        ItemView(
            item=item,
            content=contents[item.content_id],
            upload=uploads.get(item.upload_event_id) if item.upload_event_id else None,
            matches=matches[item.content_id],
            viewed_by=names.get(reveals[item.id].user_id) if item.id in reveals else None,
            viewed_at=reveals[item.id].started if item.id in reveals else None,
        )
        for item in items
    ]
    accounts = sorted({v.upload.account_id for v in views if v.upload and v.upload.account_id})
    return TaskView(
        task=task,
        items=views,
        history=decision_views(session, task_history(session, task.id)),
        related=related_tasks(session, task),
        accounts=accounts,
    )


def recent_decisions(
    session: Session, *, user_id: int | None = None, limit: int = 100
) -> list[DecisionView]:
    """The latest decisions (of one reviewer, or everyone's), newest first."""
    query = select(ReviewDecision).order_by(ReviewDecision.created.desc(), ReviewDecision.id.desc())
    if user_id is not None:
        query = query.where(ReviewDecision.user_id == user_id)
    return decision_views(session, list(session.scalars(query.limit(limit))))


def item_media(session: Session, item_id: int) -> tuple[ReviewItem, Content]:
    """An item and its content; LookupError when there is no such item."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise LookupError(f"no review item {item_id}")
    content = session.get(Content, item.content_id)
    assert content is not None  # item rows cascade with their content
    return item, content
