"""What every hash-list parser yields, and the guarded byte stream they all read.

A parser is a generator `parse(stream, options) -> Iterator[Record]` over a binary stream. It
never loads the whole file: it yields one record per row (text formats) or per entry
(JSON, XML) as it reads. Row-level problems are records (`Rejected`, `Skipped`), never
exceptions; only a file that cannot be read as its format at all raises `ImportFileError`,
the one documented exception, with the position where reading stopped.

Positions are 1-based: the line number for CSV, TSV and plain lists, the record (entry)
index for VICS JSON and hash-sharing XML.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeAlias

from vigil.banks.classification import DEFAULT_VICS_REGION, EMPTY, Classification
from vigil.signals import SIGNAL_TYPES

DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_LINE_CHARS = 65_536
DEFAULT_MAX_VALUE_CHARS = 8 * 1024**2
MAX_TEXT_FIELD = 200
"""Longest external id, list name or member name kept (longer ones are rejected)."""
MAX_NOTE_CHARS = 10_000

_HEX_TYPES = frozenset({"md5", "sha1", "sha256", "pdq"})
_HEX = re.compile(r"[0-9a-f]+")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


class ImportFileError(ValueError):
    """The file cannot be read as the format: nothing of it is imported."""


@dataclass(frozen=True)
class ImportLimits:
    """Limits on what an import reads (`VIGIL_BANK_IMPORT_*`)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS


@dataclass(frozen=True)
class ParseOptions:
    """What a parser needs besides the bytes."""

    signal_type: str | None = None
    """Plain lists: the type of every value."""
    vics_region: str = DEFAULT_VICS_REGION
    """VICS: the region whose category numbering the file uses."""
    vics_categories: frozenset[int] | None = None
    """VICS: import only records of these categories (None: all)."""
    delimiter: str | None = None
    """CSV/TSV: the delimiter (None: by file extension, else sniffed from the header)."""
    file_name: str = ""
    limits: ImportLimits = field(default_factory=ImportLimits)


@dataclass(frozen=True)
class Row:
    """One valid value to have in the bank."""

    position: int
    signal_type: str
    value: str
    """Canonical (already parsed and normalised)."""
    classification: Classification = EMPTY
    external_id: str | None = None
    note: str | None = None
    list_name: str | None = None
    member: str | None = None


@dataclass(frozen=True)
class Entry:
    """An external entry (a VICS Media record, a hash-sharing entry) and all its valid values.

    With `authoritative`, the values listed are all the entry now has: values the bank holds
    for the same external id and list but not listed here are removed. An entry that had a
    rejected value is not authoritative, so a typo in an update never removes a good value.
    """

    position: int
    external_id: str
    rows: tuple[Row, ...]
    authoritative: bool = True


@dataclass(frozen=True)
class Deletion:
    """The source deleted this external entry: remove its values from the bank."""

    position: int
    external_id: str


@dataclass(frozen=True)
class Rejected:
    """A bad row or value, not imported; `reason` never quotes more than a short excerpt."""

    position: int
    reason: str


@dataclass(frozen=True)
class Skipped:
    """A value Vigil does not use (a PhotoDNA fingerprint, a VICS category not selected)."""

    position: int
    reason: str


Record: TypeAlias = Row | Entry | Deletion | Rejected | Skipped


def excerpt(text: str, limit: int = 40) -> str:
    """A short, printable quotation of outside text for messages."""
    short = _UNPRINTABLE.sub("?", text[:limit])
    return repr(short + ("..." if len(text) > limit else ""))


def normalise_value(signal_type: str, value: str, limits: ImportLimits) -> str:
    """Validate and normalise a value with its signal type's `parse`; ValueError says why."""
    signal = SIGNAL_TYPES.get(signal_type)
    if signal is None:
        raise ValueError(
            f"unknown signal type {excerpt(signal_type)}; known: {', '.join(SIGNAL_TYPES)}"
        )
    if len(value) > limits.max_value_chars:
        raise ValueError(f"{signal_type} value longer than {limits.max_value_chars} characters")
    canonical = signal.parse(value)
    # Belt and braces: every hex-valued type stores lower-case hex and nothing else, whatever
    # a signal type's `parse` might let through.
    if signal_type in _HEX_TYPES and not _HEX.fullmatch(canonical):
        raise ValueError(f"{signal_type} must be hexadecimal")
    return canonical


def check_text(
    label: str, value: str | None, limit: int = MAX_TEXT_FIELD, *, multiline: bool = False
) -> str | None:
    """An optional text field from outside: stripped, None when empty, bounded, without
    control characters. `multiline` (notes) allows tabs and line breaks, stored as `\n`."""
    if value is None:
        return None
    text = value.strip()
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return None
    if len(text) > limit:
        raise ValueError(f"{label} longer than {limit} characters")
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(text):
        raise ValueError(f"{label} contains a control character")
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and line feed allowed


# --- The guarded stream -----------------------------------------------------------------


class GuardedReader(io.RawIOBase):
    """Reads a binary stream through, hashing it (SHA-256) and counting its bytes, and
    stops with `ImportFileError` past `max_bytes`: a file growing while read, or a
    device that never ends, cannot exhaust memory or disk time."""

    def __init__(self, raw: BinaryIO, max_bytes: int) -> None:
        super().__init__()
        self._raw = raw
        self._max_bytes = max_bytes
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            return 0
        count = len(data)
        self.bytes_read += count
        if self.bytes_read > self._max_bytes:
            raise ImportFileError(
                f"the file is larger than {self._max_bytes} bytes (VIGIL_BANK_IMPORT_MAX_BYTES)"
            )
        self.sha256.update(data)
        view[:count] = data
        return count

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole file."""
        while self.read(1 << 20):
            pass

    @property
    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def open_guarded(raw: BinaryIO, max_bytes: int) -> tuple[GuardedReader, io.BufferedReader]:
    """`raw` behind a `GuardedReader` and a read buffer: what parsers read."""
    guard = GuardedReader(raw, max_bytes)
    buffered: Any = guard  # typeshed's BufferedReader is generic over its raw stream
    return guard, io.BufferedReader(buffered, buffer_size=1 << 16)


BOM_UTF8 = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def skip_bom(stream: io.BufferedReader) -> None:
    """Skip a UTF-8 byte-order mark; refuse UTF-16/32 with a clear message."""
    head = stream.peek(4)[:4]
    if head.startswith(BOM_UTF8):
        stream.read(len(BOM_UTF8))
    elif head.startswith(_OTHER_BOMS):
        raise ImportFileError("the file is UTF-16 or UTF-32; convert it to UTF-8")


def text_lines(stream: io.BufferedReader, limits: ImportLimits) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 text stream (BOM skipped, line ends kept), each checked
    against `max_line_chars`. Undecodable bytes are a malformed file, with the line number."""
    skip_bom(stream)
    # surrogateescape, then a check per line: a strict decoder fails on the chunk it reads
    # ahead, which would blame the wrong line.
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    number = 0
    while True:
        number += 1
        line = text.readline(limits.max_line_chars + 1)
        if not line:
            return
        if _UNDECODED.search(line):
            raise ImportFileError(f"line {number}: not UTF-8 text")
        if len(line) > limits.max_line_chars and not line.endswith(("\n", "\r")):
            raise ImportFileError(
                f"line {number} is longer than {limits.max_line_chars} characters"
                " (VIGIL_BANK_IMPORT_MAX_LINE_CHARS)"
            )
        yield number, line
