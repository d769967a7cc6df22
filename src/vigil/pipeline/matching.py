"""Match hash records against the enabled banks: one in-memory index, per-bank thresholds,
suppression banks applied.

`BankMatcher` is built once from the database (every active entry of every enabled bank)
and then answers batches of records; the scan command, the API and the backfill share it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.banks.service import entry_classifications, iter_index_values
from vigil.index import MatchIndex
from vigil.index.match import IndexMatch
from vigil.pipeline.hashing import HashRecord
from vigil.signals import get_signal_type
from vigil.store import Bank, BankEntry, Database, utcnow

EXACT_LOOKUPS = ("md5", "sha1", "sha256")
_BUILD_BATCH = 100_000
_CACHE_FORMAT = 1
_CACHE_STATE = "state.json"
_CACHE_ENTRIES = "entries.npz"


@dataclass(frozen=True)
class FoundMatch:
    """One bank entry that a file matched."""

    bank: str
    bank_id: int
    bank_kind: str
    entry_id: int
    signal_type: str
    distance: int
    classification: str | None
    dihedral: int | None = None
    query_variant: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `matches` item of a scan record."""
        return {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "classification": self.classification,
        }


@dataclass(frozen=True)
class MatchOutcome:
    """What matching decided for one record: matches acted on; matches a suppression bank
    cancelled (kept for the record, never acted on); and the suppression hits themselves."""

    matches: list[FoundMatch]
    suppressed: list[FoundMatch]
    suppressing: list[FoundMatch]


@dataclass(frozen=True)
class _BankRules:
    name: str
    kind: str
    pdq_threshold: int
    vpdq_rule: tuple[int, float, float]  # frame threshold, compared share, query share


@dataclass(frozen=True)
class _Hit:
    entry_id: int
    bank_id: int
    signal_type: str
    distance: int
    dihedral: int | None
    query_variant: str | None


@dataclass(frozen=True)
class PDQQuery:
    """One PDQ hash to look up for a file: the upload itself or a query-side variant."""

    pdq: str
    quality: int
    dihedral: int = 0
    label: str = "original"


class BankMatcher:
    """The enabled banks' active entries in a `MatchIndex`, with the rules of their banks.

    Per entry it keeps only its id and bank (two int64 arrays, 16 bytes an entry); the
    classification of an entry is read from the database when the entry is first matched.
    The index can be cached as a snapshot (`cache_dir`): it is reused while the banks are
    unchanged, so a restart over millions of hashes loads in seconds instead of rebuilding.
    """

    def __init__(
        self,
        database: Database,
        index: MatchIndex,
        entry_ids: NDArray[np.int64],
        entry_banks: NDArray[np.int64],
        banks: dict[int, _BankRules],
        *,
        from_snapshot: bool = False,
    ):
        self.database = database
        self.index = index
        self.entry_ids = entry_ids
        self.entry_banks = entry_banks
        self.banks = banks
        self.from_snapshot = from_snapshot
        self._classifications: dict[int, str | None] = {}

    @classmethod
    def from_database(
        cls,
        database: Database,
        bank_names: Sequence[str] | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> BankMatcher:
        """Match against the enabled banks (only `bank_names`, when given, plus every
        suppression bank, which always applies), loading the cached index in `cache_dir`
        when it is current and rebuilding (and caching) it otherwise."""
        with database.session() as session:
            rules = _bank_rules(session, bank_names)
            fingerprint = _fingerprint(session)
            cached = _load_cache(cache_dir, fingerprint, session) if cache_dir else None
            if cached is not None:
                index, ids, banks = cached
                return cls(database, index, ids, banks, rules, from_snapshot=True)
            index, ids, banks = _build(session)
        if cache_dir is not None:
            _save_cache(cache_dir, fingerprint, index, ids, banks)
        return cls(database, index, ids, banks, rules)

    def __len__(self) -> int:
        return len(self.entry_ids)

    def _bank_of(self, entry_ids: Iterable[int]) -> dict[int, int]:
        ids = np.fromiter(entry_ids, dtype=np.int64)
        rows = np.searchsorted(self.entry_ids, ids)
        return dict(zip(ids.tolist(), self.entry_banks[rows].tolist(), strict=True))

    def _classification(self, entry_ids: Iterable[int]) -> None:
        missing = [i for i in set(entry_ids) if i not in self._classifications]
        if not missing:
            return
        with self.database.session() as session:
            for entry_id, classification in entry_classifications(session, missing).items():
                self._classifications[entry_id] = classification.to_text() or None

    def match(self, records: Sequence[HashRecord]) -> list[MatchOutcome]:
        """Per record, in order, the matches found and those suppressed."""
        hits: list[list[_Hit]] = [[] for _ in records]
        self._match_exact(records, hits)
        self._match_pdq(records, hits)
        self._match_vpdq(records, hits)
        self._classification(hit.entry_id for items in hits for hit in items)
        return [_apply_suppression([self._found(hit) for hit in items]) for items in hits]

    def _found(self, hit: _Hit) -> FoundMatch:
        bank = self.banks[hit.bank_id]
        return FoundMatch(
            bank=bank.name,
            bank_id=hit.bank_id,
            bank_kind=bank.kind,
            entry_id=hit.entry_id,
            signal_type=hit.signal_type,
            distance=hit.distance,
            classification=self._classifications.get(hit.entry_id),
            dihedral=hit.dihedral,
            query_variant=hit.query_variant,
        )

    def _hits(
        self, signal_type: str, matches: Iterable[IndexMatch], query: PDQQuery | None = None
    ) -> Iterator[_Hit]:
        """Index matches whose bank takes part in this scan and whose distance its rule allows."""
        found = list(matches)
        banks = self._bank_of(m.entry_id for m in found)
        for match in found:
            bank_id = banks[match.entry_id]
            rules = self.banks.get(bank_id)
            if rules is None or (signal_type == "pdq" and match.distance > rules.pdq_threshold):
                continue
            yield _Hit(
                match.entry_id,
                bank_id,
                signal_type,
                match.distance,
                query.dihedral if query else None,
                query.label if query else None,
            )

    def _match_exact(self, records: Sequence[HashRecord], found: list[list[_Hit]]) -> None:
        for signal_type in EXACT_LOOKUPS:
            positions = [i for i, r in enumerate(records) if r.value(signal_type)]
            if not positions:
                continue
            values = [records[i].value(signal_type) for i in positions]
            for position, hits in zip(
                positions, self.index.lookup(signal_type, values), strict=True
            ):
                found[position].extend(self._hits(signal_type, hits))

    def _match_pdq(self, records: Sequence[HashRecord], found: list[list[_Hit]]) -> None:
        limit = max((b.pdq_threshold for b in self.banks.values()), default=-1)
        if limit < 0:
            return
        owners: list[int] = []
        queries: list[PDQQuery] = []
        for position, record in enumerate(records):
            for query in pdq_queries(record):
                owners.append(position)
                queries.append(query)
        if not queries:
            return
        best: dict[tuple[int, int], _Hit] = {}
        results = self.index.lookup("pdq", [q.pdq for q in queries], threshold=limit)
        for position, query, matches in zip(owners, queries, results, strict=True):
            for hit in self._hits("pdq", matches, query):
                key = (position, hit.entry_id)
                if key not in best or hit.distance < best[key].distance:
                    best[key] = hit
        for (position, _), hit in sorted(best.items()):
            found[position].append(hit)

    def _match_vpdq(self, records: Sequence[HashRecord], found: list[list[_Hit]]) -> None:
        positions = [i for i, r in enumerate(records) if "vpdq" in r.signals]
        if not positions:
            return
        videos = [records[i].signals["vpdq"].detail for i in positions]
        by_rule: dict[tuple[int, float, float], set[int]] = defaultdict(set)
        for bank_id, bank in self.banks.items():
            by_rule[bank.vpdq_rule].add(bank_id)
        for (frames, compared, query), bank_ids in by_rule.items():
            results = self.index.lookup(
                "vpdq", videos, threshold=frames, compared_share=compared, query_share=query
            )
            for position, matches in zip(positions, results, strict=True):
                found[position].extend(
                    hit for hit in self._hits("vpdq", matches) if hit.bank_id in bank_ids
                )


def pdq_queries(record: HashRecord) -> list[PDQQuery]:
    """The PDQ hashes to look up for a record: its query-side variants when the hashing step
    computed them, else its own hash; never a hash below PDQ's quality rule."""
    signal = record.signals.get("pdq")
    if signal is None:
        return []
    pdq = get_signal_type("pdq")
    variants: Iterable[PDQQuery] = signal.detail or [PDQQuery(signal.value, signal.quality or 0)]
    return [q for q in variants if pdq.usable(q.quality)]


def _apply_suppression(items: list[FoundMatch]) -> MatchOutcome:
    """A hit in a suppression bank cancels every match of the same content."""
    suppressing = [m for m in items if m.bank_kind == "suppress"]
    matches = [m for m in items if m.bank_kind != "suppress"]
    if suppressing:
        return MatchOutcome(matches=[], suppressed=matches, suppressing=suppressing)
    return MatchOutcome(matches=matches, suppressed=[], suppressing=[])


def _bank_rules(session: Session, bank_names: Sequence[str] | None) -> dict[int, _BankRules]:
    rules: dict[int, _BankRules] = {}
    for bank in session.scalars(select(Bank).where(Bank.enabled.is_(True))):
        if bank_names and bank.name not in bank_names and bank.kind != "suppress":
            continue
        rules[bank.id] = _BankRules(
            bank.name,
            bank.kind,
            bank.pdq_threshold,
            (bank.vpdq_frame_threshold, bank.vpdq_compared_share, bank.vpdq_query_share),
        )
    return rules


def _build(session: Session) -> tuple[MatchIndex, NDArray[np.int64], NDArray[np.int64]]:
    """Index every active entry of every enabled bank (a scan's bank choice is applied to
    the hits, so one index, and one cache, serves every choice)."""
    index = MatchIndex()
    batch: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    ids: list[int] = []
    banks: list[int] = []
    for entry_id, bank_id, signal_type, value in iter_index_values(session):
        ids.append(entry_id)
        banks.append(bank_id)
        type_ids, values = batch[signal_type]
        type_ids.append(entry_id)
        values.append(value)
        if len(values) >= _BUILD_BATCH:
            index.add_many(signal_type, type_ids, values)
            type_ids.clear()
            values.clear()
    for signal_type, (type_ids, values) in batch.items():
        if values:
            index.add_many(signal_type, type_ids, values)
    return index, np.asarray(ids, dtype=np.int64), np.asarray(banks, dtype=np.int64)


def _fingerprint(session: Session) -> dict[str, Any]:
    """What the cached index must agree with: every bank change moves `bank.updated`, entry
    additions and removals move the count or the largest id."""
    count, largest = session.execute(select(func.count(BankEntry.id), func.max(BankEntry.id))).one()
    banks, updated = session.execute(select(func.count(Bank.id), func.max(Bank.updated))).one()
    enabled = sorted(session.scalars(select(Bank.id).where(Bank.enabled.is_(True))))
    return {
        "format": _CACHE_FORMAT,
        "entries": count,
        "largest_entry": largest,
        "banks": banks,
        "enabled": enabled,
        "updated": updated.isoformat() if updated else None,
    }


def _load_cache(
    folder: Path, fingerprint: dict[str, Any], session: Session
) -> tuple[MatchIndex, NDArray[np.int64], NDArray[np.int64]] | None:
    """The cached index when it was built from the same bank state, and no entry's
    `disabled_until` has passed since (which reactivates it without touching its bank)."""
    try:
        saved = json.loads((folder / _CACHE_STATE).read_text())
        if saved["fingerprint"] != fingerprint:
            return None
        built = datetime.fromisoformat(saved["built"])
        reactivated = session.scalar(
            select(func.count(BankEntry.id)).where(
                BankEntry.disabled_until > built, BankEntry.disabled_until <= utcnow()
            )
        )
        if reactivated:
            return None
        with np.load(folder / _CACHE_ENTRIES, allow_pickle=False) as arrays:
            ids, banks = arrays["ids"], arrays["banks"]
        index = MatchIndex.load(folder / "index")
    except (OSError, ValueError, KeyError, TypeError):  # absent, stale or damaged: rebuild
        return None
    return index, ids, banks


def _save_cache(
    folder: Path,
    fingerprint: dict[str, Any],
    index: MatchIndex,
    ids: NDArray[np.int64],
    banks: NDArray[np.int64],
) -> None:
    """Write the cache; the state file goes last, so a crash leaves no state claiming an
    index that was not fully written."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _CACHE_STATE).unlink(missing_ok=True)
    index.save(folder / "index")
    with (folder / _CACHE_ENTRIES).open("wb") as stream:
        np.savez(stream, ids=ids, banks=banks)
    state = {"fingerprint": fingerprint, "built": utcnow().isoformat()}
    partial = folder / (_CACHE_STATE + ".partial")
    partial.write_text(json.dumps(state))
    os.replace(partial, folder / _CACHE_STATE)
