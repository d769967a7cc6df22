"""Project VIC / VICS JSON: hash sets and case files (OData JSON), read as a stream.

Two shapes, both an object with a `value` array (UTF-8, with or without a byte-order mark):

- a **hash set**: `value` holds Media records directly;
- a **case file**: `value` holds cases, each with a `Media` array of Media records.

A Media record gives `MediaID`, `Category` (an integer whose meaning depends on the regional
VICS instance: `--vics-region`, default `us`; see `vigil.banks.classification`), `MD5`, `SHA1`
and `AlternativeHashes: [{HashName, HashValue}]`, where `PDQ` (and `MD5`, `SHA1`, `SHA256`)
are used and others (PhotoDNA...) are skipped, counted by name. A top-level `PhotoDNA` is
skipped too. Field names are matched case-insensitively; everything else is ignored.

Each record becomes one `Entry` (external id = MediaID) holding one row per hash; without a
MediaID its rows stand alone. Records are parsed one at a time with ijson's event parser (the
yajl C backend), so a file of millions of records is never held in memory; one record may
hold at most `MAX_RECORD_EVENTS` JSON tokens.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ijson  # type: ignore[import-untyped]

from vigil.banks.classification import EMPTY, Classification, check_vics_region
from vigil.banks.formats.base import (
    Entry,
    ImportFileError,
    ParseOptions,
    Record,
    Rejected,
    Row,
    Skipped,
    check_text,
    excerpt,
    normalise_value,
    skip_bom,
)

MAX_RECORD_EVENTS = 100_000
"""Most JSON tokens in one Media record (a real one has well under a hundred)."""
_READ_CHUNK = 1 << 16

_TOP_HASHES = (("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256"))
_ALTERNATIVE = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "pdq": "pdq"}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

Event = tuple[str, Any]


def parse(stream: io.BufferedReader, options: ParseOptions) -> Iterator[Record]:
    """Records of a VICS JSON hash set or case file; see the module docstring."""
    region = check_vics_region(options.vics_region)
    skip_bom(stream)
    reader = _Reader(ijson.basic_parse(_DigitGuard(stream), buf_size=_READ_CHUNK))
    index = 0
    for record in reader.media_records():
        index += 1
        if not isinstance(record, dict):
            yield Rejected(index, "a Media record must be a JSON object")
            continue
        yield from _records(index, record, region, options)
    if not reader.saw_value:
        raise ImportFileError("no top-level 'value' array: not a VICS JSON hash set or case file")


MAX_DIGITS = 1000
"""Longest run of digits allowed anywhere in the file. ijson's C backend mishandles integers
over Python's 4300-digit conversion limit (the error surfaces later, or crashes), so such
files are refused before the parser sees them."""
_LONG_RUN = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))
_TRAILING_DIGITS = re.compile(rb"[0-9]*\Z")


class _DigitGuard:
    """A read-through stream that refuses a run of more than `MAX_DIGITS` digits."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self._stream = stream
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        window = self._tail + data
        if _LONG_RUN.search(window):
            raise ImportFileError(f"a number longer than {MAX_DIGITS} digits")
        match = _TRAILING_DIGITS.search(window)
        self._tail = window[match.start() :] if match else b""
        return data


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:80] if text else type(error).__name__


class _Reader:
    """Walks the event stream, yielding each Media record built as a small dict."""

    def __init__(self, events: Iterator[Event]) -> None:
        self._events = events
        self.saw_value = False
        self.records = 0

    def _next(self) -> Event:
        try:
            return next(self._events)
        except StopIteration:
            raise ImportFileError(self._where("the JSON ends too early")) from None
        except ijson.JSONError as error:
            raise ImportFileError(self._where(f"malformed JSON ({_first_line(error)})")) from None
        except (ValueError, ArithmeticError) as error:  # a number Decimal cannot hold
            raise ImportFileError(self._where(f"malformed JSON ({_first_line(error)})")) from None

    def _where(self, message: str) -> str:
        return f"after record {self.records}: {message}" if self.records else message

    def media_records(self) -> Iterator[Any]:
        event, _ = self._next()
        if event != "start_map":
            raise ImportFileError("a VICS JSON file is an object with a 'value' array")
        while True:
            event, value = self._next()
            if event == "end_map":
                break
            key = str(value)
            event, value = self._next()
            if key.lower() == "value" and event == "start_array" and not self.saw_value:
                self.saw_value = True
                yield from self._value_items()
            else:
                self._skip(event)
        # Whatever follows the root object is an error ijson reports here.
        for _ in self._rest():
            pass

    def _rest(self) -> Iterator[Event]:
        while True:
            try:
                yield next(self._events)
            except StopIteration:
                return
            except (ijson.JSONError, ValueError, ArithmeticError) as error:
                raise ImportFileError(
                    self._where(f"malformed JSON ({_first_line(error)})")
                ) from None

    def _value_items(self) -> Iterator[Any]:
        while True:
            event, value = self._next()
            if event == "end_array":
                return
            if event != "start_map":
                self._skip(event)
                self.records += 1
                yield value if event not in ("start_array",) else []
                continue
            # An object: a Media record, or a case whose `Media` array holds the records.
            built: dict[str, Any] = {}
            is_case = False
            budget = [MAX_RECORD_EVENTS]
            while True:
                event, key = self._next()
                if event == "end_map":
                    break
                event, value = self._next()
                if str(key).lower() == "media" and event == "start_array":
                    is_case = True
                    yield from self._media_array()
                else:
                    built[str(key)] = self._build(event, value, budget)
            if not is_case:
                self.records += 1
                yield built

    def _media_array(self) -> Iterator[Any]:
        while True:
            event, value = self._next()
            if event == "end_array":
                return
            self.records += 1
            yield self._build(event, value, [MAX_RECORD_EVENTS])

    def _build(self, event: str, value: Any, budget: list[int]) -> Any:
        """The JSON value starting with (event, value), as Python objects."""
        if event not in ("start_map", "start_array"):
            return value
        root: Any = {} if event == "start_map" else []
        stack: list[Any] = [root]
        keys: list[str | None] = [None]
        while stack:
            budget[0] -= 1
            if budget[0] < 0:
                raise ImportFileError(
                    f"record {self.records + 1} has more than {MAX_RECORD_EVENTS} JSON tokens"
                )
            event, value = self._next()
            container = stack[-1]
            if event in ("end_map", "end_array"):
                stack.pop()
                keys.pop()
                continue
            if event == "map_key":
                keys[-1] = str(value)
                continue
            item: Any = value
            if event in ("start_map", "start_array"):
                item = {} if event == "start_map" else []
            if isinstance(container, dict):
                container[keys[-1] or ""] = item
            else:
                container.append(item)
            if event in ("start_map", "start_array"):
                stack.append(item)
                keys.append(None)
        return root

    def _skip(self, event: str) -> None:
        if event not in ("start_map", "start_array"):
            return
        depth = 1
        while depth:
            event, _ = self._next()
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1


def _records(
    index: int, record: dict[str, Any], region: str, options: ParseOptions
) -> Iterator[Record]:
    fields = {key.lower(): value for key, value in record.items()}
    try:
        external_id = _media_id(fields.get("mediaid"))
        category = _category(fields.get("category"))
    except ValueError as error:
        yield Rejected(index, str(error))
        return
    if options.vics_categories is not None and category not in options.vics_categories:
        yield Skipped(index, f"VICS category {category} not selected")
        return
    classification = (
        EMPTY if category is None else Classification(vics_category=category, vics_region=region)
    )

    rows: dict[tuple[str, str], Row] = {}
    rejected = False
    skipped = False

    def add(label: str, signal_type: str, raw: Any) -> Record | None:
        nonlocal rejected
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            rejected = True
            return Rejected(index, f"{label} is not a string")
        try:
            value = normalise_value(signal_type, raw, options.limits)
        except ValueError as error:
            rejected = True
            return Rejected(index, f"{label}: {error}")
        rows.setdefault(
            (signal_type, value),
            Row(index, signal_type, value, classification, external_id=external_id),
        )
        return None

    for key, signal_type in _TOP_HASHES:
        problem = add(key.upper(), signal_type, fields.get(key))
        if problem is not None:
            yield problem
    if fields.get("photodna"):
        skipped = True
        yield Skipped(index, "PhotoDNA hash (needs a licensed plug-in)")
    alternatives = fields.get("alternativehashes")
    if alternatives is not None and not isinstance(alternatives, list):
        rejected = True
        yield Rejected(index, "AlternativeHashes is not a list")
        alternatives = None
    for item in alternatives or ():
        if not isinstance(item, dict):
            rejected = True
            yield Rejected(index, "an AlternativeHashes item is not an object")
            continue
        named = {str(key).lower(): value for key, value in item.items()}
        name = named.get("hashname")
        if not isinstance(name, str) or not name.strip():
            rejected = True
            yield Rejected(index, "an AlternativeHashes item has no HashName")
            continue
        alternative = _ALTERNATIVE.get(_NOT_ALNUM.sub("", name.lower()))
        if alternative is None:
            skipped = True
            yield Skipped(index, f"alternative hash {excerpt(name.strip(), 24)} not supported")
            continue
        problem = add(f"AlternativeHashes {name.strip()[:24]}", alternative, named.get("hashvalue"))
        if problem is not None:
            yield problem

    if rows:
        if external_id is None:
            yield from rows.values()
        else:
            yield Entry(index, external_id, tuple(rows.values()), authoritative=not rejected)
    elif not rejected and not skipped:
        yield Rejected(index, "no MD5, SHA1 or supported alternative hash")


def _media_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError("MediaID must be a number or a string")
    return check_text("MediaID", str(value))


def _category(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("Category must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 7):
            raise ValueError(f"Category must be a whole number, got {excerpt(text, 12)}")
        return int(text)
    # Range first: int() of a hostile Decimal('1E+999999999') would never finish.
    if isinstance(value, int | Decimal) and 0 <= value <= 1_000_000 and value == int(value):
        return int(value)
    raise ValueError("Category must be a whole number 0-1000000")
