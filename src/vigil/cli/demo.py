"""`vigil demo`: Vigil's main job on synthetic media, needing nothing from outside the repo."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli.scan import render_matches
from vigil.config import get_settings
from vigil.demo import DEMO_BANK, DEMO_SUPPRESS_BANK, run_demo
from vigil.pipeline.hashing import default_workers


def demo() -> None:
    """Bank 50 synthetic pictures and a video, then scan altered copies mixed with unrelated
    pictures: prints the matches, recall per alteration, and where the database is."""
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
    raise typer.Exit(0)
