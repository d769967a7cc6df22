"""The notice guard: the one place that decides whether anything about an account may be
told to its user (a webhook's `may_notify_user`, the platform's `/v1/accounts/{id}/notice`).

Not allowed, in this order of reasons:

- no account is named (nothing can be checked);
- an active non-disclosure order (18 U.S.C. 2705(b)) names the account: a `legal_request` of
  kind `nondisclosure`, not `refused`, not lifted, whose `nondisclosure_until` is unset
  (until a court lifts it) or after `now`, with a `legal_target` whose `account_id` is the
  account (the order's own targets, or those of the request it came with, `parent_id`). An
  order counts from the moment it is received, before it is verified;
- a report to the CyberTipline about the account exists (`report.account_key`), in any
  status but `retracted`: telling a suspect can warn them before law enforcement acts.

Otherwise the platform's configured policy (`VIGIL_LEGAL_NOTICE_AFTER_ORDER`) decides. The
guard fails closed: when the database cannot answer, notice is not allowed.

The reasons name orders and reports: they are for the legal desk's eyes only, never for the
platform's general systems nor the user. This module imports only `vigil.store` (and
SQLAlchemy), so lower rooms (`vigil.actions`) may call it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from vigil.store import LegalRequest, LegalTarget, Report

logger = logging.getLogger("vigil.legal")

NO_ACCOUNT = "no account named"
POLICY_ALLOWS = "platform policy allows notice"
POLICY_FORBIDS = "platform policy: no notice"
_BATCH = 500
"""Account ids per `IN (...)` query."""


@dataclass(frozen=True)
class NoticeDecision:
    """Whether a user may be told, and why (or why not): the reasons are for the legal desk
    only (they name orders and reports)."""

    allowed: bool
    reasons: tuple[str, ...]


def _reference(request_id: int) -> str:
    return f"LR-{request_id:06d}"


def _order_in_force(now: datetime) -> ColumnElement[bool]:
    """An order that forbids notice at `now`. A lift stamped later than `now` has not
    happened yet at `now` (fail closed)."""
    return (
        (LegalRequest.kind == "nondisclosure")
        & (LegalRequest.status != "refused")
        & or_(
            LegalRequest.nondisclosure_lifted_at.is_(None),
            LegalRequest.nondisclosure_lifted_at > now,
        )
        & or_(LegalRequest.nondisclosure_until.is_(None), LegalRequest.nondisclosure_until > now)
    )


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    distinct = sorted({v for v in values if v})
    for start in range(0, len(distinct), _BATCH):
        yield distinct[start : start + _BATCH]


def _orders(session: Session, account_ids: Iterable[str], now: datetime) -> dict[str, list[str]]:
    """account id -> reasons, one per active order naming it (directly, or through the
    request the order came with)."""
    found: dict[str, set[tuple[int, datetime | None]]] = {}
    for chunk in _chunks(account_ids):
        direct = (
            select(LegalTarget.account_id, LegalRequest.id, LegalRequest.nondisclosure_until)
            .join(LegalRequest, LegalRequest.id == LegalTarget.request_id)
            .where(LegalTarget.account_id.in_(chunk), _order_in_force(now))
        )
        through_parent = (
            select(LegalTarget.account_id, LegalRequest.id, LegalRequest.nondisclosure_until)
            .join(LegalRequest, LegalRequest.parent_id == LegalTarget.request_id)
            .where(LegalTarget.account_id.in_(chunk), _order_in_force(now))
        )
        for query in (direct, through_parent):
            for account_id, request_id, until in session.execute(query):
                if account_id is not None:
                    found.setdefault(account_id, set()).add((request_id, until))
    return {
        account_id: [
            f"non-disclosure order {_reference(request_id)} "
            + ("until lifted" if until is None else f"until {until.date().isoformat()}")
            for request_id, until in sorted(orders, key=lambda order: order[0])
        ]
        for account_id, orders in found.items()
    }


def _reports(session: Session, account_ids: Iterable[str]) -> dict[str, list[str]]:
    """account id -> reasons, one per report about it that is not retracted."""
    found: dict[str, list[str]] = {}
    for chunk in _chunks(account_ids):
        rows = session.execute(
            select(Report.account_key, Report.id)
            .where(Report.account_key.in_(chunk), Report.status != "retracted")
            .order_by(Report.id)
        )
        for account_key, report_id in rows:
            found.setdefault(account_key, []).append(f"CSAM report {report_id} about the account")
    return found


def _decide(
    account_id: str | None,
    orders: dict[str, list[str]],
    reports: dict[str, list[str]],
    notice_policy: bool,
) -> NoticeDecision:
    if not account_id:
        return NoticeDecision(False, (NO_ACCOUNT,))
    reasons = (*orders.get(account_id, ()), *reports.get(account_id, ()))
    if reasons:
        return NoticeDecision(False, reasons)
    if notice_policy:
        return NoticeDecision(True, (POLICY_ALLOWS,))
    return NoticeDecision(False, (POLICY_FORBIDS,))


def _failed(error: Exception) -> NoticeDecision:
    logger.error("notice guard could not decide: %s; notice refused", type(error).__name__)
    return NoticeDecision(False, (f"notice guard could not decide: {type(error).__name__}",))


def may_notify_users(
    session: Session,
    account_ids: Iterable[str | None],
    *,
    notice_policy: bool,
    now: datetime,
) -> dict[str | None, NoticeDecision]:
    """`may_notify_user` for many accounts at once (two queries a 500 accounts): a decision
    for each account given. Fails closed: any error refuses notice for every one of them."""
    wanted = list(dict.fromkeys(account_ids))
    named = [a for a in wanted if a]
    try:
        if named:
            # A savepoint: a failed query must not spoil the caller's transaction.
            with session.begin_nested():
                orders = _orders(session, named, now)
                reports = _reports(session, named)
        else:
            orders, reports = {}, {}
    except Exception as error:  # fail closed, whatever went wrong
        failed = _failed(error)
        return {a: (failed if a else NoticeDecision(False, (NO_ACCOUNT,))) for a in wanted}
    return {a: _decide(a, orders, reports, notice_policy) for a in wanted}


def may_notify_user(
    session: Session, account_id: str | None, *, notice_policy: bool, now: datetime
) -> NoticeDecision:
    """Whether the user of `account_id` may be told of anything about their account at `now`
    (the module's docstring gives the rules); `notice_policy` is the platform's policy once
    nothing forbids notice (`Settings.legal_notice_after_order`). Never raises for a
    database error: it answers not allowed, with the reason, and logs it."""
    return may_notify_users(session, [account_id], notice_policy=notice_policy, now=now)[account_id]
