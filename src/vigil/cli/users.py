"""`vigil users ...`: people who sign in to the web console. A thin layer over `vigil.auth`.

Passwords are read from a hidden prompt (asked twice) or, with `--password-stdin`, from the
first line of stdin; never from an option, which would leave them in the shell's history.
Exit status: 0 done; 2 usage error (bad option, unknown user, refused password).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from vigil import auth
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.store import AppUser

users_app = typer.Typer(
    help="Console users and their roles (create, list, disable, enable).",
    no_args_is_help=True,
)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _user_json(user: AppUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": user.roles,
        "created": user.created.isoformat(),
        "disabled": user.disabled.isoformat() if user.disabled else None,
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            usage_error("--password-stdin: nothing on stdin")
        return line.removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password


@users_app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Lower-case letters, digits, . _ - (max 64).")],
    role: Annotated[
        list[str],
        typer.Option("--role", "-r", help=f"Role, repeatable: {', '.join(auth.USER_ROLES)}."),
    ],
    display_name: Annotated[str | None, typer.Option(help="Full name shown in the console.")] = (
        None
    ),
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin's first line."),
    ] = False,
) -> None:
    """Create a user; the password (at least 12 characters) is asked for twice."""
    try:  # refuse what can be refused before asking for a password
        auth.check_username(username)
        auth.check_roles(role)
    except ValueError as error:
        usage_error(str(error))
    password = _read_password(password_stdin)
    with database_session() as session:
        try:
            user = auth.create_user(
                session, username, password, role, display_name=display_name, email=email
            )
        except (ValueError, auth.AuthError) as error:
            usage_error(str(error))
        err_console.print(f"created user {user.username} ({', '.join(user.roles)})")


@users_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List users and their roles (never their password hashes)."""
    with database_session() as session:
        users = auth.list_users(session)
        if as_json:
            print(json.dumps([_user_json(user) for user in users], indent=2))
            return
        table = Table(title=None if users else "no users yet: vigil users create NAME -r ROLE")
        columns = ("username", "display name", "email", "roles", "created", "disabled")
        for column in (*columns, "last login"):
            table.add_column(column)
        for user in users:
            table.add_row(
                user.username,
                escape(user.display_name or "-"),
                escape(user.email or "-"),
                ", ".join(user.roles),
                _time(user.created),
                _time(user.disabled),
                _time(user.last_login),
            )
        stdout_console().print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    with database_session() as session:
        try:
            if disabled:
                user = auth.disable_user(session, username)
            else:
                user = auth.enable_user(session, username)
        except auth.UserNotFound:
            usage_error(f"no user named {username!r} (vigil users list shows them)")
        err_console.print(f"user {user.username} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Stop a user signing in (nothing is deleted)."""
    _set_disabled(username, True)


@users_app.command("enable")
def enable(username: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(username, False)
