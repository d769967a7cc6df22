"""The mail outbox: messages are rows written in the transaction that decides to send them
(a registration, a reminder), and sent afterwards by `send_pending` over SMTP (STARTTLS)
when `VIGIL_SMTP_HOST` is set. Without SMTP they wait, readable with `vigil legal mail`
(a development set-up). A sent message's body is blanked: it may hold a one-time link.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.store import MailMessage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def queue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    purpose: str,
    reference: str | None,
    now: datetime,
) -> MailMessage:
    message = MailMessage(
        to_address=to,
        subject=subject[:200],
        body=body,
        purpose=purpose,
        reference=reference,
        status="pending",
        attempts=0,
        created=now,
    )
    session.add(message)
    session.flush()
    return message


def list_mail(
    session: Session, *, status: str | None = None, to: str | None = None, limit: int = 100
) -> list[MailMessage]:
    query = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(MailMessage.status == status)
    if to is not None:
        query = query.where(MailMessage.to_address == to)
    return list(session.scalars(query))


def send_pending(session: Session, settings: Settings, now: datetime) -> int:
    """Send what waits (when SMTP is configured), committing each; how many were sent."""
    if not settings.smtp_host:
        return 0
    sent = 0
    waiting = session.scalars(
        select(MailMessage.id).where(MailMessage.status == "pending").order_by(MailMessage.id)
    ).all()
    session.commit()
    for message_id in waiting:
        message = session.get(MailMessage, message_id, with_for_update=True)
        if message is None or message.status != "pending":
            session.rollback()
            continue
        email = EmailMessage()
        email["From"] = settings.smtp_from
        email["To"] = message.to_address
        email["Subject"] = message.subject
        email.set_content(message.body)
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
                smtp.starttls()
                if settings.smtp_username and settings.smtp_password is not None:
                    smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as error:
            message.attempts += 1
            message.last_error = f"{type(error).__name__}: {error}"[:500]
            if message.attempts >= MAX_ATTEMPTS:
                message.status = "failed"
            log.warning("mail %d to %s not sent: %s", message.id, message.to_address, error)
            session.commit()
            continue
        message.status = "sent"
        message.sent_at = now
        message.body = ""
        session.commit()
        sent += 1
    return sent
