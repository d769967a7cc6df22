"""`GET /v1/accounts/{account_id}/notice`: whether the platform may tell a user about action
on their account (its own notice path). `match` scope, as platform services hold.

The answer is the legal desk's notice guard (`vigil.legal.notice`), reduced to a yes or no:
its reasons would reveal a non-disclosure order or a report to the platform's general
systems, so they never leave the legal desk.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from vigil.api.security import Matcher, State
from vigil.legal.notice import may_notify_user
from vigil.store import utcnow

router = APIRouter(prefix="/v1/accounts", tags=["notice"])

AccountId = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=256,
        description="The platform's account id, as sent in uploads' `uploader.account_id`.",
    ),
]


@router.get("/{account_id}/notice")
def account_notice(account_id: AccountId, state: State, _: Matcher) -> dict[str, Any]:
    """`may_notify_user`: true only when no non-disclosure order names the account, no
    report about it exists, and the platform's policy (`VIGIL_LEGAL_NOTICE_AFTER_ORDER`)
    allows notice; false when Vigil cannot tell. Ask again before each notice: the answer
    changes when an order arrives or ends."""
    with state.database.session() as session:
        decision = may_notify_user(
            session,
            account_id,
            notice_policy=state.settings.legal_notice_after_order,
            now=utcnow(),
        )
    return {"account_id": account_id, "may_notify_user": decision.allowed}
