"""Signed checkpoints of the audit chain: its head (seq and hash) at a moment, signed with
Ed25519, written as a small JSON file meant to be copied off the machine.

A checkpoint pins the whole history up to its seq: rewriting any earlier event changes the
hash at that seq, which no longer matches the signed one (`vigil audit verify
--from-checkpoint FILE`). The file::

    {"version": 1, "seq": 1234, "hash": "<64 hex>", "at": "2026-11-25T09:30:00.000000+00:00",
     "signature": "<base64>", "public_key": "<base64 of the raw 32-byte key>"}

The signature covers the ASCII text `vigil-audit-checkpoint/v1\\nseq=<seq>\\nhash=<hash>\\n
at=<at>\\n` (see `signing_message`). The key is `VIGIL_HOME/keys/audit-ed25519.key` (PKCS#8
PEM, created with mode 0o600 on first use; setting `audit_key_file`); checkpoints go to
`VIGIL_HOME/audit/checkpoints/` (setting `audit_checkpoint_dir`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.audit.chain import HEAD_ID, format_at
from vigil.audit.hooks import record
from vigil.config import Settings
from vigil.store.db import Database
from vigil.store.types import utcnow
from vigil.store.vault_models import AuditHead

log = logging.getLogger(__name__)

KEY_FILE_NAME = "audit-ed25519.key"
CHECKPOINT_VERSION = 1
_PREFIX = "checkpoint-"


class CheckpointError(Exception):
    """A checkpoint or key file that cannot be read or trusted."""


# --- Keys --------------------------------------------------------------------------------------


def key_path(settings: Settings) -> Path:
    """Where the signing key is: `audit_key_file`, else `VIGIL_HOME/keys/audit-ed25519.key`."""
    return settings.audit_key_file or settings.home / "keys" / KEY_FILE_NAME


def checkpoint_dir(settings: Settings) -> Path:
    """Where checkpoints go: `audit_checkpoint_dir`, else `VIGIL_HOME/audit/checkpoints`."""
    return settings.audit_checkpoint_dir or settings.home / "audit" / "checkpoints"


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise CheckpointError(f"{path} can be read by others: chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as error:
        raise CheckpointError(f"{path} is not a PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 key")
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in `path`, created (PKCS#8 PEM, mode 0o600, directory 0o700) when
    missing. Several processes creating it at once agree on one key (the file appears whole,
    by a hard link, or not at all)."""
    if path.exists():
        return _read_private_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(pem)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_private_key(path)  # another process made it first: theirs
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as base64 of its raw 32 bytes (as in checkpoint files)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its raw bytes, or from PEM (public or private key)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded: Any = (
                serialization.load_pem_private_key(text.encode(), password=None)
                if "PRIVATE" in text.split("\n", 1)[0]
                else serialization.load_pem_public_key(text.encode())
            )
            if isinstance(loaded, Ed25519PrivateKey):
                loaded = loaded.public_key()
            if not isinstance(loaded, Ed25519PublicKey):
                raise CheckpointError("not an Ed25519 key")
            return loaded
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as error:
        raise CheckpointError(f"not an Ed25519 public key: {error}") from None


# --- Checkpoints -------------------------------------------------------------------------------


def signing_message(seq: int, hash: str, at: str) -> bytes:
    """What a checkpoint's signature covers."""
    return f"vigil-audit-checkpoint/v1\nseq={seq:d}\nhash={hash}\nat={at}\n".encode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read from its file (nothing about it checked yet)."""

    seq: int
    hash: str
    at: str
    signature: str
    public_key: str

    def signature_error(self, trusted: Ed25519PublicKey | None = None) -> str | None:
        """Why the signature is not to be trusted (None when it verifies) with `trusted`,
        or, when none is given, with the key the file itself names (which only shows the
        file was not altered since it was signed, not who signed it)."""
        try:
            embedded = parse_public_key(self.public_key)
            signature = base64.b64decode(self.signature, validate=True)
        except (CheckpointError, ValueError, binascii.Error):
            return "the checkpoint's public key or signature is malformed"
        key = trusted or embedded
        if trusted is not None and public_key_text(trusted) != public_key_text(embedded):
            return "the checkpoint was signed with another key than the trusted one"
        try:
            key.verify(signature, signing_message(self.seq, self.hash, self.at))
        except InvalidSignature:
            return "the checkpoint's signature does not verify (the file was altered)"
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "signature": self.signature,
            "public_key": self.public_key,
        }


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, hash: str, at: datetime) -> Checkpoint:
    when = format_at(at)
    signature = key.sign(signing_message(seq, hash, when))
    return Checkpoint(
        seq, hash, when, base64.b64encode(signature).decode("ascii"), public_key_text(key)
    )


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint in `path`; CheckpointError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    try:
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise TypeError
        seq, digest, at = data["seq"], data["hash"], data["at"]
        signature, public_key = data["signature"], data["public_key"]
        if (
            not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
            or not all(isinstance(v, str) for v in (digest, at, signature, public_key))
            or len(digest) != 64
            or not digest.isascii()
            or not at.isascii()
        ):
            raise TypeError
    except (KeyError, TypeError):
        raise CheckpointError(f"{path} is not a Vigil audit checkpoint") from None
    return Checkpoint(seq, digest, at, signature, public_key)


def head(session: Session) -> tuple[int, str]:
    """The chain's head: (seq, hash) of its last event."""
    row = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    if row is None:
        raise CheckpointError("the audit chain's head (audit_head id 1) is missing")
    return int(row[0]), str(row[1])


def checkpoint(
    session: Session, key: Ed25519PrivateKey, out_dir: Path, *, now: datetime | None = None
) -> Path:
    """Sign the chain's committed head and write it to a new file in `out_dir`; the file's
    path. An `audit.checkpoint` event (seq, hash, file name) joins the chain when `session`
    commits. Call it at the start of a transaction, so the head read is a committed one."""
    now = now or utcnow()
    seq, digest = head(session)
    signed = sign_checkpoint(key, seq, digest, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{_PREFIX}{seq:012d}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(json.dumps(signed.as_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    record(session, "audit.checkpoint", "audit_head", seq, {"hash": digest, "file": path.name})
    return path


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest checkpoint file in `out_dir` (by name: seq, then time), or None."""
    if not out_dir.is_dir():
        return None
    found = sorted(out_dir.glob(f"{_PREFIX}*.json"))
    return found[-1] if found else None


class CheckpointWorker:
    """Writes a checkpoint every `audit_checkpoint_hours` while the server runs (when the
    chain has grown since the newest one in the directory, and that one is old enough, so
    several workers sharing a directory write about one each period)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.interval = settings.audit_checkpoint_hours * 3600.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        newest = latest_checkpoint(checkpoint_dir(self.settings))
        if newest is None:
            return True
        try:
            age = utcnow().timestamp() - newest.stat().st_mtime
            last = read_checkpoint(newest)
        except (OSError, CheckpointError):
            return True
        if age < self.interval:
            return False
        with self.database.session() as session:
            return head(session) != (last.seq, last.hash)

    def run_once(self) -> Path | None:
        """Write a checkpoint if one is due; its path, or None."""
        if not self.due():
            return None
        key = load_or_create_key(key_path(self.settings))
        with self.database.session(immediate=True) as session:
            return checkpoint(session, key, checkpoint_dir(self.settings))

    def _run(self) -> None:
        poll = max(1.0, min(self.interval, 300.0))
        while True:
            try:
                written = self.run_once()
                if written is not None:
                    log.info("audit checkpoint written: %s", written)
            except Exception:
                log.exception("audit checkpoint failed")
            if self._stop.wait(poll):
                return

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vigil-audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
