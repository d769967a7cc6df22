"""Plain hash lists: one value per line, all of one signal type (`--signal-type`).

Blank lines and comments (from `#` to the end of the line) are ignored; white space around a
value is ignored; anything else on the line makes it a rejected row. vPDQ values span several
lines and cannot be listed this way (use CSV).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from vigil.banks.formats.base import (
    ImportFileError,
    ParseOptions,
    Record,
    Rejected,
    Row,
    excerpt,
    normalise_value,
    text_lines,
)
from vigil.signals import SIGNAL_TYPES

MULTILINE_TYPES = frozenset({"vpdq"})


def check_signal_type(signal_type: str | None) -> str:
    """The signal type a plain list needs; ImportFileError when missing or unusable."""
    if not signal_type:
        raise ImportFileError("a plain hash list needs its signal type (--signal-type)")
    if signal_type not in SIGNAL_TYPES:
        raise ImportFileError(
            f"unknown signal type {excerpt(signal_type)}; known: {', '.join(SIGNAL_TYPES)}"
        )
    if signal_type in MULTILINE_TYPES:
        raise ImportFileError(f"{signal_type} values span several lines: use CSV, not a plain list")
    return signal_type


def parse(stream: io.BufferedReader, options: ParseOptions) -> Iterator[Record]:
    """Rows of a plain list; see the module docstring."""
    signal_type = check_signal_type(options.signal_type)
    for number, line in text_lines(stream, options.limits):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            yield Row(number, signal_type, normalise_value(signal_type, text, options.limits))
        except ValueError as error:
            yield Rejected(number, str(error))
