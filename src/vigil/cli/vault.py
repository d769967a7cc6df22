"""`vigil vault ...`: the evidence vault: items and their clocks, legal holds, preservation
requests, exports, destroy requests and the sweep. A thin layer over `vigil.vault`.

Reading and exporting name a console user (`--as USER`) whose `legal` or `admin` role is
checked; holds, renewals and the sweep are recorded as done by `cli:<os user>`.
Exit status: 0 done; 1 an item failed its integrity check; 2 usage error (unknown item or
user, missing role, refused operation).
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vigil.auth.users import UserNotFound, get_user
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.config import get_settings
from vigil.store import VaultItem, utcnow
from vigil.vault.items import (
    Reader,
    Vault,
    VaultError,
    VaultIntegrityError,
    get_item,
    list_items,
    open_vault,
)
from vigil.vault.retention import (
    create_hold,
    destroy_on_request,
    is_kept,
    is_running,
    kept_until,
    list_holds,
    preserve_existing,
    release_hold,
    renew,
    sweep,
)
from vigil.vault.service import (
    approve_export,
    export_items,
    honour_preservation_requests,
    run_export,
)

vault_app = typer.Typer(
    help="The evidence vault: preserved items, retention clocks, legal holds, exports.",
    no_args_is_help=True,
)

AsOption = Annotated[str, typer.Option("--as", help="The console user acting (legal or admin).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli:unknown"


def _vault() -> Vault:
    try:
        return open_vault(get_settings())
    except ValueError as error:
        usage_error(str(error))


def _reader(username: str) -> Reader:
    with database_session() as session:
        try:
            user = get_user(session, username)
        except UserNotFound:
            usage_error(f"no user {username!r}")
        if user.disabled is not None:
            usage_error(f"user {username!r} is disabled")
        return Reader(user.username, frozenset(user.roles))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _item_json(item: VaultItem, now: datetime, *, clocks: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": item.id,
        "kind": item.kind,
        "label": item.label,
        "sha256": item.sha256,
        "size": item.size,
        "media_type": item.media_type,
        "content_id": item.content_id,
        "account_key": item.account_key,
        "storage": item.storage,
        "created": _time(item.created),
        "shredded_at": _time(item.shredded_at),
        "kept": is_kept(item, now),
        "kept_until": _time(kept_until(item, now)) if is_kept(item, now) else None,
    }
    if clocks:
        row["details"] = item.details
        row["clocks"] = [
            {
                "id": clock.id,
                "reason": clock.reason,
                "reference": clock.reference,
                "hold_id": clock.hold_id,
                "starts_at": _time(clock.starts_at),
                "expires_at": _time(clock.expires_at),
                "renewals": clock.renewals,
                "released_at": _time(clock.released_at),
                "running": is_running(clock, now),
            }
            for clock in item.clocks
        ]
    return row


@vault_app.command("list")
def list_command(
    kind: Annotated[str | None, typer.Option(help="Only items of this kind.")] = None,
    account: Annotated[str | None, typer.Option(help="Only items of this account.")] = None,
    shredded: Annotated[bool, typer.Option("--shredded", help="Include destroyed items.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Items, newest first (metadata only: nothing is decrypted)."""
    now = utcnow()
    with database_session() as session:
        rows = [
            _item_json(item, now)
            for item in list_items(
                session, kind=kind, account_key=account, include_shredded=shredded
            )
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table()
    for column in ("id", "kind", "label", "account", "size", "kept until", "shredded"):
        table.add_column(column)
    for row in rows:
        until = row["kept_until"] or ("no end" if row["kept"] else "due for sweep")
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["label"] or "-",
            row["account_key"] or "-",
            str(row["size"]),
            until if not row["shredded_at"] else "-",
            row["shredded_at"] or "",
        )
    stdout_console().print(table)


@vault_app.command("show")
def show_command(item_id: Annotated[int, typer.Argument(help="The item's id.")]) -> None:
    """One item's metadata and clocks (its bytes are read only by exporting)."""
    with database_session() as session:
        try:
            item = get_item(session, item_id)
        except VaultError as error:
            usage_error(str(error))
        row = _item_json(item, utcnow(), clocks=True)
    typer.echo(json.dumps(row, indent=2))


@vault_app.command("hold")
def hold_command(
    name: Annotated[str, typer.Argument(help="The hold's name (a case, a matter).")],
    reason: Annotated[str, typer.Option(help="Why (the legal matter, who asked).")],
    item: Annotated[list[int] | None, typer.Option("--item", help="An item to hold.")] = None,
    account: Annotated[
        str | None, typer.Option(help="Hold every live item of this account.")
    ] = None,
) -> None:
    """Place a legal hold: nothing it covers is destroyed until it is released."""
    if not item and account is None:
        usage_error("name items (--item ID ...) or an account (--account A)")
    with database_session() as session:
        try:
            hold, clocks = create_hold(
                session,
                name,
                reason=reason,
                actor=_cli_actor(),
                now=utcnow(),
                item_ids=item or (),
                account_key=account,
            )
        except VaultError as error:
            usage_error(str(error))
        typer.echo(json.dumps({"hold_id": hold.id, "items": sorted(c.item_id for c in clocks)}))


@vault_app.command("release")
def release_command(hold_id: Annotated[int, typer.Argument(help="The hold's id.")]) -> None:
    """Release a legal hold: items nothing else keeps go at the next sweep."""
    with database_session() as session:
        try:
            release_hold(session, hold_id, actor=_cli_actor(), now=utcnow())
        except VaultError as error:
            usage_error(str(error))
    err_console.print(f"hold {hold_id} released")


@vault_app.command("holds")
def holds_command(
    released: Annotated[bool, typer.Option("--released", help="Include released holds.")] = False,
) -> None:
    """Legal holds, newest first (JSON Lines)."""
    with database_session() as session:
        for hold in list_holds(session, include_released=released):
            typer.echo(
                json.dumps(
                    {
                        "id": hold.id,
                        "name": hold.name,
                        "reason": hold.reason,
                        "created_by": hold.created_by,
                        "created": _time(hold.created),
                        "released_by": hold.released_by,
                        "released_at": _time(hold.released_at),
                    }
                )
            )


@vault_app.command("preserve")
def preserve_command(
    reference: Annotated[str, typer.Option(help="The 2703(f) letter's reference.")],
    item: Annotated[list[int] | None, typer.Option("--item", help="An item to preserve.")] = None,
    account: Annotated[str | None, typer.Option(help="Every live item of this account.")] = None,
) -> None:
    """A 2703(f) preservation letter: keep items already in the vault for 90 days."""
    if not item and account is None:
        usage_error("name items (--item ID ...) or an account (--account A)")
    with database_session() as session:
        try:
            clocks = preserve_existing(
                session,
                reference=reference,
                actor=_cli_actor(),
                now=utcnow(),
                item_ids=item or (),
                account_key=account,
            )
        except VaultError as error:
            usage_error(str(error))
        for clock in clocks:
            typer.echo(
                json.dumps(
                    {
                        "clock_id": clock.id,
                        "item_id": clock.item_id,
                        "expires_at": _time(clock.expires_at),
                    }
                )
            )


@vault_app.command("renew")
def renew_command(clock_id: Annotated[int, typer.Argument(help="The clock's id.")]) -> None:
    """A renewed 2703(f) request: 90 more days, once."""
    with database_session() as session:
        try:
            clock = renew(session, clock_id, actor=_cli_actor(), now=utcnow())
        except VaultError as error:
            usage_error(str(error))
        typer.echo(json.dumps({"clock_id": clock.id, "expires_at": _time(clock.expires_at)}))


@vault_app.command("export")
def export_command(
    item_ids: Annotated[list[int], typer.Argument(help="The items' ids.")],
    reason: Annotated[str, typer.Option(help="Why (the legal process answered).")],
    as_user: AsOption,
    to: Annotated[Path, typer.Option(help="A new or empty folder to write to.")],
) -> None:
    """Export items, decrypted, with a manifest of SHA-256s (over the approval threshold,
    after another legal or admin user's approve-export)."""
    reader = _reader(as_user)
    vault = _vault()
    with database_session() as session:
        try:
            outcome = export_items(
                session, vault, item_ids, reader=reader, reason=reason, to=to, now=utcnow()
            )
        except VaultIntegrityError as error:
            err_console.print(f"[red]integrity failure:[/red] {error}")
            raise typer.Exit(1) from None
        except VaultError as error:
            usage_error(str(error))
        export_id, folder = outcome.export.id, outcome.folder
    if folder is None:
        typer.echo(json.dumps({"export_id": export_id, "status": "pending"}))
        err_console.print(
            f"more than {vault.export_approval_threshold} items: export {export_id} waits for"
            " another legal or admin user: vigil vault approve-export"
            f" {export_id} --as USER --to DIR"
        )
        return
    typer.echo(json.dumps({"export_id": export_id, "status": "done", "folder": str(folder)}))


@vault_app.command("approve-export")
def approve_export_command(
    export_id: Annotated[int, typer.Argument(help="The pending export's id.")],
    as_user: AsOption,
    to: Annotated[
        Path | None, typer.Option(help="Also write the export to this folder now.")
    ] = None,
) -> None:
    """Approve another user's pending export (and, with --to, write it)."""
    reader = _reader(as_user)
    vault = _vault() if to is not None else None
    with database_session() as session:
        try:
            now = utcnow()
            export = approve_export(session, export_id, approver=reader, now=now)
            folder = None
            if vault is not None and to is not None:
                folder = run_export(session, vault, export_id, reader=reader, to=to, now=now)
        except VaultIntegrityError as error:
            err_console.print(f"[red]integrity failure:[/red] {error}")
            raise typer.Exit(1) from None
        except VaultError as error:
            usage_error(str(error))
        status = export.status
    row = {"export_id": export_id, "status": status}
    if folder is not None:
        row["folder"] = str(folder)
    typer.echo(json.dumps(row))


@vault_app.command("run-export")
def run_export_command(
    export_id: Annotated[int, typer.Argument(help="The approved export's id.")],
    as_user: AsOption,
    to: Annotated[Path, typer.Option(help="A new or empty folder to write to.")],
) -> None:
    """Write an approved export (its requester or its approver)."""
    reader = _reader(as_user)
    vault = _vault()
    with database_session() as session:
        try:
            folder = run_export(session, vault, export_id, reader=reader, to=to, now=utcnow())
        except VaultIntegrityError as error:
            err_console.print(f"[red]integrity failure:[/red] {error}")
            raise typer.Exit(1) from None
        except VaultError as error:
            usage_error(str(error))
    typer.echo(json.dumps({"export_id": export_id, "status": "done", "folder": str(folder)}))


@vault_app.command("destroy")
def destroy_command(
    item_ids: Annotated[list[int], typer.Argument(help="The items' ids.")],
    reference: Annotated[str, typer.Option(help="Law enforcement's request to destroy.")],
    as_user: AsOption,
) -> None:
    """Destroy items now on law enforcement's request (refused under a legal hold)."""
    reader = _reader(as_user)
    vault = _vault()
    with database_session() as session:
        try:
            reader.require_access("destroy vault items")
            shredded = destroy_on_request(
                session,
                vault,
                item_ids,
                reference=reference,
                actor=f"user:{reader.name}",
                now=utcnow(),
            )
        except VaultError as error:
            usage_error(str(error))
    typer.echo(json.dumps({"shredded": shredded}))


@vault_app.command("sweep")
def sweep_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go, change nothing.")
    ] = False,
) -> None:
    """Destroy the items no clock keeps any more, and bytes no item needs."""
    vault = _vault()
    with database_session() as session:
        result = sweep(session, vault, now=utcnow(), dry_run=dry_run, actor=_cli_actor())
    typer.echo(
        json.dumps(
            {
                "dry_run": result.dry_run,
                "due": result.due,
                "shredded": result.shredded,
                "leftover_bytes": len(result.leftover_bytes),
                "orphans": len(result.orphans),
            }
        )
    )


@vault_app.command("honour")
def honour_command() -> None:
    """Take pending preservation requests (left by submitted reports) into the vault."""
    from vigil.vault.accounts import connectors_from_settings
    from vigil.vault.media import media_store

    settings = get_settings()
    vault = _vault()
    with database_session() as session:
        try:
            results = honour_preservation_requests(
                session,
                vault,
                media_store(settings),
                connectors_from_settings(settings),
                utcnow(),
            )
        except VaultError as error:
            usage_error(str(error))
    for result in results:
        typer.echo(
            json.dumps(
                {
                    "request_id": result.request_id,
                    "items": result.item_ids,
                    "new_items": result.new_items,
                    "manifest_item_id": result.manifest_item_id,
                    "missing": [
                        {"content_id": m.content_id, "sha256": m.sha256, "reason": m.reason}
                        for m in result.missing
                    ],
                    "related_truncated": result.related_truncated,
                }
            )
        )
        if result.missing:
            err_console.print(
                f"[yellow]warning:[/yellow] preservation request {result.request_id}:"
                f" {len(result.missing)} content(s) had no kept bytes"
            )
