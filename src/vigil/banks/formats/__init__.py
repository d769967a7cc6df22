"""Hash-list file formats: one module per format, each a streaming parser (and a writer for
the formats Vigil exports).

| format  | module      | what                                                        |
| ------- | ----------- | ----------------------------------------------------------- |
| `csv`   | `delimited` | CSV with a header (`signal_type,value[,classification,...]`) |
| `tsv`   | `delimited` | the same, tab-separated                                     |
| `plain` | `plain`     | one value per line, all of one `--signal-type`              |
| `vics`  | `vics`      | Project VIC / VICS JSON hash sets and case files            |
| `ncmec` | `ncmec`     | the clearinghouse hash-sharing API's XML entries            |
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import PurePath

from vigil.banks.formats import delimited, ncmec, plain, vics
from vigil.banks.formats.base import (
    Deletion,
    Entry,
    ImportFileError,
    ImportLimits,
    ParseOptions,
    Record,
    Rejected,
    Row,
    Skipped,
)


class ImportFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    PLAIN = "plain"
    VICS = "vics"
    NCMEC = "ncmec"


Parser = Callable[[io.BufferedReader, ParseOptions], Iterator[Record]]

_EXTENSIONS = {
    ".csv": ImportFormat.CSV,
    ".tsv": ImportFormat.TSV,
    ".tab": ImportFormat.TSV,
    ".json": ImportFormat.VICS,
    ".xml": ImportFormat.NCMEC,
    ".txt": ImportFormat.PLAIN,
    ".lst": ImportFormat.PLAIN,
    ".md5": ImportFormat.PLAIN,
    ".sha1": ImportFormat.PLAIN,
}


def detect_format(file_name: str) -> ImportFormat:
    """The format a file's extension names; ValueError when it names none."""
    suffix = PurePath(file_name).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell the format of {PurePath(file_name).name!r} from its extension;"
            f" name one ({', '.join(ImportFormat)})"
        ) from None


def parser_for(fmt: ImportFormat, options: ParseOptions) -> tuple[Parser, ParseOptions]:
    """The parser of `fmt` and the options it should get (TSV fixes the delimiter)."""
    if fmt is ImportFormat.CSV:
        return delimited.parse, options
    if fmt is ImportFormat.TSV:
        return delimited.parse, replace(options, delimiter="\t")
    if fmt is ImportFormat.PLAIN:
        return plain.parse, options
    if fmt is ImportFormat.VICS:
        return vics.parse, options
    return ncmec.parse, options


__all__ = [
    "Deletion",
    "Entry",
    "ImportFileError",
    "ImportFormat",
    "ImportLimits",
    "ParseOptions",
    "Parser",
    "Record",
    "Rejected",
    "Row",
    "Skipped",
    "detect_format",
    "parser_for",
]
