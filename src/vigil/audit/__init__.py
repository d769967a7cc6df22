"""The audit room: a tamper-evident, append-only log of everything that changes state.

- `chain`: events in a SHA-256 hash chain whose single head row serialises writers
  (`append`, the canonical encoding);
- `hooks`: every change to the audited tables becomes an event, written when its
  transaction commits (`install`, `record` for explicit events);
- `actor`: who is acting (`acting_as`, `current_actor`): `token:<name>`, `user:<name>`,
  `cli:<os user>` or `system`;
- `checkpoint`: the head signed with Ed25519, in files to keep elsewhere;
- `verify`: the chain checked link by link, optionally against a checkpoint;
- `export`: JSON Lines.

See docs/audit.md.
"""

from vigil.audit.actor import SYSTEM, acting_as, current_actor, reset_actor, set_actor
from vigil.audit.chain import (
    GENESIS_HASH,
    AuditError,
    Entry,
    append,
    append_entries,
    canonical,
    clean_details,
    format_at,
    link_hash,
)
from vigil.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointWorker,
    checkpoint,
    checkpoint_dir,
    key_path,
    latest_checkpoint,
    load_or_create_key,
    parse_public_key,
    public_key_text,
    read_checkpoint,
)
from vigil.audit.export import event_json, export, recent
from vigil.audit.hooks import AUDITED_MODELS, AUDITED_TABLES, install, installed, record
from vigil.audit.verify import VerifyResult, verify

__all__ = [
    "AUDITED_MODELS",
    "AUDITED_TABLES",
    "GENESIS_HASH",
    "SYSTEM",
    "AuditError",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWorker",
    "Entry",
    "VerifyResult",
    "acting_as",
    "append",
    "append_entries",
    "canonical",
    "checkpoint",
    "checkpoint_dir",
    "clean_details",
    "current_actor",
    "event_json",
    "export",
    "format_at",
    "install",
    "installed",
    "key_path",
    "latest_checkpoint",
    "link_hash",
    "load_or_create_key",
    "parse_public_key",
    "public_key_text",
    "read_checkpoint",
    "recent",
    "record",
    "reset_actor",
    "set_actor",
    "verify",
]
