"""Putting evidence into the vault and taking it out: `preserve`, honouring the preservation
requests that submitted reports leave, and exports for legal process.

Order of writes in `preserve`: the item's row is inserted (for its id, uncommitted), its
bytes are encrypted and written to the store, then the row gets its wrapped key; the caller's
commit makes the item exist. A crash before that commit leaves a blob no row names and no key
opens: harmless, and removed by the sweep once older than a day. A crash inside the store's
write leaves nothing readable (the file store renames a complete temporary file into place,
S3 shows an object only once all of it arrived).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.store import (
    Content,
    PreservationRequest,
    UploadEvent,
    VaultExport,
    VaultItem,
    begin_immediate,
)
from vigil.store.vault_models import VAULT_ITEM_KINDS
from vigil.vault.accounts import UserDataConnector, account_data
from vigil.vault.blobs import make_private_dir
from vigil.vault.crypto import SealError, encrypt_item
from vigil.vault.items import (
    JSON_MEDIA_TYPE,
    AccessDenied,
    ItemNotFound,
    ItemShredded,
    Reader,
    Vault,
    VaultError,
    audit,
    canonical_json,
    check_reason,
    item_aad,
    open_item,
)
from vigil.vault.media import MediaStore
from vigil.vault.retention import Clock, apply_clock

log = logging.getLogger(__name__)

RELATED_UPLOADS_LIMIT = 1000
"""Most other uploads of the reported account taken in with one request (the manifest says
when there were more)."""


@dataclass(frozen=True)
class Preserved:
    item: VaultItem
    created: bool
    """False when the same bytes (same kind) were already in the vault: they got the clock."""


def preserve(
    session: Session,
    vault: Vault,
    *,
    kind: str,
    data: bytes,
    clock: Clock,
    now: datetime,
    details: dict[str, Any] | None = None,
    content_id: int | None = None,
    account_key: str | None = None,
    label: str | None = None,
    media_type: str | None = None,
) -> Preserved:
    """Keep `data` in the vault under `clock`. An item of the same kind and bytes already
    kept (not destroyed) gets the clock instead of a second copy. Flushes; the caller
    commits (only then does a new item exist)."""
    if kind not in VAULT_ITEM_KINDS:
        raise VaultError(f"unknown item kind {kind!r}: use {', '.join(VAULT_ITEM_KINDS)}")
    if label is not None and len(label) > 255:
        label = label[:255]
    details = json.loads(canonical_json(details or {}))  # as the database gives it back
    sha256 = hashlib.sha256(data).hexdigest()
    existing = session.scalars(
        select(VaultItem)
        .where(
            VaultItem.kind == kind,
            VaultItem.sha256 == sha256,
            VaultItem.wrapped_key.is_not(None),
        )
        .order_by(VaultItem.id)
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if existing is not None:
        apply_clock(session, existing, clock, now=now)
        return Preserved(existing, False)
    item = VaultItem(
        kind=kind,
        sha256=sha256,
        size=len(data),
        media_type=media_type,
        content_id=content_id,
        account_key=account_key,
        label=label,
        details=details,
        storage=vault.storage,
        blob_key=secrets.token_hex(16),
        key_id=vault.keys.key_id,
        wrapped_key=None,
        created=now,
    )
    store = vault.store
    savepoint = session.begin_nested()  # a failure takes the unfinished row away
    try:
        session.add(item)
        session.flush()  # the id, which the ciphertext is bound to
        wrapped, key_id, blob = encrypt_item(data, aad=item_aad(item), keys=vault.keys)
        store.put(item.blob_key, blob)  # all or nothing: nothing to undo if it fails
        try:
            item.wrapped_key = wrapped
            item.key_id = key_id
            apply_clock(session, item, clock, now=now)
            savepoint.commit()
        except BaseException:
            store.delete(item.blob_key)
            raise
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    return Preserved(item, True)


# --- Preservation requests ------------------------------------------------------------


@dataclass(frozen=True)
class MissingContent:
    content_id: int
    sha256: str | None
    reason: str


@dataclass
class HonourResult:
    """What one preservation request became."""

    request_id: int
    item_ids: list[int] = field(default_factory=list)
    """Every item the request keeps (new or already in the vault), the manifest included."""
    new_items: int = 0
    missing: list[MissingContent] = field(default_factory=list)
    """Requested contents whose bytes could not be kept (recorded in the manifest too)."""
    manifest_item_id: int | None = None
    related_truncated: bool = False


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_bytes(value: Any) -> bytes:
    """A JSON item's bytes: sorted keys, indented (people read it), UTF-8."""
    return (
        json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=_json_default)
        + "\n"
    ).encode("utf-8")


def _upload_record(session: Session, event: UploadEvent) -> dict[str, Any]:
    content = session.get(Content, event.content_id)
    return {
        "upload_event_id": event.id,
        "content_id": event.content_id,
        "content_sha256": content.sha256 if content else None,
        "content_md5": content.md5 if content else None,
        "content_ref": event.content_ref,
        "file_name": event.file_name,
        "account_id": event.account_id,
        "screen_name": event.screen_name,
        "ip_address": event.ip_address,
        "event_time": event.event_time,
        "received": event.received,
        "token_id": event.token_id,
    }


def _content_record(content: Content) -> dict[str, Any]:
    return {
        "content_id": content.id,
        "sha256": content.sha256,
        "md5": content.md5,
        "size": content.size,
        "media_type": content.media_type,
        "signals": [
            {"type": s.signal_type, "value": s.value, "quality": s.quality} for s in content.signals
        ],
    }


def _kept_bytes(media: MediaStore, sha256: str) -> tuple[bytes | None, str]:
    """The content's bytes from the review media store, or None and why not."""
    try:
        if not media.exists(sha256):
            return None, "bytes not kept (no matched media stored for this content)"
        return media.read(sha256), ""
    except KeyError:
        return None, "bytes not kept (no matched media stored for this content)"
    except SealError as error:
        log.error("the kept media %s does not open: %s", sha256, error)
        return None, f"kept bytes unreadable: {error}"


class _Intake:
    """Takes one request's pieces into the vault, under one clock."""

    def __init__(
        self, session: Session, vault: Vault, clock: Clock, now: datetime, result: HonourResult
    ) -> None:
        self.session, self.vault, self.clock, self.now, self.result = (
            session,
            vault,
            clock,
            now,
            result,
        )

    def keep(self, kind: str, data: bytes, **metadata: Any) -> int:
        preserved = preserve(
            self.session,
            self.vault,
            kind=kind,
            data=data,
            clock=self.clock,
            now=self.now,
            **metadata,
        )
        if preserved.created:
            self.result.new_items += 1
        if preserved.item.id not in self.result.item_ids:
            self.result.item_ids.append(preserved.item.id)
        return preserved.item.id


def honour_preservation_requests(
    session: Session,
    vault: Vault,
    media_store: MediaStore,
    connectors: tuple[UserDataConnector, ...],
    now: datetime,
    *,
    related_limit: int = RELATED_UPLOADS_LIMIT,
) -> list[HonourResult]:
    """Take every pending `PreservationRequest` into the vault, oldest first; each is
    committed on its own, with `honoured_at` set.

    Per request, each under a clock of the request's reason until its `preserve_until`
    (`report`: a year from submission): the bytes of each requested content (from the review
    media store; contents whose bytes were not kept are listed as missing, in the result and
    in the manifest), each upload event's metadata (a JSON `upload` item), the account's data
    from `connectors` (a JSON `account` item), the account's other uploads and their bytes
    when kept (related content), and a manifest (a JSON `document` item) of all of it with
    every content's hashes. Bytes already in the vault get the clock, not a second copy.
    """
    results = []
    pending = session.scalars(
        select(PreservationRequest.id)
        .where(PreservationRequest.honoured_at.is_(None))
        .order_by(PreservationRequest.id)
    ).all()
    session.commit()
    for request_id in pending:
        begin_immediate(session)
        request = session.get(
            PreservationRequest, request_id, with_for_update=True, populate_existing=True
        )
        if request is None or request.honoured_at is not None:  # taken meanwhile
            session.rollback()
            continue
        try:
            result = _honour(session, vault, media_store, connectors, request, now, related_limit)
            request.honoured_at = now
            audit(
                session,
                "vault.honour",
                "preservation_request",
                str(request.id),
                {
                    "actor": "system",
                    "item_ids": result.item_ids,
                    "missing_content_ids": [m.content_id for m in result.missing],
                },
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        if result.missing:
            log.warning(
                "preservation request %d: the bytes of %d content(s) were not kept: %s",
                request.id,
                len(result.missing),
                ", ".join(str(m.content_id) for m in result.missing),
            )
        results.append(result)
    return results


def _honour(
    session: Session,
    vault: Vault,
    media: MediaStore,
    connectors: tuple[UserDataConnector, ...],
    request: PreservationRequest,
    now: datetime,
    related_limit: int,
) -> HonourResult:
    result = HonourResult(request_id=request.id)
    reference = request.reference or (
        f"report {request.report_id}"
        if request.report_id is not None
        else f"preservation request {request.id}"
    )
    clock = Clock(request.reason, request.preserve_until, reference)
    intake = _Intake(session, vault, clock, now, result)
    account = request.account_key or None
    manifest: dict[str, Any] = {
        "preservation_request_id": request.id,
        "reason": request.reason,
        "report_id": request.report_id,
        "account_key": request.account_key,
        "requested_at": request.requested_at,
        "preserve_until": request.preserve_until,
        "honoured_at": now,
        "contents": [],
        "uploads": [],
        "missing": [],
        "account": None,
        "related": {"uploads": [], "contents": [], "truncated": False},
    }
    requested = list(dict.fromkeys(request.content_ids))
    for content_id in requested:
        content = session.get(Content, content_id)
        if content is None:
            missing = MissingContent(content_id, None, "the content record no longer exists")
        else:
            entry = _content_record(content)
            data, why = _kept_bytes(media, content.sha256)
            if data is not None:
                entry["item_id"] = intake.keep(
                    "content",
                    data,
                    media_type=content.media_type,
                    content_id=content.id,
                    account_key=account,
                    label=f"content {content.id}",
                    details={"content_id": content.id, "md5": content.md5},
                )
                manifest["contents"].append(entry)
                continue
            entry["item_id"] = None
            manifest["contents"].append(entry)
            missing = MissingContent(content_id, content.sha256, why)
        result.missing.append(missing)
        manifest["missing"].append(dataclasses.asdict(missing))

    requested_events = list(dict.fromkeys(request.upload_event_ids))
    for event_id in requested_events:
        event = session.get(UploadEvent, event_id)
        if event is None:
            manifest["uploads"].append(
                {
                    "upload_event_id": event_id,
                    "item_id": None,
                    "missing": "the upload record no longer exists",
                }
            )
            continue
        manifest["uploads"].append(
            {"upload_event_id": event_id, "item_id": _keep_upload(intake, session, event)}
        )

    if account is not None:
        known = dataclasses.asdict(account_data(session, account, connectors))
        manifest["account"] = {
            "item_id": intake.keep(
                "account",
                json_bytes(known),
                media_type=JSON_MEDIA_TYPE,
                account_key=account,
                label=f"account {account}"[:255],
                details={"account_key": account},
            ),
            "collected_at": now,
        }
        events = session.scalars(
            select(UploadEvent)
            .where(UploadEvent.account_id == account, UploadEvent.id.not_in(requested_events))
            .order_by(UploadEvent.id)
            .limit(related_limit + 1)
        ).all()
        if len(events) > related_limit:
            events = events[:related_limit]
            result.related_truncated = manifest["related"]["truncated"] = True
        seen = set(requested)
        for event in events:
            manifest["related"]["uploads"].append(
                {"upload_event_id": event.id, "item_id": _keep_upload(intake, session, event)}
            )
            if event.content_id in seen:
                continue
            seen.add(event.content_id)
            content = session.get(Content, event.content_id)
            if content is None:
                continue
            entry = _content_record(content)
            data_bytes, why = _kept_bytes(media, content.sha256)
            entry["item_id"] = None
            if data_bytes is not None:
                entry["item_id"] = intake.keep(
                    "content",
                    data_bytes,
                    media_type=content.media_type,
                    content_id=content.id,
                    account_key=account,
                    label=f"content {content.id} (related)",
                    details={"content_id": content.id, "md5": content.md5},
                )
            else:
                entry["not_kept"] = why
            manifest["related"]["contents"].append(entry)

    result.manifest_item_id = intake.keep(
        "document",
        json_bytes(manifest),
        media_type=JSON_MEDIA_TYPE,
        account_key=account,
        label=f"preservation request {request.id}: manifest",
        details={"preservation_request_id": request.id},
    )
    return result


def _keep_upload(intake: _Intake, session: Session, event: UploadEvent) -> int:
    return intake.keep(
        "upload",
        json_bytes(_upload_record(session, event)),
        media_type=JSON_MEDIA_TYPE,
        content_id=event.content_id,
        account_key=event.account_id,
        label=f"upload {event.id}",
        details={"upload_event_id": event.id},
    )


# --- Exports --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOutcome:
    export: VaultExport
    folder: Path | None
    """Where the items were written; None while the export waits for approval."""


def _export_items(session: Session, item_ids: Sequence[int]) -> list[VaultItem]:
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        raise VaultError("name the items to export")
    rows = {row.id: row for row in session.scalars(select(VaultItem).where(VaultItem.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ItemNotFound(f"no vault item {', '.join(map(str, missing))}")
    gone = [i for i in ids if rows[i].wrapped_key is None]
    if gone:
        raise ItemShredded(f"vault item {', '.join(map(str, gone))} was destroyed")
    return [rows[i] for i in ids]


def export_items(
    session: Session,
    vault: Vault,
    item_ids: Sequence[int],
    *,
    reader: Reader,
    reason: str,
    to: Path,
    now: datetime,
) -> ExportOutcome:
    """Export items for legal process: up to the approval threshold at once, written to the
    folder `to` (decrypted and verified, with `manifest.json` and `SHA256SUMS`); more become
    a pending `VaultExport` that another `legal` or `admin` user must `approve_export` before
    `run_export` writes them. Audited; the caller commits."""
    reader.require_access("export vault items")
    reason = check_reason(reason)
    items = _export_items(session, item_ids)
    export = VaultExport(
        item_ids=[item.id for item in items],
        reason=reason,
        requested_by=reader.name,
        requested_at=now,
        status="pending",
    )
    session.add(export)
    session.flush()
    if len(items) > vault.export_approval_threshold:
        audit(
            session,
            "vault.export_requested",
            "vault_export",
            str(export.id),
            {"actor": f"user:{reader.name}", "reason": reason, "item_ids": export.item_ids},
        )
        return ExportOutcome(export, None)
    folder = _write_export(vault, export, items, Path(to), now)
    export.status = "done"
    session.flush()
    audit(
        session,
        "vault.export",
        "vault_export",
        str(export.id),
        {
            "actor": f"user:{reader.name}",
            "reason": reason,
            "item_ids": export.item_ids,
            "approved_by": None,
        },
    )
    return ExportOutcome(export, folder)


def _pending_export(session: Session, export_id: int) -> VaultExport:
    export = session.get(VaultExport, export_id, with_for_update=True, populate_existing=True)
    if export is None:
        raise VaultError(f"no vault export {export_id}")
    return export


def _decide_export(
    session: Session,
    export: VaultExport,
    approver: Reader,
    status: str,
    now: datetime,
    details: dict[str, Any],
) -> VaultExport:
    export.status = status
    export.decided_by = approver.name
    export.decided_at = now
    session.flush()
    audit(
        session,
        f"vault.export_{status}",
        "vault_export",
        str(export.id),
        {"actor": f"user:{approver.name}", **details},
    )
    return export


def _pending(session: Session, export_id: int, approver: Reader, action: str) -> VaultExport:
    approver.require_access(action)
    export = _pending_export(session, export_id)
    if export.status != "pending":
        raise VaultError(f"vault export {export_id} is {export.status}, not pending")
    return export


def approve_export(
    session: Session, export_id: int, *, approver: Reader, now: datetime
) -> VaultExport:
    """A second `legal` or `admin` user (not the one who asked) approves a large export."""
    export = _pending(session, export_id, approver, "approve vault exports")
    if approver.name == export.requested_by:
        raise AccessDenied(
            f"{approver.name!r} asked for export {export_id}: another person must approve it"
        )
    return _decide_export(
        session, export, approver, "approved", now, {"requested_by": export.requested_by}
    )


def refuse_export(
    session: Session, export_id: int, *, approver: Reader, now: datetime
) -> VaultExport:
    """Refuse a pending export (anyone with access, the requester included, may)."""
    export = _pending(session, export_id, approver, "refuse vault exports")
    return _decide_export(session, export, approver, "refused", now, {})


def run_export(
    session: Session, vault: Vault, export_id: int, *, reader: Reader, to: Path, now: datetime
) -> Path:
    """Write an approved export (by its requester or its approver) to the folder `to`."""
    reader.require_access("export vault items")
    export = _pending_export(session, export_id)
    if export.status != "approved":
        raise VaultError(f"vault export {export_id} is {export.status}, not approved")
    if reader.name not in (export.requested_by, export.decided_by):
        raise AccessDenied(f"only {export.requested_by!r} or {export.decided_by!r} may run it")
    items = _export_items(session, export.item_ids)
    folder = _write_export(vault, export, items, Path(to), now)
    export.status = "done"
    session.flush()
    audit(
        session,
        "vault.export",
        "vault_export",
        str(export.id),
        {
            "actor": f"user:{reader.name}",
            "reason": export.reason,
            "item_ids": export.item_ids,
            "approved_by": export.decided_by,
        },
    )
    return folder


def _extension(item: VaultItem) -> str:
    return ".json" if item.media_type == JSON_MEDIA_TYPE else ".bin"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _write_export(
    vault: Vault, export: VaultExport, items: list[VaultItem], to: Path, now: datetime
) -> Path:
    """Each item as `item-<id>.<bin|json>`, `SHA256SUMS`, and `manifest.json` last: a folder
    without a manifest is an interrupted export. Every item is verified against its SHA-256
    as it is written."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise VaultError(f"{to} exists and is not an empty folder")
    make_private_dir(to)
    entries = []
    for item in items:
        data = open_item(vault, item)
        name = f"item-{item.id}{_extension(item)}"
        _write_private(to / name, data)
        entries.append(
            {
                "file": name,
                "item_id": item.id,
                "kind": item.kind,
                "sha256": item.sha256,
                "size": item.size,
                "media_type": item.media_type,
                "label": item.label,
                "account_key": item.account_key,
                "content_id": item.content_id,
                "details": item.details,
                "stored_at": item.created,
            }
        )
    sums = "".join(f"{entry['sha256']}  {entry['file']}\n" for entry in entries)
    _write_private(to / "SHA256SUMS", sums.encode("ascii"))
    manifest = {
        "export_id": export.id,
        "reason": export.reason,
        "requested_by": export.requested_by,
        "requested_at": export.requested_at,
        "approved_by": export.decided_by,
        "approved_at": export.decided_at,
        "exported_at": now,
        "items": entries,
    }
    _write_private(to / "manifest.json", json_bytes(manifest))
    return to
