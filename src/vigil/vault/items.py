"""Vault items: one piece of evidence each, under its own data key, read by few and on record.

An item's bytes are encrypted (`vigil.vault.crypto.encrypt_item`) under a fresh AES-256-GCM
data key and stored in a `BlobStore` (a folder or an S3 bucket) under a random name. The data
key, wrapped by the key-encryption key, is kept in the item's database row (`wrapped_key`),
apart from the bytes: setting it to None destroys the item wherever copies of the bytes
went. The ciphertext is bound to the item's id and authenticated metadata (`item_aad`), so
moving bytes or keys between items, or editing the metadata, makes the item fail to open.

Only people with the `legal` or `admin` role read items, each read with a stated reason and
recorded in the audit log. Retention (clocks, holds, the sweep) is `vigil.vault.retention`;
storing and exporting is `vigil.vault.service`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.store import UploadEvent, VaultItem
from vigil.vault.blobs import BlobStore, FileBlobStore
from vigil.vault.crypto import SealError, decrypt_item
from vigil.vault.keys import KeyProvider, LocalKeyProvider

log = logging.getLogger(__name__)

ACCESS_ROLES = frozenset({"legal", "admin"})
"""Roles that may read, export and destroy vault items."""
MAX_REASON_CHARS = 1000
JSON_MEDIA_TYPE = "application/json"
AAD_PREFIX = b"vigil-vault:"


class VaultError(Exception):
    """A vault operation refused (unknown item, wrong state, bad input)."""


class ItemNotFound(VaultError, LookupError):
    pass


class ItemShredded(VaultError):
    """The item was destroyed: its key is gone, nothing can read it any more."""


class AccessDenied(VaultError, PermissionError):
    """The person lacks the role, or may not do this (approve their own export)."""


class VaultIntegrityError(VaultError):
    """An item that does not open or does not hash to its SHA-256: its bytes, key or
    metadata were altered, swapped or lost. Never ignored: it is logged as an error too."""


@dataclass(frozen=True)
class Reader:
    """Who reads or exports: a console user's name and roles."""

    name: str
    roles: frozenset[str]

    def require_access(self, action: str) -> None:
        """`AccessDenied` unless this person has the `legal` or `admin` role."""
        if not ACCESS_ROLES & set(self.roles):
            raise AccessDenied(f"{self.name!r} may not {action}: it needs the legal or admin role")


@dataclass
class Vault:
    """What the vault works with: the key provider, the blob stores by name, the store new
    items go to (`storage`), and the export threshold."""

    keys: KeyProvider
    stores: Mapping[str, BlobStore]
    storage: str = "file"
    export_approval_threshold: int = 10
    settings: Settings | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.storage not in self.stores:
            raise ValueError(f"no blob store named {self.storage!r} in {sorted(self.stores)}")

    @property
    def store(self) -> BlobStore:
        """Where new items are written."""
        return self.stores[self.storage]

    def store_for(self, storage: str) -> BlobStore:
        """The store an item was written to (`VaultError` when it is not configured here)."""
        try:
            return self.stores[storage]
        except KeyError:
            raise VaultError(
                f"the item's bytes are in the {storage!r} store, which is not configured here"
            ) from None


def open_vault(settings: Settings, *, s3_client: Any = None) -> Vault:
    """The vault of `settings`: the key in `$VIGIL_HOME/keys/vault.key` (shared with the
    review media store), blobs in `$VIGIL_HOME/vault/` and, when `vault_storage` is `s3` or a
    bucket is set, in S3 (`s3_client`, or one made from the standard AWS environment)."""
    stores: dict[str, BlobStore] = {"file": FileBlobStore(settings.home / "vault")}
    if settings.vault_storage == "s3" or settings.vault_s3_bucket:
        from vigil.vault.s3 import S3BlobStore
        from vigil.vault.s3 import s3_client as make_client

        if not settings.vault_s3_bucket:
            raise ValueError("VIGIL_VAULT_STORAGE=s3 needs VIGIL_VAULT_S3_BUCKET")
        client = s3_client if s3_client is not None else make_client(settings.vault_s3_endpoint_url)
        stores["s3"] = S3BlobStore(settings.vault_s3_bucket, settings.vault_s3_prefix, client)
    return Vault(
        keys=LocalKeyProvider.open(settings.home / "keys" / "vault.key"),
        stores=stores,
        storage=settings.vault_storage,
        export_approval_threshold=settings.vault_export_approval_threshold,
        settings=settings,
    )


def canonical_json(value: Any) -> bytes:
    """The one encoding of `value` that authenticates it (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def item_aad(item: VaultItem) -> bytes:
    """What an item's ciphertext is bound to: its id, kind, SHA-256, size, media type, account
    and details. Changing any of them, or giving the item another's bytes, fails the read.
    (`content_id` and `label` are left out: the content row may be deleted, and the label is
    a display name.)"""
    metadata = {
        "kind": item.kind,
        "sha256": item.sha256,
        "size": item.size,
        "media_type": item.media_type,
        "account_key": item.account_key,
        "details": item.details,
    }
    return AAD_PREFIX + str(item.id).encode("ascii") + b"\n" + canonical_json(metadata)


def open_item(vault: Vault, item: VaultItem) -> bytes:
    """The item's plaintext, proven to hash to its SHA-256; `ItemShredded` for a destroyed
    item, `VaultIntegrityError` (logged) for one that is missing, altered or swapped. Not
    access-checked and not audited: people read through `read_item`."""
    if item.wrapped_key is None:
        raise ItemShredded(f"vault item {item.id} was destroyed on {item.shredded_at}")
    store = vault.store_for(item.storage)
    try:
        blob = store.get(item.blob_key)
    except KeyError:
        raise _integrity(item, "its bytes are missing from the store") from None
    try:
        data = decrypt_item(
            blob,
            wrapped_key=item.wrapped_key,
            key_id=item.key_id,
            aad=item_aad(item),
            keys=vault.keys,
        )
    except SealError as error:
        raise _integrity(item, str(error)) from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != item.sha256 or len(data) != item.size:
        raise _integrity(item, f"its plaintext hashes to {actual}, not {item.sha256}")
    return data


def _integrity(item: VaultItem, problem: str) -> VaultIntegrityError:
    message = f"vault item {item.id} ({item.kind}, sha256 {item.sha256}) failed to open: {problem}"
    log.error(message)
    return VaultIntegrityError(message)


def check_reason(reason: str | None) -> str:
    """A stated reason: not blank, at most 1000 characters (`VaultError` otherwise)."""
    text = (reason or "").strip()
    if not text:
        raise VaultError("a reason is required")
    if len(text) > MAX_REASON_CHARS:
        raise VaultError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    return text


def get_item(session: Session, item_id: int) -> VaultItem:
    item = session.get(VaultItem, item_id, populate_existing=True)
    if item is None:
        raise ItemNotFound(f"no vault item {item_id}")
    return item


def read_item(
    session: Session, vault: Vault, item_id: int, *, reader: Reader, reason: str
) -> bytes:
    """An item's bytes for `reader` (`legal` or `admin`), who states why; the read is
    recorded in the audit log (in the session's transaction: the caller commits)."""
    reader.require_access("read vault items")
    reason = check_reason(reason)
    item = get_item(session, item_id)
    data = open_item(vault, item)
    audit(
        session,
        "vault.read",
        "vault_item",
        str(item.id),
        {"actor": f"user:{reader.name}", "reason": reason, "sha256": item.sha256},
    )
    return data


def account_clause(account_key: str) -> ColumnElement[bool]:
    """Items of an account: recorded for it, or of content one of its uploads carried."""
    return or_(
        VaultItem.account_key == account_key,
        VaultItem.content_id.in_(
            select(UploadEvent.content_id).where(UploadEvent.account_id == account_key)
        ),
    )


def list_items(
    session: Session,
    *,
    kind: str | None = None,
    account_key: str | None = None,
    include_shredded: bool = False,
    limit: int | None = None,
) -> list[VaultItem]:
    """Items, newest first (metadata only: nothing is decrypted)."""
    query = select(VaultItem).order_by(VaultItem.id.desc())
    if kind is not None:
        query = query.where(VaultItem.kind == kind)
    if account_key is not None:
        query = query.where(account_clause(account_key))
    if not include_shredded:
        query = query.where(VaultItem.wrapped_key.is_not(None))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def audit(
    session: Session, action: str, object_type: str, object_id: str | None, details: dict[str, Any]
) -> bool:
    """Record an explicit event with `vigil.audit.record`, attributed to `details["actor"]`
    when given (`user:<name>`, `cli:<os user>`, `system`), else to the current actor. The
    module is imported lazily: the vault works without it (False: nothing recorded)."""
    try:
        module = importlib.import_module("vigil.audit")
    except ModuleNotFoundError as error:
        if error.name not in ("vigil.audit", "vigil"):
            raise
        return False
    record = getattr(module, "record", None)
    if record is None:
        return False
    details = dict(details)
    actor = details.pop("actor", None)
    acting_as = getattr(module, "acting_as", None)
    if actor and acting_as is not None:
        with acting_as(actor):
            record(session, action, object_type, object_id, details)
    else:
        record(session, action, object_type, object_id, details)
    return True
