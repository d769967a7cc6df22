"""The verification checklist: nothing is produced, preserved or destroyed for a request
until every item of its kind's checklist is ticked by a legal user.

Fraudulent emergency requests from hijacked police mailboxes are common, so the first item
is always the requester's identity confirmed out of band: who called whom, on which number,
found where (a published number, never one the request itself gives), and when. An
emergency also needs a second legal user, other than whoever ticked anything else, to verify
it and say what the emergency needs disclosed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from vigil.legal.desk import DeskUser, LegalError, get_request
from vigil.legal.intake import EMERGENCY_CATEGORIES
from vigil.store import LegalCheck, LegalRequest


@dataclass(frozen=True)
class CheckItem:
    key: str
    label: str
    fields: tuple[str, ...] = ()
    """Details the person must give (each non-empty)."""


IDENTITY = CheckItem(
    "identity",
    "Requester's identity confirmed out of band",
    ("direction", "number", "number_source", "spoke_with", "when"),
)
DOCUMENT = CheckItem("document", "Document signed by the issuing authority")
JURISDICTION = CheckItem("jurisdiction", "Within the issuer's jurisdiction and ours")
DATES = CheckItem("dates", "Dates sane (issued before receipt, not expired, period sensible)")
DANGER = CheckItem(
    "danger",
    "Good-faith belief of danger of death or serious physical injury (2702(b)(8))",
    ("basis",),
)
SECOND = CheckItem(
    "second_verification",
    "Second legal user's verification of the emergency",
    ("categories",),
)
COUNSEL = CheckItem("counsel", "Counsel reviewed the foreign request", ("advice",))

CHECKLISTS: dict[str, tuple[CheckItem, ...]] = {
    "preservation": (IDENTITY, DOCUMENT, DATES),
    "subpoena": (IDENTITY, DOCUMENT, JURISDICTION, DATES),
    "order_2703d": (IDENTITY, DOCUMENT, JURISDICTION, DATES),
    "warrant": (IDENTITY, DOCUMENT, JURISDICTION, DATES),
    "emergency": (IDENTITY, DANGER, DATES, SECOND),
    "nondisclosure": (IDENTITY, DOCUMENT, JURISDICTION, DATES),
    "foreign": (IDENTITY, DOCUMENT, COUNSEL, DATES),
    "destroy": (IDENTITY, DOCUMENT, DATES),
}
DIRECTIONS = ("we_called", "they_called")
MAX_DETAIL_CHARS = 500


def checklist(request: LegalRequest) -> tuple[CheckItem, ...]:
    return CHECKLISTS[request.kind]


def missing(request: LegalRequest) -> list[CheckItem]:
    """The items not ticked yet."""
    done = {check.item for check in request.checks}
    return [item for item in checklist(request) if item.key not in done]


def is_verified(request: LegalRequest) -> bool:
    return request.verified_at is not None and not missing(request)


def _details(item: CheckItem, given: Mapping[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for name in item.fields:
        value = given.get(name)
        if name == "categories":
            chosen = [value] if isinstance(value, str) else list(value or [])
            unknown = [c for c in chosen if c not in EMERGENCY_CATEGORIES]
            if unknown or not chosen:
                raise LegalError(
                    "say what the emergency needs disclosed: one or more of "
                    + ", ".join(EMERGENCY_CATEGORIES)
                )
            details[name] = [c for c in EMERGENCY_CATEGORIES if c in chosen]
            continue
        text = str(value or "").strip()
        if not text:
            raise LegalError(f"{item.label}: {name.replace('_', ' ')} is required")
        if len(text) > MAX_DETAIL_CHARS:
            raise LegalError(f"{item.label}: {name} is longer than {MAX_DETAIL_CHARS} characters")
        details[name] = text
    if item is IDENTITY and details["direction"] not in DIRECTIONS:
        raise LegalError(f"direction is one of {', '.join(DIRECTIONS)}")
    note = str(given.get("note") or "").strip()
    if note:
        details["note"] = note[:MAX_DETAIL_CHARS]
    return details


def tick(
    session: Session,
    request_id: int,
    item_key: str,
    user: DeskUser,
    details: Mapping[str, Any],
    *,
    now: datetime,
) -> LegalRequest:
    """Tick one checklist item with its details. The emergency's second verification must
    come from a legal user who ticked nothing else on it, and only once the rest is done.
    When the last item is ticked the request is verified."""
    user.require_desk("verify legal requests")
    request = get_request(session, request_id, lock=True)
    if request.status not in ("received",):
        raise LegalError(f"request is {request.status}: its checklist is closed")
    items = {item.key: item for item in checklist(request)}
    item = items.get(item_key)
    if item is None:
        raise LegalError(f"{item_key!r} is not on a {request.kind} checklist: {', '.join(items)}")
    if any(check.item == item_key for check in request.checks):
        raise LegalError(f"{item.label}: already ticked")
    if item is SECOND:
        others = [c for c in request.checks if c.item != SECOND.key]
        if len(others) < len(items) - 1:
            raise LegalError("the second verification comes after every other item")
        if any(c.done_by_id == user.user_id for c in others):
            raise LegalError(
                "the second verification must come from another legal user than the one who"
                " ticked the rest"
            )
    request.checks.append(
        LegalCheck(
            item=item_key,
            done_by_id=user.user_id,
            done_by=user.username,
            done_at=now,
            details=_details(item, details),
        )
    )
    session.flush()
    if item is SECOND:
        request.emergency_categories = list(request.checks[-1].details["categories"])
    if not missing(request):
        request.status = "verified"
        request.verified_at = now
    session.flush()
    return request


def refuse(
    session: Session, request_id: int, user: DeskUser, reason: str, *, now: datetime
) -> LegalRequest:
    """Refuse a request (not genuine, out of jurisdiction, defective): nothing will be done
    for it. A refused non-disclosure order no longer blocks notices."""
    user.require_desk("refuse legal requests")
    text = (reason or "").strip()
    if not text:
        raise LegalError("say why the request is refused")
    request = get_request(session, request_id, lock=True)
    if request.status in ("closed", "refused"):
        raise LegalError(f"request is already {request.status}")
    request.status = "refused"
    request.outcome = f"refused by {user.username}: {text[:MAX_DETAIL_CHARS]}"
    request.closed_at = now
    request.answered_at = request.answered_at or now
    session.flush()
    return request


def close(
    session: Session, request_id: int, user: DeskUser, outcome: str, *, now: datetime
) -> LegalRequest:
    """Close an answered request (or one withdrawn by its requester)."""
    user.require_desk("close legal requests")
    request = get_request(session, request_id, lock=True)
    if request.status in ("closed", "refused"):
        raise LegalError(f"request is already {request.status}")
    request.status = "closed"
    request.outcome = (outcome or "closed").strip()[:MAX_DETAIL_CHARS]
    request.closed_at = now
    session.flush()
    return request
