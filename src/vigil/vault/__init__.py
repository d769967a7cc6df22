"""The evidence vault: what must be kept, kept sealed, read by few, destroyed on time.

The foundation is three small, replaceable parts: a `KeyProvider` holds the key-encryption
key, `seal`/`open_sealed` and `encrypt_item`/`decrypt_item` do the envelope encryption, and a
`BlobStore` (`FileBlobStore`, `S3BlobStore`) keeps the resulting ciphertext. On them:

* `vigil.vault.items`: items (one data key each, wrapped and kept in the database apart from
  the bytes), reading them (legal/admin only, with a reason, audited);
* `vigil.vault.retention`: clocks (report, 2703(f) preservation, legal hold, voluntary),
  holds, the sweep that crypto-shreds what nothing keeps, destroy requests;
* `vigil.vault.service`: `preserve`, honouring preservation requests, exports.

See docs/vault.md.
"""

from vigil.vault.blobs import BlobStore, FileBlobStore, ListableBlobStore
from vigil.vault.crypto import SealError, decrypt_item, encrypt_item, open_sealed, seal
from vigil.vault.items import (
    ACCESS_ROLES,
    AccessDenied,
    ItemNotFound,
    ItemShredded,
    Reader,
    Vault,
    VaultError,
    VaultIntegrityError,
    get_item,
    list_items,
    open_vault,
    read_item,
)
from vigil.vault.keys import KeyFileError, KeyProvider, LocalKeyProvider, UnwrapError
from vigil.vault.retention import (
    Clock,
    ItemOnHold,
    RetentionError,
    SweepResult,
    create_hold,
    destroy_on_request,
    keep_voluntarily,
    preserve_existing,
    release_hold,
    renew,
    sweep,
)
from vigil.vault.s3 import S3BlobStore
from vigil.vault.service import (
    ExportOutcome,
    HonourResult,
    MissingContent,
    Preserved,
    approve_export,
    export_items,
    honour_preservation_requests,
    preserve,
    refuse_export,
    run_export,
)

__all__ = [
    "ACCESS_ROLES",
    "AccessDenied",
    "BlobStore",
    "Clock",
    "ExportOutcome",
    "FileBlobStore",
    "HonourResult",
    "ItemNotFound",
    "ItemOnHold",
    "ItemShredded",
    "KeyFileError",
    "KeyProvider",
    "ListableBlobStore",
    "LocalKeyProvider",
    "MissingContent",
    "Preserved",
    "Reader",
    "RetentionError",
    "S3BlobStore",
    "SealError",
    "SweepResult",
    "UnwrapError",
    "Vault",
    "VaultError",
    "VaultIntegrityError",
    "approve_export",
    "create_hold",
    "decrypt_item",
    "destroy_on_request",
    "encrypt_item",
    "export_items",
    "get_item",
    "honour_preservation_requests",
    "keep_voluntarily",
    "list_items",
    "open_sealed",
    "open_vault",
    "preserve",
    "preserve_existing",
    "read_item",
    "refuse_export",
    "release_hold",
    "renew",
    "run_export",
    "seal",
    "sweep",
]
