"""The legal-process desk in the console (`/console/legal`, role `legal`; `admin` passes):
the dashboard (what is overdue, due soon, running; preservations ending; answer times), the
manual entry of mailed or faxed process, a request's page (warning signs, clock, what it
names, its document, the verification checklist, assigning, refusing, closing, and the
action its kind calls for once verified: a scoped production, a preservation, a
destruction, recording an order), productions (revoke, reissue the single-use link, the
package of a request without an officer), and the officers and agency domains of the
law-enforcement portal (`vigil.web.portal`).

A production's password is shown once, on the page that answers the "Produce" form, to be
given to the requester by phone; it is never stored. Its single-use download link is mailed
to the officer by `build_production` (and shown on that page too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from vigil.legal import deadlines, intake, portal, production, verification
from vigil.legal.desk import (
    DeskUser,
    LegalError,
    RequestNotFound,
    get_request,
    parse_reference,
    reference,
)
from vigil.legal.intake import MAX_DOCUMENT_BYTES, NewRequest, NewTarget
from vigil.store import AppUser, LegalRequest, Officer, Production, VaultItem, utcnow
from vigil.store.legal_models import REQUEST_KINDS, TARGET_KINDS
from vigil.vault.accounts import connectors_from_settings
from vigil.vault.items import Reader, VaultError, open_vault, read_item
from vigil.vault.retention import RetentionError, renew
from vigil.vault.service import honour_preservation_requests
from vigil.web.security import ConsoleError, console_state, signed_in
from vigil.web.sessions import SignedIn
from vigil.web.templating import render as render_page

router = APIRouter(prefix="/console/legal", include_in_schema=False)
log = logging.getLogger(__name__)

LegalUser = Annotated[SignedIn, Depends(signed_in("legal"))]

KIND_NAMES = {
    "preservation": "Preservation letter (2703(f))",
    "subpoena": "Subpoena",
    "order_2703d": "Court order (2703(d))",
    "warrant": "Search warrant",
    "emergency": "Emergency disclosure request",
    "nondisclosure": "Non-disclosure order (2705(b))",
    "foreign": "Foreign authority's request",
    "destroy": "Request to destroy (2258B(c))",
}
PRODUCING_KINDS = ("subpoena", "order_2703d", "warrant", "emergency")
CATEGORY_NAMES = {
    "subscriber": "Basic subscriber information",
    "records": "Non-content records",
    "content": "Content",
}


# --- Reading forms (shared with the portal) ------------------------------------------------


def parse_targets(text: str | None) -> list[NewTarget]:
    """Targets from a textarea, one `kind:value` a line (blank lines skipped)."""
    return intake.parse_targets((text or "").splitlines())


def parse_day(label: str, value: str | None, *, end: bool = False) -> datetime | None:
    """A form's date (`YYYY-MM-DD`) as a UTC datetime: the start of the day, or its last
    moment with `end` (a records period's end, an order's expiry)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise LegalError(f"{label}: {text!r} is not a date (YYYY-MM-DD)") from None
    moment = datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
    return moment


def read_document(upload: UploadFile | None) -> tuple[bytes | None, str | None]:
    """The uploaded document's bytes and file name; (None, None) when none was chosen."""
    if upload is None or not upload.filename:
        return None, None
    data = upload.file.read(MAX_DOCUMENT_BYTES + 1)
    if not data:
        return None, None
    return intake.check_document(data), upload.filename[:200]


def request_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a request form, to fill it again after an error."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def new_request(values: Mapping[str, str], *, parent_id: int | None = None) -> NewRequest:
    """A `NewRequest` from a request form's fields (see `templates/legal/_request_fields`)."""
    return NewRequest(
        kind=values.get("kind", ""),
        requester_name=values.get("requester_name", ""),
        agency=values.get("agency", ""),
        targets=parse_targets(values.get("targets")),
        requester_email=values.get("requester_email") or None,
        requester_phone=values.get("requester_phone") or None,
        jurisdiction=values.get("jurisdiction") or None,
        country=values.get("country") or None,
        case_number=values.get("case_number") or None,
        document_reference=values.get("document_reference") or None,
        issued_on=parse_day("issued on", values.get("issued_on")),
        return_date=parse_day("return date", values.get("return_date")),
        records_from=parse_day("records from", values.get("records_from")),
        records_to=parse_day("records to", values.get("records_to"), end=True),
        description=values.get("description") or None,
        parent_id=parent_id,
        nondisclosure_until=parse_day("order until", values.get("nondisclosure_until"), end=True),
        nondisclosure_scope=values.get("nondisclosure_scope") or None,
    )


def parent_of(values: Mapping[str, str]) -> int | None:
    text = (values.get("parent") or "").strip()
    if not text:
        return None
    try:
        return parse_reference(text)
    except ValueError as error:
        raise LegalError(str(error)) from None


# --- Small helpers -------------------------------------------------------------------------


def _desk(user: SignedIn) -> DeskUser:
    return DeskUser(user.user_id, user.username, frozenset(user.roles))


def _reader(user: SignedIn) -> Reader:
    return Reader(user.username, frozenset(user.roles))


def _back(request_id: int, message: str) -> RedirectResponse:
    return RedirectResponse(
        f"/console/legal/requests/{request_id}?message={quote(message)}", status_code=303
    )


def _desk_users(session: Session) -> list[AppUser]:
    """Enabled users who may work the desk (legal or admin), by name."""
    users = session.scalars(
        select(AppUser).where(AppUser.disabled.is_(None)).order_by(AppUser.username)
    ).all()
    return [u for u in users if {"legal", "admin"} & set(u.roles)]


def _names(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(AppUser.id, AppUser.username).where(AppUser.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def _officer_email(session: Session, request: LegalRequest) -> str | None:
    """Where the production service mailed the single-use link: the request's officer, or
    None for a request that came without one (mail, fax)."""
    officer = session.get(Officer, request.officer_id) if request.officer_id else None
    return None if officer is None else officer.email


# --- Dashboard -----------------------------------------------------------------------------


@router.get("")
def dashboard_page(request: Request, user: LegalUser, message: str | None = None) -> Response:
    state = console_state(request)
    settings = state.settings
    now = utcnow()
    with state.database.session() as session:
        board = deadlines.dashboard(session, settings, now)
        recent = intake.list_requests(session, limit=50)
        everyone = [*board.overdue, *board.due_soon, *board.running, *recent]
        names = _names(session, [r.assignee_id for r in everyone])
        clocks = {r.id: deadlines.clock(r, settings, now) for r in everyone}
        items = {
            item.id: item
            for item in session.scalars(
                select(VaultItem).where(
                    VaultItem.id.in_([c.item_id for c in board.expiring_preservations])
                )
            )
        }
        return render_page(
            request,
            "legal/dashboard.html",
            {
                "active": "legal",
                "groups": (
                    ("overdue", "Overdue", board.overdue),
                    ("due_soon", "Due soon", board.due_soon),
                    ("running", "Running", board.running),
                ),
                "recent": recent,
                "clocks": clocks,
                "names": names,
                "preservations": board.expiring_preservations,
                "items": items,
                "answer_times": deadlines.answer_times(session),
                "kind_names": KIND_NAMES,
                "goal_days": deadlines.GOAL_WORKING_DAYS,
                "message": message,
                "now": now,
            },
        )


@router.post("/preservations/{clock_id}/renew")
def renew_preservation(
    request: Request, user: LegalUser, clock_id: Annotated[int, Path()]
) -> Response:
    """Renew a 2703(f) clock once, by 90 days (the requester asked for it)."""
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            clock = renew(session, clock_id, actor=f"user:{user.username}", now=utcnow())
            until = clock.expires_at
    except RetentionError as error:
        raise ConsoleError(409, str(error), title="Not renewed") from None
    text = f"Preservation renewed until {until:%Y-%m-%d}." if until else "Renewed."
    return RedirectResponse(f"/console/legal?message={quote(text)}", status_code=303)


# --- Manual entry --------------------------------------------------------------------------


def _new_form(
    request: Request,
    values: Mapping[str, str] | None = None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "legal/new.html",
        {
            "active": "legal",
            "kinds": REQUEST_KINDS,
            "kind_names": KIND_NAMES,
            "target_kinds": TARGET_KINDS,
            "values": dict(values or {}),
            "error": error,
            "desk": True,
        },
        status_code=status_code,
    )


@router.get("/new")
def new_request_form(request: Request, user: LegalUser) -> Response:
    return _new_form(request, {"kind": "subpoena"})


@router.post("/new")
async def file_manual_request(
    request: Request,
    user: LegalUser,
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record process that came by mail or fax: its fields, targets and scanned PDF."""
    form = await request.form()
    values = request_values(form)
    state = console_state(request)
    settings = state.settings

    def file() -> int:
        data, name = read_document(document)
        vault = open_vault(settings)
        with state.database.session(immediate=True) as session:
            filed = intake.file_request(
                session,
                vault,
                new_request(values, parent_id=parent_of(values)),
                channel="manual",
                created_by=f"user:{user.username}",
                settings=settings,
                now=utcnow(),
                document=data,
                document_name=name,
            )
            return filed.id

    try:
        request_id = await run_in_threadpool(file)
    except LegalError as error:
        return _new_form(request, values, error=str(error), status_code=400)
    return _back(request_id, "Request recorded. Work through its checklist before acting on it.")


# --- A request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OneTime:
    """What the page after a production shows once."""

    reference: str
    request_id: int
    production_id: int
    password: str | None
    link: str | None
    expires: datetime
    mailed_to: str | None


def _request_page(
    request: Request,
    user: SignedIn,
    request_id: int,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    state = console_state(request)
    settings = state.settings
    now = utcnow()
    with state.database.session() as session:
        try:
            legal_request = get_request(session, request_id)
        except RequestNotFound:
            raise ConsoleError(404, f"No legal request LR-{request_id:06d}.") from None
        ticked = {check.item: check for check in legal_request.checks}
        items = verification.checklist(legal_request)
        officer = (
            session.get(Officer, legal_request.officer_id) if legal_request.officer_id else None
        )
        productions = production.productions_of(session, request_id)
        names = _names(session, [legal_request.assignee_id])
        document = (
            session.get(VaultItem, legal_request.document_item_id)
            if legal_request.document_item_id
            else None
        )
        related_orders = session.scalars(
            select(LegalRequest)
            .where(LegalRequest.parent_id == request_id, LegalRequest.kind == "nondisclosure")
            .order_by(LegalRequest.id)
        ).all()
        verified = verification.is_verified(legal_request)
        open_request = legal_request.status not in ("closed", "refused")
        return render_page(
            request,
            "legal/request.html",
            {
                "active": "legal",
                "r": legal_request,
                "ref": reference(legal_request),
                "kind_name": KIND_NAMES.get(legal_request.kind, legal_request.kind),
                "clock": deadlines.clock(legal_request, settings, now),
                "items": items,
                "ticked": ticked,
                "officer": officer,
                "productions": productions,
                "assignee": names.get(legal_request.assignee_id or 0),
                "desk_users": _desk_users(session),
                "document": document,
                "parent_ref": (
                    f"LR-{legal_request.parent_id:06d}" if legal_request.parent_id else None
                ),
                "related_orders": related_orders,
                "verified": verified,
                "open": open_request,
                "producing": legal_request.kind in PRODUCING_KINDS,
                "categories": production.CATEGORIES,
                "category_names": CATEGORY_NAMES,
                "allowed": sorted(production.allowed_categories(legal_request)),
                "directions": verification.DIRECTIONS,
                "emergency_categories": intake.EMERGENCY_CATEGORIES,
                "now": now,
                "message": message,
                "error": error,
            },
            status_code=status_code,
        )


@router.get("/requests/{request_id}")
def request_page(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    message: str | None = None,
) -> Response:
    return _request_page(request, user, request_id, message=message)


T = TypeVar("T")


def _act(
    request: Request,
    user: SignedIn,
    request_id: int,
    action: Callable[[Session], T],
    done: str | Callable[[T], str],
) -> Response:
    """Run `action(session)` in a write transaction; back to the request with `done` (or
    what `done` makes of the action's result), or the request's page again with the
    refusal (409)."""
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            result = action(session)
    except RequestNotFound:
        raise ConsoleError(404, f"No legal request LR-{request_id:06d}.") from None
    except (LegalError, VaultError, RetentionError) as error:
        return _request_page(request, user, request_id, error=str(error), status_code=409)
    return _back(request_id, done(result) if callable(done) else done)


@router.post("/requests/{request_id}/document")
def read_document_route(
    request: Request, user: LegalUser, request_id: Annotated[int, Path()]
) -> Response:
    """The request's legal document (PDF) as a download; the read is audited."""
    state = console_state(request)
    vault = open_vault(state.settings)
    try:
        with state.database.session(immediate=True) as session:
            legal_request = get_request(session, request_id)
            if legal_request.document_item_id is None:
                raise ConsoleError(404, "This request has no document.")
            data = read_item(
                session,
                vault,
                legal_request.document_item_id,
                reader=_reader(user),
                reason=f"legal document of {reference(legal_request)}",
            )
            name = f"{reference(legal_request)}-document.pdf"
    except RequestNotFound:
        raise ConsoleError(404, f"No legal request LR-{request_id:06d}.") from None
    except VaultError as error:
        raise ConsoleError(409, str(error), title="Not read") from None
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/requests/{request_id}/check")
def tick_item(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    item: Annotated[str, Form(max_length=64)],
    direction: Annotated[str | None, Form(max_length=32)] = None,
    number: Annotated[str | None, Form(max_length=600)] = None,
    number_source: Annotated[str | None, Form(max_length=600)] = None,
    spoke_with: Annotated[str | None, Form(max_length=600)] = None,
    when: Annotated[str | None, Form(max_length=600)] = None,
    basis: Annotated[str | None, Form(max_length=600)] = None,
    advice: Annotated[str | None, Form(max_length=600)] = None,
    categories: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=600)] = None,
) -> Response:
    given: dict[str, Any] = {
        name: value
        for name, value in (
            ("direction", direction),
            ("number", number),
            ("number_source", number_source),
            ("spoke_with", spoke_with),
            ("when", when),
            ("basis", basis),
            ("advice", advice),
            ("note", note),
        )
        if value is not None
    }
    given["categories"] = list(categories or [])

    def action(session: Session) -> LegalRequest:
        return verification.tick(session, request_id, item, _desk(user), given, now=utcnow())

    def done(ticked: LegalRequest) -> str:
        if ticked.status == "verified":
            return "Checklist complete: the request is verified."
        return "Ticked."

    return _act(request, user, request_id, action, done)


@router.post("/requests/{request_id}/assign")
def assign_request(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    assignee: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def action(session: Session) -> str:
        if not assignee.strip():
            intake.assign(session, request_id, None)
            return "Unassigned."
        chosen = {u.id: u for u in _desk_users(session)}.get(
            int(assignee) if assignee.isdigit() else -1
        )
        if chosen is None:
            raise LegalError("assign the request to a legal user")
        intake.assign(session, request_id, chosen.id)
        return f"Assigned to {chosen.username}."

    return _act(request, user, request_id, action, lambda text: text)


@router.post("/requests/{request_id}/refuse")
def refuse_request(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def action(session: Session) -> None:
        verification.refuse(session, request_id, _desk(user), reason, now=utcnow())

    return _act(request, user, request_id, action, "Refused: nothing will be done for it.")


@router.post("/requests/{request_id}/close")
def close_request(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    outcome: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def action(session: Session) -> None:
        verification.close(session, request_id, _desk(user), outcome, now=utcnow())

    return _act(request, user, request_id, action, "Closed.")


@router.post("/requests/{request_id}/produce")
def produce(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    categories: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Build the production; the page that answers shows its password, once."""
    state = console_state(request)
    settings = state.settings
    vault = open_vault(settings)
    now = utcnow()
    try:
        with state.database.session(immediate=True) as session:
            built = production.build_production(
                session,
                vault,
                request_id,
                list(categories or []),
                user=_desk(user),
                connectors=connectors_from_settings(settings),
                settings=settings,
                now=now,
            )
            legal_request = get_request(session, request_id)
            link = production.download_link(settings, built.download_secret)
            mailed = _officer_email(session, legal_request)
            shown = OneTime(
                reference=reference(legal_request),
                request_id=request_id,
                production_id=built.production.id,
                password=built.password,
                link=link if legal_request.officer_id else None,
                expires=built.production.download_expires,
                mailed_to=mailed,
            )
            categories_done = list(built.production.categories)
    except RequestNotFound:
        raise ConsoleError(404, f"No legal request LR-{request_id:06d}.") from None
    except (LegalError, VaultError) as error:
        return _request_page(request, user, request_id, error=str(error), status_code=409)
    return render_page(
        request,
        "legal/produced.html",
        {
            "active": "legal",
            "shown": shown,
            "categories": [CATEGORY_NAMES[c] for c in categories_done],
        },
    )


@router.post("/requests/{request_id}/preserve")
def preserve_now(request: Request, user: LegalUser, request_id: Annotated[int, Path()]) -> Response:
    """Carry out a verified 2703(f) letter, then take what the vault does not hold yet in."""
    state = console_state(request)
    settings = state.settings

    def action(session: Session) -> int:
        return len(
            production.carry_out_preservation(session, request_id, _desk(user), now=utcnow())
        )

    response = _act(
        request,
        user,
        request_id,
        action,
        lambda n: f"Preserved: 90 days on what the vault holds for {n} account(s).",
    )
    if response.status_code == 303:
        # Take in now what the vault does not hold yet (the vault worker would within a
        # minute, and retries what fails here).
        try:
            with state.database.sessionmaker() as session:
                honour_preservation_requests(
                    session,
                    open_vault(settings),
                    state.media,
                    connectors_from_settings(settings),
                    utcnow(),
                )
        except Exception:
            log.exception("preservation for LR-%06d: the vault worker will retry", request_id)
    return response


@router.post("/requests/{request_id}/destroy")
def destroy(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    confirm: Annotated[str | None, Form()] = None,
) -> Response:
    state = console_state(request)
    vault = open_vault(state.settings)

    def action(session: Session) -> int:
        if confirm != "yes":
            raise LegalError("tick the box to confirm: destruction cannot be undone")
        return len(
            production.carry_out_destroy(session, vault, request_id, _desk(user), now=utcnow())
        )

    return _act(
        request,
        user,
        request_id,
        action,
        lambda n: f"Destroyed: {n} vault item(s) shredded.",
    )


@router.post("/requests/{request_id}/record")
def record_order(request: Request, user: LegalUser, request_id: Annotated[int, Path()]) -> Response:
    def action(session: Session) -> None:
        production.acknowledge_order(session, request_id, _desk(user), now=utcnow())

    return _act(request, user, request_id, action, "Recorded.")


@router.post("/requests/{request_id}/lift")
def lift(
    request: Request,
    user: LegalUser,
    request_id: Annotated[int, Path()],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def action(session: Session) -> None:
        production.lift_order(session, request_id, _desk(user), reason, now=utcnow())

    return _act(request, user, request_id, action, "The order is lifted.")


# --- Productions ---------------------------------------------------------------------------


def _production(session: Session, production_id: int) -> Production:
    found = session.get(Production, production_id)
    if found is None:
        raise ConsoleError(404, f"No production {production_id}.")
    return found


@router.post("/productions/{production_id}/revoke")
def revoke(request: Request, user: LegalUser, production_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    with state.database.session() as session:
        request_id = _production(session, production_id).request_id

    def action(session: Session) -> None:
        production.revoke_production(session, production_id, _desk(user))

    return _act(request, user, request_id, action, "Revoked: its link no longer works.")


@router.post("/productions/{production_id}/reissue")
def reissue(request: Request, user: LegalUser, production_id: Annotated[int, Path()]) -> Response:
    """A new single-use link (mailed to the officer, shown once here)."""
    state = console_state(request)
    settings = state.settings
    now = utcnow()
    with state.database.session() as session:
        request_id = _production(session, production_id).request_id
    try:
        with state.database.session(immediate=True) as session:
            secret = production.reissue_download(
                session, production_id, _desk(user), settings=settings, now=now
            )
            row = _production(session, production_id)
            legal_request = get_request(session, row.request_id)
            link = production.download_link(settings, secret)
            mailed = _officer_email(session, legal_request)
            shown = OneTime(
                reference=reference(legal_request),
                request_id=legal_request.id,
                production_id=production_id,
                password=None,
                link=link if legal_request.officer_id else None,
                expires=row.download_expires,
                mailed_to=mailed,
            )
    except LegalError as error:
        return _request_page(request, user, request_id, error=str(error), status_code=409)
    return render_page(request, "legal/produced.html", {"active": "legal", "shown": shown})


@router.post("/productions/{production_id}/package")
def package(request: Request, user: LegalUser, production_id: Annotated[int, Path()]) -> Response:
    """The encrypted package of a request that came without an officer (mail, fax), for the
    legal user to hand over; the read is audited."""
    state = console_state(request)
    vault = open_vault(state.settings)
    try:
        with state.database.session(immediate=True) as session:
            row = _production(session, production_id)
            legal_request = get_request(session, row.request_id)
            if legal_request.officer_id is not None:
                raise LegalError(
                    "the officer downloads this package in the portal (single-use link)"
                )
            if row.status == "revoked" or row.package_item_id is None:
                raise LegalError("this production was revoked or is no longer kept")
            data = read_item(
                session,
                vault,
                row.package_item_id,
                reader=_reader(user),
                reason=f"production {row.id} of {reference(legal_request)}, handed over by"
                " the legal team",
            )
            name = f"{reference(legal_request)}-production.zip"
    except (LegalError, VaultError) as error:
        raise ConsoleError(409, str(error), title="Not downloaded") from None
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# --- Officers and agency domains -----------------------------------------------------------


@router.get("/officers")
def officers_page(request: Request, user: LegalUser, message: str | None = None) -> Response:
    state = console_state(request)
    with state.database.session() as session:
        return render_page(
            request,
            "legal/officers.html",
            {
                "active": "legal",
                "officers": portal.list_officers(session),
                "domains": portal.list_domains(session),
                "message": message,
            },
        )


def _to_officers(message: str) -> RedirectResponse:
    return RedirectResponse(f"/console/legal/officers?message={quote(message)}", status_code=303)


@router.post("/domains")
def decide_domain(
    request: Request,
    user: LegalUser,
    domain: Annotated[str, Form(max_length=300)],
    decision: Annotated[str, Form(pattern="^(allow|refuse)$")],
    agency: Annotated[str | None, Form(max_length=300)] = None,
    note: Annotated[str | None, Form(max_length=3000)] = None,
) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            row = portal.decide_domain(
                session,
                domain,
                allow=decision == "allow",
                user=_desk(user),
                now=utcnow(),
                agency=agency,
                note=note,
            )
            text = f"{row.domain} {row.status}."
    except LegalError as error:
        raise ConsoleError(409, str(error), title="Not decided") from None
    return _to_officers(text)


@router.post("/officers/{officer_id}/status")
def officer_status(
    request: Request,
    user: LegalUser,
    officer_id: Annotated[int, Path()],
    status: Annotated[str, Form(max_length=20)],
) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            officer = portal.set_officer_status(session, officer_id, status, _desk(user))
            text = f"{officer.email} is {officer.status}."
    except LegalError as error:
        raise ConsoleError(409, str(error), title="Not changed") from None
    return _to_officers(text)


__all__ = [
    "new_request",
    "parent_of",
    "parse_day",
    "parse_targets",
    "read_document",
    "request_values",
    "router",
]
