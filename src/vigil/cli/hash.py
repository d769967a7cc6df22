"""`vigil hash`: hash files, directories or a list on stdin."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from vigil.cli.output import OutputFormat, RecordWriter
from vigil.config import get_settings
from vigil.pipeline.hashing import HashOptions, default_workers, hash_files
from vigil.pipeline.recording import HashRecorder


def hash_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files or directories (walked recursively); - reads paths from stdin."),
    ],
    signals: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated signal types (md5,sha256,pdq,vpdq); default per media type."
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.JSONL,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: one per CPU).")
    ] = None,
    exact_decode: Annotated[
        bool,
        typer.Option(
            "--exact-decode", help="Full-resolution decode: hashes identical to the reference."
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Write records here instead of stdout.")
    ] = None,
    record: Annotated[
        bool, typer.Option(help="Record content and signals in the database.")
    ] = True,
) -> None:
    """Hash media: one JSON Lines record per file; exit 0 all ok, 1 some failed, 2 usage error."""
    settings = get_settings()
    try:
        options = HashOptions(
            signals=tuple(s.strip() for s in signals.split(",") if s.strip()) if signals else None,
            fast_decode=settings.fast_decode and not exact_decode,
            vpdq_seconds_per_hash=settings.vpdq_seconds_per_hash,
        )
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--signals") from None
    files = list(expand_paths(paths))
    err = Console(stderr=True)
    recorder = HashRecorder.open(settings) if record else None
    stream = (
        output.with_name(output.name + ".partial").open("w", encoding="utf-8")
        if output
        else sys.stdout
    )
    writer = RecordWriter(stream, fmt)
    failures: Counter[str] = Counter()
    started = time.perf_counter()
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=len(files) <= 1 or not err.is_terminal,
        transient=True,
    )
    with progress:
        task = progress.add_task("hashing", total=len(files))
        for result in hash_files(
            files, settings.media_limits, options, workers=workers or default_workers()
        ):
            writer.write(result)
            if recorder:
                recorder.add(result)
            if result.error:
                failures[result.error.code.value] += 1
            progress.advance(task)
    if recorder:
        recorder.close()
    writer.close()
    if output:
        stream.close()
        os.replace(stream.name, output)
    elapsed = max(time.perf_counter() - started, 1e-9)
    failed = sum(failures.values())
    detail = ", ".join(f"{code}={n}" for code, n in sorted(failures.items()))
    err.print(
        f"files={len(files)} ok={len(files) - failed} failed={failed}"
        + (f" ({detail})" if detail else "")
        + f" rate={len(files) / elapsed:.1f} files/s",
        highlight=False,
    )
    raise typer.Exit(1 if failed else 0)


def expand_paths(arguments: list[str]) -> Iterator[Path]:
    """Files named, files under directories (sorted, symlinked directories not followed),
    and paths read from stdin for `-`. A missing path is yielded so it gets an error record."""
    for argument in arguments:
        if argument == "-":
            yield from (Path(line.rstrip("\n")) for line in sys.stdin if line.strip())
            continue
        path = Path(argument)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                yield from (Path(root) / name for name in sorted(names))
        else:
            yield path
