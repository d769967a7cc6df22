"""`vigil legal ...`: the legal-process desk from the command line: law enforcement's requests
(list, show, manual entry), their verification checklist, productions, preservation,
destruction, orders, the dashboard and answer times, the portal's agency domains and
officers, the mail outbox and the notice guard. A thin layer over `vigil.legal`.

Whatever changes a request names a console user (`--as USER`) whose `legal` or `admin` role
is checked, and whom the checklist and the audit log name. Reading (lists, `show`, `notice`)
is for the legal staff who run these commands: its output names orders and reports.
Exit status: 0 done; 2 usage error (unknown request or user, missing role, a refusal of the
desk: not verified, out of the process's scope, the two-person rule ...).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from vigil.auth.users import UserNotFound, get_user
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.config import Settings, get_settings
from vigil.legal import deadlines, intake, portal, production, verification
from vigil.legal.desk import DeskUser, LegalError, get_request, parse_reference, reference
from vigil.legal.intake import MAX_DOCUMENT_BYTES, MAX_TARGETS, NewRequest, NewTarget
from vigil.legal.mail import list_mail
from vigil.legal.reminders import remind_and_escalate
from vigil.legal.views import (
    GOAL,
    answer_times_json,
    dashboard_json,
    iso,
    request_detail,
    request_summary,
    span,
)
from vigil.store import Officer, utcnow
from vigil.store.legal_models import (
    MAIL_STATUSES,
    OFFICER_STATUSES,
    REQUEST_KINDS,
    REQUEST_STATUSES,
    TARGET_KINDS,
)
from vigil.vault.accounts import connectors_from_settings
from vigil.vault.items import Reader, Vault, VaultError, open_vault, read_item

legal_app = typer.Typer(
    help="The legal-process desk: law enforcement's requests, checklists, productions,"
    " deadlines, the portal's officers and agency domains.",
    no_args_is_help=True,
)

AsOption = Annotated[
    str, typer.Option("--as", help="The console user acting (legal or admin role).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
NumberArgument = Annotated[str, typer.Argument(help="The request's number (LR-000012).")]


# --- Helpers ---------------------------------------------------------------------------------


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _cell(value: object) -> str:
    """A table cell: `-` for nothing, Rich markup in the data shown as typed."""
    return "-" if value is None or value == "" else escape(str(value))


def _day(value: str | None) -> str:
    return "-" if not value else value[:16].replace("T", " ")


def _number(value: str) -> int:
    try:
        return parse_reference(value)
    except ValueError as error:
        usage_error(str(error))


def _moment(label: str, value: str | None, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time; naive ones are UTC. A bare date is the start of the day, or
    its last moment with `end` (a records period's end, an order's expiry)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max if end else time.min, UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        usage_error(f"{label}: {text!r} is not an ISO date or date-time (2026-11-23T09:00Z)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _desk_user(session: Session, username: str, action: str) -> DeskUser:
    """The console user acting, refused unless enabled and holding `legal` or `admin`."""
    try:
        user = get_user(session, username)
    except UserNotFound:
        usage_error(f"no user {username!r}")
    if user.disabled is not None:
        usage_error(f"user {username!r} is disabled")
    desk = DeskUser.of(user)
    try:
        desk.require_desk(action)
    except LegalError as error:
        usage_error(str(error))
    return desk


@contextmanager
def _refusals() -> Iterator[None]:
    """The desk's refusals as usage errors (exit 2); the transaction is rolled back."""
    try:
        yield
    except (LegalError, VaultError) as error:
        usage_error(str(error))


def _vault(settings: Settings) -> Vault:
    try:
        return open_vault(settings)
    except ValueError as error:
        usage_error(str(error))


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _done(as_json: bool, row: dict[str, Any], message: str) -> None:
    if as_json:
        _echo_json(row)
    else:
        err_console.print(message)


# --- Requests --------------------------------------------------------------------------------


@legal_app.command("requests")
def requests_command(
    status: Annotated[str | None, typer.Option(help="Only requests in this state.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only requests of this kind.")] = None,
    account: Annotated[
        str | None, typer.Option(help="Only requests naming this platform account.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Requests, the newest first: number, kind, state, agency, clock and warning signs."""
    if status is not None and status not in REQUEST_STATUSES:
        usage_error(f"unknown status {status!r}: use {', '.join(REQUEST_STATUSES)}")
    if kind is not None and kind not in REQUEST_KINDS:
        usage_error(f"unknown kind {kind!r}: use {', '.join(REQUEST_KINDS)}")
    settings = get_settings()
    now = utcnow()
    with database_session() as session:
        rows = [
            request_summary(r, settings, now)
            for r in intake.list_requests(
                session, status=status, kind=kind, account_id=account, limit=limit
            )
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table()
    for column in ("number", "kind", "status", "agency", "received", "due", "signals"):
        table.add_column(column, no_wrap=column in ("number", "received"))
    for row in rows:
        due = row["clock_label"]
        style = {"overdue": "red", "due_soon": "yellow"}.get(row["clock"])
        table.add_row(
            row["number"],
            row["kind"],
            row["status"],
            _cell(row["agency"]),
            _day(row["received_at"]),
            f"[{style}]{due}[/]" if style else due,
            ", ".join(row["signals"]) or "-",
        )
    stdout_console().print(table)


def _print_detail(row: dict[str, Any]) -> None:
    console = stdout_console()
    console.print(
        f"[bold]{row['number']}[/]  {row['kind']}  [bold]{row['status']}[/]"
        f"  via {row['channel']}  due {_day(row['due_at'])} UTC ({row['clock_label']})"
    )
    fields = (
        ("requester", row["requester_name"]),
        ("email", row["requester_email"]),
        ("phone", row["requester_phone"]),
        ("agency", row["agency"]),
        ("jurisdiction", row["jurisdiction"]),
        ("country", row["country"]),
        ("case number", row["case_number"]),
        ("document no.", row["document_reference"]),
        ("document item", row["document_item_id"]),
        ("issued on", row["issued_on"]),
        ("return date", row["return_date"]),
        ("records from", row["records_from"]),
        ("records to", row["records_to"]),
        ("parent", row["parent"]),
        ("order until", row["nondisclosure_until"]),
        ("order scope", row["nondisclosure_scope"]),
        ("order lifted", row["nondisclosure_lifted_at"]),
        ("emergency needs", ", ".join(row["emergency_categories"]) or None),
        ("received", row["received_at"]),
        ("assignee", row["assignee"]),
        ("created by", row["created_by"]),
        ("verified", row["verified_at"]),
        ("answered", row["answered_at"]),
        ("closed", row["closed_at"]),
        ("outcome", row["outcome"]),
        ("description", row["description"]),
    )
    for label, value in fields:
        if value in (None, ""):
            continue
        if isinstance(value, str) and _ISO.match(value):
            value = f"{_day(value)} UTC"
        console.print(f"  {label + ':':<16}{escape(str(value))}")
    if row["signal_messages"]:
        console.print("\n[bold yellow]Warning signs[/]")
        for signal in row["signal_messages"]:
            console.print(f"  [yellow]{signal['code']}[/]: {escape(signal['message'])}")
    targets = Table(title="What it names", title_justify="left")
    for column in ("kind", "value", "account", "uploads", "reports", "vault items"):
        targets.add_column(column)
    for target in row["targets"]:
        linked = target["linked"]
        targets.add_row(
            target["kind"],
            _cell(target["value"]),
            _cell(target["account_id"] or "nothing held"),
            _cell(linked.get("uploads")),
            _cell(", ".join(str(r) for r in linked.get("reports", [])) or None),
            _cell(linked.get("vault_items")),
        )
    console.print(targets)
    checks = Table(title="Verification checklist", title_justify="left")
    for column in ("", "item", "by", "at", "details"):
        checks.add_column(column)
    for check in row["checklist"]:
        details = check["details"] or {}
        checks.add_row(
            "[green]done[/]" if check["done"] else "[red]missing[/]",
            check["label"],
            _cell(check["done_by"]),
            _day(check["done_at"]),
            _cell("; ".join(f"{k}: {v}" for k, v in details.items()) or None),
        )
    console.print(checks)
    if row["productions"]:
        made = Table(title="Productions", title_justify="left")
        for column in ("id", "status", "categories", "files", "built", "downloaded", "sha256"):
            made.add_column(column, no_wrap=column == "sha256")
        for item in row["productions"]:
            made.add_row(
                str(item["id"]),
                item["status"],
                ", ".join(item["categories"]),
                str(item["files"]),
                f"{_day(item['built_at'])} by {escape(item['built_by'])}",
                _day(item["downloaded_at"])
                + (f" by {escape(item['downloaded_by'])}" if item["downloaded_by"] else ""),
                item["package_sha256"],
            )
        console.print(made)


@legal_app.command("show")
def show_command(number: NumberArgument, as_json: JsonOption = False) -> None:
    """One request, everything about it.

    Its fields, warning signs, what it names (and what Vigil holds of it), the checklist
    (done and missing) and its productions."""
    request_id = _number(number)
    settings = get_settings()
    with database_session() as session, _refusals():
        row = request_detail(session, get_request(session, request_id), settings, utcnow())
    if as_json:
        _echo_json(row)
    else:
        _print_detail(row)


def _targets(values: list[str]) -> list[NewTarget]:
    try:
        targets = intake.parse_targets(values)
    except LegalError as error:
        usage_error(f"--target: {error}")
    if len(targets) > MAX_TARGETS:
        usage_error(f"a request may name at most {MAX_TARGETS} targets")
    return targets


def _document(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            usage_error(f"{path}: larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except OSError as error:
        usage_error(f"{path}: {error.strerror or error}")


@legal_app.command("file")
def file_command(
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(REQUEST_KINDS)}.")],
    agency: Annotated[str, typer.Option(help="The requesting agency.")],
    requester_name: Annotated[str, typer.Option(help="Who sent it.")],
    as_user: AsOption,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help=f"What it names, kind:value ({', '.join(TARGET_KINDS)}); repeat for each.",
        ),
    ] = None,
    requester_email: Annotated[str | None, typer.Option(help="The requester's email.")] = None,
    requester_phone: Annotated[str | None, typer.Option(help="The requester's phone.")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="The issuing court.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166 code (foreign).")] = None,
    case_number: Annotated[str | None, typer.Option(help="The agency's case number.")] = None,
    document_reference: Annotated[
        str | None, typer.Option(help="The process's own number (docket, subpoena no.).")
    ] = None,
    issued_on: Annotated[str | None, typer.Option(help="ISO date it was issued.")] = None,
    return_date: Annotated[str | None, typer.Option(help="ISO return date.")] = None,
    records_from: Annotated[str | None, typer.Option(help="ISO start of the records.")] = None,
    records_to: Annotated[str | None, typer.Option(help="ISO end of the records.")] = None,
    description: Annotated[
        str | None, typer.Option(help="What is asked for (an emergency: the danger).")
    ] = None,
    parent: Annotated[
        str | None, typer.Option(help="A non-disclosure order's request (LR-000012).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="A non-disclosure order's expiry (ISO; none: open).")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="A non-disclosure order's scope.")] = None,
    document: Annotated[
        Path | None, typer.Option(help="The legal document (PDF, at most 25 MiB).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Enter a request that came by mail, fax or hand.

    Channel `manual`: its document is sealed in the vault, what it names is linked, its due
    time set and its warning signs found."""
    if kind not in REQUEST_KINDS:
        usage_error(f"unknown kind {kind!r}: use {', '.join(REQUEST_KINDS)}")
    new = NewRequest(
        kind=kind,
        requester_name=requester_name,
        agency=agency,
        targets=_targets(target or []),
        requester_email=requester_email,
        requester_phone=requester_phone,
        jurisdiction=jurisdiction,
        country=country,
        case_number=case_number,
        document_reference=document_reference,
        issued_on=_moment("--issued-on", issued_on),
        return_date=_moment("--return-date", return_date, end=True),
        records_from=_moment("--records-from", records_from),
        records_to=_moment("--records-to", records_to, end=True),
        description=description,
        parent_id=None if parent is None else _number(parent),
        nondisclosure_until=_moment("--until", until, end=True),
        nondisclosure_scope=scope,
    )
    data = _document(document)
    settings = get_settings()
    vault = _vault(settings)
    now = utcnow()
    with database_session() as session, _refusals():
        user = _desk_user(session, as_user, "enter legal requests")
        request = intake.file_request(
            session,
            vault,
            new,
            channel="manual",
            created_by=user.actor,
            settings=settings,
            now=now,
            document=data,
            document_name=None if document is None else document.name,
        )
        row = request_detail(session, request, settings, now)
    if as_json:
        _echo_json(row)
        return
    typer.echo(row["number"])
    err_console.print(
        f"{row['number']}: {row['kind']} from {escape(row['agency'])}, due"
        f" {_day(row['due_at'])} UTC ({row['clock_label']}); checklist: {', '.join(row['missing'])}"
    )
    for signal in row["signal_messages"]:
        err_console.print(f"[yellow]warning:[/yellow] {escape(signal['message'])}")


@legal_app.command("check")
def check_command(
    number: NumberArgument,
    item: Annotated[str, typer.Argument(help="The checklist item (identity, document ...).")],
    as_user: AsOption,
    direction: Annotated[
        str | None, typer.Option(help="identity: we_called or they_called.")
    ] = None,
    phone_number: Annotated[
        str | None, typer.Option("--number", help="identity: the number called.")
    ] = None,
    number_source: Annotated[
        str | None,
        typer.Option(help="identity: where the number was found (published, never the request)."),
    ] = None,
    spoke_with: Annotated[str | None, typer.Option(help="identity: who answered.")] = None,
    when: Annotated[str | None, typer.Option(help="identity: when the call was.")] = None,
    basis: Annotated[str | None, typer.Option(help="danger: the good-faith basis.")] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option(
            help="second_verification: what the emergency needs (subscriber,records,content)."
        ),
    ] = None,
    advice: Annotated[str | None, typer.Option(help="counsel: counsel's advice.")] = None,
    note: Annotated[str | None, typer.Option(help="A note kept with the tick.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tick one item of a request's verification checklist, with its details.

    The last tick verifies the request. An emergency's second verification must come from
    another legal user than the one who ticked the rest."""
    request_id = _number(number)
    details: dict[str, Any] = {
        "direction": direction,
        "number": phone_number,
        "number_source": number_source,
        "spoke_with": spoke_with,
        "when": when,
        "basis": basis,
        "advice": advice,
        "note": note,
        "categories": [
            c.strip() for value in categories or [] for c in value.split(",") if c.strip()
        ],
    }
    settings = get_settings()
    now = utcnow()
    with database_session() as session, _refusals():
        user = _desk_user(session, as_user, "verify legal requests")
        request = verification.tick(
            session,
            request_id,
            item,
            user,
            {k: v for k, v in details.items() if v not in (None, [])},
            now=now,
        )
        row = request_detail(session, request, settings, now)
    missing = ", ".join(row["missing"])
    _done(
        as_json,
        {"number": row["number"], "status": row["status"], "missing": row["missing"]},
        f"{row['number']}: {item} ticked by {as_user}; "
        + (f"still missing: {missing}" if missing else f"verified ({row['status']})"),
    )


def _write_new(path: Path, data: bytes) -> None:
    """Write `path` (which must not exist yet), readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


@legal_app.command("produce")
def produce_command(
    number: NumberArgument,
    category: Annotated[
        list[str],
        typer.Option(
            "--category", help="subscriber, records or content; repeat (the process decides)."
        ),
    ],
    as_user: AsOption,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the package here (a desk copy; the read is audited)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the certified, encrypted production for a verified request.

    Its password is printed once (give it by phone, out of band); the single-use portal link
    is mailed to the officer who filed it."""
    request_id = _number(number)
    if out is not None and (out.exists() or not out.parent.is_dir()):
        usage_error(f"{out}: exists already, or its folder does not")
    settings = get_settings()
    vault = _vault(settings)
    now = utcnow()
    with database_session() as session, _refusals():
        user = _desk_user(session, as_user, "produce records")
        built = production.build_production(
            session,
            vault,
            request_id,
            [c.strip() for value in category for c in value.split(",") if c.strip()],
            user=user,
            connectors=connectors_from_settings(settings),
            settings=settings,
            now=now,
        )
        request = get_request(session, request_id)
        made = built.production
        link = production.download_link(settings, built.download_secret)
        # The service mailed the link to the filing officer, when there is one.
        officer = session.get(Officer, request.officer_id) if request.officer_id else None
        mailed = None if officer is None else officer.email
        data = None
        if out is not None and made.package_item_id is not None:
            data = read_item(
                session,
                vault,
                made.package_item_id,
                reader=Reader(user.username, user.roles),
                reason=f"desk copy of production {made.id} for {reference(request)}",
            )
        row: dict[str, Any] = {
            "number": reference(request),
            "production_id": made.id,
            "categories": list(made.categories),
            "files": [entry["name"] for entry in made.manifest],
            "package_sha256": made.package_sha256,
            "password": built.password,
            "download_link": link if request.officer_id else None,
            "download_expires": iso(made.download_expires),
            "mailed_to": mailed,
            "out": None if out is None else str(out),
        }
    failed = None
    if data is not None and out is not None:
        try:
            _write_new(out, data)
        except OSError as error:  # the password below is still shown: it is the only copy
            failed = f"{out}: {error.strerror or error}"
            row["out"] = None
    _print_production(row, as_json)
    if failed is not None:
        err_console.print(
            f"[red]error:[/red] {escape(failed)}; the production is built: take its package"
            " from the console (or ask the officer to download it)"
        )
        raise typer.Exit(1)


def _print_production(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _echo_json(row)
        return
    console = stdout_console()
    console.print(
        f"Production {row['production_id']} for {row['number']}: {', '.join(row['categories'])}"
        f" ({len(row['files'])} file(s)), package SHA-256 {row['package_sha256']}"
    )
    console.print(
        f"\nPassword (shown this once, never stored): [bold]{row['password']}[/]\n"
        "Give it to the requester by phone, out of band: never in the same mail as the link."
    )
    if row["mailed_to"]:
        console.print(
            f"\nSingle-use download link, mailed to {escape(row['mailed_to'])} (works only for"
            f" them, signed in to the portal, until {_day(row['download_expires'])} UTC):\n"
            f"{row['download_link']}"
        )
    else:
        console.print(
            "\nThe request came without a portal officer: no link was mailed. Deliver the"
            " package by other means (--out writes it)."
        )
    if row["out"] is not None:
        console.print(f"\nPackage written to {escape(row['out'])} (this read is in the audit log).")


Action = Callable[[Session, int, DeskUser, datetime, Settings], dict[str, Any] | None]


def _act(number: str, as_user: str, action: str, as_json: bool, verb: str, run: Action) -> None:
    """Run one of the desk's actions on a request as `as_user`, then say where it stands."""
    request_id = _number(number)
    settings = get_settings()
    now = utcnow()
    with database_session() as session, _refusals():
        user = _desk_user(session, as_user, action)
        extra = run(session, request_id, user, now, settings)
        request = get_request(session, request_id)
        row = {"number": reference(request), "status": request.status, **(extra or {})}
    _done(as_json, row, f"{row['number']}: {verb} ({row['status']})")


@legal_app.command("preserve")
def preserve_command(
    number: NumberArgument, as_user: AsOption, as_json: JsonOption = False
) -> None:
    """Carry out a verified 2703(f) preservation letter.

    90 days on what the vault holds of its accounts, and a preservation request for what it
    does not hold yet."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        created = production.carry_out_preservation(session, request_id, user, now=now)
        return {"accounts": [p.account_key for p in created]}

    _act(number, as_user, "preserve records", as_json, "preserved for 90 days", run)


@legal_app.command("destroy")
def destroy_command(number: NumberArgument, as_user: AsOption, as_json: JsonOption = False) -> None:
    """Carry out a verified request to destroy (2258B(c)).

    The vault items of its accounts are shredded (refused as a whole under a legal hold)."""
    vault = _vault(get_settings())

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        return {"shredded": production.carry_out_destroy(session, vault, request_id, user, now=now)}

    _act(number, as_user, "destroy evidence", as_json, "its accounts' items destroyed", run)


@legal_app.command("record")
def record_command(number: NumberArgument, as_user: AsOption, as_json: JsonOption = False) -> None:
    """Record a verified non-disclosure order (or a counsel-reviewed foreign request)."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        production.acknowledge_order(session, request_id, user, now=now)
        return None

    _act(number, as_user, "record orders", as_json, "recorded", run)


ReasonOption = Annotated[str, typer.Option(help="Why (the court's order, the defect ...).")]


@legal_app.command("lift")
def lift_command(
    number: NumberArgument, reason: ReasonOption, as_user: AsOption, as_json: JsonOption = False
) -> None:
    """A court lifted a non-disclosure order early (its expiry ends it by itself)."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        production.lift_order(session, request_id, user, reason, now=now)
        return None

    _act(number, as_user, "lift orders", as_json, "order lifted", run)


@legal_app.command("refuse")
def refuse_command(
    number: NumberArgument, reason: ReasonOption, as_user: AsOption, as_json: JsonOption = False
) -> None:
    """Refuse a request (not genuine, out of jurisdiction, defective): nothing is done."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        verification.refuse(session, request_id, user, reason, now=now)
        return None

    _act(number, as_user, "refuse legal requests", as_json, "refused", run)


@legal_app.command("close")
def close_command(
    number: NumberArgument,
    outcome: Annotated[str, typer.Option(help="How it ended (answered, withdrawn ...).")],
    as_user: AsOption,
    as_json: JsonOption = False,
) -> None:
    """Close an answered request (or one its requester withdrew)."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        verification.close(session, request_id, user, outcome, now=now)
        return None

    _act(number, as_user, "close legal requests", as_json, "closed", run)


@legal_app.command("assign")
def assign_command(
    number: NumberArgument,
    assignee: Annotated[str, typer.Argument(help="The legal user who takes it.")],
    as_user: AsOption,
    as_json: JsonOption = False,
) -> None:
    """Give a request to a legal user (the reminders go to them)."""

    def run(
        session: Session, request_id: int, user: DeskUser, now: datetime, _: Settings
    ) -> dict[str, Any] | None:
        taker = _desk_user(session, assignee, "be assigned legal requests")
        intake.assign(session, request_id, taker.user_id)
        return {"assignee": taker.username}

    _act(number, as_user, "assign legal requests", as_json, f"assigned to {assignee}", run)


# --- Deadlines -------------------------------------------------------------------------------


@legal_app.command("dashboard")
def dashboard_command(as_json: JsonOption = False) -> None:
    """What is overdue, due soon and running; preservations ending.

    The desk's 2703(f) preservations ending within two weeks are listed: renew one once if
    the requester asks (vigil vault renew CLOCK), or let it end."""
    settings = get_settings()
    now = utcnow()
    with database_session() as session:
        board = deadlines.dashboard(session, settings, now)
        row = dashboard_json(board)
        groups = {
            name: [request_summary(r, settings, now) for r in requests]
            for name, requests in (
                ("overdue", board.overdue),
                ("due soon", board.due_soon),
                ("running", board.running),
            )
        }
    if as_json:
        _echo_json(row)
        return
    console = stdout_console()
    counts = row["counts"]
    console.print(
        f"[red]overdue {counts['overdue']}[/]  [yellow]due soon {counts['due_soon']}[/]"
        f"  running {counts['running']}  preservations ending {counts['expiring_preservations']}"
    )
    table = Table()
    for column in ("", "number", "kind", "status", "agency", "due", "clock"):
        table.add_column(column)
    for name, rows in groups.items():
        for item in rows:
            table.add_row(
                name,
                item["number"],
                item["kind"],
                item["status"],
                _cell(item["agency"]),
                _day(item["due_at"]),
                item["clock_label"],
            )
    if table.row_count:
        console.print(table)
    if row["expiring_preservations"]:
        ending = Table(title="2703(f) preservations ending", title_justify="left")
        for column in ("clock", "item", "request", "ends", "renewals"):
            ending.add_column(column)
        for clock in row["expiring_preservations"]:
            ending.add_row(
                str(clock["clock_id"]),
                str(clock["item_id"]),
                _cell(clock["reference"]),
                _day(clock["expires_at"]),
                str(clock["renewals"]),
            )
        console.print(ending)


@legal_app.command("stats")
def stats_command(as_json: JsonOption = False) -> None:
    """Answer times per kind, against Vigil's goal.

    Per kind: how many were answered, the median and 90th percentile from receipt to answer,
    how many within the goal, and how many are still open."""
    with database_session() as session:
        times = deadlines.answer_times(session)
    row = answer_times_json(times)
    if as_json:
        _echo_json(row)
        return
    table = Table(title=f"Answer times (goal: {GOAL})", title_justify="left")
    for column in ("kind", "answered", "median", "p90", "within goal", "open"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for t in times:
        share = t.goal_share
        table.add_row(
            t.kind,
            str(t.answered),
            span(t.median),
            span(t.p90),
            "-" if share is None else f"{t.within_goal} ({share:.0%})",
            str(t.open),
        )
    stdout_console().print(table)


@legal_app.command("remind")
def remind_command(as_json: JsonOption = False) -> None:
    """One pass of the server's reminder worker, now.

    Reminders to the assignees of requests due soon, escalations of overdue ones to the legal
    leads, warnings of ending preservations, expired download links. The mail waits in the
    outbox (vigil legal mail) for the server to send it."""
    with database_session() as session:
        result = remind_and_escalate(session, get_settings(), utcnow())
        row: dict[str, Any] = {
            "reminded": [f"LR-{i:06d}" for i in result.reminded],
            "escalated": [f"LR-{i:06d}" for i in result.escalated],
            "preservation_warnings": len(result.preservation_warnings),
            "expired_downloads": result.expired_downloads,
        }
    _done(
        as_json,
        row,
        f"reminded {len(row['reminded'])}, escalated {len(row['escalated'])}, preservation"
        f" warnings {row['preservation_warnings']}, expired download links"
        f" {row['expired_downloads']}",
    )


# --- The portal: agency domains, officers ----------------------------------------------------


@legal_app.command("domains")
def domains_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Agency email domains: allowed (their confirmed officers are active), pending, refused."""
    with database_session() as session:
        rows: list[dict[str, Any]] = [
            {
                "domain": d.domain,
                "status": d.status,
                "agency": d.agency,
                "note": d.note,
                "decided_by": d.decided_by,
                "decided_at": iso(d.decided_at),
                "created": iso(d.created),
            }
            for d in portal.list_domains(session)
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table()
    for column in ("domain", "status", "agency", "decided by", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            _cell(row["domain"]),
            row["status"],
            _cell(row["agency"]),
            _cell(row["decided_by"]),
            _cell(row["note"]),
        )
    stdout_console().print(table)


def _decide(
    domain: str, as_user: str, *, allow: bool, agency: str | None, note: str | None
) -> None:
    with database_session() as session, _refusals():
        user = _desk_user(session, as_user, "vet agency domains")
        row = portal.decide_domain(
            session, domain, allow=allow, user=user, now=utcnow(), agency=agency, note=note
        )
        name, status = row.domain, row.status
    err_console.print(f"{name}: {status}")


@legal_app.command("allow-domain")
def allow_domain_command(
    domain: Annotated[str, typer.Argument(help="The agency's email domain.")],
    as_user: AsOption,
    agency: Annotated[str | None, typer.Option(help="The agency it belongs to.")] = None,
    note: Annotated[
        str | None, typer.Option(help="How it was vetted (required for a look-alike).")
    ] = None,
) -> None:
    """Allow an agency's domain: its confirmed officers become active."""
    _decide(domain, as_user, allow=True, agency=agency, note=note)


@legal_app.command("refuse-domain")
def refuse_domain_command(
    domain: Annotated[str, typer.Argument(help="The email domain.")],
    as_user: AsOption,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Refuse a domain: its officers are refused and can no longer sign in."""
    _decide(domain, as_user, allow=False, agency=None, note=note)


@legal_app.command("officers")
def officers_command(
    status: Annotated[str | None, typer.Option(help="Only officers in this state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Officers registered on the law-enforcement portal."""
    if status is not None and status not in OFFICER_STATUSES:
        usage_error(f"unknown status {status!r}: use {', '.join(OFFICER_STATUSES)}")
    with database_session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": o.id,
                "email": o.email,
                "name": o.name,
                "agency": o.agency,
                "title": o.title,
                "phone": o.phone,
                "status": o.status,
                "confirmed_at": iso(o.confirmed_at),
                "last_login": iso(o.last_login),
            }
            for o in portal.list_officers(session, status=status)
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table()
    for column in ("id", "email", "name", "agency", "status", "confirmed", "last sign-in"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            _cell(row["email"]),
            _cell(row["name"]),
            _cell(row["agency"]),
            row["status"],
            _day(row["confirmed_at"]),
            _day(row["last_login"]),
        )
    stdout_console().print(table)


# --- Mail, notice ------------------------------------------------------------------------------


@legal_app.command("mail")
def mail_command(
    status: Annotated[str | None, typer.Option(help="Only mail in this state.")] = None,
    to: Annotated[str | None, typer.Option(help="Only mail to this address.")] = None,
    show_body: Annotated[
        bool,
        typer.Option("--show-body", help="Print bodies too (they may hold one-time links)."),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """The mail outbox, newest first (without SMTP, mail waits here)."""
    if status is not None and status not in MAIL_STATUSES:
        usage_error(f"unknown status {status!r}: use {', '.join(MAIL_STATUSES)}")
    with database_session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": m.id,
                "to": m.to_address,
                "subject": m.subject,
                "purpose": m.purpose,
                "reference": m.reference,
                "status": m.status,
                "attempts": m.attempts,
                "created": iso(m.created),
                "sent_at": iso(m.sent_at),
                "last_error": m.last_error,
                **({"body": m.body} if show_body else {}),
            }
            for m in list_mail(session, status=status, to=to, limit=limit)
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    if show_body:
        console = stdout_console()
        for row in rows:
            console.rule(f"{row['id']} {row['status']} {row['purpose']}")
            console.print(
                f"To: {escape(row['to'])}\nSubject: {escape(row['subject'])}\n\n"
                f"{escape(row['body'])}"
            )
        return
    table = Table()
    for column in ("id", "created", "to", "subject", "purpose", "status", "attempts"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            _day(row["created"]),
            _cell(row["to"]),
            _cell(row["subject"]),
            row["purpose"],
            row["status"],
            str(row["attempts"]),
        )
    stdout_console().print(table)


@legal_app.command("notice")
def notice_command(
    account: Annotated[str, typer.Argument(help="The platform's account id.")],
    as_json: JsonOption = False,
) -> None:
    """Whether the account's user may be told anything now, and why.

    The reasons name non-disclosure orders and reports: for the legal desk's eyes only."""
    from vigil.legal.notice import may_notify_user

    settings = get_settings()
    with database_session() as session:
        decision = may_notify_user(
            session, account, notice_policy=settings.legal_notice_after_order, now=utcnow()
        )
    row = {
        "account": account,
        "may_notify_user": decision.allowed,
        "reasons": list(decision.reasons),
    }
    if as_json:
        _echo_json(row)
        return
    console = stdout_console()
    verdict = "[green]may be told[/]" if decision.allowed else "[red]must NOT be told[/]"
    console.print(f"{escape(account)}: {verdict}")
    for reason in decision.reasons:
        console.print(f"  - {escape(reason)}")
