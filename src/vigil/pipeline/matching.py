"""Match hash records against the enabled banks: one in-memory index, per-bank thresholds,
suppression banks applied.

`BankMatcher` is built once from the database (every active entry of every enabled bank)
and then answers batches of records; the scan command, the API and the backfill share it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.banks.service import IndexEntry, iter_index_entries
from vigil.index import MatchIndex
from vigil.pipeline.hashing import HashRecord
from vigil.signals import get_signal_type
from vigil.store import Bank

EXACT_LOOKUPS = ("md5", "sha1", "sha256")


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
class PDQQuery:
    """One PDQ hash to look up for a file: the upload itself or a query-side variant."""

    pdq: str
    quality: int
    dihedral: int = 0
    label: str = "original"


class BankMatcher:
    """The enabled banks' active entries in a `MatchIndex`, with the rules of their banks."""

    def __init__(
        self, index: MatchIndex, entries: dict[int, IndexEntry], banks: dict[int, _BankRules]
    ):
        self.index = index
        self.entries = entries
        self.banks = banks

    @classmethod
    def from_database(
        cls, session: Session, bank_names: Sequence[str] | None = None
    ) -> BankMatcher:
        """Load every active entry of the enabled banks (only of `bank_names`, when given,
        plus every suppression bank, which always applies)."""
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
        index = MatchIndex()
        entries: dict[int, IndexEntry] = {}
        batch: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        for entry in iter_index_entries(session):
            if entry.bank_id not in rules:
                continue
            entries[entry.entry_id] = entry
            ids, values = batch[entry.signal_type]
            ids.append(entry.entry_id)
            values.append(entry.value)
        for signal_type, (ids, values) in batch.items():
            index.add_many(signal_type, ids, values)
        return cls(index, entries, rules)

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, records: Sequence[HashRecord]) -> list[MatchOutcome]:
        """Per record, in order, the matches found and those suppressed."""
        found: list[list[FoundMatch]] = [[] for _ in records]
        self._match_exact(records, found)
        self._match_pdq(records, found)
        self._match_vpdq(records, found)
        return [_apply_suppression(items) for items in found]

    def _found(self, entry_id: int, signal_type: str, distance: int, **extra: Any) -> FoundMatch:
        entry = self.entries[entry_id]
        bank = self.banks[entry.bank_id]
        text = entry.classification.to_text()
        return FoundMatch(
            bank=bank.name,
            bank_id=entry.bank_id,
            bank_kind=bank.kind,
            entry_id=entry_id,
            signal_type=signal_type,
            distance=distance,
            classification=text or None,
            **extra,
        )

    def _match_exact(self, records: Sequence[HashRecord], found: list[list[FoundMatch]]) -> None:
        for signal_type in EXACT_LOOKUPS:
            positions = [i for i, r in enumerate(records) if r.value(signal_type)]
            if not positions:
                continue
            values = [records[i].value(signal_type) for i in positions]
            for position, hits in zip(
                positions, self.index.lookup(signal_type, values), strict=True
            ):
                found[position].extend(self._found(hit.entry_id, signal_type, 0) for hit in hits)

    def _match_pdq(self, records: Sequence[HashRecord], found: list[list[FoundMatch]]) -> None:
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
        best: dict[tuple[int, int], FoundMatch] = {}
        results = self.index.lookup("pdq", [q.pdq for q in queries], threshold=limit)
        for position, query, hits in zip(owners, queries, results, strict=True):
            for hit in hits:
                entry = self.entries[hit.entry_id]
                if hit.distance > self.banks[entry.bank_id].pdq_threshold:
                    continue
                key = (position, hit.entry_id)
                if key not in best or hit.distance < best[key].distance:
                    best[key] = self._found(
                        hit.entry_id,
                        "pdq",
                        hit.distance,
                        dihedral=query.dihedral,
                        query_variant=query.label,
                    )
        for (position, _), match in sorted(best.items()):
            found[position].append(match)

    def _match_vpdq(self, records: Sequence[HashRecord], found: list[list[FoundMatch]]) -> None:
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
            for position, hits in zip(positions, results, strict=True):
                found[position].extend(
                    self._found(hit.entry_id, "vpdq", hit.distance)
                    for hit in hits
                    if self.entries[hit.entry_id].bank_id in bank_ids
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
