"""`vigil audit ...`: the tamper-evident audit log. A thin layer over `vigil.audit`.

Exit status: 0 done (for `verify`: the chain is intact); 1 `verify` found a broken link or
refused the checkpoint; 2 usage error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vigil import audit
from vigil.cli.common import (
    database_session,
    err_console,
    output_stream,
    stdout_console,
    usage_error,
)
from vigil.config import get_settings
from vigil.store import begin_immediate

audit_app = typer.Typer(
    help="The audit log: verify its hash chain, sign checkpoints, export and read it.",
    no_args_is_help=True,
)


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        usage_error(f"{option}: not an ISO 8601 date or time: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@audit_app.command("verify")
def verify_command(
    from_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--from-checkpoint",
            help="A checkpoint file: its signature must verify and its seq's hash must"
            " still be in the chain.",
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            help="The trusted public key (base64, as in checkpoint files, or a PEM file);"
            " default: the configured key's.",
        ),
    ] = None,
) -> None:
    """Check every link of the chain (and, given one, a signed checkpoint)."""
    trusted = None
    if public_key is not None:
        text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
        try:
            trusted = audit.parse_public_key(text)
        except audit.CheckpointError as error:
            usage_error(f"--public-key: {error}")
    elif from_checkpoint is not None:
        key_file = audit.key_path(get_settings())
        if key_file.exists():
            try:
                trusted = audit.load_or_create_key(key_file).public_key()
            except audit.CheckpointError as error:
                usage_error(str(error))
        else:
            err_console.print(
                "[yellow]warning:[/yellow] no signing key here: the checkpoint is checked"
                " against the public key it names (use --public-key)"
            )
    with database_session() as session:
        result = audit.verify(session, from_checkpoint=from_checkpoint, public_key=trusted)
    if result.ok:
        anchored = (
            f", consistent with the checkpoint at seq {result.checkpoint_seq}"
            if result.checkpoint_seq is not None
            else ""
        )
        typer.echo(f"ok: {result.checked} events verified{anchored}")
        return
    if result.first_broken_seq is None:
        typer.echo(f"broken: {result.problem}")
    else:
        typer.echo(f"first broken link at seq {result.first_broken_seq}: {result.problem}")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint_command() -> None:
    """Sign the chain's head and write a checkpoint file (its path on stdout). Copy it off
    this machine."""
    settings = get_settings()
    try:
        key = audit.load_or_create_key(audit.key_path(settings))
    except audit.CheckpointError as error:
        usage_error(str(error))
    with database_session() as session:
        begin_immediate(session)  # SQLite: it reads the head, then writes its event
        path = audit.checkpoint(session, key, audit.checkpoint_dir(settings))
    typer.echo(str(path))


@audit_app.command("export")
def export_command(
    object_type: Annotated[
        str | None, typer.Option(help="Only events about this table (`report`, `bank`...).")
    ] = None,
    object_id: Annotated[str | None, typer.Option(help="Only events about this row.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time (ISO 8601, UTC; excluded).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """The events as JSON Lines, in seq order."""
    start, end = _when(since, "--since"), _when(until, "--until")
    with database_session() as session, output_stream(output) as stream:
        count = audit.export(
            session, stream, object_type=object_type, object_id=object_id, since=start, until=end
        )
    if output is not None:
        err_console.print(f"{count} events written to {escape(str(output))}")


@audit_app.command("log")
def log_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many events.")] = 50,
) -> None:
    """The latest events, newest first."""
    with database_session() as session:
        events = audit.recent(session, limit)
    table = Table("seq", "at", "actor", "action", "object", "details")
    for event in events:
        details = json.dumps(event.details, sort_keys=True, ensure_ascii=False)
        table.add_row(
            str(event.seq),
            event.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            escape(event.actor),
            escape(event.action),
            escape(f"{event.object_type} {event.object_id or ''}".strip()),
            escape(details if len(details) <= 120 else details[:117] + "..."),
        )
    stdout_console().print(table)
