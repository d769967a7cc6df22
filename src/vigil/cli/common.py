"""Pieces the commands share: path expansion, the progress bar and output files that appear
only when complete (`hash`, `scan`); the database session, consoles and usage errors of the
management commands (`bank`, `tokens`, `users`, `actions`)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy.orm import Session

PathsArgument = Annotated[
    list[str],
    typer.Argument(help="Files or directories (walked recursively); - reads paths from stdin."),
]
WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="Worker processes (default: one per CPU).")
]
OutputOption = Annotated[Path | None, typer.Option(help="Write records here instead of stdout.")]
ExactDecodeOption = Annotated[
    bool,
    typer.Option(
        "--exact-decode", help="Full-resolution decode: hashes identical to the reference."
    ),
]


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


def progress_bar(console: Console, total: int, description: str) -> Progress:
    """A progress bar on stderr, shown only on a terminal and for more than one file."""
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=total <= 1 or not console.is_terminal,
        transient=True,
    )
    progress.add_task(description, total=total)
    return progress


@contextmanager
def output_stream(output: Path | None) -> Iterator[TextIO]:
    """stdout, or `output` written as `output.partial` and renamed only once complete, so a
    reader never takes an interrupted run's file for a finished one."""
    if output is None:
        yield sys.stdout
        return
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", encoding="utf-8") as stream:
        yield stream
    os.replace(partial, output)


err_console = Console(stderr=True, highlight=False)
"""Messages and warnings: stderr, so stdout stays data for scripts."""


def usage_error(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit with status 2 (bad input)."""
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def cli_actor() -> str:
    """`cli:<os user>`: who the audit log says ran a command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container with an unnamed uid)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


@contextmanager
def database_session() -> Iterator[Session]:
    """A session on the configured database (migrated), committed when the block ends; what
    it changes is audited as done by `cli_actor()`."""
    from vigil.audit.actor import acting_as
    from vigil.config import get_settings
    from vigil.store import open_database

    database = open_database(get_settings())
    try:
        with acting_as(cli_actor()), database.session() as session:
            yield session
    finally:
        database.dispose()


def stdout_console() -> Console:
    """Tables on stdout: the terminal's width, or a wide fixed one when piped."""
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)
