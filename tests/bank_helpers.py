"""Synthetic hash-list material for the banks tests.

Every value is random hex made here; nothing comes from a real hash list.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from typing import Any

LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}


def rand_hex(rng: random.Random, signal_type: str) -> str:
    return f"{rng.getrandbits(LENGTHS[signal_type] * 4):0{LENGTHS[signal_type]}x}"


def rand_vpdq(rng: random.Random, frames: int = 3) -> str:
    return "".join(
        f"{i},{rng.randint(50, 100)},{rand_hex(rng, 'pdq')},{i * 1.0:.3f}\n" for i in range(frames)
    )


def vics_json(records: Iterable[dict[str, Any]], *, case: bool = False, bom: bool = False) -> bytes:
    """A VICS hash set (or a case file holding the records) as UTF-8 bytes."""
    items = list(records)
    if case:
        document: dict[str, Any] = {
            "odata.metadata": "http://example.invalid/ProjectVic/DataModels/2.0.xml#Cases",
            "value": [{"CaseID": "synthetic-case", "Media": items, "SourceApplicationName": "t"}],
        }
    else:
        document = {
            "odata.metadata": "http://example.invalid/ProjectVic/DataModels/2.0.xml#Media",
            "value": items,
        }
    data = json.dumps(document).encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def ncmec_entry(
    entry_id: str,
    fingerprints: Sequence[tuple[str, str]],
    *,
    classification: str | None = "A1",
    member: str = "Synthetic Member",
    kind: str = "image",
) -> str:
    prints = "".join(f"<{tag}>{value}</{tag}>" for tag, value in fingerprints)
    cls = f"<classification>{classification}</classification>" if classification else ""
    return (
        f'<{kind}><member id="7">{member}</member><timestamp>2024-01-01T00:00:00Z</timestamp>'
        f"<id>{entry_id}</id>{cls}<fingerprints>{prints}</fingerprints></{kind}>"
    )


def ncmec_deleted(entry_id: str, kind: str = "image") -> str:
    tag = "deletedImage" if kind == "image" else "deletedVideo"
    return f'<{tag}><member id="7">Synthetic Member</member><id>{entry_id}</id></{tag}>'


def ncmec_xml(images: Iterable[str] = (), videos: Iterable[str] = ()) -> bytes:
    image_part = "".join(images)
    video_part = "".join(videos)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">\n'
        f'<images count="0" maxTimestamp="2024-01-01T00:00:00Z">{image_part}</images>\n'
        f'<videos count="0" maxTimestamp="2024-01-01T00:00:00Z">{video_part}</videos>\n'
        "<paging><next>/v2/entries?from=x&amp;start=1</next></paging>\n"
        "</queryResult>\n"
    ).encode()
