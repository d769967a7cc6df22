"""`vigil tokens ...`: API tokens for the HTTP API. A thin layer over `vigil.auth`.

`create` prints the secret, and only the secret, on stdout so a script can capture it; it is
never shown again. Exit status: 0 done; 2 usage error (bad option, unknown token).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vigil import auth
from vigil.banks import default_actor
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.store import ApiToken

tokens_app = typer.Typer(
    help="API tokens: bearer secrets for the HTTP API (create, list, revoke).",
    no_args_is_help=True,
)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "rate_limit_per_minute": token.rate_limit_per_minute,
        "created": token.created.isoformat(),
        "created_by": token.created_by,
        "expires": token.expires.isoformat() if token.expires else None,
        "revoked": token.revoked.isoformat() if token.revoked else None,
        "last_used": token.last_used.isoformat() if token.last_used else None,
    }


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Token name (1-100 characters), e.g. the client.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help=f"Scope, repeatable: {', '.join(auth.TOKEN_SCOPES)} (docs/auth.md).",
        ),
    ],
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry: a date (2027-01-01), a time, or a duration (90d, 12h)."),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option("--rate-limit", help="Requests a minute (default: the server's)."),
    ] = None,
    created_by: Annotated[
        str | None, typer.Option(help="Who creates it (default: the user name).")
    ] = None,
) -> None:
    """Create a token and print its secret on stdout: it is shown once, never again."""
    try:
        expiry = auth.parse_expiry(expires) if expires is not None else None
    except ValueError as error:
        usage_error(str(error))
    with database_session() as session:
        try:
            token, secret = auth.create_token(
                session,
                name,
                scope,
                created_by=created_by or default_actor(),
                expires=expiry,
                rate_limit_per_minute=rate_limit,
            )
        except (ValueError, auth.AuthError) as error:
            usage_error(str(error))
        summary = f"created token {token.name} ({', '.join(token.scopes)}, prefix {token.prefix})"
    err_console.print(escape(summary))
    err_console.print("[bold yellow]the secret below is shown once: store it now[/bold yellow]")
    print(secret, flush=True)


@tokens_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List tokens (never their secrets): revoked and expired ones included."""
    with database_session() as session:
        tokens = auth.list_tokens(session)
        if as_json:
            print(json.dumps([_token_json(token) for token in tokens], indent=2))
            return
        table = Table(title=None if tokens else "no tokens yet: vigil tokens create NAME -s SCOPE")
        columns = ("name", "prefix", "scopes", "rate limit", "created", "expires", "revoked")
        for column in (*columns, "last used"):
            table.add_column(column)
        for token in tokens:
            table.add_row(
                escape(token.name),
                token.prefix + "...",
                ", ".join(token.scopes),
                str(token.rate_limit_per_minute or "default"),
                _time(token.created),
                _time(token.expires),
                _time(token.revoked),
                _time(token.last_used),
            )
        stdout_console().print(table)


@tokens_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Token name.")]) -> None:
    """Revoke a token for good. API workers may accept it for a few seconds more (their
    token cache, VIGIL_API_TOKEN_CACHE_SECONDS)."""
    with database_session() as session:
        try:
            token = auth.revoke_token(session, name)
        except auth.TokenNotFound:
            usage_error(f"no token named {name!r} (vigil tokens list shows them)")
        err_console.print(escape(f"revoked token {token.name} (at {_time(token.revoked)})"))
