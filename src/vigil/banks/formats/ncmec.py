"""The clearinghouse hash-sharing API's XML entries (`GET /v2/entries` pages).

Structure (namespace `https://hashsharing.ncmec.org/hashsharing/v2`; namespaces are ignored)::

    <queryResult>
      <images count=".." maxTimestamp="..">
        <image>
          <member id="42">Example Member</member>
          <timestamp>2017-10-24T15:00:00Z</timestamp>
          <id>image1</id>
          <classification>A1</classification>
          <fingerprints><md5>..</md5><sha1>..</sha1><pdna>..</pdna><pdq>..</pdq></fingerprints>
          <feedback>..</feedback>
        </image>
        <deletedImage><member id="43">..</member><id>image4</id>..</deletedImage>
      </images>
      <videos> <video>..</video> <deletedVideo>..</deletedVideo> </videos>
      <paging><next>..</next></paging>
    </queryResult>

An `image`/`video` is an `Entry` (external id = `id`, member = the member's name, else its
id) whose fingerprints of type MD5, SHA1, SHA256 and PDQ become rows; other fingerprint types
(PDNA = PhotoDNA, TMK_PDQF, VIDENTIFIER, NETCLEAN, ...) or fingerprints given only by
reference (`href`) are skipped, counted by type. An entry is the whole current state of its
id: values it no longer lists are removed. A `deletedImage`/`deletedVideo` is a `Deletion`.
`classification` is read as Vigil classification text (A1..B2; anything else a label).
Feedback is not imported.

Read with `xml.etree.ElementTree.iterparse` through defusedxml with DTDs forbidden: a
DOCTYPE (and so any entity declaration: billion laughs, external entities) makes the whole
file malformed. Entries are removed from the tree as soon as they are read, so memory stays
bounded by one entry.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import defusedxml.ElementTree as DET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from vigil.banks.classification import parse_classification
from vigil.banks.formats.base import (
    Deletion,
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
)

ROOT = "queryResult"
CONTAINERS = frozenset({"images", "videos"})
ENTRIES = frozenset({"image", "video"})
DELETIONS = frozenset({"deletedImage", "deletedVideo"})
FINGERPRINTS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "pdq": "pdq"}
_NAMES = {"pdna": "PhotoDNA fingerprint"}
_WHY = {"pdna": " (PhotoDNA needs a licensed plug-in)"}


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def parse(stream: io.BufferedReader, options: ParseOptions) -> Iterator[Record]:
    """Records of a hash-sharing entries document; see the module docstring."""
    index = 0
    stack: list[ET.Element] = []
    try:
        for event, element in DET.iterparse(
            stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True
        ):
            if event == "start":
                if not stack and _local(element.tag) != ROOT:
                    raise ImportFileError(
                        f"the root element is <{excerpt(_local(element.tag), 30)[1:-1]}>, not"
                        f" <{ROOT}>: not a hash-sharing entries document"
                    )
                stack.append(element)
                continue
            stack.pop()
            parent = stack[-1] if stack else None
            tag = _local(element.tag)
            in_container = parent is not None and _local(parent.tag) in CONTAINERS
            if in_container and (tag in ENTRIES or tag in DELETIONS):
                index += 1
                yield from _entry(index, element, tag in DELETIONS, options)
            elif any(_local(open_.tag) in ENTRIES | DELETIONS for open_ in stack):
                continue  # part of an entry still being read
            if parent is not None:
                parent.remove(element)  # bounded memory: drop what has been read
    except ImportFileError:
        raise
    except DefusedXmlException:
        raise ImportFileError(
            f"after entry {index}: the XML declares a DTD or entities, which is refused"
        ) from None
    except ET.ParseError as error:
        raise ImportFileError(f"after entry {index}: malformed XML ({error})") from None
    except (LookupError, ValueError) as error:  # an unknown or unsupported encoding
        raise ImportFileError(f"after entry {index}: unreadable XML ({error})") from None


def _text(element: ET.Element, child: str) -> str | None:
    for item in element:
        if _local(item.tag) == child:
            return (item.text or "").strip()
    return None


def _member(element: ET.Element) -> str | None:
    for item in element:
        if _local(item.tag) == "member":
            return check_text("member", (item.text or "").strip() or item.get("id"))
    return None


def _entry(
    index: int, element: ET.Element, deleted: bool, options: ParseOptions
) -> Iterator[Record]:
    try:
        external_id = check_text("id", _text(element, "id"))
        member = _member(element)
        if external_id is None:
            raise ValueError("entry without an id")
        if deleted:
            yield Deletion(index, external_id)
            return
        classification = parse_classification(
            _text(element, "classification"), vics_region=options.vics_region
        )
    except ValueError as error:
        yield Rejected(index, str(error))
        return

    rows: dict[tuple[str, str], Row] = {}
    rejected = False
    skipped = False
    fingerprints = next((c for c in element if _local(c.tag) == "fingerprints"), None)
    for item in fingerprints if fingerprints is not None else ():
        name = _local(item.tag)
        signal_type = FINGERPRINTS.get(name.lower())
        text = (item.text or "").strip()
        if signal_type is None or not text:
            skipped = True
            why = _NAMES.get(name.lower(), f"fingerprint type {excerpt(name, 24)}")
            by_reference = " given by reference" if not text and item.get("href") else ""
            yield Skipped(index, f"{why}{by_reference} not supported{_WHY.get(name.lower(), '')}")
            continue
        try:
            value = normalise_value(signal_type, text, options.limits)
        except ValueError as error:
            rejected = True
            yield Rejected(index, f"{name}: {error}")
            continue
        rows.setdefault(
            (signal_type, value),
            Row(
                index,
                signal_type,
                value,
                classification,
                external_id=external_id,
                member=member,
            ),
        )
    if rows:
        yield Entry(index, external_id, tuple(rows.values()), authoritative=not rejected)
    elif skipped and not rejected:
        # Only fingerprints Vigil does not use: still the entry's current state, so values
        # the bank held for it (from an earlier version of the entry) are removed.
        yield Entry(index, external_id, (), authoritative=True)
    elif not rejected:
        yield Rejected(index, "entry without fingerprints")
