"""`vigil actions ...`: webhook action rules, their outbox, and the delivery worker. A thin
layer over `vigil.actions`.

Exit status: 0 done; 2 usage error (bad option, unknown rule, bank or delivery, invalid value).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import actions
from vigil.actions.rules import rule_bank_names
from vigil.actions.views import delivery_json, rule_json
from vigil.banks import BankError
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.config import get_settings
from vigil.store import ActionDelivery, ActionRule, open_database

actions_app = typer.Typer(
    help="Webhook actions fired on a match: rules, deliveries (the outbox), the worker.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Action rules: which webhook a bank's matches call.", no_args_is_help=True
)
actions_app.add_typer(rules_app, name="rules")


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Classification(StrEnum):
    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


# --- rules --------------------------------------------------------------------------------


@rules_app.command("add")
def rules_add(
    name: Annotated[str, typer.Argument(help="Rule name: lower-case letters, digits, . _ -")],
    bank: Annotated[str, typer.Option(help="The match bank whose matches fire it.")],
    action: Annotated[
        str, typer.Option(help="What the platform is asked to do: remove_content, ...")
    ],
    url: Annotated[str, typer.Option(help="The platform's webhook (http:// or https://).")],
    classification: Annotated[
        Classification | None,
        typer.Option(help="Only matches of entries in this Industry category."),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding this rule's signing secret"
            " (default: VIGIL_WEBHOOK_SECRET)."
        ),
    ] = None,
    max_attempts: Annotated[int, typer.Option(help="Tries before a delivery is dead.")] = 8,
) -> None:
    """Add an action rule (enabled)."""
    with database_session() as session:
        try:
            rule = actions.create_rule(
                session,
                name=name,
                bank=bank,
                action=action,
                url=url,
                classification=None if classification is None else classification.value,
                secret_env=secret_env,
                max_attempts=max_attempts,
            )
        except (ValueError, actions.ActionError, BankError) as error:
            usage_error(str(error))
        err_console.print(f"added rule {rule.name} (id {rule.id}): {rule.action} on bank {bank}")


@rules_app.command("list")
def rules_list(
    bank: Annotated[str | None, typer.Option(help="Only the rules of this bank.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List the action rules."""
    with database_session() as session:
        try:
            rules = actions.list_rules(session, bank)
        except BankError as error:
            usage_error(str(error))
        banks = rule_bank_names(session, rules)
        if as_json:
            print(json.dumps([rule_json(r, banks[r.bank_id]) for r in rules], indent=2))
            return
        table = Table(title=None if rules else "no rules yet: vigil actions rules add NAME")
        for column in ("name", "bank", "class", "action", "url", "secret", "enabled", "tries"):
            table.add_column(column)
        for rule in rules:
            table.add_row(
                rule.name,
                banks[rule.bank_id],
                rule.classification or "any",
                rule.action,
                rule.url,
                f"${rule.secret_env}" if rule.secret_env else "server's",
                "yes" if rule.enabled else "no",
                str(rule.max_attempts),
            )
        stdout_console().print(table)


def _set_enabled(name: str, enabled: bool) -> None:
    with database_session() as session:
        try:
            rule = actions.set_rule_enabled(session, name, enabled)
        except actions.ActionError as error:
            usage_error(f"{error} (vigil actions rules list shows them)")
        err_console.print(f"rule {rule.name} {'enabled' if enabled else 'disabled'}")


@rules_app.command("enable")
def rules_enable(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Enable a rule: new matches fire it."""
    _set_enabled(name, True)


@rules_app.command("disable")
def rules_disable(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Disable a rule: new matches fire nothing; deliveries already owed are still sent."""
    _set_enabled(name, False)


@rules_app.command("delete")
def rules_delete(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Delete a rule and its finished deliveries (refused while any is pending)."""
    with database_session() as session:
        try:
            actions.delete_rule(session, name)
        except (ValueError, actions.ActionError) as error:
            usage_error(str(error))
        err_console.print(f"deleted rule {name}")


# --- deliveries / retry -------------------------------------------------------------------


def _rule_names(session: Session, deliveries: Sequence[ActionDelivery]) -> dict[int, str]:
    ids = {d.rule_id for d in deliveries}
    if not ids:
        return {}
    query = select(ActionRule.id, ActionRule.name).where(ActionRule.id.in_(ids))
    return {rule_id: name for rule_id, name in session.execute(query)}


@actions_app.command("deliveries")
def deliveries(
    status: Annotated[Status | None, typer.Option(help="Only deliveries in this state.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only deliveries of this rule.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List deliveries (the outbox), newest first; dead letters show their last error."""
    with database_session() as session:
        try:
            found = actions.list_deliveries(
                session, status=None if status is None else status.value, rule=rule, limit=limit
            )
        except actions.ActionError as error:
            usage_error(str(error))
        names = _rule_names(session, found)
        if as_json:
            print(
                json.dumps([delivery_json(session, d, names[d.rule_id]) for d in found], indent=2)
            )
            return
        depth = actions.outbox_depth(session)
        table = Table(title=None if found else "no deliveries")
        for column in ("id", "rule", "status", "tries", "next attempt", "last", "last error"):
            table.add_column(column, overflow="fold")
        for delivery in found:
            table.add_row(
                str(delivery.id),
                names[delivery.rule_id],
                delivery.status,
                str(delivery.attempts),
                _when(delivery.next_attempt) if delivery.status == "pending" else "-",
                str(delivery.last_status) if delivery.last_status is not None else "-",
                delivery.last_error or "-",
            )
        stdout_console().print(table)
        err_console.print(
            "outbox: " + ", ".join(f"{count} {name}" for name, count in depth.items())
        )


@actions_app.command("retry")
def retry(
    delivery_id: Annotated[int | None, typer.Argument(help="The dead delivery to retry.")] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Retry every dead delivery.")
    ] = False,
    rule: Annotated[str | None, typer.Option(help="With --all-dead: only this rule's.")] = None,
) -> None:
    """Bring dead deliveries back: pending, attempts reset, due now (same Idempotency-Key)."""
    if (delivery_id is None) == (not all_dead):
        usage_error("give a delivery id or --all-dead (not both)")
    if rule is not None and not all_dead:
        usage_error("--rule goes with --all-dead")
    with database_session() as session:
        try:
            if delivery_id is not None:
                actions.retry_delivery(session, delivery_id)
                err_console.print(f"delivery {delivery_id} is pending again")
            else:
                count = actions.retry_dead(session, rule)
                err_console.print(f"{count} dead deliveries pending again")
        except actions.ActionError as error:
            usage_error(str(error))


# --- work ---------------------------------------------------------------------------------


@actions_app.command("work")
def work(
    once: Annotated[bool, typer.Option("--once", help="One round, print its counts, exit.")] = (
        False
    ),
    poll_seconds: Annotated[
        float, typer.Option(min=0.05, help="Pause between rounds when nothing is due.")
    ] = 1.0,
    limit: Annotated[int, typer.Option(min=1, help="Deliveries per round.")] = 50,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight at once.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="--once: counts as JSON.")] = False,
) -> None:
    """Send due deliveries in the foreground (until Ctrl-C or SIGTERM, or one round)."""
    settings = get_settings()
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    database = open_database(settings)
    worker = actions.ActionWorker(
        database, settings, poll_seconds=poll_seconds, limit=limit, concurrency=concurrency
    )
    try:
        if once:
            done = worker.run_once()
            if as_json:
                print(json.dumps(done.as_json()))
            else:
                print(", ".join(f"{count} {name}" for name, count in done.as_json().items()))
            return
        previous = signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
        err_console.print("delivering actions (Ctrl-C stops)")
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.request_stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        worker.close()
        database.dispose()
