"""An exact PDQ Hamming-distance index: multi-index hashing with a provable probe plan.

Every stored hash within the threshold of a query is returned, for every threshold 0-256
(see `docs/index.md` for the argument). The structure:

- a list of immutable **segments**, each holding its rows sorted by entry id (ids, the hashes
  as 4 x 64-bit words, a flag byte per row) and `tables` multi-index hash tables: table `i`
  keys every row by bits `[i*width, (i+1)*width)` of its hash, stored as one CSR array of
  row numbers (`rows`) with bucket offsets (`offsets`, `tables << width` buckets);
- a small **delta** of recent additions, searched by brute force;
- flags per row: removed (a tombstone) and disabled, so removing, disabling and enabling
  entries are visible to the next lookup without rebuilding anything.

Search, per segment, at threshold `t`: by the generalised pigeonhole principle, if
`d(q, x) <= t` and radii `r_i` satisfy `sum(r_i + 1) >= t + 1`, then some table `i` has
`d_i(q, x) <= r_i` (else `d >= sum d_i >= sum(r_i + 1) > t`). So probing, in every table
`i`, each bucket whose key is within `r_i` bits of the query's substring finds every hash
within `t`; each candidate is verified with a full 256-bit popcount. The radii are spread
evenly (`allocate_radii`), which minimises probes. When the estimated cost of probing
exceeds that of a linear scan (very large thresholds on small segments), the segment is
scanned instead: the same answer, by brute force.

Updates: `add` writes to the delta (O(1) amortised per hash, plus the upsert check of the id
in each segment: O(log n) each); when the delta is full it is sealed into a segment, and the
last segments are merged while the newer is at least a quarter of the older, so segment
sizes fall geometrically (at most ~log4(n / delta) + 1 segments) and a hash is rebuilt
O(log n) times over its life (amortised). `remove` and `set_enabled` are O(log n) per id per
segment (binary search on the sorted ids); a segment with more than half its rows removed is
rebuilt without them.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from vigil.index._bits import (
    PDQ_BYTES,
    PDQ_WORDS,
    HashInput,
    Ids,
    Words,
    as_ids,
    pdq_array,
    to_words,
    words_to_bytes,
)
from vigil.index._snapshot import SnapshotError, read_snapshot, write_snapshot

REMOVED = np.uint8(1)
"""Flag: the row is a tombstone (its entry was removed or replaced)."""
DISABLED = np.uint8(2)
"""Flag: the entry is kept but not matched until enabled again."""

HASH_BITS = 256
MAX_THRESHOLD = HASH_BITS
SNAPSHOT_KIND = "vigil.pdq-index"

# Cost model (nanoseconds on one core, measured with benchmarks/index.py), used only to
# choose between probing and scanning and to pick a table width: never for correctness.
_PROBE_NS = 21.0
_CANDIDATE_NS = 45.0
_SCAN_NS = 12.0
_SEARCH_OVERHEAD_NS = 45_000.0
_MIN_TABLE_ROWS = 4096
"""Segments smaller than this have no tables: a scan is as fast."""
_OFFSET_BYTES_PER_HASH = 40
"""Memory bound on a segment's bucket offsets (uint32, `tables << width` of them)."""
_MAX_PROBES = 1 << 21
_PROBE_BUDGET = 1 << 18
"""Probes handled per vectorised step of a batch (bounds temporary memory)."""
_SCAN_BLOCK = 1 << 15
_MAX_ROWS = (1 << 32) - 1


class SearchResult(NamedTuple):
    """Flat search results, sorted by query, then distance, then id."""

    query: NDArray[np.int64]
    """Index of the query (row of the query array)."""
    ids: NDArray[np.int64]
    distance: NDArray[np.int32]


def allocate_radii(tables: int, threshold: int) -> tuple[int, ...]:
    """Per-table search radii with `sum(r + 1) == threshold + 1` (-1: table not probed).

    The generalised pigeonhole principle makes any such allocation exact; an even spread
    probes the fewest buckets, as the number of keys within radius r grows convexly in r.
    """
    if tables < 1 or threshold < 0:
        raise ValueError("need at least one table and a threshold >= 0")
    need = threshold + 1
    if need <= tables:
        return (0,) * need + (-1,) * (tables - need)
    base, extra = divmod(need, tables)
    return tuple(base - 1 + (1 if i < extra else 0) for i in range(tables))


def ball_size(width: int, radius: int) -> int:
    """Number of `width`-bit keys within `radius` bits of a given key."""
    if radius < 0:
        return 0
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


@functools.lru_cache(maxsize=256)
def flip_masks(width: int, radius: int) -> NDArray[np.int64]:
    """Every `width`-bit value with at most `radius` bits set (XOR masks of the probes)."""
    masks = [np.zeros(1, dtype=np.int64)]
    current = np.zeros(1, dtype=np.int64)
    highest = np.full(1, -1, dtype=np.int64)
    for _ in range(min(radius, width)):
        grown: list[NDArray[np.int64]] = []
        grown_high: list[NDArray[np.int64]] = []
        for bit in range(width):
            base = current[highest < bit]
            if base.size:
                grown.append(base | np.int64(1 << bit))
                grown_high.append(np.full(base.size, bit, dtype=np.int64))
        current = np.concatenate(grown)
        highest = np.concatenate(grown_high)
        masks.append(current)
    result = np.concatenate(masks)
    result.setflags(write=False)
    return result


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """The buckets to probe at one threshold: `keys = substrings[tables] ^ xor`."""

    radii: tuple[int, ...]
    tables: NDArray[np.intp]
    """Table of each probe."""
    xor: NDArray[np.int64]
    """Flip mask of each probe, with the table number in the bits above the key."""

    @property
    def size(self) -> int:
        return int(self.tables.size)


@functools.lru_cache(maxsize=512)
def probe_plan(width: int, tables: int, threshold: int) -> ProbePlan | None:
    """The exact probe plan, or None when it would exceed the probe limit."""
    radii = allocate_radii(tables, threshold)
    if sum(ball_size(width, r) for r in radii) > _MAX_PROBES:
        return None
    table_of: list[NDArray[np.intp]] = []
    xors: list[NDArray[np.int64]] = []
    for table, radius in enumerate(radii):
        if radius < 0:
            continue
        masks = flip_masks(width, radius)
        table_of.append(np.full(masks.size, table, dtype=np.intp))
        xors.append(masks | np.int64(table << width))
    plan = ProbePlan(radii, np.concatenate(table_of), np.concatenate(xors))
    plan.tables.setflags(write=False)
    plan.xor.setflags(write=False)
    return plan


def probe_cost(width: int, tables: int, threshold: int, rows: int) -> float:
    """Estimated nanoseconds of one probed search (uniformly spread hashes)."""
    probes = sum(ball_size(width, r) for r in allocate_radii(tables, threshold))
    candidates = probes * rows / float(1 << width)
    return _SEARCH_OVERHEAD_NS + probes * _PROBE_NS + candidates * _CANDIDATE_NS


def choose_width(rows: int, threshold: int = 31) -> int:
    """Substring width minimising the estimated cost at `threshold` within the memory bound;
    0 (no tables) for small segments."""
    if rows < _MIN_TABLE_ROWS:
        return 0
    budget = max(_OFFSET_BYTES_PER_HASH * rows, 1 << 20)
    best, best_cost = 0, math.inf
    for width in range(8, 33):
        tables = HASH_BITS // width
        if 4 * (tables << width) > budget:
            break
        cost = probe_cost(width, tables, threshold, rows)
        if cost < best_cost:
            best, best_cost = width, cost
    return best


def substrings(words: Words, width: int, tables: int) -> NDArray[np.int64]:
    """n x tables array of the substring keys: bits [i*width, (i+1)*width) of each hash,
    bit p being bit p % 64 of word p // 64."""
    out = np.empty((words.shape[0], tables), dtype=np.int64)
    for table in range(tables):
        out[:, table] = _extract(words, table * width, width)
    return out


def _extract(words: Words, start: int, width: int) -> NDArray[np.uint64]:
    """Bits [start, start + width) of each row of `words` (n x 4)."""
    return _extract_columns(words.T, start, width)


def _extract_columns(columns: Words, start: int, width: int) -> NDArray[np.uint64]:
    """`_extract` on the transposed form (4 x n; faster when each word is contiguous)."""
    word, offset = divmod(start, 64)
    value = columns[word] >> np.uint64(offset)
    if offset + width > 64:
        value |= columns[word + 1] << np.uint64(64 - offset)
    value &= np.uint64((1 << width) - 1)
    result: NDArray[np.uint64] = value
    return result


def _query_substrings(words: Words, width: int, tables: int) -> NDArray[np.int64]:
    if words.shape[0] > 2:
        return substrings(words, width, tables)
    mask = (1 << width) - 1
    out = np.empty((words.shape[0], tables), dtype=np.int64)
    for row, query in enumerate(words.tolist()):
        big = query[0] | query[1] << 64 | query[2] << 128 | query[3] << 192
        out[row] = [(big >> (table * width)) & mask for table in range(tables)]
    return out


def popcount_rows(x: Words) -> NDArray[np.uint32]:
    """Bits set in each row of an n x 4 uint64 array (0-256).

    Sums the four per-word counts with a SWAR trick on their uint8 bytes (viewed as one
    uint32 per row), about 3 times faster than `sum(axis=1)` over a length-4 axis."""
    counts = np.bitwise_count(np.ascontiguousarray(x)).view(np.uint32).reshape(-1)
    pairs = (counts & np.uint32(0x00FF00FF)) + ((counts >> np.uint32(8)) & np.uint32(0x00FF00FF))
    total: NDArray[np.uint32] = (pairs & np.uint32(0xFFFF)) + (pairs >> np.uint32(16))
    return total


_EMPTY_I64 = np.zeros(0, dtype=np.int64)
_EMPTY_I32 = np.zeros(0, dtype=np.int32)


def scan(
    words: Words, flags: NDArray[np.uint8], queries: Words, threshold: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
    """Brute force: (query index, row, distance) of every live row within `threshold`."""
    n = words.shape[0]
    found_q: list[NDArray[np.int64]] = []
    found_r: list[NDArray[np.int64]] = []
    found_d: list[NDArray[np.int32]] = []
    if n == 0 or queries.shape[0] == 0:
        return _EMPTY_I64, _EMPTY_I64, _EMPTY_I32
    if n <= _SCAN_BLOCK:
        step = max(1, _SCAN_BLOCK // n)
        for start in range(0, queries.shape[0], step):
            block = queries[start : start + step]
            dist = popcount_rows(
                (block[:, None, :] ^ words[None, :, :]).reshape(-1, PDQ_WORDS)
            ).reshape(block.shape[0], n)
            q, r = np.nonzero(dist <= threshold)
            found_q.append(q.astype(np.int64) + start)
            found_r.append(r.astype(np.int64))
            found_d.append(dist[q, r].astype(np.int32))
    else:
        for index in range(queries.shape[0]):
            query = queries[index]
            for start in range(0, n, _SCAN_BLOCK):
                dist = popcount_rows(words[start : start + _SCAN_BLOCK] ^ query)
                r = np.flatnonzero(dist <= threshold)
                if r.size:
                    found_q.append(np.full(r.size, index, dtype=np.int64))
                    found_r.append(r.astype(np.int64) + start)
                    found_d.append(dist[r].astype(np.int32))
    if not found_r:
        return _EMPTY_I64, _EMPTY_I64, _EMPTY_I32
    qs, rows, ds = np.concatenate(found_q), np.concatenate(found_r), np.concatenate(found_d)
    live = flags[rows] == 0
    return qs[live], rows[live], ds[live]


class Segment:
    """An immutable multi-index-hashed block of rows (flags excepted), sorted by id."""

    __slots__ = ("_plans", "flags", "ids", "offsets", "removed", "rows", "tables", "width", "words")

    def __init__(
        self,
        ids: NDArray[np.int64],
        words: Words,
        flags: NDArray[np.uint8],
        width: int,
        offsets: NDArray[Any],
        rows: NDArray[np.uint32],
    ) -> None:
        self.ids = ids
        self.words = words
        self.flags = flags
        self.width = width
        self.tables = HASH_BITS // width if width else 0
        self.offsets = offsets
        self.rows = rows
        self.removed = int(np.count_nonzero(flags & REMOVED))
        self._plans: dict[int, ProbePlan | None] = {}

    @classmethod
    def build(
        cls,
        ids: NDArray[np.int64],
        words: Words,
        flags: NDArray[np.uint8],
        width: int | None = None,
    ) -> Segment:
        """Index rows (ids unique); `width` None chooses one for the size."""
        n = ids.size
        if n > _MAX_ROWS:
            raise ValueError(f"a segment holds at most {_MAX_ROWS} hashes")
        if n and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids, words, flags = ids[order], words[order], flags[order]
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        words = np.ascontiguousarray(words, dtype=np.uint64)
        flags = np.array(flags, dtype=np.uint8)
        if width is None:
            width = choose_width(n)
        if width == 0:
            return cls(ids, words, flags, 0, np.zeros(1, np.uint32), np.zeros(0, np.uint32))
        if not 1 <= width <= 32:
            raise ValueError("width must be 1-32 bits")
        tables = HASH_BITS // width
        buckets = 1 << width
        offsets = np.empty(
            (tables << width) + 1, dtype=np.uint32 if tables * n < 1 << 32 else np.int64
        )
        offsets[0] = 0
        rows = np.empty(tables * n, dtype=np.uint32)
        row_numbers = np.arange(n, dtype=np.uint64)
        columns = np.ascontiguousarray(words.T)
        for table in range(tables):
            keys = _extract_columns(columns, table * width, width)
            counts = np.bincount(keys.astype(np.intp), minlength=buckets)
            offsets[1 + table * buckets : 1 + (table + 1) * buckets] = np.cumsum(counts) + table * n
            composite = (keys << np.uint64(32)) | row_numbers
            composite.sort()
            rows[table * n : (table + 1) * n] = composite.astype(np.uint32)
        return cls(ids, words, flags, width, offsets, rows)

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def live(self) -> int:
        """Rows not removed (enabled or disabled)."""
        return len(self) - self.removed

    @property
    def nbytes(self) -> int:
        return int(
            self.ids.nbytes
            + self.words.nbytes
            + self.flags.nbytes
            + self.offsets.nbytes
            + self.rows.nbytes
        )

    def find(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """(positions in `ids`, rows) of the ids that have a live (not removed) row here."""
        if not len(self):
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        rows = np.searchsorted(self.ids, ids)
        rows[rows >= len(self)] = 0
        hit = (self.ids[rows] == ids) & ((self.flags[rows] & REMOVED) == 0)
        where = np.flatnonzero(hit)
        return where, rows[where]

    def plan(self, threshold: int) -> ProbePlan | None:
        """The probe plan for `threshold`, or None when scanning is cheaper."""
        if threshold in self._plans:
            return self._plans[threshold]
        plan = probe_plan(self.width, self.tables, threshold) if self.tables else None
        scan_cost = len(self) * _SCAN_NS
        if (
            plan is not None
            and probe_cost(self.width, self.tables, threshold, len(self)) >= scan_cost
        ):
            plan = None
        self._plans[threshold] = plan
        return plan

    def search(
        self, queries: Words, threshold: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
        """(query index, row, distance) of every live row within `threshold`, each pair once."""
        if self.live == 0 or queries.shape[0] == 0:
            return _EMPTY_I64, _EMPTY_I64, _EMPTY_I32
        plan = self.plan(threshold)
        if plan is None:
            return scan(self.words, self.flags, queries, threshold)
        subs = _query_substrings(queries, self.width, self.tables)
        step = max(1, _PROBE_BUDGET // plan.size)
        found_q: list[NDArray[np.int64]] = []
        found_r: list[NDArray[np.int64]] = []
        found_d: list[NDArray[np.int32]] = []
        n = len(self)
        # np.take rather than fancy indexing: several times faster for these gathers.
        for start in range(0, queries.shape[0], step):
            block = subs[start : start + step]
            count = block.shape[0]
            keys = (np.take(block, plan.tables, axis=1) ^ plan.xor).ravel()
            starts = np.take(self.offsets, keys)
            lengths = (np.take(self.offsets, keys + 1) - starts).astype(np.intp)
            total = int(lengths.sum())
            if not total:
                continue
            ends = np.cumsum(lengths)
            positions = np.repeat(starts.astype(np.intp) - (ends - lengths), lengths)
            positions += np.arange(total, dtype=np.intp)
            rows = np.take(self.rows, positions).astype(np.intp)
            candidates = np.take(self.words, rows, axis=0)
            if count == 1:
                candidates ^= queries[start]
            else:
                per_query = lengths.reshape(count, -1).sum(axis=1)
                which = np.repeat(np.arange(start, start + count, dtype=np.int64), per_query)
                candidates ^= np.take(queries, which, axis=0)
            dist = popcount_rows(candidates)
            hit = np.flatnonzero(dist <= threshold)
            hit = hit[np.take(self.flags, np.take(rows, hit)) == 0]
            rows, dist = np.take(rows, hit), np.take(dist, hit)
            if count == 1:
                rows, first = np.unique(rows, return_index=True)
                found_q.append(np.full(rows.size, start, dtype=np.int64))
                found_r.append(rows.astype(np.int64))
            else:
                pair, first = np.unique(np.take(which, hit) * n + rows, return_index=True)
                found_q.append(pair // n)
                found_r.append(pair % n)
            found_d.append(np.take(dist, first).astype(np.int32))
        if not found_r:
            return _EMPTY_I64, _EMPTY_I64, _EMPTY_I32
        return np.concatenate(found_q), np.concatenate(found_r), np.concatenate(found_d)


class _Delta:
    """Recent additions, searched by brute force."""

    __slots__ = ("capacity", "flags", "ids", "positions", "size", "words")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ids = np.zeros(capacity, dtype=np.int64)
        self.words = np.zeros((capacity, PDQ_WORDS), dtype=np.uint64)
        self.flags = np.zeros(capacity, dtype=np.uint8)
        self.size = 0
        self.positions: dict[int, int] = {}
        """Row of each live id."""

    @property
    def live(self) -> int:
        return len(self.positions)

    def append(self, ids: NDArray[np.int64], words: Words, flags: NDArray[np.uint8]) -> None:
        end = self.size + ids.size
        self.ids[self.size : end] = ids
        self.words[self.size : end] = words
        self.flags[self.size : end] = flags
        for offset, entry in enumerate(ids.tolist()):
            self.positions[entry] = self.size + offset
        self.size = end

    def find(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        where: list[int] = []
        rows: list[int] = []
        if self.positions:
            get = self.positions.get
            for position, entry in enumerate(ids.tolist()):
                row = get(entry)
                if row is not None:
                    where.append(position)
                    rows.append(row)
        return np.array(where, dtype=np.intp), np.array(rows, dtype=np.intp)

    def remove_rows(self, rows: NDArray[np.intp]) -> None:
        self.flags[rows] |= REMOVED
        for entry in self.ids[rows].tolist():
            del self.positions[entry]

    def take_live(self) -> tuple[NDArray[np.int64], Words, NDArray[np.uint8]]:
        keep = np.flatnonzero((self.flags[: self.size] & REMOVED) == 0)
        return self.ids[keep].copy(), self.words[keep].copy(), self.flags[keep].copy()

    def clear(self) -> None:
        self.size = 0
        self.flags[:] = 0
        self.positions.clear()


def _check_threshold(threshold: int) -> int:
    value = int(threshold)
    if value != threshold or not 0 <= value <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be an integer 0-{MAX_THRESHOLD}, got {threshold!r}")
    return value


class PDQIndex:
    """Exact PDQ index: every live, enabled hash within the threshold, with its distance.

    Ids are the caller's int64 entry ids, one hash each: adding an id that is present
    replaces its hash (upsert). Not safe for concurrent use: callers serialise writes with
    reads (the `MatchIndex` facade holds a lock).
    """

    def __init__(self, *, delta_capacity: int = 8192, merge_factor: int = 4) -> None:
        if delta_capacity < 1 or merge_factor < 2:
            raise ValueError("delta_capacity must be >= 1 and merge_factor >= 2")
        self._segments: list[Segment] = []
        self._delta = _Delta(delta_capacity)
        self._merge_factor = merge_factor

    # -- building and updating ---------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: Ids,
        hashes: HashInput,
        *,
        enabled: bool | NDArray[np.bool_] = True,
        width: int | None = None,
        delta_capacity: int = 8192,
        merge_factor: int = 4,
    ) -> PDQIndex:
        """An index of many hashes at once, as one segment (`width` None: chosen by size)."""
        index = cls(delta_capacity=delta_capacity, merge_factor=merge_factor)
        entry_ids, words, flags = index._prepare(ids, hashes, enabled)
        if entry_ids.size:
            index._segments.append(Segment.build(entry_ids, words, flags, width))
        return index

    def _prepare(
        self, ids: Ids, hashes: HashInput, enabled: bool | NDArray[np.bool_]
    ) -> tuple[NDArray[np.int64], Words, NDArray[np.uint8]]:
        entry_ids = as_ids(ids)
        array = pdq_array(hashes)
        if array.shape[0] != entry_ids.size:
            raise ValueError(f"{entry_ids.size} ids for {array.shape[0]} hashes")
        if entry_ids.size > 1 and np.unique(entry_ids).size != entry_ids.size:
            raise ValueError("the same id appears twice in one add")
        flags = np.where(np.asarray(enabled, dtype=bool), np.uint8(0), DISABLED).astype(np.uint8)
        flags = np.broadcast_to(flags, entry_ids.shape).copy()
        return entry_ids, to_words(array).copy(), flags

    def add(self, ids: Ids, hashes: HashInput, *, enabled: bool | NDArray[np.bool_] = True) -> None:
        """Add (or replace) hashes; visible to the next search."""
        entry_ids, words, flags = self._prepare(ids, hashes, enabled)
        if not entry_ids.size:
            return
        self.remove(entry_ids)
        delta = self._delta
        if delta.size + entry_ids.size > delta.capacity:
            self._seal()
        if entry_ids.size >= delta.capacity:
            self._add_segment(Segment.build(entry_ids, words, flags))
        else:
            delta.append(entry_ids, words, flags)

    def remove(self, ids: Ids) -> int:
        """Remove entries (unknown ids are ignored); returns how many were removed."""
        if not len(self):
            return 0
        entry_ids = np.unique(as_ids(ids))
        removed = 0
        if not entry_ids.size:
            return 0
        _, rows = self._delta.find(entry_ids)
        if rows.size:
            self._delta.remove_rows(rows)
            removed += rows.size
        for segment in self._segments:
            _, rows = segment.find(entry_ids)
            if rows.size:
                segment.flags[rows] |= REMOVED
                segment.removed += int(rows.size)
                removed += int(rows.size)
        for segment in [s for s in self._segments if s.removed * 2 > len(s)]:
            self._rebuild(segment)
        return removed

    def set_enabled(self, ids: Ids, enabled: bool) -> int:
        """Enable or disable entries (unknown ids ignored); returns how many were found."""
        entry_ids = np.unique(as_ids(ids))
        found = 0
        if not entry_ids.size:
            return 0
        parts: list[tuple[NDArray[np.uint8], NDArray[np.intp]]] = []
        _, rows = self._delta.find(entry_ids)
        parts.append((self._delta.flags, rows))
        for segment in self._segments:
            _, rows = segment.find(entry_ids)
            parts.append((segment.flags, rows))
        for flags, rows in parts:
            if enabled:
                flags[rows] &= ~DISABLED
            else:
                flags[rows] |= DISABLED
            found += int(rows.size)
        return found

    def compact(self) -> None:
        """Merge the delta and every segment into one segment, dropping removed rows."""
        parts = [self._delta.take_live()]
        for segment in self._segments:
            keep = np.flatnonzero((segment.flags & REMOVED) == 0)
            parts.append((segment.ids[keep], segment.words[keep], segment.flags[keep]))
        self._delta.clear()
        self._segments = []
        ids = np.concatenate([p[0] for p in parts])
        if ids.size:
            words = np.concatenate([p[1] for p in parts])
            flags = np.concatenate([p[2] for p in parts])
            self._segments.append(Segment.build(ids, words, flags))

    def _seal(self) -> None:
        ids, words, flags = self._delta.take_live()
        self._delta.clear()
        if ids.size:
            self._add_segment(Segment.build(ids, words, flags))

    def _add_segment(self, segment: Segment) -> None:
        self._segments.append(segment)
        self._segments.sort(key=lambda s: -s.live)
        while (
            len(self._segments) >= 2
            and self._segments[-1].live * self._merge_factor >= self._segments[-2].live
        ):
            newer = self._segments.pop()
            older = self._segments.pop()
            self._segments.append(_merge([older, newer]))
            self._segments.sort(key=lambda s: -s.live)

    def _rebuild(self, segment: Segment) -> None:
        if segment not in self._segments:
            return  # already merged into another segment, which dropped its removed rows
        self._segments.remove(segment)
        if segment.live:
            self._add_segment(_merge([segment]))

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Entries held (enabled or disabled)."""
        return self._delta.live + sum(segment.live for segment in self._segments)

    def __contains__(self, entry_id: object) -> bool:
        if not isinstance(entry_id, int | np.integer):
            return False
        return self._locate(int(entry_id)) is not None

    def _locate(self, entry_id: int) -> tuple[Words, NDArray[np.uint8], int] | None:
        query = np.array([entry_id], dtype=np.int64)
        _, rows = self._delta.find(query)
        if rows.size:
            return self._delta.words, self._delta.flags, int(rows[0])
        for segment in self._segments:
            _, rows = segment.find(query)
            if rows.size:
                return segment.words, segment.flags, int(rows[0])
        return None

    def get(self, entry_id: int) -> str | None:
        """The hash of an entry as hex, or None when absent."""
        found = self._locate(entry_id)
        if found is None:
            return None
        words, _, row = found
        return words_to_bytes(words[row : row + 1]).tobytes().hex()

    def is_enabled(self, entry_id: int) -> bool | None:
        """Whether an entry is enabled; None when absent."""
        found = self._locate(entry_id)
        if found is None:
            return None
        return not bool(found[1][found[2]] & DISABLED)

    def ids(self) -> NDArray[np.int64]:
        """Every entry id held (enabled or disabled), sorted."""
        parts = [
            self._delta.ids[: self._delta.size][
                (self._delta.flags[: self._delta.size] & REMOVED) == 0
            ]
        ]
        parts += [s.ids[(s.flags & REMOVED) == 0] for s in self._segments]
        return np.sort(np.concatenate(parts))

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays (the resident size, less Python object overhead)."""
        delta = self._delta
        return (
            sum(segment.nbytes for segment in self._segments)
            + delta.ids.nbytes
            + delta.words.nbytes
            + delta.flags.nbytes
            + 100 * len(delta.positions)
        )

    def stats(self) -> dict[str, Any]:
        """Segment sizes and table shapes, for diagnostics."""
        return {
            "entries": len(self),
            "delta": self._delta.live,
            "segments": [
                {"rows": len(s), "removed": s.removed, "width": s.width, "tables": s.tables}
                for s in self._segments
            ],
            "nbytes": self.nbytes,
        }

    def search_words(self, queries: Words, threshold: int) -> SearchResult:
        """`search_arrays` on queries already in word form (n x 4 uint64)."""
        limit = _check_threshold(threshold)
        qs: list[NDArray[np.int64]] = []
        ids: list[NDArray[np.int64]] = []
        ds: list[NDArray[np.int32]] = []
        delta = self._delta
        if delta.live:
            q, rows, d = scan(delta.words[: delta.size], delta.flags[: delta.size], queries, limit)
            qs.append(q)
            ids.append(delta.ids[rows])
            ds.append(d)
        for segment in self._segments:
            q, rows, d = segment.search(queries, limit)
            qs.append(q)
            ids.append(segment.ids[rows])
            ds.append(d)
        if not qs:
            return SearchResult(_EMPTY_I64, _EMPTY_I64, _EMPTY_I32)
        query, found, dist = np.concatenate(qs), np.concatenate(ids), np.concatenate(ds)
        order = np.lexsort((found, dist, query))
        return SearchResult(query[order], found[order], dist[order])

    def search_arrays(self, queries: HashInput, threshold: int) -> SearchResult:
        """Every (query, id, distance) with distance <= threshold, as flat arrays."""
        return self.search_words(to_words(pdq_array(queries)), threshold)

    def search(self, queries: HashInput, threshold: int) -> list[list[tuple[int, int]]]:
        """Per query, every enabled entry within `threshold` as (id, distance), nearest first
        (ties by id)."""
        words = to_words(pdq_array(queries))
        result = self.search_words(words, threshold)
        return _group(
            words.shape[0],
            result.query,
            list(zip(result.ids.tolist(), result.distance.tolist(), strict=True)),
        )

    def search_dihedral(
        self, variants: NDArray[np.uint8] | Sequence[Sequence[str]], threshold: int
    ) -> list[list[tuple[int, int, int]]]:
        """Per query (a row of variants, e.g. the 8 dihedral hashes, shape q x 8 x 32), every
        entry within `threshold` of some variant, as (id, smallest distance, variant index of
        that distance, the lowest on ties), nearest first."""
        if isinstance(variants, np.ndarray):
            if variants.dtype != np.uint8 or variants.ndim != 3 or variants.shape[2] != PDQ_BYTES:
                raise ValueError("variants must be a q x k x 32 uint8 array")
            array = np.ascontiguousarray(variants)
        else:
            rows = [list(row) for row in variants]
            per = len(rows[0]) if rows else 8
            if any(len(row) != per for row in rows):
                raise ValueError("every query needs the same number of variants")
            flat = [value for row in rows for value in row]
            array = pdq_array(flat).reshape(len(rows), per, PDQ_BYTES)
        count, per = array.shape[0], array.shape[1]
        if per == 0:
            raise ValueError("each query needs at least one variant")
        result = self.search_words(to_words(array.reshape(-1, PDQ_BYTES)), threshold)
        origin, variant = np.divmod(result.query, per)
        order = np.lexsort((variant, result.distance, result.ids, origin))
        origin, ids = origin[order], result.ids[order]
        dist, variant = result.distance[order], variant[order]
        first = np.ones(origin.size, dtype=bool)
        first[1:] = (origin[1:] != origin[:-1]) | (ids[1:] != ids[:-1])
        origin, ids, dist, variant = origin[first], ids[first], dist[first], variant[first]
        order = np.lexsort((ids, dist, origin))
        triples = list(
            zip(ids[order].tolist(), dist[order].tolist(), variant[order].tolist(), strict=True)
        )
        return _group(count, origin[order], triples)

    # -- snapshots ---------------------------------------------------------------------

    def snapshot_arrays(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """(meta, arrays) describing the whole index, for `save` and composite snapshots."""
        arrays: dict[str, NDArray[Any]] = {}
        ids, words, flags = self._delta.take_live()
        arrays["delta.ids"] = ids
        arrays["delta.hashes"] = words_to_bytes(words)
        arrays["delta.flags"] = flags
        segments = []
        for number, segment in enumerate(self._segments):
            prefix = f"segment{number}."
            arrays[prefix + "ids"] = segment.ids
            arrays[prefix + "hashes"] = words_to_bytes(segment.words)
            arrays[prefix + "flags"] = segment.flags
            arrays[prefix + "offsets"] = segment.offsets
            arrays[prefix + "rows"] = segment.rows
            segments.append({"width": segment.width})
        meta = {
            "delta_capacity": self._delta.capacity,
            "merge_factor": self._merge_factor,
            "segments": segments,
        }
        return meta, arrays

    @classmethod
    def from_snapshot_arrays(
        cls, meta: dict[str, Any], arrays: dict[str, NDArray[Any]], source: str = "snapshot"
    ) -> PDQIndex:
        """Rebuild from `snapshot_arrays` output, checking every shape (SnapshotError)."""
        try:
            index = cls(
                delta_capacity=int(meta["delta_capacity"]),
                merge_factor=int(meta["merge_factor"]),
            )
            ids, words, flags = _checked_rows(arrays, "delta.", source)
            if ids.size:
                if ids.size > index._delta.capacity:
                    raise SnapshotError(f"{source}: delta larger than its capacity")
                index._delta.append(ids, words, flags & ~REMOVED)
            for number, description in enumerate(meta["segments"]):
                prefix = f"segment{number}."
                ids, words, flags = _checked_rows(arrays, prefix, source)
                width = int(description["width"])
                offsets = arrays[prefix + "offsets"]
                rows = arrays[prefix + "rows"]
                _check_tables(source, prefix, ids.size, width, offsets, rows)
                index._segments.append(Segment(ids, words, flags, width, offsets, rows))
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, SnapshotError):
                raise
            raise SnapshotError(f"{source}: inconsistent PDQ index snapshot ({error})") from error
        return index

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot file (atomic replace)."""
        meta, arrays = self.snapshot_arrays()
        write_snapshot(path, SNAPSHOT_KIND, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PDQIndex:
        """Read a snapshot written by `save`; SnapshotError when damaged or foreign."""
        meta, arrays = read_snapshot(path, SNAPSHOT_KIND)
        return cls.from_snapshot_arrays(meta, arrays, str(path))


def _merge(segments: Sequence[Segment]) -> Segment:
    parts = []
    for segment in segments:
        keep = np.flatnonzero((segment.flags & REMOVED) == 0)
        parts.append((segment.ids[keep], segment.words[keep], segment.flags[keep]))
    return Segment.build(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _group(count: int, query: NDArray[np.int64], items: list[Any]) -> list[list[Any]]:
    """Split `items` (sorted by query) into one list per query."""
    bounds = np.searchsorted(query, np.arange(count + 1)).tolist()
    return [items[bounds[i] : bounds[i + 1]] for i in range(count)]


def _checked_rows(
    arrays: dict[str, NDArray[Any]], prefix: str, source: str
) -> tuple[NDArray[np.int64], Words, NDArray[np.uint8]]:
    ids = arrays[prefix + "ids"]
    hashes = arrays[prefix + "hashes"]
    flags = arrays[prefix + "flags"]
    n = ids.shape[0] if ids.ndim == 1 else -1
    if (
        ids.dtype != np.int64
        or n < 0
        or hashes.dtype != np.uint8
        or hashes.shape != (n, PDQ_BYTES)
        or flags.dtype != np.uint8
        or flags.shape != (n,)
    ):
        raise SnapshotError(f"{source}: arrays {prefix}* have inconsistent shapes or types")
    if n > 1 and not bool(np.all(ids[1:] > ids[:-1])) and prefix != "delta.":
        raise SnapshotError(f"{source}: ids of {prefix}* are not sorted")
    return ids, to_words(hashes), flags


def _check_tables(
    source: str,
    prefix: str,
    n: int,
    width: int,
    offsets: NDArray[Any],
    rows: NDArray[Any],
) -> None:
    tables = HASH_BITS // width if width else 0
    if width and not 1 <= width <= 32:
        raise SnapshotError(f"{source}: {prefix} has an impossible table width {width}")
    expected_offsets = (tables << width) + 1 if width else 1
    if (
        offsets.ndim != 1
        or offsets.shape[0] != expected_offsets
        or offsets.dtype not in (np.dtype(np.uint32), np.dtype(np.int64))
        or rows.dtype != np.uint32
        or rows.shape != (tables * n,)
    ):
        raise SnapshotError(f"{source}: tables of {prefix}* have inconsistent shapes")
    if width and (
        int(offsets[0]) != 0
        or int(offsets[-1]) != tables * n
        or bool(np.any(offsets[1:] < offsets[:-1]))
        or (n and int(rows.max()) >= n)
    ):
        raise SnapshotError(f"{source}: tables of {prefix}* are inconsistent")
