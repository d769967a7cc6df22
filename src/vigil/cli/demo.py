"""`vigil demo`: Vigil's main job on synthetic media, needing nothing from outside the repo."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli.scan import render_matches
from vigil.cli.serve import serve
from vigil.config import get_settings
from vigil.demo import (
    DEMO_ACCOUNT,
    DEMO_AGENCY_DOMAIN,
    DEMO_BANK,
    DEMO_SUPPRESS_BANK,
    demo_reviewer,
    demo_settings,
    run_demo,
    seed_legal_demo,
    submit_demo_report,
)
from vigil.pipeline.hashing import default_workers
from vigil.reporting.sandbox import running_sandbox
from vigil.review import queue_counts
from vigil.store import open_database


def demo(
    serve_console: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Afterwards, serve the review console (Ctrl-C stops it).",
        ),
    ] = True,
    port: Annotated[int, typer.Option(help="The console's port.")] = 8000,
) -> None:
    """Bank 50 synthetic pictures and a video, then scan altered copies mixed with unrelated
    pictures: prints the matches, recall per alteration, and where the database is; then
    serves the review console with the matches waiting in its queue."""
    settings = get_settings()
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"Generating synthetic demo media in {settings.home / 'demo'} ...")
    report = run_demo(settings, workers=default_workers())
    demo_set = report.demo
    console.print(
        f"Bank [bold]{DEMO_BANK}[/]: {len(demo_set.known)} pictures (PDQ + MD5) and a video "
        f"(vPDQ); suppression bank [bold]{DEMO_SUPPRESS_BANK}[/]: one of them marked as a "
        "known false positive.\n"
        f"Scanned {demo_set.uploads}: an altered copy of each banked picture, "
        f"{len(report.results) - len(demo_set.altered) - 2} unrelated pictures, a re-encoded "
        "copy of the video and a truncated file.\n"
    )
    render_matches(report.results, sys.stdout, relative_to=demo_set.uploads)
    recall = Table(title="Altered copies of banked pictures")
    for column in ("alteration", "found", "copies"):
        recall.add_column(column)
    for alteration, (found, total) in report.recall_by_alteration().items():
        recall.add_row(alteration, str(found), str(total))
    console.print(recall)
    false = report.false_matches()
    console.print(
        f"Unrelated pictures matched: {len(false)} (false matches); "
        f"suppressed by {DEMO_SUPPRESS_BANK}: {report.summary.suppressed}"
    )
    console.print(report.summary.line())
    console.print(f"Everything is recorded in {report.database_url}")
    database = open_database(settings)
    try:
        with database.session() as session:
            waiting = sum(count.open for count in queue_counts(session))
    finally:
        database.dispose()
    console.print(f"Review tasks waiting in the queue: {waiting}")
    username, password = demo_reviewer(settings)
    sandbox_password = secrets.token_urlsafe(12)
    with running_sandbox(settings.home / "cybertip-sandbox", sandbox_password) as sandbox:
        reporting = demo_settings(settings, sandbox.url, sandbox_password)
        sent = submit_demo_report(reporting, username)
        if sent is not None:
            console.print(
                f"\nConfirmed one task as {username} (viewing nothing: the report says so) and"
                f" sent report {sent.report_id} ({sent.files} file(s)) to the local CyberTipline"
                f" stand-in at {sent.sandbox_url}: [bold]{sent.outcome}[/], clearinghouse id"
                f" {sent.remote_report_id}."
            )
        base_url = f"http://127.0.0.1:{port}"
        if "VIGIL_PORTAL_BASE_URL" not in os.environ:
            reporting = reporting.model_copy(update={"portal_base_url": base_url})
        legal = seed_legal_demo(reporting)
        console.print(
            f"\nLegal desk: subpoena {legal.request_number} from an officer of"
            f" {DEMO_AGENCY_DOMAIN} (portal) for the made-up account {DEMO_ACCOUNT}"
            + (" filed" if legal.filed else " from an earlier run still there")
            + "; productions hold clearly fake subscriber records."
        )
        if not serve_console:
            raise typer.Exit(0)
        for name in (
            "cybertip_test_url",
            "cybertip_test_username",
            "report_person_email",
            "report_platform",
            "report_company_template",
            "account_data_synthetic",
            "portal_base_url",
        ):
            os.environ.setdefault(f"VIGIL_{name.upper()}", str(getattr(reporting, name)))
        os.environ.setdefault("VIGIL_CYBERTIP_TEST_PASSWORD", sandbox_password)
        get_settings.cache_clear()  # the console's workers read these
        console.print(
            f"\n[bold]Review console:[/] http://127.0.0.1:{port}/console/\n"
            f"  sign in as [bold]{username}[/] with password [bold]{password}[/]"
            " (new each run; media is blurred until you hold Space or the Reveal button)\n"
            "  Reports go to the local stand-in (vigil cybertip-sandbox), never anywhere else.\n"
            f"\n[bold]Legal desk:[/] {base_url}/console/legal\n"
            f"  sign in as [bold]{legal.legal_user}[/] with password"
            f" [bold]{legal.legal_password}[/] (legal, lead; new each run); {legal.second_user}"
            " works the desk too, for an emergency's second verification\n"
            f"  {legal.request_number} waits for its checklist; mail (confirmation and download"
            " links) waits in the outbox: vigil legal mail --show-body\n"
            f"\n[bold]Law-enforcement portal:[/] {base_url}/portal\n"
            f"  sign in as [bold]{legal.officer_email}[/] with password"
            f" [bold]{legal.officer_password}[/] (a made-up officer; new each run)\n"
            "\n  Ctrl-C stops the server."
        )
        serve(host="127.0.0.1", port=port, workers=1)
