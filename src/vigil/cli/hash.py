"""`vigil hash`: hash files, directories or a list on stdin."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console

from vigil.cli.common import (
    ExactDecodeOption,
    OutputOption,
    PathsArgument,
    WorkersOption,
    expand_paths,
    output_stream,
    progress_bar,
)
from vigil.cli.output import OutputFormat, RecordWriter
from vigil.config import get_settings
from vigil.pipeline.hashing import HashOptions, default_workers, hash_files
from vigil.pipeline.recording import HashRecorder


def hash_command(
    paths: PathsArgument,
    signals: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated signal types (md5,sha256,pdq,vpdq); default per media type."
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.JSONL,
    workers: WorkersOption = None,
    exact_decode: ExactDecodeOption = False,
    output: OutputOption = None,
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
    failures: Counter[str] = Counter()
    started = time.perf_counter()
    with output_stream(output) as stream, progress_bar(err, len(files), "hashing") as progress:
        writer = RecordWriter(stream, fmt)
        for result in hash_files(
            files, settings.media_limits, options, workers=workers or default_workers()
        ):
            writer.write(result)
            if recorder:
                recorder.add(result)
            if result.error:
                failures[result.error.code.value] += 1
            progress.advance(progress.task_ids[0])
        writer.close()
    if recorder:
        recorder.close()
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
