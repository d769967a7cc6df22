"""`vigil scan`: hash, match against the banks and record, for files in bulk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from vigil.cli.common import (
    ExactDecodeOption,
    OutputOption,
    PathsArgument,
    WorkersOption,
    expand_paths,
    output_stream,
    progress_bar,
)
from vigil.config import get_settings
from vigil.pipeline.hashing import default_workers
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.recording import HashRecorder
from vigil.pipeline.scan import ScanResult, ScanSummary, scan_files, scan_options
from vigil.store import Bank, open_database


class ScanFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def scan_command(
    paths: PathsArgument,
    bank: Annotated[
        list[str] | None,
        typer.Option(help="Match only these banks (repeatable); suppression banks always apply."),
    ] = None,
    fmt: Annotated[ScanFormat, typer.Option("--format", help="Output format.")] = ScanFormat.JSONL,
    workers: WorkersOption = None,
    exact_decode: ExactDecodeOption = False,
    output: OutputOption = None,
) -> None:
    """Scan media against the banks: one JSON Lines record per file with its `matches`.

    Exit 0 when every file was scanned, 1 when some could not be, 2 on a usage error.
    """
    settings = get_settings()
    err = Console(stderr=True, highlight=False)
    database = open_database(settings)
    with database.session() as session:
        known = set(session.scalars(select(Bank.name)))
        unknown = sorted(set(bank or ()) - known)
        if unknown:
            raise typer.BadParameter(f"no bank named {', '.join(unknown)}", param_hint="--bank")
    matcher = BankMatcher.from_database(database, bank, cache_dir=settings.index_cache_dir)
    files = list(expand_paths(paths))
    options = scan_options(
        fast_decode=settings.fast_decode and not exact_decode,
        vpdq_seconds_per_hash=settings.vpdq_seconds_per_hash,
    )
    recorder = HashRecorder(database)
    summary = ScanSummary()
    results: list[ScanResult] = []
    with output_stream(output) as stream, progress_bar(err, len(files), "scanning") as progress:
        for result in scan_files(
            files,
            settings.media_limits,
            options,
            matcher,
            recorder,
            workers=workers or default_workers(),
        ):
            summary.add(result)
            if fmt is ScanFormat.JSONL:
                stream.write(json.dumps(result.as_json(), separators=(",", ":")) + "\n")
            else:
                results.append(result)
            progress.advance(progress.task_ids[0])
        if fmt is ScanFormat.TABLE:
            render_matches(results, stream)
    recorder.close()
    err.print(summary.line())
    raise typer.Exit(1 if summary.failed else 0)


def render_matches(
    results: Sequence[ScanResult], stream: TextIO, relative_to: Path | None = None
) -> None:
    """One row per match (files without a match are left out; errors are listed)."""
    table = Table()
    for column in ("file", "bank", "entry", "signal", "distance", "via", "classification"):
        table.add_column(column, no_wrap=column != "file")
    for result in results:
        name = Path(result.record.path)
        label = str(name.relative_to(relative_to)) if relative_to else str(name)
        for match in result.outcome.matches:
            via = match.query_variant or ""
            if match.dihedral:
                via = f"{via} dihedral {match.dihedral}".strip()
            table.add_row(
                label,
                match.bank,
                str(match.entry_id),
                match.signal_type,
                str(match.distance),
                via,
                match.classification or "",
            )
    Console(file=stream, width=None if stream.isatty() else 200).print(table)
