"""The evidence vault: per-item encryption with the key apart, retention clocks, the sweep's
crypto-shredding (and its crash safety), destroy requests, holds, reads and exports, the S3
backend (against moto's standalone server, in-process: no S3 server can be installed here),
honouring preservation requests, and `vigil vault`. Both databases; the clock is passed in.

Every item's bytes are random (`os.urandom`): no real media is involved.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from vigil.auth.users import create_user
from vigil.cli import app
from vigil.config import Settings, get_settings
from vigil.store import (
    AuditEvent,
    Database,
    PreservationRequest,
    UploadEvent,
    VaultClock,
    VaultDestruction,
    VaultExport,
    VaultItem,
    open_database,
    record_hashes,
    utcnow,
)
from vigil.vault import (
    AccessDenied,
    Clock,
    FileBlobStore,
    ItemOnHold,
    ItemShredded,
    LocalKeyProvider,
    Reader,
    RetentionError,
    S3BlobStore,
    SealError,
    Vault,
    VaultError,
    VaultIntegrityError,
    approve_export,
    create_hold,
    decrypt_item,
    destroy_on_request,
    encrypt_item,
    export_items,
    honour_preservation_requests,
    open_vault,
    preserve,
    read_item,
    release_hold,
    renew,
    run_export,
    sweep,
)
from vigil.vault.crypto import ITEM_MAGIC
from vigil.vault.media import MediaStore
from vigil.vault.retention import preserve_existing

KEYS = LocalKeyProvider(bytes(range(32)))
OTHER_KEYS = LocalKeyProvider(bytes(range(1, 33)))
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
DAY = timedelta(days=1)
LEGAL = Reader("lou", frozenset({"legal"}))
ADMIN = Reader("ada", frozenset({"admin"}))
REVIEWER = Reader("rita", frozenset({"reviewer"}))
ACCOUNT = "acct-42"


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(
        keys=KEYS, stores={"file": FileBlobStore(tmp_path / "vault")}, export_approval_threshold=3
    )


def keep(
    db: Database,
    vault: Vault,
    clock: Clock | None = None,
    *,
    data: bytes | None = None,
    kind: str = "content",
    account: str | None = ACCOUNT,
    now: datetime = T0,
) -> int:
    """A committed item of random bytes, kept by `clock` (a report's year by default)."""
    with db.session() as session:
        preserved = preserve(
            session,
            vault,
            kind=kind,
            data=data if data is not None else os.urandom(1000),
            clock=clock or Clock.report(now + YEAR, "report 1"),
            now=now,
            account_key=account,
            details={"note": "test"},
        )
        return preserved.item.id


def item(db: Database, item_id: int) -> VaultItem:
    with db.session() as session:
        found = session.get(VaultItem, item_id)
        assert found is not None
        _ = list(found.clocks)
        return found


def read(db: Database, vault: Vault, item_id: int, reader: Reader = LEGAL) -> bytes:
    with db.session() as session:
        return read_item(session, vault, item_id, reader=reader, reason="case 2026-17")


def run_sweep(db: Database, vault: Vault, now: datetime, **options: Any) -> Any:
    with db.sessionmaker() as session:
        return sweep(session, vault, now=now, **options)


def destructions(db: Database) -> list[VaultDestruction]:
    with db.session() as session:
        return list(session.scalars(select(VaultDestruction).order_by(VaultDestruction.id)))


# --- Encryption -------------------------------------------------------------------------


def test_item_encryption_round_trip_and_the_key_is_not_in_the_blob() -> None:
    plaintext = os.urandom(4096)
    aad = b"vigil-vault:7\n{}"
    wrapped, key_id, blob = encrypt_item(plaintext, aad=aad, keys=KEYS)
    assert blob.startswith(ITEM_MAGIC) and key_id == KEYS.key_id
    assert wrapped not in blob and plaintext not in blob
    assert KEYS.unwrap(wrapped) not in blob
    assert decrypt_item(blob, wrapped_key=wrapped, key_id=key_id, aad=aad, keys=KEYS) == plaintext


def test_item_decryption_fails_loudly_on_anything_wrong() -> None:
    aad = b"vigil-vault:7\n{}"
    wrapped, key_id, blob = encrypt_item(b"evidence", aad=aad, keys=KEYS)
    other_wrapped, _, other_blob = encrypt_item(b"evidence", aad=aad, keys=KEYS)
    flipped = bytearray(blob)
    flipped[-3] ^= 1
    cases: list[dict[str, Any]] = [
        {"keys": OTHER_KEYS, "key_id": OTHER_KEYS.key_id},  # another KEK
        {"blob": bytes(flipped)},  # a flipped ciphertext byte
        {"blob": blob[:-1]},  # truncated
        {"blob": blob[:10]},
        {"aad": b"vigil-vault:8\n{}"},  # another item's id
        {"wrapped_key": other_wrapped},  # another item's key
        {"blob": other_blob},  # another item's bytes
        {"wrapped_key": wrapped[:-1] + bytes([wrapped[-1] ^ 1])},  # altered wrapped key
        {"key_id": "0" * 16},
    ]
    for case in cases:
        arguments: dict[str, Any] = {
            "blob": blob,
            "wrapped_key": wrapped,
            "key_id": key_id,
            "aad": aad,
            "keys": KEYS,
        }
        arguments.update(case)
        with pytest.raises(SealError):
            decrypt_item(arguments.pop("blob"), **arguments)


# --- Items ------------------------------------------------------------------------------


def test_preserve_and_read_round_trip(db: Database, vault: Vault, tmp_path: Path) -> None:
    data = os.urandom(5000)
    item_id = keep(db, vault, data=data)
    stored = item(db, item_id)
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == 5000
    assert stored.wrapped_key is not None and stored.storage == "file"
    blob = vault.store.get(stored.blob_key)
    assert data not in blob and stored.wrapped_key not in blob
    assert stored.blob_key != stored.sha256  # the storage name says nothing of the content
    assert read(db, vault, item_id) == data
    assert read(db, vault, item_id, ADMIN) == data
    [clock] = stored.clocks
    assert (clock.reason, clock.expires_at) == ("report", T0 + YEAR)


def test_the_same_bytes_get_a_clock_not_a_second_copy(db: Database, vault: Vault) -> None:
    data = os.urandom(100)
    first = keep(db, vault, data=data)
    second = keep(db, vault, Clock.voluntary(T0 + 2 * YEAR, "keep"), data=data)
    assert first == second
    assert sorted(c.reason for c in item(db, first).clocks) == ["report", "voluntary"]
    assert keep(db, vault, data=data, kind="document") != first  # another kind: another item


def test_reads_need_the_legal_or_admin_role_and_a_reason(db: Database, vault: Vault) -> None:
    item_id = keep(db, vault)
    with db.session() as session:
        with pytest.raises(AccessDenied, match="legal or admin"):
            read_item(session, vault, item_id, reader=REVIEWER, reason="curious")
        for reason in ("", "   ", "x" * 1001):
            with pytest.raises(VaultError, match="reason"):
                read_item(session, vault, item_id, reader=LEGAL, reason=reason)
        assert read_item(session, vault, item_id, reader=LEGAL, reason="x" * 1000)
    read(db, vault, item_id)
    with db.session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "vault.read").order_by(AuditEvent.seq)
        ).all()
        assert [(e.actor, e.object_type, e.object_id) for e in reads] == [
            ("user:lou", "vault_item", str(item_id))
        ] * 2
        assert reads[-1].details["reason"] == "case 2026-17"


def test_swapped_or_altered_items_fail_loudly(
    db: Database, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = keep(db, vault), keep(db, vault)
    a, b = item(db, first), item(db, second)

    def set_row(item_id: int, **values: Any) -> None:
        with db.session() as session:
            session.execute(update(VaultItem).where(VaultItem.id == item_id).values(**values))

    # The two rows' blobs swapped: each row's key and id meet the other's bytes.
    set_row(first, blob_key=b.blob_key)
    set_row(second, blob_key=a.blob_key)
    for item_id in (first, second):
        with pytest.raises(VaultIntegrityError, match="does not authenticate"):
            read(db, vault, item_id)
    assert "failed to open" in caplog.text
    set_row(first, blob_key=a.blob_key)
    set_row(second, blob_key=b.blob_key)
    assert read(db, vault, first) and read(db, vault, second)

    # The wrapped keys swapped.
    set_row(first, wrapped_key=b.wrapped_key)
    with pytest.raises(VaultIntegrityError):
        read(db, vault, first)
    set_row(first, wrapped_key=a.wrapped_key)

    # Authenticated metadata edited.
    for values in (
        {"details": {"note": "edited"}},
        {"account_key": "acct-other"},
        {"kind": "document"},
        {"sha256": "0" * 64},
    ):
        set_row(first, **values)
        with pytest.raises(VaultIntegrityError):
            read(db, vault, first)
        set_row(first, **{k: getattr(a, k) for k in values})
    assert read(db, vault, first)

    # A flipped byte of the stored ciphertext.
    blob = bytearray(vault.store.get(a.blob_key))
    blob[40] ^= 0x80
    vault.store.put(a.blob_key, bytes(blob))
    with pytest.raises(VaultIntegrityError):
        read(db, vault, first)

    # Another key-encryption key.
    wrong = Vault(keys=OTHER_KEYS, stores=vault.stores)
    with pytest.raises(VaultIntegrityError, match="wrapped by key"):
        read(db, wrong, second)

    # The bytes gone.
    vault.store.delete(b.blob_key)
    with pytest.raises(VaultIntegrityError, match="missing"):
        read(db, vault, second)


# --- Retention and the sweep ------------------------------------------------------------


def test_reported_then_held_survives_the_year_and_goes_after_release(
    db: Database, vault: Vault
) -> None:
    item_id = keep(db, vault)
    blob_key = item(db, item_id).blob_key
    with db.session() as session:
        hold, _ = create_hold(
            session,
            "matter 7",
            reason="litigation",
            actor="cli:lee",
            now=T0 + DAY,
            item_ids=[item_id],
        )
        hold_id = hold.id
    for later in (T0 + YEAR - DAY, T0 + YEAR, T0 + 2 * YEAR):
        assert run_sweep(db, vault, later).shredded == []
    assert read(db, vault, item_id)
    with db.session() as session:
        release_hold(session, hold_id, actor="cli:lee", now=T0 + 2 * YEAR)
        with pytest.raises(RetentionError, match="already released"):
            release_hold(session, hold_id, actor="cli:lee", now=T0 + 2 * YEAR)
    result = run_sweep(db, vault, T0 + 2 * YEAR + DAY)
    assert result.shredded == [item_id]
    gone = item(db, item_id)
    assert gone.wrapped_key is None and gone.shredded_at == T0 + 2 * YEAR + DAY
    assert not vault.store.exists(blob_key)
    [record] = destructions(db)
    assert (record.item_id, record.reason, record.sha256) == (item_id, "expired", gone.sha256)
    with pytest.raises(ItemShredded):
        read(db, vault, item_id)


def test_nothing_is_shredded_early(db: Database, vault: Vault) -> None:
    item_id = keep(db, vault)
    assert run_sweep(db, vault, T0 + YEAR - timedelta(seconds=1)).shredded == []
    assert run_sweep(db, vault, T0 + YEAR).shredded == [item_id]  # the year is over


def test_preservation_request_90_days_and_one_renewal(db: Database, vault: Vault) -> None:
    item_id = keep(db, vault, Clock.preservation_request(T0, "2703(f) 2026-1"))
    [clock] = item(db, item_id).clocks
    assert clock.expires_at == T0 + 90 * DAY
    assert run_sweep(db, vault, T0 + 89 * DAY).shredded == []
    with db.session() as session:
        renewed = renew(session, clock.id, actor="cli:lee", now=T0 + 89 * DAY)
        assert renewed.expires_at == T0 + 180 * DAY and renewed.renewals == 1
    with db.session() as session, pytest.raises(RetentionError, match="already renewed"):
        renew(session, clock.id, actor="cli:lee", now=T0 + 100 * DAY)
    assert run_sweep(db, vault, T0 + 179 * DAY).shredded == []
    assert run_sweep(db, vault, T0 + 181 * DAY).shredded == [item_id]


def test_an_ended_preservation_request_is_not_renewed(db: Database, vault: Vault) -> None:
    item_id = keep(db, vault)  # kept by a report for the year
    with db.session() as session:
        [clock] = preserve_existing(
            session, reference="2703(f) 2026-2", actor="cli:lee", now=T0, item_ids=[item_id]
        )
        clock_id = clock.id
    with db.session() as session, pytest.raises(RetentionError, match="new request"):
        renew(session, clock_id, actor="cli:lee", now=T0 + 91 * DAY)
    with db.session() as session, pytest.raises(RetentionError, match="only preservation"):
        report_clock = session.scalars(
            select(VaultClock).where(VaultClock.reason == "report")
        ).one()
        renew(session, report_clock.id, actor="cli:lee", now=T0)


def test_destroy_request_shreds_at_once_but_not_under_a_hold(db: Database, vault: Vault) -> None:
    free, held = keep(db, vault), keep(db, vault)
    with db.session() as session:
        hold, _ = create_hold(
            session, "case 9", reason="investigation", actor="cli:lee", now=T0, item_ids=[held]
        )
    with db.sessionmaker() as session, pytest.raises(ItemOnHold, match="case 9") as refused:
        destroy_on_request(
            session, vault, [free, held], reference="LE-55", actor="user:lou", now=T0
        )
    assert f"legal hold {hold.id}" in str(refused.value)
    assert item(db, free).wrapped_key is not None  # all or nothing
    with db.sessionmaker() as session:
        assert destroy_on_request(
            session, vault, [free], reference="LE-55", actor="user:lou", now=T0 + DAY
        ) == [free]
    gone = item(db, free)
    assert gone.wrapped_key is None and not vault.store.exists(gone.blob_key)
    [record] = destructions(db)
    assert (record.reason, record.reference, record.actor) == (
        "destroy_request",
        "LE-55",
        "user:lou",
    )
    with db.sessionmaker() as session, pytest.raises(VaultError, match="reference"):
        destroy_on_request(session, vault, [held], reference=" ", actor="user:lou", now=T0)


def test_dry_run_changes_nothing(db: Database, vault: Vault) -> None:
    item_id = keep(db, vault)
    result = run_sweep(db, vault, T0 + 2 * YEAR, dry_run=True)
    assert result.dry_run and result.due == [item_id] and result.shredded == []
    kept = item(db, item_id)
    assert kept.wrapped_key is not None and vault.store.exists(kept.blob_key)
    assert destructions(db) == []
    assert read(db, vault, item_id)


class CrashingStore:
    """A file store that dies right after writing a blob, or before deleting one."""

    def __init__(self, inner: FileBlobStore, *, crash_put: bool = False) -> None:
        self.inner = inner
        self.crash_put = crash_put
        self.crash_delete = not crash_put

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)
        if self.crash_put:
            raise Crash("killed after the blob was written, before the row was committed")

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> bool:
        if self.crash_delete:
            raise Crash("killed after the key was shredded, before the bytes were deleted")
        return self.inner.delete(key)


def test_killed_during_a_write_leaves_no_item_and_the_sweep_removes_the_orphan(
    db: Database, vault: Vault
) -> None:
    files = vault.stores["file"]
    assert isinstance(files, FileBlobStore)
    crashing = Vault(keys=KEYS, stores={"file": CrashingStore(files, crash_put=True)})
    with db.sessionmaker() as session, pytest.raises(Crash):
        preserve(
            session,
            crashing,
            kind="content",
            data=os.urandom(64),
            clock=Clock.report(T0 + YEAR, "report 1"),
            now=T0,
        )
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(VaultItem)) == 0
    [(orphan, _)] = list(files.list_keys())
    # Within the grace period it may be a write in progress: left alone.
    assert run_sweep(db, vault, utcnow()).orphans == []
    assert files.exists(orphan)
    result = run_sweep(db, vault, utcnow() + 2 * DAY)
    assert result.orphans == [f"file:{orphan}"] and not files.exists(orphan)


def test_killed_during_a_sweep_the_next_sweep_deletes_the_bytes(db: Database, vault: Vault) -> None:
    files = vault.stores["file"]
    assert isinstance(files, FileBlobStore)
    item_id = keep(db, vault)
    blob_key = item(db, item_id).blob_key
    crashing = Vault(keys=KEYS, stores={"file": CrashingStore(files)})
    with pytest.raises(Crash):
        run_sweep(db, crashing, T0 + 2 * YEAR)
    half = item(db, item_id)
    assert half.wrapped_key is None and files.exists(blob_key)  # unreadable, still there
    assert len(destructions(db)) == 1
    result = run_sweep(db, vault, T0 + 2 * YEAR)
    assert result.shredded == [] and result.leftover_bytes == [f"file:{blob_key}"]
    assert not files.exists(blob_key) and len(destructions(db)) == 1


def test_file_store_lists_blobs_and_removes_stale_temporaries(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    assert list(store.list_keys()) == []
    key = "12" * 16
    store.put(key, b"sealed")
    stale = store.path(key).parent / f".{key}.abc.tmp"  # a write killed mid-way
    stale.write_bytes(b"half")
    (tmp_path / "blobs" / "stray.txt").write_text("not a blob")
    assert [k for k, _ in store.list_keys()] == [key]
    assert store.remove_stale_temporaries(utcnow() - DAY) == 0  # may be a write in progress
    assert store.remove_stale_temporaries(utcnow() + DAY) == 1
    assert not stale.exists() and store.get(key) == b"sealed"


# --- S3 (moto's standalone server) --------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, request: pytest.FixtureRequest) -> S3BlobStore:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = "vault-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, "evidence/", client)


def test_s3_store_put_get_exists_delete_list(s3: S3BlobStore) -> None:
    key, data = "ab" * 16, os.urandom(3000)
    assert not s3.exists(key)
    with pytest.raises(KeyError):
        s3.get(key)
    s3.put(key, data)
    assert s3.exists(key) and s3.get(key) == data
    s3.client.put_object(Bucket=s3.bucket, Key="evidence/not-a-blob", Body=b"x")
    s3.client.put_object(Bucket=s3.bucket, Key="elsewhere/" + "cd" * 16, Body=b"x")
    [(listed, modified)] = list(s3.list_keys())
    assert listed == key and modified.tzinfo is not None
    assert s3.delete(key) and not s3.exists(key) and not s3.delete(key)
    with pytest.raises(ValueError):
        s3.put("../escape", b"x")


class FailingBody:
    """A request body that breaks halfway, as a connection dropping mid-upload would."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent = data, 0

    def read(self, size: int = -1) -> bytes:
        if self.sent:
            raise ConnectionResetError("the upload was interrupted")
        self.sent = max(1, len(self.data) // 2)
        return self.data[: self.sent]

    def seek(self, *_: Any) -> int:
        return 0

    def tell(self) -> int:
        return self.sent


def test_an_interrupted_s3_put_leaves_no_object(s3: S3BlobStore) -> None:
    key = "ef" * 16
    inner = s3.client

    class Interrupting:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def put_object(self, **arguments: Any) -> Any:
            arguments["Body"] = FailingBody(arguments["Body"])
            return inner.put_object(**arguments)

    interrupted = S3BlobStore(s3.bucket, s3.prefix, Interrupting())
    with pytest.raises(Exception):  # noqa: B017 - whatever botocore makes of it
        interrupted.put(key, os.urandom(200_000))
    assert not s3.exists(key)
    with pytest.raises(KeyError):
        s3.get(key)


def test_the_vault_on_s3_round_trip_and_shredding(db: Database, s3: S3BlobStore) -> None:
    vault = Vault(keys=KEYS, stores={"s3": s3}, storage="s3")
    data = os.urandom(2048)
    item_id = keep(db, vault, data=data)
    stored = item(db, item_id)
    assert stored.storage == "s3" and s3.exists(stored.blob_key)
    assert data not in s3.get(stored.blob_key)
    assert read(db, vault, item_id) == data
    assert run_sweep(db, vault, T0 + 2 * YEAR).shredded == [item_id]
    assert not s3.exists(stored.blob_key)


def test_open_vault_from_settings(tmp_path: Path, s3: S3BlobStore) -> None:
    settings = Settings(home=tmp_path / "home")
    vault = open_vault(settings)
    assert vault.storage == "file" and set(vault.stores) == {"file"}
    assert vault.keys.key_id == open_vault(settings).keys.key_id  # the key file is reused
    on_s3 = open_vault(
        settings.model_copy(update={"vault_storage": "s3", "vault_s3_bucket": s3.bucket}),
        s3_client=s3.client,
    )
    assert on_s3.storage == "s3" and set(on_s3.stores) == {"file", "s3"}
    with pytest.raises(ValueError, match="BUCKET"):
        open_vault(settings.model_copy(update={"vault_storage": "s3"}))


# --- Exports ------------------------------------------------------------------------------


def test_small_exports_go_at_once_with_a_manifest(
    db: Database, vault: Vault, tmp_path: Path
) -> None:
    payloads = [os.urandom(300), os.urandom(400)]
    ids = [keep(db, vault, data=p) for p in payloads]
    with db.session() as session:
        with pytest.raises(AccessDenied):
            export_items(
                session, vault, ids, reader=REVIEWER, reason="x", to=tmp_path / "no", now=T0
            )
        outcome = export_items(
            session, vault, ids, reader=LEGAL, reason="warrant 12", to=tmp_path / "out", now=T0
        )
        assert outcome.folder == tmp_path / "out" and outcome.export.status == "done"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["reason"] == "warrant 12" and manifest["requested_by"] == "lou"
    for entry, payload in zip(manifest["items"], payloads, strict=True):
        written = (tmp_path / "out" / entry["file"]).read_bytes()
        assert written == payload and entry["sha256"] == hashlib.sha256(payload).hexdigest()
    sums = (tmp_path / "out" / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{e['sha256']}  {e['file']}" for e in manifest["items"]]
    with db.session() as session, pytest.raises(VaultError, match="not an empty folder"):
        export_items(session, vault, ids, reader=LEGAL, reason="again", to=tmp_path / "out", now=T0)


def test_bulk_exports_need_a_second_person(db: Database, vault: Vault, tmp_path: Path) -> None:
    ids = [keep(db, vault) for _ in range(4)]  # the threshold is 3
    with db.session() as session:
        outcome = export_items(
            session, vault, ids, reader=LEGAL, reason="subpoena 3", to=tmp_path / "out", now=T0
        )
        assert outcome.folder is None and outcome.export.status == "pending"
        export_id = outcome.export.id
    assert not (tmp_path / "out").exists()
    with db.session() as session:
        with pytest.raises(AccessDenied, match="another person"):
            approve_export(session, export_id, approver=LEGAL, now=T0)
        with pytest.raises(AccessDenied, match="legal or admin"):
            approve_export(session, export_id, approver=REVIEWER, now=T0)
        with pytest.raises(VaultError, match="not approved"):
            run_export(session, vault, export_id, reader=LEGAL, to=tmp_path / "out", now=T0)
        approve_export(session, export_id, approver=ADMIN, now=T0)
        with pytest.raises(AccessDenied):
            run_export(
                session,
                vault,
                export_id,
                reader=Reader("eve", frozenset({"legal"})),
                to=tmp_path / "out",
                now=T0,
            )
        run_export(session, vault, export_id, reader=LEGAL, to=tmp_path / "out", now=T0)
    with db.session() as session:
        export = session.get(VaultExport, export_id)
        assert export is not None
        assert (export.status, export.decided_by) == ("done", "ada")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [e["item_id"] for e in manifest["items"]] == ids and manifest["approved_by"] == "ada"


# --- Preservation requests ------------------------------------------------------------------


def _content(session: Session, media: MediaStore | None, tmp_path: Path) -> tuple[int, bytes]:
    data = os.urandom(700)
    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data).hexdigest()
    content = record_hashes(
        session,
        sha256=sha256,
        md5=md5,
        size=len(data),
        media_type="image",
        signals=[("md5", md5, None), ("pdq", "0f" * 32, 90)],
    )
    if media is not None:
        path = tmp_path / sha256
        path.write_bytes(data)
        media.keep(path, sha256)
    return content.id, data


def _upload(session: Session, content_id: int, account: str = ACCOUNT) -> int:
    event = UploadEvent(
        content_id=content_id,
        content_ref="post/1",
        file_name="beach.png",
        account_id=account,
        screen_name="sunny",
        ip_address="198.51.100.7",
        event_time=T0 - DAY,
    )
    session.add(event)
    session.flush()
    return event.id


def test_honouring_a_report_preservation_request(
    db: Database, vault: Vault, tmp_path: Path
) -> None:
    from vigil.vault.accounts import UploadsConnector

    media = MediaStore(FileBlobStore(tmp_path / "media"), KEYS)
    with db.session() as session:
        kept_id, kept_bytes = _content(session, media, tmp_path)
        lost_id, _ = _content(session, None, tmp_path)  # its bytes were never kept
        related_id, related_bytes = _content(session, media, tmp_path)
        uploads = [_upload(session, kept_id), _upload(session, lost_id)]
        related_upload = _upload(session, related_id)
        _upload(session, related_id, account="someone-else")
        request = PreservationRequest(
            reason="report",
            account_key=ACCOUNT,
            content_ids=[kept_id, lost_id],
            upload_event_ids=uploads,
            requested_at=T0,
            preserve_until=T0 + YEAR,
        )
        session.add(request)
        session.flush()
        request_id = request.id

    with db.sessionmaker() as session:
        [result] = honour_preservation_requests(
            session, vault, media, (UploadsConnector(),), T0 + timedelta(minutes=5)
        )
        assert (
            honour_preservation_requests(session, vault, media, (UploadsConnector(),), T0 + DAY)
            == []
        )
    assert result.request_id == request_id
    assert [(m.content_id, "not kept" in m.reason) for m in result.missing] == [(lost_id, True)]
    with db.session() as session:
        honoured = session.get(PreservationRequest, request_id)
        assert honoured is not None and honoured.honoured_at == T0 + timedelta(minutes=5)
        items = list(session.scalars(select(VaultItem).order_by(VaultItem.id)))
        kinds = sorted(i.kind for i in items)
        # kept content, related content, two requested uploads + the related one, the
        # account, the manifest
        assert kinds == ["account", "content", "content", "document"] + ["upload"] * 3
        assert sorted(result.item_ids) == [i.id for i in items] and result.new_items == 7
        for each in items:
            [clock] = each.clocks
            assert (clock.reason, clock.expires_at) == ("report", T0 + YEAR)
            assert clock.reference == f"preservation request {request_id}"
        by_content = {i.content_id: i for i in items if i.kind == "content"}
        assert set(by_content) == {kept_id, related_id}

        def plain(i: VaultItem) -> bytes:
            return read_item(session, vault, i.id, reader=LEGAL, reason="check")

        assert plain(by_content[kept_id]) == kept_bytes
        assert plain(by_content[related_id]) == related_bytes
        [account] = [i for i in items if i.kind == "account"]
        account_json = json.loads(plain(account))
        assert account_json["account_id"] == ACCOUNT and account_json["screen_name"] == "sunny"
        upload_json = [json.loads(plain(i)) for i in items if i.kind == "upload"]
        assert sorted(u["upload_event_id"] for u in upload_json) == [*uploads, related_upload]
        manifest = json.loads(plain(next(i for i in items if i.kind == "document")))
        assert manifest["missing"][0]["content_id"] == lost_id
        lost = next(c for c in manifest["contents"] if c["content_id"] == lost_id)
        assert (
            lost["item_id"] is None
            and {"type": "pdq", "value": "0f" * 32, "quality": 90} in (lost["signals"])
        )  # its hashes are kept even though its bytes were not

    # A second request for the same content: a new clock on the item, not a second copy.
    with db.session() as session:
        session.add(
            PreservationRequest(
                reason="preservation_request",
                account_key=ACCOUNT,
                content_ids=[kept_id],
                upload_event_ids=[],
                requested_at=T0 + DAY,
                preserve_until=T0 + 91 * DAY,
            )
        )
    with db.sessionmaker() as session:
        [second] = honour_preservation_requests(
            session, vault, media, (UploadsConnector(),), T0 + DAY
        )
    kept_item = by_content[kept_id].id
    assert kept_item in second.item_ids
    assert sorted(c.reason for c in item(db, kept_item).clocks) == [
        "preservation_request",
        "report",
    ]
    with db.session() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(VaultItem)
                .where(VaultItem.content_id == kept_id, VaultItem.kind == "content")
            )
            == 1
        )


# --- The command line ---------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    monkeypatch.setenv("VIGIL_VAULT_EXPORT_APPROVAL_THRESHOLD", "1")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def vigil(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_smoke(home: Path, tmp_path: Path) -> None:
    settings = get_settings()
    database = open_database(settings)
    vault = open_vault(settings)
    try:
        with database.session() as session:
            create_user(session, "lou", "correct horse battery", ["legal"])
            create_user(session, "ada", "correct horse battery", ["admin"])
            create_user(session, "rita", "correct horse battery", ["reviewer"])
        now = utcnow()
        first = keep(database, vault, Clock.report(now + YEAR, "report 1"), now=now)
        second = keep(database, vault, Clock.report(now + YEAR, "report 1"), now=now)
    finally:
        database.dispose()

    code, out, _ = vigil("vault", "list", "--json")
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()] == [second, first]
    code, out, _ = vigil("vault", "list", "--account", "nobody", "--json")
    assert code == 0 and out == ""
    code, out, _ = vigil("vault", "list")
    assert code == 0 and "content" in out
    code, out, _ = vigil("vault", "show", str(first))
    assert code == 0 and json.loads(out)["clocks"][0]["reason"] == "report"
    assert vigil("vault", "show", "999")[0] == 2

    code, out, _ = vigil(
        "vault", "hold", "matter 1", "--reason", "litigation", "--item", str(first)
    )
    assert code == 0
    hold_id = json.loads(out)["hold_id"]
    code, out, _ = vigil("vault", "holds")
    assert code == 0 and json.loads(out)["id"] == hold_id
    code, _, err = vigil("vault", "destroy", str(first), "--reference", "LE-1", "--as", "lou")
    assert code == 2 and "legal hold" in err
    assert vigil("vault", "release", str(hold_id))[0] == 0

    code, out, _ = vigil(
        "vault",
        "export",
        str(first),
        "--reason",
        "warrant",
        "--as",
        "lou",
        "--to",
        str(tmp_path / "one"),
    )
    assert code == 0 and json.loads(out)["status"] == "done"
    assert (tmp_path / "one" / "manifest.json").is_file()
    code, _, err = vigil(
        "vault", "export", str(first), "--reason", "x", "--as", "rita", "--to", str(tmp_path / "no")
    )
    assert code == 2 and "legal or admin" in err
    code, out, _ = vigil(
        "vault",
        "export",
        str(first),
        str(second),
        "--reason",
        "subpoena",
        "--as",
        "lou",
        "--to",
        str(tmp_path / "two"),
    )
    assert code == 0 and json.loads(out)["status"] == "pending"
    export_id = json.loads(out)["export_id"]
    assert vigil("vault", "approve-export", str(export_id), "--as", "lou")[0] == 2
    code, out, _ = vigil(
        "vault", "approve-export", str(export_id), "--as", "ada", "--to", str(tmp_path / "two")
    )
    assert code == 0 and json.loads(out)["status"] == "done"
    assert len(list((tmp_path / "two").glob("item-*"))) == 2

    code, out, _ = vigil("vault", "sweep", "--dry-run")
    assert code == 0 and json.loads(out)["due"] == []
    code, out, _ = vigil("vault", "honour")
    assert code == 0 and out == ""
    code, out, _ = vigil("vault", "destroy", str(second), "--reference", "LE-2", "--as", "ada")
    assert code == 0 and json.loads(out)["shredded"] == [second]
    code, out, _ = vigil("vault", "list", "--shredded", "--json")
    assert json.loads(out.splitlines()[0])["shredded_at"] is not None
