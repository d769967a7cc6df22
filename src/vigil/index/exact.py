"""Exact index for cryptographic digests (MD5, SHA-1, SHA-256): value -> entry ids.

A **main** part of arrays sorted by the digest's first 8 bytes (looked up by binary search,
then compared in full), with ids sorted separately for O(log n) removal and enabling, plus
a **delta** of recent additions in dictionaries. Removal marks a tombstone; disabling sets a
flag; both are visible to the next lookup. When the delta outgrows an eighth of the main part
(at least `delta_capacity`) the two are merged by one sort: O(n log n) every n/8 additions,
so O(log n) amortised per addition. About 30 + digest-size bytes per entry in the main part.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vigil.index._bits import Ids, as_ids, hex_to_bytes
from vigil.index._snapshot import SnapshotError, read_snapshot, write_snapshot
from vigil.index.pdq import DISABLED, REMOVED

SNAPSHOT_KIND = "vigil.exact-index"

DigestInput = NDArray[np.uint8] | Sequence[str]
"""Digests as hex texts or as an n x digest_size uint8 array."""


def _prefixes(values: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """The first 8 bytes of each digest as an unsigned integer (sort and search key)."""
    head = np.ascontiguousarray(values[:, :8])
    return head.view(np.dtype(">u8")).reshape(-1).astype(np.uint64)


class ExactIndex:
    """Exact digests of one size (16 MD5, 20 SHA-1, 32 SHA-256 bytes) mapped to entry ids.

    Each id holds one value; several ids may hold the same value (the same file in several
    banks). Adding an id that is present replaces its value.
    """

    def __init__(self, digest_size: int, *, delta_capacity: int = 65536) -> None:
        if not 8 <= digest_size <= 64:
            raise ValueError("digest_size must be 8-64 bytes")
        if delta_capacity < 1:
            raise ValueError("delta_capacity must be >= 1")
        self.digest_size = digest_size
        self._delta_capacity = delta_capacity
        self._set_main(
            np.zeros(0, np.int64),
            np.zeros((0, digest_size), np.uint8),
            np.zeros(0, np.uint8),
        )
        self._delta_values: dict[int, bytes] = {}
        self._delta_enabled: dict[int, bool] = {}
        self._delta_ids: dict[bytes, set[int]] = {}

    def _set_main(
        self, ids: NDArray[np.int64], values: NDArray[np.uint8], flags: NDArray[np.uint8]
    ) -> None:
        keys = _prefixes(values)
        order = np.argsort(keys, kind="stable")
        self._ids = np.ascontiguousarray(ids[order])
        self._values = np.ascontiguousarray(values[order])
        self._flags = np.array(flags[order], dtype=np.uint8)
        self._keys = keys[order]
        by_id = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[by_id]
        self._id_rows = by_id.astype(np.int64)
        self._removed = int(np.count_nonzero(self._flags & REMOVED))

    def _digests(self, values: DigestInput) -> NDArray[np.uint8]:
        if isinstance(values, np.ndarray):
            if values.dtype != np.uint8 or values.ndim != 2 or values.shape[1] != self.digest_size:
                raise ValueError(f"digests must be an n x {self.digest_size} uint8 array")
            return np.ascontiguousarray(values)
        if isinstance(values, str):
            raise TypeError("expected a sequence of hex texts, got a single string")
        return hex_to_bytes(list(values), self.digest_size)

    def _main_rows(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Rows of the main part holding a live (not removed) entry of each id."""
        if not self._sorted_ids.size:
            return np.zeros(0, np.int64)
        where = np.searchsorted(self._sorted_ids, ids)
        where[where >= self._sorted_ids.size] = 0
        hit = self._sorted_ids[where] == ids
        rows = self._id_rows[where[hit]]
        live: NDArray[np.int64] = rows[(self._flags[rows] & REMOVED) == 0]
        return live

    # -- updating ----------------------------------------------------------------------

    def add(self, ids: Ids, values: DigestInput, *, enabled: bool = True) -> None:
        """Add (or replace) digests; visible to the next lookup."""
        entry_ids = as_ids(ids)
        digests = self._digests(values)
        if digests.shape[0] != entry_ids.size:
            raise ValueError(f"{entry_ids.size} ids for {digests.shape[0]} values")
        if entry_ids.size > 1 and np.unique(entry_ids).size != entry_ids.size:
            raise ValueError("the same id appears twice in one add")
        self.remove(entry_ids)
        if entry_ids.size >= max(self._delta_capacity, self._ids.size // 8):
            self._merge(entry_ids, digests, enabled)
            return
        for entry, raw in zip(entry_ids.tolist(), (row.tobytes() for row in digests), strict=True):
            self._delta_values[entry] = raw
            self._delta_enabled[entry] = enabled
            self._delta_ids.setdefault(raw, set()).add(entry)
        if len(self._delta_values) > max(self._delta_capacity, self._ids.size // 8):
            self._merge(np.zeros(0, np.int64), np.zeros((0, self.digest_size), np.uint8), enabled)

    def _merge(self, ids: NDArray[np.int64], digests: NDArray[np.uint8], enabled: bool) -> None:
        """Rebuild the main part from its live rows, the delta and `ids`/`digests`."""
        keep = np.flatnonzero((self._flags & REMOVED) == 0)
        delta_ids = np.fromiter(self._delta_values, dtype=np.int64, count=len(self._delta_values))
        delta_values = np.frombuffer(b"".join(self._delta_values.values()), dtype=np.uint8).reshape(
            -1, self.digest_size
        )
        delta_flags = np.array(
            [0 if on else DISABLED for on in self._delta_enabled.values()], dtype=np.uint8
        )
        new_flags = np.full(ids.size, 0 if enabled else DISABLED, dtype=np.uint8)
        self._set_main(
            np.concatenate([self._ids[keep], delta_ids, ids]),
            np.concatenate([self._values[keep], delta_values, digests]),
            np.concatenate([self._flags[keep], delta_flags, new_flags]),
        )
        self._delta_values.clear()
        self._delta_enabled.clear()
        self._delta_ids.clear()

    def remove(self, ids: Ids) -> int:
        """Remove entries (unknown ids ignored); returns how many were removed."""
        if not len(self):
            return 0
        entry_ids = np.unique(as_ids(ids))
        removed = 0
        for entry in entry_ids.tolist() if self._delta_values else ():
            raw = self._delta_values.pop(entry, None)
            if raw is not None:
                del self._delta_enabled[entry]
                holders = self._delta_ids[raw]
                holders.discard(entry)
                if not holders:
                    del self._delta_ids[raw]
                removed += 1
        rows = self._main_rows(entry_ids)
        if rows.size:
            self._flags[rows] |= REMOVED
            self._removed += int(rows.size)
            removed += int(rows.size)
            if self._removed * 2 > self._ids.size:
                self._merge(np.zeros(0, np.int64), np.zeros((0, self.digest_size), np.uint8), True)
        return removed

    def set_enabled(self, ids: Ids, enabled: bool) -> int:
        """Enable or disable entries (unknown ids ignored); returns how many were found."""
        entry_ids = np.unique(as_ids(ids))
        found = 0
        for entry in entry_ids.tolist() if self._delta_values else ():
            if entry in self._delta_enabled:
                self._delta_enabled[entry] = enabled
                found += 1
        rows = self._main_rows(entry_ids)
        if enabled:
            self._flags[rows] &= ~DISABLED
        else:
            self._flags[rows] |= DISABLED
        return found + int(rows.size)

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._ids.size - self._removed + len(self._delta_values)

    def __contains__(self, entry_id: object) -> bool:
        return self.get(entry_id) is not None if isinstance(entry_id, int | np.integer) else False

    def get(self, entry_id: object) -> str | None:
        """The value of an entry as hex, or None when absent."""
        if not isinstance(entry_id, int | np.integer):
            return None
        raw = self._delta_values.get(int(entry_id))
        if raw is not None:
            return raw.hex()
        rows = self._main_rows(np.array([entry_id], dtype=np.int64))
        return self._values[int(rows[0])].tobytes().hex() if rows.size else None

    def lookup(self, values: DigestInput) -> list[list[int]]:
        """Per query value, the ids of the enabled entries holding it, sorted."""
        digests = self._digests(values)
        results: list[list[int]] = [[] for _ in range(digests.shape[0])]
        if self._ids.size:
            keys = _prefixes(digests)
            low = np.searchsorted(self._keys, keys, side="left")
            high = np.searchsorted(self._keys, keys, side="right")
            for query in np.flatnonzero(high > low).tolist():
                rows = np.arange(low[query], high[query])
                same = np.all(self._values[rows] == digests[query], axis=1)
                rows = rows[same & (self._flags[rows] == 0)]
                results[query].extend(self._ids[rows].tolist())
        if self._delta_ids:
            enabled = self._delta_enabled
            for query, row in enumerate(digests):
                holders = self._delta_ids.get(row.tobytes())
                if holders:
                    results[query].extend(entry for entry in holders if enabled[entry])
        for result in results:
            result.sort()
        return results

    @property
    def nbytes(self) -> int:
        """Approximate resident bytes (arrays, plus ~200 per delta entry)."""
        arrays = (self._ids, self._values, self._flags, self._keys, self._sorted_ids, self._id_rows)
        return sum(a.nbytes for a in arrays) + 200 * len(self._delta_values)

    # -- snapshots ---------------------------------------------------------------------

    def snapshot_arrays(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        keep = np.flatnonzero((self._flags & REMOVED) == 0)
        delta_ids = np.fromiter(self._delta_values, dtype=np.int64, count=len(self._delta_values))
        delta_values = np.frombuffer(b"".join(self._delta_values.values()), dtype=np.uint8).reshape(
            -1, self.digest_size
        )
        delta_flags = np.array(
            [0 if on else DISABLED for on in self._delta_enabled.values()], dtype=np.uint8
        )
        arrays = {
            "ids": np.concatenate([self._ids[keep], delta_ids]),
            "values": np.concatenate([self._values[keep], delta_values]),
            "flags": np.concatenate([self._flags[keep], delta_flags]),
        }
        meta = {"digest_size": self.digest_size, "delta_capacity": self._delta_capacity}
        return meta, arrays

    @classmethod
    def from_snapshot_arrays(
        cls, meta: dict[str, Any], arrays: dict[str, NDArray[Any]], source: str = "snapshot"
    ) -> ExactIndex:
        try:
            index = cls(int(meta["digest_size"]), delta_capacity=int(meta["delta_capacity"]))
            ids, values, flags = arrays["ids"], arrays["values"], arrays["flags"]
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(f"{source}: inconsistent exact index snapshot ({error})") from error
        n = ids.shape[0] if ids.ndim == 1 else -1
        if (
            ids.dtype != np.int64
            or n < 0
            or values.dtype != np.uint8
            or values.shape != (n, index.digest_size)
            or flags.dtype != np.uint8
            or flags.shape != (n,)
        ):
            raise SnapshotError(f"{source}: exact index arrays have inconsistent shapes")
        if np.unique(ids).size != n:
            raise SnapshotError(f"{source}: exact index snapshot repeats an id")
        index._set_main(ids, values, flags & DISABLED)
        return index

    def save(self, path: str | os.PathLike[str]) -> None:
        meta, arrays = self.snapshot_arrays()
        write_snapshot(path, SNAPSHOT_KIND, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExactIndex:
        meta, arrays = read_snapshot(path, SNAPSHOT_KIND)
        return cls.from_snapshot_arrays(meta, arrays, str(path))
