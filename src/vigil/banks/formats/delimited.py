"""CSV and TSV hash lists with a header row.

Header (case-insensitive, any order): `signal_type`, `value` (required), and optionally
`classification`, `external_id`, `note`, `list_name`, `member`. An unknown or repeated column
is a malformed file (a misspelt `clasification` must not silently drop every classification).

The delimiter is `--format tsv`/`csv`, else the file extension (`.tsv`, `.tab`: tab; `.csv`:
comma), else the header line (a tab in it: tab; otherwise comma). Fields are quoted the usual
CSV way, so a vPDQ value (several lines) fits in one quoted field. Blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import PurePath

from vigil.banks.classification import parse_classification
from vigil.banks.formats.base import (
    MAX_NOTE_CHARS,
    ImportFileError,
    ParseOptions,
    Record,
    Rejected,
    Row,
    check_text,
    excerpt,
    normalise_value,
    text_lines,
)

REQUIRED_COLUMNS = ("signal_type", "value")
OPTIONAL_COLUMNS = ("classification", "external_id", "note", "list_name", "member")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
"""Export writes exactly these, in this order."""


def delimiter_for(file_name: str, header: str | None = None) -> str:
    """The delimiter by extension, else by the header line."""
    suffix = PurePath(file_name).suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if header is not None and "\t" in header else ","


def parse(stream: io.BufferedReader, options: ParseOptions) -> Iterator[Record]:
    """Rows of a CSV/TSV hash list; see the module docstring."""
    limits = options.limits
    # csv's own field limit (128 KiB) would refuse long vPDQ values; it is process-wide,
    # and only ever raised here, never lowered.
    if csv.field_size_limit() < limits.max_value_chars + 1:
        csv.field_size_limit(limits.max_value_chars + 1)

    lines = text_lines(stream, limits)
    positions: list[int] = []

    def physical() -> Iterator[str]:
        for number, line in lines:
            positions.append(number)
            yield line

    source = physical()
    header_line = next(source, None)
    if header_line is None:
        raise ImportFileError("the file is empty: a CSV/TSV hash list starts with a header row")
    delimiter = options.delimiter or delimiter_for(options.file_name, header_line)
    columns = _header(header_line, delimiter)
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    width = len(columns)
    while True:
        positions.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            where = positions[0] if positions else "?"
            raise ImportFileError(f"line {where}: {error}") from None
        line = positions[0] if positions else 0
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != width:
            yield Rejected(line, f"{len(fields)} fields, the header has {width}")
            continue
        yield _row(line, dict(zip(columns, fields, strict=True)), options)


def _header(line: str, delimiter: str) -> list[str]:
    try:
        names = next(csv.reader([line], delimiter=delimiter, strict=True), [])
    except csv.Error as error:
        raise ImportFileError(f"line 1 (header): {error}") from None
    columns = [name.strip().lower() for name in names]
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"line 1 (header): unknown column {excerpt(unknown[0])}; columns are"
            f" {', '.join(COLUMNS)} (signal_type and value required)"
        )
    if len(set(columns)) != len(columns):
        raise ImportFileError("line 1 (header): a column is named twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            f"line 1 (header): missing column {missing[0]!r}; a CSV/TSV hash list needs a"
            f" header naming at least signal_type and value"
        )
    return columns


def _row(line: int, fields: dict[str, str], options: ParseOptions) -> Record:
    signal_type = fields["signal_type"].strip().lower()
    try:
        value = normalise_value(signal_type, fields["value"], options.limits)
        classification = parse_classification(
            fields.get("classification"), vics_region=options.vics_region
        )
        return Row(
            position=line,
            signal_type=signal_type,
            value=value,
            classification=classification,
            external_id=check_text("external_id", fields.get("external_id")),
            note=check_text("note", fields.get("note"), MAX_NOTE_CHARS, multiline=True),
            list_name=check_text("list_name", fields.get("list_name")),
            member=check_text("member", fields.get("member")),
        )
    except ValueError as error:
        return Rejected(line, str(error))
