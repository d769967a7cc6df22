"""The outbox: a match's webhook calls written as `action_delivery` rows in the same
transaction as the match itself.

Nothing is sent here. Because the rows commit (or roll back) with the match, a crash can
never leave a recorded match whose actions were forgotten, nor an action for a match that was
never recorded; `vigil.actions.delivery` sends them afterwards, at least once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks.classification import parse_classification
from vigil.store import ActionDelivery, ActionRule, Content, UploadEvent
from vigil.store.types import utcnow

if TYPE_CHECKING:  # the pipeline imports this module: no import back at run time
    from vigil.pipeline.matching import FoundMatch, MatchOutcome

PAYLOAD_TYPE = "vigil.match"


def event_key(content: Content, upload_event: UploadEvent | None) -> str:
    """What a delivery is owed for: one upload, or (a scan with no upload event) the content.
    Re-scanning the same content fires nothing new; a new upload of it does."""
    if upload_event is not None:
        return f"upload:{upload_event.id}"
    return f"content:{content.id}"


def industry_of(match: FoundMatch) -> str | None:
    """The Industry Classification category (A1...B2) of a match's entry, if it has one."""
    if not match.classification:
        return None
    try:
        industry = parse_classification(match.classification).industry
    except ValueError:  # stored text is canonical; a damaged value simply has no category
        return None
    return None if industry is None else industry.value


def _rule_matches(rule: ActionRule, matches: Sequence[FoundMatch]) -> list[FoundMatch]:
    return [
        m
        for m in matches
        if m.bank_id == rule.bank_id
        and m.bank_kind != "suppress"
        and (rule.classification is None or industry_of(m) == rule.classification)
    ]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def build_payload(
    rule: ActionRule,
    *,
    idempotency_key: str,
    content: Content,
    matches: Sequence[FoundMatch],
    upload_event: UploadEvent | None,
    created: datetime,
) -> dict[str, Any]:
    """The JSON body of one delivery (docs/actions.md describes every field)."""
    uploader = (
        None
        if upload_event is None
        else {
            "account_id": upload_event.account_id,
            "screen_name": upload_event.screen_name,
            "ip_address": upload_event.ip_address,
            "event_time": _iso(upload_event.event_time),
        }
    )
    return {
        "id": idempotency_key,
        "type": PAYLOAD_TYPE,
        "action": rule.action,
        "rule": rule.name,
        "created": _iso(created),
        "content": {
            "content_id": content.id,
            "sha256": content.sha256,
            "md5": content.md5,
            "media_type": content.media_type,
            "size": content.size,
            "content_ref": None if upload_event is None else upload_event.content_ref,
        },
        "uploader": uploader,
        "matches": [m.as_json() for m in matches],
        # False as queued (fail closed): every attempt replaces it with the legal desk's
        # notice guard's answer at send time (`vigil.actions.delivery.with_notice`).
        "may_notify_user": False,
    }


def enqueue_actions(
    session: Session,
    *,
    content: Content,
    outcome: MatchOutcome,
    upload_event: UploadEvent | None = None,
    now: datetime | None = None,
) -> list[ActionDelivery]:
    """Add one pending delivery per enabled rule that the outcome's matches fire, unless that
    rule already owes (or delivered) one for the same event. Flushes, never commits: the
    caller commits the deliveries together with the match rows.

    A rule fires when its bank has a match in `outcome.matches` (suppressed matches are not
    there, and a suppression hit cancels everything) whose Industry category equals the
    rule's classification, when the rule has one. Returns the deliveries added.
    """
    if not outcome.matches or outcome.suppressing:
        return []
    bank_ids = {m.bank_id for m in outcome.matches}
    rules = session.scalars(
        select(ActionRule)
        .where(ActionRule.enabled.is_(True), ActionRule.bank_id.in_(bank_ids))
        .order_by(ActionRule.id)
    ).all()
    if not rules:
        return []
    if content.id is None or (upload_event is not None and upload_event.id is None):
        session.flush()
    key = event_key(content, upload_event)
    owed = set(
        session.scalars(
            select(ActionDelivery.rule_id).where(
                ActionDelivery.event_key == key,
                ActionDelivery.rule_id.in_([rule.id for rule in rules]),
            )
        )
    )
    now = now or utcnow()
    added: list[ActionDelivery] = []
    for rule in rules:
        matches = _rule_matches(rule, outcome.matches)
        if not matches or rule.id in owed:
            continue
        idempotency_key = uuid.uuid4().hex
        delivery = ActionDelivery(
            rule_id=rule.id,
            content_id=content.id,
            upload_event_id=None if upload_event is None else upload_event.id,
            event_key=key,
            idempotency_key=idempotency_key,
            payload=build_payload(
                rule,
                idempotency_key=idempotency_key,
                content=content,
                matches=matches,
                upload_event=upload_event,
                created=now,
            ),
            status="pending",
            attempts=0,
            next_attempt=now,
            created=now,
        )
        try:
            with session.begin_nested():  # another writer may have enqueued it meanwhile
                session.add(delivery)
        except IntegrityError:
            continue
        added.append(delivery)
    return added
