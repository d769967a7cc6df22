"""Answering verified requests: productions scoped by the process that asks for them, and the
requests answered by acting rather than producing (preservation, destruction, non-disclosure).

Scope (18 U.S.C. 2703): a subpoena reaches basic subscriber information only (the fields
2703(c)(2) lists), a 2703(d) order non-content records too, a search warrant content too; an
emergency request only the categories its second verifier said the emergency needs. The
builder refuses anything outside that, and keeps only the statute's fields even when the
platform's connector returns more.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.legal.desk import DeskUser, LegalError, NotVerified, OutOfScope, get_request, reference
from vigil.legal.intake import accounts_of
from vigil.legal.mail import queue_mail
from vigil.legal.package import (
    Certification,
    PackageFile,
    build_package,
    new_password,
)
from vigil.legal.verification import is_verified, missing
from vigil.store import (
    Content,
    LegalRequest,
    Officer,
    PreservationRequest,
    Production,
    UploadEvent,
    VaultItem,
)
from vigil.vault import Vault, destroy_on_request, preserve, preserve_existing
from vigil.vault.accounts import AccountData, UserDataConnector, account_data
from vigil.vault.items import Reader, account_clause, audit, open_item, read_item
from vigil.vault.retention import PRESERVATION_PERIOD, Clock, RetentionError

CATEGORIES = ("subscriber", "records", "content")
SCOPES: dict[str, frozenset[str]] = {
    "subpoena": frozenset({"subscriber"}),
    "order_2703d": frozenset({"subscriber", "records"}),
    "warrant": frozenset({"subscriber", "records", "content"}),
}
WHY_NOT = {
    "records": "non-content records need a 2703(d) court order or a search warrant",
    "content": "content needs a search warrant (18 U.S.C. 2703(a), (b))",
    "subscriber": "subscriber information needs at least a subpoena",
}
PROCESS_NAMES = {
    "subpoena": "Subpoena (18 U.S.C. 2703(c)(2))",
    "order_2703d": "Court order (18 U.S.C. 2703(d))",
    "warrant": "Search warrant (18 U.S.C. 2703)",
    "emergency": "Emergency disclosure request (18 U.S.C. 2702(b)(8), (c)(4))",
}
SUBSCRIBER_FIELDS = (
    "account_id",
    "screen_name",
    "name",
    "email",
    "address",
    "telephone",
    "service_start",
    "service_types",
    "network_addresses",
    "session_times",
    "payment",
)
"""Basic subscriber information, 2703(c)(2): name; address; records of session times and
durations; length of service (start date) and types of service; telephone or instrument
number or other subscriber number or identity, including temporarily assigned network
addresses; means and source of payment. Nothing else leaves under a subpoena."""
RECORD_FIELDS = (
    "account_id",
    "record",
    "at",
    "ip_address",
    "content_ref",
    "file_name",
    "sha256",
    "md5",
    "size",
    "media_type",
    "detail",
)
MAX_CONTENT_FILES = 10_000


def allowed_categories(request: LegalRequest) -> frozenset[str]:
    """What the request's process reaches."""
    if request.kind == "emergency":
        return frozenset(request.emergency_categories)
    return SCOPES.get(request.kind, frozenset())


def check_scope(request: LegalRequest, categories: Iterable[str]) -> list[str]:
    """The categories asked for, in order, when the process reaches all of them;
    `OutOfScope` naming the first it does not reach."""
    chosen = list(dict.fromkeys(categories))
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown:
        raise LegalError(f"unknown categories {unknown}: use {', '.join(CATEGORIES)}")
    if not chosen:
        raise LegalError("choose what to produce: " + ", ".join(CATEGORIES))
    if request.kind not in (*SCOPES, "emergency"):
        raise OutOfScope(f"a {request.kind} request is answered by acting on it, not by producing")
    allowed = allowed_categories(request)
    for category in chosen:
        if category not in allowed:
            why = (
                f"the verified emergency needs only {', '.join(sorted(allowed)) or 'nothing'}"
                if request.kind == "emergency"
                else WHY_NOT[category]
            )
            raise OutOfScope(f"{category} is outside a {request.kind}'s scope: {why}")
    return [c for c in CATEGORIES if c in chosen]


def _require_verified(request: LegalRequest, action: str) -> None:
    if request.status in ("closed", "refused"):
        raise LegalError(f"request {reference(request)} is {request.status}")
    if not is_verified(request):
        names = ", ".join(item.label for item in missing(request)) or "verification"
        raise NotVerified(f"nothing is {action} before the checklist is complete: {names}")


# --- What goes into a production -----------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _in_period(request: LegalRequest, at: datetime | None) -> bool:
    if at is None:
        return request.records_from is None and request.records_to is None
    return (request.records_from is None or at >= request.records_from) and (
        request.records_to is None or at <= request.records_to
    )


def subscriber_row(request: LegalRequest, data: AccountData) -> dict[str, Any]:
    """Basic subscriber information of one account: `SUBSCRIBER_FIELDS`, nothing more."""
    sessions = [e for e in data.ip_events if _in_period(request, e.at)]
    return {
        "account_id": data.account_id,
        "screen_name": data.screen_name,
        "name": data.display_name,
        "email": data.email,
        "address": data.postal_address,
        "telephone": data.phone,
        "service_start": _iso(data.registered_at),
        "service_types": "; ".join(data.service_types),
        "network_addresses": "; ".join(dict.fromkeys(e.ip_address for e in sessions)),
        "session_times": "; ".join(
            f"{e.event_name} {e.at.isoformat()} from {e.ip_address}"
            + ("" if e.port is None else f":{e.port}")
            for e in sessions
        ),
        "payment": data.payment,
    }


def _record(account: str, kind: str, detail: str) -> dict[str, Any]:
    return {**dict.fromkeys(RECORD_FIELDS), "account_id": account, "record": kind, "detail": detail}


def record_rows(
    session: Session, request: LegalRequest, account: str, data: AccountData
) -> list[dict[str, Any]]:
    """Non-content records of one account: its uploads (when, from where, which file by
    hash), devices and account state."""
    rows: list[dict[str, Any]] = []
    for event, content in session.execute(
        select(UploadEvent, Content)
        .join(Content, Content.id == UploadEvent.content_id)
        .where(UploadEvent.account_id == account)
        .order_by(UploadEvent.id)
    ):
        at = event.event_time or event.received
        if not _in_period(request, at):
            continue
        rows.append(
            {
                "account_id": account,
                "record": "upload",
                "at": _iso(at),
                "ip_address": event.ip_address,
                "content_ref": event.content_ref,
                "file_name": event.file_name,
                "sha256": content.sha256,
                "md5": content.md5,
                "size": content.size,
                "media_type": content.media_type,
                "detail": None,
            }
        )
    for device in data.device_ids:
        rows.append(_record(account, "device", device))
    state = [
        name
        for name, flag in (
            ("temporarily disabled", data.temporarily_disabled),
            ("permanently disabled", data.permanently_disabled),
        )
        if flag
    ]
    if state:
        rows.append(_record(account, "account_state", ", ".join(state)))
    return rows


def _csv(fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="raise")
    writer.writeheader()
    for row in rows:
        # A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
        writer.writerow(
            {
                k: ("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v)
                for k, v in row.items()
            }
        )
    return out.getvalue().encode("utf-8")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _data_files(
    name: str, fields: Sequence[str], rows: Sequence[dict[str, Any]], description: str
) -> list[PackageFile]:
    return [
        PackageFile(f"data/{name}.csv", _csv(fields, rows), f"{description} (CSV)"),
        PackageFile(f"data/{name}.json", _json(rows), f"{description} (JSON)"),
    ]


def _content_files(
    session: Session, vault: Vault, request: LegalRequest, accounts: Sequence[str], user: DeskUser
) -> list[PackageFile]:
    reader = Reader(user.username, user.roles)
    items = session.scalars(
        select(VaultItem)
        .where(
            VaultItem.kind == "content",
            VaultItem.wrapped_key.is_not(None),
            or_(*(account_clause(account) for account in accounts)),
        )
        .order_by(VaultItem.id)
        .limit(MAX_CONTENT_FILES + 1)
    ).all()
    if len(items) > MAX_CONTENT_FILES:
        raise LegalError(f"more than {MAX_CONTENT_FILES} content files: split the production")
    files = []
    for number, item in enumerate(items, 1):
        data = read_item(
            session, vault, item.id, reader=reader, reason=f"production for {reference(request)}"
        )
        extension = (item.media_type or "application/octet-stream").split("/")[-1][:8]
        files.append(
            PackageFile(
                name=f"content/{number:04d}.{extension}",
                data=data,
                description=f"Content, vault item {item.id} ({item.media_type or 'unknown'})",
            )
        )
    return files


@dataclass(frozen=True)
class BuiltProduction:
    production: Production
    password: str
    """Given to the requester out of band (by phone), never stored."""
    download_secret: str
    """The single-use download's secret (in the portal link); only its hash is kept."""


def build_production(
    session: Session,
    vault: Vault,
    request_id: int,
    categories: Iterable[str],
    *,
    user: DeskUser,
    connectors: tuple[UserDataConnector, ...],
    settings: Settings,
    now: datetime,
) -> BuiltProduction:
    """Build, certify, encrypt and seal a production for a verified request, and mail the
    filing officer (if any) its single-use download link. Flushes; the caller commits (with
    the audited reads of any content it holds)."""
    user.require_desk("produce records")
    request = get_request(session, request_id, lock=True)
    _require_verified(request, "produced")
    chosen = check_scope(request, categories)
    accounts = accounts_of(request)
    if not accounts:
        raise LegalError("the request names no account Vigil knows: nothing to produce")
    data = {account: account_data(session, account, connectors) for account in accounts}
    files: list[PackageFile] = []
    if "subscriber" in chosen:
        rows = [subscriber_row(request, data[a]) for a in accounts]
        files += _data_files("subscriber", SUBSCRIBER_FIELDS, rows, "Basic subscriber information")
    if "records" in chosen:
        records = [r for a in accounts for r in record_rows(session, request, a, data[a])]
        files += _data_files(
            "records", RECORD_FIELDS, records, "Non-content records: uploads, devices, state"
        )
    if "content" in chosen:
        files += _content_files(session, vault, request, accounts, user)
    custodian = settings.legal_custodian_name or user.username
    certification = Certification(
        custodian_name=custodian,
        custodian_title=settings.legal_custodian_title,
        organisation=settings.legal_organisation or settings.report_platform or "The platform",
        request_reference=reference(request),
        legal_process=PROCESS_NAMES[request.kind],
        agency=request.agency,
        case_number=request.case_number,
        certified_at=now,
    )
    password = new_password()
    package = build_package(files, certification, password)
    sealed = preserve(
        session,
        vault,
        kind="production",
        data=package.data,
        clock=Clock.voluntary(
            now + timedelta(days=settings.legal_production_retention_days), reference(request)
        ),
        now=now,
        details={"request": reference(request), "categories": chosen},
        label=f"production for {reference(request)}",
        media_type="application/zip",
    )
    secret = secrets.token_urlsafe(32)
    production = Production(
        request_id=request.id,
        status="ready",
        categories=chosen,
        manifest=[
            {
                "item": e.item,
                "name": e.name,
                "sha256": e.sha256,
                "size": e.size,
                "description": e.description,
            }
            for e in package.manifest
        ],
        package_item_id=sealed.item.id,
        package_sha256=package.sha256,
        custodian=custodian,
        built_by=user.username,
        built_at=now,
        download_hash=hashlib.sha256(secret.encode("ascii")).hexdigest(),
        download_expires=now + timedelta(hours=settings.legal_download_hours),
    )
    session.add(production)
    session.flush()
    _mail_link(session, request, production, secret, settings, now)
    request.status = "produced"
    request.answered_at = request.answered_at or now
    session.flush()
    return BuiltProduction(production, password, secret)


def _mail_link(
    session: Session,
    request: LegalRequest,
    production: Production,
    secret: str,
    settings: Settings,
    now: datetime,
) -> None:
    """Mail the filing officer (when the request came through the portal) the link."""
    officer = session.get(Officer, request.officer_id) if request.officer_id else None
    if officer is None:
        return
    queue_mail(
        session,
        to=officer.email,
        subject=f"Production ready: {reference(request)}",
        body=(
            f"The production for {reference(request)} is ready. Sign in to the portal and"
            f" download it once, before {production.download_expires:%Y-%m-%d %H:%M} UTC:"
            f"\n\n{download_link(settings, secret)}\n\nThe password will be given to you"
            " by phone.\n"
        ),
        purpose="production",
        reference=reference(request),
        now=now,
    )


def download_link(settings: Settings, secret: str) -> str:
    """The portal address of a production's single-use download."""
    return f"{settings.portal_base_url.rstrip('/')}/portal/download/{secret}"


def productions_of(session: Session, request_id: int) -> list[Production]:
    return list(
        session.scalars(
            select(Production).where(Production.request_id == request_id).order_by(Production.id)
        )
    )


def take_download(
    session: Session,
    vault: Vault,
    secret: str,
    *,
    officer_id: int,
    officer_email: str,
    address: str,
    now: datetime,
) -> tuple[Production, bytes]:
    """The package behind a download secret, once: for the officer whose request it answers,
    before it expires. The first taker wins (a conditional update); the download is audited."""
    if not isinstance(secret, str) or not 0 < len(secret) <= 128:
        raise LegalError("this download link is not valid")
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    production = session.scalars(
        select(Production).where(Production.download_hash == digest)
    ).one_or_none()
    request = None if production is None else session.get(LegalRequest, production.request_id)
    if production is None or request is None or request.officer_id != officer_id:
        raise LegalError("this download link is not valid, or it was already used")
    if production.status != "ready" or now >= production.download_expires:
        raise LegalError("this download has expired or was already used: ask the legal team")
    taken = session.execute(
        update(Production)
        .where(Production.id == production.id, Production.status == "ready")
        .values(
            status="downloaded",
            download_hash=None,
            downloaded_at=now,
            downloaded_by=officer_email,
            download_address=address[:45],
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise LegalError("this download was already used: ask the legal team")
    item = (
        session.get(VaultItem, production.package_item_id) if production.package_item_id else None
    )
    if item is None:
        raise LegalError("the package is no longer kept: ask the legal team")
    data = open_item(vault, item)
    audit(
        session,
        "legal.download",
        "legal_production",
        str(production.id),
        {
            "actor": f"officer:{officer_email}",
            "request": reference(request),
            "address": address[:45],
            "package_sha256": production.package_sha256,
        },
    )
    session.refresh(production)
    return production, data


def reissue_download(
    session: Session, production_id: int, user: DeskUser, *, settings: Settings, now: datetime
) -> str:
    """A new single-use link for a production whose link expired or was lost (the old one
    stops working), mailed to the officer; the new secret."""
    user.require_desk("reissue downloads")
    production = session.get(Production, production_id, with_for_update=True)
    if production is None:
        raise LegalError(f"no production {production_id}")
    if production.status == "revoked":
        raise LegalError("the production was revoked")
    secret = secrets.token_urlsafe(32)
    production.status = "ready"
    production.download_hash = hashlib.sha256(secret.encode("ascii")).hexdigest()
    production.download_expires = now + timedelta(hours=settings.legal_download_hours)
    session.flush()
    _mail_link(
        session, get_request(session, production.request_id), production, secret, settings, now
    )
    return secret


def revoke_production(session: Session, production_id: int, user: DeskUser) -> Production:
    user.require_desk("revoke productions")
    production = session.get(Production, production_id, with_for_update=True)
    if production is None:
        raise LegalError(f"no production {production_id}")
    production.status = "revoked"
    production.download_hash = None
    session.flush()
    return production


# --- Requests answered by acting -----------------------------------------------------------


def carry_out_preservation(
    session: Session, request_id: int, user: DeskUser, *, now: datetime
) -> list[PreservationRequest]:
    """A verified 2703(f) letter: 90 days on what the vault already holds for its accounts,
    and a preservation request per account for the vault to take in what it does not hold
    yet (uploads, account data, kept content: `honour_preservation_requests`)."""
    user.require_desk("preserve records")
    request = get_request(session, request_id, lock=True)
    if request.kind != "preservation":
        raise LegalError(f"a {request.kind} is not a preservation letter")
    _require_verified(request, "preserved")
    accounts = accounts_of(request)
    if not accounts:
        raise LegalError("the letter names no account Vigil knows: nothing to preserve")
    created = []
    for account in accounts:
        # Nothing in the vault yet is fine: the preservation request below takes it in.
        with contextlib.suppress(RetentionError):
            preserve_existing(
                session,
                reference=reference(request),
                actor=user.actor,
                now=now,
                account_key=account,
            )
        uploads = session.scalars(
            select(UploadEvent.id).where(UploadEvent.account_id == account).order_by(UploadEvent.id)
        ).all()
        row = PreservationRequest(
            reason="preservation_request",
            account_key=account,
            content_ids=[],
            upload_event_ids=list(uploads),
            requested_at=now,
            preserve_until=now + PRESERVATION_PERIOD,
            reference=reference(request),
        )
        session.add(row)
        created.append(row)
    request.status = "produced"
    request.answered_at = request.answered_at or now
    session.flush()
    return created


def carry_out_destroy(
    session: Session, vault: Vault, request_id: int, user: DeskUser, *, now: datetime
) -> list[int]:
    """A verified request to destroy: the vault items of its accounts are shredded
    (refused as a whole under a legal hold). Commits."""
    user.require_desk("destroy evidence")
    request = get_request(session, request_id, lock=True)
    if request.kind != "destroy":
        raise LegalError(f"a {request.kind} is not a request to destroy")
    _require_verified(request, "destroyed")
    accounts = accounts_of(request)
    ids = sorted(
        {
            item_id
            for account in accounts
            for item_id in session.scalars(
                select(VaultItem.id).where(
                    account_clause(account), VaultItem.wrapped_key.is_not(None)
                )
            )
        }
    )
    request.status = "produced"
    request.answered_at = request.answered_at or now
    session.flush()
    if not ids:
        session.commit()
        return []
    return destroy_on_request(
        session, vault, ids, reference=reference(request), actor=user.actor, now=now
    )


def acknowledge_order(session: Session, request_id: int, user: DeskUser, *, now: datetime) -> None:
    """A verified non-disclosure order or a counsel-reviewed foreign request is answered by
    recording it (the notice guard obeys an order from the moment it is received)."""
    user.require_desk("record orders")
    request = get_request(session, request_id, lock=True)
    if request.kind not in ("nondisclosure", "foreign"):
        raise LegalError(f"a {request.kind} is answered by producing or acting, not recording")
    _require_verified(request, "recorded")
    request.status = "produced"
    request.answered_at = request.answered_at or now
    session.flush()


def lift_order(
    session: Session, request_id: int, user: DeskUser, reason: str, *, now: datetime
) -> LegalRequest:
    """A court lifted a non-disclosure order early (expiry ends it by itself)."""
    user.require_desk("lift orders")
    request = get_request(session, request_id, lock=True)
    if request.kind != "nondisclosure":
        raise LegalError("only a non-disclosure order is lifted")
    if not (reason or "").strip():
        raise LegalError("say what lifted the order (the court's order and date)")
    request.nondisclosure_lifted_at = now
    request.outcome = f"lifted by {user.username}: {reason.strip()[:500]}"
    session.flush()
    return request
