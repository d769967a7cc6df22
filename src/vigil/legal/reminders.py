"""Keeping the desk on time: reminders to a request's assignee once most of its time is
gone, escalation to the legal leads once it is overdue, warnings before a 2703(f)
preservation ends, expiring unused download links; and the server's worker that does all of
it every minute, then sends the mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.background import PeriodicWorker
from vigil.config import Settings
from vigil.legal.deadlines import clock, expiring_preservations, open_requests
from vigil.legal.desk import reference
from vigil.legal.mail import queue_mail, send_pending
from vigil.store import AppUser, Database, LegalRequest, MailMessage, Production, utcnow

log = logging.getLogger(__name__)


def _users_with(session: Session, *roles: str) -> list[AppUser]:
    """Enabled users holding every one of `roles` (and admins, who hold every role)."""
    users = session.scalars(select(AppUser).where(AppUser.disabled.is_(None))).all()
    return [
        u for u in users if u.email and ("admin" in u.roles or all(r in u.roles for r in roles))
    ]


def _leads(session: Session) -> list[AppUser]:
    """Who an overdue request goes to: legal leads (`legal` and `lead`), else admins."""
    leads = [u for u in _users_with(session, "legal", "lead") if "legal" in u.roles]
    return leads or [u for u in _users_with(session, "admin") if "admin" in u.roles]


def _summary(request: LegalRequest) -> str:
    return (
        f"{reference(request)}: {request.kind} from {request.agency}"
        f" ({request.requester_name}), due {request.due_at:%Y-%m-%d %H:%M} UTC."
    )


@dataclass
class ReminderRound:
    reminded: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    preservation_warnings: list[int] = field(default_factory=list)
    expired_downloads: int = 0


def remind_and_escalate(session: Session, settings: Settings, now: datetime) -> ReminderRound:
    """One pass over the open requests and the desk's preservations. Flushes."""
    result = ReminderRound()
    for request in open_requests(session):
        state = clock(request, settings, now).state
        if state in ("due_soon", "overdue") and request.reminded_at is None:
            assignee = session.get(AppUser, request.assignee_id) if request.assignee_id else None
            people = [assignee] if assignee is not None and assignee.email else None
            for person in people or _users_with(session, "legal"):
                queue_mail(
                    session,
                    to=person.email or "",
                    subject=f"Due soon: {reference(request)} ({request.kind})",
                    body=f"{_summary(request)}\n\nOpen it in the legal desk.\n",
                    purpose="reminder",
                    reference=reference(request),
                    now=now,
                )
            request.reminded_at = now
            result.reminded.append(request.id)
        if state == "overdue" and request.escalated_at is None:
            for person in _leads(session):
                queue_mail(
                    session,
                    to=person.email or "",
                    subject=f"OVERDUE: {reference(request)} ({request.kind})",
                    body=f"{_summary(request)}\n\nIt is overdue. Please take it or reassign it.\n",
                    purpose="escalation",
                    reference=reference(request),
                    now=now,
                )
            request.escalated_at = now
            result.escalated.append(request.id)
    for vault_clock in expiring_preservations(session, now):
        marker = f"preservation-expiry:{vault_clock.id}"
        if session.scalar(select(MailMessage.id).where(MailMessage.reference == marker).limit(1)):
            continue
        for person in _users_with(session, "legal"):
            queue_mail(
                session,
                to=person.email or "",
                subject=f"Preservation ending: {vault_clock.reference}",
                body=(
                    f"The 2703(f) preservation of vault item {vault_clock.item_id} for"
                    f" {vault_clock.reference} ends on {vault_clock.expires_at:%Y-%m-%d}."
                    " Renew it once (90 days) if the requester asks, or let it end.\n"
                ),
                purpose="preservation",
                reference=marker,
                now=now,
            )
        result.preservation_warnings.append(vault_clock.id)
    expired = session.execute(
        update(Production)
        .where(Production.status == "ready", Production.download_expires <= now)
        .values(status="expired", download_hash=None)
        .execution_options(synchronize_session=False)
    )
    result.expired_downloads = int(getattr(expired, "rowcount", 0) or 0)
    session.flush()
    return result


class LegalWorker(PeriodicWorker):
    """The server's legal-desk duties, every `poll_seconds`."""

    name = "vigil-legal"

    def __init__(self, database: Database, settings: Settings, *, poll_seconds: float = 60.0):
        super().__init__(poll_seconds)
        self.database = database
        self.settings = settings

    def run_once(self, now: datetime | None = None) -> ReminderRound:
        now = now or utcnow()
        with self.database.session(immediate=True) as session:
            result = remind_and_escalate(session, self.settings, now)
        if result.reminded or result.escalated:
            log.info(
                "legal desk: %d reminded, %d escalated", len(result.reminded), len(result.escalated)
            )
        with self.database.sessionmaker() as session:
            send_pending(session, self.settings, now)
        return result
