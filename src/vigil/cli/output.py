"""Writers for hash records: JSON Lines (the interface scripts rely on), CSV and a table."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import TextIO

from rich.console import Console
from rich.table import Table

from vigil.pipeline.hashing import HashRecord

RECORD_KEYS = (
    "path",
    "media_type",
    "bytes",
    "md5",
    "sha256",
    "pdq",
    "pdq_quality",
    "vpdq",
    "error",
)


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    TABLE = "table"


class RecordWriter:
    """Writes records as they arrive (JSONL, CSV) or all at the end (table)."""

    def __init__(self, stream: TextIO, fmt: OutputFormat) -> None:
        self.stream = stream
        self.fmt = fmt
        self._rows: list[HashRecord] = []
        self._csv: csv.DictWriter[str] | None = None
        if fmt is OutputFormat.CSV:
            self._csv = csv.DictWriter(stream, fieldnames=RECORD_KEYS, lineterminator="\n")
            self._csv.writeheader()

    def write(self, record: HashRecord) -> None:
        data = record.as_json()
        if self.fmt is OutputFormat.JSONL:
            self.stream.write(json.dumps(data, separators=(",", ":")) + "\n")
        elif self._csv is not None:
            for key in ("vpdq", "error"):
                data[key] = "" if data[key] is None else json.dumps(data[key])
            self._csv.writerow({k: "" if v is None else v for k, v in data.items()})
        else:
            self._rows.append(record)

    def close(self) -> None:
        if self.fmt is OutputFormat.TABLE:
            render_table(self._rows, self.stream)
        self.stream.flush()


def render_table(records: Iterable[HashRecord], stream: TextIO) -> None:
    """A human-readable table; hashes are never wrapped so they can be copied whole."""
    table = Table(show_lines=False)
    for column in ("file", "type", "bytes", "md5", "pdq", "quality", "vpdq frames", "error"):
        fixed = column in ("md5", "pdq")
        table.add_column(column, no_wrap=fixed, min_width=64 if column == "pdq" else None)
    for record in records:
        data = record.as_json()
        table.add_row(
            data["path"],
            data["media_type"] or "-",
            str(data["bytes"] or "-"),
            data["md5"] or "-",
            data["pdq"] or "-",
            "-" if data["pdq_quality"] is None else str(data["pdq_quality"]),
            "-" if data["vpdq"] is None else str(len(data["vpdq"])),
            f"{data['error']['code']}: {data['error']['message']}" if data["error"] else "",
        )
    Console(file=stream, width=None if stream.isatty() else 240).print(table)
