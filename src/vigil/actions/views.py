"""Rules and deliveries as JSON, shared by `vigil actions ... --json` and `/v1/actions`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vigil.store import ActionDelivery, ActionRule, Bank


def rule_json(rule: ActionRule, bank: str | None = None) -> dict[str, Any]:
    """A rule; `bank` is its bank's name (read through the rule's session when not given)."""
    if bank is None:
        session = Session.object_session(rule)
        found = session.get(Bank, rule.bank_id) if session is not None else None
        bank = found.name if found is not None else None
    return {
        "id": rule.id,
        "name": rule.name,
        "bank": bank,
        "classification": rule.classification,
        "action": rule.action,
        "url": rule.url,
        "secret_env": rule.secret_env,
        "enabled": rule.enabled,
        "max_attempts": rule.max_attempts,
        "created": rule.created.isoformat(),
    }


def delivery_json(
    session: Session, delivery: ActionDelivery, rule: str | None = None
) -> dict[str, Any]:
    """A delivery (never its payload's uploader data: that stays in the database)."""
    if rule is None:
        found = session.get(ActionRule, delivery.rule_id)
        rule = found.name if found is not None else None
    return {
        "id": delivery.id,
        "rule": rule,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt": delivery.next_attempt.isoformat(),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "event_key": delivery.event_key,
        "idempotency_key": delivery.idempotency_key,
        "content_id": delivery.content_id,
        "created": delivery.created.isoformat(),
        "delivered": delivery.delivered.isoformat() if delivery.delivered else None,
    }
