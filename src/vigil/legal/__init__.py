"""The legal-process desk: law enforcement's requests taken in (portal, API, manual entry),
verified by a checklist, answered on deadline by productions scoped to the process, and the
single guard that decides whether a user may be told (docs/legal.md).

Modules, each small: `desk` (who works it, errors, request numbers), `intake` (filing,
linking targets, warning signs), `verification` (checklists), `deadlines` (due times, the
dashboard, answer times), `production` (scoped productions, preservation, destruction,
orders), `package` (the certified, encrypted package), `portal` (officers, agency domains,
portal sessions), `notice` (the notification guard), `mail` (the outbox) and `reminders`
(reminders, escalations and the server's worker). Service functions take a SQLAlchemy
`Session` and flush; the few that commit say so.
"""

from vigil.legal.deadlines import AnswerTimes, Dashboard, answer_times, clock, dashboard, due_at
from vigil.legal.desk import (
    DeskUser,
    LegalError,
    NotVerified,
    OutOfScope,
    RequestNotFound,
    get_request,
    parse_reference,
    reference,
)
from vigil.legal.intake import NewRequest, NewTarget, file_request, find_signals, list_requests
from vigil.legal.notice import NoticeDecision, may_notify_user
from vigil.legal.production import (
    BuiltProduction,
    build_production,
    carry_out_destroy,
    carry_out_preservation,
    check_scope,
    take_download,
)
from vigil.legal.reminders import LegalWorker, remind_and_escalate
from vigil.legal.verification import CHECKLISTS, missing, refuse, tick

__all__ = [
    "CHECKLISTS",
    "AnswerTimes",
    "BuiltProduction",
    "Dashboard",
    "DeskUser",
    "LegalError",
    "LegalWorker",
    "NewRequest",
    "NewTarget",
    "NotVerified",
    "NoticeDecision",
    "OutOfScope",
    "RequestNotFound",
    "answer_times",
    "build_production",
    "carry_out_destroy",
    "carry_out_preservation",
    "check_scope",
    "clock",
    "dashboard",
    "due_at",
    "file_request",
    "find_signals",
    "get_request",
    "list_requests",
    "may_notify_user",
    "missing",
    "parse_reference",
    "reference",
    "refuse",
    "remind_and_escalate",
    "take_download",
    "tick",
]
