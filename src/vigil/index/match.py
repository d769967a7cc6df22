"""`MatchIndex`: one index per signal type, behind one small, lock-protected interface.

The pipeline builds it from bank entries (entry ids are the banks' entry ids, unique across
signal types), keeps it in step with bank changes through `add`, `remove` and `set_enabled`,
and looks up at the largest threshold any bank uses, then applies each bank's own threshold
to the returned distances.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from vigil.index._bits import Ids, as_ids
from vigil.index._snapshot import SnapshotError
from vigil.index.exact import DigestInput, ExactIndex
from vigil.index.pdq import PDQIndex
from vigil.index.vpdq import FramesInput, VPDQIndex
from vigil.signals.vpdq import (
    COMPARED_MATCH_PERCENT,
    DISTANCE_THRESHOLD,
    QUERY_MATCH_PERCENT,
    VpdqFrame,
    parse_vpdq,
)

EXACT_SIGNAL_TYPES: Final = {"md5": 16, "sha1": 20, "sha256": 32}
"""Exact signal types and their digest sizes in bytes."""
SIGNAL_TYPES: Final = ("md5", "sha1", "sha256", "pdq", "vpdq")
DEFAULT_PDQ_THRESHOLD: Final = 31
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

VpdqValue = str | Sequence[VpdqFrame] | FramesInput
"""A video's vPDQ: canonical text, `VpdqFrame`s, or (hashes, qualities)."""


@dataclass(frozen=True, slots=True)
class IndexMatch:
    """One entry found for one query.

    `distance`: 0 for exact types; the Hamming distance for PDQ (the smallest over the
    variants for a dihedral lookup, `variant` telling which); for vPDQ
    `round(100 - compared_match_percent)`, as `VPDQSignal.distance`, with both shares given.
    """

    entry_id: int
    distance: int
    variant: int | None = None
    query_match_percent: float | None = None
    compared_match_percent: float | None = None


def _frames(value: VpdqValue) -> FramesInput:
    return parse_vpdq(value) if isinstance(value, str) else value


class MatchIndex:
    """Indexes for md5, sha1, sha256, pdq and vpdq, keyed by signal type name.

    Thread-safe: every call holds one lock (lookups are short; bulk adds hold it longer).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._exact = {name: ExactIndex(size) for name, size in EXACT_SIGNAL_TYPES.items()}
        self._pdq = PDQIndex()
        self._vpdq = VPDQIndex()

    # -- access to the per-type indexes --------------------------------------------------

    @property
    def pdq(self) -> PDQIndex:
        return self._pdq

    @property
    def vpdq(self) -> VPDQIndex:
        return self._vpdq

    def exact(self, signal_type: str) -> ExactIndex:
        try:
            return self._exact[signal_type]
        except KeyError:
            raise KeyError(f"not an exact signal type: {signal_type!r}") from None

    def _check(self, signal_type: str) -> str:
        if signal_type not in SIGNAL_TYPES:
            raise KeyError(f"unknown signal type {signal_type!r}; known: {', '.join(SIGNAL_TYPES)}")
        return signal_type

    def _indexes(self) -> list[ExactIndex | PDQIndex | VPDQIndex]:
        return [*self._exact.values(), self._pdq, self._vpdq]

    # -- updating ----------------------------------------------------------------------

    def add(
        self, entry_id: int, signal_type: str, value: str | VpdqValue, *, enabled: bool = True
    ) -> None:
        """Add (or replace) one entry. `value`: hex for md5/sha1/sha256/pdq, vPDQ text or
        frames for vpdq. An id held under another signal type moves to this one."""
        self.add_many(signal_type, [entry_id], [value], enabled=enabled)

    def add_many(
        self,
        signal_type: str,
        entry_ids: Ids,
        values: Sequence[Any] | NDArray[np.uint8],
        *,
        enabled: bool = True,
    ) -> None:
        """Add (or replace) many entries of one signal type at once (the fast path for
        building from a bank: one segment per large batch)."""
        kind = self._check(signal_type)
        ids = as_ids(entry_ids)
        with self._lock:
            for other in SIGNAL_TYPES:
                if other != kind:
                    self._index(other).remove(ids)
            if kind == "pdq":
                self._pdq.add(ids, values, enabled=enabled)
            elif kind == "vpdq":
                self._vpdq.add_many(ids, [_frames(v) for v in values], enabled=enabled)
            else:
                digests: DigestInput = (
                    values
                    if isinstance(values, np.ndarray)
                    else [str(v).strip().lower() for v in values]
                )
                self._exact[kind].add(ids, digests, enabled=enabled)

    def _index(self, signal_type: str) -> ExactIndex | PDQIndex | VPDQIndex:
        if signal_type == "pdq":
            return self._pdq
        if signal_type == "vpdq":
            return self._vpdq
        return self._exact[signal_type]

    def remove(self, entry_ids: int | Ids) -> int:
        """Remove entries of any signal type (unknown ids ignored); returns how many."""
        ids = as_ids([entry_ids] if isinstance(entry_ids, int | np.integer) else entry_ids)
        with self._lock:
            return sum(index.remove(ids) for index in self._indexes())

    def set_enabled(self, entry_ids: int | Ids, enabled: bool) -> int:
        """Enable or disable entries of any signal type; returns how many were found."""
        ids = as_ids([entry_ids] if isinstance(entry_ids, int | np.integer) else entry_ids)
        with self._lock:
            return sum(index.set_enabled(ids, enabled) for index in self._indexes())

    def compact(self) -> None:
        """Fold the PDQ indexes' recent additions into single segments (after bulk loads)."""
        with self._lock:
            self._pdq.compact()
            self._vpdq.frame_index.compact()

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return sum(len(index) for index in self._indexes())

    def counts(self) -> dict[str, int]:
        """Entries held per signal type."""
        with self._lock:
            return {name: len(self._index(name)) for name in SIGNAL_TYPES}

    def lookup(
        self,
        signal_type: str,
        values: Sequence[Any] | NDArray[np.uint8],
        threshold: int | None = None,
        *,
        compared_share: float = COMPARED_MATCH_PERCENT,
        query_share: float = QUERY_MATCH_PERCENT,
    ) -> list[list[IndexMatch]]:
        """Per query value, the enabled entries matching it, nearest first.

        md5/sha1/sha256: hex digests (threshold ignored). pdq: hex hashes or an n x 32 uint8
        array; every entry within `threshold` (default 31). vpdq: videos (text or frames);
        `threshold` is the frame distance (default 31), `compared_share`/`query_share` the
        video shares.
        """
        kind = self._check(signal_type)
        with self._lock:
            if kind == "pdq":
                limit = DEFAULT_PDQ_THRESHOLD if threshold is None else threshold
                return [
                    [IndexMatch(entry, distance) for entry, distance in hits]
                    for hits in self._pdq.search(values, limit)
                ]
            if kind == "vpdq":
                limit = DISTANCE_THRESHOLD if threshold is None else threshold
                found = self._vpdq.search_many(
                    [_frames(v) for v in values], limit, compared_share, query_share
                )
                return [
                    [
                        IndexMatch(
                            hit.video_id,
                            round(100.0 - hit.compared_match_percent),
                            None,
                            hit.query_match_percent,
                            hit.compared_match_percent,
                        )
                        for hit in hits
                    ]
                    for hits in found
                ]
            digests: DigestInput = (
                values
                if isinstance(values, np.ndarray)
                else [str(v).strip().lower() for v in values]
            )
            return [
                [IndexMatch(entry, 0) for entry in hits]
                for hits in self._exact[kind].lookup(digests)
            ]

    def lookup_dihedral(
        self,
        variants: Sequence[Sequence[str]] | NDArray[np.uint8],
        threshold: int | None = None,
    ) -> list[list[IndexMatch]]:
        """PDQ lookup of each query's variants (e.g. the 8 dihedral hashes): per query, each
        entry once, at its smallest distance, with the variant index that gave it."""
        limit = DEFAULT_PDQ_THRESHOLD if threshold is None else threshold
        with self._lock:
            return [
                [IndexMatch(entry, distance, variant) for entry, distance, variant in hits]
                for hits in self._pdq.search_dihedral(variants, limit)
            ]

    # -- snapshots ---------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write one snapshot file per signal type and a manifest naming them, then remove
        the previous generation: a crash at any point leaves a loadable directory."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        generation = secrets.token_hex(8)
        with self._lock:
            files = {}
            for name in SIGNAL_TYPES:
                file_name = f"{name}.{generation}.vidx"
                self._index(name).save(folder / file_name)
                files[name] = file_name
        previous = _read_manifest(folder) if (folder / MANIFEST).exists() else {}
        manifest = {"format": MANIFEST_FORMAT, "generation": generation, "files": files}
        temporary = folder / f".{MANIFEST}.{generation}.tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, folder / MANIFEST)
        for old in previous.values():
            if old not in files.values():
                (folder / old).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> MatchIndex:
        """Load a directory written by `save`; SnapshotError when anything is missing or
        damaged."""
        folder = Path(directory)
        files = _read_manifest(folder)
        index = cls()
        for name in SIGNAL_TYPES:
            if name not in files:
                raise SnapshotError(f"{folder / MANIFEST}: no snapshot for {name!r}")
            path = folder / files[name]
            if name == "pdq":
                index._pdq = PDQIndex.load(path)
            elif name == "vpdq":
                index._vpdq = VPDQIndex.load(path)
            else:
                loaded = ExactIndex.load(path)
                if loaded.digest_size != EXACT_SIGNAL_TYPES[name]:
                    raise SnapshotError(f"{path}: digest size does not fit {name!r}")
                index._exact[name] = loaded
        return index


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SnapshotError(f"cannot read {path}: {error.strerror}") from error
    except ValueError as error:
        raise SnapshotError(f"{path}: not a valid manifest") from error
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise SnapshotError(f"{path}: unknown manifest format")
    files = document.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and Path(v).name == v and v not in ("", ".", "..")
        for k, v in files.items()
    ):
        raise SnapshotError(f"{path}: malformed manifest")
    return files
