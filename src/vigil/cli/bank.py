"""`vigil bank ...`: manage hash banks. A thin layer over `vigil.banks`.

Exit status: 0 done; 1 an import failed or rejected rows; 2 usage error (bad option, unknown
bank, invalid value).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from vigil import banks
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.config import get_settings
from vigil.store import Bank

bank_app = typer.Typer(
    help="Hash banks: named hash lists to match against (create, import, export, ...).",
    no_args_is_help=True,
)

_COUNTS = ("added", "updated", "unchanged", "removed", "rejected", "skipped")


class Kind(StrEnum):
    MATCH = "match"
    SUPPRESS = "suppress"


class Source(StrEnum):
    OWN = "own"
    IMPORTED = "imported"
    EXCHANGE = "exchange"


class Trust(StrEnum):
    VERIFIED = "verified"
    UNVERIFIED = "unverified"


class ImportFormatChoice(StrEnum):
    AUTO = "auto"
    CSV = "csv"
    TSV = "tsv"
    PLAIN = "plain"
    VICS = "vics"
    NCMEC = "ncmec"


class ExportFormatChoice(StrEnum):
    CSV = "csv"
    PLAIN = "plain"


def _get(session: Session, name: str) -> Bank:
    try:
        return banks.get_bank(session, name)
    except banks.BankNotFound:
        usage_error(f"no bank named {name!r} (vigil bank list shows them)")


# --- create / update / enable / disable / delete ------------------------------------------


@bank_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Bank name: lower-case letters, digits, . _ -")],
    kind: Annotated[Kind, typer.Option(help="match, or suppress (known false positives).")] = (
        Kind.MATCH
    ),
    source: Annotated[Source, typer.Option(help="Where the entries come from.")] = Source.OWN,
    source_name: Annotated[
        str | None, typer.Option(help="Name of the imported list or exchange.")
    ] = None,
    trust: Annotated[
        Trust, typer.Option(help="verified: every entry confirmed by a person.")
    ] = Trust.UNVERIFIED,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    classification: Annotated[
        str | None,
        typer.Option(help="Default classification of entries that have none (A1, uk:B, ...)."),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    pdq_threshold: Annotated[int, typer.Option(help="PDQ match distance, 0-64.")] = 31,
    vpdq_frame_threshold: Annotated[int, typer.Option(help="vPDQ frame distance, 0-64.")] = 31,
    vpdq_compared_share: Annotated[
        float, typer.Option(help="vPDQ: % of the bank video's frames that must match.")
    ] = 80.0,
    vpdq_query_share: Annotated[
        float, typer.Option(help="vPDQ: % of the scanned video's frames that must match.")
    ] = 0.0,
) -> None:
    """Create a bank."""
    with database_session() as session:
        try:
            bank = banks.create_bank(
                session,
                name,
                kind=kind.value,
                source=source.value,
                source_name=source_name,
                trust=trust.value,
                description=description,
                default_classification=classification,
                enabled=not disabled,
                pdq_threshold=pdq_threshold,
                vpdq_frame_threshold=vpdq_frame_threshold,
                vpdq_compared_share=vpdq_compared_share,
                vpdq_query_share=vpdq_query_share,
            )
        except (ValueError, banks.BankError) as error:
            usage_error(str(error))
        err_console.print(f"created bank {bank.name} ({bank.kind}, id {bank.id})")


@bank_app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    kind: Annotated[Kind | None, typer.Option(help="match or suppress.")] = None,
    source: Annotated[Source | None, typer.Option()] = None,
    source_name: Annotated[str | None, typer.Option()] = None,
    trust: Annotated[Trust | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    classification: Annotated[
        str | None, typer.Option(help="Default classification ('' removes it).")
    ] = None,
    pdq_threshold: Annotated[int | None, typer.Option(help="0-64.")] = None,
    vpdq_frame_threshold: Annotated[int | None, typer.Option(help="0-64.")] = None,
    vpdq_compared_share: Annotated[float | None, typer.Option(help="0-100.")] = None,
    vpdq_query_share: Annotated[float | None, typer.Option(help="0-100.")] = None,
) -> None:
    """Change a bank's settings (only those given)."""
    given: dict[str, Any] = {
        "kind": None if kind is None else kind.value,
        "source": None if source is None else source.value,
        "source_name": source_name,
        "trust": None if trust is None else trust.value,
        "description": description,
        "default_classification": classification,
        "pdq_threshold": pdq_threshold,
        "vpdq_frame_threshold": vpdq_frame_threshold,
        "vpdq_compared_share": vpdq_compared_share,
        "vpdq_query_share": vpdq_query_share,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes:
        usage_error("nothing to change: give at least one option")
    with database_session() as session:
        bank = _get(session, name)
        try:
            banks.update_bank(session, bank, **changes)
        except ValueError as error:
            usage_error(str(error))
        err_console.print(f"updated bank {bank.name}")


def _set_enabled(name: str, enabled: bool) -> None:
    with database_session() as session:
        bank = _get(session, name)
        banks.set_enabled(session, bank, enabled)
        err_console.print(f"bank {bank.name} {'enabled' if enabled else 'disabled'}")


@bank_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="Bank name.")]) -> None:
    """Enable a bank: its entries take part in matching."""
    _set_enabled(name, True)


@bank_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Bank name.")]) -> None:
    """Disable a bank: its entries take no part in matching (nothing is deleted)."""
    _set_enabled(name, False)


@bank_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a bank with all its entries and import records."""
    with database_session() as session:
        bank = _get(session, name)
        total = sum(banks.entry_counts(session, bank).values())
        if not yes and not typer.confirm(
            f"Delete bank {bank.name} and its {total} entries?", err=True
        ):
            usage_error("not deleted (confirm, or pass --yes)")
        banks.delete_bank(session, bank)
        err_console.print(f"deleted bank {name} ({total} entries)")


# --- list / show --------------------------------------------------------------------------


@bank_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List the banks with their entry counts."""
    with database_session() as session:
        summaries = banks.list_banks(session)
        if as_json:
            print(json.dumps([s.as_json() for s in summaries], indent=2))
            return
        table = Table(title=None if summaries else "no banks yet: vigil bank create NAME")
        for column in ("name", "kind", "source", "trust", "enabled", "entries", "by type"):
            table.add_column(column, justify="right" if column == "entries" else "left")
        for summary in summaries:
            bank = summary.bank
            table.add_row(
                bank.name,
                bank.kind,
                bank.source + (f" ({bank.source_name})" if bank.source_name else ""),
                bank.trust,
                "yes" if bank.enabled else "no",
                str(summary.total),
                ", ".join(f"{k}={v}" for k, v in summary.counts.items()) or "-",
            )
        stdout_console().print(table)


@bank_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
) -> None:
    """Show a bank's settings, entry counts and recent imports."""
    with database_session() as session:
        bank = _get(session, name)
        counts = banks.entry_counts(session, bank)
        imports = [
            banks.ImportReport.from_record(record, bank.name)
            for record in banks.list_imports(session, bank, limit=10)
        ]
        if as_json:
            data = banks.BankSummary(bank, counts).as_json()
            data["imports"] = [report.as_json() for report in imports]
            print(json.dumps(data, indent=2))
            return
        out = stdout_console()
        settings = Table(show_header=False, title=f"bank {bank.name}")
        settings.add_column("setting")
        settings.add_column("value")
        for key, value in banks.BankSummary(bank, counts).as_json().items():
            if key != "entries_by_signal_type":
                settings.add_row(key, "-" if value in (None, "") else str(value))
        out.print(settings)
        if counts:
            by_type = Table(title="entries")
            by_type.add_column("signal type")
            by_type.add_column("entries", justify="right")
            for signal_type, count in counts.items():
                by_type.add_row(signal_type, str(count))
            out.print(by_type)
        if imports:
            table = Table(title="recent imports")
            for column in ("id", "started", "file", "format", "status", *_COUNTS, "by"):
                table.add_column(column)
            for report in imports:
                table.add_row(
                    str(report.import_id),
                    report.started.strftime("%Y-%m-%d %H:%M") if report.started else "-",
                    report.file_name,
                    report.format,
                    report.status,
                    *(str(getattr(report, key)) for key in _COUNTS),
                    report.actor,
                )
            out.print(table)


# --- import / export ----------------------------------------------------------------------


@bank_app.command("import")
def import_command(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    file: Annotated[Path, typer.Argument(help="The hash-list file.")],
    fmt: Annotated[
        ImportFormatChoice,
        typer.Option("--format", help="File format; auto: by extension."),
    ] = ImportFormatChoice.AUTO,
    signal_type: Annotated[
        str | None, typer.Option(help="Signal type of every value of a plain list.")
    ] = None,
    vics_region: Annotated[
        str, typer.Option(help="VICS: the regional category numbering (us, ca, uk, ...).")
    ] = "us",
    vics_category: Annotated[
        list[int] | None,
        typer.Option(help="VICS: import only records of this category (repeatable)."),
    ] = None,
    list_name: Annotated[
        str | None,
        typer.Option(help="Source list name: scopes external ids (default: the bank's)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who runs the import (default: the user name).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a hash list (CSV/TSV, plain, VICS JSON, hash-sharing XML) into a bank.

    Idempotent: importing the same file again changes nothing.

    Bad rows are reported with their line (or record) number; the good rows are imported.

    Exit 1 when rows were rejected or the file could not be read (then nothing changes).
    """
    settings = get_settings()
    with database_session() as session:
        bank = _get(session, name)
        try:
            report = banks.import_file(
                session,
                bank,
                file,
                fmt=None if fmt is ImportFormatChoice.AUTO else fmt.value,
                actor=actor,
                signal_type=signal_type,
                vics_region=vics_region,
                vics_categories=vics_category,
                list_name=list_name,
                limits=banks.limits_from_settings(settings),
            )
        except ValueError as error:
            usage_error(str(error))
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: banks.ImportReport) -> None:
    if report.status == "failed":
        err_console.print(f"[red]import failed[/red] ({report.file_name}): {report.error}")
        if report.added or report.updated or report.removed:
            err_console.print("the batches applied before the failure stay: import again to finish")
        else:
            err_console.print("nothing was imported")
        return
    out = stdout_console()
    table = Table(title=f"import {report.import_id}: {report.file_name} -> {report.bank}")
    for column in _COUNTS:
        table.add_column(column, justify="right")
    table.add_row(*(str(getattr(report, key)) for key in _COUNTS))
    out.print(table)
    if report.rejected_sample:
        rejected = Table(title=f"rejected rows (first {len(report.rejected_sample)})")
        rejected.add_column("line/record", justify="right")
        rejected.add_column("reason")
        for row in report.rejected_sample:
            rejected.add_row(str(row.position), row.reason)
        out.print(rejected)
    if report.skipped_reasons:
        skipped = Table(title="skipped")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, count in sorted(report.skipped_reasons.items()):
            skipped.add_row(reason, str(count))
        out.print(skipped)
    err_console.print(f"file sha256 {report.file_sha256}, {report.file_bytes} bytes")


@bank_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    fmt: Annotated[
        ExportFormatChoice, typer.Option("--format", help="csv (all fields) or plain.")
    ] = ExportFormatChoice.CSV,
    signal_type: Annotated[
        str | None, typer.Option(help="Only this signal type (required for plain).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write here (atomically) instead of stdout.")
    ] = None,
) -> None:
    """Export a bank's entries; the CSV imports back as the same entries."""
    with database_session() as session:
        bank = _get(session, name)
        partial = output.with_name(output.name + ".partial") if output else None
        stream = partial.open("w", encoding="utf-8", newline="") if partial else sys.stdout
        try:
            count = banks.export_bank(session, bank, stream, fmt=fmt.value, signal_type=signal_type)
        except ValueError as error:
            if partial:
                stream.close()
                partial.unlink(missing_ok=True)
            usage_error(str(error))
        if partial and output:
            stream.close()
            os.replace(partial, output)
        else:
            stream.flush()
    err_console.print(f"exported {count} entries")


# --- add / remove -------------------------------------------------------------------------


@bank_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    signal_type: Annotated[str, typer.Argument(help="md5, sha1, sha256, pdq, vpdq.")],
    value: Annotated[str, typer.Argument(help="The hash value.")],
    classification: Annotated[
        str | None, typer.Option(help="A1, uk:B, vics:us:1, labels...")
    ] = None,
    external_id: Annotated[str | None, typer.Option(help="Id in the source list.")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Add one value to a bank (adding it again changes nothing)."""
    with database_session() as session:
        bank = _get(session, name)
        try:
            entry, new = banks.add_entry(
                session,
                bank,
                signal_type,
                value,
                classification=classification,
                external_id=external_id,
                note=note,
            )
        except ValueError as error:
            usage_error(str(error))
        err_console.print(f"{'added' if new else 'already there:'} entry {entry.id} in {bank.name}")


@bank_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    signal_type: Annotated[str | None, typer.Argument(help="Signal type of the value.")] = None,
    value: Annotated[str | None, typer.Argument(help="The hash value.")] = None,
    entry_id: Annotated[int | None, typer.Option("--id", help="Remove by entry id.")] = None,
) -> None:
    """Remove one entry, by signal type and value or by --id."""
    if (entry_id is None) == (value is None):
        usage_error("give SIGNAL_TYPE VALUE, or --id N")
    with database_session() as session:
        bank = _get(session, name)
        try:
            removed = banks.remove_entry(
                session, bank, entry_id=entry_id, signal_type=signal_type, value=value
            )
        except ValueError as error:
            usage_error(str(error))
        if not removed:
            usage_error(f"no such entry in bank {bank.name}")
        err_console.print(f"removed 1 entry from {bank.name}")
