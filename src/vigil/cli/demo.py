"""`vigil demo`: Vigil's main job on synthetic media, needing nothing from outside the repo."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from vigil.cli.output import render_table
from vigil.config import get_settings
from vigil.demo import make_demo_media
from vigil.media.images import load_pdq_pixels
from vigil.pipeline.hashing import HashOptions, HashRecord, hash_files
from vigil.pipeline.recording import HashRecorder
from vigil.signals import get_signal_type
from vigil.signals.pdq import dihedral_from_pixels


def demo() -> None:
    """Generate benign synthetic images and a video in VIGIL_HOME, hash and record them."""
    settings = get_settings()
    console = Console(stderr=True)
    folder = settings.home / "demo"
    console.print(f"Writing synthetic demo media to {folder}")
    paths = make_demo_media(folder)
    options = HashOptions(
        fast_decode=settings.fast_decode, vpdq_seconds_per_hash=settings.vpdq_seconds_per_hash
    )
    recorder = HashRecorder.open(settings)
    records = []
    for record in hash_files(paths, settings.media_limits, options, workers=1):
        recorder.add(record)
        records.append(record)
    recorder.close()
    render_table(records, sys.stdout, relative_to=folder)
    _print_near_copies(records, console)
    failed = [r for r in records if r.error]
    console.print(
        f"{len(records)} files hashed, {len(failed)} refused with a reason "
        f"(the demo includes a deliberately truncated JPEG); recorded in "
        f"{settings.effective_database_url}",
        soft_wrap=True,
    )
    raise typer.Exit(0)


def _print_near_copies(records: list[HashRecord], console: Console) -> None:
    """Show what PDQ sees: the resized copy is near its original, the rotated copy is near
    one of the original's dihedral variants, the unrelated picture is far from both."""
    pdq = get_signal_type("pdq")
    by_name = {Path(r.path).name: r for r in records}
    variants, _ = dihedral_from_pixels(
        load_pdq_pixels(
            Path(by_name["landscape.jpg"].path), get_settings().media_limits, fast=False
        )
    )
    for name in ("landscape-small.png", "landscape-rotated.webp", "pattern.jpg"):
        other = by_name[name].value("pdq")
        if other is None:
            continue
        plain = pdq.distance(variants[0], other)
        best = min(pdq.distance(v, other) for v in variants)
        verdict = "match" if best <= pdq.default_threshold else "no match"
        console.print(
            f"landscape.jpg vs {name}: PDQ distance {plain}, best over the 8 dihedral "
            f"variants {best} ({verdict} at <= {pdq.default_threshold})",
            highlight=False,
            soft_wrap=True,
        )
