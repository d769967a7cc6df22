"""When each request is due, what the desk must do next, and how fast it answers.

Due times come from settings per kind: an emergency within the hour, a preservation letter
within a day, everything else within `legal_due_working_days` working days, or sooner when
the process carries its own date (a subpoena's return date, a warrant's date). The goal Vigil
sets itself is every emergency answered within the hour and every other request within five
working days; `answer_times` measures it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.store import LegalRequest, VaultClock
from vigil.store.legal_models import REQUEST_KINDS

OPEN_STATUSES = ("received", "verified")
"""Requests still owed an answer."""
GOAL_WORKING_DAYS = 5
GOAL_EMERGENCY = timedelta(hours=1)
PRESERVATION_WARNING = timedelta(days=14)
"""A preservation clock ending this soon is shown (and mailed) as expiring."""


def add_working_days(start: datetime, days: int) -> datetime:
    """`start` moved on by `days` working days (Saturdays and Sundays skipped)."""
    moment = start
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment


def due_at(
    kind: str, received_at: datetime, return_date: datetime | None, settings: Settings
) -> datetime:
    """When a request of `kind` received at `received_at` must be answered."""
    fixed = {
        "emergency": settings.legal_due_emergency_hours,
        "preservation": settings.legal_due_preservation_hours,
        "nondisclosure": settings.legal_due_nondisclosure_hours,
        "destroy": settings.legal_due_destroy_hours,
    }
    if kind in fixed:
        return received_at + timedelta(hours=fixed[kind])
    due = add_working_days(received_at, settings.legal_due_working_days)
    if return_date is not None and kind in ("subpoena", "warrant") and return_date < due:
        return max(return_date, received_at)
    return due


@dataclass(frozen=True)
class Clock:
    """A request's clock as a page shows it."""

    due_at: datetime
    left: timedelta
    state: str
    """`answered`, `overdue`, `due_soon` (the reminder point has passed) or `running`."""

    @property
    def label(self) -> str:
        if self.state == "answered":
            return "answered"
        span = abs(self.left)
        hours, rest = divmod(int(span.total_seconds()), 3600)
        text = f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h {rest // 60:02d}m"
        return f"overdue by {text}" if self.state == "overdue" else f"{text} left"


def remind_at(request: LegalRequest, settings: Settings) -> datetime:
    """When the assignee is reminded: once `legal_remind_fraction` of the time is gone."""
    window = request.due_at - request.received_at
    return request.received_at + window * settings.legal_remind_fraction


def clock(request: LegalRequest, settings: Settings, now: datetime) -> Clock:
    if request.answered_at is not None or request.status in ("closed", "refused"):
        return Clock(request.due_at, timedelta(0), "answered")
    left = request.due_at - now
    if left < timedelta(0):
        state = "overdue"
    elif now >= remind_at(request, settings):
        state = "due_soon"
    else:
        state = "running"
    return Clock(request.due_at, left, state)


def open_requests(session: Session) -> list[LegalRequest]:
    """Every request still owed an answer, the soonest due first."""
    return list(
        session.scalars(
            select(LegalRequest)
            .where(LegalRequest.status.in_(OPEN_STATUSES), LegalRequest.answered_at.is_(None))
            .order_by(LegalRequest.due_at, LegalRequest.id)
        )
    )


@dataclass(frozen=True)
class Dashboard:
    overdue: list[LegalRequest]
    due_soon: list[LegalRequest]
    running: list[LegalRequest]
    expiring_preservations: list[VaultClock]


def dashboard(session: Session, settings: Settings, now: datetime) -> Dashboard:
    """What is overdue, what is due soon, what else runs, and which 2703(f) preservations
    of the desk end within two weeks (renew them, or let them go)."""
    groups: dict[str, list[LegalRequest]] = {"overdue": [], "due_soon": [], "running": []}
    for request in open_requests(session):
        groups[clock(request, settings, now).state].append(request)
    return Dashboard(
        overdue=groups["overdue"],
        due_soon=groups["due_soon"],
        running=groups["running"],
        expiring_preservations=expiring_preservations(session, now),
    )


def expiring_preservations(session: Session, now: datetime) -> list[VaultClock]:
    """Running 2703(f) clocks set by the desk that end within `PRESERVATION_WARNING`."""
    return list(
        session.scalars(
            select(VaultClock)
            .where(
                VaultClock.reason == "preservation_request",
                VaultClock.reference.like("LR-%"),
                VaultClock.released_at.is_(None),
                VaultClock.expires_at > now,
                VaultClock.expires_at <= now + PRESERVATION_WARNING,
            )
            .order_by(VaultClock.expires_at, VaultClock.id)
        )
    )


def goal_for(kind: str, received_at: datetime) -> datetime:
    """The answer-by time of Vigil's own goal (not the legal deadline)."""
    if kind == "emergency":
        return received_at + GOAL_EMERGENCY
    return add_working_days(received_at, GOAL_WORKING_DAYS)


@dataclass(frozen=True)
class AnswerTimes:
    kind: str
    answered: int
    median: timedelta | None
    p90: timedelta | None
    within_goal: int
    open: int

    @property
    def goal_share(self) -> float | None:
        return None if not self.answered else self.within_goal / self.answered


def _percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at or above `share` of them."""
    ordered = sorted(values)
    rank = max(1, -(-int(share * 100) * len(ordered) // 100))
    return ordered[rank - 1]


def answer_times(session: Session) -> list[AnswerTimes]:
    """Per kind: how many were answered, the median and 90th-percentile time from receipt to
    answer, how many met Vigil's goal, and how many are still open."""
    rows = session.execute(
        select(
            LegalRequest.kind,
            LegalRequest.received_at,
            LegalRequest.answered_at,
            LegalRequest.status,
        )
    ).all()
    result = []
    for kind in REQUEST_KINDS:
        mine = [r for r in rows if r.kind == kind]
        answered = [r for r in mine if r.answered_at is not None]
        seconds = [(r.answered_at - r.received_at).total_seconds() for r in answered]
        result.append(
            AnswerTimes(
                kind=kind,
                answered=len(answered),
                median=timedelta(seconds=statistics.median(seconds)) if seconds else None,
                p90=timedelta(seconds=_percentile(seconds, 0.9)) if seconds else None,
                within_goal=sum(
                    1 for r in answered if r.answered_at <= goal_for(kind, r.received_at)
                ),
                open=sum(1 for r in mine if r.answered_at is None and r.status in OPEN_STATUSES),
            )
        )
    return result
