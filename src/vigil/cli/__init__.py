"""The `vigil` command line: one command group per room, each a thin layer over its service."""

from __future__ import annotations

import typer

from vigil.audit.actor import acting_as
from vigil.cli.actions import actions_app
from vigil.cli.audit import audit_app
from vigil.cli.bank import bank_app
from vigil.cli.common import cli_actor
from vigil.cli.cybertip_sandbox import cybertip_sandbox
from vigil.cli.demo import demo
from vigil.cli.hash import hash_command
from vigil.cli.legal import legal_app
from vigil.cli.reports import reports_app
from vigil.cli.scan import scan_command
from vigil.cli.serve import serve
from vigil.cli.tokens import tokens_app
from vigil.cli.users import users_app
from vigil.cli.vault import vault_app

app = typer.Typer(
    name="vigil",
    help="Vigil: hash, match, review, report, preserve and answer legal process.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _acting(ctx: typer.Context) -> None:
    # What a command changes is audited as `cli:<os user>`; the server (`serve`) acts as
    # its callers. Undone when the command ends (the context closes).
    if ctx.invoked_subcommand != "serve":
        ctx.with_resource(acting_as(cli_actor()))


app.command("hash")(hash_command)
app.command("scan")(scan_command)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(bank_app, name="bank")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_app, name="users")
app.add_typer(actions_app, name="actions")
app.add_typer(reports_app, name="reports")
app.add_typer(audit_app, name="audit")
app.add_typer(vault_app, name="vault")
app.add_typer(legal_app, name="legal")
app.command("cybertip-sandbox")(cybertip_sandbox)
