"""The desk's requests, dashboard and answer times as plain JSON-ready dicts: one shape for
the command line (`vigil legal ... --json`) and the API (`/v1/legal`).

Nothing here changes anything; nothing here holds a secret (a production's password and
download secret are never stored, so they cannot leak from here).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.legal.deadlines import (
    GOAL_EMERGENCY,
    GOAL_WORKING_DAYS,
    AnswerTimes,
    Dashboard,
    clock,
)
from vigil.legal.desk import reference
from vigil.legal.production import productions_of
from vigil.legal.verification import checklist, missing
from vigil.store import AppUser, LegalRequest, VaultClock

GOAL = (
    f"every emergency answered within {GOAL_EMERGENCY.total_seconds() / 3600:g} hour and every"
    f" other request within {GOAL_WORKING_DAYS} working days"
)
"""Vigil's own goal for answer times, in words (not the legal deadline)."""


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def span(value: timedelta | None) -> str:
    """A duration as people read it: `2d 3h`, `4h 05m`, `12m`; `-` for none."""
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def request_summary(request: LegalRequest, settings: Settings, now: datetime) -> dict[str, Any]:
    """A request as a list shows it."""
    due = clock(request, settings, now)
    return {
        "number": reference(request),
        "id": request.id,
        "kind": request.kind,
        "status": request.status,
        "channel": request.channel,
        "agency": request.agency,
        "requester_name": request.requester_name,
        "requester_email": request.requester_email,
        "case_number": request.case_number,
        "received_at": iso(request.received_at),
        "due_at": iso(request.due_at),
        "clock": due.state,
        "clock_label": due.label,
        "signals": [signal["code"] for signal in request.signals],
        "assignee_id": request.assignee_id,
    }


def request_detail(
    session: Session, request: LegalRequest, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Everything about a request: what it names and what Vigil held of it at intake, the
    warning signs, the checklist (done and missing), and its productions."""
    row = request_summary(request, settings, now)
    assignee = session.get(AppUser, request.assignee_id) if request.assignee_id else None
    done = {check.item: check for check in request.checks}
    row.update(
        {
            "assignee": None if assignee is None else assignee.username,
            "requester_phone": request.requester_phone,
            "jurisdiction": request.jurisdiction,
            "country": request.country,
            "document_reference": request.document_reference,
            "document_item_id": request.document_item_id,
            "issued_on": iso(request.issued_on),
            "return_date": iso(request.return_date),
            "records_from": iso(request.records_from),
            "records_to": iso(request.records_to),
            "description": request.description,
            "parent": None if request.parent_id is None else f"LR-{request.parent_id:06d}",
            "nondisclosure_until": iso(request.nondisclosure_until),
            "nondisclosure_scope": request.nondisclosure_scope,
            "nondisclosure_lifted_at": iso(request.nondisclosure_lifted_at),
            "emergency_categories": list(request.emergency_categories),
            "created_by": request.created_by,
            "officer_id": request.officer_id,
            "verified_at": iso(request.verified_at),
            "answered_at": iso(request.answered_at),
            "closed_at": iso(request.closed_at),
            "outcome": request.outcome,
            "signal_messages": [dict(signal) for signal in request.signals],
            "targets": [
                {
                    "kind": target.kind,
                    "value": target.value,
                    "account_id": target.account_id,
                    "linked": dict(target.linked),
                }
                for target in request.targets
            ],
            "checklist": [
                {
                    "item": item.key,
                    "label": item.label,
                    "done": item.key in done,
                    "done_by": done[item.key].done_by if item.key in done else None,
                    "done_at": iso(done[item.key].done_at) if item.key in done else None,
                    "details": dict(done[item.key].details) if item.key in done else None,
                }
                for item in checklist(request)
            ],
            "missing": [item.key for item in missing(request)],
            "productions": [
                {
                    "id": production.id,
                    "status": production.status,
                    "categories": list(production.categories),
                    "files": len(production.manifest),
                    "package_sha256": production.package_sha256,
                    "custodian": production.custodian,
                    "built_by": production.built_by,
                    "built_at": iso(production.built_at),
                    "download_expires": iso(production.download_expires),
                    "downloaded_at": iso(production.downloaded_at),
                    "downloaded_by": production.downloaded_by,
                }
                for production in productions_of(session, request.id)
            ],
        }
    )
    return row


def _preservation(vault_clock: VaultClock) -> dict[str, Any]:
    return {
        "clock_id": vault_clock.id,
        "item_id": vault_clock.item_id,
        "reference": vault_clock.reference,
        "expires_at": iso(vault_clock.expires_at),
        "renewals": vault_clock.renewals,
    }


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    """Counts, and the request numbers of each group (the soonest due first)."""
    groups = {
        "overdue": board.overdue,
        "due_soon": board.due_soon,
        "running": board.running,
    }
    return {
        "counts": {
            **{name: len(requests) for name, requests in groups.items()},
            "expiring_preservations": len(board.expiring_preservations),
        },
        **{name: [reference(r) for r in requests] for name, requests in groups.items()},
        "expiring_preservations": [_preservation(c) for c in board.expiring_preservations],
    }


def answer_times_json(times: list[AnswerTimes]) -> dict[str, Any]:
    """Answer times per kind (seconds), with the goal they are measured against."""
    return {
        "goal": GOAL,
        "kinds": [
            {
                "kind": t.kind,
                "answered": t.answered,
                "median_seconds": None if t.median is None else t.median.total_seconds(),
                "p90_seconds": None if t.p90 is None else t.p90.total_seconds(),
                "within_goal": t.within_goal,
                "within_goal_share": t.goal_share,
                "open": t.open,
            }
            for t in times
        ],
    }
