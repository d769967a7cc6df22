"""`/v1/legal`: the legal-process desk for a legal team's own tools (a case-management system
filing the process it receives by mail or fax, a wall dashboard). `legal` scope (`admin`
passes).

Filing and reading only, on purpose: nothing here verifies a request or produces records. A
person verifies each request on the desk (the out-of-band call to a published number, an
emergency's second verifier) and builds its production there, so no token, however it
leaks, can disclose anything about a user. Filed requests appear on the desk at once
(`/console/legal`, `vigil legal requests`).

A refusal of the desk (a bad address, a period that ends before it starts, an unknown parent
request, a document that is not a PDF) is a 422 in the API's error shape; an unknown
request number is a 404.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil.api.errors import FieldError, problem
from vigil.api.security import State, require
from vigil.auth import TokenPrincipal
from vigil.legal import deadlines, intake
from vigil.legal.desk import LegalError, RequestNotFound, get_request, parse_reference
from vigil.legal.intake import MAX_DOCUMENT_BYTES, MAX_TARGETS, MAX_TEXT_CHARS
from vigil.legal.views import answer_times_json, dashboard_json, request_detail, request_summary
from vigil.store import utcnow
from vigil.store.legal_models import REQUEST_KINDS, REQUEST_STATUSES, TARGET_KINDS
from vigil.vault.items import open_vault

router = APIRouter(prefix="/v1/legal", tags=["legal"])

LegalToken = Annotated[TokenPrincipal, Depends(require("legal"))]

RequestKind = Literal[
    "preservation",
    "subpoena",
    "order_2703d",
    "warrant",
    "emergency",
    "nondisclosure",
    "foreign",
    "destroy",
]
RequestStatus = Literal["received", "verified", "produced", "closed", "refused"]
TargetKind = Literal["account", "screen_name", "content_ref", "hash", "report"]
assert get_args(RequestKind) == REQUEST_KINDS
assert get_args(RequestStatus) == REQUEST_STATUSES
assert get_args(TargetKind) == TARGET_KINDS

MAX_DOCUMENT_BASE64 = -(-MAX_DOCUMENT_BYTES // 3) * 4
"""The longest base64 text of a document of `MAX_DOCUMENT_BYTES`."""


class TargetIn(BaseModel):
    """One thing the process names."""

    model_config = ConfigDict(extra="forbid")

    kind: TargetKind
    value: str = Field(
        min_length=1,
        max_length=256,
        description="An account id, screen name, content reference, MD5 or SHA-256 (hex), or"
        " Vigil's report number.",
        examples=["acct-1001"],
    )


class RequestIn(BaseModel):
    """A piece of legal process as it was received (by mail, fax, hand)."""

    model_config = ConfigDict(extra="forbid")

    kind: RequestKind
    requester_name: str = Field(min_length=1, max_length=200)
    agency: str = Field(min_length=1, max_length=200)
    requester_email: str | None = Field(None, max_length=254)
    requester_phone: str | None = Field(None, max_length=40)
    jurisdiction: str | None = Field(None, max_length=200, description="The issuing court.")
    country: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166 code of the requesting authority (foreign requests).",
    )
    case_number: str | None = Field(None, max_length=100)
    document_reference: str | None = Field(
        None, max_length=200, description="The process's own number (docket, subpoena no.)."
    )
    issued_on: AwareDatetime | None = None
    return_date: AwareDatetime | None = Field(None, description="A subpoena's return date.")
    records_from: AwareDatetime | None = None
    records_to: AwareDatetime | None = None
    description: str | None = Field(
        None, max_length=MAX_TEXT_CHARS, description="What is asked for (emergency: the danger)."
    )
    parent: str | int | None = Field(
        None,
        description="A non-disclosure order's request: its number (LR-000012) or id.",
        examples=["LR-000012"],
    )
    nondisclosure_until: AwareDatetime | None = Field(
        None, description="A non-disclosure order's expiry (none: until a court lifts it)."
    )
    nondisclosure_scope: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    targets: list[TargetIn] = Field(default_factory=list, max_length=MAX_TARGETS)
    document_pdf_base64: str | None = Field(
        None,
        description=f"The legal document: a PDF of at most {MAX_DOCUMENT_BYTES // 2**20} MiB,"
        " base64-encoded. It is sealed in the evidence vault.",
    )


def _refused(error: LegalError, *, missing: int = 422) -> JSONResponse:
    """A refusal of the desk in the API's error shape: `missing` for an unknown request (404
    when it is the one addressed, 422 when a body names it), 422 otherwise."""
    if isinstance(error, RequestNotFound) and missing == 404:
        return problem(404, str(error), "not_found")
    return problem(422, str(error), "invalid_value")


def _parent(value: str | int | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_reference(str(value))
    except ValueError as error:
        raise FieldError(["body", "parent"], str(error)) from None


def _document(text: str | None) -> bytes | None:
    if text is None:
        return None
    if len(text) > MAX_DOCUMENT_BASE64:  # checked here: a validation error would echo it all
        raise FieldError(
            ["body", "document_pdf_base64"],
            f"the document is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB",
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(["body", "document_pdf_base64"], "not valid base64") from None
    try:
        return intake.check_document(data)
    except LegalError as error:
        raise FieldError(["body", "document_pdf_base64"], str(error)) from None


@router.post("/requests", status_code=201, response_model=None)
def file_request(body: RequestIn, state: State, token: LegalToken) -> dict[str, Any] | JSONResponse:
    """File a request received outside the portal (channel `api`, filed by `token:<name>`):
    its document is sealed in the vault, what it names is linked to what Vigil holds, its
    due time is set and its warning signs found. Answers the request as the desk sees it
    (`number`, `status`, `due_at`, `signals`, `targets` with what each is `linked` to).

    Nothing is verified or produced through the API, on purpose: a person verifies each
    request on the desk (the out-of-band call, an emergency's second verifier) and produces
    there."""
    document = _document(body.document_pdf_base64)
    new = intake.NewRequest(
        kind=body.kind,
        requester_name=body.requester_name,
        agency=body.agency,
        targets=[intake.NewTarget(t.kind, t.value) for t in body.targets],
        requester_email=body.requester_email,
        requester_phone=body.requester_phone,
        jurisdiction=body.jurisdiction,
        country=body.country,
        case_number=body.case_number,
        document_reference=body.document_reference,
        issued_on=body.issued_on,
        return_date=body.return_date,
        records_from=body.records_from,
        records_to=body.records_to,
        description=body.description,
        parent_id=_parent(body.parent),
        nondisclosure_until=body.nondisclosure_until,
        nondisclosure_scope=body.nondisclosure_scope,
    )
    settings = state.settings
    now = utcnow()
    try:
        with state.database.session(immediate=True) as session:
            request = intake.file_request(
                session,
                open_vault(settings),
                new,
                channel="api",
                created_by=f"token:{token.name}",
                settings=settings,
                now=now,
                document=document,
                document_name=None if document is None else "document.pdf",
            )
            return request_detail(session, request, settings, now)
    except LegalError as error:
        return _refused(error)


@router.get("/requests")
def list_requests(
    state: State,
    _: LegalToken,
    status: Annotated[RequestStatus | None, Query()] = None,
    kind: Annotated[RequestKind | None, Query()] = None,
    account: Annotated[
        str | None, Query(max_length=256, description="Requests naming this account.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Requests, the newest first, with their clocks and warning signs."""
    now = utcnow()
    with state.database.session() as session:
        found = intake.list_requests(
            session, status=status, kind=kind, account_id=account, limit=limit
        )
        return {"requests": [request_summary(r, state.settings, now) for r in found]}


@router.get("/requests/{number}", response_model=None)
def get_one(
    number: Annotated[str, PathParam(max_length=32, examples=["LR-000012"])],
    state: State,
    _: LegalToken,
) -> dict[str, Any] | JSONResponse:
    """One request: what it names (and what Vigil held of it at intake), its warning signs,
    its checklist (done and missing) and its productions (never their passwords or links)."""
    try:
        request_id = parse_reference(number)
    except ValueError as error:
        raise FieldError(["path", "number"], str(error)) from None
    try:
        with state.database.session() as session:
            request = get_request(session, request_id)
            return request_detail(session, request, state.settings, utcnow())
    except LegalError as error:
        return _refused(error, missing=404)


@router.get("/dashboard")
def dashboard(state: State, _: LegalToken) -> dict[str, Any]:
    """How many requests are overdue, due soon and running (and their numbers, the soonest
    due first), and the desk's 2703(f) preservations ending within two weeks."""
    with state.database.session() as session:
        return dashboard_json(deadlines.dashboard(session, state.settings, utcnow()))


@router.get("/stats")
def stats(state: State, _: LegalToken) -> dict[str, Any]:
    """Answer times per kind (seconds): answered, median, 90th percentile, how many within
    Vigil's goal (`goal`), how many still open."""
    with state.database.session() as session:
        return answer_times_json(deadlines.answer_times(session))
