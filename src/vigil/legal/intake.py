"""Taking legal process in, from the portal, the API or a legal user's hands: validating it,
sealing its document in the vault, linking what it names to what Vigil holds, setting its
due time and finding the warning signs a person must see before acting on it.

Functions take a SQLAlchemy `Session`; they flush, never commit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.legal.deadlines import due_at
from vigil.legal.desk import LegalError, get_request, reference
from vigil.store import (
    AgencyDomain,
    Content,
    LegalRequest,
    LegalTarget,
    Officer,
    Report,
    UploadEvent,
    VaultItem,
)
from vigil.store.legal_models import REQUEST_CHANNELS, REQUEST_KINDS, TARGET_KINDS
from vigil.vault import Vault, preserve
from vigil.vault.items import account_clause
from vigil.vault.retention import Clock

MAX_TARGETS = 500
MAX_TEXT_CHARS = 5000
MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
DOMESTIC = ("US", None)
_EMAIL = re.compile(r"^[^@\s]{1,64}@([A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+)$")
_HEX = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{64}$")
EMERGENCY_CATEGORIES = ("subscriber", "records", "content")


@dataclass(frozen=True)
class NewTarget:
    kind: str
    value: str


@dataclass(frozen=True)
class NewRequest:
    """A request as it arrives, before validation."""

    kind: str
    requester_name: str
    agency: str
    targets: Sequence[NewTarget] = ()
    requester_email: str | None = None
    requester_phone: str | None = None
    jurisdiction: str | None = None
    country: str | None = None
    case_number: str | None = None
    document_reference: str | None = None
    issued_on: datetime | None = None
    return_date: datetime | None = None
    records_from: datetime | None = None
    records_to: datetime | None = None
    description: str | None = None
    parent_id: int | None = None
    nondisclosure_until: datetime | None = None
    nondisclosure_scope: str | None = None


def _text(label: str, value: str | None, limit: int, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise LegalError(f"{label} is required")
        return None
    if len(text) > limit:
        raise LegalError(f"{label} is longer than {limit} characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise LegalError(f"{label} contains control characters")
    return text


def email_domain(email: str | None) -> str | None:
    """The domain of an address, lower case and without a trailing dot."""
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().rstrip(".").lower() or None


def check_email(email: str | None, *, required: bool = False) -> str | None:
    text = _text("email", email, 254, required=required)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise LegalError(f"{text!r} is not an email address")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def parse_targets(lines: Iterable[str]) -> list[NewTarget]:
    """Targets written `kind:value`, one per line or argument (`account:acct-1`,
    `hash:<hex>`, `report:12`); blank lines are skipped, a line without a known kind is
    refused with its number."""
    targets = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        kind, sep, value = text.partition(":")
        if not sep or kind.strip() not in TARGET_KINDS:
            raise LegalError(
                f"target {number} ({text[:40]!r}): write kind:value, kind one of"
                f" {', '.join(TARGET_KINDS)}"
            )
        targets.append(NewTarget(kind.strip(), value.strip()))
    return targets


def _check_targets(targets: Iterable[NewTarget]) -> list[NewTarget]:
    checked: list[NewTarget] = []
    for target in targets:
        if target.kind not in TARGET_KINDS:
            raise LegalError(f"unknown target kind {target.kind!r}: use {', '.join(TARGET_KINDS)}")
        value = _text(f"{target.kind} value", target.value, 256, required=True)
        assert value is not None
        if target.kind == "hash":
            value = value.lower()
            if not _HEX.match(value):
                raise LegalError(f"{value!r} is not an MD5 or SHA-256 in hex")
        if target.kind == "report" and not value.isdigit():
            raise LegalError(f"report {value!r}: give Vigil's report number")
        checked.append(NewTarget(target.kind, value))
    unique = list(dict.fromkeys(checked))
    if len(unique) > MAX_TARGETS:
        raise LegalError(f"a request may name at most {MAX_TARGETS} accounts or items")
    return unique


def _check(new: NewRequest, channel: str) -> NewRequest:
    if new.kind not in REQUEST_KINDS:
        raise LegalError(f"unknown request kind {new.kind!r}: use {', '.join(REQUEST_KINDS)}")
    if channel not in REQUEST_CHANNELS:
        raise LegalError(f"unknown channel {channel!r}: use {', '.join(REQUEST_CHANNELS)}")
    country = _text("country", new.country, 2)
    if country is not None and not (country.isalpha() and len(country) == 2):
        raise LegalError("country is a two-letter ISO 3166 code")
    country = None if country is None else country.upper()
    if new.kind == "foreign" and country in DOMESTIC:
        raise LegalError("a foreign request names the requesting authority's country")
    if new.records_from and new.records_to and new.records_from > new.records_to:
        raise LegalError("the records period ends before it starts")
    if new.kind == "emergency" and not (new.description or "").strip():
        raise LegalError("an emergency request must describe the danger (2702(b)(8))")
    return NewRequest(
        kind=new.kind,
        requester_name=_text("requester name", new.requester_name, 200, required=True) or "",
        agency=_text("agency", new.agency, 200, required=True) or "",
        targets=_check_targets(new.targets),
        requester_email=check_email(new.requester_email, required=channel == "portal"),
        requester_phone=_text("phone", new.requester_phone, 40),
        jurisdiction=_text("jurisdiction", new.jurisdiction, 200),
        country=country,
        case_number=_text("case number", new.case_number, 100),
        document_reference=_text("document reference", new.document_reference, 200),
        issued_on=new.issued_on,
        return_date=new.return_date,
        records_from=new.records_from,
        records_to=new.records_to,
        description=_text("description", new.description, MAX_TEXT_CHARS),
        parent_id=new.parent_id,
        nondisclosure_until=new.nondisclosure_until,
        nondisclosure_scope=_text("order scope", new.nondisclosure_scope, MAX_TEXT_CHARS),
    )


def check_document(data: bytes) -> bytes:
    """A legal document as the desk keeps it: a PDF of at most 25 MiB."""
    if not data:
        raise LegalError("the document is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise LegalError(f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    if not data.startswith(PDF_MAGIC):
        raise LegalError("the document must be a PDF")
    return data


# --- Linking what a request names to what Vigil holds ------------------------------------


def _accounts_of_uploads(session: Session, condition: Any) -> list[str]:
    return sorted(
        a
        for a in session.scalars(
            select(UploadEvent.account_id).where(condition).distinct().limit(MAX_TARGETS)
        )
        if a
    )


def resolve_accounts(session: Session, kind: str, value: str) -> list[str]:
    """The platform accounts a target stands for, from the uploads and reports Vigil has."""
    if kind == "account":
        return [value]
    if kind == "screen_name":
        return _accounts_of_uploads(session, UploadEvent.screen_name == value)
    if kind == "content_ref":
        return _accounts_of_uploads(session, UploadEvent.content_ref == value)
    if kind == "hash":
        column = Content.md5 if len(value) == 32 else Content.sha256
        contents = select(Content.id).where(column == value).scalar_subquery()
        return _accounts_of_uploads(session, UploadEvent.content_id.in_(contents))
    report = session.get(Report, int(value)) if value.isdigit() and len(value) < 19 else None
    return [report.account_key] if report is not None and report.account_key else []


def holdings(session: Session, account_id: str) -> dict[str, Any]:
    """What Vigil holds about an account: its uploads, reports and live vault items."""
    uploads = session.scalar(
        select(func.count()).select_from(UploadEvent).where(UploadEvent.account_id == account_id)
    )
    reports = list(
        session.scalars(
            select(Report.id).where(Report.account_key == account_id).order_by(Report.id)
        )
    )
    items = session.scalar(
        select(func.count())
        .select_from(VaultItem)
        .where(account_clause(account_id), VaultItem.wrapped_key.is_not(None))
    )
    return {"uploads": uploads or 0, "reports": reports, "vault_items": items or 0}


def _link(session: Session, request: LegalRequest, targets: Iterable[NewTarget]) -> None:
    for target in targets:
        accounts: list[str | None] = list(resolve_accounts(session, target.kind, target.value))
        for account in accounts or [None]:
            request.targets.append(
                LegalTarget(
                    kind=target.kind,
                    value=target.value,
                    account_id=account,
                    linked={} if account is None else holdings(session, account),
                )
            )


def accounts_of(request: LegalRequest) -> list[str]:
    """The distinct platform accounts a request reaches."""
    return list(dict.fromkeys(t.account_id for t in request.targets if t.account_id))


# --- Warning signs -------------------------------------------------------------------------


_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "3": "e", "5": "s", "7": "t", "-": "", "_": ""})


def _skeleton(domain: str) -> str:
    return domain.translate(_CONFUSABLE).replace("rn", "m").replace("vv", "w")


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (domains are short)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def lookalike_of(domain: str, known: Iterable[str]) -> str | None:
    """The allowlisted domain `domain` imitates (a near spelling, confusable letters, a
    punycode name, the real name buried in another domain), or None."""
    for real in known:
        if domain == real or domain.endswith("." + real):
            continue
        if (
            domain.startswith("xn--")
            or ".xn--" in domain
            or _skeleton(domain) == _skeleton(real)
            or _distance(domain, real) <= 2
            or _skeleton(real).replace(".", "") in _skeleton(domain).replace(".", "")
            or real.split(".")[0] == domain.split(".")[0]
        ):
            return real
    return None


def _normalised(agency: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (agency or "").lower())


def find_signals(
    session: Session, request: LegalRequest, settings: Settings
) -> list[dict[str, str]]:
    """The warnings a legal user must see before acting: a free-mail or look-alike domain, a
    domain nobody vetted, the officer's first request, an agency that does not match, an
    unusually broad scope, a foreign authority, no document."""
    found: list[dict[str, str]] = []

    def add(code: str, message: str) -> None:
        found.append({"code": code, "message": message})

    domain = email_domain(request.requester_email)
    allowed = {
        d.domain: d
        for d in session.scalars(select(AgencyDomain).where(AgencyDomain.status == "allowed"))
    }
    if domain is None:
        add("no_email", "No email address for the requester: verify identity by phone.")
    elif domain in {d.lower() for d in settings.legal_free_mail_domains}:
        add("free_mail", f"{domain} is a free-mail domain, not an agency's.")
    elif (real := lookalike_of(domain, allowed)) is not None:
        add("lookalike_domain", f"{domain} looks like the allowlisted {real}.")
    elif not any(domain == d or domain.endswith("." + d) for d in allowed):
        add("unlisted_domain", f"{domain} is not on the agency allowlist.")
    earlier = select(func.count()).select_from(LegalRequest).where(LegalRequest.id != request.id)
    if request.officer_id is not None:
        earlier = earlier.where(LegalRequest.officer_id == request.officer_id)
    elif request.requester_email:
        earlier = earlier.where(
            func.lower(LegalRequest.requester_email) == request.requester_email.lower()
        )
    else:
        earlier = earlier.where(LegalRequest.requester_name == request.requester_name)
    if not session.scalar(earlier):
        add("first_request", "First request from this requester.")
    on_record = []
    if request.officer_id is not None:
        officer = session.get(Officer, request.officer_id)
        if officer is not None:
            on_record.append(officer.agency)
    if domain is not None and domain in allowed and allowed[domain].agency:
        on_record.append(allowed[domain].agency or "")
    mismatched = [a for a in on_record if _normalised(a) != _normalised(request.agency)]
    if mismatched:
        add(
            "agency_mismatch",
            f"The request names {request.agency!r}; on record: {', '.join(map(repr, mismatched))}.",
        )
    accounts = {t.account_id or f"{t.kind}:{t.value}" for t in request.targets}
    broad = []
    if len(accounts) > settings.legal_broad_scope_targets:
        broad.append(f"{len(accounts)} accounts or items")
    if request.records_from and request.records_to:
        span = request.records_to - request.records_from
        if span > timedelta(days=settings.legal_broad_scope_days):
            broad.append(f"records over {span.days} days")
    elif request.kind in ("subpoena", "order_2703d", "warrant") and not request.records_from:
        broad.append("no records period")
    if broad:
        add("broad_scope", "Unusually broad: " + "; ".join(broad) + ".")
    if request.kind == "foreign" or request.country not in DOMESTIC:
        add("foreign", "A foreign authority: counsel must review (MLAT, CLOUD Act agreement).")
    if request.document_item_id is None and request.kind not in ("emergency",):
        add("no_document", "No legal document attached.")
    unresolved = [t.value for t in request.targets if t.account_id is None]
    if unresolved:
        add("unresolved", f"Nothing held for: {', '.join(unresolved[:5])}.")
    return found


# --- Filing --------------------------------------------------------------------------------


def store_document(
    session: Session,
    vault: Vault,
    request: LegalRequest,
    data: bytes,
    *,
    file_name: str | None,
    now: datetime,
    settings: Settings,
) -> VaultItem:
    """Seal the request's document in the vault, kept as long as productions are."""
    data = check_document(data)
    preserved = preserve(
        session,
        vault,
        kind="document",
        data=data,
        clock=Clock.voluntary(
            now + timedelta(days=settings.legal_production_retention_days), reference(request)
        ),
        now=now,
        details={"request": reference(request), "file_name": (file_name or "")[:200]},
        label=f"{reference(request)} {file_name or 'document.pdf'}"[:255],
        media_type="application/pdf",
    )
    request.document_item_id = preserved.item.id
    return preserved.item


def file_request(
    session: Session,
    vault: Vault,
    new: NewRequest,
    *,
    channel: str,
    created_by: str,
    settings: Settings,
    now: datetime,
    officer: Officer | None = None,
    document: bytes | None = None,
    document_name: str | None = None,
) -> LegalRequest:
    """Record a request: validated, its document sealed, its targets linked, its due time
    set and its warning signs found. A portal request comes from an active officer, whose
    identity fills the requester's fields. A non-disclosure order attached to a request
    covers that request's accounts unless it names its own."""
    if channel == "portal":
        if officer is None or officer.status != "active":
            raise LegalError("only an active, vetted officer may file through the portal")
        new = replace(
            new,
            requester_name=officer.name,
            requester_email=officer.email,
            requester_phone=new.requester_phone or officer.phone,
        )
    new = _check(new, channel)
    parent = None
    if new.parent_id is not None:
        parent = get_request(session, new.parent_id)
        if new.kind != "nondisclosure":
            raise LegalError("only a non-disclosure order is attached to another request")
    targets = list(new.targets)
    if parent is not None and not targets:
        targets = [NewTarget(t.kind, t.value) for t in parent.targets]
    if not targets:
        raise LegalError("name at least one account, screen name, content, hash or report")
    request = LegalRequest(
        kind=new.kind,
        channel=channel,
        status="received",
        officer_id=None if officer is None else officer.id,
        requester_name=new.requester_name,
        requester_email=new.requester_email,
        requester_phone=new.requester_phone,
        agency=new.agency,
        jurisdiction=new.jurisdiction,
        country=new.country,
        case_number=new.case_number,
        document_reference=new.document_reference,
        issued_on=new.issued_on,
        return_date=new.return_date,
        records_from=new.records_from,
        records_to=new.records_to,
        description=new.description,
        emergency_categories=[],
        parent_id=None if parent is None else parent.id,
        nondisclosure_until=new.nondisclosure_until,
        nondisclosure_scope=new.nondisclosure_scope,
        signals=[],
        received_at=now,
        due_at=due_at(new.kind, now, new.return_date, settings),
        created_by=created_by,
    )
    session.add(request)
    session.flush()
    _link(session, request, targets)
    if document is not None:
        store_document(
            session, vault, request, document, file_name=document_name, now=now, settings=settings
        )
    session.flush()
    request.signals = find_signals(session, request, settings)
    session.flush()
    return request


def list_requests(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    officer_id: int | None = None,
    account_id: str | None = None,
    limit: int = 200,
) -> list[LegalRequest]:
    """Requests, the newest first, optionally of one status, kind, officer or account."""
    query = select(LegalRequest).order_by(LegalRequest.id.desc()).limit(limit)
    if status is not None:
        query = query.where(LegalRequest.status == status)
    if kind is not None:
        query = query.where(LegalRequest.kind == kind)
    if officer_id is not None:
        query = query.where(LegalRequest.officer_id == officer_id)
    if account_id is not None:
        query = query.where(
            LegalRequest.id.in_(
                select(LegalTarget.request_id).where(
                    or_(LegalTarget.account_id == account_id, LegalTarget.value == account_id)
                )
            )
        )
    return list(session.scalars(query))


def assign(session: Session, request_id: int, user_id: int | None) -> LegalRequest:
    request = get_request(session, request_id, lock=True)
    request.assignee_id = user_id
    request.reminded_at = None
    session.flush()
    return request
