"""Match hash records against the enabled banks: one in-memory index, per-bank thresholds,
suppression banks applied.

`BankMatcher` is built once from the database (every active entry of every enabled bank)
and then answers batches of records; the scan command, the API and the backfill share it.
"""

from __future__ import annotations

import json
import os
import threading
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

from vigil.banks.service import (
    active_entry_ids,
    entry_classifications,
    iter_index_values,
    reactivated_banks,
)
from vigil.index import MatchIndex
from vigil.index.match import IndexMatch
from vigil.pipeline.hashing import HashRecord
from vigil.signals import Signal, get_signal_type
from vigil.signals.vpdq import parse_vpdq
from vigil.store import Bank, BankEntry, Database, utcnow

EXACT_LOOKUPS = ("md5", "sha1", "sha256")
_BUILD_BATCH = 100_000
_CACHE_FORMAT = 2  # 2: one compacted segment per index
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
    quality: int | None
    """None: unknown, for a hash given by value (a lookup), which is matched as given."""
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
        bank_names: Sequence[str] | None = None,
        state: _BankState | None = None,
    ):
        self.database = database
        self.index = index
        self._entries = (entry_ids, entry_banks)
        self.banks = banks
        self.from_snapshot = from_snapshot
        self._classifications: dict[int, str | None] = {}
        self._bank_names = bank_names
        self._state = state or _BankState({}, utcnow())
        self._refresh_lock = threading.Lock()

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
            state = _bank_state(session)
            rules = _bank_rules(session, bank_names)
            fingerprint = _fingerprint(session)
            cached = _load_cache(cache_dir, fingerprint, session) if cache_dir else None
            if cached is not None:
                index, ids, banks = cached
                return cls(
                    database,
                    index,
                    ids,
                    banks,
                    rules,
                    from_snapshot=True,
                    bank_names=bank_names,
                    state=state,
                )
            index, ids, banks = _build(session)
        if cache_dir is not None:
            _save_cache(cache_dir, fingerprint, index, ids, banks)
        return cls(database, index, ids, banks, rules, bank_names=bank_names, state=state)

    def refresh(self) -> set[int]:
        """Bring the index up to date with the banks, incrementally: only banks whose row
        moved (every entry change touches `bank.updated`), or with an entry whose disabled
        period ended, are compared entry id by entry id; only the difference is added to or
        removed from the index. Returns the ids of the banks that changed. Long-running
        holders (the API workers) call this periodically and after their own bank writes."""
        with self._refresh_lock, self.database.session() as session:
            now = utcnow()
            state = _bank_state(session, now)
            changed = {
                bank_id
                for bank_id in state.banks.keys() | self._state.banks.keys()
                if state.banks.get(bank_id) != self._state.banks.get(bank_id)
            }
            changed |= reactivated_banks(session, self._state.checked, now) & state.banks.keys()
            if changed:
                self.banks = _bank_rules(session, self._bank_names)
                self._classifications.clear()  # an entry's or bank's classification may differ
                for bank_id in sorted(changed):
                    self._sync_bank(session, bank_id, now)
            self._state = state
        return changed

    @property
    def entry_ids(self) -> NDArray[np.int64]:
        return self._entries[0]

    @property
    def entry_banks(self) -> NDArray[np.int64]:
        return self._entries[1]

    def _sync_bank(self, session: Session, bank_id: int, now: datetime) -> None:
        """Make the index hold exactly the active entries of one bank. The (ids, banks)
        table is swapped in one assignment, after additions reach it and before removals
        leave it, so a concurrent `match` never meets an id the table lacks."""
        ids, banks = self._entries
        wanted = np.asarray(active_entry_ids(session, bank_id, now=now), dtype=np.int64)
        held = ids[banks == bank_id]
        gone = np.setdiff1d(held, wanted, assume_unique=True)
        new = np.setdiff1d(wanted, held, assume_unique=True)
        if len(gone):
            self.index.remove(gone)
            keep = ~np.isin(ids, gone)
            self._entries = ids, banks = ids[keep], banks[keep]
        if len(new):
            ids = np.concatenate([ids, new])
            banks = np.concatenate([banks, np.full(len(new), bank_id, np.int64)])
            order = np.argsort(ids, kind="stable")
            self._entries = ids[order], banks[order]
            batch: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
            for entry_id, _, signal_type, value in iter_index_values(
                session, now=now, entry_ids=new.tolist()
            ):
                batch[signal_type][0].append(entry_id)
                batch[signal_type][1].append(value)
            for signal_type, (type_ids, values) in batch.items():
                self.index.add_many(signal_type, type_ids, values)

    def __len__(self) -> int:
        return len(self.entry_ids)

    def _bank_of(self, entry_ids: Iterable[int]) -> dict[int, int]:
        table_ids, table_banks = self._entries
        ids = np.fromiter(entry_ids, dtype=np.int64)
        rows = np.searchsorted(table_ids, ids)
        return dict(zip(ids.tolist(), table_banks[rows].tolist(), strict=True))

    def lookup(self, signal_type: str, values: Sequence[str]) -> list[MatchOutcome]:
        """Match hash values given directly (not computed from a file), in order. Values
        must already be canonical (the signal type's `parse`); a PDQ value is matched as
        given, with no quality rule, since its quality is unknown."""
        records = [
            HashRecord(path="", signals={signal_type: _given_signal(signal_type, value)})
            for value in values
        ]
        return self.match(records)

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


def _given_signal(signal_type: str, value: str) -> Signal:
    if signal_type == "vpdq":
        return Signal(signal_type, value, detail=parse_vpdq(value))
    return Signal(signal_type, value)


def pdq_queries(record: HashRecord) -> list[PDQQuery]:
    """The PDQ hashes to look up for a record: its query-side variants when the hashing step
    computed them, else its own hash; never a hash below PDQ's quality rule."""
    signal = record.signals.get("pdq")
    if signal is None:
        return []
    pdq = get_signal_type("pdq")
    variants: Iterable[PDQQuery] = signal.detail or [PDQQuery(signal.value, signal.quality)]
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


@dataclass(frozen=True)
class _BankState:
    """Each bank's (last change, enabled) as last seen, and when it was read."""

    banks: dict[int, tuple[datetime, bool]]
    checked: datetime


def _bank_state(session: Session, now: datetime | None = None) -> _BankState:
    rows = session.execute(select(Bank.id, Bank.updated, Bank.enabled))
    return _BankState({row.id: (row.updated, row.enabled) for row in rows}, now or utcnow())


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
    index.compact()  # one segment per index: each lookup pays a segment's fixed cost once
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
