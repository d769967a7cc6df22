"""Importing hash-list files into a bank, and exporting a bank as a file.

An import reads the file **twice**, streaming both times:

1. *Check*: the whole file is parsed without touching the bank. A file that cannot be read
   as its format (not UTF-8, bad JSON or XML, a DOCTYPE, a wrong header, a line or file
   over the limits) stops here: the import record says `failed` with the reason and the
   bank is untouched. Row-level problems (bad hex, wrong length, unknown type) are not
   failures; they are rejected rows.
2. *Apply*: the file is parsed again and applied in batches of `batch_size` records, each
   batch its own transaction (committed), so a million-row import neither holds a write
   lock for minutes nor builds one huge transaction. The import record is updated with
   the running counts after every batch.

What "nothing half-written" means here: a malformed file changes nothing (step 1). Between
the two passes only the environment can fail (the database goes away, the process is
killed, the file is replaced: its SHA-256 is compared at the end). Then the committed
batches stay, the import record says `failed` (or `running` if the process died), and
either running the same import again completes it (imports are idempotent) or
`undo_import` removes the entries it added. A single transaction for the whole file was
the alternative; it was not chosen because on SQLite it would block every other writer
(the scan pipeline, reviewers) for the whole import.

Idempotence: the same file imported again adds, updates and removes nothing (every row is
`unchanged`). Deletions (hash-sharing `deletedImage`/`deletedVideo`) and updates of an
external entry remove the values the source no longer lists.
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from vigil.banks.classification import DEFAULT_VICS_REGION, check_vics_region
from vigil.banks.formats import (
    Deletion,
    Entry,
    ImportFileError,
    ImportFormat,
    ImportLimits,
    ParseOptions,
    Rejected,
    Row,
    Skipped,
    detect_format,
    parser_for,
)
from vigil.banks.formats.base import check_text, open_guarded
from vigil.banks.formats.delimited import COLUMNS
from vigil.banks.formats.plain import MULTILINE_TYPES, check_signal_type
from vigil.banks.service import (
    ChangeCounts,
    _bank,
    _classification,
    apply_records,
)
from vigil.config import Settings
from vigil.signals import SIGNAL_TYPES
from vigil.store.bank_models import Bank, BankEntry, BankImport
from vigil.store.db import begin_immediate
from vigil.store.types import utcnow

REJECTED_SAMPLE = 100
"""Rejected rows kept (with position and reason) in the import record and report."""
MAX_SKIP_REASONS = 50
"""Distinct skip reasons counted; further ones are counted under "other"."""
DEFAULT_BATCH = 5000
_ANALYZE_FIRST = 5000


def limits_from_settings(settings: Settings) -> ImportLimits:
    """The import limits configured by `VIGIL_BANK_IMPORT_*`."""
    return ImportLimits(
        max_bytes=settings.bank_import_max_bytes,
        max_line_chars=settings.bank_import_max_line_chars,
        max_value_chars=settings.bank_import_max_value_chars,
    )


def default_actor() -> str:
    """Who is running this process (the operating-system user), for import records."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (a container with an unnamed uid)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class RejectedRow:
    position: int
    reason: str


@dataclass
class ImportReport:
    """What an import did; `status` is `finished` or `failed` (with `error`)."""

    import_id: int
    bank: str
    format: str
    file_name: str
    status: str = "running"
    error: str | None = None
    file_sha256: str | None = None
    file_bytes: int | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: int = 0
    skipped: int = 0
    rejected_sample: list[RejectedRow] = field(default_factory=list)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    actor: str = ""
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def ok(self) -> bool:
        """Finished with every row imported."""
        return self.status == "finished" and self.rejected == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "bank": self.bank,
            "format": self.format,
            "file_name": self.file_name,
            "status": self.status,
            "error": self.error,
            "file_sha256": self.file_sha256,
            "file_bytes": self.file_bytes,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "rejected_sample": [
                {"position": r.position, "reason": r.reason} for r in self.rejected_sample
            ],
            "skipped_reasons": dict(self.skipped_reasons),
            "actor": self.actor,
            "started": None if self.started is None else self.started.isoformat(),
            "finished": None if self.finished is None else self.finished.isoformat(),
        }

    @classmethod
    def from_record(cls, record: BankImport, bank_name: str) -> ImportReport:
        return cls(
            import_id=record.id,
            bank=bank_name,
            format=record.format,
            file_name=record.file_name,
            status=record.status,
            error=record.error,
            file_sha256=record.file_sha256,
            file_bytes=record.file_bytes,
            added=record.added,
            updated=record.updated,
            unchanged=record.unchanged,
            removed=record.removed,
            rejected=record.rejected,
            skipped=record.skipped,
            rejected_sample=[
                RejectedRow(int(item["position"]), str(item["reason"]))
                for item in record.rejected_sample or []
            ],
            skipped_reasons=dict(record.skipped_reasons or {}),
            actor=record.actor,
            started=record.started,
            finished=record.finished,
        )


@dataclass
class _Tally:
    counts: ChangeCounts = field(default_factory=ChangeCounts)
    rejected: int = 0
    skipped: int = 0
    sample: list[RejectedRow] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def reject(self, record: Rejected) -> None:
        self.rejected += 1
        if len(self.sample) < REJECTED_SAMPLE:
            self.sample.append(RejectedRow(record.position, record.reason))

    def skip(self, record: Skipped) -> None:
        self.skipped += 1
        reason = record.reason
        if reason not in self.reasons and len(self.reasons) >= MAX_SKIP_REASONS:
            reason = "other"
        self.reasons[reason] += 1

    def write(self, record: BankImport) -> None:
        record.added = self.counts.added
        record.updated = self.counts.updated
        record.unchanged = self.counts.unchanged
        record.removed = self.counts.removed
        record.rejected = self.rejected
        record.skipped = self.skipped
        record.rejected_sample = [
            {"position": item.position, "reason": item.reason} for item in self.sample
        ]
        record.skipped_reasons = dict(self.reasons)


def import_file(
    session: Session,
    bank: Bank | str | int,
    path: str | os.PathLike[str],
    *,
    fmt: ImportFormat | str | None = None,
    actor: str | None = None,
    signal_type: str | None = None,
    vics_region: str = DEFAULT_VICS_REGION,
    vics_categories: Iterable[int] | None = None,
    list_name: str | None = None,
    limits: ImportLimits | None = None,
    batch_size: int = DEFAULT_BATCH,
    on_start: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a hash-list file into a bank (see the module docstring); **commits**.

    `on_start` is called with the import record's id once it is committed, so a background
    job can point its progress at the record, which each batch updates.

    `fmt` defaults to the file extension's format. `list_name` scopes external ids (default:
    the bank's `source_name`). A file that cannot be read as its format gives a report with
    status `failed`; ValueError is raised, before anything is recorded, for bad options
    (unknown format, a plain list without its signal type, a missing file).
    """
    bank = _bank(session, bank)
    source = Path(path)
    file_format = ImportFormat(fmt) if fmt is not None else detect_format(source.name)
    if file_format is ImportFormat.PLAIN:
        try:
            check_signal_type(signal_type)
        except ImportFileError as error:
            raise ValueError(str(error)) from None
        assert signal_type is not None
        if signal_type not in SIGNAL_TYPES:
            raise ValueError(
                f"unknown signal type {signal_type!r}; known: {', '.join(SIGNAL_TYPES)}"
            )
    if not source.is_file():
        raise ValueError(f"{source} is not a file")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    region = check_vics_region(vics_region)
    categories = None if vics_categories is None else frozenset(int(c) for c in vics_categories)
    scope = check_text("list name", list_name) or bank.source_name
    options = ParseOptions(
        signal_type=signal_type,
        vics_region=region,
        vics_categories=categories,
        file_name=source.name,
        limits=limits or ImportLimits(),
    )
    parse, options = parser_for(file_format, options)

    record = BankImport(
        bank_id=bank.id,
        format=file_format.value,
        file_name=source.name[:255],
        options={
            key: value
            for key, value in {
                "signal_type": signal_type,
                "vics_region": region if file_format is ImportFormat.VICS else None,
                "vics_categories": None if categories is None else sorted(categories),
                "list_name": scope,
                "batch_size": batch_size,
            }.items()
            if value is not None
        },
        status="running",
        actor=(actor or default_actor())[:200],
        started=utcnow(),
        added=0,
        updated=0,
        unchanged=0,
        removed=0,
        rejected=0,
        skipped=0,
        rejected_sample=[],
        skipped_reasons={},
    )
    session.add(record)
    session.commit()
    if on_start is not None:
        on_start(record.id)
    tally = _Tally()

    def fail(message: str) -> ImportReport:
        session.rollback()
        record.status = "failed"
        record.error = message[:2000]
        record.finished = utcnow()
        tally.write(record)
        session.add(record)
        session.commit()
        return ImportReport.from_record(record, bank.name)

    # Pass 1: check the whole file, changing nothing.
    try:
        with source.open("rb") as raw:
            reader, stream = open_guarded(raw, options.limits.max_bytes)
            for _ in parse(stream, options):
                pass
            reader.drain()
    except ImportFileError as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"cannot read the file: {error.strerror or error}")
    checked_digest, checked_bytes = reader.hexdigest, reader.bytes_read
    record.file_sha256 = checked_digest
    record.file_bytes = checked_bytes
    session.commit()

    # Pass 2: apply, in committed batches.
    batch: list[Row | Entry | Deletion] = []

    analyze_at = [_ANALYZE_FIRST]

    def flush() -> None:
        begin_immediate(session)
        tally.counts += apply_records(
            session, bank, batch, import_id=record.id, list_name=scope, now=utcnow()
        )
        batch.clear()
        if tally.counts.added >= analyze_at[0] and session.get_bind().dialect.name == "postgresql":
            # PostgreSQL plans the look-ups of existing values from table statistics; while
            # a bank grows from nothing they say "no rows", and the planner scans the whole
            # bank per batch (quadratic). Refresh them as the import doubles the bank.
            session.execute(text("ANALYZE bank_entry"))
            analyze_at[0] *= 2
        tally.write(record)
        session.add(record)
        session.commit()

    try:
        with source.open("rb") as raw:
            reader, stream = open_guarded(raw, options.limits.max_bytes)
            for item in parse(stream, options):
                if isinstance(item, Rejected):
                    tally.reject(item)
                elif isinstance(item, Skipped):
                    tally.skip(item)
                else:
                    batch.append(item)
                    if len(batch) >= batch_size:
                        flush()
            if batch:
                flush()
            reader.drain()
        if (reader.hexdigest, reader.bytes_read) != (checked_digest, checked_bytes):
            return fail(
                "the file changed while it was being imported; import it again"
                " (entries applied so far stay: see undo_import)"
            )
    except ImportFileError as error:  # the file changed between the passes
        return fail(f"{error} (the file changed while it was being imported)")
    except OSError as error:
        return fail(f"cannot read the file: {error.strerror or error}")
    except BaseException as error:
        with contextlib.suppress(Exception):
            fail(f"{type(error).__name__}: {error}")
        raise
    record.status = "finished"
    record.finished = utcnow()
    tally.write(record)
    session.add(record)
    session.commit()
    return ImportReport.from_record(record, bank.name)


# --- Export ---------------------------------------------------------------------------------


class ExportFormat(StrEnum):
    CSV = "csv"
    PLAIN = "plain"


def check_export_options(fmt: ExportFormat | str, signal_type: str | None) -> None:
    """ValueError, with the reason, for an export that cannot be written."""
    if fmt not in tuple(ExportFormat):
        raise ValueError(f"export format must be one of {', '.join(ExportFormat)}, got {fmt!r}")
    if signal_type is not None and signal_type not in SIGNAL_TYPES:
        raise ValueError(f"unknown signal type {signal_type!r}; known: {', '.join(SIGNAL_TYPES)}")
    if fmt == ExportFormat.PLAIN:
        if signal_type is None:
            raise ValueError("a plain export lists one signal type: name it")
        if signal_type in MULTILINE_TYPES:
            raise ValueError(f"{signal_type} values span several lines: export them as CSV")


def export_bank(
    session: Session,
    bank: Bank | str | int,
    stream: TextIO,
    *,
    fmt: ExportFormat | str = ExportFormat.CSV,
    signal_type: str | None = None,
    batch: int = 2000,
) -> int:
    """Write a bank's entries (all, or one signal type) to `stream`, streaming; returns how
    many. CSV has the import header (`signal_type,value,classification,external_id,note,
    list_name,member`) and reads back as the same entries; `plain` is one value per line
    and needs `signal_type` (not vPDQ, whose values span lines)."""
    bank = _bank(session, bank)
    check_export_options(fmt, signal_type)
    query = (
        select(
            BankEntry.signal_type,
            BankEntry.value,
            BankEntry.industry,
            BankEntry.uk_category,
            BankEntry.vics_category,
            BankEntry.vics_region,
            BankEntry.labels,
            BankEntry.external_id,
            BankEntry.note,
            BankEntry.list_name,
            BankEntry.member,
        )
        .where(BankEntry.bank_id == bank.id)
        .order_by(BankEntry.id)
    )
    if signal_type is not None:
        query = query.where(BankEntry.signal_type == signal_type)
    count = 0
    rows = session.execute(query.execution_options(yield_per=batch))
    if fmt == ExportFormat.PLAIN:
        for row in rows:
            stream.write(row[1] + "\n")
            count += 1
        return count
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        classification = _classification(row[2], row[3], row[4], row[5], row[6])
        writer.writerow(
            [
                row[0],
                row[1],
                classification.to_text(),
                row[7] or "",
                row[8] or "",
                row[9] or "",
                row[10] or "",
            ]
        )
        count += 1
    return count
